"""Architecture registry: the name a weights file stores -> the code that runs that model.

The container, the API, the CLI and the Pillow plugin reach a model only through these
entries, so a new architecture (a checkerboard or channel-wise context model, say) plugs in by
registering one, without touching them. Weights files written before architectures were named
are mean-scale hyperpriors.
"""

from __future__ import annotations

from neuralcodec.errors import ModelNotFoundError
from neuralcodec.models.interface import DEFAULT_ARCHITECTURE, Architecture

__all__ = ["DEFAULT_ARCHITECTURE", "Architecture", "get_architecture", "register", "registered_architectures"]

_ARCHITECTURES: dict[str, Architecture] = {}


def register(architecture: Architecture) -> Architecture:
    """Make ``architecture`` loadable by its name (a name can be registered once)."""
    if architecture.name in _ARCHITECTURES and _ARCHITECTURES[architecture.name] != architecture:
        raise ValueError(f"architecture {architecture.name!r} is already registered")
    _ARCHITECTURES[architecture.name] = architecture
    return architecture


def get_architecture(name: str) -> Architecture:
    """The registered architecture of that name, or ModelNotFoundError naming the known ones."""
    _load_builtin()
    try:
        return _ARCHITECTURES[name]
    except KeyError:
        known = ", ".join(sorted(_ARCHITECTURES))
        raise ModelNotFoundError(f"unknown model architecture {name!r} (this build knows: {known})") from None


def registered_architectures() -> list[str]:
    _load_builtin()
    return sorted(_ARCHITECTURES)


def _load_builtin() -> None:
    """Register the architectures that ship with neuralcodec (on first use: they load torch)."""
    from neuralcodec.models import checkerboard, mean_scale

    register(mean_scale.ARCHITECTURE)
    register(checkerboard.ARCHITECTURE)
