"""The exact quantisation of latents into the symbols the entropy coder writes, and back: the
one definition that the encoders (torch, numpy), refinement's scoring and the decoder share.

z symbol = round(z − offset of its channel) and y symbol = round(y − μ), each clamped into the
table that codes it; ŷ = symbol + μ. Differences are taken and rounded (half to even) in
float64, where μ and the offsets are exact, so every encoder writes the symbols it means to
and every decoder rebuilds the same ŷ.
"""

from __future__ import annotations

import numpy as np

from neuralcodec.entropy_models import TableSet


def z_index(channels: int, rows: int, cols: int) -> np.ndarray:
    """The z table of each z symbol in coding order (channel, row, column)."""
    return np.repeat(np.arange(channels), rows * cols)


def z_symbols(z: np.ndarray, z_offsets: np.ndarray, z_tables: TableSet) -> np.ndarray:
    """z (1, N, rows, cols) -> its symbols in coding order (int64): round(z − offset of its
    channel), clamped into the channel's z table."""
    channels, rows, cols = z.shape[1:]
    residual = np.asarray(z, dtype=np.float64) - np.asarray(z_offsets, dtype=np.float64).reshape(1, -1, 1, 1)
    return z_tables.clamp(np.rint(residual).ravel().astype(np.int64), z_index(channels, rows, cols))


def y_symbols(y: np.ndarray, means: np.ndarray, index: np.ndarray, y_tables: TableSet) -> np.ndarray:
    """y and its exact means (same shape) -> the symbols in coding order (int64): round(y − μ),
    clamped into the y table ``index`` names for each."""
    residual = np.asarray(y, dtype=np.float64) - means
    return y_tables.clamp(np.rint(residual).ravel().astype(np.int64), index)


def dequantize(symbols: np.ndarray, means: np.ndarray) -> np.ndarray:
    """ŷ = symbol + μ in float64 (exact), then float32, in the shape of ``means``."""
    return (symbols.astype(np.float64).reshape(means.shape) + means).astype(np.float32)
