"""Hostile input: truncations, bit flips, crafted header fields and random bytes.

Every case must end in a decoded image or an InvalidInputError: no other exception, no
hang, no allocation beyond the header's validated limits. CI runs a bounded number of
cases; set NEURALCODEC_FUZZ_EXAMPLES=20000 for a long run.
"""

import os
import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neuralcodec
from neuralcodec.errors import InvalidInputError

EXAMPLES = int(os.environ.get("NEURALCODEC_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def valid(
    tiny_model,
):
    from make_fixtures import synthetic_image

    return neuralcodec.compress(synthetic_image(70, 130, seed=3), 60, tiny_model)


def decode_or_reject(data: bytes, model) -> None:
    try:
        image = neuralcodec.decompress(data, model=model, device="cpu")
    except InvalidInputError:
        return
    assert image.width >= 1 and image.height >= 1


def header_end(data: bytes) -> int:
    name_len = data[6]
    count = data[7 + name_len + 8 + 15]
    return 7 + name_len + 8 + 16 + 5 * count + 8


def with_fixed_crcs(data: bytearray) -> bytes:
    """Recompute both checksums, so the edit reaches the deeper parsing and decoding."""
    end = header_end(bytes(data))
    data[end - 8 : end] = struct.pack(
        ">II", zlib.crc32(bytes(data[: end - 8])), zlib.crc32(bytes(data[end:]))
    )
    return bytes(data)


@FUZZ
@given(cut=st.integers(min_value=0, max_value=10_000))
def test_truncations(valid, tiny_model, cut):
    decode_or_reject(valid[: cut % len(valid)], tiny_model)


@FUZZ
@given(flips=st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=4))
def test_bit_flips(valid, tiny_model, flips):
    data = bytearray(valid)
    for f in flips:
        data[(f // 8) % len(data)] ^= 1 << (f % 8)
    decode_or_reject(bytes(data), tiny_model)


@FUZZ
@given(position=st.integers(min_value=4, max_value=10**6), value=st.binary(min_size=1, max_size=4))
def test_crafted_fields_with_valid_checksums(valid, tiny_model, position, value):
    data = bytearray(valid)
    end = header_end(valid)
    at = 4 + position % (end - 12)  # anywhere in the header before the checksums
    data[at : at + len(value)] = value
    data = data[: len(valid)]
    try:
        crafted = with_fixed_crcs(data)
    except IndexError:
        return
    decode_or_reject(crafted, tiny_model)


@FUZZ
@given(position=st.integers(min_value=0, max_value=10**6), value=st.binary(min_size=1, max_size=8))
def test_crafted_payloads_with_valid_checksums(valid, tiny_model, position, value):
    data = bytearray(valid)
    end = header_end(valid)
    at = end + position % (len(valid) - end)
    data[at : at + len(value)] = value
    decode_or_reject(with_fixed_crcs(data[: len(valid)]), tiny_model)


@FUZZ
@given(blob=st.binary(max_size=400), magic=st.booleans())
def test_random_bytes(tiny_model, blob, magic):
    decode_or_reject((b"NCDC\x01" if magic else b"") + blob, tiny_model)


def test_largest_allowed_header_with_tiny_payload_is_rejected_quickly(valid, tiny_model):
    data = bytearray(valid)
    offset = 7 + data[6] + 8
    data[offset : offset + 8] = struct.pack(">II", 23000, 23000)
    with pytest.raises(InvalidInputError):
        neuralcodec.decompress(with_fixed_crcs(data), model=tiny_model)
