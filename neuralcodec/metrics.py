"""PSNR of decoded images and the definition of MS-SSIM, for rate control (numpy only: importing
this module never loads torch; neuralcodec.msssim computes MS-SSIM with these constants).

MS-SSIM is the standard definition of Wang, Simoncelli and Bovik (2003) as computed by
``pytorch_msssim.ms_ssim(data_range=255)``, which CompressAI and our benchmarks use: 5 scales
with weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), an 11-tap Gaussian window with σ = 1.5
applied separably without padding, K = (0.01, 0.03), 2×2 average pooling between scales
(zero padding on odd sides), contrast-structure terms clamped at 0, averaged over RGB channels.
tests/test_rate_control.py checks neuralcodec.msssim against pytorch_msssim.
"""

from __future__ import annotations

import math

import numpy as np

# The MS-SSIM constants (neuralcodec.msssim implements it).
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WINDOW_SIZE = 11
WINDOW_SIGMA = 1.5
K1, K2 = 0.01, 0.03

# Four halvings must leave the 11-tap window room: the smaller side must exceed (11 - 1) * 2**4.
MS_SSIM_MIN_SIDE = (WINDOW_SIZE - 1) * 2 ** (len(MS_SSIM_WEIGHTS) - 1) + 1


def check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) RGB arrays, got shape {a.shape}")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """RGB PSNR in dB of two (H, W, 3) uint8 images (MSE over all samples; +inf when equal)."""
    check_pair(a, b)
    total = 0
    for row in range(0, a.shape[0], 256):  # exact integer sum, bounded temporary memory
        diff = a[row : row + 256].astype(np.int64) - b[row : row + 256]
        total += int(np.sum(diff * diff))
    if total == 0:
        return math.inf
    return 20 * math.log10(255.0) - 10 * math.log10(total / a.size)


def msssim_db(value: float) -> float:
    """−10·log10(1 − MS-SSIM): the dB scale on which MS-SSIM grows about linearly with quality
    and on which MS-SSIM BD-rates are computed. 1 − MS-SSIM is floored at 1e-12 (120 dB); NaN
    (no MS-SSIM, e.g. an image too small for it) stays NaN."""
    if math.isnan(value):
        return math.nan
    return -10 * math.log10(max(1.0 - value, 1e-12))
