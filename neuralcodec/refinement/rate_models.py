"""Which rate refinement scores each architecture's latents with: architecture name ->
``RateModel`` builder, as neuralcodec.latent_codecs maps names to latent codecs.

An architecture that registers none refines against the mean-scale hyperprior's rate
(``HyperpriorRate``), which is its own rate only if it codes its latents as the hyperprior does;
``Architecture.refines_own_rate`` says whether it does.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from neuralcodec.checkerboard_latents import CHECKERBOARD
from neuralcodec.latent_codec import HYPERPRIOR
from neuralcodec.models.loaded import LoadedModel
from neuralcodec.refinement.checkerboard_rate import CheckerboardRate
from neuralcodec.refinement.rate_model import HyperpriorRate, RateModel

RateModelBuilder = Callable[[LoadedModel, torch.device], RateModel]

_RATE_MODELS: dict[str, RateModelBuilder] = {HYPERPRIOR: HyperpriorRate, CHECKERBOARD: CheckerboardRate}


def register(architecture: str, builder: RateModelBuilder) -> None:
    """Refine latents of ``architecture``'s models against ``builder(model, device)``."""
    if _RATE_MODELS.get(architecture, builder) is not builder:
        raise ValueError(f"rate model {architecture!r} is already registered")
    _RATE_MODELS[architecture] = builder


def rate_model_of(model: LoadedModel, device: torch.device) -> RateModel:
    """The rate ``model``'s latents are refined against, on ``device`` (see the module docstring)."""
    return _RATE_MODELS.get(model.architecture, HyperpriorRate)(model, device)
