"""Format 3: the architecture's name in the header, its payloads as opaque MODEL sections.

Format 2 files keep their exact bytes; every crafted format-3 file is refused with a one-line
InvalidInputError (never another exception), before anything the header announces is allocated.
"""

import hashlib
import io
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

from neuralcodec.container import (
    FORMAT_ARCHITECTURE,
    FORMAT_VERSION,
    FORMAT_VERSIONS,
    LATEST_FORMAT_VERSION,
    MAX_MODEL_SECTIONS,
    MAX_SECTIONS,
    MAX_SECTIONS_V3,
    ColorMode,
    Container,
    Header,
    SectionType,
    expected_size,
    pack,
    read_stream,
    unpack,
)
from neuralcodec.encoded_file import encoded_file
from neuralcodec.errors import InvalidInputError
from neuralcodec.image_modes import PreparedImage

FIXTURES = Path(__file__).parent / "fixtures"
ARCH = "checkerboard-context"
DIGEST = bytes(range(8))


def v3(mode: ColorMode = ColorMode.RGB, models: list[bytes] | None = None, extra=()) -> Container:
    header = Header("tiny", DIGEST, 70, 90, mode, 60.0, architecture=ARCH, format_version=3)
    payloads = [b"first", b"", b"third" * 7] if models is None else models
    return Container(header, [(SectionType.MODEL, p) for p in payloads] + list(extra))


def full_v3() -> Container:
    """Every kind of section format 3 allows, alpha included."""
    extra = [
        (SectionType.ALPHA, b"alpha"),
        (SectionType.ICC, b"icc"),
        (SectionType.EXIF, b"exif"),
        (SectionType.NOTE, b"note"),
    ]
    return v3(ColorMode.RGBA, extra=extra)


def craft(
    version: int = 3,
    architecture: bytes = ARCH.encode(),
    sections: list[tuple[int, bytes]] | None = None,
    mode: int = 0,
    count: int | None = None,
    table: bool = True,
) -> bytes:
    """A file with valid checksums around whatever fields are given (``count``: the section
    count the header claims; ``table=False``: stop after the fixed fields)."""
    sections = [(SectionType.MODEL, b"m")] if sections is None else sections
    out = b"NCDC" + struct.pack(">BBB", version, 0, 4) + b"tiny" + DIGEST
    if version == 3:
        out += struct.pack(">B", len(architecture)) + architecture
    out += struct.pack(">IIBfHH", 70, 90, mode, 60.0, 16, len(sections) if count is None else count)
    if not table:
        return out
    out += b"".join(struct.pack(">BI", int(k), len(d)) for k, d in sections)
    payload = b"".join(d for _, d in sections)
    return out + struct.pack(">II", zlib.crc32(out), zlib.crc32(payload)) + payload


def refused(data: bytes, match: str | None = None) -> str:
    """unpack refuses ``data`` with a one-line InvalidInputError (matching ``match``)."""
    with pytest.raises(InvalidInputError, match=match) as info:
        unpack(data)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_constants():
    assert FORMAT_VERSION == 2 and FORMAT_VERSIONS == (2, 3) and LATEST_FORMAT_VERSION == 3
    assert FORMAT_ARCHITECTURE == "mean-scale-hyperprior"
    assert MAX_SECTIONS == 1029 and MAX_SECTIONS_V3 == MAX_MODEL_SECTIONS + 4 <= 0xFFFF
    assert SectionType.MODEL == 7
    header = Header("tiny", DIGEST, 1, 1, ColorMode.RGB, 1.0)
    assert (header.format_version, header.architecture) == (2, FORMAT_ARCHITECTURE)


@pytest.mark.parametrize("make", [v3, full_v3])
def test_round_trip_preserves_every_field_and_section(make):
    c = make()
    data = pack(c)
    assert data[4] == 3 and data[7 + 4 + 8] == len(ARCH) and data[20 : 20 + len(ARCH)] == ARCH.encode()
    back = unpack(data)
    assert back.header == c.header and back.header.architecture == ARCH
    assert back.sections == c.sections
    assert back.model_sections() == [b"first", b"", b"third" * 7]
    assert expected_size(data) == len(data) and read_stream(io.BytesIO(data + b"more")) == data + b"m"


