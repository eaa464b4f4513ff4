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

# The MS-SSIM constants (neuralcodec.msssim implements it; this module stays torch-free to import).
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WINDOW_SIZE = 11
WINDOW_SIGMA = 1.5
K1, K2 = 0.01, 0.03

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


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """MS-SSIM of two (H, W, 3) uint8 RGB images, data range 255 (see the module docstring).

    Computed by neuralcodec.msssim (the differentiable implementation refinement uses), one
    channel at a time to keep the float32 temporaries small. Images whose smaller side is
    below MS_SSIM_MIN_SIDE (161) have no 5-scale MS-SSIM: that is an InvalidInputError.
    """
    import torch

    from neuralcodec.msssim import ms_ssim as ms_ssim_tensor

    _check_pair(a, b)
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
            per_channel.append(float(ms_ssim_tensor(x, y, data_range=255.0)))
    return sum(per_channel) / 3


def msssim_db(value: float) -> float:
    """−10·log10(1 − MS-SSIM): the dB scale on which MS-SSIM grows about linearly with quality
    and on which MS-SSIM BD-rates are computed. 1 − MS-SSIM is floored at 1e-12 (120 dB); NaN
    (no MS-SSIM, e.g. an image too small for it) stays NaN."""
    if math.isnan(value):
        return math.nan
    return -10 * math.log10(max(1.0 - value, 1e-12))
