"""Building blocks of the transforms: strided convolutions and GDN.

GDN keeps CompressAI's parametrisation (``beta`` and ``gamma`` stored as the square roots
of their lower-bounded values) so the model trains exactly like CompressAI's GDN, while the
inference path never needs to import CompressAI.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def conv(in_ch: int, out_ch: int, kernel_size: int = 5, stride: int = 2) -> nn.Conv2d:
    """Strided 'same' convolution: output is input / stride (input a multiple of stride)."""
    return nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=kernel_size // 2)


def deconv(in_ch: int, out_ch: int, kernel_size: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    """Transposed convolution that multiplies height and width by ``stride`` exactly."""
    return nn.ConvTranspose2d(
        in_ch,
        out_ch,
        kernel_size,
        stride=stride,
        output_padding=stride - 1,
        padding=kernel_size // 2,
    )


class _NonNegative(nn.Module):
    """x -> max(x, bound)^2 - pedestal, with a gradient that still flows below the bound.

    Same maths as CompressAI's NonNegativeParametrizer, so stored values are compatible.
    """

    def __init__(self, minimum: float = 0.0, reparam_offset: float = 2**-18) -> None:
        super().__init__()
        self.pedestal = reparam_offset**2
        self.bound = (minimum + self.pedestal) ** 0.5

    def init(self, x: Tensor) -> Tensor:
        return torch.sqrt(torch.clamp(x + self.pedestal, min=self.pedestal))

    def forward(self, x: Tensor) -> Tensor:
        bounded = lower_bound(x, self.bound)
        return bounded * bounded - self.pedestal


class _LowerBound(torch.autograd.Function):
    """max(x, bound) whose gradient passes when x is below the bound but pushed upwards."""

    @staticmethod
    def forward(ctx, x: Tensor, bound: float) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.bound = bound
        return torch.clamp(x, min=bound)

    @staticmethod
    def backward(ctx, grad_output: Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        pass_through = (x >= ctx.bound) | (grad_output < 0)
        return pass_through.to(grad_output.dtype) * grad_output, None


def lower_bound(x: Tensor, bound: float) -> Tensor:
    """max(x, bound); the gradient passes below the bound where it pushes x upwards."""
    return _LowerBound.apply(x, bound)


class GDN(nn.Module):
    """Generalized divisive normalisation (Ballé et al. 2016); ``inverse=True`` gives IGDN.

    y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2). Under bf16 autocast the normaliser runs
    in bf16 too: keeping it in float32 made a training step 1.6x slower on this CPU (AMX).
    """

    def __init__(
        self, channels: int, inverse: bool = False, beta_min: float = 1e-6, gamma_init: float = 0.1
    ) -> None:
        super().__init__()
        self.inverse = inverse
        self.beta_reparam = _NonNegative(minimum=beta_min)
        self.gamma_reparam = _NonNegative()
        self.beta = nn.Parameter(self.beta_reparam.init(torch.ones(channels)))
        gamma = gamma_init * torch.eye(channels)
        self.gamma = nn.Parameter(self.gamma_reparam.init(gamma))

    def effective_parameters(self) -> tuple[Tensor, Tensor]:
        """Return (beta, gamma) as used in the formula, e.g. for export."""
        beta = self.beta_reparam(self.beta)
        gamma = self.gamma_reparam(self.gamma)
        return beta, gamma

    def forward(self, x: Tensor) -> Tensor:
        beta, gamma = self.effective_parameters()
        channels = gamma.shape[0]
        norm = nn.functional.conv2d(x * x, gamma.view(channels, channels, 1, 1), beta)
        # In place (the same values, a third less time at inference): conv2d's backward does
        # not need its output, and where no gradient is taken nothing needs the root either.
        norm = norm.sqrt_() if self.inverse else norm.rsqrt_()
        if (torch.is_grad_enabled() and norm.requires_grad) or norm.dtype != x.dtype:
            return x * norm
        return norm.mul_(x)
