"""The numpy decoder: files of every image mode decode without torch, within one level per
sample of the torch decoder, and weights files read without torch equal torch.load's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import neuralcodec
from neuralcodec import numpy_decoder
from neuralcodec.errors import InvalidModelError, ModelMismatchError
from neuralcodec.weights_file import read_weights
from neuralcodec.zoo import WEIGHTS_DIR, available_models

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def float32_torch_transforms(monkeypatch) -> None:
    """The numpy decoder runs g_s in float32; compare it with the torch decoder in float32
    (on CPUs with bf16 the torch decoder would otherwise run bf16)."""
    monkeypatch.setenv("NEURALCODEC_TRANSFORMS", "float32")


def _same(expected, got, path="") -> int:
    """Assert torch.load's ``expected`` equals read_weights' ``got``; count the tensors."""
    if isinstance(expected, torch.Tensor):
        assert isinstance(got, np.ndarray) and got.dtype == expected.numpy().dtype, path
        assert np.array_equal(got, expected.numpy()), path
        return 1
    if isinstance(expected, dict):
        assert set(got) == set(expected), path
        return sum(_same(expected[k], got[k], f"{path}/{k}") for k in expected)
    if isinstance(expected, (list, tuple)):
        assert len(got) == len(expected), path
        return sum(_same(e, g, f"{path}[{i}]") for i, (e, g) in enumerate(zip(expected, got)))
    assert got == expected, path
    return 0


@pytest.mark.parametrize(
    "path",
    [FIXTURES / "tiny.pt", FIXTURES / "tiny-offsets.pt"]
    + [WEIGHTS_DIR / f"{name}.pt" for name in available_models()],
)
def test_weights_read_without_torch_equal_torch_load(path):
    assert _same(torch.load(path, map_location="cpu", weights_only=True), read_weights(path)) > 50


def test_anything_but_a_weights_file_is_refused(tmp_path):
    with pytest.raises(InvalidModelError):
        read_weights(b"not a zip")
    import os

    torch.save({"x": torch.ones(2), "f": os.getcwd}, tmp_path / "code.pt")  # a function: never run
    with pytest.raises(InvalidModelError, match="posix.getcwd|nt.getcwd"):
        read_weights(tmp_path / "code.pt")


def test_weights_whose_tensors_declare_too_many_bytes_are_refused_before_reading(monkeypatch):
    from neuralcodec import weights_file

    monkeypatch.setattr(weights_file, "MAX_STORAGE_BYTES", 1000)
    with pytest.raises(InvalidModelError, match="declare more than"):
        read_weights(FIXTURES / "tiny.pt")


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "LA"])
def test_pixels_are_within_one_level_of_the_torch_decoder(tiny_model, make_image, mode):
    rgb = make_image(70, 130, seed=11)
    image = Image.fromarray(rgb).convert(mode)
    data = neuralcodec.compress(image, 60, tiny_model, "cpu", effort=0)
    expected = neuralcodec.decompress(data, "cpu", tiny_model)
    got = numpy_decoder.decompress(data, tiny_model)
    assert got.mode == expected.mode == mode and got.size == expected.size
    difference = np.abs(np.asarray(got, dtype=int) - np.asarray(expected, dtype=int))
    assert difference.max() <= 1
    if "A" in mode:  # alpha is lossless
        assert np.array_equal(np.asarray(got)[..., -1], np.asarray(image)[..., -1])


def test_a_shipped_model_decodes_kodak_sized_files_to_the_same_psnr(make_image):
    if "mse" not in available_models():
        pytest.skip("no shipped mse weights in this checkout")
    rgb = make_image(256, 384, seed=5)
    data = neuralcodec.compress(rgb, 75, "mse", "cpu", effort=0)
    with torch.no_grad():
        expected = np.asarray(neuralcodec.decompress(data, "cpu"))
    got = np.asarray(numpy_decoder.decompress(data))  # the shipped model the header names

    def psnr(x: np.ndarray) -> float:
        return 10 * np.log10(255**2 / np.mean((x.astype(float) - rgb) ** 2))

    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
    assert psnr(got) == pytest.approx(psnr(expected), abs=0.01)


def test_the_wrong_decoder_is_named(tiny_model, make_image):
    data = neuralcodec.compress(make_image(64, 64, seed=1), 50, tiny_model, "cpu", effort=0)
    with pytest.raises(ModelMismatchError, match="decoder"):
        numpy_decoder.decompress(data, FIXTURES / "tiny-offsets.pt")


def test_decoding_never_imports_torch(tiny_model, make_image, tmp_path):
    path = tmp_path / "x.nc"
    path.write_bytes(neuralcodec.compress(make_image(64, 96, seed=2), 50, tiny_model, "cpu", effort=0))
    code = (
        "import sys; sys.modules['torch'] = None  # any import of torch fails\n"
        "from neuralcodec import numpy_decoder\n"
        f"image = numpy_decoder.decompress(open({str(path)!r}, 'rb').read(), {str(tiny_model)!r})\n"
        "assert image.size == (96, 64), image.size\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_the_package_reaches_the_numpy_decoder_without_torch(tiny_model, make_image, tmp_path):
    path = tmp_path / "y.nc"
    path.write_bytes(neuralcodec.compress(make_image(64, 64, seed=3), 50, tiny_model, "cpu", effort=0))
    code = (
        "import sys, neuralcodec\n"
        f"data = open({str(path)!r}, 'rb').read()\n"
        f"image = neuralcodec.numpy_decoder.decompress(data, {str(tiny_model)!r})\n"
        "assert image.size == (64, 64) and 'torch' not in sys.modules\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_tiled_synthesis_gives_the_whole_image_pixels(tiny_model, monkeypatch):
    from neuralcodec import numpy_synthesis

    state = read_weights(tiny_model)
    synthesis = numpy_synthesis.Synthesis.from_transforms(state["transforms"])
    channels = synthesis.deconvs[0][0].shape[0]
    y_hat = np.round(np.random.default_rng(3).normal(size=(1, channels, 13, 21)) * 4).astype(np.float32)
    monkeypatch.setattr(numpy_synthesis, "TILE", 1000)
    whole = synthesis(y_hat, 2.0, 200, 330)
    monkeypatch.setattr(numpy_synthesis, "TILE", 4)
    tiled = synthesis(y_hat, 2.0, 200, 330)
    assert whole.shape == (200, 330, 3)
    assert np.array_equal(tiled, whole)
    monkeypatch.setattr(numpy_synthesis, "HALO", 0)  # the test can fail: no halo leaves seams
    assert not np.array_equal(synthesis(y_hat, 2.0, 200, 330), whole)
