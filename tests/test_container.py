import struct

import pytest

from neuralcodec.container import (
    MAX_PIXELS,
    ColorMode,
    Container,
    Header,
    SectionType,
    check_dimensions,
    pack,
    unpack,
)
from neuralcodec.errors import InvalidInputError


def sample() -> Container:
    header = Header("tiny", bytes(range(8)), 70, 90, ColorMode.RGB, 60.0)
    return Container(header, [(SectionType.Z, b"zz" * 5), (SectionType.Y, b"yyyy" * 20)])


def test_round_trip_preserves_every_field():
    c = sample()
    back = unpack(pack(c))
    assert back.header == c.header
    assert back.sections == c.sections


@pytest.mark.parametrize("cut", [0, 3, 4, 10, 30, 45, -1, -30])
def test_truncated_files_are_refused(cut):
    data = pack(sample())
    with pytest.raises(InvalidInputError):
        unpack(data[:cut])


def test_every_single_bit_flip_is_detected():
    data = pack(sample())
    for i in range(len(data)):
        for bit in (0, 7):
            corrupted = bytearray(data)
            corrupted[i] ^= 1 << bit
            with pytest.raises(InvalidInputError):
                unpack(bytes(corrupted))


def test_wrong_magic_says_so():
    data = b"PNG!" + pack(sample())[4:]
    with pytest.raises(InvalidInputError, match="magic"):
        unpack(data)


def test_trailing_garbage_is_refused():
    with pytest.raises(InvalidInputError, match="unexpected bytes"):
        unpack(pack(sample()) + b"x")


def test_absurd_dimensions_are_refused_before_allocation():
    data = bytearray(pack(sample()))
    offset = 4 + 3 + len("tiny") + 8
    data[offset : offset + 8] = struct.pack(">II", 60000, 60000)
    # Fix the header checksum so only the size check can object.
    import zlib

    crc_at = len(data) - 8 - 90
    data[crc_at : crc_at + 4] = struct.pack(">I", zlib.crc32(bytes(data[:crc_at])))
    with pytest.raises(InvalidInputError, match="exceeds"):
        unpack(bytes(data))


@pytest.mark.parametrize("size", [(0, 5), (5, 0), (70000, 1), (1, 70000)])
def test_dimension_limits(size):
    with pytest.raises(InvalidInputError):
        check_dimensions(*size)


def test_largest_documented_image_is_allowed():
    check_dimensions(20000, 20000)
    assert 20000 * 20000 <= MAX_PIXELS
