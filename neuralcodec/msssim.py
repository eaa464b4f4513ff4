"""Differentiable MS-SSIM in torch, for the runtime (latent refinement at ``effort`` > 0).

Standard Wang et al. (2003): 5 scales, 11-tap Gaussian window with σ = 1.5 (separable,
'valid' filtering), K = (0.01, 0.03), scale weights (0.0448, 0.2856, 0.3001, 0.2363,
0.1333), contrast-structure terms clamped at 0, 2×2 average pooling between scales with
odd sides zero-padded. On images whose smaller side exceeds 160 pixels it equals
``pytorch_msssim.ms_ssim`` (tested); smaller images are handled like pytorch_msssim
handles a dimension shorter than the window at any scale: that dimension is not smoothed
(pytorch_msssim itself refuses such images). It depends on torch only.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from neuralcodec.errors import InvalidInputError
from neuralcodec.metrics import K1, K2, MS_SSIM_MIN_SIDE, WINDOW_SIGMA, WINDOW_SIZE, check_pair
from neuralcodec.metrics import MS_SSIM_WEIGHTS as WEIGHTS


def _window(dtype: torch.dtype, device: torch.device) -> Tensor:
    coords = torch.arange(WINDOW_SIZE, dtype=torch.float32) - WINDOW_SIZE // 2
    g = torch.exp(-(coords**2) / (2 * WINDOW_SIGMA**2))
    return (g / g.sum()).to(device=device, dtype=dtype)


def _blur(x: Tensor, win: Tensor) -> Tensor:
    """Separable 'valid' Gaussian filter; a dimension shorter than the window is left as is."""
    channels = x.shape[1]
    if x.shape[2] >= WINDOW_SIZE:
        x = F.conv2d(x, win.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
    if x.shape[3] >= WINDOW_SIZE:
        x = F.conv2d(x, win.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return x


def _ssim_maps(x: Tensor, y: Tensor, win: Tensor, data_range: float) -> tuple[Tensor, Tensor]:
    """Per-pixel SSIM and contrast-structure maps ('valid' filtering: smaller than the input)."""
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    channels = x.shape[1]
    # One grouped filter pass over the five local statistics instead of five passes.
    stats = _blur(torch.cat([x, y, x * x, y * y, x * y], dim=1), win).split(channels, dim=1)
    mu1, mu2, xx, yy, xy = stats
    mu1_sq, mu2_sq, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1_sq = xx - mu1_sq
    sigma2_sq = yy - mu2_sq
    sigma12 = xy - mu12
    cs_map = (2 * sigma12 + c2) / (sigma1_sq + sigma2_sq + c2)
    ssim_map = (2 * mu12 + c1) / (mu1_sq + mu2_sq + c1) * cs_map
    return ssim_map, cs_map


def ms_ssim_maps(x: Tensor, y: Tensor, data_range: float = 1.0) -> list[Tensor]:
    """The maps whose (B, C) means MS-SSIM raises to ``MS_SSIM_WEIGHTS`` and multiplies:
    contrast-structure at scales 1–4, SSIM at scale 5, each (B, C, h_s, w_s).

    Map pixel j of scale s (0-based) is centred near full-resolution pixel
    (j + 5 + ½)·2^s along a dimension of at least 11 pixels at that scale, (j + ½)·2^s along
    a shorter one (not smoothed).
    """
    win = _window(x.dtype, x.device)
    maps = []
    for level in range(len(WEIGHTS)):
        ssim, cs = _ssim_maps(x, y, win, data_range)
        if level < len(WEIGHTS) - 1:
            maps.append(cs)
            padding = [s % 2 for s in x.shape[2:]]
            x = F.avg_pool2d(x, kernel_size=2, padding=padding)
            y = F.avg_pool2d(y, kernel_size=2, padding=padding)
    maps.append(ssim)
    return maps


def ms_ssim(x: Tensor, y: Tensor, data_range: float = 1.0) -> Tensor:
    """MS-SSIM per image, shape (B,), of (B, C, H, W) tensors; differentiable in both inputs.

    Values lie in [0, 1] (1 for identical inputs); channels are averaged after the product
    over scales, as pytorch_msssim does.
    """
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"expected two (B, C, H, W) tensors of one shape, got {x.shape} and {y.shape}")
    return ms_ssim_of_maps(ms_ssim_maps(x, y, data_range))


def ms_ssim_of_maps(maps: list[Tensor]) -> Tensor:
    """MS-SSIM per image, shape (B,), from the maps of :func:`ms_ssim_maps`: the same value,
    bit for bit, as :func:`ms_ssim` of the images they came from."""
    terms = [torch.relu(m.flatten(2).mean(-1)) for m in maps]
    stacked = torch.stack(terms, dim=0)  # (levels, B, C)
    weights = maps[0].new_tensor(WEIGHTS)
    return torch.prod(stacked ** weights.view(-1, 1, 1), dim=0).mean(1)


def ms_ssim_images(a: np.ndarray, b: np.ndarray) -> float:
    """MS-SSIM of two (H, W, 3) uint8 RGB images, data range 255 (see the module docstring).

    Computed by :func:`ms_ssim` (the differentiable implementation refinement uses), one
    channel at a time to keep the float32 temporaries small. Images whose smaller side is
    below MS_SSIM_MIN_SIDE (161) have no 5-scale MS-SSIM: that is an InvalidInputError.
    """
    check_pair(a, b)
    if min(a.shape[:2]) < MS_SSIM_MIN_SIDE:
        raise InvalidInputError(
            f"MS-SSIM needs images of at least {MS_SSIM_MIN_SIDE} pixels per side, "
            f"got {a.shape[1]}x{a.shape[0]}"
        )
    per_channel = []
    with torch.no_grad():
        for c in range(3):
            x = torch.from_numpy(np.ascontiguousarray(a[:, :, c])).float()[None, None]
            y = torch.from_numpy(np.ascontiguousarray(b[:, :, c])).float()[None, None]
            per_channel.append(float(ms_ssim(x, y, data_range=255.0)))
    return sum(per_channel) / 3
