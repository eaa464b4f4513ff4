"""Rate control (neuralcodec.rate_control) and the runtime metrics it measures with (neuralcodec.metrics)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from neuralcodec import api, metrics, msssim, rate_control
from neuralcodec.errors import InvalidInputError
from neuralcodec.rate_control import TargetUnreachableError, compress_to_target
from neuralcodec.zoo import DEFAULT_MODEL

# --------------------------------------------------------------------------- metrics


@pytest.mark.parametrize("shape", [(161, 161), (170, 203), (256, 192), (331, 257)])
def test_ms_ssim_matches_pytorch_msssim(make_image, shape):
    import torch
    from pytorch_msssim import ms_ssim

    a = make_image(*shape, seed=3)
    rng = np.random.default_rng(shape[0])
    for noise in (3, 15):
        b = np.clip(a.astype(int) + rng.normal(0, noise, a.shape), 0, 255).astype(np.uint8)
        t = lambda x: torch.from_numpy(x).permute(2, 0, 1)[None].float()  # noqa: E731
        expected = ms_ssim(t(a), t(b), data_range=255).item()
        assert msssim.ms_ssim_images(a, b) == pytest.approx(expected, abs=2e-6)
    assert msssim.ms_ssim_images(a, a) == pytest.approx(1.0, abs=1e-6)


def test_ms_ssim_needs_161_pixels_per_side(make_image):
    a = make_image(160, 300)
    with pytest.raises(InvalidInputError, match="161"):
        msssim.ms_ssim_images(a, a)


def test_psnr(make_image):
    a = make_image(40, 50)
    b = a.copy()
    b[0, 0, 0] ^= 1
    assert metrics.psnr(a, a) == math.inf
    assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(255**2 / (1 / a.size)))
    with pytest.raises(ValueError):
        metrics.psnr(a, a[:-1])


def test_runtime_metrics_do_not_import_benchmark_code():
    import subprocess
    import sys

    code = (
        "import sys, numpy as np; from neuralcodec import metrics, msssim, rate_control\n"
        "a = np.zeros((170, 170, 3), np.uint8); msssim.ms_ssim_images(a, a)\n"
        "banned = {'pytorch_msssim', 'compressai', 'benchmarks'}\n"
        "assert not banned & {m.split('.')[0] for m in sys.modules}"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# --------------------------------------------------------------------------- the search, on a fake codec


class FakeCodec:
    """compress_with_stats / decompress stand-ins: bytes = 1000·e^(0.02 q), PSNR = 20 + q/10 dB."""

    def __init__(self, monkeypatch, noise: float = 0.0, refined_size: float = 0.95):
        import neuralcodec.coding as coding

        self.calls: list[float] = []
        self.efforts: list[int] = []
        self.rng = np.random.default_rng(0)
        self.noise = noise
        self.refined_size = refined_size  # file size factor of an effort above 0
        monkeypatch.setattr(coding, "compress_with_stats", self.compress_with_stats)
        monkeypatch.setattr(coding, "decompress", self.decompress)
        monkeypatch.setattr(metrics, "psnr", lambda a, b: self.psnr)

    def size(self, q: float) -> int:
        return round(1000 * math.exp(0.02 * q) * (1 + self.noise * self.rng.uniform(-1, 1)))

    def compress_with_stats(self, image, quality, *args, effort=0, **kwargs):
        self.calls.append(quality)
        self.efforts.append(effort)
        self.psnr = 20 + quality / 10 + (0.1 if effort else 0.0)
        return b"x" * round(self.size(quality) * (self.refined_size if effort else 1.0)), None

    def decompress(self, data, *args, **kwargs):
        return Image.new("RGB", (8, 8))


@pytest.fixture
def small():
    return np.zeros((8, 8, 3), np.uint8)


@pytest.mark.parametrize("target", [1100, 2000, 3456, 7000])
def test_size_search_fits_within_tolerance_in_few_passes(monkeypatch, small, target):
    fake = FakeCodec(monkeypatch)
    found = compress_to_target(small, target_size=target)
    assert 0.98 * target <= len(found.data) <= target
    assert found.passes == len(fake.calls) <= 5
    assert len(set(fake.calls)) == len(fake.calls)  # every pass is new (cached)
    assert found.value == len(found.data) and found.quality == fake.calls[fake.calls.index(found.quality)]


def test_size_search_edges(monkeypatch, small):
    fake = FakeCodec(monkeypatch)
    found = compress_to_target(small, target_size=10**6)  # above quality 100: the best file
    assert found.quality == 100 and found.passes == 2
    with pytest.raises(TargetUnreachableError, match="quality 0 gives 1000 bytes") as info:
        compress_to_target(small, target_size=900)
    assert info.value.closest.quality == 0 and isinstance(info.value, ValueError)
    assert 0.0 in fake.calls


def test_size_search_survives_a_noisy_curve(monkeypatch, small):
    FakeCodec(monkeypatch, noise=0.01)
    found = compress_to_target(small, target_size=3000)
    assert len(found.data) <= 3000 and found.passes <= 12


@pytest.mark.parametrize("target", [20.0, 24.33, 29.5])
def test_psnr_search_reaches_the_target_with_the_smallest_file(monkeypatch, small, target):
    fake = FakeCodec(monkeypatch)
    found = compress_to_target(small, target_psnr=target)
    assert target <= found.value <= target + 0.05 + 1e-9
    assert found.passes <= 5 and found.passes == len(fake.calls)
    with pytest.raises(TargetUnreachableError, match="quality 100 gives 30.00 dB"):
        compress_to_target(small, target_psnr=31)


def test_at_an_effort_the_search_runs_single_pass_then_lands_in_few_slow_passes(monkeypatch, small):
    fake = FakeCodec(monkeypatch)
    found = compress_to_target(small, target_size=3456, effort=None)  # the default model's default
    default = api.default_effort(8, 8, api.loaded_model(DEFAULT_MODEL).config.metric)
    slow = [q for q, e in zip(fake.calls, fake.efforts) if e]
    assert default > 0 and set(fake.efforts) == {0, default} and fake.efforts.index(default) > 0
    assert 1 <= len(slow) <= 2 and found.passes == len(fake.calls)
    assert 0.98 * 3456 <= len(found.data) <= 3456
    assert found.quality in slow and len(found.data) == round(fake.size(found.quality) * 0.95)
    fake.calls.clear()
    fake.efforts.clear()
    found = compress_to_target(small, target_psnr=24.33, effort=3)
    assert 24.33 <= found.value <= 24.33 + 0.05 + 1e-9 and fake.efforts[-1] == 3
    assert sum(1 for e in fake.efforts if e) <= 2


def test_when_refinement_misses_the_target_the_single_pass_answer_is_kept(monkeypatch, small):
    # Refinement that spends bits: with a consistent shift the refined search adapts ...
    fake = FakeCodec(monkeypatch, refined_size=1.5)
    found = compress_to_target(small, target_size=3000, effort=2)
    assert 0.98 * 3000 <= len(found.data) <= 3000 and fake.efforts[fake.calls.index(found.quality)] == 2
    # ... but where no refined file fits at all, the single-pass answer is kept.
    fake = FakeCodec(monkeypatch, refined_size=10)
    found = compress_to_target(small, target_size=3000, effort=2)
    assert len(found.data) <= 3000 and len(found.data) == fake.size(found.quality)
    assert sum(1 for e in fake.efforts if e) <= rate_control.REFINED_MAX_PASSES
    assert found.passes == len(fake.calls)


def test_at_an_effort_a_target_only_refinement_reaches_is_met_and_the_closest_pass_named(monkeypatch, small):
    FakeCodec(monkeypatch)  # quality 0: 1000 bytes single-pass, 950 refined
    found = compress_to_target(small, target_size=960, effort=2)
    assert found.quality == 0 and len(found.data) == 950
    with pytest.raises(TargetUnreachableError, match="quality 0 gives 950 bytes") as info:
        compress_to_target(small, target_size=900, effort=2)
    assert info.value.closest.value == 950


def test_a_bad_effort_is_refused_before_any_pass(monkeypatch, small):
    fake = FakeCodec(monkeypatch)
    with pytest.raises(ValueError, match="effort"):
        compress_to_target(small, target_size=2000, effort=12)
    assert fake.calls == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"target_size": 100, "target_psnr": 30},
        {"target_size": 0},
        {"target_size": 10.5},
        {"target_psnr": -1},
        {"target_ms_ssim": 1.0},
        {"target_psnr": "30"},
    ],
)
def test_bad_targets(small, kwargs):
    with pytest.raises(ValueError):
        compress_to_target(small, **kwargs)


# --------------------------------------------------------------------------- a real model


@pytest.fixture(scope="module")
def photo():
    """Shipped models have a real rate curve on this image (the tiny test model's is flat)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
    from make_fixtures import synthetic_image

    return synthetic_image(176, 176, seed=1)


def test_real_model_size_and_ms_ssim_targets(photo):
    from neuralcodec import decompress

    found = compress_to_target(photo, target_size=4000, model="msssim")
    assert 3600 <= len(found.data) <= 4000 and found.passes <= 6
    found = compress_to_target(photo, target_ms_ssim=0.945, model="msssim")
    decoded = np.asarray(decompress(found.data).convert("RGB"))
    assert msssim.ms_ssim_images(photo, decoded) == pytest.approx(found.value) and found.value >= 0.945
    assert found.passes <= 8
    with pytest.raises(InvalidInputError, match="161"):
        compress_to_target(photo[:100], target_ms_ssim=0.9, model="msssim")
