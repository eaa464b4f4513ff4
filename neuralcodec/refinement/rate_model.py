"""What refinement needs from a model's entropy model: the rate of a window's latents, soft
(differentiable, for SGA) and exact (the integer tables, for scoring).

``RateModel`` is the interface (neuralcodec.refinement.rate_models picks one per architecture).
``HyperpriorRate`` is the mean-scale hyperprior's rate: z under the model's integer z tables
(neuralcodec.rate.ZTableRate, exact at integers), y under the discretised Gaussian whose means
and scales come from the float h_s; exactly, ẑ and the residuals k = ŷ − μ_exact under the z
and y tables, with the exact integer h_s's means and scale indexes, as the coder codes them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from neuralcodec import codec, quantisation
from neuralcodec.entropy_models import TableSet, scale_indexes, table_bits
from neuralcodec.models.loaded import LoadedModel
from neuralcodec.rate import ZTableRate, gaussian_rate
from neuralcodec.refinement.geometry import Window


@dataclass(frozen=True)
class ExactLatents:
    """A window's latents as the coder codes them, and their bits under the integer tables."""

    z_core: Tensor  # the core's ẑ symbols (float64, CPU; ẑ less the model's z offsets)
    k: np.ndarray  # the window's residual symbols, flat in (channel, row, column) order (int64)
    index: np.ndarray  # the y table of each (``k`` lies inside it)
    means: Tensor  # the window's exact means μ_exact (float64, CPU), the shape of ŷ
    y_hat: Tensor  # ŷ = μ_exact + k (float32, CPU)
    bits: float  # table bits of the core's ẑ and of the window's ŷ


class WindowRate(Protocol):
    """The rate of one window's latents: its core's ẑ (symbol units) and the window's ŷ."""

    y_tables: TableSet  # the tables ``ExactLatents.k`` is coded with (greedy rounding's moves)

    def clamp_z(self, z: Tensor) -> Tensor:
        """ẑ symbols clamped into the range the z tables code (what the coder does)."""
        ...

    def soft(self, z_core: Tensor, latents: Callable[[Tensor], Tensor]) -> tuple[Tensor, Tensor]:
        """(ŷ, bits) of the window, differentiable: ``z_core`` are the core's ẑ symbols (soft),
        ``latents(means)`` makes the window's ŷ from the means the model predicts for it."""
        ...

    def exact(self, z_core: Tensor, y: Tensor) -> ExactLatents:
        """What the coder makes of core z symbols ``z_core`` (rounded and clamped here) and the
        window's y ``y`` (each rounded to its mean's integer grid and clamped into its table)."""
        ...

    def word_rounding_bits(self) -> int:
        """How far the coded size of the window's latents may stray from their table bits
        (the ANS streams' final states and word rounding)."""
        ...


class RateModel(Protocol):
    """A model's rate, for refinement: one ``WindowRate`` per window."""

    def window(self, z: Tensor, window: Window) -> WindowRate:
        """The rate of ``window`` of an image whose current ẑ symbols are ``z`` (1, N, rows, cols;
        float32 CPU, rounded and clamped here): outside the core they stay as they are."""
        ...


class HyperpriorRate:
    """The mean-scale hyperprior's rate (see the module docstring) on ``device``."""

    def __init__(self, model: LoadedModel, device: torch.device) -> None:
        self.transforms = model.transforms_on(device)
        self.device = device
        self.z_rate = ZTableRate(model.z_tables, device)
        # z is refined in symbol units (ẑ − offset, integers when rounded); h_s takes ẑ.
        self.z_offsets = codec.z_offsets(model)
        self.hyper_synthesis = model.hyper_synthesis
        self.scale_table = model.scale_table
        self.z_tables = model.z_tables
        self.y_tables = model.y_tables

    def window(self, z: Tensor, window: Window) -> HyperpriorWindowRate:
        return HyperpriorWindowRate(self, window, z)


