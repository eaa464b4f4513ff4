"""Adam (Kingma & Ba 2015) for the few tensors that refinement optimises.

``torch.optim.Adam`` imports ``torch._dynamo`` on construction, about 2 s of a one-image
encode on a CPU; this is the same update (PyTorch's default settings: no weight decay, no
AMSGrad) in plain tensor arithmetic, with the learning rate settable between steps.
"""

from __future__ import annotations

import torch
from torch import Tensor


class Adam:
    """Adam over ``params`` (leaf tensors with ``requires_grad``), updated in place by ``step``."""

    def __init__(
        self, params: list[Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ) -> None:
        self.params = list(params)
        self.lr = lr
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.steps = 0
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One update with the gradients in ``p.grad`` (parameters without one are skipped)."""
        self.steps += 1
        correction1 = 1 - self.beta1**self.steps
        correction2 = 1 - self.beta2**self.steps
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            if p.grad is None:
                continue
            m.lerp_(p.grad, 1 - self.beta1)
            v.mul_(self.beta2).addcmul_(p.grad, p.grad, value=1 - self.beta2)
            denom = (v.sqrt() / correction2**0.5).add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr / correction1)
