"""The library API: images in, ``.nc`` bytes out, and back.

import neuralcodec
data = neuralcodec.compress("photo.png", quality=75)
image = neuralcodec.decompress(data)          # PIL.Image.Image
"""

from __future__ import annotations

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
from neuralcodec.encoding import compress
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
