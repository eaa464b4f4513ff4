"""Write the model card (neuralcodec/weights/NAME.md) of a shipped model.

Reads the weights' training history and the Kodak results the benchmark harness wrote
(`python -m benchmarks.rd --dataset kodak --codecs jpeg,neuralcodec`), so every number
in the card comes from a file in the repository:

    python tools/model_card.py msssim --notes "why this model was shipped"
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # benchmarks/ is a folder of the repository, not an installed package

from benchmarks.curves import curve_from_json, load_anchors  # noqa: E402
from benchmarks.report import bd_msssim_rate, bd_psnr_rate  # noqa: E402
from neuralcodec.zoo import decoder_digest  # noqa: E402

WEIGHTS = REPO / "neuralcodec" / "weights"
RESULTS = REPO / "benchmarks" / "results" / "kodak"
HELD_OUT = REPO / "benchmarks" / "results" / "qoi_photo_wikipedia"
CURVES = REPO / "docs" / "learning-curves"
ANCHORS = REPO.parent / "shared" / "anchors"


def pct(v: float | None) -> str:
    return "—" if v is None else f"{v:+.1f} %"


def learning_curve(log: Path) -> list[str]:
    """Periodic evaluation rows of a training log (estimated bpp, first Kodak images).

    Runs with a moving average of the weights evaluate it (what export ships) and log the raw
    parameters too; the table then shows both, so the average's gain is read off one run. Runs
    with ``--eval-files`` add the BD-rates of real files (unbiased) in a column of their own.
    """
    rows = eval_rows(log)
    curves = [json.loads(r["eval_curve"]) for r in rows]
    extra = [  # (eval_curve key, column heading) of what some runs log beside the estimate
        (key, head)
        for key, head in (
            ("files", " real files (`--eval-files`): PSNR / MS-SSIM dB |"),
            ("raw", " raw parameters (no EMA): PSNR / MS-SSIM dB |"),
        )
        if any(key in c for c in curves)
    ]
    lines = [
        "",
        f"## Learning curve (`{log.parent.name}`)",
        "",
        "BD-rate vs Pillow JPEG 4:2:0 on the first Kodak images, from the model's estimated bpp at 4 levels "
        "(evaluation only; never trained on):",
        "",
        "| step | wall min | BD-rate PSNR | BD-rate MS-SSIM dB | estimated bpp at levels 0 … max |"
        + "".join(head for _, head in extra),
        "|---|---|---|---|---|" + "---|" * len(extra),
    ]
    for r, curve in zip(rows, curves, strict=True):
        bpp = ", ".join(f"{b:.3f}" for b in curve["bpp"])
        cells = "".join(
            f" {pct(curve[key]['bd_psnr'])} / {pct(curve[key]['bd_ms-ssim'])} |" if key in curve else " — |"
            for key, _ in extra
        )
        lines.append(
            f"| {r['step']} | {float(r['wall_s']) / 60:.0f} | {r['eval_bd_psnr']} % | "
            f"{r['eval_bd_msssim']} % | {bpp} |" + cells
        )
    return lines


def eval_rows(log: Path) -> list[dict]:
    return [r for r in csv.DictReader(log.read_text().splitlines()) if r.get("eval_bd_msssim")]


def curve_rows(kept: list[str]) -> list[tuple[str, list[dict]]]:
    """(run, rows) read back from learning-curve sections of a card (``kept_learning_curves``).

    The logs of earlier runs stay on the machines that trained them; their tables in the card
    keep step and both BD-rates, which is all the figure draws.
    """
    runs: list[tuple[str, list[dict]]] = []
    for line in kept:
        if line.startswith("## Learning curve (`"):
            runs.append((line.split("`")[1], []))
            continue
        cells = [c.strip().removesuffix("%").strip() for c in line.strip().strip("|").split("|")]
        if runs and len(cells) >= 4 and cells[0].isdigit():
            runs[-1][1].append({"step": cells[0], "eval_bd_psnr": cells[2], "eval_bd_msssim": cells[3]})
    return runs


def plot_learning_curves(
    name: str, logs: list[Path], out: Path, earlier: Sequence[tuple[str, list[dict]]] = ()
) -> Path | None:
    """One figure: BD-rate vs JPEG (estimated, first Kodak images) against training step, per run.

    ``earlier`` (run, rows) pairs, read back from the card, are drawn before the logs given.
    """
    runs = [*earlier, *((log.parent.name, eval_rows(log)) for log in logs if log.exists())]
    runs = [(run, rows) for run, rows in runs if rows]
    if not runs:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    for ax, key, title in (
        (axes[0], "eval_bd_psnr", "BD-rate on PSNR"),
        (axes[1], "eval_bd_msssim", "BD-rate on MS-SSIM dB"),
    ):
        for run, rows in runs:
            ax.plot([int(r["step"]) for r in rows], [float(r[key]) for r in rows], marker=".", label=run)
        ax.set(title=title, xlabel="training step (counted per run)")
        ax.set_ylabel("% vs Pillow JPEG 4:2:0 (lower: better)")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"{name}: learning curve (estimated bpp, first Kodak images)")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def held_out_section(name: str, results: Path) -> list[str]:
    """BD-rate vs JPEG on the held-out set, when the benchmark has been run there."""
    ours_path, jpeg_path = results / f"neuralcodec-{name}.json", results / "jpeg.json"
    if not (ours_path.exists() and jpeg_path.exists()):
        return []
    ours = curve_from_json(json.loads(ours_path.read_text()))
    jpeg = curve_from_json(json.loads(jpeg_path.read_text()))
    return [
        "",
        f"## Held-out photos (`{results.name}`, {ours.meta.get('n_images', '?')} images, never trained on)",
        "",
        f"Command: `python -m benchmarks.rd --dataset ../shared/datasets/{results.name} "
        "--codecs jpeg,neuralcodec`.",
        "",
        "| reference | BD-rate on PSNR | BD-rate on MS-SSIM dB |",
        "|---|---|---|",
        f"| our Pillow JPEG 4:2:0 | {pct(bd_psnr_rate(jpeg, ours))} | {pct(bd_msssim_rate(jpeg, ours))} |",
        *reference_rows(results, name, ours),
    ]


def reference_rows(results: Path, name: str, ours) -> list[str]:
    """BD-rate rows against AVIF and against the hyperprior a context model extends, where the
    benchmark has their curves in ``results`` (``avif.json``, ``neuralcodec-NAME-hyperprior.json``)."""
    rows = []
    for file, label in (
        ("avif.json", "AVIF"),
        (f"neuralcodec-{name}-hyperprior.json", "the hyperprior it extends"),
    ):
        if (results / file).exists():
            ref = curve_from_json(json.loads((results / file).read_text()))
            rows.append(f"| {label} | {pct(bd_psnr_rate(ref, ours))} | {pct(bd_msssim_rate(ref, ours))} |")
    return rows


EXAMPLE = REPO / "neuralcodec" / "examples" / "example.png"
EXAMPLE_QUALITIES = (25, 75)
EXAMPLE_HEADING = "## Bundled example (quality regression)"


def architecture_line(context_layers: list[dict]) -> str:
    """The card's architecture, from the weights: with a context model, its layer sizes."""
    if not context_layers:
        return "mean-scale hyperprior (Minnen et al. 2018, no context model)"
    first, *rest = (tuple(layer["weight"].shape) for layer in context_layers)
    widths = " → ".join(str(shape[1]) for shape in rest) + f" → {rest[-1][0]}"
    return (
        "mean-scale hyperprior with a checkerboard context model (He et al. 2021; architecture "
        f"`mean-scale-checkerboard`, format 3): anchors coded with the h_s parameters, non-anchors "
        f"with a {first[2]}×{first[3]} context convolution over the decoded anchors ({first[1]} → "
        f"{first[0]} channels) and 1×1 layers {widths} (leaky ReLU) added to the h_s parameters, all in "
        "exact integer arithmetic (8-bit weights)"
    )