def test_the_architecture_name_takes_1_to_64_registry_characters():
    for name in ("a", "A-z_09", "x" * 64):
        c = v3()
        c.header.architecture = name
        assert unpack(pack(c)).header.architecture == name


def test_model_sections_of_a_format_2_file_are_z_then_the_y_bands():
    data = (FIXTURES / "golden-multi.nc").read_bytes()
    c = unpack(data)
    assert (c.header.format_version, c.header.architecture) == (2, FORMAT_ARCHITECTURE)
    assert c.model_sections() == c.section(SectionType.Z) + c.section(SectionType.Y)
    assert len(c.model_sections()) == 3


# sha256 of format-2 files as every format-2 writer packs them (pinned before format 3 existed).
V2_SHA256 = {
    "single": (144, "8a5f9807eef58243980eead6e9819f3b70c86b4336a79f492c30988908aac37c"),
    "everything": (107, "2e6b956014bad1697d6e8d1218d9d68621ef05fd537f2e670ee79c27ada00d47"),
}


def v2_samples() -> dict[str, Container]:
    single = Header("tiny", DIGEST, 70, 90, ColorMode.RGB, 60.0)
    everything = Header("mse", bytes(range(8, 16)), 70, 1100, ColorMode.RGBA, 42.5, 16)
    return {
        "single": Container(single, [(SectionType.Z, b"zz" * 5), (SectionType.Y, b"yyyy" * 20)]),
        "everything": Container(
            everything,
            [
                (SectionType.Z, b"z"),
                (SectionType.Y, b"a" * 8),
                (SectionType.Y, b"b" * 4),
                (SectionType.ALPHA, b"alpha"),
                (SectionType.ICC, b"icc"),
                (SectionType.EXIF, b"exif"),
                (SectionType.NOTE, b"note"),
            ],
        ),
    }


@pytest.mark.parametrize("name", sorted(V2_SHA256))
def test_format_2_files_keep_their_exact_bytes(name):
    data = pack(v2_samples()[name])
    assert (len(data), hashlib.sha256(data).hexdigest()) == V2_SHA256[name]
    assert unpack(data).header.format_version == 2


@pytest.mark.parametrize("name", ["golden.nc", "golden-multi.nc", "golden-offsets.nc"])
def test_golden_files_repack_to_the_same_bytes(name):
    data = (FIXTURES / name).read_bytes()
    assert pack(unpack(data)) == data


def prepared(mode: ColorMode = ColorMode.RGB) -> PreparedImage:
    alpha = np.arange(1100 * 70, dtype=np.uint8).reshape(1100, 70) if mode == ColorMode.RGBA else None
    rgb = np.zeros((1100, 70, 3), dtype=np.uint8)
    return PreparedImage(rgb, mode, alpha, b"icc-bytes", b"exif-bytes", ["a note", "another"])


def test_encoded_file_writes_format_2_exactly_as_before():
    data = encoded_file(prepared(), "tiny", DIGEST, 60.0, [b"z" * 12, b"y" * 16, b"w" * 8], 16)
    assert (len(data), hashlib.sha256(data).hexdigest()) == (
        143,
        "de3f801a65208003639ed9bc1ed912cddee592743fda0f51e5a91beb68c03e2a",
    )
    c = unpack(data)
    assert c.section(SectionType.Z) == [b"z" * 12] and c.section(SectionType.Y) == [b"y" * 16, b"w" * 8]


