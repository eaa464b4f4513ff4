"""Rate–distortion curves and the CompressAI results-file format they are stored in.

One reader for our own results and for the published files under shared/anchors, so a
curve from either source is plotted and BD-rated by the same code.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.metrics import msssim_db

RESULT_KEYS = ("bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time")

# Published curves overlaid on Kodak plots: (path under the anchors dir, label).
DEFAULT_ANCHORS = (
    ("compressai-kodak/jpeg.json", "JPEG (CompressAI, Pillow 7.1.2)"),
    ("compressai-kodak/compressai-bmshj2018-hyperprior_mse_cuda.json", "bmshj2018-hyperprior [mse]"),
    ("compressai-kodak/compressai-bmshj2018-hyperprior_ms-ssim_cuda.json", "bmshj2018-hyperprior [ms-ssim]"),
    ("compressai-kodak/compressai-mbt2018-mean_mse_cuda.json", "mbt2018-mean [mse]"),
    ("compressai-kodak/compressai-mbt2018-mean_ms-ssim_cuda.json", "mbt2018-mean [ms-ssim]"),
)


class SchemaError(ValueError):
    """A results file does not follow the CompressAI results format."""


@dataclass
class Curve:
    """Dataset-average RD points of one codec (one point per quality setting)."""

    name: str
    label: str
    bpp: list[float]
    psnr: list[float]
    msssim: list[float | None]
    encoding_time: list[float] = field(default_factory=list)
    decoding_time: list[float] = field(default_factory=list)
    published: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def msssim_db(self) -> list[float | None]:
        return [None if v is None else msssim_db(v) for v in self.msssim]

    def has_msssim(self) -> bool:
        return any(v is not None for v in self.msssim)


def finite_mean(values: Sequence[float | None]) -> float:
    """Mean of the finite values (CompressAI's convention: undefined ones, such as MS-SSIM of a
    tiny image, are left out); NaN when there are none."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def clean_number(value: float) -> float | None:
    """JSON has no NaN/inf: undefined values (e.g. MS-SSIM of a tiny image) are stored as null."""
    return None if value is None or not math.isfinite(value) else float(value)


def clean_json(obj: Any) -> Any:
    """Recursively replace non-finite floats by None."""
    if isinstance(obj, float):
        return clean_number(obj)
    if isinstance(obj, dict):
        return {k: clean_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean_json(v) for v in obj]
    return obj


def write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(clean_json(obj), indent=2, allow_nan=False) + "\n")


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``folder`` (``flock`` on the folder itself, so no lock
    file is left behind; where ``fcntl`` is missing, no lock)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: side-by-side runs are the user's to keep apart
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def merge_json_entry(
    path: Path, key: str, value: Any, report: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Add or replace ``key`` in the JSON object at ``path`` (created, with its folder, when
    absent; other keys kept as they are) and return the whole object.

    Benchmarks that share a results folder (say both models measured side by side) take turns:
    each holds ``folder_lock`` of the folder while it reads, writes and runs ``report`` (e.g.
    writing a markdown report) on the merged object, so none loses another's entry or reports
    an older object over a newer one. The file is written beside and renamed over ``path``: a
    reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(path.parent):
        merged = json.loads(path.read_text()) if path.exists() else {}
        merged[key] = value
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps(merged, indent=1) + "\n")
        os.replace(partial, path)
        if report is not None:
            report(merged)
    return merged


def validate_result(obj: Any) -> None:
    """Raise SchemaError unless ``obj`` is a CompressAI-style results file written by this harness."""
    if not isinstance(obj, dict):
        raise SchemaError("top level must be an object")
    for key in ("name", "description"):
        if not isinstance(obj.get(key), str):
            raise SchemaError(f"missing string field {key!r}")
    results = obj.get("results")
    if not isinstance(results, dict):
        raise SchemaError("missing object field 'results'")
    lengths = set()
    for key in RESULT_KEYS:
        values = results.get(key)
        if not isinstance(values, list) or not values:
            raise SchemaError(f"results[{key!r}] must be a non-empty list")
        for v in values:
            if v is not None and not (isinstance(v, int | float) and math.isfinite(v)):
                raise SchemaError(f"results[{key!r}] holds a non-number: {v!r}")
        lengths.add(len(values))
    if len(lengths) != 1:
        raise SchemaError(f"results lists have different lengths: {sorted(lengths)}")
    if any(v is None or v <= 0 for v in results["bpp"]):
        raise SchemaError("every bpp must be a positive number")


def curve_from_json(obj: dict[str, Any], name: str | None = None, label: str | None = None) -> Curve:
    """Read either our files or CompressAI's (which give MS-SSIM linear or as ``ms-ssim-db-rgb``)."""
    results = obj["results"]
    n = len(results["bpp"])
    if "ms-ssim-rgb" in results:
        msssim = list(results["ms-ssim-rgb"])
    elif "ms-ssim-db-rgb" in results:
        msssim = [None if v is None else 1 - 10 ** (-v / 10) for v in results["ms-ssim-db-rgb"]]
    else:
        msssim = [None] * n
    meta = obj.get("meta", {})
    return Curve(
        name=name or obj["name"],
        label=label or meta.get("label") or obj["name"],
        bpp=[float(v) for v in results["bpp"]],
        psnr=[float(v) for v in results.get("psnr-rgb", [math.nan] * n)],
        msssim=msssim,
        encoding_time=list(results.get("encoding_time", [])),
        decoding_time=list(results.get("decoding_time", [])),
        meta=meta,
    )


def load_results_dir(folder: Path) -> list[Curve]:
    """Every valid results file directly in ``folder`` (other JSON there, e.g. speed.json, is ignored)."""
    curves = []
    for path in sorted(folder.glob("*.json")):
        try:
            obj = json.loads(path.read_text())
            validate_result(obj)
        except (SchemaError, json.JSONDecodeError, KeyError):
            continue
        curves.append(curve_from_json(obj, name=path.stem))
    return curves


def load_anchors(
    anchors_dir: Path | None, files: tuple[tuple[str, str], ...] = DEFAULT_ANCHORS
) -> list[Curve]:
    """Published curves that exist under ``anchors_dir`` (missing files are skipped silently)."""
    curves: list[Curve] = []
    if anchors_dir is None or not anchors_dir.is_dir():
        return curves
    for rel, label in files:
        path = anchors_dir / rel
        if not path.exists():
            continue
        curve = curve_from_json(json.loads(path.read_text()), name=Path(rel).stem, label=label)
        curve.published = True
        curves.append(curve)
    return curves
