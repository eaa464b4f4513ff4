"""Rate–distortion loss, per sample so that every sample can carry its own λ."""

from __future__ import annotations

import math

from torch import Tensor


def bits_per_pixel(likelihoods: Tensor, num_pixels: int) -> Tensor:
    """Per-sample bits per pixel from a (B, ...) likelihood tensor."""
    return likelihoods.clamp_min(1e-12).log().flatten(1).sum(1) / (-math.log(2) * num_pixels)


def distortion(x_hat: Tensor, x: Tensor, metric: str) -> Tensor:
    """Per-sample distortion in the units CompressAI's λ values assume."""
    if metric == "mse":
        return (x_hat - x).pow(2).flatten(1).mean(1) * 255.0**2
    if metric == "ms-ssim":
        from pytorch_msssim import ms_ssim

        return 1.0 - ms_ssim(x_hat, x, data_range=1.0, size_average=False)
    raise ValueError(f"unknown metric {metric!r}")


def rate_distortion_loss(out: dict[str, Tensor], x: Tensor, lmbda: Tensor, metric: str) -> dict[str, Tensor]:
    """λ·D + R averaged over the batch, plus its parts for logging."""
    num_pixels = x.shape[2] * x.shape[3]
    bpp = bits_per_pixel(out["y_likelihoods"], num_pixels) + bits_per_pixel(out["z_likelihoods"], num_pixels)
    dist = distortion(out["x_hat"], x, metric)
    loss = (lmbda * dist + bpp).mean()
    return {"loss": loss, "bpp": bpp.mean(), "distortion": dist.mean()}
