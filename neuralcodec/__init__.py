"""neuralcodec: a learned image codec (mean-scale hyperprior + constriction ANS).

The top level stays light: the public functions are imported on first use, so
``import neuralcodec`` does not pull in torch until something is compressed. Without torch
installed, decoding, reading headers and compressing at effort 0 work (neuralcodec.decoding,
neuralcodec.encoding).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = [
    "compress",
    "compress_with_stats",
    "decompress",
    "read_header",
    "available_models",
    "load_model",
    "__version__",
]

if TYPE_CHECKING:
    from neuralcodec.decoding import decompress, read_header
    from neuralcodec.encoding import compress, compress_with_stats
    from neuralcodec.zoo import available_models, load_model

_LAZY = {
    "compress": "neuralcodec.encoding",
    "compress_with_stats": "neuralcodec.encoding",
    "decompress": "neuralcodec.decoding",
    "read_header": "neuralcodec.decoding",
    "available_models": "neuralcodec.zoo",
    "load_model": "neuralcodec.zoo",
}


# Submodules reachable as attributes after a plain ``import neuralcodec``.
_SUBMODULES = {"bulk", "numpy_decoder"}


def __getattr__(name: str) -> Any:
    if name in _LAZY or name in _SUBMODULES:
        import importlib

        if name in _SUBMODULES:
            return importlib.import_module(f"neuralcodec.{name}")
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'neuralcodec' has no attribute {name!r}")
