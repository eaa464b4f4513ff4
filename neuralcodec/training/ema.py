"""Exponential moving average of a model's trainable parameters, for evaluation and export.

Training keeps optimising the raw parameters; the average (``decay`` close to 1) smooths the
last steps' noise and is what a run evaluates, sends back from a GPU and exports.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn


class ParameterEMA:
    """``shadow ← decay·shadow + (1 − decay)·param`` after every optimizer step.

    Only the parameters named in ``names`` are averaged (the others, e.g. the entropy
    bottleneck's quantiles, are taken as they are). Shadows are float32 on the parameters'
    device.
    """

    def __init__(self, model: nn.Module, decay: float, names: list[str]) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        params = dict(model.named_parameters())
        self.names = list(names)
        self.params = [params[n] for n in self.names]
        self.shadow = [p.detach().float().clone() for p in self.params]

    @torch.no_grad()
    def update(self) -> None:
        torch._foreach_lerp_(self.shadow, [p.detach().float() for p in self.params], 1.0 - self.decay)

    def state_dict(self) -> dict[str, Tensor]:
        return {n: s.detach().cpu().clone() for n, s in zip(self.names, self.shadow)}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        missing = set(self.names) - set(state)
        if missing:
            raise KeyError(f"EMA state lacks {sorted(missing)[:3]}")
        for i, name in enumerate(self.names):
            self.shadow[i] = state[name].to(self.shadow[i].device, torch.float32).clone()

    def averaged_state(self, model: nn.Module) -> dict[str, Tensor]:
        """``model.state_dict()`` with the averaged values in place of the raw parameters."""
        state = dict(model.state_dict())
        state.update(zip(self.names, self.shadow))
        return state

    @contextlib.contextmanager
    @torch.no_grad()
    def applied(self) -> Iterator[None]:
        """The model holds the averaged parameters inside the block, its own ones after it."""
        raw = [p.detach().clone() for p in self.params]
        for p, s in zip(self.params, self.shadow):
            p.copy_(s)
        try:
            yield
        finally:
            for p, r in zip(self.params, raw):
                p.copy_(r)
