"""Checkerboard spatial context (He et al. 2021, "Checkerboard Context Model for Efficient Learned
Image Compression") on top of a frozen mean-scale hyperprior: a training-side probe only.

The latents y are split by the parity of row + column: *anchors* ((row + col) even) keep the
hyperprior's means and scales; *non-anchors* get theirs from the hyperprior's parameters plus a
context read from the anchors' decoded values ŷ (a 5×5 convolution, M → 2M channels) through a
1×1 entropy-parameters network. That network's output is added to the hyperprior's parameters
and its last layer starts at zero, so an untrained context model is the hyperprior exactly.

Nothing in the runtime package imports this module. neuralcodec.training.context_export turns a
trained context into the integer form the codec runs (architecture ``mean-scale-checkerboard``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from neuralcodec.float_context import FloatCheckerboardContext, anchor_mask
from neuralcodec.training.loss import bits_per_pixel
from neuralcodec.training.model import TrainableHyperprior

GRAD_CLIP_NORM = 1.0


class CheckerboardProbe(nn.Module):
    """A frozen hyperprior (its transforms, gains and factorized prior never train) with a
    trainable :class:`FloatCheckerboardContext` for the non-anchors.

    ``forward(x, level)`` returns y and z likelihoods (float32; noisy in training mode, of the
    rounded latents in eval mode, as :class:`TrainableHyperprior` computes them), the non-anchor
    part of the y likelihoods, and with ``decode=True`` the frozen g_s's reconstruction of ŷ =
    round(y − mean) + mean. ``context=False`` gives the hyperprior itself (the baseline).
    """

    def __init__(
        self, base: TrainableHyperprior, hidden: tuple[int, int] | None = None, context_bf16: bool = False
    ) -> None:
        super().__init__()
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.context = FloatCheckerboardContext(base.transforms.config.M, hidden)
        self.context_bf16 = context_bf16

    def train(self, mode: bool = True) -> CheckerboardProbe:
        """Training mode for the context only; the frozen base always evaluates (rounded ẑ)."""
        super().train(mode)
        self.base.eval()
        self.base.gaussian_conditional.train(mode)
        return self

    def frozen(self, x: Tensor, level: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(y, z likelihoods, h_s parameters, inverse gain): the frozen part, without gradients."""
        with torch.no_grad():
            return self.base.hyperprior(x, level)

    def forward(self, x: Tensor, level: Tensor, context: bool = True, decode: bool = False) -> dict:
        base, t = self.base, self.base.transforms
        y, z_likelihoods, params, inverse_gain = self.frozen(x, level)
        anchors = anchor_mask(y.shape[2], y.shape[3], y.device)
        if context:
            _, means = t.split_params(params)
            anchor_hat = torch.round(y - means) + means  # what a decoder has before the non-anchors
            with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=self.context_bf16):
                contextual = self.context(params, anchor_hat)
            params = torch.where(anchors, params, contextual.float())
        scales, means = t.split_params(params)
        _, y_likelihoods = base.gaussian_conditional(y, scales, means)
        out = {
            "y_likelihoods": y_likelihoods,
            "z_likelihoods": z_likelihoods,
            "non_anchor_likelihoods": torch.where(anchors, torch.ones_like(y_likelihoods), y_likelihoods),
        }
        if decode:
            with torch.no_grad():
                y_hat = torch.round(y - means) + means
                with base._autocast(x):
                    out["x_hat"] = t.g_s(y_hat * inverse_gain).float()
        return out


def rate_loss(out: dict, num_pixels: int) -> Tensor:
    """Mean bits per pixel of the non-anchors over the batch: the only rate the context changes."""
    return bits_per_pixel(out["non_anchor_likelihoods"], num_pixels).mean()


@dataclass
class ProbeTrainer:
    """The probe's training state: model, optimiser, step, history and the data stream's RNG.

    :meth:`save` and :meth:`resume` round-trip all of it, so a resumed run continues at the same
    step with the same optimiser moments, crop stream and noise stream.
    """

    probe: CheckerboardProbe
    lr: float = 2e-4
    warmup: int = 100
    levels: int = 6
    step: int = 0
    history: list[dict] = field(default_factory=list)
    train_seconds: float = 0.0
    crop_rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))

    def __post_init__(self) -> None:
        self.optimizer = torch.optim.Adam(self.probe.context.parameters(), lr=self.lr)

    def learning_rate(self) -> float:
        """Linear warm-up to ``lr`` over ``warmup`` steps, then flat."""
        return self.lr * min(1.0, (self.step + 1) / max(1, self.warmup))

    def train_step(self, x: Tensor) -> dict[str, float]:
        """One Adam step on the non-anchors' rate of ``x`` at uniformly drawn levels."""
        self.probe.train()
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate()
        level = torch.rand(x.shape[0], device=x.device) * (self.levels - 1)
        out = self.probe(x, level)
        loss = rate_loss(out, x.shape[2] * x.shape[3])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.probe.context.parameters(), GRAD_CLIP_NORM)
        self.optimizer.step()
        self.step += 1
        num_pixels = x.shape[2] * x.shape[3]
        bpp = bits_per_pixel(out["y_likelihoods"], num_pixels) + bits_per_pixel(
            out["z_likelihoods"], num_pixels
        )
        return {"loss": loss.item(), "bpp": bpp.mean().item()}

    def state_dict(self) -> dict:
        return {
            "context": self.probe.context.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "history": self.history,
            "train_seconds": self.train_seconds,
            "crop_rng": self.crop_rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.probe.context.load_state_dict(state["context"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.history = list(state["history"])
        self.train_seconds = float(state.get("train_seconds", 0.0))
        self.crop_rng.bit_generator.state = state["crop_rng"]
        torch.set_rng_state(state["torch_rng"])

    def save(self, path: Path) -> None:
        """Write the state atomically (a temporary file renamed over ``path``)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        torch.save(self.state_dict(), tmp)
        os.replace(tmp, path)

    def resume(self, path: Path) -> bool:
        """Load ``path`` if it exists; returns whether it did."""
        if not path.exists():
            return False
        self.load_state_dict(torch.load(path, map_location="cpu", weights_only=False))
        return True
