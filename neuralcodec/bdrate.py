"""Bjøntegaard delta rate between two rate–distortion curves.

log(rate) is interpolated as a function of quality with monotone PCHIP over all points
(the method of shared/anchors/ANCHORS.md) and integrated over the overlapping quality
interval. Pure numpy so the codec library can use it without SciPy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _pchip_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Fritsch–Carlson derivatives, as scipy.interpolate.PchipInterpolator computes them."""
    h = np.diff(x)
    delta = np.diff(y) / h
    n = len(x)
    d = np.zeros(n)
    if n == 2:
        return np.full(2, delta[0])
    for k in range(1, n - 1):
        if delta[k - 1] * delta[k] > 0:
            w1 = 2 * h[k] + h[k - 1]
            w2 = h[k] + 2 * h[k - 1]
            d[k] = (w1 + w2) / (w1 / delta[k - 1] + w2 / delta[k])
    d[0] = _pchip_end(h[0], h[1], delta[0], delta[1])
    d[-1] = _pchip_end(h[-1], h[-2], delta[-1], delta[-2])
    return d


def _pchip_end(h0: float, h1: float, m0: float, m1: float) -> float:
    d = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
    if np.sign(d) != np.sign(m0):
        return 0.0
    if np.sign(m0) != np.sign(m1) and abs(d) > abs(3 * m0):
        return 3 * m0
    return d


def _pchip_integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float, samples: int = 2000) -> float:
    """Integral of the PCHIP interpolant of (x, y) over [lo, hi] (dense Simpson rule)."""
    d = _pchip_slopes(x, y)
    t = np.linspace(lo, hi, samples + 1)
    k = np.clip(np.searchsorted(x, t, side="right") - 1, 0, len(x) - 2)
    h = x[k + 1] - x[k]
    s = (t - x[k]) / h
    h00 = 2 * s**3 - 3 * s**2 + 1
    h10 = s**3 - 2 * s**2 + s
    h01 = -2 * s**3 + 3 * s**2
    h11 = s**3 - s**2
    v = h00 * y[k] + h10 * h * d[k] + h01 * y[k + 1] + h11 * h * d[k + 1]
    weights = np.ones(samples + 1)
    weights[1:-1:2] = 4
    weights[2:-1:2] = 2
    return float((hi - lo) / samples / 3 * np.dot(weights, v))


def _sorted_curve(rate: Sequence[float], quality: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    q = np.asarray(quality, dtype=np.float64)
    r = np.log(np.asarray(rate, dtype=np.float64))
    order = np.argsort(q)
    q, r = q[order], r[order]
    keep = np.concatenate([[True], np.diff(q) > 0])  # PCHIP needs strictly increasing x
    return q[keep], r[keep]


def bd_rate(
    anchor_rate: Sequence[float],
    anchor_quality: Sequence[float],
    test_rate: Sequence[float],
    test_quality: Sequence[float],
) -> float:
    """Average rate difference of ``test`` vs ``anchor`` at equal quality, in percent.

    Negative means the test codec needs fewer bits. Raises ValueError when the curves'
    quality ranges do not overlap.
    """
    qa, ra = _sorted_curve(anchor_rate, anchor_quality)
    qt, rt = _sorted_curve(test_rate, test_quality)
    if len(qa) < 2 or len(qt) < 2:
        raise ValueError("each curve needs at least two distinct points")
    lo, hi = max(qa[0], qt[0]), min(qa[-1], qt[-1])
    if hi <= lo:
        raise ValueError("the curves' quality ranges do not overlap")
    diff = (_pchip_integral(qt, rt, lo, hi) - _pchip_integral(qa, ra, lo, hi)) / (hi - lo)
    return float((np.exp(diff) - 1.0) * 100.0)
