"""Hostile input: truncations, bit flips, crafted header fields and random bytes.

Every case has one right answer, and the tests check it: a damaged file is refused with an
InvalidInputError (never another exception, a hang or an allocation beyond the header's
validated limits); a crafted file that still passes every check decodes to exactly the image
its header declares. CI runs a bounded number of cases; set NEURALCODEC_FUZZ_EXAMPLES=20000
for a long run.
"""

import os
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neuralcodec
from neuralcodec.container import SectionType, unpack
from neuralcodec.errors import InvalidInputError

EXAMPLES = int(os.environ.get("NEURALCODEC_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
CODED = (SectionType.Z, SectionType.Y, SectionType.ALPHA)  # sections whose damage must be caught
BACKEND = ["torch"]  # the decoder under test (set per test by the fixture below)


@pytest.fixture(autouse=True, params=["torch", "numpy"])
def decoder_backend(request):
    """Every case runs against both decoders: the torch one and the numpy one ncodec uses."""
    BACKEND[0] = request.param
    yield request.param
    BACKEND[0] = "torch"


def decode(data: bytes, model):
    return neuralcodec.decompress(data, model=model, device="cpu", backend=BACKEND[0])


@pytest.fixture(scope="module")
def valid(tiny_model):
    from make_fixtures import synthetic_image

    rgba = synthetic_image(70, 130, seed=3)
    alpha = (rgba[:, :, 0] // 2).copy()
    # The single-pass encoder, pinned: this is the stream every case below damages. (At the
    # default effort the tiny model writes a longer y stream, where some crafted byte changes
    # swap two symbols of equal count and decode to another valid image: docs/FORMAT.md.)
    return neuralcodec.compress(np.dstack([rgba, alpha]), 60, tiny_model, effort=0)


def must_reject(data: bytes, model) -> None:
    with pytest.raises(InvalidInputError):
        decode(data, model)


def header_end(data: bytes) -> int:
    name_len = data[6]
    (count,) = struct.unpack(">H", data[7 + name_len + 8 + 15 : 7 + name_len + 8 + 17])
    return 7 + name_len + 8 + 17 + 5 * count + 8


def section_spans(data: bytes) -> list[tuple[SectionType, int, int]]:
    """(type, start, end) of every section's bytes within the file."""
    spans, pos = [], header_end(data)
    for kind, payload in unpack(data).sections:
        spans.append((kind, pos, pos + len(payload)))
        pos += len(payload)
    return spans


def with_fixed_crcs(data: bytearray) -> bytes:
    """Recompute both checksums, so the edit reaches the deeper parsing and decoding."""
    end = header_end(bytes(data))
    data[end - 8 : end] = struct.pack(
        ">II", zlib.crc32(bytes(data[: end - 8])), zlib.crc32(bytes(data[end:]))
    )
    return bytes(data)


@FUZZ
@given(cut=st.integers(min_value=0, max_value=10_000))
def test_every_truncation_is_refused(valid, tiny_model, cut):
    must_reject(valid[: cut % len(valid)], tiny_model)


@FUZZ
@given(flips=st.sets(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=3))
def test_every_one_to_three_bit_flips_are_refused(valid, tiny_model, flips):
    data = bytearray(valid)
    bits = {(f // 8) % len(data) * 8 + f % 8 for f in flips}  # distinct bits: never a no-op
    for bit in bits:
        data[bit // 8] ^= 1 << (bit % 8)
    must_reject(bytes(data), tiny_model)  # CRC-32 detects every error of up to 3 bits


@FUZZ
@given(position=st.integers(min_value=4, max_value=10**6), value=st.binary(min_size=1, max_size=4))
def test_crafted_header_fields_are_refused_or_decode_as_declared(valid, tiny_model, position, value):
    data = bytearray(valid)
    end = header_end(valid)
    at = 4 + position % (end - 12)  # anywhere in the header before the checksums
    data[at : at + len(value)] = value
    data = data[: len(valid)]
    try:
        crafted = with_fixed_crcs(data)
        header = unpack(crafted).header
    except (InvalidInputError, IndexError, struct.error):
        must_reject(bytes(data), tiny_model)
        return
    try:
        image = decode(crafted, tiny_model)
    except InvalidInputError:
        return  # e.g. another model digest, quality or size than the latents were coded for
    assert image.size == (header.width, header.height)
    assert image.mode == header.mode.name


@FUZZ
@given(position=st.integers(min_value=0, max_value=10**6), value=st.binary(min_size=1, max_size=8))
def test_damage_to_coded_sections_is_caught_even_with_valid_checksums(valid, tiny_model, position, value):
    spans = [span for span in section_spans(valid) if span[0] in CODED]
    kind, start, end = spans[position % len(spans)]
    at = start + (position // len(spans)) % (end - start)
    data = bytearray(valid)
    original = bytes(data[at : at + len(value)])
    data[at : at + len(value)] = value
    data = data[: len(valid)]
    if bytes(data[at : at + len(value)]) == original[: len(data) - at]:
        return  # the edit changed nothing
    must_reject(with_fixed_crcs(data), tiny_model)


def test_a_symbol_swap_that_passes_the_end_check_decodes_to_another_image_as_declared(tiny_model):
    """docs/FORMAT.md: changing q into another symbol of the same count, at the same place in
    its interval, leaves every later ANS state as it was, so the section still decodes. Such a
    crafted file (checksums recomputed) must decode like any other: to an image of the size and
    mode its header declares, other than the original."""
    from make_fixtures import synthetic_image

    rgb = synthetic_image(70, 130, seed=3)
    valid = neuralcodec.compress(rgb, 60, tiny_model, effort=2)  # a y section of some length
    original = np.asarray(decode(valid, tiny_model))
    header = unpack(valid).header
    _, start, end = next(span for span in section_spans(valid) if span[0] == SectionType.Y)
    for at in range(start, end):
        data = bytearray(valid)
        data[at] = 0 if data[at] else 0xFF
        try:
            image = decode(with_fixed_crcs(data), tiny_model)
        except InvalidInputError:
            continue
        assert image.size == (header.width, header.height) and image.mode == "RGB"
        assert not np.array_equal(np.asarray(image), original)
        return
    pytest.fail("no single-byte change of the y section decoded: the swap this test documents is gone")


@FUZZ
@given(blob=st.binary(max_size=400), magic=st.booleans())
def test_random_bytes_are_refused(tiny_model, blob, magic):
    must_reject((b"NCDC\x02" if magic else b"") + blob, tiny_model)


def test_largest_allowed_header_with_tiny_payload_is_rejected_quickly(valid, tiny_model):
    data = bytearray(valid)
    offset = 7 + data[6] + 8
    data[offset : offset + 8] = struct.pack(">II", 23000, 23000)
    must_reject(with_fixed_crcs(data), tiny_model)


@pytest.mark.parametrize("edit", ["cut", "extend"])
def test_alpha_section_resized_with_a_consistent_table_is_refused(valid, tiny_model, edit):
    """The section table and both checksums agree with the new length, so only the zlib stream's
    own end can tell: a stream without its Adler-32, or with bytes after it, decoded before."""
    from neuralcodec.container import pack

    container = unpack(valid)
    container.sections = [
        (kind, (data[:-4] if edit == "cut" else data + b"\0") if kind == SectionType.ALPHA else data)
        for kind, data in container.sections
    ]
    must_reject(pack(container), tiny_model)
