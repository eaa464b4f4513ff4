"""Two models side by side on the same images: file bytes, encode seconds (torch, effort 0) and
decode seconds with each backend (numpy, torch), in one process, alternating the models image
by image so that both see the same machine.

    python -m benchmarks.architectures --models mse,runs/context-probe-mse/mse-checkerboard.pt

Each time is the best of ``--repeats`` passes over the images after a warm-up pass; the ratios
(second model over the first) are what to compare across machines. Writes architectures.json
and architectures.md under ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import neuralcodec
from benchmarks.curves import write_json
from benchmarks.datasets import REPO_ROOT, list_images, load_rgb, resolve_dataset
from neuralcodec.machine import cpu_description
from neuralcodec.zoo import load_model

STEPS = ("encode", "decode_numpy", "decode_torch")


def timed(function, *args, **kwargs) -> float:
    """Seconds of one call."""
    start = time.perf_counter()
    function(*args, **kwargs)
    return time.perf_counter() - start


def passes(models: list, images: list, quality: float, repeats: int) -> dict:
    """Per model, per image: the file's bytes and the best encode and decode seconds.

    Each pass codes every image once with each model, alternating the models image by image;
    consecutive calls never repeat an image, so no cache of the last image's results (the
    exact h_s keeps one) can make a repeat faster. The first pass warms up and is not timed.
    """
    files = {
        (m, i): neuralcodec.compress(rgb, quality, m, "cpu", effort=0) for m in models for i, rgb in images
    }
    best: dict = {(m, i, step): float("inf") for m in models for i, _ in images for step in STEPS}
    for r in range(repeats + 1):
        for i, rgb in images:
            for m in models:
                data = files[(m, i)]
                seconds = {
                    "encode": timed(neuralcodec.compress, rgb, quality, m, "cpu", effort=0),
                    "decode_numpy": timed(neuralcodec.decompress, data, model=m, backend="numpy"),
                    "decode_torch": timed(neuralcodec.decompress, data, "cpu", m, backend="torch"),
                }
                if r:
                    for step, value in seconds.items():
                        best[(m, i, step)] = min(best[(m, i, step)], value)
        print(f"pass {r} of {repeats}", flush=True)
    return {
        m: {"bytes": sum(len(files[(m, i)]) for i, _ in images)}
        | {step: sum(best[(m, i, step)] for i, _ in images) for step in STEPS}
        for m in models
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    names = args.models.split(",")
    models = [Path(n) if n.endswith(".pt") else n for n in names]
    architectures = {n: load_model(m).architecture for n, m in zip(names, models)}
    paths = list_images(resolve_dataset(args.dataset), args.limit or None)
    images = [(p.name, load_rgb(p)) for p in paths]
    totals = dict(zip(names, passes(models, images, args.quality, args.repeats).values()))
    first, second = names[0], names[-1]
    return {
        "command": f"python -m benchmarks.architectures {args.raw}",
        "cpu": cpu_description(),
        "images": len(images),
        "quality": args.quality,
        "architectures": architectures,
        "per_image": {n: {k: v / len(images) for k, v in t.items()} for n, t in totals.items()},
        "ratio": {k: totals[second][k] / totals[first][k] for k in ("bytes", *STEPS)},
    }


def markdown(report: dict[str, Any]) -> str:
    rows = [
        f"Command: `{report['command']}`; {report['cpu']}; {report['images']} images, quality "
        f"{report['quality']:g}, effort 0; best of the repeats, per image.",
        "",
        "| model | architecture | bytes | encode s | decode s (numpy) | decode s (torch) |",
        "|---|---|---|---|---|---|",
    ]
    for name, t in report["per_image"].items():
        rows.append(
            f"| {name} | {report['architectures'][name]} | {t['bytes']:.0f} | {t['encode']:.3f} | "
            f"{t['decode_numpy']:.3f} | {t['decode_torch']:.3f} |"
        )
    r = report["ratio"]
    rows.append(
        f"| ratio (last / first) | | {r['bytes']:.4f} | {r['encode']:.2f}× | {r['decode_numpy']:.2f}× | "
        f"{r['decode_torch']:.2f}× |"
    )
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.architectures", description=__doc__.splitlines()[0]
    )
    p.add_argument("--models", required=True, help="two comma-separated model names or weights files")
    p.add_argument("--dataset", default="kodak")
    p.add_argument("--limit", type=int, default=0, help="first N images (0: all)")
    p.add_argument("--quality", type=float, default=75.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "kodak")
    args = p.parse_args(argv)
    args.raw = " ".join(sys.argv[1:] if argv is None else argv)
    report = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "architectures.json", report)
    (args.out / "architectures.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
