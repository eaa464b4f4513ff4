"""Effort levels: BD-rate against effort 0 and encode time per image, for one model.

Quick run (what fits beside training on a 2-core CPU; centre 256x256 crops of 4 images):

    python -m benchmarks.effort --model msssim --limit 4 --crop 256 --qualities 20,40,60,80 \\
        --efforts 0,1,3,6,9 --full-size-efforts 0,1,2,3

Full run (all 24 Kodak images, full size, every effort level):

    python -m benchmarks.effort --model msssim --limit 0 --crop 0 --efforts 0,1,2,3,4,5,6,7,8,9

A run too long for one go (the full run takes days on a 2-core CPU): ``--rows FILE`` appends
every encode to FILE as it finishes and a later run with the same command skips what FILE
already holds for the same weights, crop, device and schedules; ``--max-minutes M`` starts no
encode after M minutes. The summary covers the images measured at every quality and effort.
With ``--rows``, the rows that ``<out>/effort.json`` keeps for the images measured in full count
too (same setup, CPU model and thread count), so a fresh clone resumes where the last committed
summary stopped.

    python -m benchmarks.effort --model mse --limit 0 --crop 0 --efforts 0,3,6,9 \
        --full-size-efforts '' --threads 1 --rows runs/effort-mse-kodak.jsonl --max-minutes 150

BD-rate is on the model's own metric (``mse`` models: PSNR; ``ms-ssim`` models: MS-SSIM in
dB, −10·log10(1 − MS-SSIM)), from real file sizes and the images the unchanged decoder
returns, against effort 0 with the same images and qualities. ``J`` is the model's own
objective λ·D + bpp as refinement scores it (the relative change from effort 0, averaged;
never above 0 by construction). Full-size time: one 768x512 encode per effort in
``--full-size-efforts``; other efforts are extrapolated linearly in the iteration count.
Results go to ``<out>/effort.json`` (one entry per model, merged) and ``<out>/effort.md``.
Where ``benchmarks.rd`` measured AVIF on the same whole images (``<out>/per_image/avif.json``),
the report adds each effort's BD-rate against AVIF on the model's metric, both averaged as
``benchmarks.rd`` averages (mean bpp, mean PSNR, dB of the mean MS-SSIM per quality), over the
bitrates both cover.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.curves import Curve, finite_mean, merge_json_entry
from benchmarks.datasets import dataset_name, list_images, load_rgb, resolve_dataset
from benchmarks.metrics import compare, msssim_db
from benchmarks.report import bd_msssim_rate, bd_psnr_rate
from neuralcodec import api, codec, refine, zoo
from neuralcodec.bdrate import bd_rate
from neuralcodec.errors import ModelNotFoundError
from neuralcodec.greedy_rounding import greedy_settings
from neuralcodec.machine import cpu_name
from neuralcodec.zoo import load_model

FULL_SIZE_IMAGE = "kodim01.png"  # 768 x 512
FULL_SIZE_QUALITY = 50.0


def device_name(device: str) -> str:
    """The accelerator's name for a CUDA run, else "cpu"."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return "cpu"


def centre_crop(img: np.ndarray, size: int) -> np.ndarray:
    if size <= 0:
        return img
    h, w = img.shape[:2]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return np.ascontiguousarray(img[top : top + size, left : left + size])


def iterations(effort: int) -> int:
    """SGA iterations of ``effort``."""
    return 0 if effort == 0 else refine.SCHEDULES[effort].iterations


def greedy_rounds(effort: int) -> int:
    """Rounds of greedy rounding of ``effort`` (after its SGA iterations)."""
    return 0 if effort == 0 else refine.SCHEDULES[effort].greedy_rounds


def work(effort: int) -> float:
    """What time grows with, in SGA iterations: a greedy round costs about two (a gradient pass,
    a curvature estimate on a block, a scoring pass)."""
    return iterations(effort) + 2.0 * greedy_rounds(effort)


