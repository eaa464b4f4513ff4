"""The shared transforms plus the differentiable entropy models, for training: the mean-scale
hyperprior and, on top of it, the checkerboard context model trained jointly with it."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from neuralcodec.float_context import FloatCheckerboardContext, anchor_mask
from neuralcodec.models.hyperprior import HyperpriorConfig, HyperpriorTransforms
from neuralcodec.training.entropy_models import FactorizedPrior, GaussianConditional


def _round_ste(x: Tensor) -> Tensor:
    """round(x) forward, identity backward."""
    return x + (torch.round(x) - x).detach()


class TrainableHyperprior(nn.Module):
    """Mean-scale hyperprior with gain-based variable rate.

    The conv transforms run under bf16 autocast (AMX on this CPU) when ``bf16`` is set; the
    entropy models and everything that produces likelihoods stay in float32.
    """

    def __init__(self, config: HyperpriorConfig, bf16: bool = True) -> None:
        super().__init__()
        self.transforms = HyperpriorTransforms(config)
        self.entropy_bottleneck = FactorizedPrior(config.N)
        self.gaussian_conditional = GaussianConditional()
        self.bf16 = bf16

    def _autocast(self, x: Tensor):
        return torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def hyperprior(self, x: Tensor, level: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(y, ẑ likelihoods, h_s parameters, inverse gain): everything before ŷ is coded."""
        t = self.transforms
        gain, inverse_gain = t.gains(level)
        with self._autocast(x):
            y = t.g_a(x).float() * gain
            z = t.h_a(y).float()
        z_hat, z_likelihoods = self.entropy_bottleneck(z)
        with self._autocast(x):
            params = t.h_s(z_hat).float()
        return y, z_likelihoods, params, inverse_gain

    def latent_parameters(self, y: Tensor, params: Tensor) -> Tensor:
        """The (scales ‖ means) each latent of ``y`` is coded with, from h_s's ``params``: those."""
        return params

    def forward(self, x: Tensor, level: Tensor) -> dict[str, Tensor]:
        t = self.transforms
        y, z_likelihoods, params, inverse_gain = self.hyperprior(x, level)
        scales, means = t.split_params(self.latent_parameters(y, params))
        _, y_likelihoods = self.gaussian_conditional(y, scales, means)
        # Mixed quantisation: noise for the rate term, rounding (straight-through) for the
        # decoder, which then trains on the latents it will really see.
        y_hat = _round_ste(y - means) + means
        with self._autocast(x):
            x_hat = t.g_s(y_hat * inverse_gain).float()
        return {"x_hat": x_hat, "y_likelihoods": y_likelihoods, "z_likelihoods": z_likelihoods}

    def aux_loss(self) -> Tensor:
        return self.entropy_bottleneck.loss()


def context_widths(state: dict[str, Tensor], prefix: str = "context.") -> tuple[int, int] | None:
    """The hidden widths of the checkerboard context whose parameters ``state`` holds under
    ``prefix`` (a model's state dict, or with ``prefix=""`` a context's own); None if it holds none."""
    first, second = (state.get(f"{prefix}entropy_parameters.{i}.weight") for i in (0, 2))
    if first is None or second is None:
        return None
    return int(first.shape[0]), int(second.shape[0])


class TrainableCheckerboard(TrainableHyperprior):
    """The hyperprior plus a checkerboard context for the non-anchor latents, trained jointly
    with the transforms; its runtime form is architecture ``mean-scale-checkerboard``.

    ``hidden``: the context's entropy-parameters widths (default: FloatCheckerboardContext's). Anchors
    keep h_s's
    parameters; non-anchors get the context's, read from the anchors' ŷ = round(y − mean) + mean
    around h_s's means (straight-through), which is what a decoder holds once the anchors are
    decoded. ``forward`` returns what :meth:`TrainableHyperprior.forward` does, with the
    checkerboard's rate; the context runs in float32. Guarantee: while the context returns the
    parameters it is given (a FloatCheckerboardContext's zero last layer, as built), the output
    equals the hyperprior's exactly.
    """

    def __init__(
        self, config: HyperpriorConfig, hidden: tuple[int, int] | None = None, bf16: bool = True
    ) -> None:
        super().__init__(config, bf16)
        self.context = FloatCheckerboardContext(config.M, hidden)

    def latent_parameters(self, y: Tensor, params: Tensor) -> Tensor:
        """h_s's ``params`` at anchors, the context's at non-anchors."""
        _, means = self.transforms.split_params(params)
        anchor_hat = _round_ste(y - means) + means
        contextual = self.context(params, anchor_hat)
        return torch.where(anchor_mask(y.shape[2], y.shape[3], y.device), params, contextual)
