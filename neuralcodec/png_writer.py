"""PNG files written a strip of rows at a time from numpy arrays, without an image in Pillow.

Pillow saves a PNG from its own copy of the image (4 bytes per pixel for RGB), so a decoder
that hands Pillow its pixels holds them twice. :class:`PngWriter` takes rows as they are
produced and keeps only the previous row and zlib's window, so writing needs no memory beyond
the caller's rows. The file is a standard 8-bit PNG (greyscale, RGB, with or without alpha),
with the ICC profile (iCCP) and EXIF (eXIf) chunks Pillow would write, and each row filtered
as libpng and Pillow do by default: the filter whose output has the smallest sum of absolute
(signed) byte values.
"""

from __future__ import annotations

import struct
import zlib
from typing import BinaryIO

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOR_TYPES = {"L": 0, "RGB": 2, "LA": 4, "RGBA": 6}  # PNG colour type of each mode
IDAT_BYTES = 1 << 20  # compressed bytes gathered into one IDAT chunk


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def filtered_rows(rows: np.ndarray, previous: np.ndarray, bpp: int) -> np.ndarray:
    """Rows (n, row bytes) uint8 -> (n, 1 + row bytes): each row's filter type, then the row
    under the filter (of None, Sub, Up, Average, Paeth) with the smallest sum of absolute
    signed bytes (the first such on ties). ``previous``: the row above the first (zeros at the
    top of the image); ``bpp``: bytes per pixel."""
    x = rows.astype(np.int16)
    above = np.concatenate([previous[None].astype(np.int16), x[:-1]])
    left = np.zeros_like(x)
    left[:, bpp:] = x[:, :-bpp]
    upper_left = np.zeros_like(x)
    upper_left[:, bpp:] = above[:, :-bpp]
    estimate = left + above - upper_left
    to_left, to_above, to_upper_left = (np.abs(estimate - v) for v in (left, above, upper_left))
    paeth = np.where(
        (to_left <= to_above) & (to_left <= to_upper_left),
        left,
        np.where(to_above <= to_upper_left, above, upper_left),
    )
    candidates = np.stack([x, x - left, x - above, x - (left + above) // 2, x - paeth]).astype(np.uint8)
    signed = candidates.view(np.int8).astype(np.int16)
    cost = np.abs(signed).sum(axis=2, dtype=np.int64)
    best = cost.argmin(axis=0)  # argmin takes the first on ties
    out = np.empty((x.shape[0], 1 + x.shape[1]), dtype=np.uint8)
    out[:, 0] = best
    out[:, 1:] = candidates[best, np.arange(x.shape[0])]
    return out


class PngWriter:
    """A PNG of ``width`` x ``height`` pixels in ``mode`` (L, LA, RGB or RGBA), written to
    ``fp`` as rows arrive (:meth:`write`); :meth:`close` checks that every row came."""

    def __init__(
        self,
        fp: BinaryIO,
        width: int,
        height: int,
        mode: str,
        *,
        icc: bytes | None = None,
        exif: bytes | None = None,
        level: int = 6,
    ) -> None:
        if mode not in COLOR_TYPES:
            raise ValueError(f"PngWriter writes modes {', '.join(COLOR_TYPES)}, not {mode}")
        self.fp, self.width, self.height, self.mode = fp, width, height, mode
        self.channels = len(mode)
        self.rows_written = 0
        self._previous = np.zeros(width * self.channels, dtype=np.uint8)
        self._compressor = zlib.compressobj(level)
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        header = struct.pack(">IIBBBBB", width, height, 8, COLOR_TYPES[mode], 0, 0, 0)
        fp.write(SIGNATURE + _chunk(b"IHDR", header))
        if icc:
            fp.write(_chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(icc)))
        if exif:
            fp.write(_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif))

    def write(self, rows: np.ndarray) -> None:
        """The next rows: (n, width) for L, (n, width, channels) otherwise, uint8."""
        if rows.dtype != np.uint8 or rows.shape[1] != self.width or rows.size != len(rows) * self._row_bytes:
            raise ValueError(f"rows must be uint8 ({self.width} pixels of {self.mode}), got {rows.shape}")
        if self.rows_written + len(rows) > self.height:
            raise ValueError("more rows than the image's height")
        if not len(rows):
            return
        flat = rows.reshape(len(rows), self._row_bytes)
        data = filtered_rows(flat, self._previous, self.channels)
        self._previous = flat[-1].copy()
        self.rows_written += len(rows)
        self._emit(self._compressor.compress(data.tobytes()))

    def close(self) -> None:
        """Finishes the file; ValueError when rows are missing."""
        if self.rows_written != self.height:
            raise ValueError(f"{self.rows_written} of {self.height} rows written")
        self._emit(self._compressor.flush(), final=True)
        self.fp.write(_chunk(b"IEND", b""))

    @property
    def _row_bytes(self) -> int:
        return self.width * self.channels

    def _emit(self, data: bytes, final: bool = False) -> None:
        if data:
            self._pending.append(data)
            self._pending_bytes += len(data)
        if self._pending_bytes >= IDAT_BYTES or (final and self._pending):
            self.fp.write(_chunk(b"IDAT", b"".join(self._pending)))
            self._pending, self._pending_bytes = [], 0
