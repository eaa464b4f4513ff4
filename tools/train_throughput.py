"""Measure training throughput (steps/s, megapixels/s) of candidate setups on this machine.

Each setup runs a few warm-up steps, then times full training steps (forward, loss, backward,
both optimizer steps: ``neuralcodec.training.step``, the step ``tools/train.py`` runs) on
random crops held in memory.
Machines differ from day to day: always compare setups measured in one invocation, and record
the CPU (printed first) beside the numbers.

    python tools/train_throughput.py --threads 1 --setups bf16:192:8 fp32:192:8 bf16:128:16
"""

from __future__ import annotations

import argparse
import time

import torch

from neuralcodec.machine import cpu_name
from neuralcodec.models.hyperprior import HyperpriorConfig
from neuralcodec.training.model import TrainableHyperprior
from neuralcodec.training.step import Optimisers, training_step
from neuralcodec.training.train import split_parameters


def time_setup(
    precision: str,
    crop: int,
    batch: int,
    steps: int,
    warmup: int,
    metric: str,
    device: str,
    compile_model: bool = False,
) -> dict:
    """Steps/s and megapixels/s of one (precision, crop, batch[, compile]) setup.

    With ``compile_model`` the forward pass goes through ``torch.compile`` (default mode); the
    warm-up steps absorb the compilation, whose time is reported apart.
    """
    torch.manual_seed(0)
    config = HyperpriorConfig(metric=metric, lambda_min=0.0009, lambda_max=0.0932)
    model = TrainableHyperprior(config, bf16=precision == "bf16").to(device)
    model = model.to(memory_format=torch.channels_last)
    main_params, aux_params = split_parameters(model)
    optimizer = torch.optim.Adam(main_params, lr=1e-4)
    aux_optimizer = torch.optim.Adam(aux_params, lr=1e-3)
    x = torch.rand(batch, 3, crop, crop, device=device).contiguous(memory_format=torch.channels_last)
    forward = torch.compile(model) if compile_model else model

    opts = Optimisers(optimizer, aux_optimizer)

    def step() -> None:
        level = torch.rand(batch, device=device) * (config.levels - 1)
        training_step(forward, model, x, level, metric, opts)

    warm_start = time.perf_counter()
    for _ in range(warmup):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    warmup_s = time.perf_counter() - warm_start
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / steps
    return {
        "setup": f"{precision} {batch}x{crop}²" + (" compiled" if compile_model else ""),
        "warmup_s": warmup_s,
        "s_per_step": seconds,
        "steps_per_s": 1 / seconds,
        "mpix_per_s": batch * crop * crop / seconds / 1e6,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--setups",
        nargs="+",
        default=["bf16:192:8", "fp32:192:8"],
        help="precision:crop:batch, or precision:crop:batch:compile for torch.compile",
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--metric", choices=["mse", "ms-ssim"], default="mse")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cpu = f"{cpu_name()}, {args.threads} thread(s)"
    where = torch.cuda.get_device_name() if args.device == "cuda" else cpu
    print(f"# training throughput on {where}, torch {torch.__version__}, metric {args.metric}")
    print("| setup | s/step | steps/s | Mpx/s | warm-up s |")
    print("|---|---|---|---|---|")
    for spec in args.setups:
        precision, crop, batch, *extra = spec.split(":")
        if extra not in ([], ["compile"]):
            p.error(f"bad setup {spec!r}: precision:crop:batch[:compile]")
        r = time_setup(
            precision, int(crop), int(batch), args.steps, args.warmup, args.metric, args.device, bool(extra)
        )
        print(
            f"| {r['setup']} | {r['s_per_step']:.3f} | {r['steps_per_s']:.2f} | {r['mpix_per_s']:.3f} "
            f"| {r['warmup_s']:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
