"""ŷ from a file's z and y streams, in numpy: the exact entropy parameters and the entropy
decoding, without torch; and the y symbols per band that every encoder codes from the same
parameters.

Everything here is integer or exact dyadic arithmetic carried in float64 (the hyper-synthesis
in neuralcodec.exact_numpy, the ẑ grid, ŷ = symbol + μ), so every machine decodes the same ŷ,
bit for bit, and so does the encoder that wrote the file (neuralcodec.codec uses these same
functions).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from neuralcodec.container import LATENT_ROW, band_count
from neuralcodec.entropy_models import TableSet, decode_groups, scale_indexes
from neuralcodec.exact_numpy import HyperSynthesis, context_rows
from neuralcodec.quantisation import dequantize, y_symbols, z_index

# Decoding computes the entropy parameters of several bands at once, up to this many bytes of
# scales and means, so that fewer halo rows are computed twice (the same values: exact).
PARAMETER_BYTES = 192 << 20
CHUNK_BYTES = 64 << 20  # about this much hyper-synthesis output per column chunk of a band


@dataclass(frozen=True)
class EntropyParameters:
    """The integer side of a mean-scale hyperprior's weights: what decoding ŷ needs."""

    latent_channels: int  # M
    z_tables: TableSet
    y_tables: TableSet
    scale_table: np.ndarray  # float64
    z_offsets: np.ndarray  # float64 (N,): ẑ = z symbol + offset of its channel (docs/FORMAT.md)
    hyper_synthesis: HyperSynthesis

    @property
    def hyper_channels(self) -> int:  # N
        return len(self.z_offsets)


def z_values(z_offsets: np.ndarray, symbols: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """ẑ = symbol + offset of its channel: (1, N, rows, cols) float64, exact dyadic numbers."""
    return symbols.astype(np.float64).reshape(1, -1, rows, cols) + z_offsets.reshape(1, -1, 1, 1)


def band_parameters(
    hyper_synthesis: HyperSynthesis, z_hat: Any, r0: int, r1: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact (scales, means) for y rows 4·r0 .. 4·r1 from ẑ rows r0 .. r1 plus the rows of
    context its outputs read on each side (exact_numpy.context_rows: the result equals the whole
    image's, bit for bit), as float64 numpy arrays. The hyper-synthesis runs on column chunks of
    about CHUNK_BYTES of output, each with as many columns of context, so its working memory does
    not grow with the image's width. ``hyper_synthesis`` and ``z_hat``: numpy's, or torch's exact one with a
    CPU tensor (the encoder in neuralcodec.codec)."""
    rows, cols = z_hat.shape[2], z_hat.shape[3]
    halo = context_rows(hyper_synthesis.layers)
    a0, a1 = max(0, r0 - halo), min(rows, r1 + halo)
    crop_rows = slice((r0 - a0) * 4, (r1 - a0) * 4)
    # h_s's output (2M ≈ 3N channels, 16 latents per ẑ position, float64) and its intermediates
    bytes_per_column = 512 * z_hat.shape[1] * (a1 - a0)
    step = max(8, CHUNK_BYTES // bytes_per_column)
    scales: np.ndarray | None = None
    means: np.ndarray | None = None
    for c0 in range(0, cols, step):
        c1 = min(cols, c0 + step)
        b0, b1 = max(0, c0 - halo), min(cols, c1 + halo)
        chunk = hyper_synthesis(z_hat[:, :, a0:a1, b0:b1])
        crop_cols = slice((c0 - b0) * 4, (c1 - b0) * 4)
        part_scales, part_means = (np.asarray(a)[:, :, crop_rows, crop_cols] for a in chunk)
        if scales is None or means is None:
            shape = (*part_scales.shape[:2], 4 * (r1 - r0), 4 * cols)
            scales, means = np.empty(shape), np.empty(shape)
        scales[:, :, :, 4 * c0 : 4 * c1] = part_scales
        means[:, :, :, 4 * c0 : 4 * c1] = part_means
    assert scales is not None and means is not None  # cols ≥ 1: one chunk at least
    return scales, means


def decode_latents(
    params: EntropyParameters, z: bytes, y: list[bytes], height: int, width: int, band_rows: int
) -> np.ndarray:
    """Entropy-decode one image's streams into ŷ (1, M, H'/16, W'/16), float32.

    Raises CorruptStreamError (an InvalidInputError) for streams that do not decode, and
    ValueError for a y stream count that does not match the bands."""
    rows, cols = -(-height // LATENT_ROW), -(-width // LATENT_ROW)
    if len(y) != band_count(height, band_rows):
        raise ValueError(f"expected {band_count(height, band_rows)} y streams, got {len(y)}")
    z_sym = decode_groups(z, z_index(params.hyper_channels, rows, cols), params.z_tables)
    z_hat = z_values(params.z_offsets, z_sym, rows, cols)
    y_hat = np.empty((1, params.latent_channels, rows * 4, cols * 4), dtype=np.float32)
    row_bytes = 2 * params.latent_channels * 16 * cols * 8  # float64 scales and means of one z row
    group = max(1, PARAMETER_BYTES // row_bytes // band_rows) * band_rows
    for g0 in range(0, rows, group):
        g1 = min(rows, g0 + group)
        group_scales, group_means = band_parameters(params.hyper_synthesis, z_hat, g0, g1)
        for r0 in range(g0, g1, band_rows):
            r1 = min(g1, r0 + band_rows)
            crop = slice(4 * (r0 - g0), 4 * (r1 - g0))
            scales, means = group_scales[:, :, crop], group_means[:, :, crop]
            index = scale_indexes(scales.ravel(), params.scale_table)
            y_sym = decode_groups(y[r0 // band_rows], index, params.y_tables)
            y_hat[:, :, 4 * r0 : 4 * r1] = dequantize(y_sym, means)
    return y_hat


@dataclass(frozen=True)
class QuantisedBand:
    """One band of y: its rows (y rows 4·r0 .. 4·r1), exact scales and means (float64), their
    y-table indexes and the y symbols in coding order."""

    r0: int
    r1: int
    scales: np.ndarray
    means: np.ndarray
    index: np.ndarray
    symbols: np.ndarray


def quantised_bands(
    hyper_synthesis: Any, z_hat: Any, y: Any, band_rows: int, scale_table: np.ndarray, y_tables: TableSet
) -> Iterator[QuantisedBand]:
    """The bands of ``band_rows`` ẑ rows of one image, as every encoder codes them: the exact
    entropy parameters from ẑ (``hyper_synthesis``: numpy's or torch's exact one, bit-identical;
    ẑ and y as numpy arrays or CPU tensors), then y symbols round(y − μ) clamped into the y
    table of each scale."""
    rows = z_hat.shape[2]
    for r0 in range(0, rows, band_rows):
        r1 = min(rows, r0 + band_rows)
        scales, means = (np.asarray(a) for a in band_parameters(hyper_synthesis, z_hat, r0, r1))
        index = scale_indexes(scales.ravel(), scale_table)
        symbols = y_symbols(np.asarray(y[:, :, 4 * r0 : 4 * r1]), means, index, y_tables)
        yield QuantisedBand(r0, r1, scales, means, index, symbols)
