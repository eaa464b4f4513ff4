"""Rate control: the quality that meets a file-size, PSNR or MS-SSIM target.

``quality`` is continuous (0..100) and, for a given image, the file size and the decoded
quality both grow with it. Log file size, PSNR and MS-SSIM in dB (−10·log10(1 − MS-SSIM)) are
close to linear in quality (quality maps log-linearly onto the model's λ), so a secant search
on that scale lands on the target in a few encoder passes:

1. encode at a starting quality, then step towards the target along a typical slope;
2. once the target is bracketed, interpolate between the two nearest passes (regula falsi,
   kept at least 10 % inside the bracket, bisecting when one side stops moving);
3. stop when the best pass on the right side of the target is within the tolerance of it
   (file size within ``size_tolerance`` below the target; PSNR or MS-SSIM dB within
   ``quality_tolerance_db`` above it), or when the bracket is 0.02 quality units wide.

``target_size`` gives the largest quality whose file fits (size <= target); ``target_psnr``
and ``target_ms_ssim`` give the smallest file that reaches the target. Every pass is cached.
At an effort above 0 (latent refinement, seconds per pass) the search runs with the
single-pass encoder first and then continues at the effort from that answer along the slope
found there, so a Kodak-sized image costs a handful of fast passes and one or two slow ones
instead of every pass at the effort.
A target the model cannot reach for this image (even quality 0 is too large, even quality
100 is not good enough) raises TargetUnreachableError, which carries the closest pass.
PSNR and MS-SSIM are measured on the decoded RGB against the input's RGB
(neuralcodec.metrics), so they are what a user gets from ``decompress``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from neuralcodec.errors import NeuralCodecError

if TYPE_CHECKING:
    from neuralcodec.coding import CompressStats, ImageSource
    from neuralcodec.models.loaded import LoadedModel

QUALITY_STEP = 0.01  # qualities are searched on this grid (what -v prints)
MAX_PASSES = 12
REFINED_MAX_PASSES = 4  # passes at effort > 0, after the single-pass search (see compress_to_target)
DEFAULT_SIZE_TOLERANCE = 0.02  # accept a file within 2 % below the target size
DEFAULT_QUALITY_TOLERANCE_DB = 0.05  # accept PSNR / MS-SSIM dB within 0.05 dB above the target
# Typical slopes per quality unit, only used until two passes give a real one.
_PRIOR_SLOPE = {"size": 0.015, "psnr": 0.08, "ms-ssim": 0.1}


class TargetUnreachableError(NeuralCodecError, ValueError):
    """The target is outside what the model can produce for this image (``closest`` is the best pass)."""

    def __init__(self, message: str, closest: TargetResult) -> None:
        super().__init__(message)
        self.closest = closest


class TargetResult(NamedTuple):
    """The chosen encoding: ``data, stats, quality, passes, value = compress_to_target(...)``."""

    data: bytes
    stats: CompressStats
    quality: float
    passes: int  # encoder passes run (each one also decodes when the target is PSNR / MS-SSIM)
    value: float  # what was measured for the target: bytes, PSNR dB or MS-SSIM


@dataclass
class _Pass:
    quality: float
    data: bytes
    stats: CompressStats
    value: float  # bytes, PSNR or MS-SSIM
    scaled: float  # log(bytes), PSNR or MS-SSIM dB: about linear in quality


def _check_target(target_size, target_psnr, target_ms_ssim) -> tuple[str, float]:
    given = [
        (k, v)
        for k, v in (("size", target_size), ("psnr", target_psnr), ("ms-ssim", target_ms_ssim))
        if v is not None
    ]
    if len(given) != 1:
        raise ValueError("give exactly one of target_size, target_psnr, target_ms_ssim")
    kind, value = given[0]
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"target {kind} must be a number, got {value!r}")
    value = float(value)
    if kind == "size" and not (value >= 1 and value == int(value)):
        raise ValueError(f"target size must be a whole number of bytes >= 1, got {value:g}")
    if kind == "psnr" and not (0 < value < math.inf):
        raise ValueError(f"target PSNR must be a positive number of dB, got {value:g}")
    if kind == "ms-ssim" and not (0 < value < 1):
        raise ValueError(f"target MS-SSIM must be within (0, 1), got {value:g}")
    return kind, value


def _scaled(kind: str, value: float) -> float:
    from neuralcodec.metrics import msssim_db

    if kind == "size":
        return math.log(value)
    if kind == "ms-ssim":
        return msssim_db(value)
    return min(value, 200.0)  # a lossless PSNR (inf) must not break the interpolation


class _Goal(NamedTuple):
    """What a search aims at: ``ok`` passes meet the target, ``good_enough`` ones are close enough."""

    kind: str
    aim: float  # on the scaled axis (log bytes, PSNR or MS-SSIM dB)
    ok: Callable[[_Pass], bool]
    good_enough: Callable[[_Pass], bool]


def _best(cache: dict[float, _Pass], goal: _Goal) -> _Pass | None:
    """The pass meeting the target nearest its boundary: the highest quality whose file fits,
    or the lowest quality that reaches the PSNR / MS-SSIM."""
    oks = [p for p in cache.values() if goal.ok(p)]
    if not oks:
        return None
    return max(oks, key=lambda p: p.quality) if goal.kind == "size" else min(oks, key=lambda p: p.quality)


def _closest(passes: list[_Pass], goal: _Goal) -> _Pass:
    """The pass nearest an unreachable target: the smallest file of the lowest quality tried,
    or the best PSNR / MS-SSIM of the highest."""
    if goal.kind == "size":
        return min(passes, key=lambda p: (p.quality, p.value))
    return max(passes, key=lambda p: (p.quality, p.value))


def _local_slope(cache: dict[float, _Pass], around: _Pass, fallback: float) -> float:
    """The slope (scaled value per quality unit) between the two passes nearest ``around``,
    or ``fallback`` when they do not give a rising one."""
    near = sorted(cache.values(), key=lambda p: abs(p.quality - around.quality))[:2]
    if len(near) == 2 and (near[0].scaled - near[1].scaled) * (near[0].quality - near[1].quality) > 0:
        return (near[0].scaled - near[1].scaled) / (near[0].quality - near[1].quality)
    return fallback


def _search(
    run: Callable[[float], _Pass],
    cache: dict[float, _Pass],
    goal: _Goal,
    start: float,
    prior_slope: float,
    max_passes: int,
    overshoot: float = 1.1,
) -> None:
    """Encoder passes (``run``, which fills ``cache``) from quality ``start`` until one is good
    enough, the bracket is two grid steps wide, ``max_passes`` ran or the edge is reached."""
    aim = goal.aim
    current = run(start)
    same_side = misses = 0
    last_side: bool | None = None
    while True:
        chosen = _best(cache, goal)
        if chosen is not None and goal.good_enough(chosen):
            return
        # Bracket: lo = highest quality below the aim's side, hi = lowest above it (value grows with q).
        below = [p for p in cache.values() if p.scaled < aim]
        above = [p for p in cache.values() if p.scaled >= aim]
        lo = max(below, key=lambda p: p.quality) if below else None
        hi = min(above, key=lambda p: p.quality) if above else None
        if lo is not None and hi is not None and hi.quality <= lo.quality:
            lo = hi = None  # not monotone here: fall back to the passes around the boundary
            ordered = sorted(cache.values(), key=lambda p: p.quality)
            for a, b in zip(ordered, ordered[1:]):
                if goal.ok(a) != goal.ok(b):
                    lo, hi = a, b
                    break
        if lo is not None and hi is not None:
            misses = 0
            width = hi.quality - lo.quality
            if width <= 2 * QUALITY_STEP + 1e-9 or len(cache) >= max_passes:
                return
            if same_side >= 2:
                q = (lo.quality + hi.quality) / 2
            else:
                slope = (hi.scaled - lo.scaled) / width
                q = lo.quality + (aim - lo.scaled) / slope if slope > 0 else (lo.quality + hi.quality) / 2
                q = min(max(q, lo.quality + 0.1 * width), hi.quality - 0.1 * width)
        else:
            edge = 100.0 if hi is None else 0.0  # the side we must move towards
            known = lo if hi is None else hi
            if known.quality == edge:
                return
            # Secant through the two passes nearest the target; each step that fails to cross
            # the target overshoots more (curves flatten towards the ends of the range).
            slope = _local_slope(cache, known, prior_slope)
            step = (aim - known.scaled) / slope * overshoot * 2**misses
            step = math.copysign(max(abs(step), 1.0), edge - known.quality)
            misses += 1
            # The last pass allowed settles reachability at the edge rather than guessing again.
            q = edge if len(cache) >= max_passes - 1 else known.quality + step
        before = len(cache)
        current = run(q)
        if len(cache) == before:  # the grid gives nothing new between these passes
            return
        side = current.scaled >= aim
        same_side = same_side + 1 if side == last_side else 0
        last_side = side


def compress_to_target(
    image: ImageSource,
    *,
    target_size: int | None = None,
    target_psnr: float | None = None,
    target_ms_ssim: float | None = None,
    model: str | Path | LoadedModel | None = None,
    device: str = "auto",
    keep_metadata: bool = True,
    effort: int | None = 0,
    progress: Callable[[int, int], None] | None = None,
    on_pass: Callable[[float, int, float], None] | None = None,
    size_tolerance: float = DEFAULT_SIZE_TOLERANCE,
    quality_tolerance_db: float = DEFAULT_QUALITY_TOLERANCE_DB,
    max_passes: int = MAX_PASSES,
) -> TargetResult:
    """Compress ``image`` at the quality that meets exactly one target (see the module docstring).

    ``effort`` as in ``api.compress`` (None: the image's default). Above 0 the quality is first
    searched with the single-pass encoder, then at most ``REFINED_MAX_PASSES`` passes at the
    effort start from its answer; the file is the effort's when one of those passes meets the
    target, else the single-pass one (refinement may trade bits for distortion).
    ``on_pass(quality, file_bytes, value)`` is called after every encoder pass; ``progress`` is
    handed to the encoder (slow effort levels).
    """
    from neuralcodec.coding import check_effort, compress_with_stats, decompress, default_effort, loaded_model
    from neuralcodec.image_modes import PreparedImage, prepare
    from neuralcodec.zoo import DEFAULT_MODEL

    kind, target = _check_target(target_size, target_psnr, target_ms_ssim)
    effort = check_effort(effort)
    model = loaded_model(DEFAULT_MODEL if model is None else model)
    prepared = image if isinstance(image, PreparedImage) else prepare(image, keep_metadata)
    if kind == "ms-ssim":
        from neuralcodec.errors import InvalidInputError
        from neuralcodec.metrics import MS_SSIM_MIN_SIDE

        if min(prepared.rgb.shape[:2]) < MS_SSIM_MIN_SIDE:
            raise InvalidInputError(
                f"an MS-SSIM target needs an image of at least {MS_SSIM_MIN_SIDE} pixels per side"
            )
    width, height = prepared.rgb.shape[1], prepared.rgb.shape[0]
    effective_effort = (
        default_effort(width, height, model.config.metric, model.architecture) if effort is None else effort
    )

    def pass_runner(pass_effort: int, cache: dict[float, _Pass]) -> Callable[[float], _Pass]:
        def run(q: float) -> _Pass:
            q = round(min(max(q, 0.0), 100.0) / QUALITY_STEP) * QUALITY_STEP
            q = round(q, 2)
            if q in cache:
                return cache[q]
            data, stats = compress_with_stats(
                prepared,
                q,
                model,
                device,
                keep_metadata=keep_metadata,
                effort=pass_effort,
                progress=progress if pass_effort else None,
            )
            if kind == "size":
                value = float(len(data))
            else:
                from neuralcodec.metrics import psnr
                from neuralcodec.msssim import ms_ssim_images

                decoded = decompress(data, device, model, strip=True, max_pixels=None)
                rgb = np.asarray(decoded.convert("RGB"))
                measure = psnr if kind == "psnr" else ms_ssim_images
                value = measure(prepared.rgb, rgb)
            cache[q] = found = _Pass(q, data, stats, value, _scaled(kind, value))
            if on_pass is not None:
                on_pass(q, len(data), value)
            return found

        return run

    # "ok" passes meet the target; the answer is the ok pass nearest the boundary.
    if kind == "size":
        aim = math.log(target) + math.log1p(-size_tolerance / 2)
        ok = lambda p: p.value <= target  # noqa: E731
        good_enough = lambda p: p.value >= target * (1 - size_tolerance)  # noqa: E731
    else:
        t_scaled = _scaled(kind, target)
        aim = t_scaled + quality_tolerance_db / 2
        ok = lambda p: p.value >= target  # noqa: E731
        good_enough = lambda p: p.scaled <= t_scaled + quality_tolerance_db  # noqa: E731
    goal = _Goal(kind, aim, ok, good_enough)

    single_pass: dict[float, _Pass] = {}
    _search(pass_runner(0, single_pass), single_pass, goal, 50.0, _PRIOR_SLOPE[kind], max_passes)
    every_pass = list(single_pass.values())
    if effective_effort:
        # The slow encoder starts from the single-pass answer, along the slope found there:
        # refinement shifts the curve by a few per cent, so one or two passes usually land.
        start = _best(single_pass, goal) or _closest(every_pass, goal)
        refined: dict[float, _Pass] = {}
        _search(
            pass_runner(effective_effort, refined),
            refined,
            goal,
            start.quality,
            _local_slope(single_pass, start, _PRIOR_SLOPE[kind]),
            REFINED_MAX_PASSES,
            overshoot=1.0,
        )
        every_pass += list(refined.values())
        chosen = _best(refined, goal)
        if chosen is not None:
            return TargetResult(chosen.data, chosen.stats, chosen.quality, len(every_pass), chosen.value)
        # No refined pass meets the target (refinement may trade bits for distortion): the
        # single-pass answer does, when there is one.
    passes = len(every_pass)

    chosen = _best(single_pass, goal)
    if chosen is not None:
        return TargetResult(chosen.data, chosen.stats, chosen.quality, passes, chosen.value)
    closest = _closest(every_pass, goal)
    if kind == "size":
        message = (
            f"target size {int(target)} bytes is out of reach: quality {closest.quality:g} gives "
            f"{int(closest.value)} bytes with this model"
        )
    else:
        what = "PSNR" if kind == "psnr" else "MS-SSIM"
        shown = f"{closest.value:.2f} dB" if kind == "psnr" else f"{closest.value:.4f}"
        target_shown = f"{target:g} dB" if kind == "psnr" else f"{target:g}"
        message = (
            f"target {what} {target_shown} is out of reach: quality {closest.quality:g} gives {shown} "
            "with this model"
        )
    raise TargetUnreachableError(
        message, TargetResult(closest.data, closest.stats, closest.quality, passes, closest.value)
    )
