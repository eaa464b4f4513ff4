"""Per-image latent refinement at compression time (``effort`` 1..9): ``refine_latents``, the
entry point the architectures' encoders call, and how an image is cut into windows.

Refinement optimises the latents y and z of the one image being coded against the model's own
rate–distortion objective J = λ·D + bits per pixel at the λ of the chosen quality: SGA
iterations, then rounds of greedy rounding, each window of the image on its own. The machinery
is neuralcodec.refinement, whose package docstring describes the algorithm: a
``WindowRefinement`` runs a window's ``Schedule`` against the ``Objective`` (g_s, λ, D) and the
model's ``RateModel`` (the soft and the exact rate of the window's latents).

Guarantees:

- **Decodable, as intended.** The result is ẑ already quantised (symbols clamped to the z
  tables, plus the model's z offsets) and y = μ_exact + k, where μ_exact are the exact
  means that the coder and decoder compute (the integer hyper-synthesis' from that ẑ; for a
  checkerboard model's non-anchors, the integer context's from the anchors) and k the
  intended (table-clamped) symbols, so the model's latent codec codes exactly k and the
  unchanged decoder rebuilds exactly ŷ (tile by tile, up to later tiles moving the means of
  earlier tiles' edges, as below).
- **Never worse.** Candidates are scored with hard rounding, exact means, the integer
  tables' bits and the uint8 output of g_s (float32; bf16 where the codec uses it), and
  the best, the starting point included, is kept; a candidate must beat the start by more
  than the ANS streams' word rounding. So on the model's objective (real file bits, the
  decoded image), effort > 0 never ends above effort 0 for an image that refines in one
  window, up to ANS's own inefficiency with these tables (well under 0.1 %).
- **Deterministic.** The Gumbel noise and the curvature estimate's random signs come from a
  generator with a fixed seed: the same input, quality, effort, machine and thread count give
  the same bytes.
- **Bounded memory.** An image whose padded size is at most ``SINGLE_WINDOW_PIXELS``
  refines in one window (every Kodak image does). Larger images refine tile by tile:
  cores of latents one after the other in raster order, each in a window with a halo of
  refined or not-yet-refined latents as context (``TileGeometry``: with SGA, efforts 5 to 9,
  cores of 512² pixels in windows of up to 896²; greedy rounding alone, efforts 1 to 4,
  leaves ẑ as it is and so needs far less context: windows of up to 640²),
  so working memory depends on the window (under 1 GiB in float32), not on the image. A tile
  step scores every rate and every pixel its core can change, so for MSE each step keeps the
  whole image's objective no worse and "never worse" holds for the image; MS-SSIM, not
  additive, is scored on the window (core ± 160 pixels with SGA, ± 32 without).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from neuralcodec import codec
from neuralcodec.models.loaded import LoadedModel
from neuralcodec.refinement.geometry import TileGeometry, Window, layout
from neuralcodec.refinement.objective import Objective
from neuralcodec.refinement.rate_models import rate_model_of
from neuralcodec.refinement.schedule import SCHEDULES, SGA_DEFAULTS, Schedule, schedule_for
from neuralcodec.refinement.window import Trace, WindowRefinement

__all__ = [
    "ALGORITHM_VERSION",
    "GREEDY_TILES",
    "SCHEDULES",
    "SEED",
    "SGA_DEFAULTS",
    "SGA_TILES",
    "SINGLE_WINDOW_PIXELS",
    "TRACE",
    "Schedule",
    "TileGeometry",
    "refine_latents",
    "refines_in_one_window",
    "schedule_for",
    "tile_geometry",
    "window_pixels",
]

SEED = 0x5EED_C0DE
# Raised whenever refinement makes other bytes from the same schedule and settings, so that
# measurements of an earlier version are not taken for this one (benchmarks/effort.py).
# (Every measured row is of an image that refines in one window: the tiling of larger images,
# ``TileGeometry``, is not versioned.)
ALGORITHM_VERSION = 2  # 2: greedy rounding weighs each latent's curvature by its coverage of the image
SINGLE_WINDOW_PIXELS = 1024 * 1024  # padded images up to this many pixels refine in one window

# SGA moves ẑ and ŷ. A core's z moves the means of y up to 7 y positions before it and 4 after
# (h_s: 5x5 s2, 5x5 s2, 3x3), and a y position reaches pixels within 2 y positions (g_s: four
# 5x5 stride-2 transposed convolutions reach ±30 pixels): so every pixel a tile step can change
# lies within 9 y positions of its core. Scoring core ± 10 and running g_s on core ± 12 (2 more,
# for exact pixels) makes the window objective differ from the image's objective by a constant
# (for MSE).
SGA_TILES = TileGeometry(core_z=8, halo_z=3, scored_halo_y=10)  # 512² cores, 896² windows
# Greedy rounding alone (efforts 1-4) leaves ẑ, and so every mean and scale, as it is: a core's
# ŷ changes only pixels within 2 y positions of it, which g_s computes exactly from ŷ within 2 y
# positions of those. So core ± 2 y positions are scored and g_s runs on core ± 1 z (4 y): 512²
# cores in 640² windows, about 1.5 times the work per pixel of one window (a 6000x4000 image),
# where SGA's windows take 2.8 times. Each window estimates its own curvature, at its core's
# centre (docs/experiments.md has the sizes and alternatives measured).
GREEDY_TILES = TileGeometry(core_z=8, halo_z=1, scored_halo_y=2)

# For measurement (benchmarks/effort.py): when a list, every scored candidate appends
# (iteration, objective, bits per pixel, distortion); iteration 0 is the effort-0 result.
TRACE: Trace | None = None


def tile_geometry(sched: Schedule) -> TileGeometry:
    """The windows of a schedule: ``GREEDY_TILES`` when it only rounds greedily, else ``SGA_TILES``."""
    return SGA_TILES if sched.iterations else GREEDY_TILES


def refines_in_one_window(height: int, width: int) -> bool:
    """Whether an image of this size, padded to the latent grid, refines in one window (at most
    ``SINGLE_WINDOW_PIXELS``) rather than tile by tile."""
    padded_height, padded_width = codec.padded_size(height, width)
    return padded_height * padded_width <= SINGLE_WINDOW_PIXELS


def window_pixels(height: int, width: int, sched: Schedule) -> int:
    """The pixels g_s runs on in one pass over every window that an image of this size refines in
    with ``sched`` (its padded size when it refines in one window)."""
    padded_height, padded_width = codec.padded_size(height, width)
    z_rows, z_cols = padded_height // codec.STRIDE, padded_width // codec.STRIDE
    windows = _windows(z_rows, z_cols, height, width, tile_geometry(sched))
    return sum(256 * (w.win_y[1] - w.win_y[0]) * (w.win_y[3] - w.win_y[2]) for w in windows)


def _windows(z_rows: int, z_cols: int, height: int, width: int, tiles: TileGeometry) -> list[Window]:
    """The windows an image refines in: one, or cores of ``tiles`` in raster order."""
    return layout(z_rows, z_cols, height, width, tiles, one_window=refines_in_one_window(height, width))


def _read_pixels(x: Tensor | np.ndarray, b: int, window: Window) -> Tensor:
    """The scored pixels of ``window`` in image ``b`` of the batch, (1, 3, h, w) floats in [0, 1]."""
    top, bottom, left, right = window.pixels
    if isinstance(x, np.ndarray):
        return (
            torch.from_numpy(np.array(x[b : b + 1, top:bottom, left:right]))
            .permute(0, 3, 1, 2)
            .float()
            .div_(255.0)
        )
    return x[b : b + 1, :, top:bottom, left:right].float()


class _Progress:
    """Counts steps done and reports them to ``progress(done, total)``, when given."""

    def __init__(self, total: int, progress: Callable[[int, int], None] | None) -> None:
        self.total, self.done, self.progress = total, 0, progress

    def tick(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)


def refine_latents(
    model: LoadedModel,
    x: Tensor | np.ndarray,
    y: Tensor,
    z: Tensor,
    quality: float,
    effort: int,
    device: str | torch.device = "auto",
    progress: Callable[[int, int], None] | None = None,
    schedule: Schedule | None = None,
    gray_output: bool = False,
) -> tuple[Tensor, Tensor]:
    """Refined (y, z) for ``codec.encode_latents``; see the module docstring for guarantees.

    ``x``: the images ``codec.analyse`` saw (floats (B, 3, H, W) in [0, 1] or uint8
    (B, H, W, 3), unpadded); ``y``, ``z``: its outputs. Returns float32 CPU tensors of the same
    shapes: z holds ẑ (symbols inside the z tables plus the model's z offsets) and
    y = μ_exact + k, except where keeping the analysis output was best (then the coder rounds
    exactly as at effort 0).
    ``progress(done, total)`` is called after every iteration. ``schedule``, for measurement
    (benchmarks/refine_schedules.py), replaces the schedule of ``effort``. ``gray_output``: the
    file will be decoded to grayscale (the rounded mean of the channels), so distortion is
    measured there. The rate refined against is ``refinement.rate_models.rate_model_of(model)``.
    """
    sched = schedule if schedule is not None else schedule_for(effort)
    dev = codec.resolve_device(device)
    height, width = (x.shape[1], x.shape[2]) if isinstance(x, np.ndarray) else (x.shape[2], x.shape[3])
    batch = y.shape[0]
    level = codec.quality_to_level(model, quality)
    windows = _windows(z.shape[2], z.shape[3], height, width, tile_geometry(sched))
    steps = _Progress(batch * len(windows) * (sched.iterations + sched.greedy_rounds), progress)
    offsets = codec.z_offsets(model).float()
    # z is refined in symbol units (ẑ − offset, integers when rounded).
    y_out, z_out = y.detach().clone().float().cpu(), z.detach().float().cpu() - offsets
    with torch.inference_mode(False), torch.enable_grad():
        objective = Objective.at_level(model, level, dev, gray_output)
        rate_model = rate_model_of(model, dev)
        for b in range(batch):
            y_b, z_b = y_out[b : b + 1], z_out[b : b + 1]
            gen = torch.Generator().manual_seed(SEED)  # per image: batching does not change bytes
            for window in windows:
                refinement = WindowRefinement.start(
                    window,
                    y_b,
                    z_b,
                    _read_pixels(x, b, window),
                    objective,
                    rate_model,
                    sched,
                    gen,
                    steps.tick,
                    TRACE,
                )
                best = refinement.run()
                z_b[window.image_z_core] = best.z_core
                y_b[window.image_y_core] = best.y_core
    return y_out, z_out + offsets  # symbol + offset: exact in float32, as the coder rounds it
