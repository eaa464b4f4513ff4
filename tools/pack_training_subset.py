"""Pack a compact training subset (random crops, JPEG 4:4:4 by default) for a remote GPU machine.

A remote GPU machine gets only the checkout (64 MiB in all, ``../shared`` does not travel), so
this writes a few tens of MB of training crops into ``runs/`` (ignored by git, never
committed) to be carried along. Pack with a new ``--seed`` for every GPU window (fresh crops of
the 1559 photos), at the crop size training uses (every stored pixel can be seen), with half the
crops from photos downscaled 2x (``--scales 1,0.5``):

    python tools/pack_training_subset.py --count 600 --size 256 --quality 93 --scales 1,0.5 \\
        --seed 31 --out runs/gpu-pack.npz

It prints the pack's size, KiB per crop and the PSNR of the stored crops against the crops
before storage (``--format webp`` / ``png`` compare other storage; lossy WebP is 4:2:0).
``tools/gpu_window.sh`` trains from it on the GPU machine (tools/README.md, "Next GPU run").
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from neuralcodec.training.data import PACK_FORMATS, write_pack
from neuralcodec.training.train import DEFAULT_TRAIN_DIR


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_TRAIN_DIR, help="folder of training photos")
    p.add_argument("--out", type=Path, default=Path("runs/gpu-pack.npz"))
    p.add_argument("--count", type=int, default=600, help="number of crops")
    p.add_argument("--size", type=int, default=256, help="crop side in pixels (training's --crop or more)")
    p.add_argument("--quality", type=int, default=93, help="quality of the stored crops (JPEG: 4:4:4)")
    p.add_argument("--format", choices=sorted(PACK_FORMATS), default="jpeg")
    p.add_argument(
        "--scales",
        default="1",
        help="comma-separated scales the photos are resized by before a crop (Lanczos)",
    )
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    scales = tuple(float(s) for s in args.scales.split(","))
    psnrs: list[float] = []
    size = write_pack(
        args.data,
        args.out,
        args.count,
        args.size,
        args.quality,
        args.seed,
        fmt=args.format,
        scales=scales,
        psnrs=psnrs,
    )
    finite = np.array([v for v in psnrs if np.isfinite(v)]) if psnrs else np.array([])
    stored = (
        f"PSNR of the stored crops median {np.median(finite):.1f} dB, min {finite.min():.1f}"
        if finite.size
        else "lossless"
    )
    print(
        f"wrote {args.out}: {args.count} crops of {args.size}² ({args.format} {args.quality}, "
        f"scales {args.scales}), {size / 2**20:.1f} MiB, {size / args.count / 1024:.1f} KiB per crop; "
        f"{stored}"
    )


if __name__ == "__main__":
    main()
