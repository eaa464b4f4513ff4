"""Compressing with the encoder at hand: torch's (every effort, rate targets, any device) where
torch is installed, else the numpy encoder (neuralcodec.numpy_encoder: effort 0 on the CPU, the
same files to within a few bytes). Without torch, what needs it raises TorchRequiredError."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from neuralcodec.effort_levels import DEFAULT_EFFORT
from neuralcodec.encoded_file import DEFAULT_QUALITY, CompressStats, ImageSource
from neuralcodec.runtime import INSTALL_TORCH, TorchRequiredError, torch_available
from neuralcodec.weights_file import DEFAULT_MODEL


def check_encoder(
    device: str = "auto", effort: int | None = DEFAULT_EFFORT, target: bool = False, model: Any = None
) -> None:
    """Raise TorchRequiredError, saying what needs torch, when torch is missing and the request
    is more than the numpy encoder does (effort 0 on the CPU from a model name or file)."""
    if torch_available():
        return
    if device not in ("auto", "cpu"):
        needs = f"compressing on {device!r}"
    elif target:
        needs = "a size, PSNR or MS-SSIM target"
    elif effort:
        needs = f"effort {effort} (latent refinement)"
    elif not (model is None or isinstance(model, (str, Path))):
        needs = "a loaded torch model"
    else:
        return
    raise TorchRequiredError(
        f"{needs} needs torch, which is not installed ({INSTALL_TORCH}); effort 0 does not"
    )


def compress_with_stats(
    image: ImageSource,
    quality: float = DEFAULT_QUALITY,
    model: Any = DEFAULT_MODEL,
    device: str = "auto",
    keep_metadata: bool = True,
    effort: int | None = DEFAULT_EFFORT,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[bytes, CompressStats]:
    """neuralcodec.api.compress_with_stats where torch is installed; else the numpy encoder
    (``effort`` None means 0 there; anything more raises TorchRequiredError)."""
    if torch_available():
        from neuralcodec import coding

        return coding.compress_with_stats(image, quality, model, device, keep_metadata, effort, progress)
    check_encoder(device, effort, model=model)
    from neuralcodec import numpy_encoder

    return numpy_encoder.compress_with_stats(image, quality, model, effort=0, keep_metadata=keep_metadata)


def compress(
    image: ImageSource,
    quality: float = DEFAULT_QUALITY,
    model: Any = DEFAULT_MODEL,
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
    (neuralcodec.rate_control); an unreachable target raises TargetUnreachableError. Without
    torch: effort 0 and no targets (TorchRequiredError otherwise).
    """
    targets = {"target_size": target_size, "target_psnr": target_psnr, "target_ms_ssim": target_ms_ssim}
    if any(v is not None for v in targets.values()):
        check_encoder(device, effort, True, model)
        from neuralcodec.rate_control import compress_to_target

        return compress_to_target(image, **targets, model=model, device=device, effort=effort).data
    return compress_with_stats(image, quality, model, device, effort=effort)[0]
