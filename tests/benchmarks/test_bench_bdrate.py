"""BD-rate as the report computes it: textbook cases, a SciPy reference, and the published anchor table."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.interpolate import PchipInterpolator

from benchmarks.curves import Curve, curve_from_json
from benchmarks.report import bd_msssim_rate, bd_psnr_rate, bd_tables, quality_at

ANCHORS = Path(__file__).resolve().parents[2].parent / "shared" / "anchors" / "compressai-kodak"


def scipy_bd_rate(r1, q1, r2, q2) -> float:
    """Reference: PCHIP of log-rate over quality, integrated exactly on the overlap."""
    q1, q2, lr1, lr2 = map(np.asarray, (q1, q2, np.log(r1), np.log(r2)))
    o1, o2 = np.argsort(q1), np.argsort(q2)
    p1, p2 = PchipInterpolator(q1[o1], lr1[o1]), PchipInterpolator(q2[o2], lr2[o2])
    lo, hi = max(q1.min(), q2.min()), min(q1.max(), q2.max())
    diff = (p2.integrate(lo, hi) - p1.integrate(lo, hi)) / (hi - lo)
    return float((np.exp(diff) - 1) * 100)


def curve(name: str, bpp, psnr, msssim=None) -> Curve:
    return Curve(name, name, list(bpp), list(psnr), list(msssim) if msssim is not None else [None] * len(bpp))


BPP = [0.2, 0.35, 0.6, 1.0, 1.6, 2.5]
PSNR = [26.0, 28.5, 31.0, 33.5, 36.0, 38.5]
MSSSIM = [0.90, 0.94, 0.965, 0.98, 0.989, 0.994]


def test_half_the_rate_everywhere_is_minus_50_percent():
    anchor = curve("a", BPP, PSNR, MSSSIM)
    test = curve("t", [b / 2 for b in BPP], PSNR, MSSSIM)
    assert bd_psnr_rate(anchor, test) == pytest.approx(-50.0, abs=1e-6)
    assert bd_msssim_rate(anchor, test) == pytest.approx(-50.0, abs=1e-6)
    assert bd_psnr_rate(test, anchor) == pytest.approx(100.0, abs=1e-6)


def test_same_curve_is_zero():
    c = curve("a", BPP, PSNR)
    assert bd_psnr_rate(c, c) == pytest.approx(0.0, abs=1e-9)


def test_matches_scipy_pchip_reference():
    test_bpp = [0.15, 0.3, 0.5, 0.9, 1.4, 2.0, 2.9]
    test_psnr = [26.5, 29.3, 31.4, 34.0, 36.1, 37.9, 39.6]
    ours = bd_psnr_rate(curve("a", BPP, PSNR), curve("t", test_bpp, test_psnr))
    assert ours == pytest.approx(scipy_bd_rate(BPP, PSNR, test_bpp, test_psnr), abs=0.01)


def test_unordered_points_are_sorted_by_quality():
    perm = [3, 0, 5, 1, 4, 2]
    shuffled = curve("t", [BPP[i] * 0.8 for i in perm], [PSNR[i] for i in perm])
    assert bd_psnr_rate(curve("a", BPP, PSNR), shuffled) == pytest.approx(-20.0, abs=1e-6)


def test_no_overlap_or_no_msssim_gives_none():
    a = curve("a", BPP, PSNR)
    far = curve("t", BPP, [p + 50 for p in PSNR])
    assert bd_psnr_rate(a, far) is None
    assert bd_msssim_rate(a, a) is None


def test_msssim_bd_is_computed_in_db():
    anchor = curve("a", BPP, PSNR, MSSSIM)
    test = curve("t", [b * 0.7 for b in BPP], PSNR, [1 - (1 - m) * 0.8 for m in MSSSIM])
    db_a = [-10 * math.log10(1 - m) for m in MSSSIM]
    db_t = [-10 * math.log10(0.8 * (1 - m)) for m in MSSSIM]
    expected = scipy_bd_rate(BPP, db_a, test.bpp, db_t)
    assert bd_msssim_rate(anchor, test) == pytest.approx(expected, abs=0.01)


def test_pairwise_table_is_antisymmetric_in_log_rate():
    a, t = curve("a", BPP, PSNR), curve("t", [b * 0.6 for b in BPP], PSNR)
    table = bd_tables([a, t])["psnr-rgb"]
    assert (1 + table["t"]["a"] / 100) * (1 + table["a"]["t"] / 100) == pytest.approx(1.0, abs=1e-9)


def test_quality_at_interpolates_and_never_extrapolates():
    assert quality_at(BPP, PSNR, 0.6) == pytest.approx(31.0)
    assert PSNR[2] < quality_at(BPP, PSNR, 0.8) < PSNR[3]
    assert quality_at(BPP, PSNR, 0.1) is None
    assert quality_at(BPP, PSNR, 3.0) is None


@pytest.mark.skipif(not ANCHORS.is_dir(), reason="shared/anchors is not next to this checkout")
@pytest.mark.parametrize(
    ("file", "psnr_bd", "msssim_bd"),
    [
        ("compressai-bmshj2018-hyperprior_mse_cuda.json", -55.0, -50.1),
        ("compressai-bmshj2018-hyperprior_ms-ssim_cuda.json", -18.0, -68.8),
        ("webp.json", -36.2, -23.4),
    ],
)
def test_reproduces_the_published_anchor_table(file, psnr_bd, msssim_bd):
    """shared/anchors/ANCHORS.md §4a, computed there independently (PCHIP, vs CompressAI's jpeg.json)."""
    jpeg = curve_from_json(json.loads((ANCHORS / "jpeg.json").read_text()))
    test = curve_from_json(json.loads((ANCHORS / file).read_text()))
    assert bd_psnr_rate(jpeg, test) == pytest.approx(psnr_bd, abs=0.06)
    assert bd_msssim_rate(jpeg, test) == pytest.approx(msssim_bd, abs=0.06)
