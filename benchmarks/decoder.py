"""Decoder backends side by side: cold ``ncodec decompress`` (numpy against torch), per-pixel
speed on Kodak and on a large image, peak memory, and the transforms' multiply-accumulates per
pixel against the BLAS's measured peak.

    python -m benchmarks.decoder --limit 4 --repeats 3 --large 6000x4000

Files are written once by the full install (torch, effort 0, ``--model``, ``--quality``).
Cold runs alternate the backends file by file (``ncodec decompress F -o F.png -f --backend B``),
so both see the same machine; the ratio is what to compare across machines. In-process speeds
are the best of ``--repeats`` decodes after one warm-up, each backend in its own process (peak
RSS is that process's own). The large image is a mosaic of held-out photos (``--dataset``),
each resized to cover its cell, so its content is real. Writes decoder.json and decoder.md
under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.curves import write_json
from benchmarks.datasets import REPO_ROOT, list_images, resolve_dataset
from benchmarks.speed import _child_env, ncodec_command, run_process
from neuralcodec.machine import cpu_description

BACKENDS = ("numpy", "torch")


def large_mosaic(folder: Path, width: int, height: int, cell: int = 1000) -> np.ndarray:
    """A ``width`` × ``height`` RGB mosaic of the folder's photos, each resized to cover a
    ``cell``-pixel square and centre-cropped to it, in raster order (repeating when short)."""
    from PIL import Image, ImageOps

    paths = list_images(folder)
    cols, rows = -(-width // cell), -(-height // cell)
    out = np.empty((rows * cell, cols * cell, 3), dtype=np.uint8)
    for k in range(rows * cols):
        with Image.open(paths[k % len(paths)]) as img:
            tile = ImageOps.fit(img.convert("RGB"), (cell, cell), Image.Resampling.LANCZOS)
        r, c = divmod(k, cols)
        out[r * cell : (r + 1) * cell, c * cell : (c + 1) * cell] = np.asarray(tile)
    return np.ascontiguousarray(out[:height, :width])


def macs_per_pixel(model: str) -> dict[str, float]:
    """Multiply-accumulates per image pixel of g_s (with its inverse GDNs) and of the exact h_s."""
    from neuralcodec.weights_file import read_weights, resolve_model_path

    state = read_weights(resolve_model_path(model))
    t = state["transforms"]
    g_s = 0.0
    for depth, i in enumerate((0, 2, 4, 6)):  # deconvolutions: input positions per pixel 1/256 .. 1/4
        c_in, c_out, k, _ = t[f"g_s.{i}.weight"].shape
        g_s += c_in * c_out * k * k / 4 ** (4 - depth)
    for depth, i in enumerate((1, 3, 5)):  # inverse GDNs at the outputs of the first three
        g_s += t[f"g_s.{i}.gamma"].shape[0] ** 2 / 4 ** (3 - depth)
    h_s = 0.0
    per_pixel = 1 / 4096  # ẑ positions per pixel
    for layer in state["h_s_exact"]:
        weight = np.asarray(layer["weight"])
        transposed, stride = bool(int(np.asarray(layer["meta"])[5])), int(np.asarray(layer["meta"])[2])
        c_a, c_b, k, _ = weight.shape
        if transposed:  # per input position
            h_s += c_a * c_b * k * k * per_pixel
            per_pixel *= stride * stride
        else:  # per output position
            per_pixel /= stride * stride
            h_s += c_a * c_b * k * k * per_pixel
    return {"g_s": g_s, "h_s": h_s}


def blas_peak_gflops(size: int = 2048, repeats: int = 3) -> dict[str, float]:
    """The best float32 / float64 matrix-product rate of numpy's BLAS on this machine (GFLOP/s)."""
    rates = {}
    for dtype in (np.float32, np.float64):
        a = np.random.default_rng(0).standard_normal((size, size)).astype(dtype)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            a @ a
            best = min(best, time.perf_counter() - start)
        rates[np.dtype(dtype).name] = 2 * size**3 / best / 1e9
    return rates


