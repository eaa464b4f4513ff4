"""Differentiable entropy models for training: the factorized prior of the hyper-latent z and
the conditional Gaussian of y (Ballé et al. 2018, "Variational image compression with a scale
hyperprior"; Minnen et al. 2018 for the means).

Same maths, parameters and state-dict names as CompressAI's ``EntropyBottleneck`` and
``GaussianConditional`` (and as tensorflow/compression's originals), so checkpoints written
with those modules load here and train on unchanged. What these modules do not have is an
entropy coder: the codec codes with its own integer tables (``neuralcodec.training.export``
builds them from :meth:`FactorizedPrior.logits_cumulative`), so CompressAI's cached CDF
buffers (``_offset``, ``_quantized_cdf``, ``_cdf_length``, and the Gaussian's ``scale_table``)
are ignored when a checkpoint carries them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuralcodec.layers import lower_bound

LIKELIHOOD_BOUND = 1e-9  # smallest likelihood a value is charged (about 29.9 bits)
SCALE_BOUND = 0.11  # smallest Gaussian scale
_CODER_CACHES = ("_offset", "_quantized_cdf", "_cdf_length", "scale_table")


def uniform_noise(x: Tensor) -> Tensor:
    """x + U(−½, ½): the training proxy of rounding."""
    return x + torch.empty_like(x).uniform_(-0.5, 0.5)


class _LowerBound(nn.Module):
    """max(x, bound), gradient passing where it pushes x up (a buffer, as CompressAI stores it)."""

    bound: Tensor

    def __init__(self, bound: float) -> None:
        super().__init__()
        self.register_buffer("bound", torch.tensor([float(bound)]))

    def forward(self, x: Tensor) -> Tensor:
        return lower_bound(x, float(self.bound))


class _IgnoresCoderCaches(nn.Module):
    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        for name in _CODER_CACHES:
            state_dict.pop(prefix + name, None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class FactorizedPrior(_IgnoresCoderCaches):
    """A learned univariate density per channel of z, convolved with U(−½, ½).

    ``forward(z)`` returns (z + noise or z rounded around each channel's median, likelihoods);
    :meth:`loss` trains ``quantiles`` towards each channel's tail_mass/2, ½ and 1 − tail_mass/2
    quantiles (the auxiliary loss; its gradient reaches nothing but ``quantiles``).
    """

    def __init__(
        self,
        channels: int,
        filters: tuple[int, ...] = (3, 3, 3, 3),
        init_scale: float = 10.0,
        tail_mass: float = 1e-9,
    ) -> None:
        super().__init__()
        self.channels = int(channels)
        self.filters = tuple(int(f) for f in filters)
        widths = (1, *self.filters, 1)
        scale = init_scale ** (1 / (len(self.filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(self.filters) + 1):
            init = math.log(math.expm1(1 / scale / widths[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, widths[i + 1], widths[i]), init)))
            self.biases.append(nn.Parameter(torch.empty(channels, widths[i + 1], 1).uniform_(-0.5, 0.5)))
            if i < len(self.filters):
                self.factors.append(nn.Parameter(torch.zeros(channels, widths[i + 1], 1)))
        self.quantiles = nn.Parameter(torch.tensor([-init_scale, 0.0, init_scale]).repeat(channels, 1, 1))
        target = math.log(2 / tail_mass - 1)
        self.register_buffer("target", torch.tensor([-target, 0.0, target]))
        self.likelihood_lower_bound = _LowerBound(LIKELIHOOD_BOUND)

    def medians(self) -> Tensor:
        """(channels, 1, 1): where evaluation rounds each channel's z around."""
        return self.quantiles[:, :, 1:2]

    def logits_cumulative(self, values: Tensor, stop_gradient: bool = False) -> Tensor:
        """Logit of each channel's cumulative distribution at ``values`` (channels, 1, n)."""
        logits = values
        for i, matrix in enumerate(self.matrices):
            bias = self.biases[i]
            if stop_gradient:
                matrix, bias = matrix.detach(), bias.detach()
            logits = torch.matmul(F.softplus(matrix), logits) + bias
            if i < len(self.factors):
                factor = self.factors[i].detach() if stop_gradient else self.factors[i]
                logits = logits + torch.tanh(factor) * torch.tanh(logits)
        return logits

    def likelihood(self, values: Tensor) -> Tensor:
        """P(value − ½ < z ≤ value + ½) per channel, lower-bounded at LIKELIHOOD_BOUND."""
        lower = self.logits_cumulative(values - 0.5)
        upper = self.logits_cumulative(values + 0.5)
        return self.likelihood_lower_bound(torch.sigmoid(upper) - torch.sigmoid(lower))

    def loss(self) -> Tensor:
        """Auxiliary loss that places ``quantiles`` at the density's tails and median."""
        logits = self.logits_cumulative(self.quantiles, stop_gradient=True)
        return torch.abs(logits - self.target).sum()

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        values = z.transpose(0, 1).contiguous()  # (C, B, ...)
        shape = values.shape
        values = values.reshape(shape[0], 1, -1)
        if self.training:
            values = uniform_noise(values)
        else:
            medians = self.medians()
            values = torch.round(values - medians) + medians
        likelihood = self.likelihood(values)
        return (
            values.reshape(shape).transpose(0, 1).contiguous(),
            likelihood.reshape(shape).transpose(0, 1).contiguous(),
        )


class GaussianConditional(_IgnoresCoderCaches):
    """y given (scales, means) from the hyper-synthesis: a Gaussian convolved with U(−½, ½).

    ``forward(y, scales, means)`` returns (y + noise, or y rounded around the means, likelihoods).
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("scale_bound", torch.tensor([SCALE_BOUND]))
        self.lower_bound_scale = _LowerBound(SCALE_BOUND)
        self.likelihood_lower_bound = _LowerBound(LIKELIHOOD_BOUND)

    def likelihood(self, values: Tensor, scales: Tensor, means: Tensor) -> Tensor:
        scales = self.lower_bound_scale(scales)
        residual = torch.abs(values - means)
        # Φ(x) = ½·erfc(−x/√2); the upper tail is taken through the lower one for precision.
        upper = 0.5 * torch.erfc(-(2**-0.5) * (0.5 - residual) / scales)
        lower = 0.5 * torch.erfc(-(2**-0.5) * (-0.5 - residual) / scales)
        return self.likelihood_lower_bound(upper - lower)

    def forward(self, y: Tensor, scales: Tensor, means: Tensor) -> tuple[Tensor, Tensor]:
        values = uniform_noise(y) if self.training else torch.round(y - means) + means
        return values, self.likelihood(values, scales, means)
