"""The metrics must be CompressAI's exactly, or our points would not sit on the published curves."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pytorch_msssim import ms_ssim

from benchmarks.metrics import compare, ms_ssim_rgb, msssim_db, psnr, psnr_from_mse, to_tensor


def test_psnr_of_known_mse(gen_image):
    img = gen_image(40, 56).astype(np.int16)
    shifted = np.clip(img + 3, 0, 255)
    exact_mse = float(np.mean((shifted - img) ** 2))  # 9 except where clipping at 255
    got = psnr(to_tensor(img.astype(np.uint8)), to_tensor(shifted.astype(np.uint8)))
    assert got == pytest.approx(10 * math.log10(255**2 / exact_mse), abs=1e-9)


def test_psnr_textbook_values():
    assert psnr_from_mse(1.0) == pytest.approx(48.1308036, abs=1e-6)  # 20·log10(255)
    assert psnr_from_mse(100.0) == pytest.approx(28.1308036, abs=1e-6)
    assert psnr_from_mse(0.0) == math.inf


def test_psnr_is_over_all_rgb_samples():
    a = np.zeros((8, 8, 3), np.uint8)
    b = a.copy()
    b[..., 0] = 30  # error only in red: MSE = 900 / 3
    assert psnr(to_tensor(a), to_tensor(b)) == pytest.approx(psnr_from_mse(300.0))


def test_ms_ssim_identical_is_one(gen_image):
    img = gen_image(176, 192)
    assert ms_ssim_rgb(to_tensor(img), to_tensor(img)) == pytest.approx(1.0, abs=1e-6)


def test_ms_ssim_matches_pytorch_msssim_directly(gen_image):
    a = gen_image(176, 192, seed=1)
    noise = np.random.default_rng(5).normal(0, 12, a.shape)
    b = np.clip(a + noise, 0, 255).astype(np.uint8)
    ref = ms_ssim(
        torch.from_numpy(a.copy()).permute(2, 0, 1)[None].float(),
        torch.from_numpy(b.copy()).permute(2, 0, 1)[None].float(),
        data_range=255,
    ).item()
    got = compare(a, b)
    assert got["ms-ssim-rgb"] == pytest.approx(ref, abs=1e-7)
    assert 0.5 < got["ms-ssim-rgb"] < 1.0


def test_ms_ssim_undefined_below_minimum_size(gen_image):
    img = gen_image(100, 200)
    assert math.isnan(ms_ssim_rgb(to_tensor(img), to_tensor(img)))


def test_msssim_db():
    assert msssim_db(0.9) == pytest.approx(10.0)
    assert msssim_db(0.99) == pytest.approx(20.0)
    assert math.isnan(msssim_db(math.nan))


def test_compare_rejects_shape_mismatch(gen_image):
    with pytest.raises(ValueError):
        compare(gen_image(20, 20), gen_image(20, 21))