def context_section(state: dict) -> list[str]:
    """How the context was trained, from the weights' meta."""
    meta = state.get("meta", {})
    also = ", ".join(f"`{d}`" for d in state.get("also_decodes", [])) or "—"
    return [
        "",
        "## Context model",
        "",
        f"Trained on the frozen transforms, gains, h_s and z prior of the hyperprior it extends "
        f"(`tools/context_probe.py`, run `{meta.get('context_run', '?')}`): {meta.get('context_step', '?')} "
        f"steps, {meta.get('context_cpu_hours', '?')} CPU core-hours; {meta.get('context_recipe', '')}. "
        "Learning curve: [checkerboard-probe.png](../../docs/experiments/checkerboard-probe.png). "
        f"Files of the hyperprior it extends (decoder {also}) decode with this model to the same "
        "pixels; the BD-rate tables compare against it (row *the hyperprior it extends*).",
    ]


def example_rows(weights: Path, precision: str = "float32") -> list[tuple[int, float, float, float]]:
    """(quality, bpp, PSNR dB, MS-SSIM) of the model on the bundled example, CPU, effort 0, the
    conv transforms in ``precision`` (the card records float32: the same on every CPU)."""
    from unittest import mock

    import numpy as np
    from PIL import Image

    import neuralcodec
    from benchmarks.metrics import ms_ssim_rgb, psnr, to_tensor

    original = np.asarray(Image.open(EXAMPLE).convert("RGB"))
    pixels = original.shape[0] * original.shape[1]
    rows = []
    with mock.patch.dict(os.environ, {"NEURALCODEC_TRANSFORMS": precision}):
        for q in EXAMPLE_QUALITIES:
            data = neuralcodec.compress(original, q, weights, "cpu", effort=0)
            decoded = np.asarray(neuralcodec.decompress(data, "cpu", weights))
            a, b = to_tensor(original), to_tensor(decoded)
            rows.append((q, len(data) * 8 / pixels, psnr(a, b), ms_ssim_rgb(a, b)))
    return rows


