"""Pack a compact training subset (random crops as JPEG) for a remote GPU machine.

A remote GPU machine gets only the checkout (64 MiB in all, ``../shared`` does not travel), so
this writes a few tens of MB of training crops into ``runs/`` (ignored by git, never
committed) to be carried along:

    python tools/pack_training_subset.py --count 800 --size 384 --out runs/gpu-pack.npz

Then on the GPU machine (``carry: ["runs/gpu-pack.npz"]``), in chunks of under 10 minutes
that resume from the checkpoint the previous chunk left in runs/ (kept while the machine is
warm) or from the returned portable folder:

    python tools/train.py --name gpu-mse --metric mse --data runs/gpu-pack.npz --device cuda \\
        --init neuralcodec/weights/mse.pt --minutes 8 --batch-size 16 --crop 256 \\
        --portable-out $OUT/mse
    python tools/export.py <returned folder>/mse --name mse     # back on this machine
"""

from __future__ import annotations

import argparse
from pathlib import Path

from neuralcodec.training.data import write_pack
from neuralcodec.training.train import DEFAULT_TRAIN_DIR


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_TRAIN_DIR, help="folder of training photos")
    p.add_argument("--out", type=Path, default=Path("runs/gpu-pack.npz"))
    p.add_argument("--count", type=int, default=800, help="number of crops")
    p.add_argument("--size", type=int, default=384, help="crop side in pixels")
    p.add_argument("--quality", type=int, default=93, help="JPEG quality of the stored crops (4:4:4)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    size = write_pack(args.data, args.out, args.count, args.size, args.quality, args.seed)
    print(f"wrote {args.out}: {args.count} crops of {args.size}², {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