_WORKER = r"""
import json, sys, time
backend, repeats, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
from neuralcodec.decoding import decompress
rows = []
for path in paths:
    data = open(path, "rb").read()
    image = decompress(data, backend=backend, max_pixels=None)  # warm-up: model loaded, caches filled
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        decompress(data, backend=backend, max_pixels=None)
        best = min(best, time.perf_counter() - start)
    rows.append({"file": path, "pixels": image.width * image.height, "seconds": best})
# VmHWM: this process's own peak (ru_maxrss may carry the parent's high-water mark across exec)
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
print(json.dumps({"rows": rows, "peak_rss_mib": peak}))
"""


def in_process(backend: str, paths: list[Path], repeats: int) -> dict[str, Any]:
    """Best-of-``repeats`` in-process decode seconds per file, in a fresh interpreter."""
    cmd = [sys.executable, "-c", _WORKER, backend, str(repeats), *map(str, paths)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=_child_env(), cwd=REPO_ROOT)
    if done.returncode:
        raise RuntimeError(f"{backend} worker failed: {done.stderr.strip()[-400:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    pixels = sum(r["pixels"] for r in result["rows"])
    seconds = sum(r["seconds"] for r in result["rows"])
    return {**result, "mpx_per_s": pixels / seconds / 1e6}


def cold(commands: dict[str, list[str]], paths: list[Path], repeats: int) -> dict[str, Any]:
    """Cold ``ncodec decompress`` per backend (``commands[backend]``: the ncodec that runs it),
    alternating file by file."""
    runs: dict[str, list[dict[str, Any]]] = {b: [] for b in BACKENDS}
    for _ in range(repeats):
        for path in paths:
            for backend in BACKENDS:
                out = path.with_suffix(f".{backend}.png")
                args = ["decompress", str(path), "-o", str(out), "-f", "--backend", backend]
                done = run_process([*commands[backend], *args])
                if done["returncode"]:
                    raise RuntimeError(f"ncodec --backend {backend} failed: {done['stderr'].strip()[-300:]}")
                runs[backend].append(done)
    return {
        b: {
            "median_s": statistics.median(r["seconds"] for r in runs[b]),
            "peak_rss_mib": max(r["peak_rss_mib"] for r in runs[b]),
        }
        for b in BACKENDS
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.decoder", description=__doc__.splitlines()[0])
    p.add_argument("--kodak", default="kodak", help="Kodak folder or 'kodak'")
    p.add_argument("--limit", type=int, default=4, help="first N Kodak images")
    p.add_argument("--dataset", default="../shared/datasets/qoi_photo_wikipedia", help="photos of the mosaic")
    p.add_argument("--large", default="6000x4000", help="WIDTHxHEIGHT of the large image ('' to skip)")
    p.add_argument("--model", default="mse")
    p.add_argument("--quality", type=float, default=75.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--numpy-ncodec",
        help="the ncodec of an install without torch (VENV/bin/ncodec after `pip install .` there) "
        "for the numpy backend's cold runs (default: this one)",
    )
    p.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "decoder")
    p.add_argument("--report-only", action="store_true", help="rewrite decoder.md from decoder.json")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.report_only:
        report = json.loads((args.out / "decoder.json").read_text())
        (args.out / "decoder.md").write_text(markdown(report))
        return
    import neuralcodec

    kodak = list_images(resolve_dataset(args.kodak), args.limit)
    cmd = ncodec_command(None)
    assert cmd is not None
    report: dict[str, Any] = {
        "cpu": cpu_description(),
        "model": args.model,
        "quality": args.quality,
        "command": "python -m benchmarks.decoder " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    with tempfile.TemporaryDirectory(prefix="decoder-bench-") as tmp:
        files = []
        for path in kodak:
            nc = Path(tmp) / f"{path.stem}.nc"
            nc.write_bytes(neuralcodec.compress(path, args.quality, args.model, effort=0))
            files.append(nc)
        numpy_cmd = shlex.split(args.numpy_ncodec) if args.numpy_ncodec else cmd
        report["cold"] = cold({"numpy": numpy_cmd, "torch": cmd}, files, args.repeats)
        report["cold"]["numpy_install"] = "without torch" if args.numpy_ncodec else "the same as torch's"
        report["kodak"] = {b: in_process(b, files, args.repeats) for b in BACKENDS}
        if args.large:
            width, height = (int(v) for v in args.large.lower().split("x"))
            big = Path(tmp) / "large.nc"
            image = large_mosaic(resolve_dataset(args.dataset), width, height)
            big.write_bytes(neuralcodec.compress(image, args.quality, args.model, effort=0))
            report["large"] = {
                "size": f"{width}x{height}",
                **{b: in_process(b, [big], max(1, args.repeats // 2)) for b in BACKENDS},
            }
    report["macs_per_pixel"] = macs_per_pixel(args.model)
    report["blas_peak_gflops"] = blas_peak_gflops()
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "decoder.json", report)
    (args.out / "decoder.md").write_text(markdown(report))
    print(markdown(report))


def markdown(r: dict[str, Any]) -> str:
    """The report as a Markdown page."""
    cold_runs, kodak = r["cold"], r["kodak"]
    lines = [
        "# Decoder backends",
        "",
        f"CPU: {r['cpu']}. Model `{r['model']}`, quality {r['quality']:g}, effort 0.",
        f"Command: `{r['command']}`.",
        "",
        "| backend | cold `ncodec decompress` (s) | peak RSS (MiB) | in-process Kodak (Mpx/s) |"
        + (f" {r['large']['size']} (Mpx/s) | large peak RSS (MiB) |" if "large" in r else ""),
        "|---|---|---|---|" + ("---|---|" if "large" in r else ""),
    ]
    for b in BACKENDS:
        row = (
            f"| {b} | {cold_runs[b]['median_s']:.2f} | {cold_runs[b]['peak_rss_mib']:.0f} "
            f"| {kodak[b]['mpx_per_s']:.2f} |"
        )
        if "large" in r:
            row += f" {r['large'][b]['mpx_per_s']:.2f} | {r['large'][b]['peak_rss_mib']:.0f} |"
        lines.append(row)
    ratio = cold_runs["numpy"]["median_s"] / cold_runs["torch"]["median_s"]
    install = cold_runs.get("numpy_install", "the same as torch's")
    lines += ["", f"Cold decompress, numpy (its install: {install}) / torch: {ratio:.2f}×."]
    if "large" in r:
        slow = kodak["numpy"]["mpx_per_s"] / r["large"]["numpy"]["mpx_per_s"]
        lines.append(
            f"numpy backend, Kodak per-pixel speed / {r['large']['size']} per-pixel speed: {slow:.2f}."
        )
    macs, peak = r["macs_per_pixel"], r["blas_peak_gflops"]
    lines += [
        "",
        f"Multiply-accumulates per pixel: g_s {macs['g_s']:.0f}, exact h_s {macs['h_s']:.0f} (float64).",
        f"BLAS peak (2048² product): {peak['float32']:.0f} GFLOP/s float32, {peak['float64']:.0f} float64.",
        "Transform work of a whole in-process Kodak decode (2 FLOP per multiply-accumulate):",
    ]
    for b in BACKENDS:
        achieved = (macs["g_s"] + macs["h_s"]) * 2 * kodak[b]["mpx_per_s"] / 1e3  # GFLOP/s
        share = achieved / peak["float32"]
        lines.append(f"{b} {achieved:.0f} GFLOP/s ({share:.0%} of the float32 BLAS peak).")
    lines += ["", "torch runs g_s in bf16 on CPUs with bf16 hardware, so it can pass that peak.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