def encode_one(img: np.ndarray, quality: float, model: str, effort: int, device: str = "cpu") -> dict:
    """Encode, decode with the unchanged decoder, measure.

    ``j_change``: refinement's own scoring (float32 g_s, table bits); ``j_file``: the model's
    objective from the file's real size and the decoder's real output.
    """
    refine.TRACE = [] if effort else None
    start = time.perf_counter()
    data = api.compress(img, quality, model, device, effort=effort)
    seconds = time.perf_counter() - start
    trace, refine.TRACE = refine.TRACE, None
    decoded = np.asarray(api.decompress(data, device="cpu", model=model).convert("RGB"))
    row = {"bpp": len(data) * 8 / (img.shape[0] * img.shape[1]), "encode_s": seconds}
    row.update(compare(img, decoded))
    loaded = load_model(model)
    lmbda = float(loaded.transforms.lambda_at(torch.tensor([codec.quality_to_level(loaded, quality)])))
    if loaded.config.metric == "mse":
        distortion = float(np.mean((decoded.astype(np.float64) - img) ** 2))
    else:
        distortion = 1.0 - row["ms-ssim-rgb"]
    row["j_file"] = lmbda * distortion + row["bpp"]
    if trace:
        start_j, best_j = trace[0][1], min(t[1] for t in trace)
        row["j_change"] = best_j / start_j - 1.0
    return row


def curve(rows: list[dict], key: str) -> tuple[list[float], list[float]]:
    """Per-quality means of bpp and quality (CompressAI's convention: mean of per-image values)."""
    qualities = sorted({r["quality"] for r in rows})
    rate = [float(np.mean([r["bpp"] for r in rows if r["quality"] == q])) for q in qualities]
    if key == "psnr":
        value = [float(np.mean([r["psnr-rgb"] for r in rows if r["quality"] == q])) for q in qualities]
    else:
        value = [
            float(np.mean([msssim_db(r["ms-ssim-rgb"]) for r in rows if r["quality"] == q]))
            for q in qualities
        ]
    return rate, value


def refinement_setup(model: str, effort: int) -> dict:
    """What refinement runs at ``effort`` for ``model``: its schedule, its rounds' settings and,
    above effort 0, the algorithm's version (effort 0 rows keep their setup: nothing of
    refinement runs)."""
    schedule = refine.SCHEDULES[effort] if effort else None
    greedy = None
    if schedule is not None and schedule.greedy_rounds:
        metric = zoo.load_model(model).config.metric
        greedy = dataclasses.asdict(greedy_settings(metric, schedule.greedy_rounds))
    setup = {
        "schedule": dataclasses.asdict(schedule) if schedule else None,
        "greedy": greedy,  # the rounds' settings (neuralcodec.greedy_rounding)
    }
    if schedule is not None:
        setup["refine_version"] = refine.ALGORITHM_VERSION
    return setup


def row_setup(model: str, crop: int, device: str, effort: int) -> dict:
    """What one measured encode depends on besides image and quality; resumed rows must match it."""
    weights = zoo.resolve_model_path(model)
    return {
        "weights_sha256": zoo.file_digest(weights).hex(),  # the encoder too, not just the decoder digest
        "crop": crop,
        "device": device_name(device),
        **refinement_setup(model, effort),
    }


def read_rows(path: Path | None) -> list[dict]:
    """Rows saved by earlier runs (JSON lines); a line cut short by a kill is skipped."""
    if path is None or not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def stored_rows(json_path: Path) -> list[dict]:
    """The rows an ``effort.json`` keeps (every section's, each with the setup its section
    recorded for its effort), so that a run whose ``--rows`` file is gone (a fresh clone)
    resumes from what earlier runs committed."""
    if not json_path.exists():
        return []
    rows = []
    for section in json.loads(json_path.read_text()).values():
        setups = section.get("setups", {})
        rows += [
            {**r, "setup": setups[str(r["effort"])]}
            for r in section.get("rows", [])
            if str(r["effort"]) in setups
        ]
    return rows


