"""A plain-Python reading of docs/FORMAT.md's entropy-coded sections, independent of constriction.

Slow (one Python step per symbol) and meant only for tests: it pins the bytes the codec
writes, so a dependency update that changes them fails the test suite.
"""

from __future__ import annotations

import numpy as np

PRECISION = 24
INITIAL_STATE = 1
WORD_MASK = (1 << 32) - 1


def coding_order(index: np.ndarray) -> np.ndarray:
    """Symbol positions grouped by table (ascending), raster order within a table."""
    return np.argsort(index, kind="stable")


def cumulative(counts: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(counts)[:-1]])


def encode_section(symbols: np.ndarray, index: np.ndarray, tables) -> bytes:
    """rANS, 64-bit state, 32-bit words, tables of 2^24 counts; encoder runs in reverse."""
    state, words = INITIAL_STATE, []
    for j in coding_order(index)[::-1]:
        t = int(index[j])
        counts = tables.counts_of(t)
        k = int(symbols[j] - tables.offsets[t])
        p, left = int(counts[k]), int(cumulative(counts)[k])
        if state >> (64 - PRECISION) >= p:
            words.append(state & WORD_MASK)
            state >>= 32
        state = ((state // p) << PRECISION) | (state % p + left)
    words.append(state & WORD_MASK)
    if state >> 32:
        words.append(state >> 32)
    return np.array(words, dtype="<u4").tobytes()


def decode_section(data: bytes, index: np.ndarray, tables) -> np.ndarray:
    """Inverse of :func:`encode_section`; raises ValueError where the spec says corrupt."""
    words = [int(w) for w in np.frombuffer(data, dtype="<u4")]
    if not words or words[-1] == 0:
        raise ValueError("empty section or zero top word")
    state = words.pop()
    if words:
        state = (state << 32) | words.pop()
    out = np.empty(len(index), dtype=np.int64)
    for j in coding_order(index):
        if state == 0:
            raise ValueError("runs out of data")
        t = int(index[j])
        counts = tables.counts_of(t)
        cdf = cumulative(counts)
        quantile = state & ((1 << PRECISION) - 1)
        k = int(np.searchsorted(cdf, quantile, side="right") - 1)
        state = int(counts[k]) * (state >> PRECISION) + quantile - int(cdf[k])
        if state < (1 << 32) and words:
            state = (state << 32) | words.pop()
        out[j] = k + tables.offsets[t]
    if words or state != INITIAL_STATE:
        raise ValueError("does not end in the initial state")
    return out
