"""Training checkpoint -> compact inference weights (+ what is needed to resume training).

The file holds: the conv transforms and gains (fp16, gains fp32), h_s in exact integer
form (see neuralcodec.exact), the per-channel offsets of the grid ẑ lives on, integer
probability tables for z on that grid (from the training's factorized prior) and for y
(quantised Gaussians over a fixed scale table), and the factorized prior's own parameters
so training can resume from the exported file. A checkerboard model (TrainableCheckerboard) adds its
context in integer form (neuralcodec.training.context_export), calibrated on the same images.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch

from neuralcodec.checkerboard_latents import CHECKERBOARD
from neuralcodec.entropy_models import TableSet, gaussian_tables, scale_table
from neuralcodec.errors import one_line
from neuralcodec.exact import ExactHyperSynthesis, quantize_hyper_synthesis
from neuralcodec.float_context import dequantize_context
from neuralcodec.models.hyperprior import ENCODER_PARAMETERS, HyperpriorConfig
from neuralcodec.models.interface import DEFAULT_ARCHITECTURE
from neuralcodec.models.loaded import load_transforms
from neuralcodec.training.context_export import checkerboard_weights, quantize_context
from neuralcodec.training.data import InMemoryCrops
from neuralcodec.training.model import TrainableCheckerboard, TrainableHyperprior, context_widths
from neuralcodec.training.portable import is_portable, load_portable
from neuralcodec.zoo import WEIGHTS_FORMAT, Z_OFFSET_BITS, decoder_digest, decoder_file_name

Z_TAIL_MARGIN = 2  # extra integer bins beyond the learned tail quantiles


def z_offsets(model: TrainableHyperprior) -> torch.Tensor:
    """Per-channel ẑ offsets in units of 2^-Z_OFFSET_BITS (int32, within ±1/2): the fractional
    part of each channel's median, which is where training's evaluation quantises z
    (ẑ = round(z − median) + median). Coding z on that grid instead of the
    integers costs the hyper-synthesis nothing it did not learn, and saves a lot at low rates."""
    medians = model.entropy_bottleneck.quantiles.detach().double()[:, 0, 1]
    fraction = medians - torch.round(medians)
    return torch.round(fraction * 2**Z_OFFSET_BITS).to(torch.int32)


@torch.no_grad()
def z_tables(model: TrainableHyperprior, offsets: torch.Tensor) -> TableSet:
    """Per-channel integer pmfs of the hyper-latent symbols k, whose values are ẑ = k + offset
    (``offsets`` in units of 2^-Z_OFFSET_BITS)."""
    eb = model.entropy_bottleneck
    q = eb.quantiles.detach().double()[:, 0, :]
    shift = offsets.double() / 2**Z_OFFSET_BITS
    lo = torch.floor(q[:, 0] - shift).long() - Z_TAIL_MARGIN
    hi = torch.ceil(q[:, 2] - shift).long() + Z_TAIL_MARGIN
    pmfs, symbol_offsets = [], []
    for c in range(q.shape[0]):
        values = torch.arange(int(lo[c]), int(hi[c]) + 1, dtype=torch.float64) + shift[c]
        grid = torch.zeros(q.shape[0], 1, len(values))
        grid[c, 0] = values.float()
        lower = eb.logits_cumulative(grid - 0.5, stop_gradient=True)[c, 0].double()
        upper = eb.logits_cumulative(grid + 0.5, stop_gradient=True)[c, 0].double()
        cdf_lo, cdf_hi = torch.sigmoid(lower), torch.sigmoid(upper)
        cdf_lo[0], cdf_hi[-1] = 0.0, 1.0  # fold the tails into the end bins
        pmfs.append((cdf_hi - cdf_lo).clamp_min(0).numpy())
        symbol_offsets.append(int(lo[c]))
    return TableSet.from_pmfs(pmfs, symbol_offsets)


def calibration_images(data_dir: Path, count: int = 16, crop: int = 256) -> torch.Tensor:
    """Training crops (never evaluation images) used to size h_s's fixed-point formats."""
    return InMemoryCrops(data_dir, crop, seed=123, progress=False).batch(count)


def calibration_levels(config: HyperpriorConfig) -> np.ndarray:
    """The gain levels whose latents size the fixed-point formats: 4 from the lowest to the top."""
    return np.linspace(0, config.levels - 1, 4)


