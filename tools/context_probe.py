"""Probe a checkerboard context model (neuralcodec.training.checkerboard) on frozen shipped weights.

Only the context parts train, on the rate of the non-anchor latents (rate-only loss: with the
transforms frozen, distortion changes only through the non-anchors' rounding offsets, which the
evaluation reports). Three modes:

- ``train`` (default): resumable, time-budgeted training on 256² crops of the training photos;
  every ``--eval-every`` steps the estimated bits (−log2 likelihoods of ŷ and ẑ) and distortion of
  the first ``--eval-images`` Kodak images at 4 levels, for the hyperprior (step 0) and the
  context model, logged as JSON lines (stdout and ``runs/context-probe-METRIC/eval.jsonl``).
- ``final``: the same measurement on all Kodak images and ``--heldout-images`` held-out photos,
  with the BD-rate of context vs hyperprior, written to
  ``runs/context-probe-METRIC/final-stepSTEP.json`` (``--checkpoint`` picks another checkpoint).
- ``plot``: the learning curve (bits saved and BD-rate vs step) of the given metrics' runs.
- ``export``: the checkpoint's context in the codec's integer form, calibrated on
  ``--calibration-images`` training photos, written with the shipped weights as a
  ``mean-scale-checkerboard`` weights file (``--out``) that ``ncodec compress --model`` takes.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from neuralcodec.bdrate import bd_rate
from neuralcodec.checkerboard_latents import CHECKERBOARD
from neuralcodec.codec import cpu_has_fast_bf16, padded_size
from neuralcodec.metrics import msssim_db
from neuralcodec.models.hyperprior import HyperpriorConfig
from neuralcodec.training.checkerboard import CheckerboardProbe, ProbeTrainer
from neuralcodec.training.context_export import checkerboard_weights, quantize_context
from neuralcodec.training.data import InMemoryCrops, list_images, to_unit_float
from neuralcodec.training.evaluate import load_eval_images, psnr
from neuralcodec.training.export import load_exported, save_weights
from neuralcodec.training.model import TrainableHyperprior
from neuralcodec.weights_file import decoder_digest

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = {"mse": REPO / "neuralcodec/weights/mse.pt", "msssim": REPO / "neuralcodec/weights/msssim.pt"}
DEFAULT_DATA = Path("../shared/datasets/train")
DEFAULT_KODAK = Path("../shared/datasets/kodak")
DEFAULT_HELDOUT = Path("../shared/datasets/qoi_photo_wikipedia")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("mode", nargs="?", choices=["train", "final", "plot", "export"], default="train")
    p.add_argument("--metric", choices=["mse", "msssim"], default="mse", help="which shipped model")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="training photos (never Kodak)")
    p.add_argument("--kodak", type=Path, default=DEFAULT_KODAK)
    p.add_argument("--heldout", type=Path, default=DEFAULT_HELDOUT)
    p.add_argument("--minutes", type=float, default=math.inf, help="wall-clock budget of this run")
    p.add_argument("--steps", type=int, default=1_000_000, help="stop at this step (counted over resumes)")
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--eval-images", type=int, default=6, help="first N Kodak images (train mode)")
    p.add_argument("--heldout-images", type=int, default=20, help="final mode")
    p.add_argument("--levels", default="0,1.6667,3.3333,5", help="quality levels evaluated")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--hidden", default="", help="entropy-parameters widths 'H1,H2' (default 10M/3,8M/3)")
    p.add_argument("--context-bf16", action="store_true", help="the context network under bf16 too")
    p.add_argument("--checkpoint-minutes", type=float, default=5.0)
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--checkpoint", type=Path, help="final, export: this checkpoint, not the run's last.ckpt")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runs-dir", type=Path, default=Path("runs"))
    p.add_argument("--plot-metrics", default="mse,msssim", help="plot mode: runs to draw")
    p.add_argument("--calibration-images", type=int, default=8, help="export mode: training photos")
    p.add_argument("--out", type=Path, help="export mode: the weights file to write")
    p.add_argument("--plot-out", type=Path, default=Path("docs/experiments/checkerboard-probe.png"))
    return p.parse_args(argv)


def say(record: dict) -> None:
    print(json.dumps(record), flush=True)


def load_base(metric: str) -> TrainableHyperprior:
    """The shipped model, frozen transforms under bf16 where the CPU has bf16 hardware."""
    config = torch.load(WEIGHTS[metric], map_location="cpu", weights_only=True)["config"]
    model = TrainableHyperprior(HyperpriorConfig(**config), bf16=cpu_has_fast_bf16())
    load_exported(model, WEIGHTS[metric])
    return model.to(memory_format=torch.channels_last).eval()


def build(args: argparse.Namespace) -> tuple[ProbeTrainer, Path]:
    base = load_base(args.metric)
    hidden = tuple(int(v) for v in args.hidden.split(",")) if args.hidden else None
    probe = CheckerboardProbe(base, hidden, context_bf16=args.context_bf16)
    probe.to(memory_format=torch.channels_last)
    trainer = ProbeTrainer(
        probe,
        lr=args.lr,
        warmup=args.warmup,
        levels=base.transforms.config.levels,
        crop_rng=np.random.default_rng(args.seed),
    )
    run_dir = args.runs_dir / f"context-probe-{args.metric}"
    return trainer, run_dir


@torch.no_grad()
def measure(probe: CheckerboardProbe, images: list[torch.Tensor], levels: list[float], context: bool) -> dict:
    """Mean estimated bpp (ŷ and ẑ, headers excluded), PSNR, MS-SSIM and MS-SSIM dB per level.

    Images are padded to the codec's size (edge replication) and the reconstruction is cropped,
    clamped and rounded to 8 bits before the distortion is measured.
    """
    from pytorch_msssim import ms_ssim

    was_training = probe.training
    probe.eval()
    curve: dict[str, list[float]] = {"bpp": [], "psnr": [], "ms-ssim": [], "ms-ssim-db": []}
    try:
        for level in levels:
            bpp, ps, ms = [], [], []
            for x in images:
                h, w = x.shape[2:]
                ph, pw = padded_size(h, w)
                padded = F.pad(x, (0, pw - w, 0, ph - h), mode="replicate")
                padded = padded.contiguous(memory_format=torch.channels_last)
                out = probe(padded, torch.full((1,), float(level)), context=context, decode=True)
                bits = -(out["y_likelihoods"].log2().sum() + out["z_likelihoods"].log2().sum())
                x_hat = out["x_hat"][:, :, :h, :w].clamp(0, 1).mul(255).round().div(255)
                bpp.append(bits.item() / (h * w))
                ps.append(psnr(x_hat, x))
                ms.append(ms_ssim(x_hat, x, data_range=1.0).item())
            curve["bpp"].append(float(np.mean(bpp)))
            curve["psnr"].append(float(np.mean(ps)))
            curve["ms-ssim"].append(float(np.mean(ms)))
            curve["ms-ssim-db"].append(float(np.mean([msssim_db(m) for m in ms])))
    finally:
        probe.train(was_training)
    return curve


def compare(metric: str, base: dict, ctx: dict) -> dict:
    """BD-rate of context vs hyperprior (PSNR and MS-SSIM dB) and bits saved per level, in %."""
    result = {"bits_saved_pct": [100 * (1 - c / b) for b, c in zip(base["bpp"], ctx["bpp"])]}
    for key in ("psnr", "ms-ssim-db"):
        try:
            result[f"bd_rate_{key}"] = bd_rate(base["bpp"], base[key], ctx["bpp"], ctx[key])
        except ValueError:
            result[f"bd_rate_{key}"] = float("nan")
    result["bd_rate"] = result["bd_rate_psnr" if metric == "mse" else "bd_rate_ms-ssim-db"]
    result["mean_bits_saved_pct"] = float(np.mean(result["bits_saved_pct"]))
    return result


def parse_levels(text: str) -> list[float]:
    return [float(v) for v in text.split(",")]


def train(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    trainer, run_dir = build(args)
    ckpt = run_dir / "last.ckpt"
    if args.resume and trainer.resume(ckpt):
        say({"event": "resumed", "checkpoint": str(ckpt), "step": trainer.step})
    elif ckpt.exists():
        raise SystemExit(f"{ckpt} exists; pass --resume or remove it")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(vars(args), default=str, indent=1))
    levels = parse_levels(args.levels)
    images = load_eval_images(args.kodak, args.eval_images)
    eval_log = run_dir / "eval.jsonl"
    baseline_path = run_dir / "baseline.json"
    if baseline_path.exists():
        baseline = json.loads(baseline_path.read_text())
    else:
        baseline = measure(trainer.probe, images, levels, context=False)
        baseline_path.write_text(json.dumps(baseline))

    def evaluate() -> None:
        t0 = time.time()
        ctx = measure(trainer.probe, images, levels, context=True)
        record = {
            "event": "eval",
            "metric": args.metric,
            "step": trainer.step,
            "train_seconds": round(trainer.train_seconds, 1),
            "images": len(images),
            "levels": levels,
            "baseline": baseline,
            "context": ctx,
            **compare(args.metric, baseline, ctx),
            "eval_seconds": round(time.time() - t0, 1),
        }
        trainer.history.append(
            {k: record[k] for k in ("step", "train_seconds", "bd_rate", "mean_bits_saved_pct")}
        )
        say(record)
        with eval_log.open("a") as f:
            f.write(json.dumps(record) + "\n")

    if trainer.step == 0:
        evaluate()
    say({"event": "loading", "data": str(args.data)})
    data = InMemoryCrops(args.data, args.crop, seed=args.seed, progress=False)
    say({"event": "start", "step": trainer.step, "images": len(data), "threads": torch.get_num_threads()})
    start = last_ckpt = time.time()
    running: dict[str, float] = {}
    seconds_since_log, steps_since_log = 0.0, 0
    while trainer.step < args.steps and (time.time() - start) / 60 < args.minutes:
        t0 = time.time()
        x = to_unit_float(data.batch_uint8(args.batch_size, trainer.crop_rng))
        parts = trainer.train_step(x.contiguous(memory_format=torch.channels_last))
        dt = time.time() - t0
        trainer.train_seconds += dt
        seconds_since_log += dt
        steps_since_log += 1
        for k, v in parts.items():
            running[k] = v if k not in running else 0.98 * running[k] + 0.02 * v
        if trainer.step % 50 == 0:
            say(
                {
                    "event": "train",
                    "step": trainer.step,
                    "lr": trainer.learning_rate(),
                    "non_anchor_bpp": round(running["loss"], 5),
                    "bpp": round(running["bpp"], 5),
                    "s_per_step": round(seconds_since_log / steps_since_log, 3),
                }
            )
            seconds_since_log, steps_since_log = 0.0, 0
        if trainer.step % args.eval_every == 0:
            evaluate()
            trainer.save(ckpt)
            last_ckpt = time.time()
        elif time.time() - last_ckpt > 60 * args.checkpoint_minutes:
            trainer.save(ckpt)
            last_ckpt = time.time()
    trainer.save(ckpt)
    say({"event": "stopped", "step": trainer.step, "checkpoint": str(ckpt)})


def resumed(args: argparse.Namespace) -> tuple[ProbeTrainer, Path, Path]:
    """The trainer at ``--checkpoint`` (else the run's last.ckpt), its run folder and checkpoint;
    exits with one line when there is none."""
    torch.set_num_threads(args.threads)
    trainer, run_dir = build(args)
    ckpt = args.checkpoint or run_dir / "last.ckpt"
    if not trainer.resume(ckpt):
        raise SystemExit(f"no checkpoint at {ckpt}")
    return trainer, run_dir, ckpt


def final(args: argparse.Namespace) -> None:
    """All Kodak images and the held-out photos at ``--levels``: hyperprior vs the checkpoint."""
    trainer, run_dir, ckpt = resumed(args)
    levels = parse_levels(args.levels)
    result: dict = {"metric": args.metric, "step": trainer.step, "levels": levels, "command": sys.argv}
    for name, folder, count in (
        ("kodak", args.kodak, len(list_images(args.kodak))),
        ("heldout", args.heldout, args.heldout_images),
    ):
        images = load_eval_images(folder, count)
        base = measure(trainer.probe, images, levels, context=False)
        ctx = measure(trainer.probe, images, levels, context=True)
        result[name] = {
            "images": len(images),
            "baseline": base,
            "context": ctx,
            **compare(args.metric, base, ctx),
        }
        say({"event": "final", "set": name, **result[name]})
    (run_dir / f"final-step{trainer.step}.json").write_text(json.dumps(result, indent=1))


def plot(args: argparse.Namespace) -> None:
    """Bits saved (mean over the levels) and BD-rate vs step, one line pair per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.4), dpi=90)
    for metric in args.plot_metrics.split(","):
        path = args.runs_dir / f"context-probe-{metric}" / "eval.jsonl"
        if not path.exists():
            continue
        records = {}
        for line in path.read_text().splitlines():
            r = json.loads(line)
            records[r["step"]] = r  # a resumed run may repeat a step: the last one counts
        steps = sorted(records)
        ax.plot(steps, [records[s]["mean_bits_saved_pct"] for s in steps], label=f"{metric}: bits saved")
        ax.plot(
            steps,
            [-records[s]["bd_rate"] for s in steps],
            "--",
            label=f"{metric}: −BD-rate",
            color=ax.lines[-1].get_color(),
        )
    ax.set_xlabel("training step (batch 8 × 256²)")
    ax.set_ylabel("% vs hyperprior")
    ax.set_title("Checkerboard context on frozen shipped transforms (first 6 Kodak, 4 levels)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    args.plot_out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.plot_out)


@torch.no_grad()
def export(args: argparse.Namespace) -> None:
    """The checkpoint's context, quantised (calibrated on training photos), as a weights file."""
    trainer, run_dir, ckpt = resumed(args)
    probe, split = trainer.probe, trainer.probe.base.transforms.split_params
    calibration = []
    for image in load_eval_images(args.data, args.calibration_images):
        hp, wp = padded_size(image.shape[2], image.shape[3])
        image = F.pad(image, (0, wp - image.shape[3], 0, hp - image.shape[2]), mode="replicate")
        for level in parse_levels(args.levels):
            y, _, params, _ = probe.frozen(image, torch.tensor([level]))
            means = split(params)[1]
            calibration.append((params.float(), torch.round(y - means) + means))
    exact = quantize_context(probe.context.float(), calibration)
    base_state = torch.load(WEIGHTS[args.metric], map_location="cpu", weights_only=False)
    config_file = run_dir / "config.json"  # the training run's settings (this command's otherwise)
    trained = json.loads(config_file.read_text()) if config_file.exists() else vars(args)
    meta = {
        "context_run": run_dir.name,
        "context_step": trainer.step,
        "context_cpu_hours": round(trainer.train_seconds / 3600, 2),
        "context_recipe": (
            f"Adam lr {trained['lr']:g} (warm-up {trained['warmup']}), batch {trained['batch_size']} × "
            f"{trained['crop']}² crops of the training photos, rate of the non-anchors only, "
            f"{'bf16' if trained['context_bf16'] else 'float32'} context; 8-bit export calibrated on "
            f"{args.calibration_images} training photos"
        ),
    }
    out = args.out or run_dir / f"{args.metric}-checkerboard.pt"
    # A shipped checkerboard model's context is replaced; the hyperprior it extends stays the base.
    extends = base_state.get("architecture") == CHECKERBOARD
    base_digest = None if extends else decoder_digest(base_state, WEIGHTS[args.metric])
    save_weights(checkerboard_weights(base_state, exact, meta, base_digest), out)
    say({"event": "export", "step": trainer.step, "out": str(out), "bytes": out.stat().st_size})


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    {"train": train, "final": final, "plot": plot, "export": export}[args.mode](args)


if __name__ == "__main__":
    main()
