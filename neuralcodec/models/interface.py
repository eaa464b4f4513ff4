"""What the codec needs from a model architecture (the registry maps names to these)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from neuralcodec.container import FORMAT_ARCHITECTURE

# Weights files written before architectures were named are mean-scale hyperpriors, the one
# architecture whose streams the current format holds.
DEFAULT_ARCHITECTURE = FORMAT_ARCHITECTURE


def quality_to_level(quality: float, levels: int) -> float:
    """Quality 0..100 mapped linearly onto a model's gain levels 0..levels-1 (the header stores
    the quality; every architecture with gain levels reads it this way)."""
    return float(quality) / 100.0 * (levels - 1)


@dataclass(frozen=True)
class Architecture:
    """What the codec needs from an architecture.

    ``load(state, name, digest)`` builds the loaded model from a weights file's tensors (its
    ``latent_codecs``: neuralcodec.latent_codecs, where the architecture's latent codec is
    registered under the same name); ``encode(model, x, quality, device, effort=, progress=,
    gray_output=)`` turns a batch of same-sized images into one coded result each (its
    ``sections``, opaque to the container, ``estimated_bits`` and ``actual_bits``;
    ``gray_output``: the files will be decoded to grayscale, the rounded mean of the decoded
    channels, which an encoder that optimises may measure). Decoding is the file
    architecture's latent codec (sections -> ŷ, exactly the latents the encoder coded, on any
    machine) followed by the model's synthesis transform.
    """

    name: str
    load: Callable[..., Any]
    encode: Callable[..., list]
    # Whether refinement (effort > 0) scores latents with this architecture's own rate; where it
    # does not, efforts above 0 are no default (neuralcodec.coding.default_effort).
    refines_own_rate: bool = True
