"""One picture instead of a table: an image coded by neuralcodec, JPEG, WebP and AVIF at the same file size.

    python -m benchmarks.compare IMAGE --size 12k [-o out.png]
    python -m benchmarks.compare ../shared/datasets/kodak/kodim23.png --bpp 0.25 --model msssim

Every codec gets the largest quality whose file fits the size (neuralcodec through its own rate
control, ``neuralcodec.rate_control``; the others by bisection over their integer qualities,
through the adapters in ``benchmarks.codecs``). The PNG shows the original and each decoded
image, then the same zoomed crops of each (the most detailed regions, or ``--crop x,y,w,h``),
and labels each panel with its bytes, bpp, PSNR and MS-SSIM (``benchmarks.metrics``, the RD
benchmark's definitions). A codec that cannot get under the size even at its lowest quality
is shown at that quality, marked "over".
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (after selecting the headless backend)
from matplotlib.patches import Rectangle  # noqa: E402

from benchmarks.codecs import Codec, build_codecs  # noqa: E402
from benchmarks.datasets import load_rgb  # noqa: E402
from benchmarks.metrics import compare  # noqa: E402

CLASSICAL = ("jpeg", "webp", "avif")
CROP_COLOURS = ("#ff3b30", "#0a84ff", "#34c759", "#ffcc00")
PANEL_INCHES = 3.6


@dataclass
class Panel:
    """What one column of the figure shows."""

    codec: str  # "original", "neuralcodec", "jpeg", ...
    label: str
    file_bytes: int | None = None
    bpp: float | None = None
    psnr: float | None = None
    ms_ssim: float | None = None
    quality: float | None = None
    over_target: bool = False  # even the lowest quality is larger than the target


def largest_fitting_quality(
    encode: Callable[[int], bytes], target: int, low: int = 0, high: int = 100
) -> tuple[int, bytes, bool]:
    """Bisection over integer qualities for the largest whose file has at most ``target`` bytes.

    Returns (quality, file, over_target); over_target means even ``low`` is too large.
    """
    cache: dict[int, bytes] = {}

    def size(q: int) -> int:
        if q not in cache:
            cache[q] = encode(q)
        return len(cache[q])

    if size(low) > target:
        return low, cache[low], True
    if size(high) <= target:
        return high, cache[high], False
    lo, hi = low, high  # size(lo) fits, size(hi) does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if size(mid) <= target:
            lo = mid
        else:
            hi = mid
    return lo, cache[lo], False


def detailed_crops(
    img: np.ndarray, count: int = 2, side: int | None = None
) -> list[tuple[int, int, int, int]]:
    """The ``count`` most detailed square windows (mean luma gradient), not overlapping: (x, y, w, h)."""
    h, w = img.shape[:2]
    side = side or max(32, min(h, w) // 4)
    side = min(side, h, w)
    luma = img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    grad = np.zeros_like(luma)
    grad[:, 1:] += np.abs(np.diff(luma, axis=1))
    grad[1:, :] += np.abs(np.diff(luma, axis=0))
    integral = np.pad(grad.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    step = max(1, side // 8)
    ys, xs = np.arange(0, h - side + 1, step), np.arange(0, w - side + 1, step)
    Y, X = np.meshgrid(ys, xs, indexing="ij")
    scores = integral[Y + side, X + side] - integral[Y, X + side] - integral[Y + side, X] + integral[Y, X]
    crops: list[tuple[int, int, int, int]] = []
    for flat in np.argsort(scores, axis=None)[::-1]:
        y, x = int(Y.flat[flat]), int(X.flat[flat])
        if all(x + side <= cx or cx + cw <= x or y + side <= cy or cy + ch <= y for cx, cy, cw, ch in crops):
            crops.append((x, y, side, side))
            if len(crops) == count:
                break
    return crops


def _encode_neuralcodec(img: np.ndarray, target: int, model: str, device: str) -> tuple[Panel, np.ndarray]:
    import neuralcodec
    from neuralcodec.rate_control import TargetUnreachableError, compress_to_target

    try:
        found, over = compress_to_target(img, target_size=target, model=model, device=device), False
    except TargetUnreachableError as exc:
        found, over = exc.closest, True
    decoded = np.asarray(neuralcodec.decompress(found.data, device, model).convert("RGB"))
    short = Path(model).stem if str(model).endswith(".pt") else model
    panel = Panel(
        "neuralcodec", f"neuralcodec ({short})", len(found.data), quality=found.quality, over_target=over
    )
    return panel, decoded


def _encode_classical(codec: Codec, img: np.ndarray, target: int) -> tuple[Panel, np.ndarray]:
    quality, data, over = largest_fitting_quality(lambda q: codec.encode(img, q), target)
    return Panel(codec.name, codec.label, len(data), quality=quality, over_target=over), codec.decode(data)


def _title(panel: Panel) -> str:
    if panel.codec == "original":
        return panel.label
    size = f"{panel.file_bytes:,} B · {panel.bpp:.3f} bpp" + (" (over)" if panel.over_target else "")
    msssim = "n/a" if panel.ms_ssim is None or np.isnan(panel.ms_ssim) else f"{panel.ms_ssim:.4f}"
    return f"{panel.label}  q{panel.quality:g}\n{size}\nPSNR {panel.psnr:.2f} dB · MS-SSIM {msssim}"


def make_figure(
    image: np.ndarray | str | Path,
    target_bytes: int,
    out: Path,
    model: str = "msssim",
    codecs: Sequence[str] = CLASSICAL,
    crops: Sequence[tuple[int, int, int, int]] | None = None,
    device: str = "auto",
    title: str | None = None,
) -> list[Panel]:
    """Code ``image`` with each codec within ``target_bytes``; write the figure to ``out``; return its panels.

    The first panel is the original; codecs this Pillow build lacks are left out with a note on stderr.
    """
    img = image if isinstance(image, np.ndarray) else load_rgb(Path(image))
    h, w = img.shape[:2]
    if title is None:
        title = Path(image).name if not isinstance(image, np.ndarray) else "image"
    crops = list(crops) if crops else detailed_crops(img)
    for x, y, cw, ch in crops:
        if not (0 <= x and 0 <= y and cw > 0 and ch > 0 and x + cw <= w and y + ch <= h):
            raise ValueError(f"crop {x},{y},{cw},{ch} is not inside the {w}x{h} image")

    panels = [Panel("original", f"original  {w}×{h}")]
    images = [img]
    panel, decoded = _encode_neuralcodec(img, target_bytes, model, device)
    panels.append(panel)
    images.append(decoded)
    found, notes = build_codecs(list(codecs))
    for note in notes:
        print(f"compare: {note}", file=sys.stderr)
    for codec in found:
        panel, decoded = _encode_classical(codec, img, target_bytes)
        panels.append(panel)
        images.append(decoded)
    for panel, decoded in zip(panels[1:], images[1:]):
        scores = compare(img, decoded)
        panel.psnr, panel.ms_ssim = scores["psnr-rgb"], scores["ms-ssim-rgb"]
        panel.bpp = panel.file_bytes * 8 / (w * h)

    cols = len(panels)
    full_height = PANEL_INCHES * h / w
    heights = [full_height] + [PANEL_INCHES * ch / cw for _, _, cw, ch in crops]
    fig, axes = plt.subplots(
        1 + len(crops),
        cols,
        figsize=(PANEL_INCHES * cols, sum(heights) + 0.75 + 0.15 * len(crops)),
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    for col, (panel, pixels) in enumerate(zip(panels, images)):
        ax = axes[0][col]
        ax.imshow(pixels, interpolation="lanczos")
        ax.set_title(_title(panel), fontsize=9, loc="left")
        for i, (x, y, cw, ch) in enumerate(crops):
            colour = CROP_COLOURS[i % len(CROP_COLOURS)]
            ax.add_patch(Rectangle((x - 0.5, y - 0.5), cw, ch, fill=False, edgecolor=colour, linewidth=1.2))
        for row, (x, y, cw, ch) in enumerate(crops, start=1):
            ax = axes[row][col]
            ax.imshow(pixels[y : y + ch, x : x + cw], interpolation="nearest")
            for spine in ax.spines.values():
                spine.set_edgecolor(CROP_COLOURS[(row - 1) % len(CROP_COLOURS)])
                spine.set_linewidth(2)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        f"{title}: every codec at its best quality within {target_bytes:,} bytes "
        f"({target_bytes * 8 / (w * h):.3f} bpp); crops enlarged",
        fontsize=11,
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return panels


def _crop(text: str) -> tuple[int, int, int, int]:
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected x,y,w,h in pixels, got {text!r}") from None
    return x, y, w, h


def main(argv: list[str] | None = None) -> int:
    from neuralcodec.cli import parse_size

    p = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__.split("\n\n")[0])
    p.add_argument("image", type=Path)
    size = p.add_mutually_exclusive_group(required=True)
    size.add_argument(
        "--size", type=parse_size, metavar="BYTES", help="file size for every codec (100k, 12345)"
    )
    size.add_argument("--bpp", type=float, help="file size as bits per pixel")
    p.add_argument("-o", "--out", type=Path, help="PNG to write (default: IMAGE-compare.png here)")
    p.add_argument("--model", default="msssim", help="neuralcodec model name or weights file")
    p.add_argument("--codecs", default=",".join(CLASSICAL), help="classical codecs beside neuralcodec")
    p.add_argument(
        "--crop", type=_crop, action="append", help="x,y,w,h; repeat for several (default: 2 auto)"
    )
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)

    img = load_rgb(args.image)
    h, w = img.shape[:2]
    target = args.size if args.size is not None else int(args.bpp * w * h / 8)
    out = args.out or Path(f"{args.image.stem}-compare.png")
    panels = make_figure(
        img,
        target,
        out,
        args.model,
        [c for c in args.codecs.split(",") if c],
        args.crop,
        args.device,
        args.image.name,
    )
    for panel in panels[1:]:
        print(" ".join(f"{k}={v}" for k, v in asdict(panel).items()))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
