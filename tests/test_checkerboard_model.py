"""A checkerboard model through everything a user touches: every image mode, efforts, rate
control, two latent bands, the Pillow plugin, ``ncodec``, and hostile files of the new kind."""

from __future__ import annotations

import numpy as np
import pytest
from checkerboard_weights import write_checkerboard
from PIL import Image

import neuralcodec
from neuralcodec.container import SectionType, pack, unpack
from neuralcodec.errors import InvalidInputError

BACKENDS = ["torch", "numpy"]


@pytest.fixture(scope="module")
def model(tmp_path_factory, tiny_model):
    return write_checkerboard(tiny_model, tmp_path_factory.mktemp("cb") / "cb.pt", seed=11)


def round_trip(image, model, backend: str, **kwargs) -> Image.Image:
    data = neuralcodec.compress(image, 60, model, "cpu", **kwargs)
    header = unpack(data).header
    assert (header.format_version, header.architecture) == (3, "mean-scale-checkerboard")
    return neuralcodec.decompress(data, "cpu", model, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "LA", "I;16"])
def test_every_image_mode(model, make_image, mode, backend):
    rgb = make_image(70, 90, seed=2)
    image = Image.fromarray(rgb).convert(mode if mode != "I;16" else "I").convert(mode)
    if mode in ("RGBA", "LA"):
        image.putalpha(Image.fromarray((rgb[:, :, 0] // 2).copy()))
    decoded = round_trip(image, model, backend, effort=0)
    expected = {"I;16": "L"}.get(mode, mode)  # 16-bit input is coded at 8 bits (a NOTE says so)
    assert decoded.mode == expected and decoded.size == (90, 70)
    if mode in ("RGBA", "LA"):
        assert np.array_equal(np.asarray(decoded.getchannel("A")), rgb[:, :, 0] // 2)


def test_two_bands_and_a_refining_effort(model, make_image):
    """1100 rows: two bands of 1024 pixels, whose halo of anchors crosses the boundary."""
    rgb = make_image(1100, 72, seed=3)
    data = neuralcodec.compress(rgb, 60, model, "cpu", effort=1)
    assert len(unpack(data).model_sections()) == 1 + 2 * 2
    by_torch = np.asarray(neuralcodec.decompress(data, "cpu", model, backend="torch"), dtype=int)
    by_numpy = np.asarray(neuralcodec.decompress(data, model=model, backend="numpy"), dtype=int)
    assert by_torch.shape == (1100, 72, 3) and np.abs(by_torch - by_numpy).max() <= 8


def test_rate_control_meets_a_size(model, make_image):
    rgb = make_image(96, 128, seed=4)
    sizes = [len(neuralcodec.compress(rgb, q, model, "cpu", effort=0)) for q in (0, 100)]
    target = (sizes[0] + sizes[1]) // 2  # the tiny model's files hardly grow with quality
    data = neuralcodec.compress(rgb, model=model, device="cpu", effort=0, target_size=target)
    assert len(data) <= target and unpack(data).header.architecture == "mean-scale-checkerboard"


def test_pillow_plugin_saves_and_opens(model, make_image, tmp_path, monkeypatch):
    import neuralcodec.pillow_plugin  # noqa: F401  (registers the format)

    monkeypatch.setenv("NEURALCODEC_WEIGHTS_PATH", str(tmp_path))
    path = tmp_path / "x.nc"
    Image.fromarray(make_image(64, 96, seed=5)).save(path, quality=70, model=model, effort=0)
    with Image.open(path) as im:
        assert im.format == "NC" and im.size == (96, 64)


def test_ncodec_info_and_decompress(model, make_image, tmp_path):
    from neuralcodec.cli import main

    Image.fromarray(make_image(64, 80, seed=6)).save(tmp_path / "in.png")
    assert (
        main(["compress", str(tmp_path / "in.png"), str(tmp_path / "x.nc"), "--model", str(model), "-e", "0"])
        == 0
    )
    assert main(["decompress", str(tmp_path / "x.nc"), str(tmp_path / "out.png"), "--model", str(model)]) == 0
    assert Image.open(tmp_path / "out.png").size == (80, 64)


@pytest.fixture(scope="module")
def valid(model):
    from make_fixtures import synthetic_image

    return neuralcodec.compress(synthetic_image(150, 90, seed=7), 60, model, "cpu", effort=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_truncation_is_refused(valid, model, backend):
    for cut in range(0, len(valid), max(1, len(valid) // 97)):
        with pytest.raises(InvalidInputError):
            neuralcodec.decompress(valid[:cut], "cpu", model, backend=backend)


def repacked(valid: bytes, edit) -> bytes:
    """The file with its sections edited and its table and checksums rebuilt to match."""
    container = unpack(valid)
    container.sections = edit(container.sections)
    return pack(container)


def overwrite(index: int, at: int, value: bytes):
    """An edit that writes ``value`` into MODEL section ``index`` at ``at`` (wrapped to fit)."""

    def edit(sections):
        kind, data = sections[index]
        pos = at % max(1, len(data) - len(value))
        return [
            *sections[:index],
            (kind, data[:pos] + value + data[pos + len(value) :]),
            *sections[index + 1 :],
        ]

    return edit


def damaged_sections(valid: bytes):
    rng = np.random.default_rng(0)
    for index in range(len(unpack(valid).model_sections())):
        for _ in range(6):
            yield overwrite(
                index, int(rng.integers(0, 1 << 20)), bytes(rng.integers(0, 256, 4, dtype=np.uint8))
            )
    yield lambda s: s[:1] + s[2:]  # a section missing
    yield lambda s: [s[0], s[2], s[1], *s[3:]]  # two sections swapped
    yield lambda s: [*s[:3], (SectionType.MODEL, b""), *s[3:]]  # one too many


@pytest.mark.parametrize("backend", BACKENDS)
def test_damaged_model_sections_with_valid_checksums_are_refused_or_decode_as_declared(valid, model, backend):
    header = unpack(valid).header
    for edit in damaged_sections(valid):
        data = repacked(valid, edit)
        try:
            image = neuralcodec.decompress(data, "cpu", model, backend=backend)
        except InvalidInputError:
            continue
        assert image.size == (header.width, header.height)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("architecture", ["mean-scale-hyperprior", "no-such-architecture"])
def test_a_header_naming_another_architecture_is_refused(valid, model, architecture, backend):
    container = unpack(valid)
    container.header.architecture = architecture
    with pytest.raises(InvalidInputError, match="stream|sections"):
        neuralcodec.decompress(pack(container), "cpu", model, backend=backend)


def test_refinement_scores_the_checkerboard_rate_and_is_the_default(model, make_image):
    """Refinement scores this architecture's own rate, so its best candidate is what the file
    holds (neuralcodec.refinement.checkerboard_rate), and the default effort is the metric's."""
    from neuralcodec import coding, refine
    from neuralcodec.models import checkerboard
    from neuralcodec.zoo import load_model

    loaded = load_model(model)
    rgb = make_image(64, 96, seed=8)
    refine.TRACE = []
    try:
        coded = checkerboard.encode(loaded, rgb[None], 60, "cpu", effort=2)[0]
        trace = list(refine.TRACE)
    finally:
        refine.TRACE = None
    assert coded.estimated_bits / (64 * 96) == pytest.approx(min(trace, key=lambda t: t[1])[2], rel=1e-9)
    assert coding.default_effort(96, 64, "mse", "mean-scale-checkerboard") == 2
    default = neuralcodec.compress(rgb, 60, model, "cpu")
    assert default == neuralcodec.compress(rgb, 60, model, "cpu", effort=2)
