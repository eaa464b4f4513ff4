"""Whole-tree throughput: ``ncodec compress -r`` with ``--jobs 1``, ``--jobs 2`` and ``--engine ray``.

    python -m benchmarks.bulk --count 200 --repeats 2

Writes ``--count`` crops of downscaled photos (default: 4 per photo of qoi_photo_wikipedia,
each photo scaled to 768 pixels wide, crops of 384x256) into a temporary tree of nested
folders, then runs each setting as the command a user would type, in a fresh process: once on
the whole tree and once on a 2-file tree, so that the fixed cost (interpreter, torch, workers
or the Ray instance starting, model loading) is separated from the rate per file. Settings run
interleaved ``--repeats`` times; the fastest run counts. Also checks that every run wrote the
same bytes. Writes bulk.json and bulk.md (default benchmarks/results/bulk/).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from benchmarks.curves import write_json
from benchmarks.datasets import REPO_ROOT, display_path, list_images
from neuralcodec.machine import cpu_name

DEFAULT_PHOTOS = REPO_ROOT.parent / "shared" / "datasets" / "qoi_photo_wikipedia"
RESULTS = REPO_ROOT / "benchmarks" / "results" / "bulk"
SETTINGS = {
    "jobs1": ["--jobs", "1"],
    "jobs2": ["--jobs", "2"],
    "ray": ["--engine", "ray"],
}


def make_tree(photos: Path, root: Path, count: int, crop: tuple[int, int], width: int) -> int:
    """``count`` crops (4 per photo, corners of the downscaled photo) as PNGs under ``root``;
    returns their total bytes."""
    paths = list_images(photos)
    total = 0
    for index in range(count):
        photo = paths[(index // 4) % len(paths)]
        with Image.open(photo) as im:
            im = im.convert("RGB")
            scaled = im.resize((width, max(crop[1], round(im.height * width / im.width))), Image.LANCZOS)
        x = 0 if index % 2 == 0 else scaled.width - crop[0]
        y = 0 if index % 4 < 2 else scaled.height - crop[1]
        out = root / f"{photo.stem}" / f"crop{index % 4}-{index // 4 // len(paths)}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        scaled.crop((x, y, x + crop[0], y + crop[1])).save(out)
        total += out.stat().st_size
    return total


def run(command: list[str]) -> float:
    """Seconds the command took; it must succeed."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(command)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return seconds


def tree_digest(root: Path) -> str:
    """One digest of every .nc file under ``root`` (paths and bytes)."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.nc")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    src, small = work / "src", work / "small"
    crop = tuple(int(v) for v in args.crop.split("x"))
    bytes_in = make_tree(args.photos, src, args.count, crop, args.width)
    make_tree(args.photos, small, 2, crop, args.width)
    base = [sys.executable, "-m", "neuralcodec.cli", "compress", "-r"]
    options = ["--model", args.model, "-e", str(args.effort)]
    times: dict[str, dict[str, list[float]]] = {name: {"full": [], "fixed": []} for name in args.settings}
    loads, digests = [], set()
    for repeat in range(args.repeats):  # settings interleaved, so that a change of load hits them all
        for name in args.settings:
            out = work / f"{name}-{repeat}"
            loads.append(os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"))
            times[name]["full"].append(run(base + [str(src), "-o", str(out), *options, *SETTINGS[name]]))
            small_out = str(work / f"{name}-{repeat}-small")
            times[name]["fixed"].append(run(base + [str(small), "-o", small_out, *options, *SETTINGS[name]]))
            digests.add(tree_digest(out))
            print(
                f"{name}: {times[name]['full'][-1]:.1f} s, fixed {times[name]['fixed'][-1]:.1f} s", flush=True
            )
    rows = {}
    for name in args.settings:
        full, fixed = min(times[name]["full"]), min(times[name]["fixed"])
        summary = json.loads((work / f"{name}-0" / ".ncodec-summary.json").read_text())
        per_file = (full - fixed) / (args.count - 2)
        rows[name] = {
            "flags": " ".join(SETTINGS[name]),
            "engine": summary["engine"],
            "seconds": full,
            "files_per_s": args.count / full,
            "mb_in_per_s": bytes_in / 1e6 / full,
            "fixed_seconds": fixed,
            "marginal_files_per_s": 1 / per_file if per_file > 0 else None,
            "runs": times[name],
            "bytes_out": summary["bytes_out"],
            "mean_bpp": summary["mean_bpp"],
        }
    return {
        "command": "python -m benchmarks.bulk " + shlex.join(sys.argv[1:]),
        "photos": display_path(args.photos),
        "files": args.count,
        "crop": args.crop,
        "bytes_in": bytes_in,
        "model": args.model,
        "effort": args.effort,
        "cpu": cpu_name(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
        "repeats": args.repeats,
        "load_average_1min": loads,
        "same_bytes": len(digests) == 1,
        "settings": rows,
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Whole trees: {report['files']} files, local workers and Ray",
        "",
        f"`{report['command']}`: {report['files']} PNG crops ({report['crop']}, "
        f"{report['bytes_in'] / 1e6:.1f} MB) of downscaled photos from `{report['photos']}`, model "
        f"`{report['model']}`, effort {report['effort']}, on {report['cores']} cores of {report['cpu']}. "
        "Each setting is the `ncodec compress -r` command in a fresh process; seconds include start-up "
        "(torch import, workers or the Ray instance starting, model loading), which the 2-file run "
        "measures alone; per-file rate = (files − 2) / (seconds − 2-file seconds). Fastest of "
        f"{report['repeats']} interleaved runs each; the machine was shared (1-minute load average "
        f"{min(report['load_average_1min']):.1f}–{max(report['load_average_1min']):.1f} at the starts).",
        "",
        "| flags | engine | seconds | files/s | MB/s in | 2-file run s | files/s after start-up | bpp |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["settings"].values():
        marginal = row["marginal_files_per_s"]
        lines.append(
            f"| `{row['flags']}` | {row['engine']} | {row['seconds']:.1f} | {row['files_per_s']:.2f} | "
            f"{row['mb_in_per_s']:.2f} | {row['fixed_seconds']:.1f} | "
            f"{'—' if marginal is None else f'{marginal:.2f}'} | {row['mean_bpp']:.4f} |"
        )
    same = "the same bytes" if report["same_bytes"] else "DIFFERENT bytes"
    lines += ["", f"Every run wrote {same} (one digest over all outputs)."]
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help="folder of photos to crop")
    p.add_argument("--count", type=int, default=200, help="files in the tree (default 200)")
    p.add_argument("--crop", default="384x256", help="crop WxH (default 384x256)")
    p.add_argument("--width", type=int, default=768, help="photos are scaled to this width first")
    p.add_argument("--model", default="msssim")
    p.add_argument("--effort", type=int, default=0)
    p.add_argument(
        "--repeats", type=int, default=1, help="runs of each setting, interleaved; the fastest counts"
    )
    p.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    p.add_argument(
        "--out", type=Path, default=RESULTS, help=f"results folder (default {display_path(RESULTS)})"
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ncodec-bulk-") as work:
        report = measure(args, Path(work))
    write_json(args.out / "bulk.json", report)
    (args.out / "bulk.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