def test_encoded_file_writes_format_3_with_model_sections():
    payloads = [b"anchors", b"non-anchors", b"hyper"]
    data = encoded_file(
        prepared(ColorMode.RGBA), "tiny", DIGEST, 60.0, payloads, architecture=ARCH, format_version=3
    )
    c = unpack(data)
    assert (c.header.format_version, c.header.architecture, c.header.mode) == (3, ARCH, ColorMode.RGBA)
    assert c.model_sections() == payloads
    kinds = [k for k, _ in c.sections]
    assert kinds == [SectionType.MODEL] * 3 + [
        SectionType.ALPHA,
        SectionType.ICC,
        SectionType.EXIF,
        SectionType.NOTE,
    ]


@pytest.mark.parametrize(
    "sections, version, architecture",
    [([], 2, FORMAT_ARCHITECTURE), ([], 3, ARCH), ([b"x"], 4, ARCH), ([b"z", b"y"], 2, ARCH)],
)
def test_encoded_file_refuses_what_the_container_would(sections, version, architecture):
    with pytest.raises(ValueError):
        encoded_file(prepared(), "tiny", DIGEST, 60.0, sections, 16, architecture, version)


def layouts() -> dict[str, Container]:
    def edit(make, change):
        c = make()
        change(c)
        return c

    return {
        "z in v3": edit(v3, lambda c: c.sections.insert(0, (SectionType.Z, b"z"))),
        "y in v3": edit(v3, lambda c: c.sections.append((SectionType.Y, b"y"))),
        "model after alpha": edit(full_v3, lambda c: c.sections.insert(4, (SectionType.MODEL, b"m"))),
        "model last": edit(full_v3, lambda c: c.sections.append((SectionType.MODEL, b"m"))),
        "no model": v3(models=[]),
        "too many models": v3(models=[b""] * (MAX_MODEL_SECTIONS + 1)),
        "missing alpha": v3(ColorMode.RGBA),
        "alpha without mode": v3(extra=[(SectionType.ALPHA, b"a")]),
        "two icc": v3(extra=[(SectionType.ICC, b"a"), (SectionType.ICC, b"b")]),
        "model in v2": edit(
            lambda: v2_samples()["single"], lambda c: c.sections.insert(0, (SectionType.MODEL, b"m"))
        ),
        "v2 other architecture": edit(
            lambda: v2_samples()["single"], lambda c: setattr(c.header, "architecture", ARCH)
        ),
        "version 4": edit(v3, lambda c: setattr(c.header, "format_version", 4)),
        "version 1": edit(lambda: v2_samples()["single"], lambda c: setattr(c.header, "format_version", 1)),
        "empty architecture": edit(v3, lambda c: setattr(c.header, "architecture", "")),
        "long architecture": edit(v3, lambda c: setattr(c.header, "architecture", "x" * 65)),
        "path architecture": edit(v3, lambda c: setattr(c.header, "architecture", "../evil")),
    }


@pytest.mark.parametrize("case", sorted(layouts()))
def test_pack_refuses_every_layout_unpack_refuses(case):
    with pytest.raises(InvalidInputError) as info:
        pack(layouts()[case])
    assert "\n" not in str(info.value)


M, A, Z, Y = SectionType.MODEL, SectionType.ALPHA, SectionType.Z, SectionType.Y


