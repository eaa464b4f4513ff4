"""Convolutions in numpy for NCHW arrays of one image, as torch.nn.functional computes them: one
BLAS matrix product per kernel tap (contiguous operands, so BLAS runs at full speed)."""

from __future__ import annotations

import numpy as np


def conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int, padding: int) -> np.ndarray:
    """Cross-correlation of x (1, C_in, H, W) with weight (C_out, C_in, k, k), zero padding, as
    torch.nn.functional.conv2d, in the dtype of x."""
    _, c_in, height, width = x.shape
    c_out, _, k, _ = weight.shape
    padded = np.pad(x[0], ((0, 0), (padding, padding), (padding, padding)))
    out_h = (height + 2 * padding - k) // stride + 1
    out_w = (width + 2 * padding - k) // stride + 1
    out = np.repeat(bias.astype(x.dtype)[:, None], out_h * out_w, axis=1)
    taps = np.ascontiguousarray(weight.transpose(2, 3, 0, 1), dtype=x.dtype)  # BLAS needs contiguous operands
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
    out = np.empty((c_out, out_h, out_w), dtype=x.dtype)
    out[:] = bias.astype(x.dtype)[:, None, None]
    taps = np.ascontiguousarray(weight.transpose(2, 3, 1, 0), dtype=x.dtype)  # (k, k, C_out, C_in)

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