class HyperpriorWindowRate:
    """``HyperpriorRate`` of one window: h_s runs on the window's z region, ``window.hs_z``."""

    STREAMS_PER_BAND = 1  # ANS streams the coder writes for each band of y

    def __init__(self, model: HyperpriorRate, window: Window, z: Tensor) -> None:
        self.model = model
        self.y_tables = model.y_tables
        self.window = window
        # Context: the current state, z rounded and clamped as the coder will.
        self.z_context = model.z_rate.clamp(torch.round(z[window.image_hs_z]).to(model.device))
        # The last exact scales, means and table indexes: greedy rounds leave ẑ as it is.
        self._last_hyper: tuple[bytes, tuple[Tensor, Tensor, np.ndarray]] | None = None

    def clamp_z(self, z: Tensor) -> Tensor:
        return self.model.z_rate.clamp(z)

    def soft(self, z_core: Tensor, latents: Callable[[Tensor], Tensor]) -> tuple[Tensor, Tensor]:
        """Bits: the z tables' interpolated bits of ``z_core`` and the discretised Gaussian's of
        the window's ŷ, under the float h_s's means and scales."""
        scales, means = self.model.transforms.split_params(self._soft_params(z_core))
        y_hat = latents(means)
        bits = self.model.z_rate(z_core).sum() + gaussian_rate(y_hat - means, scales).sum()
        return y_hat, bits

    def _soft_params(self, z_core: Tensor) -> Tensor:
        """The float h_s's (scales ‖ means) of the window's y for core ẑ symbols ``z_core``."""
        t = self.model.transforms
        z_win = self.z_context.clone()
        z_win[self.window.z_core] = z_core
        offsets = self.model.z_offsets.to(self.model.device).float()
        return t.h_s(z_win + offsets).float()[self.window.hs_crop]

    def _exact_hyper(self, z_hard: Tensor) -> tuple[Tensor, Tensor, np.ndarray]:
        """The window's exact (scales, means) for ẑ symbols ``z_hard`` (float64) and the y table
        of each (int64, the same shape)."""
        key = z_hard.numpy().tobytes()
        if self._last_hyper is None or self._last_hyper[0] != key:
            model = self.model
            scales, means = model.hyper_synthesis(z_hard + model.z_offsets)
            crop = self.window.hs_crop
            scales, means = scales[crop], means[crop]
            self._last_hyper = key, (scales, means, scale_indexes(scales.numpy(), model.scale_table))
        return self._last_hyper[1]

    def _hard_z(self, z_core: Tensor) -> Tensor:
        """The window's ẑ symbols (float64, CPU) with the core's rounded and clamped."""
        z_win = self.z_context.clone()
        z_win[self.window.z_core] = torch.round(self.model.z_rate.clamp(z_core))
        return z_win.cpu().double()

    def _z_bits(self, z_hard: Tensor) -> tuple[Tensor, float]:
        """The core's ẑ symbols and their bits under the z tables."""
        z_core_hard = z_hard[self.window.z_core]
        zs = z_core_hard.flatten().numpy().astype(np.int64)
        z_index = np.repeat(np.arange(z_core_hard.shape[1]), z_core_hard.shape[2] * z_core_hard.shape[3])
        return z_core_hard, table_bits(zs, z_index, self.model.z_tables)

    def exact(self, z_core: Tensor, y: Tensor) -> ExactLatents:
        model = self.model
        with torch.no_grad():
            z_hard = self._hard_z(z_core)
            _, means, index = self._exact_hyper(z_hard)
            index = index.ravel()
            means_np = means.numpy()
            k = quantisation.y_symbols(y.cpu().double().numpy(), means_np, index, model.y_tables)
            y_hat = torch.from_numpy(quantisation.dequantize(k, means_np))
        z_core_hard, z_bits = self._z_bits(z_hard)
        bits = z_bits + table_bits(k, index, model.y_tables)
        return ExactLatents(z_core_hard, k, index, means, y_hat, bits)

    def word_rounding_bits(self) -> int:
        """ANS streams end in whole 32-bit words after a 64-bit state: 64 bits for each band
        stream the core's rows can touch (one more band than they fill) and for z."""
        r0, r1, _, _ = self.window.core_z
        bands = -(-(r1 - r0) // codec.BAND_ROWS) + 1
        return 64 * (self.STREAMS_PER_BAND * bands + 1)