@pytest.mark.parametrize(
    "data, match",
    [
        (craft(sections=[(Z, b"z"), (M, b"m")]), "no Z or Y"),
        (craft(sections=[(M, b"m"), (Y, b"y")]), "no Z or Y"),
        (craft(sections=[(M, b"m"), (A, b"a"), (M, b"m")], mode=2), "out of order"),
        (craft(sections=[(A, b"a"), (M, b"m")], mode=2), "out of order"),
        (craft(sections=[]), "0 model sections"),
        (craft(sections=[(A, b"a")], mode=2), "0 model sections"),
        (craft(sections=[(M, b"")] * (MAX_MODEL_SECTIONS + 1)), "4097 model sections"),
        (craft(sections=[(M, b"m")], mode=2), "alpha"),
        (craft(sections=[(M, b"m"), (SectionType.NOTE, b"a"), (SectionType.NOTE, b"b")]), "NOTE"),
        (craft(sections=[(M, b"m"), (8, b"?")]), "not a valid SectionType"),
        (craft(version=2, sections=[(Z, b"z"), (Y, b"y"), (M, b"m")]), "version 2 has no MODEL"),
        (craft(version=2, sections=[(M, b"m"), (Z, b"z"), (Y, b"y")]), "version 2 has no MODEL"),
        (craft(architecture=b"../evil"), "architecture '../evil' is not a registry name"),
        (craft(architecture=b"a b"), "registry name"),
        (craft(architecture=b"caf\xe9"), "corrupt header"),
        (craft(architecture=b""), "bad architecture name length"),
        (craft(architecture=b"x" * 65), "bad architecture name length"),
        (craft(architecture=b"x" * 255), "bad architecture name length"),
        (craft(version=4), "version 4, newer .* versions 2 and 3"),
        (craft(version=255), "version 255, newer"),
        (craft(version=1), "version 1, written by an older .* versions 2 and 3"),
        (craft(version=0), "version 0"),
    ],
)
def test_crafted_files_are_refused_in_one_line(data, match):
    refused(data, match)


def test_a_bad_architecture_length_or_version_stops_a_stream_reader():
    for data in (craft(architecture=b""), craft(architecture=b"x" * 65), craft(version=4)):
        assert expected_size(data) is None


def test_the_section_count_is_bounded_before_the_table_is_read():
    """A count above the version's bound is refused from the fixed fields alone; format 2
    keeps its own, lower bound."""
    for version, bound in ((3, MAX_SECTIONS_V3), (2, MAX_SECTIONS)):
        head = craft(version=version, count=bound + 1, table=False)
        assert expected_size(head) is None
        refused(head, "too many sections")
        ok = craft(version=version, count=bound, table=False)
        assert expected_size(ok) == len(ok) + 5  # asks for the table one entry at a time
        refused(ok, "truncated")
    refused(craft(version=2, count=0xFFFF, table=False), "too many sections")
    refused(craft(count=0xFFFF, table=False), "too many sections")


def test_huge_announced_lengths_allocate_nothing():
    """Section lengths are checked against the bytes present before any section is sliced."""
    sections = [(M, b"")] * MAX_MODEL_SECTIONS
    data = bytearray(craft(sections=sections))
    table_at = 7 + 4 + 8 + 1 + len(ARCH) + 17
    for i in range(MAX_MODEL_SECTIONS):
        data[table_at + 5 * i + 1 : table_at + 5 * i + 5] = b"\xff\xff\xff\xff"
    crc_at = table_at + 5 * MAX_MODEL_SECTIONS
    data[crc_at : crc_at + 4] = struct.pack(">I", zlib.crc32(bytes(data[:crc_at])))
    tracemalloc.start()
    try:
        refused(bytes(data), "truncated file")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * len(data) + (1 << 20)


def test_every_prefix_of_a_format_3_file_is_truncated():
    data = pack(full_v3())
    for n in range(len(data)):
        assert expected_size(data[:n]) > n
        refused(data[:n], "truncated")
        assert read_stream(io.BytesIO(data[:n])) == data[:n]


def test_every_single_bit_flip_is_detected():
    data = pack(full_v3())
    for i in range(len(data)):
        for bit in range(8):
            corrupted = bytearray(data)
            corrupted[i] ^= 1 << bit
            refused(bytes(corrupted))


def test_a_damaged_model_section_fails_the_payload_checksum():
    data = bytearray(pack(v3()))
    data[-1] ^= 0x40
    refused(bytes(data), "payload: checksum")


def test_info_names_the_format_and_architecture_of_a_format_3_file(tmp_path, capsys):
    from neuralcodec.cli import EXIT_OK, main

    path = tmp_path / "checkerboard.nc"
    path.write_bytes(pack(full_v3()))
    assert main(["info", str(path)]) == EXIT_OK
    out = capsys.readouterr().out
    assert f"format    3, {ARCH}" in out
    assert out.count("section   MODEL  ") == 3 and "section   ALPHA  5 bytes" in out
    assert "note      note" in out
