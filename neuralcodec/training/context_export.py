"""A trained checkerboard context (neuralcodec.float_context) in the integer form the
codec runs (neuralcodec.exact_context), and the weights file of a checkerboard model.

Fixed-point formats come from calibration: the largest magnitude each activation reaches on
latents of real images, with 16× headroom before the runtime's clamp (as the exact
hyper-synthesis does). Weights are 8-bit with a power-of-two scale per output channel.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from neuralcodec.checkerboard_latents import CHECKERBOARD
from neuralcodec.exact_context import WEIGHT_BITS, CheckerboardContext, IntegerLayer
from neuralcodec.exact_numpy import ACTIVATION_MAX
from neuralcodec.float_context import FloatCheckerboardContext, anchor_mask
from neuralcodec.weights_file import ALSO_DECODES

HEADROOM = 16.0


def activation_shift(peak: float) -> int:
    """Fractional bits that keep ``peak``·HEADROOM within the runtime's activation range."""
    return int(math.floor(math.log2(ACTIVATION_MAX / (max(peak, 1e-6) * HEADROOM))))


def integer_layer(conv: nn.Conv2d, input_shift: int, output_shift: int, activation: str) -> IntegerLayer:
    """A float conv layer with 8-bit weights, a power-of-two scale per output channel."""
    w = conv.weight.detach().double()
    b = conv.bias.detach().double()
    peak = w.abs().flatten(1).amax(1).clamp_min(1e-12)
    shifts = torch.floor(torch.log2((2 ** (WEIGHT_BITS - 1) - 1) / peak)).long()
    scale = (2.0 ** shifts.double()).view(-1, 1, 1, 1)
    weight = torch.round(w * scale).clamp(-127, 127)
    bias = torch.round(b * 2.0 ** (shifts.double() + input_shift))
    return IntegerLayer(
        weight.numpy().astype(np.int8),
        bias.numpy(),
        shifts.numpy().astype(np.int64),
        output_shift,
        activation,
    )


@torch.no_grad()
def quantize_context(
    context: FloatCheckerboardContext, calibration: list[tuple[Tensor, Tensor]]
) -> CheckerboardContext:
    """The integer form of a trained context. ``calibration``: (h_s parameters (1, 2M, h, w),
    anchors' ŷ (1, M, h, w)) of real images, float."""
    convs = [m for m in context.entropy_parameters if isinstance(m, nn.Conv2d)]
    slope = next(m.negative_slope for m in context.entropy_parameters if isinstance(m, nn.LeakyReLU))
    anchor_peak = param_peak = 0.0
    hidden_peaks = [0.0] * (len(convs) - 1)
    for params, anchor_hat in calibration:
        params, anchor_hat = params.double(), anchor_hat.double()
        masked = anchor_hat * anchor_mask(anchor_hat.shape[2], anchor_hat.shape[3])
        anchor_peak = max(anchor_peak, float(masked.abs().max()))
        ctx = nn.functional.conv2d(
            masked,
            context.context.weight.double(),
            context.context.bias.double(),
            padding=context.context.padding,
        )
        param_peak = max(param_peak, float(params.abs().max()), float(ctx.abs().max()))
        x = torch.cat([params, ctx], dim=1)
        for i, conv in enumerate(convs[:-1]):
            x = nn.functional.leaky_relu(
                nn.functional.conv2d(x, conv.weight.double(), conv.bias.double()), slope
            )
            hidden_peaks[i] = max(hidden_peaks[i], float(x.abs().max()))
    anchor_shift, param_shift = activation_shift(anchor_peak), activation_shift(param_peak)
    shifts = [param_shift] + [activation_shift(p) for p in hidden_peaks]
    layers = tuple(
        integer_layer(
            conv,
            shifts[i],
            shifts[i + 1] if i + 1 < len(shifts) else 0,
            "leaky" if i + 1 < len(convs) else "none",
        )
        for i, conv in enumerate(convs)
    )
    first = integer_layer(context.context, anchor_shift, param_shift, "none")
    return CheckerboardContext(first, layers, anchor_shift, param_shift, float(slope))


def to_tensors(value):
    """numpy arrays in a nested state -> torch tensors (what torch.save and the weights reader keep)."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, dict):
        return {k: to_tensors(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_tensors(v) for v in value]
    return value


def checkerboard_weights(
    base_state: dict, exact: CheckerboardContext, meta: dict, base_digest: bytes | None = None
) -> dict:
    """A checkerboard model's weights file contents: the hyperprior's (transforms, exact h_s,
    tables, unchanged) plus the integer context, under the checkerboard architecture.
    ``base_digest``: the hyperprior's decoder digest, whose files this model decodes too."""
    state = dict(base_state)
    state.pop("decoder_digest", None)  # a new decoder: the file's own digest names it
    state["architecture"] = CHECKERBOARD
    if base_digest is not None:
        state[ALSO_DECODES] = [base_digest.hex(), *base_state.get(ALSO_DECODES, [])]
    state["context_exact"] = to_tensors(exact.state())
    state["meta"] = {**base_state.get("meta", {}), **meta}
    return state
