"""Checkerboard weights files for tests: a hyperprior weights file plus a seeded random context,
quantised through the same export code as a trained one (no real photos needed)."""

from __future__ import annotations

from pathlib import Path

import torch

from neuralcodec.float_context import FloatCheckerboardContext
from neuralcodec.training.context_export import checkerboard_weights, quantize_context


def random_context(channels: int, seed: int, zero_output: bool = False) -> FloatCheckerboardContext:
    """A float context with random weights (its last layer too, unless ``zero_output``: then it
    is the hyperprior exactly, as training starts)."""
    torch.manual_seed(seed)
    context = FloatCheckerboardContext(channels)
    if not zero_output:
        last = context.entropy_parameters[-1]
        torch.nn.init.normal_(last.weight, std=0.02)
        torch.nn.init.normal_(last.bias, std=0.05)
    return context.eval()


def write_checkerboard(base: Path, out: Path, seed: int = 0, zero_output: bool = False) -> Path:
    """``base``'s weights with a random context, written to ``out`` (calibrated on random latents)."""
    state = torch.load(base, map_location="cpu", weights_only=False)
    m = int(state["config"]["M"])
    generator = torch.Generator().manual_seed(seed)
    calibration = [
        (
            torch.randn(1, 2 * m, 8, 12, generator=generator) * 2,
            torch.randn(1, m, 8, 12, generator=generator) * 4,
        )
        for _ in range(2)
    ]
    exact = quantize_context(random_context(m, seed, zero_output), calibration)
    torch.save(checkerboard_weights(state, exact, {"test": True}), out)
    return out
