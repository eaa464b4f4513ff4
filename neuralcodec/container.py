"""The ``.nc`` container: header, sections and checksums (docs/FORMAT.md is the spec).

Parsing validates every field, including the image size limits, before the decoder
allocates anything, and reports problems as InvalidInputError with a one-line message.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from enum import IntEnum

from neuralcodec.errors import InvalidInputError

MAGIC = b"NCDC"
FORMAT_VERSION = 1
MAX_SIDE = 65535
MAX_PIXELS = 1 << 29  # ~537 Mpx: a 20000 x 20000 image fits, a 2^31-pixel header does not
MAX_SECTIONS = 64
MAX_NAME = 64

_FIXED = struct.Struct(">IIBfHB")  # width, height, mode, quality, band rows, section count
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


@dataclass
class Container:
    header: Header
    sections: list[tuple[SectionType, bytes]] = field(default_factory=list)

    def section(self, kind: SectionType) -> list[bytes]:
        return [data for t, data in self.sections if t == kind]


def check_dimensions(width: int, height: int) -> None:
    """Raise InvalidInputError for sizes the codec refuses (before any allocation)."""
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise InvalidInputError(f"image size {width}x{height} is outside 1..{MAX_SIDE} per side")
    if width * height > MAX_PIXELS:
        raise InvalidInputError(f"image size {width}x{height} exceeds the {MAX_PIXELS}-pixel limit")


def pack(container: Container) -> bytes:
    h = container.header
    name = h.model_name.encode("ascii")
    if not 1 <= len(name) <= MAX_NAME:
        raise ValueError("model name must be 1..64 ASCII characters")
    if len(h.model_digest) != 8:
        raise ValueError("model digest must be 8 bytes")
    check_dimensions(h.width, h.height)
    header = bytearray(MAGIC)
    header += struct.pack(">BBB", FORMAT_VERSION, h.flags, len(name)) + name + h.model_digest
    header += _FIXED.pack(h.width, h.height, int(h.mode), h.quality, h.band_rows, len(container.sections))
    for kind, data in container.sections:
        header += _SECTION.pack(int(kind), len(data))
    payload = b"".join(data for _, data in container.sections)
    header += struct.pack(">II", zlib.crc32(bytes(header)), zlib.crc32(payload))
    return bytes(header) + payload


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise InvalidInputError(f"truncated file: ends inside the {what}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out


def unpack(data: bytes) -> Container:
    """Parse and validate a whole ``.nc`` file."""
    r = _Reader(data)
    if r.take(len(MAGIC), "magic") != MAGIC:
        raise InvalidInputError("not a neuralcodec file (bad magic bytes)")
    version, flags, name_len = struct.unpack(">BBB", r.take(3, "header"))
    if version != FORMAT_VERSION:
        raise InvalidInputError(f"unsupported format version {version} (this build reads {FORMAT_VERSION})")
    if not 1 <= name_len <= MAX_NAME:
        raise InvalidInputError("corrupt header: bad model name length")
    raw_name = r.take(name_len, "header")
    digest = r.take(8, "header")
    width, height, mode, quality, band_rows, count = _FIXED.unpack(r.take(_FIXED.size, "header"))
    if count > MAX_SECTIONS:
        raise InvalidInputError("corrupt header: too many sections")
    sections_meta = [_SECTION.unpack(r.take(_SECTION.size, "section table")) for _ in range(count)]
    header_crc, payload_crc = struct.unpack(">II", r.take(8, "header checksum"))
    if zlib.crc32(data[: r.pos - 8]) != header_crc:
        raise InvalidInputError("corrupt header: checksum mismatch")
    try:
        name = raw_name.decode("ascii")
        color = ColorMode(mode)
        kinds = [SectionType(k) for k, _ in sections_meta]
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInputError(f"corrupt header: {exc}") from exc
    check_dimensions(width, height)
    if not 1 <= band_rows <= 1024:
        raise InvalidInputError(f"corrupt header: band height {band_rows} outside 1..1024")
    if not (0.0 <= quality <= 100.0):
        raise InvalidInputError(f"corrupt header: quality {quality} outside 0..100")
    total = sum(n for _, n in sections_meta)
    remaining = len(data) - r.pos
    if total > remaining:
        raise InvalidInputError(f"truncated file: {remaining} payload bytes, header announces {total}")
    if total < remaining:
        raise InvalidInputError(f"corrupt file: {remaining - total} unexpected bytes after the payload")
    payload = data[r.pos :]
    if zlib.crc32(payload) != payload_crc:
        raise InvalidInputError("corrupt payload: checksum mismatch")
    sections, pos = [], 0
    for kind, (_, n) in zip(kinds, sections_meta):
        sections.append((kind, payload[pos : pos + n]))
        pos += n
    header = Header(name, digest, width, height, color, quality, band_rows, flags)
    return Container(header, sections)
