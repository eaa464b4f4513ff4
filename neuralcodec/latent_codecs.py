"""Which latent codec (neuralcodec.latent_codec) codes a file of each architecture, built from a
weights file's contents, and which files a model can decode. Torch-free: both backends' models
get their latent codecs here.

A model decodes files of its own architecture, and a checkerboard model also the plain
hyperprior's files: its transforms, exact h_s and tables are a complete hyperprior.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from neuralcodec.checkerboard_latents import CHECKERBOARD, CheckerboardLatents
from neuralcodec.container import Container
from neuralcodec.entropy_decoder import EntropyParameters
from neuralcodec.errors import InvalidInputError, InvalidModelError
from neuralcodec.exact_context import CheckerboardContext
from neuralcodec.latent_codec import HYPERPRIOR, HyperpriorLatents, LatentCodec

Builder = Callable[[EntropyParameters, dict], LatentCodec]

_BUILDERS: dict[str, Builder] = {
    HYPERPRIOR: lambda params, state: HyperpriorLatents(params),
    CHECKERBOARD: lambda params, state: CheckerboardLatents.checked(
        params, CheckerboardContext.from_state(state["context_exact"])
    ),
}
# the file architectures a model of each architecture decodes (its own first)
_DECODES: dict[str, tuple[str, ...]] = {HYPERPRIOR: (HYPERPRIOR,), CHECKERBOARD: (CHECKERBOARD, HYPERPRIOR)}


def register(architecture: str, builder: Builder, also_decodes: tuple[str, ...] = ()) -> None:
    """Make files of ``architecture`` codable: ``builder(params, state)`` makes its latent codec
    from a weights file's hyperprior parameters and contents; its models also decode the file
    architectures ``also_decodes`` (already registered)."""
    if architecture in _BUILDERS and _BUILDERS[architecture] is not builder:
        raise ValueError(f"latent codec {architecture!r} is already registered")
    _BUILDERS[architecture] = builder
    _DECODES[architecture] = (architecture, *also_decodes)


def known_architectures() -> list[str]:
    return sorted(_BUILDERS)


def latent_codecs(architecture: str, params: EntropyParameters, state: dict) -> dict[str, LatentCodec]:
    """The latent codecs of a weights file of ``architecture`` (``state``: its contents), by the
    file architecture each codes; InvalidModelError for an unknown or malformed one."""
    if architecture not in _BUILDERS:
        known = ", ".join(known_architectures())
        raise InvalidModelError(f"unknown model architecture {architecture!r} (this build knows: {known})")
    try:
        return {name: _BUILDERS[name](params, state) for name in _DECODES[architecture]}
    except KeyError as exc:
        raise InvalidModelError(f"{architecture} weights without {exc}") from None


class Decoder(Protocol):
    """A loaded model as decoding ŷ sees it (torch's LoadedModel, the numpy decoder's model)."""

    name: str
    latent_codecs: dict[str, LatentCodec]


def file_latents(model: Decoder, container: Container) -> np.ndarray:
    """ŷ of a parsed file: the model's latent codec for the architecture the header names
    decodes the file's model sections (CorruptStreamError for sections that do not decode);
    InvalidInputError, one line, for an architecture the model does not decode."""
    h = container.header
    codec = model.latent_codecs.get(h.architecture)
    if codec is None:
        known = ", ".join(model.latent_codecs)
        raise InvalidInputError(f"file is a {h.architecture} stream; model {model.name!r} decodes {known}")
    return codec.decode(container.model_sections(), h.height, h.width, h.band_rows)
