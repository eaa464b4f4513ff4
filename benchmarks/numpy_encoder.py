"""The numpy encoder (no torch) against the torch encoder at effort 0: bytes, PSNR, symbols and
BD-rate over a dataset, and the seconds of one encode each in a cold process.

    python -m benchmarks.numpy_encoder --dataset kodak --model mse

The torch encoder runs its transforms in float32 (NEURALCODEC_TRANSFORMS=float32), as the
numpy encoder does. Both files of each image are decoded by the torch decoder for PSNR; the
numpy encoder's files are also decoded by the numpy decoder, which must give the same pixels
to within one level. Prints a table; writes nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["NEURALCODEC_TRANSFORMS"] = "float32"  # before the codec reads it

import numpy as np  # noqa: E402

import neuralcodec  # noqa: E402
from benchmarks.datasets import list_images, load_rgb, resolve_dataset  # noqa: E402
from neuralcodec import numpy_decoder, numpy_encoder  # noqa: E402
from neuralcodec.bdrate import bd_rate  # noqa: E402
from neuralcodec.container import unpack  # noqa: E402
from neuralcodec.latent_codecs import file_latents  # noqa: E402

NUMPY_COMMAND = (
    "import sys; sys.modules['torch'] = None\n"
    "from neuralcodec import numpy_encoder\n"
    "open(sys.argv[2], 'wb').write(numpy_encoder.compress(sys.argv[1], float(sys.argv[3]), sys.argv[4]))\n"
)


def psnr(decoded: np.ndarray, original: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / np.mean((decoded.astype(np.float64) - original) ** 2)))


def latents(data: bytes, model: str) -> np.ndarray:
    container = unpack(data)
    return file_latents(numpy_decoder.model_for(container.header, model), container)


def measure(path: Path, quality: float, model: str) -> dict[str, float]:
    """One image at one quality: both encoders' bytes and PSNR, and how many ŷ agree."""
    rgb = load_rgb(path)
    theirs = neuralcodec.compress(rgb, quality, model, "cpu", effort=0)
    ours = numpy_encoder.compress(rgb, quality, model)
    ours_torch = np.asarray(neuralcodec.decompress(ours, "cpu", model))
    ours_numpy = np.asarray(numpy_decoder.decompress(ours, model))
    if np.abs(ours_torch.astype(int) - ours_numpy).max() > 1:
        raise AssertionError(f"{path.name} q{quality}: the two decoders differ by more than one level")
    return {
        "pixels": rgb.shape[0] * rgb.shape[1],
        "torch_bytes": len(theirs),
        "numpy_bytes": len(ours),
        "torch_psnr": psnr(np.asarray(neuralcodec.decompress(theirs, "cpu", model)), rgb),
        "numpy_psnr": psnr(ours_torch, rgb),
        "same_latents": float(np.mean(latents(ours, model) == latents(theirs, model))),
    }


def cold_seconds(command: list[str], repeats: int) -> float:
    """Median wall seconds of ``command`` run ``repeats`` times, each a fresh process."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="kodak", help="kodak or a folder of images")
    parser.add_argument("--model", default="mse", help="shipped model name or weights file")
    parser.add_argument("--qualities", default="25,50,75,95", help="comma-separated, 0..100")
    parser.add_argument("--limit", type=int, help="first N images only")
    parser.add_argument("--repeats", type=int, default=3, help="cold encodes timed per encoder (0: none)")
    args = parser.parse_args(argv)
    qualities = [float(q) for q in args.qualities.split(",")]
    images = list_images(resolve_dataset(args.dataset), args.limit)

    print(
        "| quality | torch bpp | numpy bpp | bytes Δ total | bytes Δ max | torch PSNR | numpy PSNR "
        "| PSNR Δ max | ŷ equal |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    curves: dict[str, tuple[list[float], list[float]]] = {"torch": ([], []), "numpy": ([], [])}
    for q in qualities:
        rows = [measure(path, q, args.model) for path in images]
        total = {k: sum(r[k] for r in rows) for k in ("torch_bytes", "numpy_bytes")}
        bytes_max = max(abs(r["numpy_bytes"] / r["torch_bytes"] - 1) for r in rows) * 100
        psnr_max = max(abs(r["numpy_psnr"] - r["torch_psnr"]) for r in rows)
        same = min(r["same_latents"] for r in rows) * 100
        for name in curves:
            bpp = statistics.mean(r[f"{name}_bytes"] * 8 / r["pixels"] for r in rows)
            quality = statistics.mean(r[f"{name}_psnr"] for r in rows)
            curves[name][0].append(bpp)
            curves[name][1].append(quality)
        print(
            f"| {q:g} | {curves['torch'][0][-1]:.4f} | {curves['numpy'][0][-1]:.4f} "
            f"| {(total['numpy_bytes'] / total['torch_bytes'] - 1) * 100:+.3f} % | {bytes_max:.4f} % "
            f"| {curves['torch'][1][-1]:.4f} | {curves['numpy'][1][-1]:.4f} | {psnr_max:.4f} dB "
            f"| ≥ {same:.4f} % |"
        )
    if len(qualities) > 1:
        rate = bd_rate(*curves["torch"], *curves["numpy"])
        print(f"\nBD-rate numpy vs torch encoder (PSNR): {rate:+.3f} %")
    print(f"({len(images)} images, model {args.model}; Δ max: the largest of any one image)")

    if args.repeats:
        image = str(images[0])
        with tempfile.TemporaryDirectory() as folder:
            out = str(Path(folder) / "x.nc")
            q = str(qualities[len(qualities) // 2])
            ours = cold_seconds(
                [sys.executable, "-c", NUMPY_COMMAND, image, out, q, args.model], args.repeats
            )
            ncodec = [sys.executable, "-m", "neuralcodec.cli", "compress", image, out, "-f", "-e", "0"]
            theirs = cold_seconds(ncodec + ["-q", q, "--model", args.model], args.repeats)
        print(f"\ncold encode of {images[0].name} at quality {q} (median of {args.repeats} processes):")
        print(f"  numpy encoder (torch unimportable): {ours:.2f} s")
        print(f"  ncodec compress -e 0 (torch, float32): {theirs:.2f} s")


if __name__ == "__main__":
    main()
