"""The exact hyper-synthesis (neuralcodec.exact) in numpy: the same integers, the same bits,
without torch.

Every weight and activation is an integer carried in float64 and every partial sum stays below
2^53 (MAX_TAPS), so the convolutions of neuralcodec.numpy_conv (one matrix product per kernel
tap, summed in any order by any BLAS) give exactly the integers torch's float64 convolution
gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from neuralcodec.numpy_conv import conv2d, conv_transpose2d

WEIGHT_BITS = 14  # |w_int| < 2^14
ACTIVATION_BITS = 20
ACTIVATION_MAX = 2**ACTIVATION_BITS - 1  # activations are clamped to [0, 2^20)
# Worst case |acc| < 2^14 * 2^20 * (kernel taps) must stay below 2^53.
MAX_TAPS = 2 ** (53 - WEIGHT_BITS - ACTIVATION_BITS - 1)


def context_rows(layers: Sequence[Any]) -> int:
    """Rows (and columns) of input a chain of square convolutions (``layers``: each with
    ``weight`` (…, k, k), ``stride``, ``padding``, ``transposed``, as Layer and exact.ExactLayer)
    reads on each side of the outputs of one input row: the context a band of input rows needs
    for its outputs to equal the whole input's. Output row o of a convolution reads inputs
    s·o − p .. s·o − p + k − 1; of a transposed one, ⌈(o + p − k + 1)/s⌉ .. ⌊(o + p)/s⌋. For
    the mean-scale h_s (two 5×5 transposed layers of stride 2, then a 3×3 convolution): 2."""
    upsampling = 1
    for layer in layers:
        upsampling = upsampling * layer.stride if layer.transposed else upsampling // layer.stride
    low, high = 0, max(1, upsampling) - 1  # the outputs of input row 0
    for layer in reversed(layers):
        k, s, p = layer.weight.shape[-1], layer.stride, layer.padding
        if layer.transposed:
            low, high = -((k - 1 - p - low) // s), (high + p) // s
        else:
            low, high = s * low - p, s * high - p + k - 1
    return max(0, -low, high)


@dataclass(frozen=True)
class Layer:
    """One integer conv layer (see exact.ExactLayer): integer weights and bias as stored (int16,
    int64), which the convolutions carry in the activations' float64 as they arrange them."""

    weight: np.ndarray
    bias: np.ndarray
    weight_shift: int
    output_shift: int
    stride: int
    padding: int
    output_padding: int
    transposed: bool

    def accumulate(self, x: np.ndarray) -> np.ndarray:
        if self.transposed:
            return conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, self.output_padding)
        return conv2d(x, self.weight, self.bias, self.stride, self.padding)

    @classmethod
    def from_arrays(cls, weight: np.ndarray, bias: np.ndarray, meta: np.ndarray) -> Layer:
        """From a weights file's ``h_s_exact`` entry (int16 weight, int64 bias, six ints of meta)."""
        ws, os_, stride, pad, opad, transposed = (int(v) for v in meta)
        return cls(weight, bias, ws, os_, stride, pad, opad, bool(transposed))


class HyperSynthesis:
    """ẑ (1, N, h, w) float64, multiples of 2^-``input_shift`` -> (scales, means) float64, bit for
    bit what exact.ExactHyperSynthesis returns."""

    def __init__(self, layers: list[Layer], input_shift: int = 0) -> None:
        self.layers = layers
        self.input_shift = input_shift

    @classmethod
    def from_state(cls, state: list[dict], input_shift: int = 0) -> HyperSynthesis:
        """From ``h_s_exact`` as stored (each entry's values: anything ``np.asarray`` takes)."""
        return cls(
            [Layer.from_arrays(*(np.asarray(d[key]) for key in ("weight", "bias", "meta"))) for d in state],
            input_shift,
        )

    def __call__(self, z_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        shift_in = self.input_shift
        x = np.asarray(z_hat, dtype=np.float64) * 2.0**shift_in
        for i, layer in enumerate(self.layers):
            acc = layer.accumulate(x)
            total_shift = layer.weight_shift + shift_in
            if i == len(self.layers) - 1:
                acc *= 2.0**-total_shift
                half = acc.shape[1] // 2
                return acc[:, :half], acc[:, half:]
            # ReLU, rescale to the next activation's fixed point, round half up, clamp: in place,
            # the same operations in the same order as out of place (so the same bits).
            np.maximum(acc, 0, out=acc)
            acc *= 2.0 ** (layer.output_shift - total_shift)
            acc += 0.5
            x = np.minimum(np.floor(acc, out=acc), ACTIVATION_MAX, out=acc)
            shift_in = layer.output_shift
        raise RuntimeError("unreachable")
