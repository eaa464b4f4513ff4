"""BD-rate tables and the markdown summary, from the results files of a run.

``python -m benchmarks.report DIR`` rebuilds summary.md, bd_rate.json and the plots from the
JSON already in DIR, so codecs run at different times end up in one table.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.curves import Curve, load_anchors, load_results_dir, write_json
from neuralcodec.bdrate import bd_rate

ANCHOR_NAME = "jpeg"
OPERATING_BPP = (0.25, 0.5, 1.0)
# Table and legend order: the anchor first, then roughly by age; neuralcodec models last.
DISPLAY_ORDER = ("jpeg", "jpeg444", "webp", "jpeg2000", "jxl", "avif")


def display_order(curves: Sequence[Curve]) -> list[Curve]:
    def key(c: Curve) -> tuple[int, str]:
        return (DISPLAY_ORDER.index(c.name) if c.name in DISPLAY_ORDER else len(DISPLAY_ORDER), c.name)

    return sorted(curves, key=key)


def _valid_pairs(rate: Sequence[float], quality: Sequence[float | None]) -> tuple[list[float], list[float]]:
    pairs = [(r, q) for r, q in zip(rate, quality, strict=True) if q is not None and math.isfinite(q)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def bd_psnr_rate(anchor: Curve, test: Curve) -> float | None:
    """BD-rate (%) on RGB PSNR; None when the curves do not overlap."""
    return _bd(anchor.bpp, anchor.psnr, test.bpp, test.psnr)


def bd_msssim_rate(anchor: Curve, test: Curve) -> float | None:
    """BD-rate (%) on MS-SSIM in dB; None when a curve has no MS-SSIM or they do not overlap."""
    return _bd(anchor.bpp, anchor.msssim_db, test.bpp, test.msssim_db)


def _bd(ar: Sequence[float], aq: Sequence[float | None], tr: Sequence[float], tq: Sequence[float | None]):
    ar, aq = _valid_pairs(ar, aq)
    tr, tq = _valid_pairs(tr, tq)
    if len(set(aq)) < 2 or len(set(tq)) < 2:  # no curve to interpolate (e.g. MS-SSIM not measured)
        return None
    try:
        return bd_rate(ar, aq, tr, tq)
    except ValueError:
        return None


def quality_at(curve_bpp: Sequence[float], quality: Sequence[float | None], bpp: float) -> float | None:
    """Quality at ``bpp``, linear in log-bpp between measured points; None outside (no extrapolation)."""
    r, q = _valid_pairs(curve_bpp, quality)
    if len(r) < 2:
        return None
    order = np.argsort(r)
    x, y = np.log(np.asarray(r)[order]), np.asarray(q)[order]
    if not x[0] <= math.log(bpp) <= x[-1]:
        return None
    return float(np.interp(math.log(bpp), x, y))


def bd_tables(curves: Sequence[Curve]) -> dict[str, dict[str, dict[str, float | None]]]:
    """All-pairs BD-rates: table[metric][test][anchor] in percent."""
    out: dict[str, dict[str, dict[str, float | None]]] = {"psnr-rgb": {}, "ms-ssim-db-rgb": {}}
    for test in curves:
        out["psnr-rgb"][test.name] = {a.name: bd_psnr_rate(a, test) for a in curves}
        out["ms-ssim-db-rgb"][test.name] = {a.name: bd_msssim_rate(a, test) for a in curves}
    return out


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v:+.1f} %"


def _num(v: float | None, fmt: str) -> str:
    return "—" if v is None or not math.isfinite(v) else format(v, fmt)


def _mean(values: Sequence[float]) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def summary_markdown(
    curves: Sequence[Curve], anchors: Sequence[Curve], title: str, notes: Sequence[str] = ()
) -> str:
    """The table pasted into README: operating points, BD vs our JPEG, speed, then all-pairs matrices."""
    jpeg = next((c for c in curves if c.name == ANCHOR_NAME), None)
    lines = [f"# {title}: rate–distortion summary", ""]
    if curves:
        meta = curves[0].meta
        lines.append(
            f"{meta.get('n_images', '?')} images (`{meta.get('dataset', '?')}`), metrics on RGB: PSNR and "
            "MS-SSIM (pytorch_msssim, data_range=255) per image, then averaged; bpp from the bytes of the "
            "files written, headers included. BD-rates use PCHIP over the overlapping quality range "
            "(`neuralcodec.bdrate`); MS-SSIM BD-rates are on −10·log10(1−MS-SSIM). Negative = fewer bits."
        )
        lines.append("")
    lines += [f"- {n}" for n in notes]
    if notes:
        lines.append("")
    head = " / ".join(f"{b:g}" for b in OPERATING_BPP)
    lines += [
        f"## Rate–distortion (BD-rate vs our JPEG 4:2:0 run{'' if jpeg else ': not run'})",
        "",
        f"| codec | points | bpp range | PSNR dB @ {head} bpp | MS-SSIM @ {head} bpp | "
        "BD-rate PSNR | BD-rate MS-SSIM | enc s/img | dec s/img |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in curves:
        ps = " / ".join(_num(quality_at(c.bpp, c.psnr, b), ".2f") for b in OPERATING_BPP)
        ms = " / ".join(_num(quality_at(c.bpp, c.msssim, b), ".4f") for b in OPERATING_BPP)
        bd_p = bd_psnr_rate(jpeg, c) if jpeg else None
        bd_m = bd_msssim_rate(jpeg, c) if jpeg else None
        lines.append(
            f"| {c.label} | {len(c.bpp)} | {min(c.bpp):.3f}–{max(c.bpp):.3f} | {ps} | {ms} | {_pct(bd_p)} | "
            f"{_pct(bd_m)} | {_num(_mean(c.encoding_time), '.4f')} | {_num(_mean(c.decoding_time), '.4f')} |"
        )
    if anchors and jpeg:
        lines += [
            "",
            "## Published Kodak curves vs our JPEG run",
            "",
            "| published curve | BD-rate PSNR | BD-rate MS-SSIM |",
            "|---|---|---|",
        ]
        for a in anchors:
            lines.append(f"| {a.label} | {_pct(bd_psnr_rate(jpeg, a))} | {_pct(bd_msssim_rate(jpeg, a))} |")
    if len(curves) > 1:
        tables = bd_tables(curves)
        for metric, title_ in (("psnr-rgb", "PSNR"), ("ms-ssim-db-rgb", "MS-SSIM dB")):
            lines += [
                "",
                f"## BD-rate matrix on {title_} (row = tested codec, column = anchor)",
                "",
                "| test \\ anchor | " + " | ".join(c.label for c in curves) + " |",
                "|---|" + "---|" * len(curves),
            ]
            for t in curves:
                row = [_pct(tables[metric][t.name][a.name]) if a is not t else "0" for a in curves]
                lines.append(f"| {t.label} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def consistent_curves(curves: Sequence[Curve]) -> tuple[list[Curve], list[str]]:
    """Keep only curves measured on the same images as the JPEG anchor (or the first curve)."""
    if not curves:
        return [], []
    ref = next((c for c in curves if c.name == ANCHOR_NAME), curves[0])
    images = ref.meta.get("images")
    kept, notes = [], []
    for c in curves:
        if images is not None and c.meta.get("images") not in (None, images):
            notes.append(f"{c.name} left out: measured on a different image set than {ref.name}")
            continue
        kept.append(c)
    return kept, notes


def build_report(
    out_dir: Path,
    anchors_dir: Path | None,
    title: str | None = None,
    overlay_anchors: bool | None = None,
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """Write bd_rate.json, summary.md and the RD plots for every results file in ``out_dir``.

    Published curves are Kodak numbers, so by default they are overlaid only on Kodak results.
    """
    from benchmarks.plot import plot_rd

    curves, skipped = consistent_curves(load_results_dir(out_dir))
    curves = display_order(curves)
    if title is None:
        meta = curves[0].meta if curves else {}
        name = meta.get("dataset", out_dir.name)
        title = f"{'Kodak' if name == 'kodak' else name} ({meta.get('n_images', '?')} images)"
    if overlay_anchors is None:
        overlay_anchors = bool(curves) and curves[0].meta.get("dataset") == "kodak"
    anchors = load_anchors(anchors_dir) if overlay_anchors else []
    all_notes = [*notes, *skipped]
    tables = bd_tables(curves)
    vs_jpeg = {}
    jpeg = next((c for c in curves if c.name == ANCHOR_NAME), None)
    if jpeg:
        vs_jpeg = {
            c.name: {"psnr-rgb": bd_psnr_rate(jpeg, c), "ms-ssim-db-rgb": bd_msssim_rate(jpeg, c)}
            for c in [*curves, *anchors]
        }
    write_json(out_dir / "bd_rate.json", {"anchor": ANCHOR_NAME, "vs_jpeg": vs_jpeg, "pairwise": tables})
    (out_dir / "summary.md").write_text(summary_markdown(curves, anchors, title, all_notes))
    plots = plot_rd(curves, anchors, out_dir, title) if curves else []
    return {"curves": [c.name for c in curves], "plots": [str(p) for p in plots], "notes": all_notes}


def main(argv: Sequence[str] | None = None) -> None:
    from benchmarks.datasets import REPO_ROOT

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results_dir", type=Path)
    parser.add_argument("--anchors", type=Path, default=REPO_ROOT.parent / "shared" / "anchors")
    parser.add_argument("--no-anchors", action="store_true", help="do not overlay published Kodak curves")
    parser.add_argument("--title", default=None, help="default: dataset name and image count")
    args = parser.parse_args(argv)
    overlay = False if args.no_anchors else None
    info = build_report(args.results_dir, args.anchors, args.title, overlay_anchors=overlay)
    print(f"wrote {args.results_dir / 'summary.md'} ({len(info['curves'])} codecs)")
    for note in info["notes"]:
        print(f"note: {note}")


if __name__ == "__main__":
    main()
