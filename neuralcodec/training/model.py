"""The shared transforms plus CompressAI's entropy models, for training."""

from __future__ import annotations

import torch
from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from torch import Tensor, nn

from neuralcodec.models.hyperprior import HyperpriorConfig, HyperpriorTransforms


def _round_ste(x: Tensor) -> Tensor:
    """round(x) forward, identity backward."""
    return x + (torch.round(x) - x).detach()


RATE_PROXIES = ("noise", "round")


class TrainableHyperprior(nn.Module):
    """Mean-scale hyperprior with gain-based variable rate.

    The conv transforms run under bf16 autocast (AMX on this CPU) when ``bf16`` is set; the
    entropy models and everything that produces likelihoods stay in float32.

    ``rate_proxy`` in training mode: "noise" (CompressAI's default) scores the rate of the
    latents plus uniform noise; "round" scores the probabilities of the rounded latents the
    codec really codes (ẑ on the integer grid, ŷ = round(y − μ) + μ), with straight-through
    gradients: the objective for tuning an encoder against a fixed decoder and entropy model.
    """

    def __init__(self, config: HyperpriorConfig, bf16: bool = True, rate_proxy: str = "noise") -> None:
        super().__init__()
        if rate_proxy not in RATE_PROXIES:
            raise ValueError(f"rate_proxy must be one of {RATE_PROXIES}, got {rate_proxy!r}")
        self.transforms = HyperpriorTransforms(config)
        self.entropy_bottleneck = EntropyBottleneck(config.N)
        self.gaussian_conditional = GaussianConditional(None)
        self.bf16 = bf16
        self.rate_proxy = rate_proxy

    def _autocast(self, x: Tensor):
        return torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def forward(self, x: Tensor, level: Tensor) -> dict[str, Tensor]:
        t = self.transforms
        gain, inverse_gain = t.gains(level)
        with self._autocast(x):
            y = t.g_a(x).float() * gain
            z = t.h_a(y).float()
        rounded = self.training and self.rate_proxy == "round"
        z_hat, z_likelihoods = self._z_rounded(z) if rounded else self.entropy_bottleneck(z)
        with self._autocast(x):
            params = t.h_s(z_hat).float()
        scales, means = t.split_params(params)
        # Mixed quantisation: noise for the rate term (unless rate_proxy is "round"), rounding
        # (straight-through) for the decoder, which then trains on the latents it will really see.
        y_hat = _round_ste(y - means) + means
        gc = self.gaussian_conditional
        if rounded:
            y_likelihoods = gc.likelihood_lower_bound(gc._likelihood(y_hat, scales, means))
        else:
            _, y_likelihoods = gc(y, scales, means)
        with self._autocast(x):
            x_hat = t.g_s(y_hat * inverse_gain).float()
        return {"x_hat": x_hat, "y_likelihoods": y_likelihoods, "z_likelihoods": z_likelihoods}

    def _z_rounded(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """ẑ = round(z) (straight-through) and its probabilities under the factorized density."""
        eb = self.entropy_bottleneck
        z_hat = _round_ste(z)
        channels_first = z_hat.transpose(0, 1)
        likelihood, _, _ = eb._likelihood(channels_first.reshape(z.shape[1], 1, -1))
        likelihood = eb.likelihood_lower_bound(likelihood).reshape(channels_first.shape).transpose(0, 1)
        return z_hat, likelihood

    def aux_loss(self) -> Tensor:
        return self.entropy_bottleneck.loss()
