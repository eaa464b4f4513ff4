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


def resealed(data: bytearray) -> bytes:
    """Recompute the header checksum after an edit to the header fields."""
    import zlib

    name_len = data[6]
    (count,) = struct.unpack(">H", bytes(data[7 + name_len + 8 + 15 : 7 + name_len + 8 + 17]))
    crc_at = 7 + name_len + 8 + 17 + 5 * count
    data[crc_at : crc_at + 4] = struct.pack(">I", zlib.crc32(bytes(data[:crc_at])))
    return bytes(data)


def test_unknown_flags_are_refused():
    data = bytearray(pack(sample()))
    data[5] = 0x01
    with pytest.raises(InvalidInputError, match="flags"):
        unpack(resealed(data))


@pytest.mark.parametrize("name", ["../evil", "a/b", "x.pt", "tiny ", ""])
def test_model_names_are_registry_names_never_paths(name):
    c = sample()
    c.header.model_name = name
    with pytest.raises(InvalidInputError):
        pack(c)
    data = bytearray(pack(sample()))
    if len(name) == len("tiny"):  # same length: splice it into a valid file
        data[7:11] = name.encode()
        with pytest.raises(InvalidInputError, match="registry name"):
            unpack(resealed(data))


def test_a_header_name_never_loads_a_weights_file_from_the_working_directory(
    tmp_path, monkeypatch, tiny_model
):
    """Even when 'evil.pt' sits in the current folder, the name 'evil' is looked up in the registry."""
    import shutil

    import neuralcodec
    from neuralcodec.errors import ModelMismatchError

    monkeypatch.chdir(tmp_path)
    shutil.copy(tiny_model, tmp_path / "evil.pt")
    c = sample()
    c.header.model_name = "evil"
    with pytest.raises(ModelMismatchError, match="not installed"):
        neuralcodec.decompress(pack(c))


def test_alpha_section_must_match_the_mode():
    rgb_with_alpha = sample()
    rgb_with_alpha.sections.append((SectionType.ALPHA, b"a"))
    with pytest.raises(InvalidInputError, match="alpha"):
        pack(rgb_with_alpha)
    rgba_without = sample()
    rgba_without.header.mode = ColorMode.RGBA
    with pytest.raises(InvalidInputError, match="alpha"):
        pack(rgba_without)


def test_section_layout_is_checked_on_both_sides():
    two_z = sample()
    two_z.sections.insert(0, (SectionType.Z, b"z"))
    with pytest.raises(InvalidInputError, match="expected 1 z"):
        pack(two_z)
    out_of_order = sample()
    out_of_order.sections.reverse()
    with pytest.raises(InvalidInputError, match="order"):
        pack(out_of_order)


def test_band_rows_outside_1_to_16_are_refused():
    c = sample()
    c.header.band_rows = 17
    with pytest.raises(InvalidInputError, match="band height"):
        pack(c)


class _Endless:
    """A binary stream that never ends (like /dev/zero, or a file followed by one), counting reads."""

    def __init__(self, head: bytes = b"", fill: bytes = b"\0") -> None:
        self.head, self.fill, self.served = head, fill, 0

    def read(self, n: int) -> bytes:
        assert n <= 1 << 20, f"asked for {n} bytes"
        out = self.head[self.served : self.served + n]
        out += self.fill * (n - len(out))
        self.served += n
        return out


def test_a_stream_is_read_up_to_one_byte_past_the_file_and_no_further():
    import io

    from neuralcodec.container import expected_size, read_stream

    data = pack(sample())
    assert expected_size(data) == len(data) and expected_size(b"") == 7
    assert read_stream(io.BytesIO(data)) == data
    assert read_stream(io.BytesIO(data[:-5])) == data[:-5]
    assert read_stream(_Endless(data)) == data + b"\0"  # unpack then reports the trailing byte
    with pytest.raises(InvalidInputError, match="unexpected bytes"):
        unpack(read_stream(_Endless(data)))
    zeros = _Endless()
    assert len(read_stream(zeros)) <= 8 and zeros.served <= 8  # /dev/zero: no magic, stop
    damaged = bytearray(data)
    damaged[8] ^= 1  # the model name: the header checksum no longer matches
    damaged[-20:-16] = b"\xff\xff\xff\xff"
    stream = _Endless(bytes(damaged)[:60])
    assert len(read_stream(stream)) <= 60  # a damaged header's lengths are not trusted


def test_expected_size_and_unpack_read_the_header_alike():
    """Every proper prefix of a file asks for more bytes and is truncated for ``unpack``; a prefix
    that ``unpack`` refuses for anything else stops a stream reader (``expected_size`` is None)."""
    from neuralcodec.container import expected_size

    data = pack(sample())
    for n in range(len(data)):
        assert expected_size(data[:n]) > n
        with pytest.raises(InvalidInputError, match="truncated"):
            unpack(data[:n])
    header_end = len(data) - sum(len(d) for _, d in sample().sections)
    for i in (0, 4, 6, header_end - 9, header_end - 5):  # magic, version, name length, table, CRC
        damaged = bytearray(data)
        damaged[i] ^= 0xFF
        assert expected_size(damaged) is None
        with pytest.raises(InvalidInputError, match="magic|version|name length|checksum|sections"):
            unpack(bytes(damaged))
