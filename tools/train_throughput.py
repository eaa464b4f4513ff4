"""Measure training throughput (steps/s, megapixels/s per model) of candidate setups on this machine.

Each setup runs a few warm-up steps, then times full training steps (forward, loss, backward,
both optimizer steps: ``neuralcodec.training.step``, the step ``tools/train.py`` runs), the
batch included where the setup cuts one.
Machines differ from day to day: always compare setups measured in one invocation, and record
the CPU or GPU (printed first) beside the numbers.

A setup is ``precision:crop:batch`` followed by any of these options (``:``-separated), each a
``tools/train.py`` flag:

- ``host``: batches cut from the pack in host RAM and copied to the device each step
  (``--crops host``, what training did before); ``device``: the pack held on the device as
  uint8 and cut there (``--crops device``); neither: one fixed random batch (no data cost).
- ``compile``: ``torch.compile`` of the forward (``--compile default``); ``cudagraphs``: the same
  in mode ``reduce-overhead`` (CUDA graphs).
- ``fused``: Adam's fused implementation (``--fused-adam``).
- ``pair``: two models (mse and ms-ssim) taking turns in one process (``--also``); Mpx/s is
  per model, the total is both.

    python tools/train_throughput.py --threads 1 --setups fp32:128:8:host fp32:128:8:device
    python tools/train_throughput.py --device cuda --threads 4 --steps 20 --warmup 5 \\
        --setups bf16:256:16:host bf16:256:16:device bf16:256:16:device:fused:compile

``--data`` is the pack (or folder) the ``host``/``device`` setups cut from; without it a pack of
random crops is made in a temporary folder.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from neuralcodec.machine import cpu_name
from neuralcodec.models.hyperprior import HyperpriorConfig
from neuralcodec.training.data import DeviceCrops, InMemoryCrops, to_unit_float
from neuralcodec.training.model import TrainableHyperprior
from neuralcodec.training.step import Optimisers, training_step
from neuralcodec.training.train import DEFAULT_LAMBDAS, make_optimizer, split_parameters

OPTIONS = {"host", "device", "compile", "cudagraphs", "fused", "pair"}


@dataclass
class Setup:
    precision: str
    crop: int
    batch: int
    options: frozenset[str]

    @classmethod
    def parse(cls, spec: str) -> Setup:
        precision, crop, batch, *options = spec.split(":")
        unknown = set(options) - OPTIONS
        if precision not in ("bf16", "fp32") or unknown or {"host", "device"} <= set(options):
            raise ValueError(f"bad setup {spec!r}: precision:crop:batch[:{':'.join(sorted(OPTIONS))}]")
        return cls(precision, int(crop), int(batch), frozenset(options))

    def __str__(self) -> str:
        return f"{self.precision} {self.batch}x{self.crop}²" + "".join(f" {o}" for o in sorted(self.options))


def make_stepper(setup: Setup, metric: str, device: str):
    """One model's training step on a float batch, as tools/train.py builds it for ``setup``."""
    config = HyperpriorConfig(
        metric=metric, lambda_min=DEFAULT_LAMBDAS[metric][0], lambda_max=DEFAULT_LAMBDAS[metric][1]
    )
    model = TrainableHyperprior(config, bf16=setup.precision == "bf16").to(device)
    model = model.to(memory_format=torch.channels_last)
    main_params, aux_params = split_parameters(model)
    fused = "fused" in setup.options
    opts = Optimisers(make_optimizer(main_params, 1e-4, fused), make_optimizer(aux_params, 1e-3, fused))
    net = model
    if "compile" in setup.options:
        net = torch.compile(model)
    elif "cudagraphs" in setup.options:
        net = torch.compile(model, mode="reduce-overhead")

    def step(x: torch.Tensor) -> None:
        level = torch.rand(x.shape[0], device=device) * (config.levels - 1)
        training_step(net, model, x, level, metric, opts)

    return step


