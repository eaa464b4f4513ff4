"""More gain levels above a model's top: the high-fidelity end of the quality range.

A model's λ are log-spaced from ``lambda_min`` to ``lambda_max`` over ``levels`` gain levels.
Extending it by ``extra`` levels keeps that spacing (ratio r between neighbours), so levels
0..levels-1 keep their λ and the new ones sit at λ_max·r, λ_max·r², ... Their gain vectors start
as the log-linear continuation of the top segment (what the high-rate rule gain ∝ √λ predicts
when the top two levels already follow it); training then fits them.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from torch import Tensor

from neuralcodec.models.hyperprior import HyperpriorConfig
from neuralcodec.training.portable import MANIFEST, is_portable


def extended_config(config: HyperpriorConfig, extra: int) -> HyperpriorConfig:
    """``config`` with ``extra`` more levels above its top, at the same λ spacing."""
    if extra < 0:
        raise ValueError(f"extra levels must be >= 0, got {extra}")
    ratio = (config.lambda_max / config.lambda_min) ** (1 / (config.levels - 1))
    return dataclasses.replace(
        config, levels=config.levels + extra, lambda_max=config.lambda_max * ratio**extra
    )


def extend_rows(log_gain: Tensor, extra: int) -> Tensor:
    """(levels, M) log-gains with ``extra`` rows appended, continuing the last row's slope."""
    step = log_gain[-1] - log_gain[-2]
    ahead = torch.arange(1, extra + 1, dtype=log_gain.dtype, device=log_gain.device)[:, None]
    return torch.cat([log_gain, log_gain[-1] + ahead * step])


def extend_state(state: dict[str, Tensor], extra: int, prefix: str = "transforms.") -> dict[str, Tensor]:
    """A model state dict whose gain tables gained ``extra`` extrapolated levels; all else as is."""
    out = dict(state)
    for name in ("log_gain", "log_inverse_gain"):
        out[prefix + name] = extend_rows(state[prefix + name], extra)
    return out


def init_config(path: Path) -> HyperpriorConfig:
    """The config of exported weights or of a portable folder (what ``--init`` names)."""
    if is_portable(path):
        return HyperpriorConfig(**json.loads((Path(path) / MANIFEST).read_text())["run"]["config"])
    return HyperpriorConfig(**torch.load(path, map_location="cpu", weights_only=True)["config"])
