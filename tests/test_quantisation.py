"""Quantisation: half-to-even rounding of the residuals in float64 (as torch.round), clamping into
each symbol's table, coding order, and ŷ = symbol + μ."""

from __future__ import annotations

import numpy as np
import torch

from neuralcodec import quantisation
from neuralcodec.zoo import load_model


def test_z_symbols_round_half_to_even_clamp_and_follow_coding_order(tiny_model):
    tables = load_model(tiny_model).z_tables
    channels = len(tables.lengths)
    offsets = np.full(channels, 0.25)
    z = np.zeros((1, channels, 2, 3))
    z[0, 0] = [[0.75, 1.75, -0.25], [2.75, 1e6, -1e6]]  # residuals 0.5, 1.5, -0.5, 2.5, huge, -huge
    symbols = quantisation.z_symbols(z, offsets, tables)
    assert symbols.dtype == np.int64 and symbols.shape == (channels * 6,)
    low, high = tables.offsets[0], tables.offsets[0] + tables.lengths[0] - 1
    assert list(symbols[:4]) == [0, 2, 0, 2]  # half to even, as torch.round
    assert symbols[4] == high and symbols[5] == low
    assert np.array_equal(quantisation.z_index(channels, 2, 3)[:6], np.zeros(6))


def test_y_symbols_agree_with_torch_round_and_dequantize_inverts_them(tiny_model):
    tables = load_model(tiny_model).y_tables
    rng = np.random.default_rng(1)
    means = np.round(rng.normal(size=(1, 4, 3, 5)) * 64) / 64  # exact dyadic, as the exact h_s gives
    y = (
        means + rng.integers(-3, 4, size=means.shape) + rng.choice([0.0, 0.5, -0.5], size=means.shape)
    ).astype(np.float32)
    index = np.zeros(means.size, dtype=np.int64)
    symbols = quantisation.y_symbols(y, means, index, tables)
    expected = torch.round(torch.from_numpy(y).double() - torch.from_numpy(means)).flatten().numpy()
    assert np.array_equal(symbols, tables.clamp(expected.astype(np.int64), index))
    y_hat = quantisation.dequantize(symbols, means)
    assert y_hat.dtype == np.float32 and y_hat.shape == means.shape
    assert np.array_equal(y_hat, (symbols.reshape(means.shape) + means).astype(np.float32))
