"""Convolutions in numpy for NCHW arrays of one image, as torch.nn.functional computes them, as
large BLAS matrix products on contiguous operands (so BLAS runs at full speed). Integer-valued
float64 inputs and weights whose partial sums stay below 2^53 give exact results in any
summation order (neuralcodec.exact_numpy relies on it)."""

from __future__ import annotations

import numpy as np

CHUNK_BYTES = 64 << 20  # at most this much of gathered inputs or tap products held at once


def conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int, padding: int) -> np.ndarray:
    """Cross-correlation of x (1, C_in, H, W) with weight (C_out, C_in, k, k), zero padding, as
    torch.nn.functional.conv2d, in the dtype of x.

    The inputs under all k·k taps are gathered for a band of output rows at a time (at most
    CHUNK_BYTES) and multiplied with the whole kernel in one BLAS product per band."""
    _, c_in, height, width = x.shape
    c_out, _, k, _ = weight.shape
    padded = np.pad(x[0], ((0, 0), (padding, padding), (padding, padding)))
    out_h = (height + 2 * padding - k) // stride + 1
    out_w = (width + 2 * padding - k) // stride + 1
    depth = k * k * c_in
    matrix = np.ascontiguousarray(weight.transpose(0, 2, 3, 1), dtype=x.dtype).reshape(c_out, depth)
    rows = max(1, min(out_h, CHUNK_BYTES // (depth * out_w * x.dtype.itemsize)))
    gathered = np.empty(depth * rows * out_w, dtype=x.dtype)
    out = np.empty((c_out, out_h * out_w), dtype=x.dtype)
    for r0 in range(0, out_h, rows):
        n = min(rows, out_h - r0)
        columns = gathered[: depth * n * out_w].reshape(k, k, c_in, n, out_w)
        for i in range(k):
            rows_in = slice(r0 * stride + i, (r0 + n - 1) * stride + i + 1, stride)
            for j in range(k):
                columns[i, j] = padded[:, rows_in, j : j + stride * (out_w - 1) + 1 : stride]
        np.matmul(matrix, columns.reshape(depth, n * out_w), out=out[:, r0 * out_w : (r0 + n) * out_w])
    out += bias.astype(x.dtype)[:, None]
    return out.reshape(1, c_out, out_h, out_w)


def conv_transpose2d(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int, padding: int, output_padding: int
) -> np.ndarray:
    """Transposed convolution of x (1, C_in, H, W) with weight (C_in, C_out, k, k), as
    torch.nn.functional.conv_transpose2d, in the dtype of x: input (iy, ix) adds
    weight[:, :, ky, kx] times its values to output (iy·stride − padding + ky, ix·stride −
    padding + kx), plus bias.

    The taps' products are computed a few taps at a time as one BLAS product with the whole
    input (read as it is, never copied per tap) into one reused buffer. Writing
    ky − padding = stride·q + r (0 ≤ r < stride), tap ky lands on output rows stride·(iy + q)
    + r: each product is added, shifted by whole rows and columns, into a contiguous plane of
    its output phase (r_y, r_x), and the phases are interleaved once at the end."""
    _, c_in, height, width = x.shape
    c_out, k = weight.shape[1], weight.shape[2]
    out_h = (height - 1) * stride - 2 * padding + k + output_padding
    out_w = (width - 1) * stride - 2 * padding + k + output_padding
    shifts = [divmod(tap - padding, stride) for tap in range(k)]
    low = -min(q for q, _ in shifts)  # margin so that every shifted product lies inside its plane
    reach = max(q for q, _ in shifts)
    rows = low + max(-(-out_h // stride), height + reach)
    cols = low + max(-(-out_w // stride), width + reach)
    phases = np.empty((stride, stride, c_out, rows, cols), dtype=x.dtype)
    phases[:] = bias.astype(x.dtype)[:, None, None]  # every output starts at its bias
    taps = [(ky, kx) for ky in range(k) for kx in range(k)]
    # (taps, C_out, C_in): the rows of one product, tap after tap
    matrix = np.ascontiguousarray(weight.transpose(2, 3, 1, 0), dtype=x.dtype).reshape(k * k * c_out, c_in)
    inputs = np.ascontiguousarray(x[0], dtype=x.dtype).reshape(c_in, height * width)
    chunk = max(1, min(len(taps), CHUNK_BYTES // max(c_out * height * width * x.dtype.itemsize, 1)))
    buffer = np.empty((chunk * c_out, height * width), dtype=x.dtype)
    for first in range(0, len(taps), chunk):
        group = taps[first : first + chunk]
        products = buffer[: len(group) * c_out]
        np.matmul(matrix[first * c_out : first * c_out + len(products)], inputs, out=products)
        for (ky, kx), product in zip(group, products.reshape(len(group), c_out, height, width)):
            (qy, ry), (qx, rx) = shifts[ky], shifts[kx]
            phases[ry, rx, :, low + qy : low + qy + height, low + qx : low + qx + width] += product
    out = np.empty((c_out, out_h, out_w), dtype=x.dtype)
    for ry in range(stride):
        for rx in range(stride):
            n_rows, n_cols = len(range(ry, out_h, stride)), len(range(rx, out_w, stride))
            out[:, ry::stride, rx::stride] = phases[ry, rx, :, low : low + n_rows, low : low + n_cols]
    return out[None]
