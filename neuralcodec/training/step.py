"""One optimisation step of the rate–distortion objective (what train.py and the throughput tool time)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

from neuralcodec.training.ema import ParameterEMA
from neuralcodec.training.loss import rate_distortion_loss
from neuralcodec.training.model import TrainableHyperprior

GRAD_CLIP_NORM = 1.0  # main parameters' gradient norm is clipped to this (CompressAI's examples)


def _parameters(optimizer: torch.optim.Optimizer) -> list[Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"]]


@dataclass
class Optimisers:
    """The main and auxiliary (entropy bottleneck quantiles) optimisers; no auxiliary one when
    the entropy bottleneck is frozen (encoder-only training)."""

    main: torch.optim.Optimizer
    aux: torch.optim.Optimizer | None

    @property
    def main_params(self) -> list[Tensor]:
        return _parameters(self.main)

    @property
    def aux_params(self) -> list[Tensor]:
        return _parameters(self.aux) if self.aux is not None else []


def training_step(
    net: torch.nn.Module,
    model: TrainableHyperprior,
    x: Tensor,
    level: Tensor,
    metric: str,
    opt: Optimisers,
    ema: ParameterEMA | None = None,
    world_size: int = 1,
) -> dict[str, Tensor]:
    """Forward ``x`` at ``level`` through ``net`` (``model`` or its DDP/compiled wrapper), step both
    optimisers (main gradients clipped to ``GRAD_CLIP_NORM``, aux gradients averaged over
    ``world_size`` ranks), update ``ema``; returns the loss parts (graph still attached)."""
    out = net(x, level)
    parts = rate_distortion_loss(out, x, model.transforms.lambda_at(level), metric)
    opt.main.zero_grad(set_to_none=True)
    parts["loss"].backward()
    torch.nn.utils.clip_grad_norm_(opt.main_params, GRAD_CLIP_NORM)
    opt.main.step()
    if ema is not None:
        ema.update()
    if opt.aux is None:
        return parts
    aux_loss = model.aux_loss()
    opt.aux.zero_grad(set_to_none=True)
    aux_loss.backward()
    if world_size > 1:
        for p in opt.aux_params:
            dist.all_reduce(p.grad)
            p.grad /= world_size
    opt.aux.step()
    return parts
