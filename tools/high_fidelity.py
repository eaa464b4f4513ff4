"""What a shipped model gives above its top level when its gains are extrapolated (no training).

The gain tables get ``--extra`` more levels (``neuralcodec.training.levels``: the λ spacing and
the top segment's log-gain slope continued); each image is compressed and decoded by the runtime
at each ``--levels`` entry (effort 0, float32 transforms unless NEURALCODEC_TRANSFORMS says
otherwise) and the real files' bpp, PSNR and MS-SSIM are averaged:

    python tools/high_fidelity.py --model mse --images 4 --extra 2 --levels 4,5,5.5,6,6.5,7

Level 5 is today's quality 100 (6 levels). Above it the numbers say how far the trained
transforms reach without retraining: the starting point of ``tools/train.py --grow-to-levels``.
``--model`` also takes a weights file (e.g. one trained with more levels; ``--extra 0``).
"""

from __future__ import annotations

import argparse
import dataclasses
import threading
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import neuralcodec
from neuralcodec.metrics import psnr
from neuralcodec.training.levels import extend_rows, extended_config
from neuralcodec.zoo import load_model


def extended_model(name: str, extra: int):
    """A private copy of shipped model ``name`` with ``extra`` extrapolated gain levels."""
    base = load_model(name)
    config = extended_config(base.config, extra)
    transforms = type(base.transforms)(config)
    transforms.load_state_dict(
        {
            **base.transforms.state_dict(),
            **{
                k: extend_rows(getattr(base.transforms, k).detach(), extra)
                for k in ("log_gain", "log_inverse_gain")
            },
        }
    )
    transforms.eval()
    return dataclasses.replace(
        base, config=config, transforms=transforms, _on_device={}, _lock=threading.Lock()
    )


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    from pytorch_msssim import ms_ssim as msssim

    t = lambda x: torch.from_numpy(np.array(x, dtype=np.float64)).permute(2, 0, 1)[None]  # noqa: E731
    return float(msssim(t(a), t(b), data_range=255.0))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="mse")
    p.add_argument("--dataset", type=Path, default=Path("../shared/datasets/kodak"))
    p.add_argument("--images", type=int, default=4, help="the first N images (sorted by name)")
    p.add_argument("--extra", type=int, default=2, help="levels added above the top")
    p.add_argument(
        "--levels",
        default="4,5,5.5,6,6.5,7",
        help="gain levels to measure (real numbers); 'top': the top two",
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="where the transforms run (cpu, cuda)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = extended_model(args.model, args.extra)
    lambdas = model.config.lambdas().numpy()
    paths = sorted(args.dataset.glob("*.png"))[: args.images]
    images = [np.asarray(Image.open(f).convert("RGB")) for f in paths]
    top = model.config.levels - 1
    levels = [top - 1.0, float(top)] if args.levels == "top" else [float(v) for v in args.levels.split(",")]
    print(
        f"# {args.model}: gains extrapolated by {args.extra} levels, {len(images)} images of "
        f"{args.dataset}, effort 0, {args.device}; quality 100 is level {top}"
    )
    print("| level | λ | bpp | PSNR dB | MS-SSIM |")
    print("|---|---|---|---|---|")
    for level in levels:
        quality = 100.0 * level / top  # quality_to_level of this extended model: linear over its levels
        bpp, psnrs, ms = [], [], []
        for img in images:
            data = neuralcodec.compress(img, quality, model, device=args.device, effort=0)
            out = np.asarray(neuralcodec.decompress(data, model=model, device=args.device).convert("RGB"))
            bpp.append(8 * len(data) / (img.shape[0] * img.shape[1]))
            psnrs.append(psnr(img, out))
            ms.append(ms_ssim(img, out))
        lam = float(np.exp(np.interp(level, np.arange(len(lambdas)), np.log(lambdas))))
        print(
            f"| {level:g} | {lam:.4g} | {np.mean(bpp):.3f} | {np.mean(psnrs):.2f} | {np.mean(ms):.5f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
