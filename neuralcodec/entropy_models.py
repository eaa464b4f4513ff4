"""Integer probability tables and the constriction calls that code latents with them.

Every table is stored with the weights as integer counts, so encoder and decoder build
bit-identical models on any machine (no transcendental function runs at coding time), and
the coder uses exactly those counts: constriction's fast quantizer, given the float64
weights ``count - 1``, computes ``left_cumulative[i] = i + sum(count[:i] - 1)`` in exact
integer arithmetic, i.e. our cumulative counts (tests/reference_ans.py re-derives every
stream bit for bit without constriction). Symbols are coded in groups that share a table
(a z channel, or a y scale index): one vectorised constriction call per group, never a
Python loop over symbols.

A section's ANS coder starts in state 1, not 0. A valid section therefore never passes
through state 0 and must end decoding in state 1 with no word left, so an empty section,
or one that runs out of data, is reported as corrupt instead of decoding symbols from
nothing.

Importing this module needs no torch (the decoder's side of it is numpy and constriction).
"""

from __future__ import annotations

from dataclasses import dataclass

import constriction
import numpy as np

from neuralcodec.errors import InvalidInputError

PRECISION = 24  # counts of a table sum to 2^PRECISION; constriction's default precision
SCALE_MIN, SCALE_MAX, SCALE_LEVELS = 0.11, 128.0, 192
GAUSSIAN_TAIL = 8.0  # y tables cover ±max(TAIL·σ, MIN_RADIUS)
MIN_RADIUS = 15
INITIAL_STATE = 1  # the ANS state every section's encoder starts from (docs/FORMAT.md)
WORD = np.dtype("<u4")  # sections are 32-bit words, little-endian on every machine


class CorruptStreamError(InvalidInputError):
    """The entropy-coded data does not decode with these tables."""


