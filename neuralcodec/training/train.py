"""Train a variable-rate hyperprior on a CPU (bf16 + channels_last) or GPUs (torchrun), or with
``--architecture mean-scale-checkerboard`` the hyperprior and a checkerboard context jointly.

Resumes from ``runs/NAME/last.ckpt`` when present (same machine, later session), else
from exported weights (``--init``, e.g. the shipped model), so training carries on across
sessions without committing optimizer state. The learning rate warms up, stays flat, and
decays over the last part of the run, whichever of ``--steps`` or ``--minutes`` ends first.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gc
import json
import math
import os
import random
import shlex
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from neuralcodec.checkerboard_latents import CHECKERBOARD
from neuralcodec.codec import cpu_has_fast_bf16
from neuralcodec.codec import resolve_device as codec_resolve_device
from neuralcodec.errors import DeviceUnavailableError
from neuralcodec.models.hyperprior import ENCODER_PARAMETERS, HyperpriorConfig
from neuralcodec.models.interface import DEFAULT_ARCHITECTURE
from neuralcodec.training.data import DeviceCrops, InMemoryCrops, to_unit_float
from neuralcodec.training.ema import ParameterEMA
from neuralcodec.training.evaluate import evaluate, evaluate_files, jpeg_curve, load_eval_images
from neuralcodec.training.export import checkerboard_model, load_exported
from neuralcodec.training.levels import extend_state, extended_config, init_config
from neuralcodec.training.model import TrainableCheckerboard, TrainableHyperprior, context_widths
from neuralcodec.training.portable import is_portable, load_portable, save_portable
from neuralcodec.training.step import Optimisers, training_step

# λ of the lowest and highest quality level. The low ends sit below the published bmshj2018 ones
# because a briefly trained model spends more bits at a given λ; these reach ~0.1-0.15 bpp on Kodak.
DEFAULT_LAMBDAS = {"mse": (0.0009, 0.0932), "ms-ssim": (1.2, 220.0)}
DEFAULT_TRAIN_DIR = Path("../shared/datasets/train")
DEFAULT_EVAL_DIR = Path("../shared/datasets/kodak")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--name", required=True, help="run name; checkpoints go to runs/NAME")
    p.add_argument("--metric", choices=["mse", "ms-ssim"], default="ms-ssim")
    p.add_argument("--data", type=Path, default=DEFAULT_TRAIN_DIR, help="folder of training images")
    p.add_argument(
        "--eval-dir", type=Path, default=DEFAULT_EVAL_DIR, help="evaluation images (never trained on)"
    )
    p.add_argument("--eval-images", type=int, default=6)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument(
        "--eval-files",
        action="store_true",
        help="also measure real .nc files at every evaluation (the model exported in memory, coded "
        "and decoded by the runtime; about 1.5 s per image and level on a CPU): logged as "
        "eval_curve key 'files', headers and ANS words included, which the estimate leaves out",
    )
    p.add_argument(
        "--init",
        type=Path,
        help="exported weights (.pt) or a portable folder to start from when there is no checkpoint",
    )
    p.add_argument(
        "--architecture",
        choices=[DEFAULT_ARCHITECTURE, CHECKERBOARD],
        default=DEFAULT_ARCHITECTURE,
        help=f"{CHECKERBOARD}: the hyperprior plus a checkerboard context for the non-anchor latents, "
        "trained jointly (rate of the checkerboard's coding); an --init of hyperprior weights starts "
        "it with a zero context, which is that hyperprior exactly",
    )
    p.add_argument(
        "--init-context",
        type=Path,
        help=f"with --architecture {CHECKERBOARD}: the context to start from when there is no "
        "checkpoint (replacing any context --init holds): a tools/context_probe.py checkpoint or a "
        "saved state_dict of its context",
    )
    p.add_argument(
        "--portable-out",
        type=Path,
        help="also write fp32 parameters split into files < 16 MiB here at every checkpoint (GPU runs)",
    )
    p.add_argument(
        "--portable-fp16",
        action="store_true",
        help="--portable-out stores convolution kernels as fp16 (half the bytes: both models' "
        "state fits beside a pack in what a GPU machine carries); gains and entropy models stay fp32",
    )
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--minutes", type=float, default=math.inf, help="wall-clock budget of this run")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--lr-final", type=float, default=2e-5)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--decay-start", type=float, default=0.8, help="fraction of the run after which lr decays")
    p.add_argument("--N", type=int, default=128)
    p.add_argument("--M", type=int, default=192)
    p.add_argument("--levels", type=int, default=6)
    p.add_argument("--lambda-min", type=float, help="λ of quality 0 (default: per metric)")
    p.add_argument("--lambda-max", type=float, help="λ of quality 100 (default: per metric)")
    p.add_argument(
        "--grow-to-levels",
        type=int,
        default=0,
        metavar="L",
        help="start from --init's model grown to L gain levels: the new ones above its top at the same "
        "λ spacing, gains extrapolated (sizes and λ range come from --init, overriding --N/--M/--levels/"
        "--lambda-*); an --init that has L levels already is taken as it is, so every chunk can pass it",
    )
    p.add_argument("--device", default="auto", help="auto|cpu|cuda")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    p.add_argument(
        "--precision",
        choices=["auto", "bf16", "fp32"],
        default="auto",
        help="transforms' precision; auto: bf16 on CUDA and on CPUs with bf16 hardware (AMX, "
        "AVX512-BF16), float32 elsewhere (emulated bf16 was 10x slower than fp32 on an AVX2-only EPYC)",
    )
    p.add_argument("--no-bf16", action="store_true", help="same as --precision fp32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--ema-decay",
        type=float,
        default=0.0,
        help="0: off; else evaluate, send back (--portable-out) and export the moving average "
        "of the parameters with this decay (e.g. 0.999); the checkpoint keeps both",
    )
    p.add_argument(
        "--train-only",
        choices=["all", "encoder"],
        default="all",
        help="encoder: train g_a, h_a and the encoder gains only; the decoder side (g_s, h_s, "
        "inverse gains, z density) stays bit for bit, so the exported weights decode the files "
        "of the weights they started from",
    )
    p.add_argument(
        "--crops",
        choices=["host", "device"],
        default="host",
        help="host: crops cut from images in RAM and copied each step; device: the pack (or one crop "
        "per photo of a folder) held on the training device as uint8, crops and flips cut there",
    )
    p.add_argument(
        "--rescale",
        type=float,
        default=1.0,
        help="with --crops device: each batch is cut 1/s times larger and resized to --crop, s drawn "
        "from [RESCALE, 1] per batch (1: off)",
    )
    p.add_argument(
        "--compile",
        choices=["off", "default", "reduce-overhead", "max-autotune-no-cudagraphs"],
        default="off",
        help="torch.compile the model's forward (and, through autograd, its backward) in this mode; "
        "reduce-overhead replays CUDA graphs",
    )
    p.add_argument("--fused-adam", action="store_true", help="Adam's fused implementation (CUDA and CPU)")
    p.add_argument(
        "--also",
        default="",
        metavar="ARGS",
        help="train a second model in the same process and step loop, on the same data on the same "
        "device: this command line with ARGS appended (its own --name, --metric, --init, "
        "--portable-out ...), e.g. --also '--name gpu-msssim --metric ms-ssim'",
    )
    p.add_argument("--checkpoint-every", type=int, default=250)
    p.add_argument("--runs-dir", type=Path, default=Path("runs"))
    return p.parse_args(argv)


def resolve_device(name: str) -> torch.device:
    """The codec's device rule; an unavailable device ends training with a one-line message."""
    try:
        return codec_resolve_device(name)
    except DeviceUnavailableError as exc:
        raise SystemExit(str(exc)) from None


