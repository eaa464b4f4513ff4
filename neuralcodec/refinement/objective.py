"""The distortion half of refinement's objective: g_s as the decoder runs it, λ, and D of the
decoded pixels as the file will show them (``Objective``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from neuralcodec import codec
from neuralcodec.models.hyperprior import HyperpriorTransforms
from neuralcodec.models.loaded import LoadedModel
from neuralcodec.msssim import ms_ssim, ms_ssim_maps, ms_ssim_of_maps


@dataclass(frozen=True)
class Objective:
    """λ·D at one quality level: D = MSE·255² for "mse" models, 1 − MS-SSIM for "ms-ssim" ones,
    measured on the image as the decoder outputs it (``gray_output``: the rounded mean of the
    decoded channels, all a grayscale file decodes to)."""

    transforms: HyperpriorTransforms  # on ``device``
    device: torch.device
    lmbda: float
    inverse_gain: Tensor  # (1, M, 1, 1) float32, on ``device``: g_s reads ŷ · inverse_gain
    metric: str
    gray_output: bool = False

    @classmethod
    def at_level(
        cls, model: LoadedModel, level: float, device: torch.device, gray_output: bool = False
    ) -> Objective:
        """The objective of ``model`` at quality ``level`` (codec.quality_to_level)."""
        transforms = model.transforms_on(device)
        level_t = torch.tensor([level], device=device)
        lmbda = float(transforms.lambda_at(level_t))
        _, inverse_gain = transforms.gains(level_t)
        return cls(transforms, device, lmbda, inverse_gain.detach().float(), model.config.metric, gray_output)

    def synthesise(self, y_hat: Tensor, crop: tuple[slice, ...]) -> Tensor:
        """The ``crop`` of g_s(ŷ · inverse gain) as the decoder computes it (float32 or bf16,
        ``codec.fast_math``), as float32; differentiable."""
        with codec.fast_math(self.device):
            g_in = (y_hat * self.inverse_gain).contiguous(memory_format=torch.channels_last)
            return self.transforms.g_s(g_in).float()[crop]

    def shown(self, x_hat: Tensor) -> Tensor:
        """The decoded image as the decoder outputs it, from g_s's float output: uint8 levels
        (as floats in [0, 1]), and for a grayscale file the rounded mean of the channels."""
        levels = torch.round(x_hat.clamp(0, 1) * 255.0)
        if self.gray_output:
            levels = torch.round(levels.mean(dim=1, keepdim=True))
        return levels / 255.0

    def as_measured(self, x_hat: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        """A decoded window and the input window as D compares them: for a grayscale file the
        channels' mean (the input's channels are equal)."""
        if self.gray_output:
            return x_hat.mean(dim=1, keepdim=True), x[:, :1]
        return x_hat, x

    def distortion(self, x_hat: Tensor, x: Tensor) -> Tensor:
        """D of a decoded window against the input window (float, differentiable)."""
        x_hat, x = self.as_measured(x_hat, x)
        if self.metric == "mse":
            return (x_hat - x).pow(2).mean() * 255.0**2
        if self.metric == "ms-ssim":
            return 1.0 - ms_ssim(x_hat, x, data_range=1.0).mean()
        raise ValueError(f"unknown metric {self.metric!r}")

    def shown_distortion(self, shown: Tensor, x: Tensor) -> tuple[float, list[Tensor] | None]:
        """D of the decoded window ``shown`` (``shown``), and for ms-ssim the maps it came from
        (kept for ``local_acceptance``; the same D, bit for bit, as ``distortion``)."""
        if self.metric != "ms-ssim":
            return float(self.distortion(shown, x)), None
        maps = ms_ssim_maps(*self.as_measured(shown, x))
        return float(1.0 - ms_ssim_of_maps(maps).mean()), maps
