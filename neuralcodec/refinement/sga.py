"""Stochastic Gumbel annealing (Yang, Bamler & Mandt 2020): soft rounding of latents to the
integer below or above, sharpened towards hard rounding as the temperature falls."""

from __future__ import annotations

import torch
from torch import Tensor

_EPS = 1e-4


def sga_round(r: Tensor, tau: float, noise: Tensor) -> Tensor:
    """Soft rounding of r to floor(r) or floor(r) + 1 (SGA, Gumbel-softmax over the two).

    ``noise`` is Logistic(0, 1), the difference of the two categories' Gumbel noises.
    """
    floor = torch.floor(r).detach()
    d = (r - floor).clamp(_EPS, 1 - _EPS)
    logit = (torch.atanh(d) - torch.atanh(1 - d)) / tau  # log-odds of ceil over floor
    return floor + torch.sigmoid((logit + noise) / tau)


def logistic_noise(gen: torch.Generator, shape: torch.Size, device: torch.device) -> Tensor:
    """Logistic(0, 1) noise of ``shape`` drawn on the CPU from ``gen`` (so the same on every
    device), then moved to ``device``."""
    u = torch.rand(shape, generator=gen).clamp_(1e-6, 1 - 1e-6)
    return (torch.log(u) - torch.log1p(-u)).to(device)
