"""Format drift guard: committed .nc files keep decoding to the committed latents and pixels.

golden.nc and golden-multi.nc are made with tiny.pt (weights format 1: ẑ on the integers, as
every decoder before weights format 2); golden-offsets.nc with tiny-offsets.pt (format 2: ẑ on
a grid offset per channel).

The latents are pinned by hash (they are exact on every machine); pixels only within a level
or two (the bf16 synthesis may differ between machines).
"""

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import neuralcodec
from neuralcodec import codec
from neuralcodec.container import ColorMode, SectionType, unpack
from neuralcodec.errors import InvalidInputError
from neuralcodec.zoo import load_model

# Results depend on the transforms' precision: every test runs in float32 and in bf16.
pytestmark = pytest.mark.usefixtures("transforms_precision")

FIXTURES = Path(__file__).parent / "fixtures"
# sha256 of the decoded ŷ (float32, C order) of each golden stream; change only with a format bump.
LATENT_SHA256 = {
    "golden.nc": "e4c451b53065b521317304c3c75f6a39cc1de99a240bf44e793051b4737efd1d",
    "golden-multi.nc": "d470aa61c18e54e74e890776b266cdf91435d4558400b4b9088e4c8642b41189",
    "golden-offsets.nc": "28d4fe79c25aa2cb0219a5e9c1b6513110a9bc5f08fac9fed8227c2ecd949562",
}
MODEL_OF = {"golden-offsets.nc": "tiny-offsets.pt"}


def decoded_latents(name: str, model_path: Path):
    container = unpack((FIXTURES / name).read_bytes())
    h = container.header
    model = load_model(model_path)
    z, y = container.section(SectionType.Z)[0], container.section(SectionType.Y)
    return container, codec.decode_latents(model, z, y, h.height, h.width, h.band_rows)


@pytest.mark.parametrize("name", sorted(LATENT_SHA256))
def test_golden_latents_are_pinned_by_hash(name):
    _, y_hat = decoded_latents(name, FIXTURES / MODEL_OF.get(name, "tiny.pt"))
    assert hashlib.sha256(y_hat.numpy().tobytes()).hexdigest() == LATENT_SHA256[name]


def test_golden_file_decodes_to_the_same_pixels(tiny_model):
    data = (FIXTURES / "golden.nc").read_bytes()
    decoded = np.asarray(neuralcodec.decompress(data, model=tiny_model, device="cpu"), dtype=np.int16)
    expected = np.asarray(Image.open(FIXTURES / "golden.png"), dtype=np.int16)
    assert decoded.shape == expected.shape
    # The latents decode bit-exactly; the bf16 synthesis may move a pixel by a level or two.
    assert np.abs(decoded - expected).max() <= 2


def test_golden_header_fields_are_stable():
    header = neuralcodec.read_header((FIXTURES / "golden.nc").read_bytes()).header
    assert (header.width, header.height, header.model_name, header.quality) == (90, 70, "tiny", 60.0)


def test_multi_band_golden_carries_alpha_icc_and_exif_exactly(tiny_model):
    from make_fixtures import ICC, multi_band_source

    container, _ = decoded_latents("golden-multi.nc", tiny_model)
    h = container.header
    assert (h.height, h.width, h.mode) == (1100, 70, ColorMode.RGBA)
    assert len(container.section(SectionType.Y)) == 2
    image = neuralcodec.decompress((FIXTURES / "golden-multi.nc").read_bytes(), model=tiny_model)
    source = multi_band_source()
    assert image.mode == "RGBA"
    assert np.array_equal(np.asarray(image.getchannel("A")), np.asarray(source.getchannel("A")))
    assert image.info["icc_profile"] == ICC
    exif = Image.Exif()
    exif.load(image.info["exif"])
    assert exif[0x010E] == "neuralcodec golden"


def test_format_1_files_get_a_message_naming_the_version():
    with pytest.raises(InvalidInputError, match="format version 1.*older"):
        neuralcodec.read_header((FIXTURES / "golden-v1.nc").read_bytes())


def test_z_offsets_of_format_2_weights_move_the_latents_of_the_same_symbols():
    """golden-offsets.nc decodes to other latents with the offsets taken away: they count."""
    container = unpack((FIXTURES / "golden-offsets.nc").read_bytes())
    h = container.header
    model = load_model(FIXTURES / "tiny-offsets.pt")
    assert model.z_offsets.any()
    z, y = container.section(SectionType.Z)[0], container.section(SectionType.Y)
    with_offsets = codec.decode_latents(model, z, y, h.height, h.width, h.band_rows)
    import dataclasses

    flat = dataclasses.replace(model, z_offsets=model.z_offsets * 0)
    try:
        without = codec.decode_latents(flat, z, y, h.height, h.width, h.band_rows)
    except InvalidInputError:
        return  # the symbols do not even decode under the integer-grid means
    assert not torch.equal(with_offsets, without)
