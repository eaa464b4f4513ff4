"""Bit-exact hyper-synthesis: the part of the decoder that decides the coder's probabilities.

float32 convolutions give different bits on different thread counts, instruction sets and
devices, and a single differing scale index makes a file undecodable. Here every weight
and activation is an integer (weights scaled by 2^a, activations by 2^f) carried in
float64: all products and partial sums are integers below 2^53, so they are exact in any
summation order, and the result is the same on every machine. Rescaling between layers
multiplies by powers of two and rounds, which is exact as well. It always runs on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuralcodec.exact_numpy import ACTIVATION_BITS, ACTIVATION_MAX, MAX_TAPS, WEIGHT_BITS

__all__ = [
    "ACTIVATION_BITS",
    "ACTIVATION_MAX",
    "MAX_TAPS",
    "WEIGHT_BITS",
    "ExactHyperSynthesis",
    "ExactLayer",
]


@dataclass
class ExactLayer:
    """One conv layer in integer form; ``transposed`` selects ConvTranspose2d semantics."""

    weight: Tensor  # int-valued float64
    bias: Tensor  # int-valued float64, scaled by 2^(weight_shift + input_shift)
    weight_shift: int  # weight_int = round(weight * 2^weight_shift)
    output_shift: int  # fractional bits of the next activation (f); unused for the last layer
    stride: int
    padding: int
    output_padding: int
    transposed: bool

    def accumulate(self, x: Tensor) -> Tensor:
        """Integer-valued conv output (float64) for integer-valued input ``x``."""
        if self.transposed:
            return F.conv_transpose2d(
                x, self.weight, self.bias, self.stride, self.padding, self.output_padding
            )
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def to_dict(self) -> dict:
        return {
            "weight": self.weight.to(torch.int16),
            "bias": self.bias.to(torch.int64),
            "meta": torch.tensor(
                [
                    self.weight_shift,
                    self.output_shift,
                    self.stride,
                    self.padding,
                    self.output_padding,
                    int(self.transposed),
                ]
            ),
        }

    @classmethod
    def from_dict(cls, d: dict) -> ExactLayer:
        ws, os_, stride, pad, opad, transposed = (int(v) for v in d["meta"])
        return cls(d["weight"].double(), d["bias"].double(), ws, os_, stride, pad, opad, bool(transposed))


class ExactHyperSynthesis:
    """h_s in integer arithmetic: ẑ -> (scales, means) as exact dyadic float64.

    ẑ must be a multiple of 2^-``input_shift`` (integers when it is 0) with |ẑ| < 2^(20 -
    input_shift): the input is then the integer activation ẑ·2^input_shift, exact like the rest.

    The last call's result is kept: called again with the same ẑ (refinement's last scoring,
    then the coder's band of the same rows) it returns the same tensors without computing them,
    so callers must not modify them in place.
    """

    def __init__(self, layers: list[ExactLayer], input_shift: int = 0) -> None:
        self.layers = layers
        self.input_shift = input_shift
        self._last: tuple[tuple, tuple[Tensor, Tensor]] | None = None

    def __call__(self, z_hat: Tensor) -> tuple[Tensor, Tensor]:
        z_hat = z_hat.detach().to("cpu", torch.float64)
        key = (tuple(z_hat.shape), z_hat.numpy().tobytes())
        last = self._last  # one read: another thread may replace it meanwhile
        if last is not None and last[0] == key:
            return last[1]
        result = self._compute(z_hat)
        self._last = (key, result)
        return result

    def _compute(self, z_hat: Tensor) -> tuple[Tensor, Tensor]:
        shift_in = self.input_shift
        x = z_hat * 2.0**shift_in
        for i, layer in enumerate(self.layers):
            acc = layer.accumulate(x)
            total_shift = layer.weight_shift + shift_in
            if i == len(self.layers) - 1:
                out = acc * 2.0**-total_shift
                scales, means = out.chunk(2, dim=1)
                return scales, means
            # ReLU, rescale to the next activation's fixed point, round half up, clamp.
            x = torch.floor(acc.clamp_min(0) * 2.0 ** (layer.output_shift - total_shift) + 0.5)
            x = x.clamp_max(ACTIVATION_MAX)
            shift_in = layer.output_shift
        raise RuntimeError("unreachable")

    def state_dict(self) -> list[dict]:
        return [layer.to_dict() for layer in self.layers]

    @classmethod
    def from_state_dict(cls, state: list[dict], input_shift: int = 0) -> ExactHyperSynthesis:
        return cls([ExactLayer.from_dict(d) for d in state], input_shift)

    def to_float_module_weights(self) -> list[tuple[Tensor, Tensor]]:
        """(weight, bias) in float, to resume training from exported weights."""
        out, shift_in = [], self.input_shift
        for layer in self.layers:
            total = layer.weight_shift + shift_in
            out.append((layer.weight * 2.0**-layer.weight_shift, layer.bias * 2.0**-total))
            shift_in = layer.output_shift
        return out


def quantize_hyper_synthesis(
    h_s: nn.Sequential, calibration_z: Tensor, input_shift: int = 0
) -> ExactHyperSynthesis:
    """Integer version of a float h_s (conv/deconv layers separated by ReLU) for inputs that are
    multiples of 2^-``input_shift``.

    Activation shifts are chosen from the largest activation seen on ``calibration_z``
    (quantised z of real images), with 16x headroom before clamping kicks in.
    """
    convs = [m for m in h_s if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    layers: list[ExactLayer] = []
    x_float = calibration_z.double()
    shift_in = input_shift
    for i, m in enumerate(convs):
        w = m.weight.detach().double()
        b = m.bias.detach().double()
        taps = w.shape[1 if isinstance(m, nn.Conv2d) else 0] * w.shape[2] * w.shape[3]
        if taps > MAX_TAPS:
            raise ValueError(f"layer {i} has {taps} taps; exact arithmetic needs <= {MAX_TAPS}")
        weight_shift = int(torch.floor(torch.log2((2**WEIGHT_BITS - 1) / w.abs().max())).item())
        transposed = isinstance(m, nn.ConvTranspose2d)
        # Float reference activation, to size the next fixed-point format.
        if transposed:
            x_float = F.conv_transpose2d(x_float, w, b, m.stride, m.padding, m.output_padding)
        else:
            x_float = F.conv2d(x_float, w, b, m.stride, m.padding)
        last = i == len(convs) - 1
        if not last:
            x_float = x_float.clamp_min(0)
            peak = max(float(x_float.max()), 1e-3) * 16
            output_shift = int(torch.floor(torch.log2(torch.tensor(ACTIVATION_MAX / peak))).item())
        else:
            output_shift = 0
        layers.append(
            ExactLayer(
                weight=torch.round(w * 2.0**weight_shift),
                bias=torch.round(b * 2.0 ** (weight_shift + shift_in)),
                weight_shift=weight_shift,
                output_shift=output_shift,
                stride=m.stride[0],
                padding=m.padding[0],
                output_padding=m.output_padding[0] if transposed else 0,
                transposed=transposed,
            )
        )
        shift_in = output_shift
    return ExactHyperSynthesis(layers, input_shift)