def make_batches(setup: Setup, data: Path, device: str):
    """A function returning the next float batch on ``device`` (channels-last) for ``setup``."""
    if "host" in setup.options:
        crops = InMemoryCrops(data, setup.crop, seed=0, progress=False)
        draw = lambda: crops.batch_uint8(setup.batch).to(device, non_blocking=True)  # noqa: E731
    elif "device" in setup.options:
        crops = DeviceCrops(data, setup.crop, device, seed=0, progress=False)
        draw = lambda: crops.batch_uint8(setup.batch)  # noqa: E731
    else:
        fixed = torch.randint(
            0, 256, (setup.batch, 3, setup.crop, setup.crop), dtype=torch.uint8, device=device
        )
        draw = lambda: fixed  # noqa: E731
    return lambda: to_unit_float(draw()).contiguous(memory_format=torch.channels_last)


def time_setup(
    setup: Setup, steps: int, warmup: int, metric: str, device: str, data: Path, data_only: bool = False
) -> dict:
    """Steps/s and megapixels/s per model of one setup (warm-up, compilation included, apart);
    ``data_only``: the batches alone (cut, copied, scaled to float), no model."""
    torch.manual_seed(0)
    metrics = [metric, "ms-ssim" if metric == "mse" else "mse"] if "pair" in setup.options else [metric]
    batches = make_batches(setup, data, device)
    steppers = (
        [lambda x: None] * len(metrics) if data_only else [make_stepper(setup, m, device) for m in metrics]
    )

    def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            for step in steppers:
                step(batches())
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    warmup_s = run(warmup)
    seconds = run(steps) / steps  # one step of every model
    mpix = setup.batch * setup.crop**2 / seconds / 1e6
    return {
        "setup": str(setup),
        "warmup_s": warmup_s,
        "s_per_step": seconds,
        "steps_per_s": 1 / seconds,
        "mpix_per_s": mpix,
        "total_mpix_per_s": mpix * len(steppers),
    }


def random_pack(folder: Path, side: int, count: int = 48) -> Path:
    """A pack of ``count`` random-noise crops of ``side``² (throughput does not depend on content)."""
    from PIL import Image

    from neuralcodec.training.data import write_pack

    photos = folder / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (side + 32, side + 48, 3), dtype=np.uint8)).save(
            photos / f"{i}.png"
        )
    pack = folder / "pack.npz"
    write_pack(photos, pack, count, side, quality=90, progress=False)
    return pack


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--setups", nargs="+", default=["bf16:192:8", "fp32:192:8"], help="see above")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--metric", choices=["mse", "ms-ssim"], default="mse")
    p.add_argument("--device", default="cpu")
    p.add_argument("--data", type=Path, help="pack (.npz) or folder for the host/device setups")
    p.add_argument(
        "--data-only", action="store_true", help="time the batches alone (no model): the data path"
    )
    args = p.parse_args(argv)
    try:
        setups = [Setup.parse(s) for s in args.setups]
    except ValueError as exc:
        p.error(str(exc))
    if not args.data_only and any("pair" in s.options and s.crop <= 160 for s in setups):
        p.error("pair trains an ms-ssim model, whose loss needs crops above 160 px")
    torch.set_num_threads(args.threads)
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True  # as tools/train.py
    cpu = f"{cpu_name()}, {args.threads} thread(s)"
    where = torch.cuda.get_device_name() if args.device == "cuda" else cpu
    what = "data path alone" if args.data_only else f"training throughput, metric {args.metric}"
    print(f"# {what} on {where}, torch {torch.__version__}")
    print("| setup | s/step | steps/s | Mpx/s per model | Mpx/s in all | warm-up s |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None and any(s.options & {"host", "device"} for s in setups):
            data = random_pack(Path(tmp), max(s.crop for s in setups) + 32)
        for setup in setups:
            r = time_setup(setup, args.steps, args.warmup, args.metric, args.device, data, args.data_only)
            print(
                f"| {r['setup']} | {r['s_per_step']:.3f} | {r['steps_per_s']:.2f} | {r['mpix_per_s']:.3f} "
                f"| {r['total_mpix_per_s']:.3f} | {r['warmup_s']:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
