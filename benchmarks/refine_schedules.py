"""Refinement schedules compared: the mean change of the model's objective J per variant.

Choosing a schedule is fitting, so this runs on crops of *training* photos (never Kodak or
the held-out set, which judge the result): ``--count`` images drawn with ``--seed`` from
``--images`` among those whose shorter side is at least twice ``--crop``, centre-cropped.
Every crop is encoded at each quality with each variant (a JSON object of
``neuralcodec.refine.Schedule`` fields), and J = λ·D + bpp is read from refinement's own
scoring (hard rounding, exact means, table bits; the best candidate, effort 0 included, so
never above 0). Example, the measurement behind ``refine.SCHEDULES``:

    python -m benchmarks.refine_schedules --model mse --crop 128 --count 3 \\
        --variant '{"iterations": 400, "lr": 0.015}' \\
        --variant '{"iterations": 400, "lr": 0.015, "tau_start": 1.0}'
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks.datasets import REPO_ROOT, load_rgb
from benchmarks.effort import centre_crop
from neuralcodec import codec, refine
from neuralcodec.machine import cpu_name
from neuralcodec.zoo import load_model

TRAINING_PHOTOS = REPO_ROOT.parent / "shared" / "datasets" / "train"


def pick_images(folder: Path, count: int, seed: int, min_side: int) -> list[Path]:
    """``count`` images of ``folder`` with both sides ≥ ``min_side``, in a seeded random order.

    Draws 40 candidates (or all, if fewer) and keeps the first ``count`` large enough.
    """
    files = sorted(p for p in folder.iterdir() if p.is_file())
    random.seed(seed)
    candidates = random.sample(files, min(40, len(files)))
    return [p for p in candidates if min(_size(p)) >= min_side][:count]


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.size


def j_change(model, img: np.ndarray, quality: float, schedule: refine.Schedule, device: str) -> float:
    """Relative change of J from effort 0 to the refined result, by refinement's own scoring."""
    x = img[None]
    with torch.inference_mode():
        y, z = codec.analyse(model, x, quality, device)
    refine.TRACE = []
    try:
        refine.refine_latents(model, x, y, z, quality, 9, device, schedule=schedule)
        trace = refine.TRACE
    finally:
        refine.TRACE = None
    return min(t[1] for t in trace) / trace[0][1] - 1.0


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="mse")
    p.add_argument("--images", type=Path, default=TRAINING_PHOTOS, help="training photos")
    p.add_argument("--count", type=int, default=3)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--qualities", default="20,40,60,80")
    p.add_argument("--variant", action="append", required=True, help="JSON Schedule fields")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, help="also write the results here (JSON)")
    args = p.parse_args(argv)
    if not args.images.is_dir():
        p.error(f"no training photos at {args.images} (--images)")
    try:
        variants = [refine.Schedule(**json.loads(v)) for v in args.variant]
    except (json.JSONDecodeError, TypeError, ValueError) as e:
        p.error(f"--variant: {e}")
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(args.model)
    paths = pick_images(args.images, args.count, args.seed, 2 * args.crop)
    crops = [centre_crop(load_rgb(f), args.crop) for f in paths]
    qualities = [float(q) for q in args.qualities.split(",")]
    results = {
        "model": args.model,
        "images": [f.name for f in paths],
        "crop": args.crop,
        "qualities": qualities,
        "cpu": cpu_name(),
        "threads": torch.get_num_threads(),
        "device": args.device,
        "variants": [],
    }
    print(f"{args.model}: {len(crops)} crops of {args.crop}² ({', '.join(results['images'])})", flush=True)
    for schedule in variants:
        start = time.perf_counter()
        changes = [j_change(model, img, q, schedule, args.device) for img in crops for q in qualities]
        row = {
            "schedule": schedule.__dict__,
            "j_change": float(np.mean(changes)),
            "seconds": time.perf_counter() - start,
        }
        results["variants"].append(row)
        print(f"{schedule}: J {100 * row['j_change']:+.2f} % ({row['seconds']:.0f} s)", flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
