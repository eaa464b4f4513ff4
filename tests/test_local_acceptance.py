"""local_acceptance: a decoded image's change of distortion, laid out over the y positions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuralcodec.local_acceptance import distortion_change_per_position
from neuralcodec.msssim import ms_ssim, ms_ssim_maps, ms_ssim_of_maps


def images(height: int, width: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth-ish target and a noisy 'before' decoding of it, (1, 3, h, w) in [0, 1]."""
    gen = torch.Generator().manual_seed(seed)
    target = torch.rand(1, 3, height // 8, width // 8, generator=gen)
    target = torch.nn.functional.interpolate(target, size=(height, width), mode="bilinear")
    before = (target + 0.05 * torch.randn(target.shape, generator=gen)).clamp(0, 1)
    return target, before


def mse_255(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).pow(2).mean()) * 255.0**2


def test_mse_changes_add_up_to_the_exact_change():
    target, before = images(64, 96)
    noise = torch.randn(before.shape, generator=torch.Generator().manual_seed(1))
    after = (before + 0.03 * noise).clamp(0, 1)
    changes = distortion_change_per_position("mse", before, after, target, (0, 0), (4, 6))
    assert changes.shape == (4, 6)
    exact = mse_255(after, target) - mse_255(before, target)
    assert changes.sum() == pytest.approx(exact, rel=1e-9, abs=1e-12)


def test_a_change_inside_one_cell_counts_there_alone_and_origin_shifts_the_grid():
    target, before = images(64, 96)
    after = before.clone()
    after[:, :, 20:28, 36:44] = target[:, :, 20:28, 36:44]  # better inside cell (1, 2) only
    changes = distortion_change_per_position("mse", before, after, target, (0, 0), (4, 6))
    assert changes[1, 2] < 0 and np.count_nonzero(changes) == 1
    # Scored pixels that start 16 pixels into the grid (a window's halo): one cell further.
    shifted = distortion_change_per_position("mse", before, after, target, (16, 16), (5, 7))
    assert shifted[2, 3] == pytest.approx(changes[1, 2]) and np.count_nonzero(shifted) == 1


def test_pixels_beyond_the_grid_count_to_its_edge():
    target, before = images(64, 64)
    after = before.clone()
    after[:, :, 60:, 60:] = target[:, :, 60:, 60:]
    changes = distortion_change_per_position("mse", before, after, target, (0, 0), (2, 2))
    assert changes[1, 1] < 0 and np.count_nonzero(changes) == 1


def test_ms_ssim_changes_add_up_to_the_first_order_change_and_stay_local():
    target, before = images(192, 192, seed=3)
    after = before.clone()
    after[:, :, 96:112, 64:80] = (before[:, :, 96:112, 64:80] + target[:, :, 96:112, 64:80]) / 2
    changes = distortion_change_per_position("ms-ssim", before, after, target, (0, 0), (12, 12))
    exact = float(ms_ssim(before, target) - ms_ssim(after, target))  # change of 1 − MS-SSIM
    assert exact < 0
    assert changes.sum() == pytest.approx(exact, rel=0.05)
    assert np.unravel_index(np.argmin(changes), changes.shape) == (6, 4)
    assert changes[6, 4] < 0.3 * exact  # most of it at the changed cell


def test_ms_ssim_maps_the_caller_has_give_the_same_changes_bit_for_bit():
    target, before = images(176, 208, seed=4)
    noise = torch.randn(before.shape, generator=torch.Generator().manual_seed(5))
    after = (before + 0.02 * noise).clamp(0, 1)
    maps = ms_ssim_maps(before, target), ms_ssim_maps(after, target)
    computed = distortion_change_per_position("ms-ssim", before, after, target, (0, 0), (11, 13))
    given = distortion_change_per_position("ms-ssim", before, after, target, (0, 0), (11, 13), maps)
    assert np.array_equal(given, computed)
    assert torch.equal(ms_ssim_of_maps(maps[1]), ms_ssim(after, target))
    # the maps given are what counts: the other way round they describe the opposite change
    swapped = distortion_change_per_position("ms-ssim", before, after, target, (0, 0), (11, 13), maps[::-1])
    assert not np.array_equal(swapped, computed)


def test_unknown_metrics_are_refused():
    target, before = images(32, 32)
    with pytest.raises(ValueError, match="unknown metric"):
        distortion_change_per_position("psnr", before, before, target, (0, 0), (2, 2))