@torch.no_grad()
def calibration_z(model: TrainableHyperprior, images: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Quantised hyper-latents ẑ of ``images`` at every gain level, on the grid of ``offsets``."""
    t = model.transforms
    shift = (offsets.float() / 2**Z_OFFSET_BITS).view(1, -1, 1, 1)
    zs = []
    for level in calibration_levels(t.config):
        gain, _ = t.gains(torch.full((images.shape[0],), float(level)))
        zs.append(torch.round(t.h_a(t.g_a(images) * gain) - shift) + shift)
    return torch.cat(zs)


@torch.no_grad()
def calibration_context(
    model: TrainableHyperprior, images: torch.Tensor
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(h_s parameters, anchors' ŷ) of ``images`` at the calibration levels, as the evaluating
    model computes them (rounded ẑ and ŷ): what sizes the integer context's formats."""
    was_training = model.training
    model.eval()
    try:
        pairs = []
        for level in calibration_levels(model.transforms.config):
            y, _, params, _ = model.hyperprior(images, torch.full((images.shape[0],), float(level)))
            means = model.transforms.split_params(params)[1]
            pairs.append((params.float(), torch.round(y - means) + means))
        return pairs
    finally:
        model.train(was_training)


def training_meta(history: list[dict]) -> dict:
    """Steps and compute of a training history: CPU core-hours and GPU-hours counted apart."""
    cpu = [s for s in history if not str(s.get("device", "cpu")).startswith("cuda")]
    gpu = [s for s in history if str(s.get("device", "cpu")).startswith("cuda")]
    return {
        "steps": sum(s["steps"] for s in history),
        "cpu_hours": round(sum(s["wall_s"] * s["processes"] * s["threads"] for s in cpu) / 3600, 2),
        "gpu_hours": round(sum(s["wall_s"] * s["processes"] for s in gpu) / 3600, 2),
        "history": history,
    }


def load_exported(model: TrainableHyperprior, path: Path) -> list[dict]:
    """Fill ``model`` from exported inference weights (any readable format); returns their
    training history. h_s comes back from its integer form, and so does the context of a
    checkerboard model's file (neuralcodec.float_context.dequantize_context) when
    ``model`` has one; a hyperprior model takes such a file's hyperprior part. Raises ValueError
    for a context of other widths than the model's."""
    exported = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(model, TrainableCheckerboard) and exported.get("architecture") == CHECKERBOARD:
        try:
            model.context.load_state_dict(dequantize_context(exported["context_exact"]))
        except RuntimeError as exc:
            raise ValueError(f"{path}: its context does not fit the model's ({one_line(exc)})") from None
    hyper = ExactHyperSynthesis.from_state_dict(exported["h_s_exact"], int(exported.get("z_offset_bits", 0)))
    load_transforms(model.transforms, exported["transforms"], hyper)
    model.entropy_bottleneck.load_state_dict(exported["entropy_bottleneck"], strict=False)
    return list(exported.get("meta", {}).get("history", []))


def load_checkpoint(path: Path) -> tuple[TrainableHyperprior, dict]:
    """The model in a training checkpoint, portable folder or exported weights file (to export
    it again in the current weights format), and the metadata its card needs."""
    if path.suffix == ".pt" and path.is_file():
        config = torch.load(path, map_location="cpu", weights_only=True)["config"]
        model = TrainableHyperprior(HyperpriorConfig(**config), bf16=False)
        return model.eval(), training_meta(load_exported(model, path))
    if is_portable(path):
        state, manifest = load_portable(path)
        model = model_for_state(HyperpriorConfig(**manifest["run"]["config"]), state)
        return model.eval(), training_meta(manifest["history"])
    run = json.loads((path.parent / "config.json").read_text())
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    # A run with --ema-decay exports the moving average of its parameters.
    model = model_for_state(HyperpriorConfig(**run["config"]), {**ckpt["model"], **ckpt.get("ema", {})})
    history = ckpt.get("history") or [legacy_segment(path.parent, run, ckpt["step"])]
    return model.eval(), training_meta(history)


def checkerboard_model(
    config: HyperpriorConfig, bf16: bool = True, hidden: tuple[int, int] | None = None
) -> TrainableCheckerboard:
    """A checkerboard training model with a fresh context (zero output: the hyperprior exactly) of
    ``hidden`` widths (default: CheckerboardContext's)."""
    return TrainableCheckerboard(config, hidden, bf16)


def model_for_state(config: HyperpriorConfig, state: dict[str, torch.Tensor]) -> TrainableHyperprior:
    """A float32 model holding ``state``: a checkerboard one (its context's widths read from the
    state) when the state has a context, else the hyperprior."""
    widths = context_widths(state)
    if widths is None:
        model = TrainableHyperprior(config, bf16=False)
    else:
        model = checkerboard_model(config, bf16=False, hidden=widths)
    model.load_state_dict(state)
    return model


def legacy_segment(run_dir: Path, run: dict, step: int) -> dict:
    """History of a checkpoint written before histories were recorded: from its run files."""
    wall = 0.0
    log = run_dir / "log.csv"
    if log.exists():
        rows = list(csv.DictReader(log.open()))
        wall = float(rows[-1]["wall_s"]) if rows else 0.0
    keys = ("batch_size", "crop", "lr", "lr_final", "metric", "data", "device")
    segment = {
        "run": run["name"],
        "steps": step,
        "wall_s": wall,
        "processes": 1,
        "threads": run["threads"] or 1,
    }
    return segment | {k: run[k] for k in keys}


def shipped_transforms(model: TrainableHyperprior) -> dict[str, torch.Tensor]:
    """The transforms' tensors at the precision weights files store: gains fp32, the rest fp16."""
    return {k: (v.float() if "gain" in k else v.half()) for k, v in model.transforms.state_dict().items()}


def export(model: TrainableHyperprior, name: str, out: Path, images: torch.Tensor, meta: dict) -> Path:
    """Write the weights file atomically; ``images`` calibrate h_s. Returns the path."""
    return save_weights(weights_state(model, name, images, meta), out)


def weights_state(model: TrainableHyperprior, name: str, images: torch.Tensor, meta: dict) -> dict:
    """What a weights file of ``model`` holds (see the module docstring); ``images`` calibrate h_s
    and, for a checkerboard model, the context, whose file is of architecture
    ``mean-scale-checkerboard`` and names a decoder of its own."""
    offsets = z_offsets(model)
    exact = quantize_hyper_synthesis(
        model.transforms.h_s, calibration_z(model, images, offsets), input_shift=Z_OFFSET_BITS
    )
    transforms = {k: v for k, v in shipped_transforms(model).items() if not k.startswith("h_s.")}
    eb_state = dict(model.entropy_bottleneck.state_dict())
    table = scale_table()
    state = {
        "format": WEIGHTS_FORMAT,
        "architecture": DEFAULT_ARCHITECTURE,
        "name": name,
        "config": model.transforms.config.to_dict(),
        "transforms": transforms,
        "h_s_exact": exact.state_dict(),
        "z_tables": z_tables(model, offsets).to_dict(),
        "z_offsets": offsets,
        "z_offset_bits": Z_OFFSET_BITS,
        "scale_table": torch.from_numpy(table),
        "y_tables": gaussian_tables(table).to_dict(),
        "entropy_bottleneck": eb_state,
        "meta": meta,
    }
    if isinstance(model, TrainableCheckerboard):
        exact_context = quantize_context(model.context, calibration_context(model, images))
        state = checkerboard_weights(state, exact_context, {})
    return state


def _is_encoder_key(key: str) -> bool:
    return key.startswith(ENCODER_PARAMETERS)


def export_encoder(model: TrainableHyperprior, parent: Path, name: str, out: Path, meta: dict) -> Path:
    """Write weights with ``model``'s encoder (g_a, h_a, encoder gains) and everything else
    taken verbatim from the weights file ``parent``; returns the path.

    The new file carries the parent's decoder digest, so streams written with either weights
    decode with both. Raises ValueError unless ``model``'s decoder side (g_s, inverse gains,
    z density) is the parent's, as it is after ``train.py --train-only encoder --init`` the
    parent (or the parameters it was exported from), or when ``model`` is a checkerboard model.
    """
    if isinstance(model, TrainableCheckerboard):
        raise ValueError("a checkerboard model's decoder includes its context: export it whole")
    state = torch.load(parent, map_location="cpu", weights_only=True)
    ours = shipped_transforms(model)
    differs = [
        k for k, v in state["transforms"].items() if not _is_encoder_key(k) and not torch.equal(ours[k], v)
    ]
    eb = model.entropy_bottleneck.state_dict()
    differs += [
        f"entropy_bottleneck.{k}" for k, v in state["entropy_bottleneck"].items() if not torch.equal(eb[k], v)
    ]
    if differs:
        raise ValueError(
            f"the decoder side differs from {parent} ({', '.join(differs[:3])}"
            f"{', …' if len(differs) > 3 else ''}): train with --train-only encoder from its parameters"
        )
    state["transforms"] = {k: (ours[k] if _is_encoder_key(k) else v) for k, v in state["transforms"].items()}
    state["decoder_digest"] = decoder_digest(state, parent).hex()
    state["name"] = name
    state["meta"] = meta
    return save_weights(state, out)


def save_weights(state: dict, out: Path) -> Path:
    """torch.save ``state`` to ``out`` atomically (through a temporary file beside it), its zip
    members deflated: integer tables and 8/16-bit weights take about a fifth less room, and
    both torch.load and the torch-free reader (neuralcodec.weights_file) read them as they are.
    The same state gives the same bytes."""
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    tmp = out.with_suffix(".tmp")
    with zipfile.ZipFile(buffer) as stored, zipfile.ZipFile(tmp, "w") as deflated:
        for member in stored.infolist():
            info = zipfile.ZipInfo(member.filename, date_time=member.date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            deflated.writestr(info, stored.read(member), compresslevel=9)
    os.replace(tmp, out)
    return out


def weights_decoder_digest(path: Path) -> bytes:
    """The decoder digest of the weights file at ``path``, read now (zoo.load_model caches by path)."""
    return decoder_digest(torch.load(path, map_location="cpu", weights_only=True), path)


def file_replaced_decoder(previous: bytes, previous_digest: bytes, out: Path, archive: Path | None) -> None:
    """After ``out`` was rewritten: when its decoder changed, file the weights it replaced.

    Every stream names its decoder, so files written with the replaced weights need them to
    decode. With ``archive`` they are written to ``archive/NAME-DIGEST.pt``, the name the
    runtime's weights search path looks for (zoo.find_decoder): publish that file with the
    release. Without it, a warning says what was lost. Nothing happens when the decoder is the same.
    """
    if weights_decoder_digest(out) == previous_digest:
        return
    name = torch.load(out, map_location="cpu", weights_only=True)["name"]
    if archive is None:
        print(
            f"warning: {out} had decoder {previous_digest.hex()}; files written with it need those "
            "weights: export again with --archive DIR to keep them",
            file=sys.stderr,
        )
        return
    filed = archive / decoder_file_name(name, previous_digest)
    archive.mkdir(parents=True, exist_ok=True)
    tmp = filed.with_suffix(".tmp")
    tmp.write_bytes(previous)
    os.replace(tmp, filed)
    print(f"filed the replaced decoder as {filed}: publish it with the release")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument(
        "checkpoint",
        type=Path,
        help="runs/NAME/last.ckpt, a portable folder (GPU runs), or a weights file to export again "
        "in the current weights format",
    )
    p.add_argument("--name", required=True, help="model name, e.g. msssim")
    p.add_argument("--out", type=Path, help="default: neuralcodec/weights/NAME.pt")
    p.add_argument("--data", type=Path, default=Path("../shared/datasets/train"), help="calibration images")
    p.add_argument("--calibration-crop", type=int, default=256)
    p.add_argument(
        "--decoder-from",
        type=Path,
        help="weights file whose decoder side (g_s, exact h_s, tables) is kept verbatim, with its "
        "digest: for runs trained with --train-only encoder from those weights",
    )
    p.add_argument(
        "--archive",
        type=Path,
        help="when OUT already holds weights with another decoder, file them here as NAME-DIGEST.pt "
        "(what decoders of earlier files look for: NEURALCODEC_WEIGHTS) before they are replaced",
    )
    args = p.parse_args(argv)
    try:
        model, meta = load_checkpoint(args.checkpoint)
    except ValueError as exc:
        raise SystemExit(f"export: {exc}") from None
    out = args.out or Path(__file__).resolve().parents[1] / "weights" / f"{args.name}.pt"
    previous = (out.read_bytes(), weights_decoder_digest(out)) if out.is_file() else None
    if args.decoder_from:
        try:
            export_encoder(model, args.decoder_from, args.name, out, meta)
        except ValueError as exc:
            raise SystemExit(f"export: {exc}") from None
    else:
        export(model, args.name, out, calibration_images(args.data, crop=args.calibration_crop), meta)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    if previous is not None:
        file_replaced_decoder(*previous, out, args.archive)


if __name__ == "__main__":
    main()
