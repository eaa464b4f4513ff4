"""The sections of a checkerboard context model (architecture ``mean-scale-checkerboard``,
container format 3): a mean-scale hyperprior whose non-anchor latents are coded with parameters
that also read the decoded anchors (neuralcodec.exact_context).

Sections, in file order: z; then for each band of ``band_rows`` ẑ rows its anchors (latent
(row, col) with row + col even), coded with the exact h_s(ẑ) parameters; then for each band its
non-anchors, coded with the context model's exact parameters. Within a section the symbols are
in (channel, row, column) order, as in a format-2 y section. A band's non-anchors need the
anchors up to the context's halo (2 rows) below the band, so the coder works one band behind:
anchors of band b, then non-anchors of band b − 1, holding band b's parameters and the
non-anchors' of band b − 1 (one and a half bands').
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from neuralcodec.container import band_count
from neuralcodec.entropy_decoder import EntropyParameters, band_parameters, z_values
from neuralcodec.entropy_models import decode_groups, encode_groups, scale_indexes, table_bits
from neuralcodec.errors import InvalidModelError
from neuralcodec.exact_context import CheckerboardContext, anchor_mask
from neuralcodec.latent_codec import CodedLatents, band_rows_for, check_section_count, code_z, latent_grid
from neuralcodec.quantisation import dequantize, y_symbols, z_index

CHECKERBOARD = "mean-scale-checkerboard"

# (band index, the band's rows' symbols' table indexes, means) -> the band's symbols
SymbolSource = Callable[[int, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class _PendingBand:
    """A band whose anchors are coded: its y rows and the exact h_s parameters of its
    non-anchors, all its non-anchors need (half of the band's parameters)."""

    index: int
    row0: int  # first latent row
    rows: int
    scales: np.ndarray  # (M, P) float64 at the band's P non-anchors, in raster order
    means: np.ndarray


@dataclass(frozen=True)
class CheckerboardLatents:
    """Encoder and decoder of a checkerboard model's sections (see the module docstring)."""

    params: EntropyParameters
    context: CheckerboardContext
    architecture: str = CHECKERBOARD
    format_version: int = 3

    @classmethod
    def checked(cls, params: EntropyParameters, context: CheckerboardContext) -> CheckerboardLatents:
        """The codec, or InvalidModelError when the context's channels are not the latents'."""
        if context.context.weight.shape[1] != params.latent_channels:
            raise InvalidModelError(
                f"context model reads {context.context.weight.shape[1]} latent channels, the model has "
                f"{params.latent_channels}"
            )
        return cls(params, context)

    def section_count(self, height: int, width: int, band_rows: int) -> int:
        return 1 + 2 * band_count(height, band_rows)

    def encode(
        self,
        y: np.ndarray,
        z: np.ndarray,
        band_rows: int | None = None,
        keep_y_hat: bool = False,
        overwrite_y: bool = False,
    ) -> CodedLatents:
        band_rows = band_rows or band_rows_for(16 * y.shape[3], self.params.latent_channels)
        coded_z = code_z(self.params, z)
        bands = band_count(z.shape[2] * 64, band_rows)
        coded = CodedLatents([coded_z.section] + [b""] * (2 * bands), coded_z.bits, band_rows=band_rows)
        tables = self.params.y_tables
        y = np.asarray(y)

        def code(
            section: int, rows: slice, mask: np.ndarray, index: np.ndarray, means: np.ndarray
        ) -> np.ndarray:
            symbols = y_symbols(y[0][:, rows][:, mask], means, index, tables)
            coded.sections[section] = encode_groups(symbols, index, tables)
            coded.estimated_bits += table_bits(symbols, index, tables)
            return symbols

        # ŷ can replace y position by position: each symbol reads y before its ŷ is written,
        # and the context reads only anchors already coded (non-anchors are ignored).
        in_place = overwrite_y and y.dtype == np.float32 and y.flags.writeable and y.flags.c_contiguous
        y_hat = self._run(coded_z.z_hat, y.shape, band_rows, bands, code, y if in_place else None)
        if keep_y_hat:
            coded.y_hat = y_hat
        return coded

    def decode(self, sections: Sequence[bytes], height: int, width: int, band_rows: int) -> np.ndarray:
        """ŷ (1, M, H'/16, W'/16) float32; CorruptStreamError (one line) for sections that do not
        decode or a section count that does not match the image."""
        check_section_count(self, sections, height, width, band_rows)
        p = self.params
        rows, cols = latent_grid(height, width)
        z_sym = decode_groups(sections[0], z_index(p.hyper_channels, rows, cols), p.z_tables)
        z_hat = z_values(p.z_offsets, z_sym, rows, cols)

        def read(section: int, _rows: slice, _mask: np.ndarray, index: np.ndarray, _means: np.ndarray):
            return decode_groups(sections[section], index, p.y_tables)

        shape = (1, p.latent_channels, rows * 4, cols * 4)
        return self._run(z_hat, shape, band_rows, band_count(height, band_rows), read)

    def _run(
        self,
        z_hat: np.ndarray,
        shape: tuple,
        band_rows: int,
        bands: int,
        symbols,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """The band loop both directions share: ``symbols(section, rows, mask, index, means)``
        codes or decodes one section's symbols; returns ŷ (written into ``out`` if given)."""
        y_hat = np.zeros(shape, dtype=np.float32) if out is None else out
        pending: _PendingBand | None = None
        for b in range(bands):
            r0, r1 = b * band_rows, min(z_hat.shape[2], (b + 1) * band_rows)
            band = self._anchors(b, 4 * r0, 4 * (r1 - r0), z_hat, y_hat, symbols)
            if pending is not None:
                self._non_anchors(pending, y_hat, bands, symbols)
            pending = band
        if pending is not None:
            self._non_anchors(pending, y_hat, bands, symbols)
        return y_hat

    def _anchors(
        self, index: int, row0: int, count: int, z_hat: np.ndarray, y_hat: np.ndarray, symbols
    ) -> _PendingBand:
        """Codes the anchors of latent rows row0 .. row0 + count; returns the band as pending."""
        scales, means = band_parameters(self.params.hyper_synthesis, z_hat, row0 // 4, (row0 + count) // 4)
        rows = slice(row0, row0 + count)
        mask = anchor_mask(row0, count, y_hat.shape[3])
        anchor_means = means[0][:, mask]
        table = scale_indexes(scales[0][:, mask].ravel(), self.params.scale_table)
        coded = symbols(1 + index, rows, mask, table, anchor_means)
        y_hat[0][:, rows][:, mask] = dequantize(coded, anchor_means)
        return _PendingBand(index, row0, count, scales[0][:, ~mask], means[0][:, ~mask])

    def _non_anchors(self, band: _PendingBand, y_hat: np.ndarray, bands: int, symbols) -> None:
        halo = self.context.halo
        start = max(0, band.row0 - halo)
        stop = min(y_hat.shape[2], band.row0 + band.rows + halo)
        scales, means = self.context(
            band.scales, band.means, y_hat[:, :, start:stop], band.row0, band.rows, band.row0 - start
        )
        rows = slice(band.row0, band.row0 + band.rows)
        mask = ~anchor_mask(band.row0, band.rows, y_hat.shape[3])
        index = scale_indexes(scales.ravel(), self.params.scale_table)
        coded = symbols(1 + bands + band.index, rows, mask, index, means)
        y_hat[0][:, rows][:, mask] = dequantize(coded, means)
