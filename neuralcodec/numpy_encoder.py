"""Encode images to ``.nc`` files with numpy, Pillow and constriction only: no torch is imported.

What ``neuralcodec.compress(image, quality, model, effort=0)`` writes, computed without torch:
the analysis in numpy float32 (neuralcodec.numpy_analysis, the torch encoder's tiles), then
the same symbols, tables, coder and container. The hyper-synthesis that sets the coder's
probabilities is the exact integer one (neuralcodec.exact_numpy), so every file decodes, with
either decoder, to the ŷ its symbols say. The float32 analysis is not bit-exact with torch's:
a few latents within rounding of a quantisation boundary may round the other way, so files
differ from the torch encoder's by a few bytes, not in size or quality (tests hold the symbols
≥ 99.9 % equal). Effort above 0 refines latents with torch and is refused here.

The argument checks, statistics and container assembly are shared with the torch encoder
(neuralcodec.encoded_file).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from neuralcodec.encoded_file import (
    DEFAULT_QUALITY,
    CompressStats,
    ImageSource,
    check_effort,
    check_quality,
    encoded_file,
)
from neuralcodec.image_modes import PreparedImage, prepare
from neuralcodec.latent_codec import CodedLatents
from neuralcodec.models.interface import quality_to_level
from neuralcodec.numpy_analysis import Analysis
from neuralcodec.numpy_decoder import NumpyModel, read_weights_file
from neuralcodec.runtime import INSTALL_TORCH, TorchRequiredError
from neuralcodec.weights_file import DEFAULT_MODEL, load_reporting, resolve_model_path


@dataclass(frozen=True)
class EncoderModel:
    """A weights file's decoder side (numpy_decoder.NumpyModel) and its analysis transforms."""

    decoder: NumpyModel
    analysis: Analysis

    def encode(self, rgb: np.ndarray, quality: float) -> CodedLatents:
        """uint8 pixels (H, W, 3) at ``quality`` -> the coded latents (effort 0), by the model's
        latent codec."""
        y, z = self.analysis(rgb, quality_to_level(quality, self.decoder.levels))
        return self.decoder.latent_codec.encode(y, z, overwrite_y=True)  # y is ours, done after


@lru_cache(maxsize=8)
def load(path: Path) -> EncoderModel:
    """The encoder of a weights file (loaded once per process)."""
    data = path.read_bytes()
    state = read_weights_file(path, data)
    return EncoderModel(
        NumpyModel.from_state(state, path, data), Analysis.from_transforms(state["transforms"])
    )


def compress_with_stats(
    image: ImageSource | PreparedImage,
    quality: float = DEFAULT_QUALITY,
    model: str | Path | None = None,
    *,
    effort: int | None = 0,
    keep_metadata: bool = True,
) -> tuple[bytes, CompressStats]:
    """Compress one image as ``neuralcodec.compress_with_stats(..., effort=0)`` does, without
    torch; also return sizes and the model's own rate estimate.

    ``model``: a shipped model's name or a weights file (None: the default model; one that does
    not exist or load raises ModelNotFoundError or InvalidModelError, one line). ``effort``
    0 (or None: the default without torch) is the single-pass encoder; higher efforts refine
    latents with torch and raise TorchRequiredError.
    """
    q = check_quality(quality)
    effort = check_effort(effort)
    if effort:
        raise TorchRequiredError(
            f"effort {effort} refines latents with torch; install torch ({INSTALL_TORCH}) or use effort 0"
        )
    encoder = load_reporting(load, resolve_model_path(DEFAULT_MODEL if model is None else model).resolve())
    prepared = image if isinstance(image, PreparedImage) else prepare(image, keep_metadata)
    coded = encoder.encode(prepared.rgb, q)
    name, digest = encoder.decoder.name, encoder.decoder.digest
    coder = encoder.decoder.latent_codec
    data = encoded_file(
        prepared,
        name,
        digest,
        q,
        coded.sections,
        coded.band_rows,
        architecture=coder.architecture,
        format_version=coder.format_version,
    )
    height, width = prepared.rgb.shape[:2]
    stats = CompressStats(width, height, len(data), coded.estimated_bits, coded.actual_bits, prepared.notes)
    return data, stats


def compress(
    image: ImageSource | PreparedImage,
    quality: float = DEFAULT_QUALITY,
    model: str | Path | None = None,
    *,
    effort: int | None = 0,
    keep_metadata: bool = True,
) -> bytes:
    """Compress a PIL image, an image file path or a uint8 array to ``.nc`` bytes, as
    ``neuralcodec.compress(image, quality, model, effort=0)`` does, without torch. Every image
    mode neuralcodec.compress takes (grayscale, alpha, 16-bit, palette, CMYK, metadata)."""
    return compress_with_stats(image, quality, model, effort=effort, keep_metadata=keep_metadata)[0]


__all__ = ["EncoderModel", "compress", "compress_with_stats", "load"]
