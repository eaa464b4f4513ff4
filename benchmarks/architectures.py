"""Two models side by side on the same images: file bytes, encode seconds (torch, effort 0) and
decode seconds with each backend (numpy, torch), in one process, alternating the models image
by image so that both see the same machine.

    python -m benchmarks.architectures --models mse,runs/context-probe-mse/mse-checkerboard.pt

Each time is the best of ``--repeats`` runs after a warm-up; the ratios (second model over the
first) are what to compare across machines. Writes architectures.json and architectures.md
under ``--out``.
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


def best_time(run, repeats: int) -> float:
    """Seconds of the fastest of ``repeats`` calls (after one untimed warm-up call)."""
    run()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def measure(model, rgb, quality: float, repeats: int) -> dict[str, float]:
    data = neuralcodec.compress(rgb, quality, model, "cpu", effort=0)
    return {
        "bytes": len(data),
        "encode": best_time(lambda: neuralcodec.compress(rgb, quality, model, "cpu", effort=0), repeats),
        "decode_numpy": best_time(
            lambda: neuralcodec.decompress(data, model=model, backend="numpy"), repeats
        ),
        "decode_torch": best_time(
            lambda: neuralcodec.decompress(data, "cpu", model, backend="torch"), repeats
        ),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    names = args.models.split(",")
    models = [load_model(Path(n) if n.endswith(".pt") else n) for n in names]
    images = list_images(resolve_dataset(args.dataset), args.limit or None)
    totals = {n: dict.fromkeys(("bytes", *STEPS), 0.0) for n in names}
    for path in images:
        rgb = load_rgb(path)
        for name, model in zip(names, models):
            for key, value in measure(model, rgb, args.quality, args.repeats).items():
                totals[name][key] += value
        print(path.name, {n: round(t["decode_numpy"], 3) for n, t in totals.items()}, flush=True)
    first, second = names[0], names[-1]
    return {
        "command": f"python -m benchmarks.architectures {args.raw}",
        "cpu": cpu_description(),
        "images": len(images),
        "quality": args.quality,
        "architectures": {n: m.architecture for n, m in zip(names, models)},
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
