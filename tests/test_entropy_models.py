import numpy as np
import pytest

from neuralcodec.entropy_models import (
    PRECISION,
    CorruptStreamError,
    coding_order,
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
def test_damaged_streams_are_reported_as_corrupt(tables, damage):
    """The end-state check (a section must end in state 1 with no word left) catches damage."""
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
    with pytest.raises(CorruptStreamError):
        decode_groups(bytes(data), index, tables)


def test_sections_are_exactly_the_documented_rans_over_the_stored_counts(tables):
    """Byte-for-byte against a plain-Python reading of FORMAT.md (no constriction inside)."""
    from reference_ans import decode_section, encode_section

    symbols, scales = random_latents(3000, seed=5)
    index = scale_indexes(scales, scale_table())
    symbols = tables.clamp(symbols, index)
    data = encode_groups(symbols, index, tables)
    assert data == encode_section(symbols, index, tables)
    assert np.array_equal(decode_section(data, index, tables), symbols)


def test_section_words_are_little_endian(tables):
    index = np.zeros(50, dtype=np.int64)
    symbols = tables.clamp(np.arange(50) % 7 - 3, index)
    data = encode_groups(symbols, index, tables)
    words = np.frombuffer(data, dtype="<u4")
    assert int(words[-1]) != 0  # the top word (the state's upper half or the whole state) leads decoding


@pytest.mark.parametrize("data", [b"", b"\x00\x00\x00\x00", b"\x01\x00\x00\x00"])
def test_empty_or_exhausted_sections_are_corrupt(tables, data):
    index = np.zeros(1000, dtype=np.int64)
    with pytest.raises(CorruptStreamError):
        decode_groups(data, index, tables)


def test_a_section_with_too_few_words_for_its_symbols_is_corrupt(tables):
    symbols, scales = random_latents(5000, seed=4)
    index = scale_indexes(scales, scale_table())
    data = encode_groups(tables.clamp(symbols, index), index, tables)
    with pytest.raises(CorruptStreamError):
        decode_groups(data[8:], index, tables)  # the first words (read last) are missing


@pytest.mark.parametrize("tables_used", [1, 64, 300, 70_000])
def test_coding_order_is_the_stable_sort_by_table_for_any_index_width(tables_used):
    rng = np.random.default_rng(tables_used)
    index = rng.integers(0, tables_used, 5000)
    order, used, bounds = coding_order(index)
    expected = np.argsort(index, kind="stable")
    expected_used, first = np.unique(index[expected], return_index=True)
    assert np.array_equal(order, expected)
    assert np.array_equal(used, expected_used)
    assert bounds == [*first.tolist(), len(index)]
    assert coding_order(index[:0])[2] == [0]