@dataclass
class TableSet:
    """Integer pmfs for symbols ``offset[i] .. offset[i] + length[i] - 1`` of table i."""

    counts: np.ndarray  # int64, all tables concatenated
    starts: np.ndarray  # int64, index of table i in ``counts``
    lengths: np.ndarray  # int64
    offsets: np.ndarray  # int64, smallest symbol value of table i

    def counts_of(self, i: int) -> np.ndarray:
        """The integer counts of table i (they sum to 2^PRECISION, each ≥ 1)."""
        s, n = int(self.starts[i]), int(self.lengths[i])
        return self.counts[s : s + n]

    def coder_model(self, i: int) -> constriction.stream.model.Categorical:
        """A constriction model that codes with exactly the integer counts of table i.

        The fast (``perfect=False``) quantizer gives symbol k the left cumulative
        ``k + floor(sum(w[:k]) · (2^P − n) / sum(w))``; with w = count − 1 (integers, so every
        float64 sum is exact) the scale is exactly 1 and this is the cumulative count.
        """
        return constriction.stream.model.Categorical(
            (self.counts_of(i) - 1).astype(np.float64), perfect=False
        )

    def to_dict(self) -> dict:
        import torch

        return {
            "counts": torch.from_numpy(self.counts.astype(np.int32)),
            "lengths": torch.from_numpy(self.lengths.astype(np.int32)),
            "offsets": torch.from_numpy(self.offsets.astype(np.int32)),
        }

    @classmethod
    def from_dict(cls, d: dict) -> TableSet:
        """From ``to_dict``'s entries: torch tensors or numpy arrays."""
        lengths = np.asarray(d["lengths"]).astype(np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        return cls(
            np.asarray(d["counts"]).astype(np.int64),
            starts,
            lengths,
            np.asarray(d["offsets"]).astype(np.int64),
        )

    @classmethod
    def from_pmfs(cls, pmfs: list[np.ndarray], offsets: list[int]) -> TableSet:
        counts = [quantize_pmf(p) for p in pmfs]
        lengths = np.array([len(c) for c in counts], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        return cls(np.concatenate(counts), starts, lengths, np.asarray(offsets, dtype=np.int64))

    def clamp(self, symbols: np.ndarray, index: np.ndarray) -> np.ndarray:
        """Clamp each symbol into the range of its table."""
        lo = self.offsets[index]
        return np.clip(symbols, lo, lo + self.lengths[index] - 1)


def quantize_pmf(pmf: np.ndarray) -> np.ndarray:
    """Integer counts summing to 2^PRECISION, each at least 1, close to ``pmf``."""
    total = 1 << PRECISION
    pmf = np.maximum(np.asarray(pmf, dtype=np.float64), 0)
    pmf = pmf / pmf.sum()
    counts = np.maximum(np.floor(pmf * (total - len(pmf))).astype(np.int64), 0) + 1
    counts[np.argmax(counts)] += total - counts.sum()
    return counts


def scale_table() -> np.ndarray:
    """Log-spaced scales; stored with the weights so every decoder uses the same float64."""
    return np.exp(np.linspace(np.log(SCALE_MIN), np.log(SCALE_MAX), SCALE_LEVELS))


def gaussian_tables(scales: np.ndarray) -> TableSet:
    """Zero-mean quantised Gaussian pmfs, one per scale, tails folded into the end bins."""
    import torch

    pmfs, offsets = [], []
    for s in scales:
        radius = max(int(np.ceil(GAUSSIAN_TAIL * s)), MIN_RADIUS)
        k = torch.arange(-radius, radius + 2, dtype=torch.float64) - 0.5
        cdf = torch.special.ndtr(k / float(s)).numpy()
        cdf[0], cdf[-1] = 0.0, 1.0
        pmfs.append(np.diff(cdf))
        offsets.append(-radius)
    return TableSet.from_pmfs(pmfs, offsets)


def scale_indexes(scales: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Index of the table scale nearest to each scale in log space.

    The bounds are the geometric midpoints sqrt(t_i·t_(i+1)): IEEE square roots and
    comparisons are correctly rounded, so every machine picks the same index. Nearest (not
    next-larger) halves the rate lost to the table's granularity.
    """
    midpoints = np.sqrt(table[:-1] * table[1:])
    return np.searchsorted(midpoints, scales, side="left")


def coding_order(index: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """The coding order shared by encoder and decoder: symbol positions sorted by table
    (stable, so raster order within a table), the tables used, and each group's bounds."""
    if not index.size:
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp), [0]
    counts = np.bincount(index)  # indexes are table numbers: small, non-negative
    # The same permutation for any integer dtype; 8 and 16 bits sort by radix, in linear time.
    narrow = index.astype(
        np.uint8 if len(counts) <= 256 else np.uint16 if len(counts) <= 65536 else index.dtype
    )
    order = np.argsort(narrow, kind="stable")
    used = np.flatnonzero(counts)
    return order, used, [0, *np.cumsum(counts[used]).tolist()]


def encode_groups(symbols: np.ndarray, index: np.ndarray, tables: TableSet) -> bytes:
    """ANS-code ``symbols`` (already clamped), symbol j under table ``index[j]``."""
    order, used, bounds = coding_order(index)
    coder = constriction.stream.stack.AnsCoder(np.array([INITIAL_STATE], dtype=np.uint32))
    # ANS is a stack: encode the last group first so the decoder reads groups in order.
    for g in range(len(used) - 1, -1, -1):
        t = int(used[g])
        group = symbols[order[bounds[g] : bounds[g + 1]]] - tables.offsets[t]
        coder.encode_reverse(group.astype(np.int32), tables.coder_model(t))
    return coder.get_compressed().astype(WORD).tobytes()


def decode_groups(data: bytes, index: np.ndarray, tables: TableSet) -> np.ndarray:
    """Inverse of :func:`encode_groups` given the same ``index`` array.

    Raises CorruptStreamError for a section that is empty, not whole words, runs out of data
    (the coder reaches state 0, which no valid section passes through) or has data left over.
    """
    if not data:
        raise CorruptStreamError("entropy-coded section is empty")
    if len(data) % 4:
        raise CorruptStreamError("entropy-coded section length is not a multiple of 4")
    words = np.frombuffer(data, dtype=WORD).astype(np.uint32)
    try:
        coder = constriction.stream.stack.AnsCoder(words)
    except Exception as exc:  # constriction rejects e.g. a zero last word
        raise CorruptStreamError(f"invalid entropy-coded section: {exc}") from exc
    order, used, bounds = coding_order(index)
    out = np.empty(len(index), dtype=np.int64)
    try:
        for g in range(len(used)):
            if coder.is_empty():
                raise CorruptStreamError("entropy-coded section runs out of data")
            t = int(used[g])
            n = bounds[g + 1] - bounds[g]
            out[order[bounds[g] : bounds[g + 1]]] = (
                coder.decode(tables.coder_model(t), n).astype(np.int64) + tables.offsets[t]
            )
    except CorruptStreamError:
        raise
    except Exception as exc:
        raise CorruptStreamError(f"entropy-coded section does not decode: {exc}") from exc
    rest = coder.get_compressed()
    if len(rest) != 1 or int(rest[0]) != INITIAL_STATE:
        raise CorruptStreamError(
            "entropy-coded section runs out of data"
            if coder.is_empty()
            else "entropy-coded section is corrupt"
        )
    return out


def gaussian_bits(symbols: np.ndarray, scales: np.ndarray) -> float:
    """The model's own estimate: -log2 of the continuous-scale quantised Gaussian."""
    import torch

    s = torch.from_numpy(scales.astype(np.float64)).clamp_min(SCALE_MIN)
    v = torch.from_numpy(symbols.astype(np.float64)).abs()
    upper = torch.special.ndtr((0.5 - v) / s)
    lower = torch.special.ndtr((-0.5 - v) / s)
    return float(-torch.log2((upper - lower).clamp_min(1e-12)).sum())


def symbol_bits(symbols: np.ndarray, index: np.ndarray, tables: TableSet) -> np.ndarray:
    """-log2 of each symbol's probability in its integer table (float64, the shape of ``symbols``);
    ``symbols`` must lie inside their tables (``TableSet.clamp``)."""
    counts = tables.counts[tables.starts[index] + symbols - tables.offsets[index]]
    return -(np.log2(counts) - PRECISION)


def table_bits(symbols: np.ndarray, index: np.ndarray, tables: TableSet) -> float:
    """-log2 of the integer tables' probabilities (what ANS can reach)."""
    return float(symbol_bits(symbols, index, tables).sum())
