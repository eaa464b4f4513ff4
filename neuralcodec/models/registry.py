"""Architecture registry: the name a weights file stores -> the code that runs that model.

The container, the API, the CLI and the Pillow plugin reach a model only through these
entries, so a new architecture (a checkerboard or channel-wise context model, say) plugs in by
registering one, without touching them. Weights files written before architectures were named
are mean-scale hyperpriors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from neuralcodec.errors import ModelNotFoundError

DEFAULT_ARCHITECTURE = "mean-scale-hyperprior"


@dataclass(frozen=True)
class Architecture:
    """What the codec needs from an architecture.

    ``load(state, name, digest)`` builds the loaded model from a weights file's tensors;
    ``encode(model, x, quality, device, effort=, progress=, gray_output=)`` turns a batch of
    same-sized images into one set of entropy-coded streams each (``.z``, ``.y``: the
    container's Z and Y sections; ``gray_output``: the files will be decoded to grayscale, the
    rounded mean of the decoded channels, which an encoder that optimises may measure);
    ``decode(model, streams, quality, height, width, device, band_rows)`` turns them back into
    a uint8 (B, 3, H, W) batch. Decoding must rebuild exactly the latents the encoder coded, on
    any machine.
    """

    name: str
    load: Callable[..., Any]
    encode: Callable[..., list]
    decode: Callable[..., Any]


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
    """Import the architectures that ship with neuralcodec (they register themselves)."""
    import neuralcodec.models.mean_scale  # noqa: F401
