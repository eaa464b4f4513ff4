"""The library API: images in, ``.nc`` bytes out, and back.

import neuralcodec
data = neuralcodec.compress("photo.png", quality=75)
image = neuralcodec.decompress(data)          # PIL.Image.Image
"""

from __future__ import annotations

from pathlib import Path

from neuralcodec.coding import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_QUALITY,
    CompressStats,
    ImageSource,
    check_effort,
    check_pixel_limit,
    compress_with_stats,
    default_effort,
    loaded_model,
    model_for,
)
from neuralcodec.decoding import decompress, read_header
from neuralcodec.effort_levels import DEFAULT_EFFORT, DEFAULT_EFFORTS, MAX_EFFORT
from neuralcodec.models.loaded import LoadedModel
from neuralcodec.zoo import DEFAULT_MODEL, available_models, load_model

__all__ = [
    "DEFAULT_EFFORT",
    "DEFAULT_EFFORTS",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MODEL",
    "DEFAULT_QUALITY",
    "MAX_EFFORT",
    "CompressStats",
    "ImageSource",
    "LoadedModel",
    "available_models",
    "check_effort",
    "check_pixel_limit",
    "compress",
    "compress_with_stats",
    "decompress",
    "default_effort",
    "load_model",
    "loaded_model",
    "model_for",
    "read_header",
]


def compress(
    image: ImageSource,
    quality: float = DEFAULT_QUALITY,
    model: str | Path | LoadedModel = DEFAULT_MODEL,
    device: str = "auto",
    effort: int | None = DEFAULT_EFFORT,
    *,
    target_size: int | None = None,
    target_psnr: float | None = None,
    target_ms_ssim: float | None = None,
) -> bytes:
    """Compress a PIL image, an image file path or a uint8 array to ``.nc`` bytes.

    With one of ``target_size`` (bytes: the largest quality whose file fits), ``target_psnr``
    (dB) or ``target_ms_ssim`` (the smallest file reaching it), ``quality`` is searched for
    (neuralcodec.rate_control); an unreachable target raises TargetUnreachableError.
    """
    if any(t is not None for t in (target_size, target_psnr, target_ms_ssim)):
        from neuralcodec.rate_control import compress_to_target

        return compress_to_target(
            image,
            target_size=target_size,
            target_psnr=target_psnr,
            target_ms_ssim=target_ms_ssim,
            model=model,
            device=device,
            effort=effort,
        ).data
    return compress_with_stats(image, quality, model, device, effort=effort)[0]
