"""Rate–distortion benchmark: every codec over its quality sweep on an image folder, one command.

    python -m benchmarks.rd --dataset kodak --codecs jpeg,webp,avif,neuralcodec

Writes <out>/<codec>.json (CompressAI results format plus a "meta" block),
<out>/per_image/<codec>.json, then bd_rate.json, summary.md and rd-*.png/svg.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from benchmarks.codecs import ALL_CODEC_NAMES, Codec, build_codecs
from benchmarks.curves import finite_mean, write_json
from benchmarks.datasets import (
    REPO_ROOT,
    dataset_name,
    display_path,
    list_images,
    load_rgb,
    resolve_dataset,
)
from benchmarks.metrics import compare, resolve_device
from benchmarks.report import build_report

DEFAULT_CODECS = "jpeg,jpeg444,webp,avif,jxl,jpeg2000,neuralcodec"
DEFAULT_ANCHORS_DIR = REPO_ROOT.parent / "shared" / "anchors"
RESULTS_ROOT = REPO_ROOT / "benchmarks" / "results"


def run_codec(
    codec: Codec,
    images: Sequence[tuple[str, np.ndarray]],
    device: torch.device,
    files_dir: Path,
    progress: bool = True,
) -> tuple[dict[str, list[float]], dict[str, dict[str, list[float]]]]:
    """Encode/decode every image at every quality; return dataset averages and per-image values.

    The size counted is that of the file actually written to ``files_dir``; the times are those of
    encode() to bytes and decode() from bytes, so disk speed does not enter them.
    """
    keys = ("bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time")
    per_image: dict[str, dict[str, list[float]]] = {name: {k: [] for k in keys} for name, _ in images}
    averages: dict[str, list[float]] = {k: [] for k in keys}
    bar = tqdm(total=len(codec.qualities) * len(images), desc=codec.name, unit="img", disable=not progress)
    for quality in codec.qualities:
        for name, img in images:
            t0 = time.perf_counter()
            data = codec.encode(img, quality)
            t_enc = time.perf_counter() - t0
            path = files_dir / f"{name}_q{quality:g}{codec.extension}"
            path.write_bytes(data)
            size = path.stat().st_size
            t0 = time.perf_counter()
            decoded = codec.decode(path.read_bytes())
            t_dec = time.perf_counter() - t0
            m = compare(img, decoded, device)
            row = per_image[name]
            row["bpp"].append(size * 8 / (img.shape[0] * img.shape[1]))
            row["psnr-rgb"].append(m["psnr-rgb"])
            row["ms-ssim-rgb"].append(m["ms-ssim-rgb"])
            row["encoding_time"].append(t_enc)
            row["decoding_time"].append(t_dec)
            bar.update(1)
        i = len(averages["bpp"])
        for k in keys:
            averages[k].append(finite_mean([per_image[n][k][i] for n, _ in images]))
    bar.close()
    return averages, per_image


def result_document(
    codec: Codec,
    averages: dict[str, list[float]],
    meta: dict[str, Any],
) -> dict[str, Any]:
    """CompressAI results format; our extra fields live under "meta" so their readers ignore them."""
    return {
        "name": codec.name,
        "description": codec.description,
        "meta": {**meta, "label": codec.label, "quality": list(codec.qualities), "codec": codec.info()},
        "results": averages,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.rd",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawTextHelpFormatter,
    )
    parser.add_argument("--dataset", default="kodak", help="'kodak' or a folder of images (default: kodak)")
    parser.add_argument(
        "--codecs",
        default=DEFAULT_CODECS,
        help=f"comma-separated subset of {','.join(ALL_CODEC_NAMES)};\n"
        "neuralcodec:NAME+/path/w.pt picks shipped models or weights files",
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="use only the first N images (sorted by name)"
    )
    parser.add_argument("--qualities", default=None, help="comma-separated 0..100 qualities for every codec")
    parser.add_argument(
        "--device", default="auto", help="auto|cpu|cuda (metrics, and neuralcodec if supported)"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="results folder (default benchmarks/results/<dataset>)"
    )
    parser.add_argument(
        "--anchors", type=Path, default=DEFAULT_ANCHORS_DIR, help="published curves (shared/anchors)"
    )
    parser.add_argument("--no-anchors", action="store_true", help="do not overlay published curves")
    parser.add_argument(
        "--kodak-dir", type=Path, default=None, help="local Kodak copy (default ../shared/...)"
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="download cache (default ~/.cache/neuralcodec)"
    )
    parser.add_argument("--keep-files", type=Path, default=None, help="keep the encoded files in this folder")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for the metrics")
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    folder = resolve_dataset(args.dataset, kodak_dir=args.kodak_dir, cache_dir=args.cache_dir)
    dname = dataset_name(args.dataset, folder)
    out_dir = args.out or RESULTS_ROOT / dname
    paths = list_images(folder, args.limit)
    images = [(p.stem, load_rgb(p)) for p in paths]
    qualities = [float(q) for q in args.qualities.split(",")] if args.qualities else None
    names = [n.strip() for n in args.codecs.split(",") if n.strip()]
    codecs, notes = build_codecs(names, device=str(device), qualities=qualities)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    meta = {
        "dataset": dname,
        "dataset_dir": display_path(folder),
        "images": [n for n, _ in images],
        "n_images": len(images),
        "device": str(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "bpp": "file bytes * 8 / (W * H)",
        "averaging": "mean over images of per-image values",
    }
    written, failed = [], []
    for codec in codecs:
        with tempfile.TemporaryDirectory(prefix=f"rd-{codec.name}-") as tmp:
            files_dir = (args.keep_files / codec.name) if args.keep_files else Path(tmp)
            files_dir.mkdir(parents=True, exist_ok=True)
            try:
                averages, per_image = run_codec(codec, images, device, files_dir, not args.no_progress)
            except Exception as exc:  # one broken codec must not cost the others' results
                failed.append(codec.name)
                notes.append(f"{codec.name} failed: {type(exc).__name__}: {exc}")
                print(f"error: {notes[-1]}", file=sys.stderr)
                continue
        write_json(out_dir / f"{codec.name}.json", result_document(codec, averages, meta))
        write_json(
            out_dir / "per_image" / f"{codec.name}.json",
            {"name": codec.name, "quality": list(codec.qualities), "images": per_image},
        )
        written.append(codec.name)
    overlay = False if args.no_anchors else None
    info = build_report(out_dir, args.anchors, overlay_anchors=overlay, notes=notes)
    print(f"wrote {len(written)} result files, summary and plots to {out_dir}")
    for note in info["notes"]:
        if note not in notes:
            print(f"note: {note}", file=sys.stderr)
    print((out_dir / "summary.md").read_text())
    return {"out_dir": out_dir, "codecs": written, "failed": failed, **info}


if __name__ == "__main__":
    sys.exit(1 if main()["failed"] else 0)
