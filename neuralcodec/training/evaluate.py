"""Quick periodic evaluation during training: estimated bpp vs JPEG on a few images.

Uses the model's own likelihoods of the rounded latents (not real files: those come from
benchmarks/) so it is cheap enough to run every few hundred steps.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from pytorch_msssim import ms_ssim

from neuralcodec.bdrate import bd_rate
from neuralcodec.models.hyperprior import STRIDE
from neuralcodec.training.data import list_images
from neuralcodec.training.loss import bits_per_pixel


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = F.mse_loss(a, b).item()
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def msssim_db(value: float) -> float:
    return -10 * math.log10(max(1.0 - value, 1e-12))


def load_eval_images(folder: Path, count: int) -> list[torch.Tensor]:
    images = []
    for path in list_images(folder)[:count]:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"))
        images.append(torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div(255).unsqueeze(0))
    return images


def jpeg_curve(images: list[torch.Tensor]) -> dict[str, list[float]]:
    """Pillow JPEG (4:2:0 default, q5..95) on the same images: the reference curve."""
    curve: dict[str, list[float]] = {"bpp": [], "psnr": [], "ms-ssim": []}
    for q in range(5, 100, 5):
        bpp, ps, ms = [], [], []
        for x in images:
            arr = (x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            buf = io.BytesIO()
            Image.fromarray(arr).save(buf, format="JPEG", quality=q)
            dec = torch.from_numpy(np.asarray(Image.open(buf).convert("RGB")).copy())
            dec = dec.permute(2, 0, 1).float().div(255).unsqueeze(0)
            bpp.append(buf.tell() * 8 / (arr.shape[0] * arr.shape[1]))
            ps.append(psnr(dec, x))
            ms.append(ms_ssim(dec, x, data_range=1.0).item())
        curve["bpp"].append(float(np.mean(bpp)))
        curve["psnr"].append(float(np.mean(ps)))
        curve["ms-ssim"].append(float(np.mean(ms)))
    return curve


@torch.no_grad()
def evaluate(model, images: list[torch.Tensor], levels: list[float], jpeg: dict, device) -> dict:
    """Estimated RD points of the model at ``levels`` and BD-rates vs ``jpeg``."""
    was_training = model.training
    model.eval()
    curve: dict[str, list[float]] = {"bpp": [], "psnr": [], "ms-ssim": []}
    for level in levels:
        bpp, ps, ms = [], [], []
        for x in images:
            x = x.to(device)
            h, w = x.shape[2:]
            padded = F.pad(x, (0, -w % STRIDE, 0, -h % STRIDE), mode="replicate")
            out = model(padded, torch.full((1,), float(level), device=device))
            x_hat = out["x_hat"][:, :, :h, :w].clamp(0, 1).mul(255).round().div(255)
            bpp.append(
                (
                    bits_per_pixel(out["y_likelihoods"], h * w) + bits_per_pixel(out["z_likelihoods"], h * w)
                ).item()
            )
            ps.append(psnr(x_hat, x))
            ms.append(ms_ssim(x_hat, x, data_range=1.0).item())
        curve["bpp"].append(float(np.mean(bpp)))
        curve["psnr"].append(float(np.mean(ps)))
        curve["ms-ssim"].append(float(np.mean(ms)))
    model.train(was_training)
    result = {"curve": curve}
    for key, to_quality in (("psnr", lambda v: v), ("ms-ssim", msssim_db)):
        try:
            result[f"bd_{key}"] = bd_rate(
                jpeg["bpp"],
                [to_quality(v) for v in jpeg[key]],
                curve["bpp"],
                [to_quality(v) for v in curve[key]],
            )
        except ValueError:
            result[f"bd_{key}"] = float("nan")
    return result