def measure(
    args: argparse.Namespace, paths: list[Path], qualities: list[float], efforts: list[int]
) -> list[dict]:
    """Every (image, quality, effort) encode, reusing matching rows from ``args.rows`` and appending
    new ones to it as they finish; no new encode starts after ``args.max_minutes``.

    With ``args.rows``, the rows ``args.out/effort.json`` keeps are reused too when they were
    measured with the same setup on the same CPU model and thread count (their timings then
    compare); without it, everything is measured afresh."""
    setups = {e: row_setup(args.model, args.crop, args.device, e) for e in efforts}
    here = {"cpu": cpu_name(), "threads": torch.get_num_threads()}
    committed = [
        r
        for r in (stored_rows(args.out / "effort.json") if args.rows is not None else [])
        if all(r.get(k) == v for k, v in here.items())
    ]
    saved = {
        (r["image"], r["quality"], r["effort"]): r
        for r in committed + read_rows(args.rows)
        if r.get("effort") in setups and r.get("setup") == setups[r["effort"]]
    }
    if saved:
        print(f"resuming: {len(saved)} encodes already measured (in {args.rows} or effort.json)", flush=True)
    if args.rows is not None:
        args.rows.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + 60 * args.max_minutes
    rows = []
    for path in paths:
        img = None
        for q in qualities:
            for e in efforts:
                key = (path.name, q, e)
                if key in saved:
                    rows.append(saved[key])
                    continue
                if time.monotonic() > deadline:
                    return rows
                img = centre_crop(load_rgb(path), args.crop) if img is None else img
                row = {"image": path.name, "quality": q, "effort": e, **encode_one(img, q, args.model, e)}
                row.update(**here, setup=setups[e])
                rows.append(row)
                if args.rows is not None:
                    with args.rows.open("a") as f:
                        f.write(json.dumps(row) + "\n")
                print(
                    f"{path.name} q{q:g} e{e}: {row['bpp']:.4f} bpp, {row['psnr-rgb']:.3f} dB, "
                    f"MS-SSIM {row['ms-ssim-rgb']:.5f}, {row['encode_s']:.2f} s",
                    flush=True,
                )
    return rows


def run(args: argparse.Namespace) -> dict | None:
    """Measure and summarise; None while no image has every quality and effort measured."""
    folder = resolve_dataset(args.dataset)
    paths = list_images(folder, args.limit or None)
    model = load_model(args.model)
    metric = "psnr" if model.config.metric == "mse" else "ms-ssim"
    efforts = [int(e) for e in args.efforts.split(",")]
    qualities = [float(q) for q in args.qualities.split(",")]
    load_before = os.getloadavg()
    rows = measure(args, paths, qualities, efforts)
    measured = {(r["image"], r["quality"], r["effort"]) for r in rows}
    complete = [p.name for p in paths if all((p.name, q, e) in measured for q in qualities for e in efforts)]
    rows = [{k: v for k, v in r.items() if k != "setup"} for r in rows if r["image"] in complete]
    if not complete:
        return None
    summary = {}
    base = [r for r in rows if r["effort"] == 0]
    for e in efforts:
        mine = [r for r in rows if r["effort"] == e]
        entry = {
            "iterations": iterations(e),
            "greedy_rounds": greedy_rounds(e),
            "encode_s": float(np.mean([r["encode_s"] for r in mine])),
            "bpp": float(np.mean([r["bpp"] for r in mine])),
        }
        if e and base:
            entry["bd_rate"] = bd_rate(*curve(base, metric), *curve(mine, metric))
            entry["j_change"] = float(np.mean([r["j_change"] for r in mine]))
            pairs = [
                (r, next(b for b in base if (b["image"], b["quality"]) == (r["image"], r["quality"])))
                for r in mine
            ]
            entry["j_file_change"] = float(np.mean([r["j_file"] / b["j_file"] - 1 for r, b in pairs]))
            entry["j_file_worse_count"] = int(sum(r["j_file"] > b["j_file"] for r, b in pairs))
        summary[str(e)] = entry
    full = {}
    if args.full_size_efforts:
        img = load_rgb(folder / FULL_SIZE_IMAGE)
        for e in (int(v) for v in args.full_size_efforts.split(",")):
            start = time.perf_counter()
            api.compress(img, FULL_SIZE_QUALITY, args.model, args.device, effort=e)
            full[str(e)] = time.perf_counter() - start
            print(f"full size {FULL_SIZE_IMAGE} e{e}: {full[str(e)]:.2f} s", flush=True)
    estimate = estimate_full_size(full)
    return {
        "model": args.model,
        "metric": metric,
        "dataset": dataset_name(args.dataset, folder),
        "images": complete,
        "images_planned": len(paths),
        "crop": args.crop,
        "qualities": qualities,
        "efforts": efforts,
        "schedules": {str(k): dataclasses.asdict(v) for k, v in refine.SCHEDULES.items()},
        "cpu": cpu_name(),
        "device": device_name(args.device),
        "threads": torch.get_num_threads(),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "note": args.note,
        "command": "python -m benchmarks.effort " + " ".join(sys.argv[1:]),
        "setups": {str(e): row_setup(args.model, args.crop, args.device, e) for e in efforts},
        "summary": summary,
        "full_size_measured_s": full,
        "full_size_estimated_s": estimate,
        "rows": rows,
    }


