"""The ``.nc`` container: header, sections and checksums (docs/FORMAT.md is the spec).

Parsing validates every field, including the image size limits and the section layout,
before the decoder allocates anything, and reports problems as InvalidInputError with a
one-line message. ``pack`` applies the same checks, so every file the encoder writes is one
the decoder accepts.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass, field
from enum import IntEnum

from neuralcodec.errors import InvalidInputError

MAGIC = b"NCDC"
# Every format-2 stream is a mean-scale hyperprior's (one Z section, one Y section per band).
# Format 3 names the architecture in the header and holds its payloads as opaque MODEL sections.
FORMAT_ARCHITECTURE = "mean-scale-hyperprior"
FORMAT_VERSION = 2  # the version mean-scale-hyperprior files are written in
FORMAT_VERSIONS = (2, 3)  # the versions this build reads and writes
LATEST_FORMAT_VERSION = 3
MAX_SIDE = 65535
MAX_PIXELS = 1 << 29  # ~537 Mpx: a 20000 x 20000 image fits, a 2^31-pixel header does not
LATENT_ROW = 64  # pixels per ẑ row: images are padded to multiples of 64
MAX_BAND_ROWS = 16  # ẑ rows per Y section: bounds the decoder's working memory per band
MAX_NAME = 64
MODEL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # a registry name, never a path
# Format 2: Z, one Y per band (at most 65535/64 rounded up = 1024 with 1-row bands), ALPHA, ICC,
# EXIF, NOTE.
MAX_SECTIONS = 1 + -(-MAX_SIDE // LATENT_ROW) + 4
MAX_MODEL_SECTIONS = 4096  # format 3: MODEL sections per file
MAX_SECTIONS_V3 = MAX_MODEL_SECTIONS + 4  # format 3: MODEL sections, ALPHA, ICC, EXIF, NOTE

# Decoding refuses images above this many pixels unless asked (``max_pixels=``,
# ``--max-pixels``), like Pillow's decompression-bomb guard: a small file must not make the
# decoder spend minutes and gigabytes. It is the size at which Pillow refuses to open an
# image (twice its Image.MAX_IMAGE_PIXELS default of 89,478,485, where it only warns), so
# whatever the encoder reads with default settings, the decoder writes back with its own.
# The format itself allows up to container.MAX_PIXELS.
DEFAULT_MAX_PIXELS = 2 * 89_478_485

_FIXED = struct.Struct(">IIBfHH")  # width, height, mode, quality, band rows, section count
_SECTION = struct.Struct(">BI")


class ColorMode(IntEnum):
    """How the decoded image is presented (the latents are always RGB)."""

    RGB = 0
    L = 1
    RGBA = 2
    LA = 3


class SectionType(IntEnum):
    Z = 1  # hyper-latent stream
    Y = 2  # latent stream
    ALPHA = 3  # lossless alpha plane
    ICC = 4  # ICC profile bytes
    EXIF = 5  # EXIF bytes
    NOTE = 6  # UTF-8 notes about lossy choices (e.g. 16-bit input coded at 8 bits)
    MODEL = 7  # format 3: one of the architecture's payloads, opaque to the container


@dataclass
class Header:
    model_name: str
    model_digest: bytes
    width: int
    height: int
    mode: ColorMode
    quality: float
    band_rows: int = 16  # z rows (64 pixels each) per y section
    flags: int = 0
    architecture: str = FORMAT_ARCHITECTURE  # format 2: always mean-scale-hyperprior
    format_version: int = FORMAT_VERSION  # 2 or 3 (FORMAT_VERSIONS)


@dataclass
class Container:
    header: Header
    sections: list[tuple[SectionType, bytes]] = field(default_factory=list)

    def section(self, kind: SectionType) -> list[bytes]:
        return [data for t, data in self.sections if t == kind]

    def model_sections(self) -> list[bytes]:
        """The architecture's payloads in file order: format 2, the Z section then the Y
        sections (one per band); format 3, the MODEL sections."""
        kinds = _MODEL_KINDS[self.header.format_version]
        return [data for t, data in self.sections if t in kinds]


_MODEL_KINDS = {2: (SectionType.Z, SectionType.Y), 3: (SectionType.MODEL,)}
# Format 3's section order: MODEL sections first, then the others in ascending type order.
_V3_RANK = {
    SectionType.MODEL: 0,
    SectionType.ALPHA: 1,
    SectionType.ICC: 2,
    SectionType.EXIF: 3,
    SectionType.NOTE: 4,
}


def check_dimensions(width: int, height: int) -> None:
    """Raise InvalidInputError for sizes the codec refuses (before any allocation)."""
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise InvalidInputError(f"image size {width}x{height} is outside 1..{MAX_SIDE} per side")
    if width * height > MAX_PIXELS:
        raise InvalidInputError(f"image size {width}x{height} exceeds the {MAX_PIXELS}-pixel limit")


def check_pixel_limit(width: int, height: int, max_pixels: int | None) -> None:
    """Refuse images above ``max_pixels`` (None: only the format's own limit)."""
    if max_pixels is not None and width * height > max_pixels:
        raise InvalidInputError(
            f"image is {width}x{height} = {width * height} pixels, above the limit of {max_pixels} "
            "(raise it with --max-pixels / max_pixels= if you trust this file)"
        )


def band_count(height: int, band_rows: int) -> int:
    """Number of Y sections: ẑ rows (⌈height/64⌉) in bands of ``band_rows``."""
    rows = -(-height // LATENT_ROW)
    return -(-rows // band_rows)


def check_layout(header: Header, kinds: list[SectionType]) -> None:
    """The section layout FORMAT.md requires. Format 2: Z, one Y per band, then ALPHA exactly
    when the mode has alpha, at most one ICC, EXIF and NOTE, all in ascending type order.
    Format 3: 1..MAX_MODEL_SECTIONS MODEL sections, then ALPHA, ICC, EXIF and NOTE as in
    format 2; no Z or Y section."""
    found = {kind: kinds.count(kind) for kind in SectionType}
    if header.format_version == 3:
        if found[SectionType.Z] or found[SectionType.Y]:
            raise InvalidInputError("corrupt file: format version 3 has no Z or Y sections")
        if any(_V3_RANK[b] < _V3_RANK[a] for a, b in zip(kinds, kinds[1:])):
            raise InvalidInputError("corrupt header: sections out of order")
        if not 1 <= found[SectionType.MODEL] <= MAX_MODEL_SECTIONS:
            raise InvalidInputError(
                f"corrupt file: {found[SectionType.MODEL]} model sections, expected 1..{MAX_MODEL_SECTIONS}"
            )
    else:
        if found[SectionType.MODEL]:
            raise InvalidInputError("corrupt file: format version 2 has no MODEL sections")
        if any(b < a for a, b in zip(kinds, kinds[1:])):
            raise InvalidInputError("corrupt header: sections out of order")
        bands = band_count(header.height, header.band_rows)
        if found[SectionType.Z] != 1 or found[SectionType.Y] != bands:
            raise InvalidInputError(
                f"corrupt file: expected 1 z and {bands} y sections, "
                f"found {found[SectionType.Z]} and {found[SectionType.Y]}"
            )
    has_alpha = header.mode in (ColorMode.RGBA, ColorMode.LA)
    if found[SectionType.ALPHA] != int(has_alpha):
        raise InvalidInputError(
            f"corrupt file: mode {header.mode.name} "
            + ("needs one alpha section" if has_alpha else "has no alpha, but the file has an alpha section")
        )
    for kind in (SectionType.ICC, SectionType.EXIF, SectionType.NOTE):
        if found[kind] > 1:
            raise InvalidInputError(f"corrupt file: {found[kind]} {kind.name} sections")


def check_header_fields(h: Header) -> None:
    """Every header field within its documented range (InvalidInputError otherwise)."""
    if h.format_version not in FORMAT_VERSIONS:
        raise InvalidInputError(f"format version {h.format_version} is not one of {FORMAT_VERSIONS}")
    if not MODEL_NAME.fullmatch(h.model_name):
        raise InvalidInputError(f"corrupt header: model name {h.model_name!r} is not a registry name")
    if not MODEL_NAME.fullmatch(h.architecture):
        raise InvalidInputError(f"corrupt header: architecture {h.architecture!r} is not a registry name")
    if h.format_version == 2 and h.architecture != FORMAT_ARCHITECTURE:
        raise InvalidInputError(
            f"format version 2 holds {FORMAT_ARCHITECTURE} streams only, not {h.architecture!r}"
        )
    if h.flags != 0:
        raise InvalidInputError(f"unsupported flags {h.flags:#04x} (this build knows none)")
    check_dimensions(h.width, h.height)
    if not 1 <= h.band_rows <= MAX_BAND_ROWS:
        raise InvalidInputError(f"corrupt header: band height {h.band_rows} outside 1..{MAX_BAND_ROWS}")
    if not (0.0 <= h.quality <= 100.0):
        raise InvalidInputError(f"corrupt header: quality {h.quality} outside 0..100")


def pack(container: Container) -> bytes:
    """Serialise a container in the header's format version (2: byte for byte as every format-2
    writer; 3: with the architecture's name); raises ValueError for anything ``unpack`` would
    refuse."""
    h = container.header
    if len(h.model_digest) != 8:
        raise ValueError("model digest must be 8 bytes")
    check_header_fields(h)
    check_layout(h, [kind for kind, _ in container.sections])
    name = h.model_name.encode("ascii")
    header = bytearray(MAGIC)
    header += struct.pack(">BBB", h.format_version, h.flags, len(name)) + name + h.model_digest
    if h.format_version == 3:
        architecture = h.architecture.encode("ascii")
        header += struct.pack(">B", len(architecture)) + architecture
    header += _FIXED.pack(h.width, h.height, int(h.mode), h.quality, h.band_rows, len(container.sections))
    for kind, data in container.sections:
        header += _SECTION.pack(int(kind), len(data))
    payload = b"".join(data for _, data in container.sections)
    header += struct.pack(">II", zlib.crc32(bytes(header)), zlib.crc32(payload))
    return bytes(header) + payload


def expected_size(prefix: bytes | bytearray) -> int | None:
    """The size of the ``.nc`` file that starts with ``prefix``, as far as ``prefix`` tells.

    While the header or section table is incomplete: the size needed to read them; then the
    whole file's size (header + the sections' lengths). None once ``prefix`` cannot start a
    valid file (bad magic, version, name or architecture length, section count or header
    checksum), so that a
    reader of a pipe or a device stops there and ``unpack`` reports the problem, instead of
    reading an endless stream into memory (``ncodec info /dev/zero``).
    """
    try:
        raw = _read_header(prefix)
    except _Truncated as short:
        return short.needed
    except InvalidInputError:
        return None
    return raw.end + sum(n for _, n in raw.sections)


def read_stream(stream) -> bytes:
    """Read one ``.nc`` file from a binary stream: up to one byte past its end (so that ``unpack``
    can report trailing data), or less where the bytes read so far cannot start a valid file."""
    data = bytearray()
    while True:
        size = expected_size(data)
        if size is None or len(data) > size:
            return bytes(data)
        block = stream.read(size + 1 - len(data))
        if not block:
            return bytes(data)
        data += block


class _Truncated(InvalidInputError):
    """The data ends before the field being read; ``needed`` bytes would reach its end."""

    def __init__(self, what: str, needed: int) -> None:
        super().__init__(f"truncated file: ends inside the {what}")
        self.needed = needed


class _Reader:
    def __init__(self, data: bytes | bytearray) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int, what: str) -> bytes | bytearray:
        if self.pos + n > len(self.data):
            raise _Truncated(what, self.pos + n)
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out


@dataclass
class _RawHeader:
    """The header fields as stored, read up to and including the header checksum."""

    version: int
    flags: int
    name: bytes
    digest: bytes
    architecture: bytes  # format 2: FORMAT_ARCHITECTURE, which it does not store
    fixed: tuple[int, int, int, float, int]  # width, height, mode, quality, band rows
    sections: list[tuple[int, int]]  # (type, length) as the table lists them, unchecked
    payload_crc: int
    end: int  # offset of the payload


def _read_header(data: bytes | bytearray) -> _RawHeader:
    """Read the header and section table and check what a stream reader can trust them by:
    magic, version, name and architecture lengths, section count and header checksum. Raises
    ``_Truncated`` (with the size needed) where ``data`` ends first, InvalidInputError for the
    rest."""
    if data[: len(MAGIC)] != MAGIC[: min(len(data), len(MAGIC))]:
        raise InvalidInputError("not a neuralcodec file (bad magic bytes)")
    r = _Reader(data)
    version, flags, name_len = r.take(len(MAGIC) + 3, "header")[len(MAGIC) :]
    readable = " and ".join(map(str, FORMAT_VERSIONS))
    if version < min(FORMAT_VERSIONS):
        raise InvalidInputError(
            f"file uses .nc format version {version}, written by an older neuralcodec; this build reads "
            f"versions {readable} (decode it with neuralcodec 0.1, then re-encode)"
        )
    if version > LATEST_FORMAT_VERSION:
        raise InvalidInputError(
            f"file uses .nc format version {version}, newer than this build, which reads versions "
            f"{readable}: upgrade neuralcodec"
        )
    if not 1 <= name_len <= MAX_NAME:
        raise InvalidInputError("corrupt header: bad model name length")
    name = r.take(name_len, "header")
    digest = r.take(8, "header")
    architecture = FORMAT_ARCHITECTURE.encode("ascii")
    if version == 3:
        (architecture_len,) = r.take(1, "header")
        if not 1 <= architecture_len <= MAX_NAME:
            raise InvalidInputError("corrupt header: bad architecture name length")
        architecture = r.take(architecture_len, "header")
    *fixed, count = _FIXED.unpack(r.take(_FIXED.size, "header"))
    if count > (MAX_SECTIONS_V3 if version == 3 else MAX_SECTIONS):
        raise InvalidInputError("corrupt header: too many sections")
    sections = [_SECTION.unpack(r.take(_SECTION.size, "section table")) for _ in range(count)]
    header_crc, payload_crc = struct.unpack(">II", r.take(8, "header checksum"))
    if zlib.crc32(data[: r.pos - 8]) != header_crc:
        raise InvalidInputError("corrupt header: checksum mismatch")
    return _RawHeader(version, flags, name, digest, architecture, tuple(fixed), sections, payload_crc, r.pos)


def unpack(data: bytes) -> Container:
    """Parse and validate a whole ``.nc`` file."""
    raw = _read_header(data)
    width, height, mode, quality, band_rows = raw.fixed
    try:
        name = raw.name.decode("ascii")
        architecture = raw.architecture.decode("ascii")
        color = ColorMode(mode)
        kinds = [SectionType(k) for k, _ in raw.sections]
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInputError(f"corrupt header: {exc}") from exc
    header = Header(
        name, raw.digest, width, height, color, quality, band_rows, raw.flags, architecture, raw.version
    )
    check_header_fields(header)
    check_layout(header, kinds)
    total = sum(n for _, n in raw.sections)
    remaining = len(data) - raw.end
    if total > remaining:
        raise InvalidInputError(f"truncated file: {remaining} payload bytes, header announces {total}")
    if total < remaining:
        raise InvalidInputError(  # no count: a reader of a stream stops one byte past the end
            f"corrupt file: unexpected bytes after the payload (the header announces {raw.end + total} bytes)"
        )
    payload = data[raw.end :]
    if zlib.crc32(payload) != raw.payload_crc:
        raise InvalidInputError("corrupt payload: checksum mismatch")
    sections, pos = [], 0
    for kind, (_, n) in zip(kinds, raw.sections):
        sections.append((kind, payload[pos : pos + n]))
        pos += n
    return Container(header, sections)
