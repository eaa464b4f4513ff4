"""Speed and memory: encode/decode seconds and MP/s, warm in-process and as a cold ``ncodec`` command.

    python -m benchmarks.speed --dataset kodak --limit 4

Each codec is measured in its own worker process, so the peak RSS reported is that codec's
alone (interpreter, libraries and model included). Compared: neuralcodec (every shipped
model), CompressAI's reference compress()/decompress() on a same-sized mean-scale hyperprior
(random init: the time does not depend on the weights' values), and Pillow JPEG/WebP/AVIF.
Also reports the entropy coder's overhead (actual bits / the model's estimated bits) and, on
kodim01, neuralcodec's seconds (warm and as a cold command) beside CompressAI's reference.
Writes speed.json and speed.md; ``--report-only`` rewrites speed.md from speed.json.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.codecs import build_codecs, model_spec, neuralcodec_codecs
from benchmarks.curves import write_json
from benchmarks.datasets import (
    REPO_ROOT,
    dataset_name,
    display_path,
    list_images,
    load_rgb,
    resolve_dataset,
)
from neuralcodec.machine import cpu_name

SPEED_CODECS = ("neuralcodec", "compressai", "jpeg", "webp", "avif")
RESULTS_ROOT = REPO_ROOT / "benchmarks" / "results"
COMPARE_IMAGE = "kodim01"
PAD = 64  # the reference hyperprior downsamples by 64 overall (4 stride-2 + 2 stride-2 in h_a)


@dataclass
class Subject:
    """Something to time: encode to an opaque payload, measure its size, decode it back."""

    name: str
    label: str
    encode: Callable[[np.ndarray], Any]
    decode: Callable[[Any], np.ndarray]
    size: Callable[[Any], int] = len
    sync: Callable[[], None] = lambda: None
    extra: Callable[[np.ndarray], dict[str, float]] | None = None  # untimed per-image extras
    info: dict[str, Any] = field(default_factory=dict)


def _cuda_sync(device: str) -> Callable[[], None]:
    """GPU work is asynchronous: time only after the queue has drained."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.synchronize
    return lambda: None


def compressai_reference(device: str) -> Subject:
    """CompressAI MeanScaleHyperprior(N=128, M=192) through its own compress()/decompress()."""
    import torch
    import torch.nn.functional as F
    from compressai.models import MeanScaleHyperprior

    torch.manual_seed(0)
    net = MeanScaleHyperprior(N=128, M=192).eval().to(device)
    net.update(force=True)

    def encode(img: np.ndarray) -> tuple[Any, Any, int, int]:
        x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).unsqueeze(0).to(device).float() / 255
        h, w = img.shape[:2]
        x = F.pad(x, (0, -w % PAD, 0, -h % PAD), mode="constant", value=0)
        with torch.no_grad():
            out = net.compress(x)
        return out["strings"], out["shape"], h, w

    def decode(payload: tuple[Any, Any, int, int]) -> np.ndarray:
        strings, shape, h, w = payload
        with torch.no_grad():
            x_hat = net.decompress(strings, shape)["x_hat"][0, :, :h, :w]
        return x_hat.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()

    def size(payload: tuple[Any, Any, int, int]) -> int:
        return sum(len(s) for group in payload[0] for s in group)

    import compressai

    return Subject(
        "compressai-msh",
        "CompressAI MeanScaleHyperprior(128, 192) compress()/decompress()",
        encode,
        decode,
        size,
        _cuda_sync(device),
        info={
            "compressai": compressai.__version__,
            "init": "random (seed 0)",
            "bytes": "bitstreams, no header",
        },
    )


def _stats_value(stats: Any, key: str) -> float:
    return float(stats[key] if isinstance(stats, dict) else getattr(stats, key))


def _compress_with_stats(api: Any) -> Callable[..., tuple[bytes, Any]] | None:
    """Top-level ``neuralcodec.compress_with_stats`` or ``neuralcodec.codec.compress_with_stats``."""
    for owner in (api, "neuralcodec.codec"):
        try:
            mod = importlib.import_module(owner) if isinstance(owner, str) else owner
            fn = getattr(mod, "compress_with_stats", None)
        except Exception:
            fn = None
        if callable(fn):
            return fn
    return None