RIVAL = "avif"  # the codec each effort is compared with, where benchmarks.rd measured it


def mean_curve(name: str, results: list[dict]) -> Curve:
    """The per-quality means of results (dicts with ``quality``, ``bpp``, ``psnr-rgb`` and
    ``ms-ssim-rgb``, one per image and quality), averaged as benchmarks.rd averages
    (``finite_mean``)."""
    qualities = sorted({r["quality"] for r in results})

    def mean(key: str) -> list[float]:
        return [finite_mean([r[key] for r in results if r["quality"] == q]) for q in qualities]

    return Curve(name, name, mean("bpp"), mean("psnr-rgb"), mean("ms-ssim-rgb"))


def rival_curve(folder: Path, images: list[str], name: str = RIVAL) -> Curve | None:
    """Codec ``name``'s curve over exactly ``images`` (file names) from benchmarks.rd's per-image
    results in ``folder``; None where they are missing or lack one of the images."""
    path = folder / "per_image" / f"{name}.json"
    if not path.exists():
        return None
    measured = json.loads(path.read_text())["images"]
    stems = [Path(image).stem for image in images]
    if not stems or any(stem not in measured for stem in stems):
        return None
    keys = ("bpp", "psnr-rgb", "ms-ssim-rgb")
    results = [
        {"quality": i, **{key: measured[stem][key][i] for key in keys}}  # one list entry per quality
        for stem in stems
        for i in range(len(measured[stem]["bpp"]))
    ]
    return mean_curve(name, results)


def bd_rates_vs_rival(r: dict, folder: Path) -> dict[str, float | None]:
    """Each effort's BD-rate (%) against ``RIVAL`` on the section's metric, for a section of whole
    images that benchmarks.rd measured the rival on too; {} otherwise."""
    rival = rival_curve(folder, r["images"]) if not r["crop"] else None
    if rival is None:
        return {}
    bd = bd_psnr_rate if r["metric"] == "psnr" else bd_msssim_rate
    return {
        e: bd(
            rival,
            mean_curve(
                f"effort {e}", [x for x in r["rows"] if x["effort"] == int(e) and x["image"] in r["images"]]
            ),
        )
        for e in r["summary"]
    }


def estimate_full_size(measured: dict[str, float]) -> dict[str, float]:
    """Seconds per 768x512 image for every effort: measured, else a least-squares line in ``work``."""
    if len(measured) < 2:
        return dict(measured)
    x = np.array([work(int(e)) for e in measured], dtype=np.float64)
    y = np.array(list(measured.values()), dtype=np.float64)
    slope, intercept = np.polyfit(x, y, 1)
    return {
        str(e): measured.get(str(e), float(intercept + slope * work(e))) for e in range(0, api.MAX_EFFORT + 1)
    }


def proposed_default(r: dict, budget_s: float) -> tuple[int, str]:
    """The measured effort with the best BD-rate whose full-size encode fits ``budget_s``."""
    est = r["full_size_estimated_s"]
    fits = [
        (s.get("bd_rate", 0.0), int(e)) for e, s in r["summary"].items() if e in est and est[e] <= budget_s
    ]
    if not fits:
        return 0, f"no measured effort encodes a 768x512 image within {budget_s:g} s here"
    bd, effort = min(fits)
    return effort, f"BD-rate {bd:+.2f} %, {est[str(effort)]:.1f} s per 768x512 image"


def where_measured(r: dict) -> str:
    """ "CPU: <model>, N threads", with the GPU first when the encodes ran on one."""
    cpu = f"CPU: {r['cpu']}, {r['threads']} thread" + ("" if r["threads"] == 1 else "s")
    device = r.get("device", "cpu")
    return cpu if device == "cpu" else f"GPU: {device} ({cpu})"


def so_far(r: dict) -> str:
    """ " (of N planned; the run goes on)" for a summary of a run not yet measured in full."""
    planned = r.get("images_planned", len(r["images"]))
    return "" if planned == len(r["images"]) else f" (of {planned} planned; the run goes on with --rows)"


