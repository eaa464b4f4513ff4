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


CHUNK_BYTES = 64 << 20  # at most this much of tap products held at once


def conv_transpose2d(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int, padding: int, output_padding: int
) -> np.ndarray:
    """Transposed convolution of x (1, C_in, H, W) with weight (C_in, C_out, k, k), as
    torch.nn.functional.conv_transpose2d, in the dtype of x: input (iy, ix) adds
    weight[:, :, ky, kx] times its values to output (iy·stride − padding + ky, ix·stride −
    padding + kx). The taps' products are computed a few taps at a time as one BLAS product with
    the whole input (read as it is, never copied per tap), then added into the output."""
    _, c_in, height, width = x.shape
    c_out, k = weight.shape[1], weight.shape[2]
    out_h = (height - 1) * stride - 2 * padding + k + output_padding
    out_w = (width - 1) * stride - 2 * padding + k + output_padding
    out = np.empty((c_out, out_h, out_w), dtype=x.dtype)
    out[:] = bias.astype(x.dtype)[:, None, None]
    taps = [(ky, kx) for ky in range(k) for kx in range(k)]
    # (taps, C_out, C_in): the rows of one product, tap after tap
    matrix = np.ascontiguousarray(weight.transpose(2, 3, 1, 0), dtype=x.dtype).reshape(k * k * c_out, c_in)
    inputs = np.ascontiguousarray(x[0], dtype=x.dtype).reshape(c_in, height * width)
    per_tap = c_out * height * width * x.dtype.itemsize
    chunk = max(1, min(len(taps), CHUNK_BYTES // max(per_tap, 1)))

    def reach(tap: int, size: int, out_size: int) -> tuple[slice, slice]:
        """Inputs whose output lands inside, and the strided outputs they land on."""
        first = max(0, -(-(padding - tap) // stride))
        last = min(size - 1, (out_size - 1 + padding - tap) // stride)
        start = first * stride - padding + tap
        return slice(first, last + 1), slice(start, start + (last - first) * stride + 1, stride)

    for c0 in range(0, len(taps), chunk):
        group = taps[c0 : c0 + chunk]
        rows = matrix[c0 * c_out : (c0 + len(group)) * c_out]
        products = (rows @ inputs).reshape(len(group), c_out, height, width)
        for (ky, kx), product in zip(group, products):
            rows_in, rows_out = reach(ky, height, out_h)
            cols_in, cols_out = reach(kx, width, out_w)
            if rows_in.start < rows_in.stop and cols_in.start < cols_in.stop:
                out[:, rows_out, cols_out] += product[:, rows_in, cols_in]
    return out[None]
