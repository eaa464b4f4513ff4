"""Where a round of greedy rounding helped: its change of distortion per latent position.

A round of greedy rounding moves many residuals at once from a model that sees each flip
alone; where flips that fix the same error meet, the round can make the picture worse in one
place while it helps in another. Its exact score decodes the image after the round, so the
change of distortion can be laid out over the y positions (16 × 16-pixel cells) and, with
each position's exact change of bits, the round kept only where it helped
(``greedy_rounding.GreedySettings.keep_where_helped``).

- ``mse``: the change of every pixel's squared error, summed per cell; the cells' changes
  add up to the image's change exactly.
- ``ms-ssim``: 1 − MS-SSIM is a product over scales of map means, so its change is taken to
  first order: ΔD ≈ −(1/C) Σ_c MS_c Σ_s w_s · Δmean_{s,c} / mean_{s,c}, each scale's map
  change assigned to the cell its pixel is centred on. The cells' changes add up to that
  first-order change.

A flip's picture reaches a few pixels into the next cells, so the split is only approximate
near a cell's edges; refinement scores what it keeps exactly. Splitting MS-SSIM's change per
pixel instead (½(∇D(before) + ∇D(after)) · Δx, each pixel to its own cell, so the coarse scales
are not pinned to one cell) kept about the same flips (``msssim`` effort 1, 8 Kodak
encodes: J −1.651 % against −1.626 %), so the maps' split stays.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from neuralcodec.metrics import MS_SSIM_WEIGHTS, WINDOW_SIZE
from neuralcodec.msssim import ms_ssim_maps

CELL = 16  # pixels per y position along each axis

MEAN_MIN = 1e-6  # a map mean below this is taken as this (the linearisation divides by it)


def _cell_ids(
    centres_rows: np.ndarray, centres_cols: np.ndarray, origin: tuple[int, int], grid: tuple[int, int]
) -> np.ndarray:
    """Flat cell index of each (row, col) pixel centre (image coordinates), clipped into ``grid``."""
    rows = np.clip(((centres_rows + origin[0]) // CELL).astype(np.int64), 0, grid[0] - 1)
    cols = np.clip(((centres_cols + origin[1]) // CELL).astype(np.int64), 0, grid[1] - 1)
    return (rows[:, None] * grid[1] + cols[None, :]).ravel()


def _map_centres(length: int, full_length: int, scale: int) -> np.ndarray:
    """Full-resolution centres of a scale's map pixels along one axis (``ms_ssim_maps``)."""
    smoothed = full_length // scale >= WINDOW_SIZE
    return (np.arange(length) + (WINDOW_SIZE // 2 if smoothed else 0) + 0.5) * scale


def distortion_change_per_position(
    metric: str,
    before: Tensor,
    after: Tensor,
    target: Tensor,
    origin: tuple[int, int],
    grid: tuple[int, int],
    maps: tuple[list[Tensor], list[Tensor]] | None = None,
) -> np.ndarray:
    """The change of D (as ``refine`` measures it: MSE·255², or 1 − MS-SSIM) from ``before`` to
    ``after``, split over a grid of y positions, float64 of shape ``grid``.

    ``before``, ``after``, ``target``: (1, C, h, w) images of the scored pixels in [0, 1];
    ``origin``: the scored pixels' top-left in the grid's pixel coordinates (position (i, j)
    covers pixels 16i..16i+15, 16j..16j+15); pixels outside the grid count to its nearest edge
    position. The sum over the grid is the exact change for ``mse`` and its first-order
    estimate for ``ms-ssim``. ``maps``: for ``ms-ssim``, ``ms_ssim_maps`` of ``before`` and of
    ``after`` against ``target`` (float32) where the caller has them already; the result is the
    same, bit for bit, as when they are computed here.
    """
    height, width = target.shape[2:]
    out = np.zeros(grid[0] * grid[1])
    if metric == "mse":
        after, before, target = after.double(), before.double(), target.double()
        squared_error_change = (after - target).pow(2) - (before - target).pow(2)
        change = squared_error_change.mean(1)[0] * (255.0**2 / (height * width))
        ids = _cell_ids(np.arange(height) + 0.5, np.arange(width) + 0.5, origin, grid)
        np.add.at(out, ids, change.cpu().numpy().ravel())
        return out.reshape(grid)
    if metric != "ms-ssim":
        raise ValueError(f"unknown metric {metric!r}")
    if maps is None:
        with torch.no_grad():  # float32 maps (float64 grouped filters are many times slower on CPUs)
            maps = ms_ssim_maps(before.float(), target.float()), ms_ssim_maps(after.float(), target.float())
    maps_before = [m.double() for m in maps[0]]
    maps_after = [m.double() for m in maps[1]]
    means = torch.stack([m.flatten(2).mean(-1)[0] for m in maps_before]).clamp_min(MEAN_MIN)  # (S, C)
    weights = torch.tensor(MS_SSIM_WEIGHTS, dtype=torch.float64).view(-1, 1)
    per_channel = torch.prod(means**weights, dim=0)  # MS_c
    channels = target.shape[1]
    for s, (m_before, m_after) in enumerate(zip(maps_before, maps_after, strict=True)):
        coef = -(per_channel * weights[s] / means[s]) / channels  # ∂D/∂mean_{s,c}
        rows, cols = m_before.shape[2:]
        delta = ((m_after - m_before)[0] * coef.view(-1, 1, 1)).sum(0) / (rows * cols)
        scale = 2**s
        ids = _cell_ids(_map_centres(rows, height, scale), _map_centres(cols, width, scale), origin, grid)
        np.add.at(out, ids, delta.cpu().numpy().ravel())
    return out.reshape(grid)