def example_section(weights: Path) -> list[str]:
    lines = [
        "",
        EXAMPLE_HEADING,
        "",
        "`neuralcodec/examples/example.png` (640×448), CPU, single-pass encoder, float32 transforms; "
        "`tests/test_quality_regression.py` re-measures these and fails when a weights commit "
        "moves them (float32: bpp ±1 %, PSNR ±0.03 dB, MS-SSIM ±0.0005; bf16 transforms, which "
        "cost up to 0.15 dB here: bpp ±2 %, PSNR ±0.25 dB, MS-SSIM ±0.002).",
        "",
        "| quality | bpp | PSNR dB | MS-SSIM |",
        "|---|---|---|---|",
    ]
    for q, bpp, ps, ms in example_rows(weights):
        lines.append(f"| {q} | {bpp:.4f} | {ps:.3f} | {ms:.5f} |")
    return lines


def kept_learning_curves(card: Path, new_runs: set[str]) -> list[str]:
    """Learning-curve sections of the existing card for runs whose logs are not given again.

    Training logs live in runs/ on the machine that trained; the card keeps their curves.
    """
    if not card.exists():
        return []
    kept, keep = [], False
    for line in card.read_text().splitlines():
        if line.startswith("## "):
            while kept and kept[-1] == "":  # one blank line between sections, however often rewritten
                kept.pop()
            run = line.split("`")[1] if line.startswith("## Learning curve (`") else None
            keep = run is not None and run not in new_runs
            if keep:
                kept.append("")
        if keep:
            kept.append(line)
    while kept and kept[-1] == "":
        kept.pop()
    return kept


