"""Fixtures for the benchmark tests: generated images only (no real photos, no network)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def generated_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth gradients, a few edges and mild noise: compresses like a (very simple) photo."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 128 + 90 * np.sin(xx / (9.0 + seed)) * np.cos(yy / 15.0)
    g = 128 + 80 * np.cos((xx + 2 * yy) / 27.0)
    b = np.where((xx // 24 + yy // 24) % 2 == 0, 190.0, 70.0)
    img = np.stack([r, g, b], axis=2) + rng.normal(0, 4, (height, width, 3))
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def write_dataset(folder: Path, count: int = 3, height: int = 168, width: int = 176) -> Path:
    """A folder of PNGs just above MS-SSIM's 161-pixel minimum, so every metric is defined."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(generated_image(height, width, seed=i)).save(folder / f"img{i:02d}.png")
    return folder


@pytest.fixture
def gen_image():
    return generated_image


@pytest.fixture
def bench_dataset(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "images")


class FakeNeuralcodec:
    """The neuralcodec API surface the adapter relies on, backed by JPEG."""

    def __init__(self, models=("fake",)):
        self.models = list(models)
        self.calls = []

    def available_models(self):
        return self.models

    def compress(self, image, quality=75, model="fake", device="auto"):
        self.calls.append(("compress", quality, model, device))
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=int(quality))
        return buf.getvalue()

    def decompress(self, data, device="auto"):
        self.calls.append(("decompress", device))
        return Image.open(io.BytesIO(data))


@pytest.fixture
def fake_neuralcodec():
    return FakeNeuralcodec
