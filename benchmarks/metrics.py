"""Image-quality metrics with exactly CompressAI's definitions, so our numbers sit on the published curves.

PSNR is over all RGB samples of one image (then averaged over images by the caller);
MS-SSIM is ``pytorch_msssim.ms_ssim(data_range=255)`` on 0..255 float RGB.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from neuralcodec.metrics import MS_SSIM_MIN_SIDE  # the 5-scale MS-SSIM's smallest side
from neuralcodec.metrics import msssim_db as msssim_db  # re-exported: the benchmarks' dB scale

if TYPE_CHECKING:  # torch is imported on first use so torch-free tools (speed workers) stay light
    import torch


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when present, so one command works on laptops and GPU boxes."""
    from neuralcodec.codec import resolve_device as codec_resolve_device

    return codec_resolve_device(device)


def to_tensor(img: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float32 on 0..255 (no rescaling: data_range is 255)."""
    import torch

    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB array, got shape {img.shape}")
    return torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).unsqueeze(0).float().to(device)


def psnr_from_mse(mse: float, data_range: float = 255.0) -> float:
    """20·log10(range) − 10·log10(MSE); +inf for identical images."""
    if mse <= 0:
        return math.inf
    return 20 * math.log10(data_range) - 10 * math.log10(mse)


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float = 255.0) -> float:
    """RGB PSNR of one image, MSE in float64 so 8-bit errors are exact."""
    import torch

    mse = torch.mean((a.double() - b.double()) ** 2).item()
    return psnr_from_mse(mse, data_range)


def ms_ssim_rgb(a: torch.Tensor, b: torch.Tensor, data_range: float = 255.0) -> float:
    """MS-SSIM of one image; NaN when the image is too small for the 5-scale definition."""
    from pytorch_msssim import ms_ssim

    if min(a.shape[-2:]) < MS_SSIM_MIN_SIDE:
        return math.nan
    return float(ms_ssim(a.float(), b.float(), data_range=data_range, size_average=True).item())


def compare(
    original: np.ndarray, decoded: np.ndarray, device: torch.device | str = "cpu"
) -> dict[str, float]:
    """Both metrics for one decoded image (uint8 arrays of the same shape)."""
    if original.shape != decoded.shape:
        raise ValueError(f"decoded shape {decoded.shape} != original shape {original.shape}")
    import torch

    a, b = to_tensor(original, device), to_tensor(decoded, device)
    with torch.no_grad():
        return {"psnr-rgb": psnr(a, b), "ms-ssim-rgb": ms_ssim_rgb(a, b)}
