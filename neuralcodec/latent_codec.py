"""Latents <-> the entropy-coded sections of a file: the part of an architecture that decides
the bits, in numpy, shared by every encoder and decoder (torch's and numpy's).

A latent codec takes an image's latents y (1, M, h, w) and z (1, N, h/4, w/4) to a list of
opaque sections (``encode``) and the sections back to the ŷ a decoder synthesises from
(``decode``), bit for bit the ŷ the encoder had. The container stores the sections without
looking inside them (format 2 names them Z and Y, format 3 MODEL), so an architecture with
other sections plugs in by adding a latent codec and registering it here.

:class:`HyperpriorLatents` is the mean-scale hyperprior's (format 2: one z section, one y
section per band); neuralcodec.checkerboard_latents adds a checkerboard context model's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from neuralcodec.container import LATENT_ROW, MAX_BAND_ROWS, band_count
from neuralcodec.entropy_decoder import EntropyParameters, decode_latents, quantised_bands, z_values
from neuralcodec.entropy_models import CorruptStreamError, encode_groups, table_bits
from neuralcodec.quantisation import dequantize, z_index, z_symbols

HYPERPRIOR = "mean-scale-hyperprior"
# An encoder holds the exact (scales, means) of a band's latents in float64 (and a checkerboard
# the previous band's non-anchors'); bands are made lower than MAX_BAND_ROWS where a band's
# would exceed this.
BAND_PARAMETER_BYTES = 96 << 20


def band_rows_for(width: int, latent_channels: int) -> int:
    """ẑ rows per band that encoders write for an image ``width`` pixels wide: MAX_BAND_ROWS
    (1024 pixel rows) up to about 8,000 pixels for M = 192 latent channels, fewer for wider
    images, so that a band's float64 scales and means stay within BAND_PARAMETER_BYTES (6 rows
    at 20,000 pixels). Every band height from 1 to MAX_BAND_ROWS decodes to the same ŷ (only
    the sections' boundaries move), so this is the encoder's choice, recorded in the header."""
    row_bytes = 2 * latent_channels * 16 * -(-width // LATENT_ROW) * 8
    return max(1, min(MAX_BAND_ROWS, BAND_PARAMETER_BYTES // row_bytes))


@dataclass
class CodedLatents:
    """One image's sections, the rate the integer tables give its symbols (bits: what the coder
    reaches, to a few words per section) and, when asked for, the ŷ that decoding rebuilds."""

    sections: list[bytes] = field(default_factory=list)
    estimated_bits: float = 0.0
    y_hat: np.ndarray | None = None
    band_rows: int = MAX_BAND_ROWS  # what the header records

    @property
    def actual_bits(self) -> int:
        return 8 * sum(len(s) for s in self.sections)


class LatentCodec(Protocol):
    """What the container, the encoders and the decoders need from an architecture's entropy
    side. ``encode`` then ``decode`` of its sections gives the same ŷ on every machine.
    ``encode`` may write ŷ over ``y`` when ``overwrite_y`` is set (a caller done with y saves
    holding both); it never does otherwise. Its ``band_rows`` None means :func:`band_rows_for`
    the image's width; the result records the height used."""

    architecture: str  # the registry name a format-3 header stores
    format_version: int  # the container version its files use

    def section_count(self, height: int, width: int, band_rows: int) -> int: ...

    def encode(
        self,
        y: np.ndarray,
        z: np.ndarray,
        band_rows: int | None = None,
        keep_y_hat: bool = False,
        overwrite_y: bool = False,
    ) -> CodedLatents: ...

    def decode(self, sections: Sequence[bytes], height: int, width: int, band_rows: int) -> np.ndarray: ...


def check_section_count(
    codec: LatentCodec, sections: Sequence[bytes], height: int, width: int, rows: int
) -> None:
    """CorruptStreamError (one line) unless a file has the sections its codec needs."""
    expected = codec.section_count(height, width, rows)
    if len(sections) != expected:
        raise CorruptStreamError(
            f"corrupt file: {codec.architecture} needs {expected} model sections, found {len(sections)}"
        )


@dataclass(frozen=True)
class CodedZ:
    """ẑ of an image: its symbols' section, their rate (bits) and the exact ẑ values."""

    section: bytes
    bits: float
    z_hat: np.ndarray


def code_z(params: EntropyParameters, z: np.ndarray) -> CodedZ:
    """z symbols round(z − offset), clamped into the z tables, coded; ẑ as decoding rebuilds it."""
    rows, cols = z.shape[2:]
    index = z_index(params.hyper_channels, rows, cols)
    symbols = z_symbols(z, params.z_offsets, params.z_tables)
    return CodedZ(
        encode_groups(symbols, index, params.z_tables),
        table_bits(symbols, index, params.z_tables),
        z_values(params.z_offsets, symbols, rows, cols),
    )


def latent_grid(height: int, width: int) -> tuple[int, int]:
    """(ẑ rows, ẑ columns) of an image: one per 64×64 pixels, rounded up."""
    return -(-height // LATENT_ROW), -(-width // LATENT_ROW)


@dataclass(frozen=True)
class HyperpriorLatents:
    """The mean-scale hyperprior's sections: z, then y per band of ``band_rows`` ẑ rows, every
    y coded with the exact (scales, means) of h_s(ẑ)."""

    params: EntropyParameters
    architecture: str = HYPERPRIOR
    format_version: int = 2

    def section_count(self, height: int, width: int, band_rows: int) -> int:
        return 1 + band_count(height, band_rows)

    def encode(
        self,
        y: np.ndarray,
        z: np.ndarray,
        band_rows: int | None = None,
        keep_y_hat: bool = False,
        overwrite_y: bool = False,  # not needed: bands are coded without a whole ŷ
    ) -> CodedLatents:
        p = self.params
        band_rows = band_rows or band_rows_for(16 * y.shape[3], p.latent_channels)
        coded_z = code_z(p, z)
        coded = CodedLatents([coded_z.section], coded_z.bits, band_rows=band_rows)
        if keep_y_hat:
            coded.y_hat = np.empty(y.shape, dtype=np.float32)
        for band in quantised_bands(
            p.hyper_synthesis, coded_z.z_hat, y, band_rows, p.scale_table, p.y_tables
        ):
            coded.sections.append(encode_groups(band.symbols, band.index, p.y_tables))
            coded.estimated_bits += table_bits(band.symbols, band.index, p.y_tables)
            if coded.y_hat is not None:
                coded.y_hat[:, :, 4 * band.r0 : 4 * band.r1] = dequantize(band.symbols, band.means)
        return coded

    def decode(self, sections: Sequence[bytes], height: int, width: int, band_rows: int) -> np.ndarray:
        check_section_count(self, sections, height, width, band_rows)
        return decode_latents(self.params, sections[0], list(sections[1:]), height, width, band_rows)
