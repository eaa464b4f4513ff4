"""PSNR and MS-SSIM of decoded images, for rate control (no dependency beyond torch and numpy).

MS-SSIM is the standard definition of Wang, Simoncelli and Bovik (2003) as computed by
``pytorch_msssim.ms_ssim(data_range=255)``, which CompressAI and our benchmarks use: 5 scales
with weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), an 11-tap Gaussian window with σ = 1.5
applied separably without padding, K = (0.01, 0.03), 2×2 average pooling between scales
(zero padding on odd sides), contrast-structure terms clamped at 0, averaged over RGB channels.
tests/test_rate_control.py checks it against pytorch_msssim.
"""

from __future__ import annotations

import math

import numpy as np

from neuralcodec.errors import InvalidInputError

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WINDOW_SIZE = 11
WINDOW_SIGMA = 1.5
# Four halvings must leave the 11-tap window room: the smaller side must exceed (11 - 1) * 2**4.
MS_SSIM_MIN_SIDE = (WINDOW_SIZE - 1) * 2 ** (len(MS_SSIM_WEIGHTS) - 1) + 1


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) RGB arrays, got shape {a.shape}")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """RGB PSNR in dB of two (H, W, 3) uint8 images (MSE over all samples; +inf when equal)."""
    _check_pair(a, b)
    total = 0
    for row in range(0, a.shape[0], 256):  # exact integer sum, bounded temporary memory
        diff = a[row : row + 256].astype(np.int64) - b[row : row + 256]
        total += int(np.sum(diff * diff))
    if total == 0:
        return math.inf
    return 20 * math.log10(255.0) - 10 * math.log10(total / a.size)


def _window():
    import torch

    coords = torch.arange(WINDOW_SIZE, dtype=torch.float32) - WINDOW_SIZE // 2
    g = torch.exp(-(coords**2) / (2 * WINDOW_SIGMA**2))
    return g / g.sum()


def _blur(x, win):
    """Separable Gaussian, 'valid' (no padding): (1, 1, H, W) -> (1, 1, H-10, W-10)."""
    import torch.nn.functional as F

    x = F.conv2d(x, win.view(1, 1, 1, -1))
    return F.conv2d(x, win.view(1, 1, -1, 1))


def _ssim_terms(x, y, win, data_range: float) -> tuple[float, float]:
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu1, mu2 = _blur(x, win), _blur(y, win)
    mu1_sq, mu2_sq, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1_sq = _blur(x * x, win) - mu1_sq
    sigma2_sq = _blur(y * y, win) - mu2_sq
    sigma12 = _blur(x * y, win) - mu12
    cs_map = (2 * sigma12 + c2) / (sigma1_sq + sigma2_sq + c2)
    ssim_map = (2 * mu12 + c1) / (mu1_sq + mu2_sq + c1) * cs_map
    return float(ssim_map.mean()), float(cs_map.mean())


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """MS-SSIM of two (H, W, 3) uint8 RGB images, data range 255 (see the module docstring).

    Images whose smaller side is below MS_SSIM_MIN_SIDE (161) have no 5-scale MS-SSIM: that is
    an InvalidInputError.
    """
    import torch
    import torch.nn.functional as F

    _check_pair(a, b)
    if min(a.shape[:2]) < MS_SSIM_MIN_SIDE:
        raise InvalidInputError(
            f"MS-SSIM needs images of at least {MS_SSIM_MIN_SIDE} pixels per side, "
            f"got {a.shape[1]}x{a.shape[0]}"
        )
    win = _window()
    per_channel = []
    with torch.no_grad():
        for c in range(3):  # one channel at a time keeps the float32 temporaries small
            x = torch.from_numpy(np.ascontiguousarray(a[:, :, c])).float()[None, None]
            y = torch.from_numpy(np.ascontiguousarray(b[:, :, c])).float()[None, None]
            terms = []
            for level in range(len(MS_SSIM_WEIGHTS)):
                ssim, cs = _ssim_terms(x, y, win, 255.0)
                if level < len(MS_SSIM_WEIGHTS) - 1:
                    terms.append(max(cs, 0.0))
                    padding = [s % 2 for s in x.shape[2:]]
                    x = F.avg_pool2d(x, kernel_size=2, padding=padding)
                    y = F.avg_pool2d(y, kernel_size=2, padding=padding)
                else:
                    terms.append(max(ssim, 0.0))
            per_channel.append(math.prod(t**w for t, w in zip(terms, MS_SSIM_WEIGHTS)))
    return sum(per_channel) / 3


def msssim_db(value: float) -> float:
    """−10·log10(1 − MS-SSIM): a scale on which MS-SSIM grows about linearly with quality."""
    return -10 * math.log10(max(1.0 - value, 1e-12))
