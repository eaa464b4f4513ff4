"""The exact hyper-synthesis (neuralcodec.exact) in numpy: the same integers, the same bits,
without torch.

Every weight and activation is an integer carried in float64 and every partial sum stays below
2^53 (MAX_TAPS), so a convolution computed as a sum of one matrix product per kernel tap, in any
order and by any BLAS, gives exactly the integers torch's float64 convolution gives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WEIGHT_BITS = 14  # |w_int| < 2^14
ACTIVATION_BITS = 20
ACTIVATION_MAX = 2**ACTIVATION_BITS - 1  # activations are clamped to [0, 2^20)
# Worst case |acc| < 2^14 * 2^20 * (kernel taps) must stay below 2^53.
MAX_TAPS = 2 ** (53 - WEIGHT_BITS - ACTIVATION_BITS - 1)


def conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int, padding: int) -> np.ndarray:
    """Cross-correlation of x (1, C_in, H, W) with weight (C_out, C_in, k, k), zero padding, as
    torch.nn.functional.conv2d; float64 in, float64 out."""
    _, c_in, height, width = x.shape
    c_out, _, k, _ = weight.shape
    padded = np.pad(x[0], ((0, 0), (padding, padding), (padding, padding)))
    out_h = (height + 2 * padding - k) // stride + 1
    out_w = (width + 2 * padding - k) // stride + 1
    out = np.repeat(bias.astype(np.float64)[:, None], out_h * out_w, axis=1)
    taps = np.ascontiguousarray(weight.transpose(2, 3, 0, 1))  # BLAS needs contiguous operands
    for i in range(k):
        for j in range(k):
            window = padded[
                :, i : i + stride * (out_h - 1) + 1 : stride, j : j + stride * (out_w - 1) + 1 : stride
            ]
            out += taps[i, j] @ window.reshape(c_in, out_h * out_w)
    return out.reshape(1, c_out, out_h, out_w)


def conv_transpose2d(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int, padding: int, output_padding: int
) -> np.ndarray:
    """Transposed convolution of x (1, C_in, H, W) with weight (C_in, C_out, k, k), as
    torch.nn.functional.conv_transpose2d: input (iy, ix) adds weight[:, :, ky, kx] times its
    values to output (iy·stride − padding + ky, ix·stride − padding + kx). One matrix product per
    tap over the inputs it reaches, so no product is spent on the zeros between samples."""
    _, c_in, height, width = x.shape
    c_out, k = weight.shape[1], weight.shape[2]
    out_h = (height - 1) * stride - 2 * padding + k + output_padding
    out_w = (width - 1) * stride - 2 * padding + k + output_padding
    out = np.empty((c_out, out_h, out_w))
    out[:] = bias.astype(np.float64)[:, None, None]
    taps = np.ascontiguousarray(weight.transpose(2, 3, 1, 0))  # (k, k, C_out, C_in)

    def reach(tap: int, size: int, out_size: int) -> tuple[slice, slice]:
        """Inputs whose output lands inside, and the strided outputs they land on."""
        first = max(0, -(-(padding - tap) // stride))
        last = min(size - 1, (out_size - 1 + padding - tap) // stride)
        start = first * stride - padding + tap
        return slice(first, last + 1), slice(start, start + (last - first) * stride + 1, stride)

    for ky in range(k):
        rows_in, rows_out = reach(ky, height, out_h)
        for kx in range(k):
            cols_in, cols_out = reach(kx, width, out_w)
            window = np.ascontiguousarray(x[0, :, rows_in, cols_in])
            if window.size:
                product = taps[ky, kx] @ window.reshape(c_in, -1)
                out[:, rows_out, cols_out] += product.reshape(c_out, *window.shape[1:])
    return out[None]


@dataclass(frozen=True)
class Layer:
    """One integer conv layer (see exact.ExactLayer): int-valued float64 weights and bias."""

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
        return cls(
            weight.astype(np.float64), bias.astype(np.float64), ws, os_, stride, pad, opad, bool(transposed)
        )


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
                out = acc * 2.0**-total_shift
                half = out.shape[1] // 2
                return out[:, :half], out[:, half:]
            # ReLU, rescale to the next activation's fixed point, round half up, clamp.
            x = np.floor(np.maximum(acc, 0) * 2.0 ** (layer.output_shift - total_shift) + 0.5)
            x = np.minimum(x, ACTIVATION_MAX)
            shift_in = layer.output_shift
        raise RuntimeError("unreachable")
