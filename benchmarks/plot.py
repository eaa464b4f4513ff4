"""RD plots (PNG for README, SVG for papers): our curves solid, published curves dashed.

Headless (Agg) so it runs on servers and in CI.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (after selecting the headless backend)

from benchmarks.curves import Curve  # noqa: E402

MAX_BPP = 2.0  # the range where learned and classical codecs are usually compared on Kodak


def _points(curve: Curve, metric: str) -> tuple[list[float], list[float]]:
    values = curve.psnr if metric == "psnr" else curve.msssim_db
    pts = sorted((b, v) for b, v in zip(curve.bpp, values, strict=True) if v is not None and math.isfinite(v))
    return [p[0] for p in pts], [p[1] for p in pts]


def _limits(curves: Sequence[Curve], metric: str, xmax: float) -> tuple[float, float] | None:
    ys = [y for c in curves for x, y in zip(*_points(c, metric), strict=True) if x <= xmax]
    if not ys:
        return None
    pad = 0.04 * (max(ys) - min(ys) or 1.0)
    return min(ys) - pad, max(ys) + pad


def plot_metric(
    curves: Sequence[Curve], anchors: Sequence[Curve], metric: str, title: str, stem: Path
) -> list[Path]:
    """One figure for ``metric`` ("psnr" or "msssim"), saved as stem.png and stem.svg."""
    ours_max = max((max(c.bpp) for c in curves), default=MAX_BPP)
    xmax = min(MAX_BPP, ours_max * 1.02)
    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    for c in curves:
        x, y = _points(c, metric)
        if x:
            ax.plot(x, y, marker="o", markersize=3.5, linewidth=1.6, label=c.label)
    muted = plt.get_cmap("Dark2").colors  # published curves: their own colours, dashed, thinner
    for i, a in enumerate(anchors):
        x, y = _points(a, metric)
        if x:
            color = muted[i % len(muted)]
            ax.plot(x, y, linestyle="--", linewidth=1.1, color=color, label=f"{a.label} (published)")
    ax.set_xlim(0, xmax)
    ylim = _limits([*curves, *anchors], metric, xmax)
    if ylim:
        ax.set_ylim(*ylim)
    ax.set_xlabel("bits per pixel (file size)")
    ax.set_ylabel("PSNR RGB [dB]" if metric == "psnr" else "MS-SSIM RGB [dB]  (−10·log10(1−MS-SSIM))")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7.5, loc="lower right")
    fig.tight_layout()
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    stem.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(paths[0], dpi=150)
    # No timestamp and fixed element ids: rerunning on the same results gives an identical SVG.
    with plt.rc_context({"svg.hashsalt": "neuralcodec-benchmarks"}):
        fig.savefig(paths[1], metadata={"Date": None})
    plt.close(fig)
    return paths


def plot_rd(curves: Sequence[Curve], anchors: Sequence[Curve], out_dir: Path, title: str) -> list[Path]:
    """rd-psnr.{png,svg} and rd-msssim.{png,svg} in ``out_dir``."""
    paths = plot_metric(curves, anchors, "psnr", f"{title}: PSNR", out_dir / "rd-psnr")
    if any(c.has_msssim() for c in curves):
        paths += plot_metric(curves, anchors, "msssim", f"{title}: MS-SSIM", out_dir / "rd-msssim")
    return paths
