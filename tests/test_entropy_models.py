import numpy as np
import pytest

from neuralcodec.entropy_models import (
    PRECISION,
    CorruptStreamError,
    decode_groups,
    encode_groups,
    gaussian_bits,
    gaussian_tables,
    quantize_pmf,
    scale_indexes,
    scale_table,
    table_bits,
)


@pytest.fixture(scope="module")
def tables():
    return gaussian_tables(scale_table())


def random_latents(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    scales = np.exp(rng.uniform(np.log(0.05), np.log(40), n))
    symbols = np.round(rng.normal(0, scales)).astype(np.int64)
    return symbols, scales


def test_quantized_pmf_is_exact_and_never_zero():
    counts = quantize_pmf(np.array([0.0, 1e-12, 0.5, 0.5 - 1e-12]))
    assert counts.sum() == 1 << PRECISION
    assert counts.min() >= 1


def test_round_trip_and_rate_within_one_percent_of_estimate(tables):
    symbols, scales = random_latents(200_000)
    index = scale_indexes(scales, scale_table())
    symbols = tables.clamp(symbols, index)
    data = encode_groups(symbols, index, tables)
    assert np.array_equal(decode_groups(data, index, tables), symbols)
    estimate = gaussian_bits(symbols, scales)
    assert len(data) * 8 <= 1.01 * estimate + 32
    assert table_bits(symbols, index, tables) <= len(data) * 8 + 1


def test_scale_index_picks_the_nearest_table_scale_in_log_space():
    table = scale_table()
    mid = np.sqrt(table[5] * table[6])
    scales = np.array([0.0, table[0], table[5] * 1.001, mid * 0.999, mid * 1.001, table[6], 1e9])
    assert list(scale_indexes(scales, table)) == [0, 0, 5, 5, 6, 6, len(table) - 1]


def test_out_of_range_symbols_are_clamped_into_the_table(tables):
    index = np.array([0, 0])
    clamped = tables.clamp(np.array([10_000, -10_000]), index)
    lo = tables.offsets[0]
    assert list(clamped) == [lo + tables.lengths[0] - 1, lo]


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "odd_length"])
def test_damaged_streams_raise_a_clean_error_or_decode_something(tables, damage):
    symbols, scales = random_latents(5000, seed=3)
    index = scale_indexes(scales, scale_table())
    data = bytearray(encode_groups(tables.clamp(symbols, index), index, tables))
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[len(data) // 3] ^= 0x10
    elif damage == "garbage":
        data = bytearray(np.random.default_rng(0).integers(0, 256, len(data), dtype=np.uint8).tobytes())
    else:
        data = data[:-1]
    try:
        out = decode_groups(bytes(data), index, tables)
    except CorruptStreamError:
        return
    assert out.shape == symbols.shape  # ANS may decode garbage; the container CRC catches it
