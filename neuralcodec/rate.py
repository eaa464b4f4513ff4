"""Differentiable rates at run time, consistent with what the entropy coder spends.

- z: the model's integer z tables are a discrete pmf per channel. ``ZTableRate`` gives the
  piecewise-linear interpolation of their −log2 probabilities between integers: exactly
  the coded table bits at integers, and, for a soft-rounded value floor + w, the
  w-weighted bits of floor and ceil (SGA's expected rate).
- y: the discretised Gaussian of the mean-scale hyperprior, −log2(Φ((r+½)/σ) − Φ((r−½)/σ))
  for the residual r = y − μ, scales clamped below at the y tables' smallest scale, as the
  coder's scale table is. This is the model's own estimate (``entropy_models.gaussian_bits``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from neuralcodec.entropy_models import PRECISION, SCALE_MIN, TableSet

LIKELIHOOD_MIN = 1e-9  # CompressAI's likelihood lower bound


class ZTableRate:
    """Bits of z under per-channel integer tables, interpolated linearly between integers."""

    def __init__(self, tables: TableSet, device: torch.device | str = "cpu") -> None:
        channels = len(tables.lengths)
        width = int(tables.lengths.max())
        bits = np.zeros((channels, width), dtype=np.float64)
        for c in range(channels):
            s, n = int(tables.starts[c]), int(tables.lengths[c])
            bits[c, :n] = PRECISION - np.log2(tables.counts[s : s + n].astype(np.float64))
            bits[c, n:] = bits[c, n - 1]  # never read: values are clamped into the table
        self.bits = torch.from_numpy(bits).float().to(device)
        self.low = torch.from_numpy(tables.offsets.astype(np.float32)).to(device).view(1, -1, 1, 1)
        self.high = self.low + torch.from_numpy((tables.lengths - 1).astype(np.float32)).to(device).view(
            1, -1, 1, 1
        )

    def clamp(self, z: Tensor) -> Tensor:
        """z (B, N, h, w) clamped into each channel's table range (what the coder does)."""
        return torch.maximum(torch.minimum(z, self.high), self.low)

    def __call__(self, z: Tensor) -> Tensor:
        """Total bits of z (B, N, h, w), per image (B,); z is clamped into the tables first."""
        z = self.clamp(z)
        idx = torch.minimum(torch.floor(z), self.high - 1).clamp_min(self.low) - self.low
        frac = z - self.low - idx
        channels, width = self.bits.shape
        flat = idx.long().transpose(0, 1).reshape(channels, -1)
        lo = torch.gather(self.bits, 1, flat).view(idx.transpose(0, 1).shape).transpose(0, 1)
        hi = torch.gather(self.bits, 1, (flat + 1).clamp_max(width - 1))
        hi = hi.view(idx.transpose(0, 1).shape).transpose(0, 1)
        return (lo + frac * (hi - lo)).flatten(1).sum(1)


def gaussian_rate(residual: Tensor, scales: Tensor) -> Tensor:
    """Bits of residuals r = ŷ − μ under N(0, σ²) discretised to integers, per image (B,)."""
    s = scales.clamp_min(SCALE_MIN)
    v = residual.abs()
    # Symmetric form (upper tail via the lower one) keeps precision for large |r|.
    likelihood = torch.special.ndtr((0.5 - v) / s) - torch.special.ndtr((-0.5 - v) / s)
    return -torch.log(likelihood.clamp_min(LIKELIHOOD_MIN)).flatten(1).sum(1) / math.log(2)
