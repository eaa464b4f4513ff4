"""The shared transforms plus the differentiable entropy models, for training."""

from __future__ import annotations

import torch
from torch import Tensor, nn

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

    def forward(self, x: Tensor, level: Tensor) -> dict[str, Tensor]:
        t = self.transforms
        y, z_likelihoods, params, inverse_gain = self.hyperprior(x, level)
        scales, means = t.split_params(params)
        _, y_likelihoods = self.gaussian_conditional(y, scales, means)
        # Mixed quantisation: noise for the rate term, rounding (straight-through) for the
        # decoder, which then trains on the latents it will really see.
        y_hat = _round_ste(y - means) + means
        with self._autocast(x):
            x_hat = t.g_s(y_hat * inverse_gain).float()
        return {"x_hat": x_hat, "y_likelihoods": y_likelihoods, "z_likelihoods": z_likelihoods}

    def aux_loss(self) -> Tensor:
        return self.entropy_bottleneck.loss()