def shipped_digest(model: str) -> str | None:
    """SHA-256 (hex) of the weights ``model`` names now, None when they cannot be found."""
    try:
        return zoo.file_digest(zoo.resolve_model_path(model)).hex()
    except (ModelNotFoundError, OSError):  # a scratch file measured once, gone since
        return None


def measured_weights(r: dict) -> str | None:
    """SHA-256 (hex) of the weights a section's encodes used, None where it was not recorded."""
    digests = {setup.get("weights_sha256") for setup in (r.get("setups") or {}).values()}
    return digests.pop() if len(digests) == 1 else None


REFINEMENT_SETUP_KEYS = ("schedule", "greedy", "refine_version")  # what an effort runs, weights aside


def outdated_efforts(r: dict) -> list[int]:
    """The efforts above 0 whose rows in section ``r`` ran other refinement settings (schedule,
    greedy rounding, algorithm version) than the codec runs at that effort now."""
    outdated = []
    for key, setup in sorted((r.get("setups") or {}).items(), key=lambda kv: int(kv[0])):
        if int(key) == 0:
            continue
        current = refinement_setup(r["model"], int(key))
        if any(setup.get(name) != current.get(name) for name in REFINEMENT_SETUP_KEYS):
            outdated.append(int(key))
    return outdated


def weights_sentence(r: dict, now: str | None, outdated: list[int]) -> str:
    """Whether a section measured the weights that ``r['model']`` names now (``now``), and with
    those, which efforts ran earlier refinement settings (``outdated``: ``outdated_efforts``)."""
    measured = measured_weights(r)
    if measured is None:
        return "Weights: not recorded (an early run); not the ones shipped now."
    if measured != now:
        return f"Weights: earlier `{r['model']}` (SHA-256 {measured[:16]}), not the ones shipped now."
    sentence = f"Weights: the shipped `{r['model']}` (SHA-256 {measured[:16]})."
    if outdated:
        sentence += (
            f" Effort {', '.join(map(str, outdated))}: earlier refinement settings than the codec runs now."
        )
    return sentence


