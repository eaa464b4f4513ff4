"""The numpy encoder: files of every image mode that both decoders read, close to the torch
encoder's at effort 0 (the same symbols but for float32 rounding), written without torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import neuralcodec
from neuralcodec import latent_codec, numpy_analysis, numpy_decoder, numpy_encoder
from neuralcodec.container import MAX_BAND_ROWS, SectionType, unpack
from neuralcodec.entropy_models import decode_groups
from neuralcodec.errors import InvalidModelError
from neuralcodec.latent_codec import band_rows_for
from neuralcodec.latent_codecs import file_latents
from neuralcodec.numpy_analysis import GDN, Analysis
from neuralcodec.quantisation import z_index
from neuralcodec.weights_file import read_weights
from neuralcodec.zoo import available_models


@pytest.fixture(autouse=True)
def float32_transforms(monkeypatch):
    """The torch encoder compared against runs its transforms in float32, as this one does."""
    monkeypatch.setenv("NEURALCODEC_TRANSFORMS", "float32")


def symbols(data: bytes, model) -> tuple[np.ndarray, np.ndarray]:
    """(z symbols, ŷ) a file decodes to."""
    container = unpack(data)
    h = container.header
    loaded = numpy_decoder.model_for(h, model)
    params, sections = loaded.entropy, container.model_sections()
    rows, cols = -(-h.height // 64), -(-h.width // 64)
    z_sym = decode_groups(sections[0], z_index(params.hyper_channels, rows, cols), params.z_tables)
    y_hat = file_latents(loaded, container)
    return z_sym, y_hat


def psnr(decoded: Image.Image, rgb: np.ndarray) -> float:
    error = np.asarray(decoded, dtype=np.float64) - rgb
    return float(10 * np.log10(255**2 / np.mean(error**2)))


def test_files_decode_with_both_decoders(tiny_models, make_image):
    rgb = make_image(70, 130, seed=4)
    data = numpy_encoder.compress(rgb, 60, tiny_models)
    by_torch = neuralcodec.decompress(data, "cpu", tiny_models)
    by_numpy = numpy_decoder.decompress(data, tiny_models)
    assert by_torch.size == by_numpy.size == (130, 70) and by_torch.mode == by_numpy.mode == "RGB"
    assert np.abs(np.asarray(by_torch, dtype=int) - np.asarray(by_numpy, dtype=int)).max() <= 1


@pytest.mark.parametrize("size", [(70, 130), (64, 1100)])  # 1100: two g_a tiles, as in torch
def test_symbols_equal_the_torch_encoders(tiny_models, make_image, size):
    rgb = make_image(*size, seed=6)
    ours = symbols(numpy_encoder.compress(rgb, 55, tiny_models), tiny_models)
    theirs = symbols(neuralcodec.compress(rgb, 55, tiny_models, "cpu", effort=0), tiny_models)
    for got, expected in zip(ours, theirs):
        assert got.shape == expected.shape and np.mean(got == expected) >= 0.999


def test_band_heights_follow_the_width_as_both_encoders_choose_them():
    heights = [band_rows_for(width, 192) for width in (768, 6000, 8192, 9000, 12000, 20000, 10**6)]
    assert heights == [MAX_BAND_ROWS, MAX_BAND_ROWS, MAX_BAND_ROWS, 14, 10, 6, 1]


def test_lower_bands_for_wide_images_change_the_sections_not_the_latents(
    tiny_architectures, make_image, monkeypatch
):
    rgb = make_image(200, 130, seed=4)  # 4 ẑ rows
    whole = {"torch": neuralcodec.compress(rgb, 60, tiny_architectures, "cpu", effort=0)}
    whole["numpy"] = numpy_encoder.compress(rgb, 60, tiny_architectures)
    monkeypatch.setattr(latent_codec, "BAND_PARAMETER_BYTES", 1)  # as if the image were very wide
    banded = {"torch": neuralcodec.compress(rgb, 60, tiny_architectures, "cpu", effort=0)}
    banded["numpy"] = numpy_encoder.compress(rgb, 60, tiny_architectures)
    for encoder, data in banded.items():
        assert unpack(whole[encoder]).header.band_rows == MAX_BAND_ROWS
        assert unpack(data).header.band_rows == 1 and len(unpack(data).model_sections()) > 2
        assert np.array_equal(
            symbols(data, tiny_architectures)[1], symbols(whole[encoder], tiny_architectures)[1]
        )


def test_tiles_change_nothing_but_rounding(tiny_model, make_image):
    rgb = make_image(150, 200, seed=8)
    transforms = read_weights(tiny_model)["transforms"]
    whole = Analysis.from_transforms(transforms)(rgb, 1.3)
    tiled = Analysis.from_transforms(transforms, tile=64)(rgb, 1.3)  # 4 × 4 tiles, halo 64
    for a, b in zip(whole, tiled):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "LA", "I;16"])
def test_every_image_mode_is_written_as_the_torch_encoder_writes_it(tiny_model, make_image, mode):
    rgb = make_image(48, 80, seed=9)
    if mode == "I;16":
        image = Image.fromarray(rgb[..., 0].astype(np.uint16) * 257)
    else:
        image = Image.fromarray(rgb).convert(mode)
        if "A" in mode:
            image.putalpha(Image.fromarray(np.tile(np.arange(80, dtype=np.uint8) * 3, (48, 1))))
    ours = unpack(numpy_encoder.compress(image, 70, tiny_model))
    theirs = unpack(neuralcodec.compress(image, 70, tiny_model, "cpu", effort=0))
    assert ours.header == theirs.header
    # Everything beside the latents is the same bytes (alpha, notes); the latents decode alike.
    assert [(t, d) for t, d in ours.sections if t > SectionType.Y] == [
        (t, d) for t, d in theirs.sections if t > SectionType.Y
    ]
    decoded = numpy_decoder.decompress(numpy_encoder.compress(image, 70, tiny_model), tiny_model)
    assert decoded.mode == ("L" if mode == "I;16" else mode)
    if "A" in mode:
        assert np.array_equal(np.asarray(decoded)[..., -1], np.asarray(image)[..., -1])


def test_metadata_travels(tiny_model, make_image):
    image = Image.fromarray(make_image(40, 40, seed=2))
    image.info["icc_profile"] = b"not really a profile"
    data = numpy_encoder.compress(image, 50, tiny_model)
    assert numpy_decoder.decompress(data, tiny_model).info["icc_profile"] == b"not really a profile"
    assert len(numpy_encoder.compress(image, 50, tiny_model, keep_metadata=False)) < len(data)


def test_a_shipped_model_gives_the_torch_encoders_size_and_psnr(make_image):
    if "mse" not in available_models():
        pytest.skip("no shipped mse weights in this checkout")
    rgb = make_image(128, 192, seed=5)
    ours = numpy_encoder.compress(rgb, 75, "mse")
    theirs = neuralcodec.compress(rgb, 75, "mse", "cpu", effort=0)
    assert abs(len(ours) / len(theirs) - 1) <= 0.005
    assert psnr(numpy_decoder.decompress(ours), rgb) == pytest.approx(
        psnr(numpy_decoder.decompress(theirs), rgb), abs=0.02
    )
    for got, expected in zip(symbols(ours, "mse"), symbols(theirs, "mse")):
        assert np.mean(got == expected) >= 0.999


def test_stats_estimate_the_coded_size(tiny_model, make_image):
    data, stats = numpy_encoder.compress_with_stats(make_image(64, 64, seed=3), 80, tiny_model)
    assert stats.file_bytes == len(data) and (stats.width, stats.height) == (64, 64)
    assert stats.actual_bits == pytest.approx(stats.estimated_bits, rel=0.05, abs=512)


@pytest.mark.parametrize("effort", [1, 9])
def test_effort_above_zero_needs_torch_and_says_so_in_one_line(tiny_model, make_image, effort):
    with pytest.raises(numpy_encoder.TorchRequiredError) as raised:
        numpy_encoder.compress(make_image(64, 64, seed=1), 50, tiny_model, effort=effort)
    message = str(raised.value)
    assert message.startswith(f"effort {effort} refines latents with torch; install torch (pip install")
    assert message.endswith("or use effort 0") and "\n" not in message


@pytest.mark.parametrize("bad", [10, -1, 1.5, True])
def test_efforts_that_do_not_exist_are_refused_as_the_torch_encoder_refuses_them(tiny_model, bad):
    with pytest.raises(ValueError, match="effort must be"):
        numpy_encoder.compress(np.zeros((8, 8, 3), np.uint8), 50, tiny_model, effort=bad)


def test_weights_that_do_not_load_are_reported_in_one_line(tmp_path, make_image):
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InvalidModelError, match="damaged.pt") as raised:
        numpy_encoder.compress(make_image(16, 16), 50, damaged)
    assert "\n" not in str(raised.value)


def test_encoding_never_imports_torch(tiny_model, make_image, tmp_path):
    path = tmp_path / "x.png"
    Image.fromarray(make_image(64, 96, seed=2)).convert("RGBA").save(path)
    code = (
        "import sys; sys.modules['torch'] = None  # any import of torch fails\n"
        "from neuralcodec import numpy_decoder, numpy_encoder\n"
        f"data = numpy_encoder.compress({str(path)!r}, 50, {str(tiny_model)!r})\n"
        f"image = numpy_decoder.decompress(data, {str(tiny_model)!r})\n"
        "assert image.size == (96, 64) and image.mode == 'RGBA', image\n"
        "try:\n"
        f"    numpy_encoder.compress({str(path)!r}, 50, {str(tiny_model)!r}, effort=1)\n"
        "except numpy_encoder.TorchRequiredError as e:\n"
        "    print(e)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("effort 1 refines latents with torch") and run.stdout.count("\n") == 1


def test_gdn_in_chunks_of_positions_is_the_formula(monkeypatch):
    rng = np.random.default_rng(2)
    gdn = GDN(rng.uniform(0.5, 2, 6).astype(np.float32), rng.uniform(0, 0.2, (6, 6)).astype(np.float32))
    x = rng.standard_normal((1, 6, 9, 11)).astype(np.float32)
    flat = x.reshape(6, -1).astype(np.float64)
    expected = (flat / np.sqrt(gdn.beta[:, None] + gdn.gamma.astype(np.float64) @ flat**2)).reshape(x.shape)
    monkeypatch.setattr(numpy_analysis, "GDN_BYTES", 4 * 6 * 7)  # 7 positions at a time: 15 chunks
    got = gdn(x.copy())
    assert got.shape == x.shape and got.dtype == np.float32
    assert np.allclose(got, expected, rtol=1e-5, atol=1e-6)