def learning_rate(args: argparse.Namespace, step: int, progress: float) -> float:
    """Linear warm-up, flat, then cosine decay to lr_final once progress > decay_start."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    if progress <= args.decay_start:
        return args.lr
    t = min(1.0, (progress - args.decay_start) / (1 - args.decay_start))
    return args.lr_final + 0.5 * (args.lr - args.lr_final) * (1 + math.cos(math.pi * t))


ENCODER_PREFIXES = tuple(f"transforms.{name}" for name in ENCODER_PARAMETERS)


def main_parameter_names(model: torch.nn.Module, train_only: str = "all") -> list[str]:
    """The parameters the rate–distortion loss trains (not the entropy bottleneck's quantiles);
    with ``train_only="encoder"`` only those in ``ENCODER_PREFIXES``."""
    names = [n for n, _ in model.named_parameters() if not n.endswith(".quantiles")]
    if train_only == "encoder":
        names = [n for n in names if n.startswith(ENCODER_PREFIXES)]
    return names


def split_parameters(model: torch.nn.Module, train_only: str = "all"):
    """(main, aux) parameter lists; with ``train_only="encoder"`` aux is empty and every other
    parameter is frozen (requires_grad off)."""
    main_names = set(main_parameter_names(model, train_only))
    main = [p for n, p in model.named_parameters() if n in main_names]
    if train_only == "encoder":
        for n, p in model.named_parameters():
            p.requires_grad_(n in main_names)
        return main, []
    aux = [p for n, p in model.named_parameters() if n not in main_names]
    return main, aux


def segment_record(args: argparse.Namespace, steps: int, seconds: float, world_size: int, device) -> dict:
    """One training run segment, for the model card (steps, CPU-hours, recipe)."""
    return {
        "run": args.name,
        "steps": steps,
        "wall_s": round(seconds, 1),
        "processes": world_size,
        "threads": args.threads or torch.get_num_threads(),
        "device": str(device),
        "precision": "bf16" if use_bf16(args, device) else "fp32",
        "batch_size": args.batch_size,
        "crop": args.crop,
        "lr": args.lr,
        "lr_final": args.lr_final,
        "warmup": args.warmup,
        "decay_start": args.decay_start,
        "lambda": list(lambda_range(args)),
        "levels": args.levels,
        "metric": args.metric,
        "data": str(args.data),
        "seed": args.seed,
        **({"ema_decay": args.ema_decay} if args.ema_decay else {}),
        **({"crops": args.crops} if args.crops != "host" else {}),
        **({"rescale": args.rescale} if args.rescale != 1.0 else {}),
        **({"compile": args.compile} if args.compile != "off" else {}),
        **({"fused_adam": True} if args.fused_adam else {}),
        **({"train_only": args.train_only} if args.train_only != "all" else {}),
        **({"architecture": args.architecture} if args.architecture != DEFAULT_ARCHITECTURE else {}),
    }


def lambda_range(args: argparse.Namespace) -> tuple[float, float]:
    """λ of the lowest and highest quality level: the metric's default unless given."""
    lmin, lmax = DEFAULT_LAMBDAS[args.metric]
    lmin = args.lambda_min if args.lambda_min is not None else lmin
    lmax = args.lambda_max if args.lambda_max is not None else lmax
    return lmin, lmax


def use_bf16(args: argparse.Namespace, device: torch.device) -> bool:
    """Whether the transforms train under bf16 autocast (see --precision)."""
    if args.no_bf16 or args.precision == "fp32":
        return False
    return args.precision == "bf16" or device.type == "cuda" or cpu_has_fast_bf16()


def build_model(
    args: argparse.Namespace, device: torch.device, hidden: tuple[int, int] | None = None
) -> TrainableHyperprior:
    """The model ``args`` describe; ``hidden``: a checkerboard context's widths (default: the probe's)."""
    lmin, lmax = lambda_range(args)
    config = HyperpriorConfig(
        N=args.N, M=args.M, levels=args.levels, lambda_min=lmin, lambda_max=lmax, metric=args.metric
    )
    if args.architecture == CHECKERBOARD:
        model = checkerboard_model(config, bf16=use_bf16(args, device), hidden=hidden)
    else:
        model = TrainableHyperprior(config, bf16=use_bf16(args, device))
    return model.to(device).to(memory_format=torch.channels_last)


def check_architecture(args: argparse.Namespace) -> None:
    """Refuse, with one line, options the chosen architecture cannot train with."""
    if args.architecture == CHECKERBOARD and args.train_only != "all":
        raise SystemExit(
            f"--train-only {args.train_only} keeps a hyperprior's decoder: "
            f"not with --architecture {CHECKERBOARD}"
        )
    if args.init_context and args.architecture != CHECKERBOARD:
        raise SystemExit(f"--init-context needs --architecture {CHECKERBOARD}")


def load_context(path: Path, M: int) -> dict[str, torch.Tensor]:
    """The context state dict in a tools/context_probe.py checkpoint (its "context") or saved alone;
    one line, and exit, when it is neither or reads other than ``M`` latent channels."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("context", state) if isinstance(state, dict) else None
    if not isinstance(state, dict) or context_widths(state, prefix="") is None:
        raise SystemExit(f"--init-context: {path} holds no checkerboard context")
    channels = int(state["context.weight"].shape[1])
    if channels != M:
        raise SystemExit(f"--init-context: {path} reads {channels} latent channels, the model has {M}")
    return state


def make_optimizer(params: list, lr: float, fused: bool) -> torch.optim.Adam:
    """Adam; ``fused`` runs each step as one fused kernel set (CUDA and CPU)."""
    return torch.optim.Adam(params, lr=lr, **({"fused": True} if fused else {}))


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Load a checkpoint's optimizer state but keep this optimizer's own fused/foreach choice:
    a checkpoint of an unfused run resumes fused, and back (same moments, same step counts)."""
    own = [{k: g[k] for k in ("fused", "foreach") if k in g} for g in optimizer.param_groups]
    groups = [{**saved, **mine} for saved, mine in zip(state["param_groups"], own)]
    optimizer.load_state_dict({**state, "param_groups": groups})


def make_crops(args: argparse.Namespace, device: torch.device, seed: int, progress: bool):
    """The training crops: cut on the host and copied per batch (``--crops host``), or held
    on the training device and cut there (``--crops device``)."""
    if args.crops == "device":
        return DeviceCrops(args.data, args.crop, device, seed=seed, progress=progress, rescale=args.rescale)
    if args.rescale != 1.0:
        raise SystemExit("--rescale needs --crops device")
    return InMemoryCrops(args.data, args.crop, seed=seed, progress=progress)


SHARED_OPTIONS = (  # what a second model (--also) must share with the first: one data stream, one loop
    "data", "crop", "batch_size", "crops", "rescale", "device", "steps", "minutes", "threads", "runs_dir",
)  # fmt: skip


def also_args(args: argparse.Namespace, argv: list[str] | None) -> argparse.Namespace | None:
    """The second model's options (``--also``): this command line with ``--also``'s words appended."""
    if not args.also:
        return None
    base = list(sys.argv[1:] if argv is None else argv)
    second = parse_args([*base, *shlex.split(args.also)])
    second.also = ""
    differ = [k for k in SHARED_OPTIONS if getattr(second, k) != getattr(args, k)]
    if differ:
        raise SystemExit(f"--also: the second model must share {', '.join('--' + k for k in differ)}")
    if second.name == args.name:
        raise SystemExit("--also: the second model needs a --name of its own")
    return second


def grow_args(args: argparse.Namespace) -> int:
    """--grow-to-levels L: set the sizes and λ range of --init's model grown to L levels
    (``neuralcodec.training.levels``; a resumed checkpoint has them too); returns how many
    levels the init lacks."""
    if not args.init:
        raise SystemExit("--grow-to-levels needs --init: the model whose levels it extends")
    base = init_config(args.init)
    if base.metric != args.metric:
        raise SystemExit(f"--grow-to-levels: --init is a {base.metric} model, not {args.metric}")
    extra = args.grow_to_levels - base.levels
    if extra < 0:
        raise SystemExit(
            f"--grow-to-levels: --init has {base.levels} levels, more than {args.grow_to_levels}"
        )
    grown = extended_config(base, extra)
    args.N, args.M, args.levels = grown.N, grown.M, grown.levels
    args.lambda_min, args.lambda_max = grown.lambda_min, grown.lambda_max
    return extra


def context_hidden(
    args: argparse.Namespace, ckpt_path: Path, ckpt: dict | None, context: dict | None
) -> tuple[int, int] | None:
    """A checkerboard context's widths: the checkpoint's ``ckpt`` (resumed), else the
    ``--init-context`` state's, else a portable ``--init``'s; None: the default. One line, and
    exit, when the checkpoint is of the other architecture."""
    if ckpt is not None:
        widths = context_widths(ckpt["model"])
        if (widths is not None) != (args.architecture == CHECKERBOARD):
            held = CHECKERBOARD if widths is not None else DEFAULT_ARCHITECTURE
            raise SystemExit(f"{ckpt_path} is a {held} run's: resume it with --architecture {held}")
        return widths
    if args.architecture != CHECKERBOARD:
        return None
    if context is not None:
        return context_widths(context, prefix="")
    if args.init and is_portable(args.init):
        return context_widths(load_portable(args.init)[0])
    return None


def load_parameters(model: TrainableHyperprior, state: dict[str, torch.Tensor]) -> None:
    """Load ``state`` into ``model``; a checkerboard model keeps its zero context when ``state`` is
    a hyperprior's. One line, and exit, when ``state`` holds a context the model has no place for."""
    if isinstance(model, TrainableCheckerboard) and context_widths(state) is None:
        model.load_state_dict({**model.state_dict(), **state})
        return
    if not isinstance(model, TrainableCheckerboard) and context_widths(state) is not None:
        raise SystemExit(f"--init holds a checkerboard context: train it with --architecture {CHECKERBOARD}")
    model.load_state_dict(state)


def load_init(model: TrainableHyperprior, path: Path, extra_levels: int = 0) -> list[dict]:
    """Fill ``model`` from exported weights or a portable folder; returns their training history.
    With ``extra_levels`` the init has that many levels fewer: its gains are extrapolated. A
    checkerboard model keeps its (zero) context where the init holds none."""
    if extra_levels:
        config = init_config(path)
        if isinstance(model, TrainableCheckerboard):
            base = checkerboard_model(config, bf16=False, hidden=context_widths(model.state_dict()))
        else:
            base = TrainableHyperprior(config, bf16=False)
        history = load_init(base, path)
        model.load_state_dict(extend_state(base.state_dict(), extra_levels))
        return history
    if is_portable(path):
        state, manifest = load_portable(path)
        load_parameters(model, state)
        return manifest["history"]
    try:
        return load_exported(model, path)
    except ValueError as exc:
        raise SystemExit(f"--init: {exc}") from None


class Trainer:
    """One model's training state: parameters, optimisers, EMA, schedule, log and checkpoints.

    ``main`` runs one (or, with ``--also``, two) of these in one step loop over one data stream.
    """

    def __init__(self, args: argparse.Namespace, device: torch.device, rank: int, world_size: int) -> None:
        self.args, self.device, self.rank, self.world_size = args, device, rank, world_size
        self.run_dir = args.runs_dir / args.name
        self.run_dir.mkdir(parents=True, exist_ok=True)
        check_architecture(args)
        extra = grow_args(args) if args.grow_to_levels else 0
        self.ckpt_path = self.run_dir / "last.ckpt"
        ckpt = (
            torch.load(self.ckpt_path, map_location=device, weights_only=False)
            if self.ckpt_path.exists()
            else None
        )
        context = load_context(args.init_context, args.M) if args.init_context and ckpt is None else None
        model = self.model = build_model(args, device, context_hidden(args, self.ckpt_path, ckpt, context))
        main_params, aux_params = split_parameters(model, args.train_only)
        self.optimizer = make_optimizer(main_params, args.lr, args.fused_adam)
        self.aux_optimizer = make_optimizer(aux_params, 1e-3, args.fused_adam) if aux_params else None
        self.opts = Optimisers(self.optimizer, self.aux_optimizer)
        self.step = 0
        self.history: list[dict] = []
        ema_state = None
        say = print if rank == 0 else (lambda *a: None)
        if ckpt is not None:
            model.load_state_dict(ckpt["model"])
            load_optimizer_state(self.optimizer, ckpt["optimizer"])
            if self.aux_optimizer is not None:
                load_optimizer_state(self.aux_optimizer, ckpt["aux_optimizer"])
            self.step = ckpt["step"]
            self.history = ckpt.get("history", [])
            ema_state = ckpt.get("ema")
            say(f"resumed {self.ckpt_path} at step {self.step}")
        elif args.init:
            self.history = load_init(model, args.init, extra)
            kind = "portable parameters" if is_portable(args.init) else "exported weights"
            grown = f", {extra} levels added above its top" if extra else ""
            say(f"initialised from {kind} {args.init} ({sum(s['steps'] for s in self.history)} steps{grown})")
        if context is not None:
            model.context.load_state_dict(context)
            say(f"context from {args.init_context}")
        names = main_parameter_names(model, args.train_only)
        self.ema = ParameterEMA(model, args.ema_decay, names) if args.ema_decay else None
        if self.ema is not None and ema_state is not None:
            self.ema.load_state_dict(ema_state)
        if rank == 0:
            (self.run_dir / "config.json").write_text(
                json.dumps({**vars(args), "config": model.transforms.config.to_dict()}, default=str, indent=1)
            )
        net = model
        if world_size > 1:
            net = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
        if args.compile != "off":
            net = torch.compile(net, mode=None if args.compile == "default" else args.compile)
        self.net = net
        self.first_step = self.step
        self.running: dict[str, torch.Tensor] = {}
        self.eval_images = (
            load_eval_images(args.eval_dir, args.eval_images) if rank == 0 and args.eval_dir.is_dir() else []
        )
        self.jpeg = jpeg_curve(self.eval_images) if self.eval_images else None
        self.calibration = None  # the crops that size the exact h_s of the in-memory export (--eval-files)
        self.eval_levels = [i * (args.levels - 1) / 3 for i in range(4)]
        log_path = self.run_dir / "log.csv"
        new_log = not log_path.exists()
        self.log_file = open(log_path, "a", newline="") if rank == 0 else None
        self.log = csv.writer(self.log_file) if self.log_file else None
        if self.log and new_log:
            self.log.writerow(LOG_COLUMNS)
        self.bar = tqdm(
            total=args.steps,
            initial=self.step,
            disable=rank != 0,
            unit="step",
            desc=args.name,
            dynamic_ncols=True,
            mininterval=1.0 if sys.stderr.isatty() else 60.0,  # a log file gets a line a minute
        )

    def progress(self, start: float) -> float:
        """Fraction of the run done: by steps or by wall-clock minutes, whichever is further."""
        args = self.args
        elapsed_min = (time.time() - start) / 60
        return max(
            (self.step - self.first_step) / max(1, args.steps - self.first_step), elapsed_min / args.minutes
        )

    def done(self, start: float) -> bool:
        return self.step >= self.args.steps or self.progress(start) >= 1.0

    def train_step(self, pixels: torch.Tensor, start: float) -> None:
        """One optimisation step on a uint8 batch (any device), then logging, evaluation, checkpoints."""
        args, device = self.args, self.device
        lr = learning_rate(args, self.step, self.progress(start))
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        x = to_unit_float(pixels.to(device, non_blocking=True)).contiguous(memory_format=torch.channels_last)
        level = torch.rand(x.shape[0], device=device) * (args.levels - 1)
        parts = training_step(
            self.net, self.model, x, level, args.metric, self.opts, self.ema, self.world_size
        )
        self.step += 1
        # Running means stay on the device: reading them every step would make the CPU wait for
        # the GPU and leave it idle while the next batch is cut.
        for k, v in parts.items():
            v = v.detach().float()
            self.running[k] = v if k not in self.running else self.running[k].mul_(0.98).add_(v, alpha=0.02)
        if self.rank == 0:
            self.report(lr, start)

    def report(self, lr: float, start: float) -> None:
        args, step, running = self.args, self.step, self.running
        self.bar.update(1)
        rate = (step - self.first_step) * args.batch_size * self.world_size / (time.time() - start)
        if step % 25 == 0:
            shown = {k: v.item() for k, v in running.items()}
            self.bar.set_postfix(
                loss=f"{shown['loss']:.3f}", bpp=f"{shown['bpp']:.3f}", lr=f"{lr:.1e}", ips=f"{rate:.1f}"
            )
        row_eval = ["", "", ""]
        if self.eval_images and step % args.eval_every == 0:
            row_eval = self.evaluate()
        if step % 50 == 0 or row_eval[0]:
            self.log.writerow(
                [
                    step,
                    f"{time.time() - start:.1f}",
                    f"{lr:.2e}",
                    f"{running['loss'].item():.5f}",
                    f"{running['bpp'].item():.5f}",
                    f"{running['distortion'].item():.5f}",
                    f"{rate:.2f}",
                    *row_eval,
                ]
            )
            self.log_file.flush()
        if step % args.checkpoint_every == 0:
            self.save(start)

    def evaluate(self) -> list[str]:
        """The learning-curve point: estimated (and with --eval-files real-file) BD-rates vs JPEG."""
        model, ema, device, step = self.model, self.ema, self.device, self.step
        averaged = ema.applied if ema is not None else contextlib.nullcontext
        with averaged():
            result = evaluate(model, self.eval_images, self.eval_levels, self.jpeg, device)
        logged = dict(result["curve"])
        if ema is not None:  # the raw parameters too, so the log shows what the average gains
            raw = evaluate(model, self.eval_images, self.eval_levels, self.jpeg, device)
            logged["raw"] = {"bd_psnr": raw["bd_psnr"], "bd_ms-ssim": raw["bd_ms-ssim"], **raw["curve"]}
        if self.calibration is not None:
            with averaged():
                files = evaluate_files(
                    model, self.eval_images, self.eval_levels, self.jpeg, self.calibration, device
                )
            logged["files"] = {
                "bd_psnr": files["bd_psnr"],
                "bd_ms-ssim": files["bd_ms-ssim"],
                **files["curve"],
            }
            tqdm.write(
                f"{self.args.name} step {step}: real files: BD-rate vs JPEG  PSNR {files['bd_psnr']:+.2f}%  "
                f"MS-SSIM {files['bd_ms-ssim']:+.2f}%"
            )
        tqdm.write(
            f"{self.args.name} step {step}: BD-rate vs JPEG  PSNR {result['bd_psnr']:+.1f}%  "
            f"MS-SSIM {result['bd_ms-ssim']:+.1f}%  bpp {[round(b, 3) for b in result['curve']['bpp']]}"
        )
        return [f"{result['bd_psnr']:.2f}", f"{result['bd_ms-ssim']:.2f}", json.dumps(logged)]

    def save(self, start: float) -> None:
        """Checkpoint (and portable folder, if asked) with this segment appended to the history."""
        args = self.args
        segment = segment_record(
            args, self.step - self.first_step, time.time() - start, self.world_size, self.device
        )
        history = [*self.history, segment]
        save_checkpoint(
            self.ckpt_path, self.model, self.optimizer, self.aux_optimizer, self.step, history, self.ema
        )
        save_portable_if_asked(args, self.model, self.step, history, self.ema)

    def finish(self, start: float) -> None:
        if self.rank == 0:
            self.save(start)
            self.bar.close()
            self.log_file.close()
            print(f"{self.args.name}: stopped at step {self.step}; checkpoint {self.ckpt_path}")


LOG_COLUMNS = [
    "step", "wall_s", "lr", "loss", "bpp", "distortion", "img_per_s",
    "eval_bd_psnr", "eval_bd_msssim", "eval_curve",
]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    second = also_args(args, argv)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    device = resolve_device(args.device)
    rank = 0
    if distributed:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        rank = dist.get_rank()
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
    world_size = dist.get_world_size() if distributed else 1
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop size: let cuDNN pick the fastest kernels
    torch.manual_seed(args.seed + rank)
    random.seed(args.seed + rank)

    trainers = [Trainer(a, device, rank, world_size) for a in (args, second) if a is not None]
    data = make_crops(args, device, args.seed + 1000 * rank + trainers[0].step, progress=rank == 0)
    for trainer in trainers:
        if trainer.args.eval_files:
            trainer.calibration = to_unit_float(data.calibration_uint8(16).cpu())

    start = time.time()
    while True:
        active = [t for t in trainers if not t.done(start)]
        if not active:
            break
        for trainer in active:  # with --also the two models take turns, each on its own batch
            trainer.train_step(data.batch_uint8(args.batch_size), start)
    for trainer in trainers:
        trainer.finish(start)
    if distributed:
        # Every rank waits for rank 0's checkpoint, and the DDP wrappers (and their gloo work) go
        # before the group does: a rank that tore the group down while the wrappers lived aborted
        # at exit now and then ("terminate called without an active exception").
        dist.barrier()
        trainers.clear()
        gc.collect()
        dist.destroy_process_group()


def save_portable_if_asked(
    args: argparse.Namespace, model, step: int, history: list[dict], ema: ParameterEMA | None = None
) -> None:
    """fp32 parameters in files under 16 MiB (--portable-out), what a GPU machine sends back.

    With an EMA these are the averaged parameters: what export uses and the next run starts from.
    """
    if args.portable_out:
        run = {**vars(args), "config": model.transforms.config.to_dict()}
        state = ema.averaged_state(model) if ema is not None else model.state_dict()
        save_portable(args.portable_out, state, step, history, run, half=args.portable_fp16)


def save_checkpoint(
    path: Path,
    model,
    optimizer,
    aux_optimizer,
    step: int,
    history: list[dict],
    ema: ParameterEMA | None = None,
) -> None:
    """Full training state, kept out of git (runs/ is ignored); written atomically.

    ``ema`` (the averaged parameters, by name) is stored beside the raw ones; export uses it.
    """
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "aux_optimizer": aux_optimizer.state_dict() if aux_optimizer is not None else None,
            "step": step,
            "history": history,
            **({"ema": ema.state_dict()} if ema is not None else {}),
        },
        tmp,
    )
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