def neuralcodec_subjects(
    device: str, quality: float, api: Any | None = None, models: Sequence[str] | None = None
) -> tuple[list[Subject], list[str]]:
    """One subject per model; its extra() gives the entropy-coding overhead of each image."""
    codecs, notes = neuralcodec_codecs(api=api, device=device, models=models)
    subjects = []
    for codec in codecs:
        with_stats = _compress_with_stats(codec.api)

        def extra(img: np.ndarray, codec: Any = codec, with_stats: Any = with_stats) -> dict[str, float]:
            if with_stats is None:
                return {}
            from PIL import Image

            _, stats = with_stats(Image.fromarray(img), quality, codec.model)
            est, act = _stats_value(stats, "estimated_bits"), _stats_value(stats, "actual_bits")
            return {
                "estimated_bits": est,
                "actual_bits": act,
                "overhead": act / est if est > 0 else float("nan"),
            }

        subjects.append(
            Subject(
                codec.name,
                codec.label,
                lambda img, c=codec: c.encode(img, quality),
                codec.decode,
                len,
                _cuda_sync(device),
                extra,
                info=codec.info(),
            )
        )
    if codecs and _compress_with_stats(codecs[0].api) is None:
        notes.append("entropy-coding overhead skipped: neuralcodec has no compress_with_stats()")
    return subjects, notes


def classical_subjects(names: Sequence[str], quality: float) -> tuple[list[Subject], list[str]]:
    codecs, notes = build_codecs(names)
    return [
        Subject(c.name, c.label, lambda img, c=c: c.encode(img, quality), c.decode, info=c.info())
        for c in codecs
    ], notes


def make_subjects(name: str, device: str, quality: float) -> tuple[list[Subject], list[str]]:
    """Subjects for one ``--codecs`` entry (neuralcodec expands to one per model)."""
    if name == "neuralcodec" or name.startswith("neuralcodec:"):
        return neuralcodec_subjects(device, quality, models=model_spec(name))
    if name == "compressai":
        try:
            return [compressai_reference(device)], []
        except Exception as exc:
            return [], [f"compressai skipped: {type(exc).__name__}: {exc}"]
    return classical_subjects([name], quality)


def _timed(fn: Callable[[], Any], sync: Callable[[], None]) -> tuple[Any, float]:
    sync()
    t0 = time.perf_counter()
    out = fn()
    sync()
    return out, time.perf_counter() - t0


def measure(subject: Subject, images: Sequence[tuple[str, np.ndarray]], repeats: int = 3) -> dict[str, Any]:
    """Warm in-process timing: one untimed-for-the-mean first call, then the median of ``repeats`` runs."""
    first_img = images[0][1]
    payload, first_enc = _timed(lambda: subject.encode(first_img), subject.sync)
    _, first_dec = _timed(lambda: subject.decode(payload), subject.sync)
    rows = []
    for name, img in images:
        enc_times, dec_times = [], []
        for _ in range(max(1, repeats)):
            payload, t_enc = _timed(lambda img=img: subject.encode(img), subject.sync)
            decoded, t_dec = _timed(lambda p=payload: subject.decode(p), subject.sync)
            enc_times.append(t_enc)
            dec_times.append(t_dec)
        if decoded.shape != img.shape:
            raise RuntimeError(f"{subject.name}: decoded {decoded.shape}, expected {img.shape}")
        h, w = img.shape[:2]
        mp = h * w / 1e6
        nbytes = subject.size(payload)
        enc, dec = statistics.median(enc_times), statistics.median(dec_times)
        row = {
            "image": name,
            "width": w,
            "height": h,
            "bytes": nbytes,
            "bpp": nbytes * 8 / (h * w),
            "encode_s": enc,
            "decode_s": dec,
            "encode_mps": mp / enc,
            "decode_mps": mp / dec,
        }
        if subject.extra is not None:
            row.update(subject.extra(img))
        rows.append(row)
    total_mp = sum(r["width"] * r["height"] for r in rows) / 1e6
    total_enc, total_dec = sum(r["encode_s"] for r in rows), sum(r["decode_s"] for r in rows)
    return {
        "label": subject.label,
        "info": subject.info,
        "per_image": rows,
        "first_encode_s": first_enc,
        "first_decode_s": first_dec,
        "mean_encode_s": total_enc / len(rows),
        "mean_decode_s": total_dec / len(rows),
        "encode_mps": total_mp / total_enc,
        "decode_mps": total_mp / total_dec,
        "mean_bpp": float(np.mean([r["bpp"] for r in rows])),
    }