def previous_status(card: Path) -> str:
    """The Status text of the existing card (kept when no new --notes are given)."""
    if not card.exists():
        return ""
    text = card.read_text()
    return text.split("\n## Status\n", 1)[1].strip() if "\n## Status\n" in text else ""


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name")
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--held-out", type=Path, default=HELD_OUT, help="held-out benchmark results")
    p.add_argument("--anchors", type=Path, default=ANCHORS)
    p.add_argument(
        "--notes", default="", help="free text: status, caveats (default: the card's current status)"
    )
    p.add_argument(
        "--log", type=Path, nargs="*", default=[], help="runs/NAME/log.csv per run: learning curves"
    )
    args = p.parse_args(argv)

    path = WEIGHTS / f"{args.name}.pt"
    state = torch.load(path, map_location="cpu", weights_only=True)
    config, meta = state["config"], state.get("meta", {})
    history = meta.get("history", [])
    params = sum(v.numel() for v in state["transforms"].values())
    params += sum(layer["weight"].numel() + layer["bias"].numel() for layer in state["h_s_exact"])
    context = state.get("context_exact")
    context_layers = [context["context"], *context["layers"]] if context else []
    params += sum(layer["weight"].numel() + layer["bias"].numel() for layer in context_layers)
    ours = curve_from_json(json.loads((args.results / f"neuralcodec-{args.name}.json").read_text()))
    jpeg = curve_from_json(json.loads((args.results / "jpeg.json").read_text()))
    metric = config["metric"]

    lines = [
        f"# Model card: `{args.name}`",
        "",
        f"- **Architecture**: {architecture_line(context_layers)}, N={config['N']}, "
        f"M={config['M']}, GDN/IGDN transforms, ReLU hyper-transforms; {params / 1e6:.2f} M parameters. "
        f"Variable rate through {config['levels']} learned gain/inverse-gain vectors (log-linear "
        f"interpolation between them), λ from {config['lambda_min']} to {config['lambda_max']} "
        f"({'λ·255²·MSE' if metric == 'mse' else 'λ·(1 − MS-SSIM)'} + bpp).",
        f"- **Objective**: {metric}. **File**: `{path.name}`, {path.stat().st_size / 1e6:.1f} MB "
        f"(conv weights fp16; h_s{' and the context' if context else ''} as exact integers; integer "
        "probability tables).",
        "- **Training data**: `../shared/datasets/train` (1559 photos: BSDS500, ImageNet sample, Urban100, "
        "Sun-Hays80); never Kodak or the held-out set.",
        f"- **Training**: {meta.get('steps', '?')} steps in total, "
        f"{meta.get('cpu_hours', '?')} CPU core-hours and {meta.get('gpu_hours', 0)} GPU-hours; "
        "transforms in bf16 autocast + channels_last unless the run table says fp32 (CPUs "
        "without bf16 hardware), entropy models and losses in fp32.",
        "",
        "## Training runs",
        "",
        "| run | steps | wall | processes × threads | device | batch × crop | lr → final, decay | λ range "
        "| data |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in history:
        decay_start = s.get("decay_start", 0.8)  # older records: the then default
        decay = "no decay" if decay_start >= 1 else f"last {100 * (1 - decay_start):.0f} %"
        lam = "–".join(f"{v:g}" for v in s["lambda"]) if "lambda" in s else "—"
        device = f"{s['device']} {s['precision']}" if "precision" in s else s["device"]
        run = f"{s['run']} (encoder only)" if s.get("train_only") == "encoder" else s["run"]
        lines.append(
            f"| {run} | {s['steps']} | {s['wall_s'] / 60:.0f} min | {s['processes']} × {s['threads']} | "
            f"{device} | {s['batch_size']} × {s['crop']}² | {s['lr']:g} → {s['lr_final']:g}, {decay} | "
            f"{lam} | `{s['data']}` |"
        )
    lines += [
        "",
        "Recipe: Adam, linear warm-up at the start of a run that begins from weights, flat, cosine "
        "decay over the last part of each segment's wall-clock budget (per row above; a segment that "
        "resumes a checkpoint keeps the optimizer state); gradient clipping at 1.0; aux loss "
        "(EntropyBottleneck quantiles) with its own Adam at 1e-3; mixed quantisation (noise for the "
        "rate, straight-through rounding for the decoder); λ level sampled uniformly per sample. "
        "GPU segments (`cuda`) trained on a pack of JPEG crops (288², q88) of the training photos "
        "(`tools/README.md`): 740 crops for the first two `cuda` segments, 960 for the next three, "
        "and for `mse` a fresh pack of 960 for the three after. "
        "Segments marked *encoder only* trained g_a, h_a and the encoder "
        "gains against the frozen decoder side (`--train-only encoder`).",
        "",
        f"Decoder digest (written into every file): `{decoder_digest(state, path).hex()}`"
        + (
            "; stored in the weights, inherited from the weights whose decoder these share."
            if "decoder_digest" in state
            else " (the weights file's SHA-256)."
        ),
        "",
        f"## Kodak ({ours.meta.get('n_images', '?')} images, real file sizes)",
        "",
        "Command: `python -m benchmarks.rd --dataset kodak --codecs jpeg,neuralcodec` "
        f"(results in `benchmarks/results/kodak/neuralcodec-{args.name}.json`).",
        "",
        "| quality | bpp | PSNR dB | MS-SSIM |",
        "|---|---|---|---|",
    ]
    qualities = ours.meta.get("quality") or [""] * len(ours.bpp)
    for q, b, ps, ms in zip(qualities, ours.bpp, ours.psnr, ours.msssim):
        lines.append(f"| {q} | {b:.4f} | {ps:.2f} | {'—' if ms is None else f'{ms:.4f}'} |")
    lines += [
        "",
        "BD-rate (negative = fewer bits than the reference at equal quality; PCHIP over the overlap):",
        "",
        "| reference | BD-rate on PSNR | BD-rate on MS-SSIM dB |",
        "|---|---|---|",
        f"| our Pillow JPEG 4:2:0, q5–95 | {pct(bd_psnr_rate(jpeg, ours))} | "
        f"{pct(bd_msssim_rate(jpeg, ours))} |",
        *reference_rows(args.results, args.name, ours),
    ]
    for anchor in load_anchors(args.anchors):
        lines.append(
            f"| published {anchor.label} | {pct(bd_psnr_rate(anchor, ours))} | "
            f"{pct(bd_msssim_rate(anchor, ours))} |"
        )
    lines += context_section(state) if context else []
    lines += held_out_section(args.name, args.held_out)
    lines += example_section(path)
    out = WEIGHTS / f"{args.name}.md"
    figure = CURVES / f"{args.name}.png"  # drawn from the logs given, else the earlier drawing is kept
    kept = kept_learning_curves(out, {log.parent.name for log in args.log if log.exists()})
    if plot_learning_curves(args.name, args.log, figure, curve_rows(kept)) or figure.exists():
        link = Path(os.path.relpath(figure, out.parent)).as_posix()
        lines += ["", "## Learning curves", "", f"![learning curves]({link})"]
    lines += kept
    for log in args.log:
        if log.exists():
            lines += learning_curve(log)
    notes = args.notes or previous_status(out)
    if notes:
        lines += ["", "## Status", "", notes]
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
