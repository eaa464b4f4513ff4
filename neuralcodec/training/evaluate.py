"""Periodic evaluation during training: RD points and BD-rates vs JPEG on a few images.

:func:`evaluate` uses the model's own likelihoods of its rounded latents, cheap enough to run
every few hundred steps; :func:`evaluate_files` measures real files through the runtime, as
the Kodak benchmark (benchmarks/) does, for a few seconds per image.
"""

from __future__ import annotations

import copy
import io
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from pytorch_msssim import ms_ssim

from neuralcodec.bdrate import bd_rate
from neuralcodec.metrics import msssim_db
from neuralcodec.models.hyperprior import STRIDE
from neuralcodec.training.data import list_images
from neuralcodec.training.loss import bits_per_pixel


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = F.mse_loss(a, b).item()
    return 10 * math.log10(1.0 / max(mse, 1e-12))


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


def _rd_result(
    measure: Callable[[torch.Tensor, float], tuple[float, torch.Tensor]],
    images: list[torch.Tensor],
    levels: list[float],
    jpeg: dict,
) -> dict:
    """RD points (mean over ``images`` per level) and BD-rates vs ``jpeg``; ``measure(x, level)``
    gives one image's bits per pixel and its decoded pixels (rounded to 8 bits, like x)."""
    curve: dict[str, list[float]] = {"bpp": [], "psnr": [], "ms-ssim": []}
    for level in levels:
        bpp, ps, ms = [], [], []
        for x in images:
            bits, x_hat = measure(x, level)
            x = x.to(x_hat.device)
            bpp.append(bits)
            ps.append(psnr(x_hat, x))
            ms.append(ms_ssim(x_hat, x, data_range=1.0).item())
        curve["bpp"].append(float(np.mean(bpp)))
        curve["psnr"].append(float(np.mean(ps)))
        curve["ms-ssim"].append(float(np.mean(ms)))
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


@torch.no_grad()
def evaluate(model, images: list[torch.Tensor], levels: list[float], jpeg: dict, device) -> dict:
    """Estimated RD points of the model at ``levels`` and BD-rates vs ``jpeg``.

    Rates are the training model's likelihoods of its eval-mode latents: cheap, and somewhat
    optimistic against real files, by what headers and whole ANS words cost (see
    :func:`evaluate_files`).
    """

    def measure(x: torch.Tensor, level: float) -> tuple[float, torch.Tensor]:
        x = x.to(device)
        h, w = x.shape[2:]
        padded = F.pad(x, (0, -w % STRIDE, 0, -h % STRIDE), mode="replicate")
        out = model(padded, torch.full((1,), float(level), device=device))
        x_hat = out["x_hat"][:, :, :h, :w].clamp(0, 1).mul(255).round().div(255)
        bits = bits_per_pixel(out["y_likelihoods"], h * w) + bits_per_pixel(out["z_likelihoods"], h * w)
        return bits.item(), x_hat

    was_training = model.training
    model.eval()
    try:
        return _rd_result(measure, images, levels, jpeg)
    finally:
        model.train(was_training)


@torch.no_grad()
def evaluate_files(
    model, images: list[torch.Tensor], levels: list[float], jpeg: dict, calibration: torch.Tensor, device
) -> dict:
    """Like :func:`evaluate`, from real ``.nc`` files: the model is exported in memory as a weights
    file would hold it (fp16 transforms, exact h_s calibrated on the training crops
    ``calibration``, integer tables) and every image is compressed and decoded by the runtime
    (neuralcodec.api) at the quality of each level. What the Kodak benchmark measures, on fewer
    images; about 1.5 s per image and level on a 2-core CPU.
    """
    from neuralcodec import api
    from neuralcodec.training.export import weights_state
    from neuralcodec.zoo import model_from_state

    snapshot = copy.deepcopy(model).cpu().eval()
    loaded = model_from_state(weights_state(snapshot, "eval", calibration.cpu(), {}), bytes(8))
    top_level = loaded.config.levels - 1

    def measure(x: torch.Tensor, level: float) -> tuple[float, torch.Tensor]:
        pixels = x[0].permute(1, 2, 0).mul(255).round().to(torch.uint8).cpu().numpy()
        # The single-pass encoder (effort 0): the model, not the refinement, is being trained.
        data = api.compress(pixels, 100.0 * level / top_level, loaded, device, effort=0)
        decoded = np.asarray(api.decompress(data, device, model=loaded, max_pixels=None))
        x_hat = torch.from_numpy(decoded.copy()).permute(2, 0, 1).float().div(255).unsqueeze(0)
        return 8 * len(data) / (pixels.shape[0] * pixels.shape[1]), x_hat

    return _rd_result(measure, images, levels, jpeg)