def write_markdown(results: dict, path: Path, budget_s: float = 3.0) -> None:
    """effort.md from effort.json's sections: first the sections that measured the weights
    shipped now, then every section with its table and which weights it measured."""
    now = {model: shipped_digest(model) for model in {r["model"] for r in results.values()}}
    shipped_weights = sorted(name for name, r in results.items() if measured_weights(r) == now[r["model"]])
    outdated = {name: outdated_efforts(results[name]) for name in shipped_weights}
    current = [name for name in shipped_weights if not outdated[name]]
    earlier_settings = [name for name in shipped_weights if outdated[name]]
    lines = [
        "# Effort levels: latent refinement vs the single-pass encoder",
        "",
        "Generated by `python -m benchmarks.effort` (see its docstring); BD-rate against effort 0 on each",
        "model's own metric (mse: PSNR; msssim: MS-SSIM dB), real file sizes, decoded by the unchanged",
        "decoder. J: the model's objective λ·D + bpp, mean relative change vs effort 0, as refinement",
        "scores it (g_s as the decoder runs it here, table bits; never above 0 by construction) and from",
        "the files (real size, the decoder's real output); 'worse': encodes whose file J rose.",
        "",
        "Sections that measured the weights and refinement settings shipped now: "
        + (", ".join(f"`{name}`" for name in current) if current else "none yet")
        + "."
        + (
            " The shipped weights, but earlier settings at some efforts (each section says which): "
            + ", ".join(f"`{name}`" for name in earlier_settings)
            + "."
            if earlier_settings
            else ""
        )
        + " The others measured earlier weights (each section says which).",
        "",
    ]
    for name, r in sorted(results.items()):
        crop = f"centre {r['crop']}x{r['crop']} crops" if r["crop"] else "full size"
        dataset = {"kodak": "Kodak"}.get(r.get("dataset", "kodak"), r.get("dataset"))
        lines += [
            f"## `{name}` ({r['metric']})",
            "",
            f"{len(r['images'])} {dataset} images{so_far(r)} ({', '.join(r['images'])}), {crop}, qualities "
            f"{', '.join(f'{q:g}' for q in r['qualities'])}. {where_measured(r)}, "
            f"load average {r['loadavg_before'][0]:.1f} before / {r['loadavg_after'][0]:.1f} after. "
            + weights_sentence(r, now[r["model"]], outdated.get(name, []))
            + (" " + r["note"] if r["note"] else ""),
            "",
        ]
        versus = bd_rates_vs_rival(r, path.parent)
        rival = f" vs {RIVAL.upper()} |" if versus else ""
        lines += [
            f"| effort | SGA iterations (+ greedy rounds) | BD-rate |{rival} J change | file J change "
            "| worse | bpp | encode s/image | s per 768x512 |",
            "|---|---|---|" + ("---|" if versus else "") + "---|---|---|---|---|---|",
        ]
        est, measured = r["full_size_estimated_s"], r["full_size_measured_s"]
        for e, s in sorted(r["summary"].items(), key=lambda kv: int(kv[0])):
            bd = f"{s['bd_rate']:+.2f} %" if "bd_rate" in s else "0 %"
            jc = f"{100 * s['j_change']:+.2f} %" if "j_change" in s else "0 %"
            fj = f"{100 * s['j_file_change']:+.2f} %" if "j_file_change" in s else "0 %"
            worse = str(s.get("j_file_worse_count", "–"))
            full = f"{est[e]:.1f}" + ("" if e in measured else " (extrapolated)") if e in est else "–"
            steps = f"{s['iterations']}" + (f" + {s['greedy_rounds']}" if s.get("greedy_rounds") else "")
            cells = [e, steps, bd, jc, fj, worse, f"{s['bpp']:.4f}", f"{s['encode_s']:.2f}", full]
            if versus:
                cells.insert(3, "–" if versus[e] is None else f"{versus[e]:+.2f} %")
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
        extra = [e for e in est if e not in r["summary"]]
        if extra:
            lines += ["", "Estimated seconds per 768x512 image at the other efforts: "]
            lines[-1] += ", ".join(
                f"{e}: {est[e]:.1f}" + ("" if e in measured else "*") for e in sorted(extra, key=int)
            )
            lines[-1] += (
                " (* extrapolated from the measured ones, linear in iterations, a greedy round"
                " counted as two)."
            )
        effort, why = proposed_default(r, budget_s)
        lines += ["", f"Proposed default on this CPU (best BD-rate within {budget_s:g} s per Kodak image): "]
        lines[-1] += f"**effort {effort}** ({why})."
        lines.append("")
    path.write_text("\n".join(lines) + "\n")


def encoding_parser(description: str | None) -> argparse.ArgumentParser:
    """The options every benchmark of one model's encoder takes: --model, --dataset, --device,
    --threads and --note."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="msssim")
    parser.add_argument("--dataset", default="kodak")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (encoding and refinement)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    parser.add_argument("--note", default="")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = encoding_parser(__doc__)
    parser.add_argument("--limit", type=int, default=4, help="first N images; 0: all")
    parser.add_argument("--crop", type=int, default=256, help="centre crop side; 0: full images")
    parser.add_argument("--qualities", default="20,40,60,80")
    parser.add_argument("--efforts", default="0,1,3,6,9")
    parser.add_argument(
        "--full-size-efforts", default="0,1,2,3", help="efforts timed on one full image; '' skips"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/kodak"))
    parser.add_argument("--tag", default="", help="suffix of this run's key in effort.json (e.g. a subset)")
    parser.add_argument("--budget", type=float, default=3.0, help="seconds per 768x512 image for the default")
    parser.add_argument("--report-only", action="store_true", help="rewrite effort.md from effort.json")
    parser.add_argument(
        "--rows",
        type=Path,
        help="JSON-lines file of measured encodes: each is appended as it finishes, and a later run "
        "with the same weights, crop, device and schedules skips those already there, and those "
        "effort.json keeps from the same CPU model and thread count (a full run spread over "
        "several invocations)",
    )
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=float("inf"),
        help="start no encode after this long; the summary covers the images measured in full",
    )
    args = parser.parse_args(argv)
    json_path, md_path = args.out / "effort.json", args.out / "effort.md"
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.report_only:
        results = run(args)
        if results is None:
            print(f"no image has every quality and effort measured yet; rows so far: {args.rows}")
            return
        report = functools.partial(write_markdown, path=md_path, budget_s=args.budget)
        merge_json_entry(json_path, args.model + args.tag, results, report)
    else:
        write_markdown(json.loads(json_path.read_text()), md_path, args.budget)
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
