"""What this installation runs, found without importing torch: whether torch is installed, and
the precision the environment asks of the conv transforms.

torch is optional: decoding (neuralcodec.numpy_decoder) never needs it; compressing with
refinement, training and decoding on a GPU do, and say so in one line where it is missing.
"""

from __future__ import annotations

import importlib.util
import os
import sys

from neuralcodec.errors import ConfigurationError, NeuralCodecError

TRANSFORMS_ENV = "NEURALCODEC_TRANSFORMS"  # auto (default) | bf16 | float32
TRANSFORMS_CHOICES = ("auto", "bf16", "float32")
INSTALL_TORCH = "pip install torch, or pip install 'neuralcodec[torch]'"


class TorchRequiredError(NeuralCodecError):
    """What was asked needs torch, which is not installed."""


def torch_available() -> bool:
    """True when ``import torch`` would find a module (it is not imported here)."""
    if "torch" in sys.modules:
        return sys.modules["torch"] is not None
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def require_torch(what: str) -> None:
    """Raise TorchRequiredError ("``what`` needs torch: how to install it") without torch."""
    if not torch_available():
        raise TorchRequiredError(f"{what} needs torch, which is not installed ({INSTALL_TORCH})")


def requested_precision() -> str:
    """``auto``, ``bf16`` or ``float32`` from ``$NEURALCODEC_TRANSFORMS`` (unset: ``auto``);
    ConfigurationError for any other value."""
    choice = os.environ.get(TRANSFORMS_ENV, "auto").strip().lower() or "auto"
    if choice not in TRANSFORMS_CHOICES:
        raise ConfigurationError(f"{TRANSFORMS_ENV}={choice!r} is not one of {', '.join(TRANSFORMS_CHOICES)}")
    return choice
