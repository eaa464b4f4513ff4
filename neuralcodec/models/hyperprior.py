"""Variable-rate mean-scale hyperprior (Minnen et al. 2018, without the context model).

One definition serves training (tools/train.py wraps it with CompressAI's entropy models)
and inference (neuralcodec.codec drives it with exported weights and exact entropy
parameters). The rate is steered by per-channel gain vectors (Cui et al. 2021): ``levels``
learned gain/inverse-gain pairs, one per training λ, interpolated log-linearly so that any
real quality between 0 and ``levels - 1`` is a valid operating point.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from neuralcodec.layers import GDN, conv, deconv


@dataclass(frozen=True)
class HyperpriorConfig:
    """Sizes and rate range of a model; stored with its weights."""

    N: int = 128
    M: int = 192
    levels: int = 6
    lambda_min: float = 0.0018
    lambda_max: float = 0.0932
    metric: str = "mse"  # or "ms-ssim"

    def to_dict(self) -> dict:
        return asdict(self)

    def lambdas(self) -> Tensor:
        """The training λ of each gain level, log-spaced from lambda_min to lambda_max."""
        return torch.logspace(
            math.log10(self.lambda_min), math.log10(self.lambda_max), self.levels, dtype=torch.float64
        )


# Parameters (names within HyperpriorTransforms) that only the encoder uses: g_a, h_a and the
# gains applied to g_a's output. Changing them changes which latents an encoder picks, never
# how a stream decodes.
ENCODER_PARAMETERS = ("g_a.", "h_a.", "log_gain")

STRIDE = 64  # g_a downsamples by 16 and h_a by 4 more: inputs are padded to a multiple of 64


class HyperpriorTransforms(nn.Module):
    """g_a, h_a, h_s, g_s and the rate-steering gains, without any entropy model."""

    def __init__(self, config: HyperpriorConfig = HyperpriorConfig()) -> None:
        super().__init__()
        N, M = config.N, config.M
        self.config = config
        self.g_a = nn.Sequential(conv(3, N), GDN(N), conv(N, N), GDN(N), conv(N, N), GDN(N), conv(N, M))
        self.g_s = nn.Sequential(
            deconv(M, N),
            GDN(N, inverse=True),
            deconv(N, N),
            GDN(N, inverse=True),
            deconv(N, N),
            GDN(N, inverse=True),
            deconv(N, 3),
        )
        self.h_a = nn.Sequential(
            conv(M, N, 3, 1), nn.ReLU(inplace=True), conv(N, N), nn.ReLU(inplace=True), conv(N, N)
        )
        # ReLU (not LeakyReLU) so that the exact integer re-implementation stays integer.
        self.h_s = nn.Sequential(
            deconv(N, M),
            nn.ReLU(inplace=True),
            deconv(M, M * 3 // 2),
            nn.ReLU(inplace=True),
            conv(M * 3 // 2, M * 2, 3, 1),
        )
        # Initial gains follow the high-rate rule gain ∝ sqrt(λ); training refines them.
        lam = config.lambdas()
        log_gain = 0.5 * torch.log(lam / lam[config.levels // 2]).float()
        self.log_gain = nn.Parameter(log_gain[:, None].repeat(1, M))
        self.log_inverse_gain = nn.Parameter(-log_gain[:, None].repeat(1, M))

    def level_weights(self, level: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Split real levels into (lower index, upper index, fraction) for interpolation."""
        level = level.clamp(0, self.config.levels - 1)
        lower = level.floor().long().clamp(max=self.config.levels - 2)
        return lower, lower + 1, (level - lower).unsqueeze(-1)

    def gains(self, level: Tensor) -> tuple[Tensor, Tensor]:
        """Gain and inverse gain, shape (B, M, 1, 1), for real levels in [0, levels - 1]."""
        lo, hi, frac = self.level_weights(level)
        g = torch.exp(torch.lerp(self.log_gain[lo], self.log_gain[hi], frac))
        ig = torch.exp(torch.lerp(self.log_inverse_gain[lo], self.log_inverse_gain[hi], frac))
        return g[:, :, None, None], ig[:, :, None, None]

    def lambda_at(self, level: Tensor) -> Tensor:
        """The rate–distortion λ the model was trained for at each real level."""
        lam = self.config.lambdas().to(level.device, torch.float32).log()
        lo, hi, frac = self.level_weights(level)
        return torch.exp(torch.lerp(lam[lo], lam[hi], frac.squeeze(-1)))

    @staticmethod
    def split_params(params: Tensor) -> tuple[Tensor, Tensor]:
        """h_s output -> (scales, means)."""
        scales, means = params.chunk(2, dim=1)
        return scales, means