def run_worker(args: argparse.Namespace) -> None:
    """Child-process side: measure one --codecs entry and write its JSON."""
    uses_torch = args.worker in ("neuralcodec", "compressai")  # Pillow codecs' RSS must not include torch
    if uses_torch and args.threads:
        import torch

        torch.set_num_threads(args.threads)
    images = [(Path(p).stem, load_rgb(Path(p))) for p in args.images.split(os.pathsep)]
    subjects, notes = make_subjects(args.worker, args.device, args.quality)
    gpu = uses_torch and args.device.startswith("cuda")
    results = {}
    for subject in subjects:
        if gpu:
            import torch

            torch.cuda.reset_peak_memory_stats()
        results[subject.name] = measure(subject, images, args.repeats)
        if gpu:
            results[subject.name]["gpu_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    Path(args.result).write_text(json.dumps({"results": results, "notes": notes}))


# Linux carries the parent's peak RSS over into a child across fork/vfork + exec, so a child started
# straight from this (torch-sized) process would report at least our own peak. A tiny launcher
# process forks the real command instead and reports its wait4() rusage and wall time.
_LAUNCHER = """
import json, os, sys, time
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - t0
code = os.waitstatus_to_exitcode(status)
with open(sys.argv[1], "w") as f:
    json.dump({"seconds": seconds, "returncode": code, "maxrss_kib": usage.ru_maxrss}, f)
sys.exit(code)
"""


def run_process(
    cmd: Sequence[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run a command; its wall seconds, exit code, output and own peak RSS (MiB, Linux)."""
    with tempfile.TemporaryDirectory(prefix="run-") as tmp:
        stats_path, out_path, err_path = (Path(tmp) / n for n in ("stats.json", "out", "err"))
        with out_path.open("wb") as out, err_path.open("wb") as err:  # files: no pipe can fill up
            code = subprocess.call(
                [sys.executable, "-c", _LAUNCHER, str(stats_path), *cmd],
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=err,
            )
        stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
        return {
            "seconds": stats.get("seconds", float("nan")),
            "returncode": stats.get("returncode", code),
            "peak_rss_mib": stats.get("maxrss_kib", 0) / 1024,  # Linux reports KiB
            "stdout": out_path.read_text(errors="replace"),
            "stderr": err_path.read_text(errors="replace"),
        }


def _child_env() -> dict[str, str]:
    """Our environment, with the repo importable from any working directory."""
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


def worker_in_subprocess(
    name: str, image_paths: Sequence[Path], args: argparse.Namespace
) -> tuple[dict[str, Any], list[str]]:
    """Measure one --codecs entry in a fresh interpreter (so its peak RSS is its own)."""
    with tempfile.TemporaryDirectory(prefix="speed-") as tmp:
        result_path = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "benchmarks.speed", "--worker", name, "--result", str(result_path)]
        cmd += ["--images", os.pathsep.join(str(p) for p in image_paths), "--quality", str(args.quality)]
        cmd += ["--repeats", str(args.repeats), "--device", args.device]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        proc = run_process(cmd, cwd=REPO_ROOT, env=_child_env())
        if proc["returncode"] != 0 or not result_path.exists():
            tail = proc["stderr"].strip().splitlines()[-1:] or ["no output"]
            return {}, [f"{name} worker failed (exit {proc['returncode']}): {tail[0]}"]
        data = json.loads(result_path.read_text())
    for res in data["results"].values():
        res["peak_rss_mib"] = proc["peak_rss_mib"]
    return data["results"], data["notes"]


def ncodec_command(spec: str | None) -> list[str] | None:
    """The ``ncodec`` CLI: --ncodec-cmd, else the installed script, else ``python -m neuralcodec.cli``."""
    if spec:
        return shlex.split(spec)
    found = shutil.which("ncodec")
    if found:
        return [found]
    try:
        importlib.import_module("neuralcodec.cli")
    except Exception:
        return None
    return [sys.executable, "-m", "neuralcodec.cli"]


def cold_cli(
    cmd: Sequence[str], image_paths: Sequence[Path], model: str, quality: float, device: str, repeats: int = 1
) -> dict[str, Any]:
    """Cold runs: ``ncodec compress in.png -o out.nc -f -e 0`` (the single-pass encoder, as the warm
    runs time it), ``ncodec decompress out.nc -o out.png -f``."""
    rows = []
    env = _child_env()
    with tempfile.TemporaryDirectory(prefix="ncodec-cold-") as tmp:
        for path in image_paths:
            nc, png = Path(tmp) / f"{path.stem}.nc", Path(tmp) / f"{path.stem}.png"
            comp = [*cmd, "compress", str(path), "-o", str(nc), "-f", "-q", f"{quality:g}", "-e", "0"]
            comp += ["--model", model]
            decomp = [*cmd, "decompress", str(nc), "-o", str(png), "-f", "--model", model]
            if device != "auto":
                comp += ["--device", device]
                decomp += ["--device", device]
            enc_runs, dec_runs = [], []
            for _ in range(max(1, repeats)):
                enc_runs.append(run_process(comp, cwd=REPO_ROOT, env=env))
                dec_runs.append(run_process(decomp, cwd=REPO_ROOT, env=env))
            failed = [r for r in enc_runs + dec_runs if r["returncode"] != 0]
            if failed:
                raise RuntimeError(f"ncodec failed on {path.name}: {failed[0]['stderr'].strip()[-300:]}")
            w, h = _image_size(path)
            mp = w * h / 1e6
            enc = statistics.median(r["seconds"] for r in enc_runs)
            dec = statistics.median(r["seconds"] for r in dec_runs)
            rows.append(
                {
                    "image": path.stem,
                    "width": w,
                    "height": h,
                    "bytes": nc.stat().st_size,
                    "encode_s": enc,
                    "decode_s": dec,
                    "encode_mps": mp / enc,
                    "decode_mps": mp / dec,
                    "encode_peak_rss_mib": max(r["peak_rss_mib"] for r in enc_runs),
                    "decode_peak_rss_mib": max(r["peak_rss_mib"] for r in dec_runs),
                }
            )
    return {
        "command": " ".join([Path(cmd[0]).name, *cmd[1:]]),  # no machine-specific install path
        "model": model,
        "per_image": rows,
        "mean_encode_s": float(np.mean([r["encode_s"] for r in rows])),
        "mean_decode_s": float(np.mean([r["decode_s"] for r in rows])),
        "peak_rss_mib": max(max(r["encode_peak_rss_mib"], r["decode_peak_rss_mib"]) for r in rows),
    }


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.size


def entropy_overhead(results: dict[str, Any]) -> dict[str, Any]:
    """actual/estimated bits per image and their mean, for every subject that reported them."""
    out = {}
    for name, res in results.items():
        rows = [r for r in res["per_image"] if "overhead" in r]
        if rows:
            ratios = [r["overhead"] for r in rows]
            out[name] = {
                "per_image": {r["image"]: r["overhead"] for r in rows},
                "mean": float(np.mean(ratios)),
                "min": float(np.min(ratios)),
                "max": float(np.max(ratios)),
            }
    return out


def compressai_comparison(
    results: dict[str, Any], cold: dict[str, Any] | None, image: str
) -> dict[str, Any] | None:
    """Seconds on one image: neuralcodec warm and cold vs CompressAI's compress()/decompress()."""

    def row(res: dict[str, Any] | None) -> dict[str, float] | None:
        found = [r for r in (res or {}).get("per_image", []) if r["image"] == image]
        return {"encode_s": found[0]["encode_s"], "decode_s": found[0]["decode_s"]} if found else None

    ours_name = next((n for n in results if n.startswith("neuralcodec-")), None)
    ours = row(results.get(ours_name)) if ours_name else None
    ref = row(results.get("compressai-msh"))
    if ours is None and ref is None:
        return None
    out: dict[str, Any] = {"image": image, "neuralcodec_model": ours_name, "neuralcodec_in_process": ours}
    out["ncodec_cold_cli"] = row(cold)
    out["compressai_in_process"] = ref
    if ours and ref:
        out["speedup_in_process"] = {k: ref[k] / ours[k] for k in ("encode_s", "decode_s")}
    if out["ncodec_cold_cli"] and ref:
        out["speedup_cold_cli"] = {k: ref[k] / out["ncodec_cold_cli"][k] for k in ("encode_s", "decode_s")}
    return out


def _f(v: Any, fmt: str) -> str:
    return "—" if v is None else format(v, fmt)


def speed_markdown(report: dict[str, Any]) -> str:
    meta = report["meta"]
    lines = [
        f"# Speed and memory ({meta['dataset']}, {meta['n_images']} images, quality {meta['quality']:g})",
        "",
        f"Device `{meta['device']}`, CPU {meta['cpu']}, torch threads {meta['torch_threads']}. "
        f"Warm in-process: median of {meta['repeats']} runs per image after one warm-up call; "
        "peak RSS = the whole worker process (interpreter, libraries, model). Times vary with machine load.",
        "",
    ]
    lines += [f"- {n}" for n in report["notes"]]
    if report["notes"]:
        lines.append("")
    lines += [
        "## Warm, in-process",
        "",
        "| codec | encode s/img | decode s/img | encode MP/s | decode MP/s | first encode / decode s | "
        "peak RSS MiB | bpp |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["in_process"].values():
        gpu = f" (GPU {r['gpu_peak_mib']:.0f})" if "gpu_peak_mib" in r else ""
        lines.append(
            f"| {r['label']} | {r['mean_encode_s']:.4f} | {r['mean_decode_s']:.4f} | {r['encode_mps']:.2f} | "
            f"{r['decode_mps']:.2f} | {r['first_encode_s']:.3f} / {r['first_decode_s']:.3f} | "
            f"{_f(r.get('peak_rss_mib'), '.0f')}{gpu} | {r['mean_bpp']:.3f} |"
        )
    cold = report.get("cold_cli")
    if cold:
        lines += [
            "",
            f"## Cold command line (`{cold['command']}`, model {cold['model']}, a fresh process per command)",
            "",
            "| image | compress s | decompress s | compress MP/s | decompress MP/s | peak RSS MiB |",
            "|---|---|---|---|---|---|",
        ]
        for r in cold["per_image"]:
            rss = max(r["encode_peak_rss_mib"], r["decode_peak_rss_mib"])
            lines.append(
                f"| {r['image']} | {r['encode_s']:.3f} | {r['decode_s']:.3f} | {r['encode_mps']:.2f} | "
                f"{r['decode_mps']:.2f} | {rss:.0f} |"
            )
    overhead = report.get("entropy_overhead")
    if overhead:
        lines += [
            "",
            "## Entropy-coding overhead (actual coded bits / model's estimated bits)",
            "",
            "| model | mean | min | max |",
            "|---|---|---|---|",
        ]
        for name, o in overhead.items():
            lines.append(f"| {name} | {o['mean']:.4f} | {o['min']:.4f} | {o['max']:.4f} |")
    cmp_ = report.get("compressai_comparison")
    if cmp_:
        ours, cold_row, ref = (
            cmp_["neuralcodec_in_process"],
            cmp_["ncodec_cold_cli"],
            cmp_["compressai_in_process"],
        )
        lines += [
            "",
            f"## {cmp_['image']}: neuralcodec vs CompressAI reference",
            "",
            "| | encode s | decode s |",
            "|---|---|---|",
            f"| {cmp_['neuralcodec_model'] or 'neuralcodec (not available)'}, in-process | "
            f"{_f(ours and ours['encode_s'], '.4f')} | {_f(ours and ours['decode_s'], '.4f')} |",
            f"| `ncodec` cold command | {_f(cold_row and cold_row['encode_s'], '.3f')} | "
            f"{_f(cold_row and cold_row['decode_s'], '.3f')} |",
            "| CompressAI MeanScaleHyperprior compress() / decompress() | "
            f"{_f(ref and ref['encode_s'], '.4f')} | {_f(ref and ref['decode_s'], '.4f')} |",
        ]
        for key, label in (("speedup_in_process", "in-process"), ("speedup_cold_cli", "cold command")):
            s = cmp_.get(key)
            if s:
                lines.append(
                    f"| speedup, CompressAI time / neuralcodec {label} time | {s['encode_s']:.2f}× | "
                    f"{s['decode_s']:.2f}× |"
                )
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="kodak", help="'kodak' or a folder of images")
    p.add_argument("--limit", type=int, default=4, help="first N images (default 4; 0 = all)")
    p.add_argument("--codecs", default=",".join(SPEED_CODECS), help=f"subset of {','.join(SPEED_CODECS)}")
    p.add_argument("--quality", type=float, default=75.0, help="0..100 quality for every codec (default 75)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per image (median is reported)")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda")
    p.add_argument("--threads", type=int, default=None, help="torch threads in the workers")
    p.add_argument("--no-cold", action="store_true", help="skip the cold `ncodec` command timing")
    p.add_argument("--cold-repeats", type=int, default=1)
    p.add_argument(
        "--ncodec-cmd",
        default=None,
        help="how to run the CLI (default: ncodec, else python -m neuralcodec.cli)",
    )
    p.add_argument(
        "--out", type=Path, default=None, help="results folder (default benchmarks/results/<dataset>)"
    )
    p.add_argument("--kodak-dir", type=Path, default=None)
    p.add_argument("--cache-dir", type=Path, default=None)
    p.add_argument("--report-only", action="store_true", help="rewrite speed.md from speed.json")
    # internal: the per-codec worker process
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--images", default=None, help=argparse.SUPPRESS)
    p.add_argument("--result", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def write_report(report: dict[str, Any], out_dir: Path) -> str:
    """speed.md from ``report`` (what speed.json holds), written beside it; returns the markdown."""
    markdown = speed_markdown(report)
    (out_dir / "speed.md").write_text(markdown)
    return markdown


def main(argv: Sequence[str] | None = None) -> dict[str, Any] | None:
    args = parse_args(argv)
    if args.report_only:
        out_dir = args.out or RESULTS_ROOT / dataset_name(args.dataset, Path(args.dataset))
        report = json.loads((out_dir / "speed.json").read_text())
        write_report(report, out_dir)
        print(f"wrote {out_dir / 'speed.md'}", file=sys.stderr)
        return report
    if args.device == "auto":
        from benchmarks.metrics import resolve_device

        args.device = str(resolve_device("auto"))
    if args.worker:
        run_worker(args)
        return None
    import torch

    folder = resolve_dataset(args.dataset, kodak_dir=args.kodak_dir, cache_dir=args.cache_dir)
    dname = dataset_name(args.dataset, folder)
    out_dir = args.out or RESULTS_ROOT / dname
    all_paths = list_images(folder)
    paths = all_paths[: args.limit] if args.limit else all_paths
    compare = next((p for p in all_paths if p.stem == COMPARE_IMAGE), paths[0])
    if compare not in paths:
        paths = [compare, *paths[:-1]] if args.limit else [compare, *paths]
    notes: list[str] = []
    in_process: dict[str, Any] = {}
    names = [n.strip() for n in args.codecs.split(",") if n.strip()]
    for name in names:
        print(f"measuring {name} ...", file=sys.stderr)
        results, why = worker_in_subprocess(name, paths, args)
        in_process.update(results)
        notes += why
    cold = None
    nc_subjects = [r for n, r in in_process.items() if n.startswith("neuralcodec-")]
    if nc_subjects and not args.no_cold:
        cmd = ncodec_command(args.ncodec_cmd)
        if cmd is None:
            notes.append("cold CLI skipped: no ncodec command found")
        else:
            print("measuring cold ncodec commands ...", file=sys.stderr)
            try:
                model = nc_subjects[0]["info"]["model"]
                cold = cold_cli(cmd, paths, model, args.quality, args.device, args.cold_repeats)
            except Exception as exc:
                notes.append(f"cold CLI failed: {exc}")
    report = {
        "meta": {
            "dataset": dname,
            "dataset_dir": display_path(folder),
            "images": [p.stem for p in paths],
            "n_images": len(paths),
            "quality": args.quality,
            "repeats": args.repeats,
            "device": args.device,
            "cpu": f"{cpu_name()} ×{os.cpu_count()}",
            "torch": torch.__version__,
            "torch_threads": args.threads or torch.get_num_threads(),
            "python": platform.python_version(),
        },
        "notes": notes,
        "in_process": in_process,
        "cold_cli": cold,
        "entropy_overhead": entropy_overhead(in_process),
        "compressai_comparison": compressai_comparison(in_process, cold, compare.stem),
    }
    write_json(out_dir / "speed.json", report)
    markdown = write_report(report, out_dir)
    print(markdown)
    print(f"wrote {out_dir / 'speed.json'} and {out_dir / 'speed.md'}", file=sys.stderr)
    return report


if __name__ == "__main__":
    main()
