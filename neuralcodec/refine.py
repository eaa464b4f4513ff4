"""Per-image latent refinement at compression time (``effort`` 1..9).

The analysis transform g_a is amortised: one pass guesses latents for any image. Here the
latents y and z of the one image being coded are optimised against the model's own
rate–distortion objective at the λ of the chosen quality,

    J = λ·D(x, g_s(ŷ·inverse_gain)) + (bits(ẑ) + bits(ŷ | ẑ)) / pixels,

D = MSE·255² for "mse" models and 1 − MS-SSIM for "ms-ssim" models (neuralcodec.msssim),
measured on the image as it will be shown: for a grayscale file (``gray_output``) that is the
rounded mean of the decoded channels, which is all the decoder outputs,
with stochastic Gumbel annealing (SGA, Yang, Bamler & Mandt 2020): each latent is softly
rounded to floor or ceil of its residual by a Gumbel-softmax whose temperature is annealed
towards hard rounding, and Adam follows the gradient. Then rounds of greedy rounding
(neuralcodec.greedy_rounding) move single residuals of ŷ to the neighbouring integer where a
quadratic model of J, from one gradient and a curvature estimate, predicts a drop; efforts 1
to 4 are greedy rounding alone (one, two, four and eight rounds). Rates: z under the model's integer z
tables (neuralcodec.rate.ZTableRate, exact at integers), y under the discretised Gaussian
whose means and scales come from the float h_s.

Guarantees:

- **Decodable, as intended.** The result is ẑ already quantised (symbols clamped to the z
  tables, plus the model's z offsets) and y = μ_exact + k, where μ_exact are the exact
  integer hyper-synthesis means that the coder and decoder compute from that ẑ and k the
  intended (table-clamped) symbols, so
  ``codec.encode_latents`` codes exactly k and the unchanged decoder rebuilds exactly ŷ.
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
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from neuralcodec import codec, quantisation
from neuralcodec.adam import Adam
from neuralcodec.entropy_models import scale_indexes, symbol_bits, table_bits
from neuralcodec.greedy_rounding import greedy_settings, greedy_steps, latent_coverage
from neuralcodec.local_acceptance import distortion_change_per_position
from neuralcodec.models.loaded import LoadedModel
from neuralcodec.msssim import ms_ssim, ms_ssim_maps, ms_ssim_of_maps
from neuralcodec.rate import ZTableRate, gaussian_rate

SEED = 0x5EED_C0DE
# Raised whenever refinement makes other bytes from the same schedule and settings, so that
# measurements of an earlier version are not taken for this one (benchmarks/effort.py).
# (Every measured row is of an image that refines in one window: the tiling of larger images,
# ``TileGeometry``, is not versioned.)
ALGORITHM_VERSION = 2  # 2: greedy rounding weighs each latent's curvature by its coverage of the image
SINGLE_WINDOW_PIXELS = 1024 * 1024  # padded images up to this many pixels refine in one window


@dataclass(frozen=True)
class TileGeometry:
    """How an image above ``SINGLE_WINDOW_PIXELS`` is cut into refinement windows."""

    core_z: int  # side of a core, the latents one tile step optimises, in z positions
    halo_z: int  # y context around a core that g_s sees, in z positions
    scored_halo_y: int  # pixels scored around a core, in y positions


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


_HS_HALO_Z = codec.Z_HALO  # z context around the y window, so its means equal the whole image's
_SGA_EPS = 1e-4
CURVATURE_BLOCK = 12  # side, in y positions, of the core block whose curvature greedy rounding estimates
CURVATURE_REACH = 3  # y positions around that block whose pixels it scores (a y position's reach)
CURVATURE_STEP = 0.05  # finite-difference step of the curvature estimate (in ŷ units)
# For measurement (benchmarks/effort.py): when a list, every scored candidate appends
# (iteration, objective, bits per pixel, distortion); iteration 0 is the effort-0 result.
TRACE: list[tuple[int, float, float, float]] | None = None


SGA_DEFAULTS = {"lr": 0.015, "tau_start": 0.5, "tau_end": 0.1}


@dataclass(frozen=True)
class Schedule:
    """What one effort runs: ``iterations`` of SGA, then ``greedy_rounds`` rounds of greedy
    rounding (neuralcodec.greedy_rounding).

    ``lr`` (Adam's constant learning rate) and ``tau_start`` / ``tau_end`` (the SGA temperature,
    annealed geometrically from one to the other) drive the SGA iterations: where there are
    some, those not given take ``SGA_DEFAULTS``; where there are none they are None, and giving
    one is a ValueError.
    """

    iterations: int
    lr: float | None = None
    tau_start: float | None = None
    tau_end: float | None = None
    greedy_rounds: int = 0

    def __post_init__(self) -> None:
        for name, default in SGA_DEFAULTS.items():
            if not self.iterations and getattr(self, name) is not None:
                raise ValueError(f"{name} applies to SGA iterations, and this schedule runs none")
            if self.iterations and getattr(self, name) is None:
                object.__setattr__(self, name, default)


# Efforts 1-4: one, two, four and eight rounds of greedy rounding; efforts 5-9: 16 to 400 SGA
# iterations (``SGA_DEFAULTS``: a constant learning rate with the temperature annealed from 0.5 to
# 0.1, the best at every length tried), then four rounds. A round costs about two SGA iterations.
# Fitted with benchmarks/refine_schedules.py and checked on Kodak (benchmarks/results/kodak/
# effort.md); docs/experiments.md has what else was tried.
SCHEDULES: dict[int, Schedule] = {
    1: Schedule(0, greedy_rounds=1),
    2: Schedule(0, greedy_rounds=2),
    3: Schedule(0, greedy_rounds=4),
    4: Schedule(0, greedy_rounds=8),
} | {
    effort: Schedule(iterations, greedy_rounds=4)
    for effort, iterations in enumerate((16, 32, 64, 128, 400), start=5)
}


def schedule_for(effort: int) -> Schedule:
    """The schedule of ``effort`` 1..9; ValueError otherwise."""
    if isinstance(effort, bool) or not isinstance(effort, (int, np.integer)) or effort not in SCHEDULES:
        raise ValueError(f"refinement effort must be an integer 1..{max(SCHEDULES)}, got {effort!r}")
    return SCHEDULES[int(effort)]


def tile_geometry(sched: Schedule) -> TileGeometry:
    """The windows of a schedule: ``GREEDY_TILES`` when it only rounds greedily, else ``SGA_TILES``."""
    return SGA_TILES if sched.iterations else GREEDY_TILES


def _sga_round(r: Tensor, tau: float, noise: Tensor) -> Tensor:
    """Soft rounding of r to floor(r) or floor(r) + 1 (SGA, Gumbel-softmax over the two).

    ``noise`` is Logistic(0, 1), the difference of the two categories' Gumbel noises.
    """
    floor = torch.floor(r).detach()
    d = (r - floor).clamp(_SGA_EPS, 1 - _SGA_EPS)
    logit = (torch.atanh(d) - torch.atanh(1 - d)) / tau  # log-odds of ceil over floor
    return floor + torch.sigmoid((logit + noise) / tau)


def _logistic(gen: torch.Generator, shape: torch.Size, device: torch.device) -> Tensor:
    u = torch.rand(shape, generator=gen).clamp_(1e-6, 1 - 1e-6)
    return (torch.log(u) - torch.log1p(-u)).to(device)


@dataclass
class _Candidate:
    """Latents of one window as the coder will code them, and their objective J."""

    objective: float
    z_core: Tensor  # core ẑ symbols (float)
    y_core: Tensor  # core ŷ = μ_exact + k (float32)
    k: np.ndarray  # core residual symbols (int64, inside their tables)
    index: np.ndarray  # their table indexes
    means: Tensor  # core exact means (float64)
    y_window: Tensor  # ŷ of the whole window (float32, CPU)
    grad: Tensor | None  # ∂(λ·D)/∂ŷ on the core, when asked for
    shown: Tensor  # the scored pixels as the decoder outputs them, as D sees them
    maps: list[Tensor] | None  # for ms-ssim: ms_ssim_maps of ``shown`` as measured, against the input


@dataclass
class _Window:
    """One refinement window: a core of latents to optimise plus context (absolute indices)."""

    core_z: tuple[int, int, int, int]  # z rows r0..r1, cols c0..c1 being optimised
    hs_z: tuple[int, int, int, int]  # z region fed to h_s (the y window plus 3 z context)
    win_y: tuple[int, int, int, int]  # y region whose ŷ enters g_s and whose rates count
    pixels: tuple[int, int, int, int]  # pixel region scored for distortion (inside the image)


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


def _windows(z_rows: int, z_cols: int, height: int, width: int, tiles: TileGeometry) -> list[_Window]:
    """The windows an image refines in: one, or cores of ``tiles`` in raster order."""
    if refines_in_one_window(height, width):
        whole = (0, z_rows, 0, z_cols)
        return [_Window(whole, whole, (0, 4 * z_rows, 0, 4 * z_cols), (0, height, 0, width))]
    out = []
    side, halo = tiles.core_z, tiles.halo_z
    for r0 in range(0, z_rows, side):
        for c0 in range(0, z_cols, side):
            r1, c1 = min(z_rows, r0 + side), min(z_cols, c0 + side)
            wr0, wr1 = max(0, r0 - halo), min(z_rows, r1 + halo)
            wc0, wc1 = max(0, c0 - halo), min(z_cols, c1 + halo)
            hs = (
                max(0, wr0 - _HS_HALO_Z),
                min(z_rows, wr1 + _HS_HALO_Z),
                max(0, wc0 - _HS_HALO_Z),
                min(z_cols, wc1 + _HS_HALO_Z),
            )
            d = tiles.scored_halo_y
            pix = (
                16 * max(4 * wr0, 4 * r0 - d),
                min(height, 16 * min(4 * wr1, 4 * r1 + d)),
                16 * max(4 * wc0, 4 * c0 - d),
                min(width, 16 * min(4 * wc1, 4 * c1 + d)),
            )
            if pix[0] >= pix[1] or pix[2] >= pix[3]:
                continue  # a core entirely in the padding: nothing to gain
            out.append(_Window((r0, r1, c0, c1), hs, (4 * wr0, 4 * wr1, 4 * wc0, 4 * wc1), pix))
    return out


class _ImageRefiner:
    """Refines one image's latents in place (``y``, ``z``: (1, ·, ·, ·) float32, CPU)."""

    def __init__(
        self,
        model: LoadedModel,
        pixels: Callable[[int, int, int, int], Tensor],
        y: Tensor,
        z: Tensor,
        level: float,
        device: torch.device,
        gray_output: bool = False,
    ) -> None:
        self.model = model
        self.gray_output = gray_output
        self.t = model.transforms_on(device)
        self.pixels = pixels
        self.y, self.z = y, z
        self.device = device
        self.metric = model.config.metric
        level_t = torch.tensor([level], device=device)
        self.lmbda = float(self.t.lambda_at(level_t))
        _, inverse_gain = self.t.gains(level_t)
        self.inverse_gain = inverse_gain.detach().float()
        self.z_rate = ZTableRate(model.z_tables, device)
        # z is refined in symbol units (ẑ − offset, integers when rounded); h_s takes ẑ.
        self.z_offsets = codec.z_offsets(model)

    # -- pieces ---------------------------------------------------------------------------
    def _shown(self, x_hat: Tensor) -> Tensor:
        """The decoded image as the decoder outputs it, from g_s's float output: uint8 levels
        (as floats in [0, 1]), and for a grayscale file the rounded mean of the channels."""
        levels = torch.round(x_hat.clamp(0, 1) * 255.0)
        if self.gray_output:
            levels = torch.round(levels.mean(dim=1, keepdim=True))
        return levels / 255.0

    def _as_measured(self, x_hat: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        """A decoded window and the input window as D compares them: for a grayscale file the
        channels' mean (the input's channels are equal)."""
        if self.gray_output:
            return x_hat.mean(dim=1, keepdim=True), x[:, :1]
        return x_hat, x

    def _distortion(self, x_hat: Tensor, x: Tensor) -> Tensor:
        """D of a decoded window against the input window (float, differentiable)."""
        x_hat, x = self._as_measured(x_hat, x)
        if self.metric == "mse":
            return (x_hat - x).pow(2).mean() * 255.0**2
        if self.metric == "ms-ssim":
            return 1.0 - ms_ssim(x_hat, x, data_range=1.0).mean()
        raise ValueError(f"unknown metric {self.metric!r}")

    def _shown_distortion(self, shown: Tensor, x: Tensor) -> tuple[float, list[Tensor] | None]:
        """D of the decoded window ``shown`` (``_shown``), and for ms-ssim the maps it came from
        (kept for ``local_acceptance``; the same D, bit for bit, as ``_distortion``)."""
        if self.metric != "ms-ssim":
            return float(self._distortion(shown, x)), None
        maps = ms_ssim_maps(*self._as_measured(shown, x))
        return float(1.0 - ms_ssim_of_maps(maps).mean()), maps

    def refine_window(
        self, w: _Window, sched: Schedule, gen: torch.Generator, tick: Callable[[], None]
    ) -> None:
        dev = self.device
        r0, r1, c0, c1 = w.core_z
        a0, a1, b0, b1 = w.hs_z
        y0, y1, x0, x1 = w.win_y
        p0, p1, q0, q1 = w.pixels
        # Context: the current state, z rounded and clamped as the coder will.
        z_ctx = self.z_rate.clamp(torch.round(self.z[:, :, a0:a1, b0:b1]).to(dev))
        y_ctx = self.y[:, :, y0:y1, x0:x1].to(dev)
        zc = (slice(None), slice(None), slice(r0 - a0, r1 - a0), slice(c0 - b0, c1 - b0))
        yc = (slice(None), slice(None), slice(4 * r0 - y0, 4 * r1 - y0), slice(4 * c0 - x0, 4 * c1 - x0))
        hs_crop = (slice(None), slice(None), slice(y0 - 4 * a0, y1 - 4 * a0), slice(x0 - 4 * b0, x1 - 4 * b0))
        pix_crop = (
            slice(None),
            slice(None),
            slice(p0 - 16 * y0, p1 - 16 * y0),
            slice(q0 - 16 * x0, q1 - 16 * x0),
        )
        x = self.pixels(p0, q0, p1 - p0, q1 - q0).to(dev)
        num_pixels = (p1 - p0) * (q1 - q0)

        z_var = self.z[:, :, r0:r1, c0:c1].clone().to(dev).requires_grad_(True)
        y_var = self.y[:, :, 4 * r0 : 4 * r1, 4 * c0 : 4 * c1].clone().to(dev).requires_grad_(True)
        core_mask = torch.zeros_like(y_ctx, dtype=torch.bool)
        core_mask[yc] = True

        def synthesis_loss(
            z_c: Tensor, y_hat_of: Callable[[Tensor, Tensor], Tensor]
        ) -> tuple[Tensor, Tensor]:
            """(λ·D, bits) of the window for core z values ``z_c`` and ŷ(y window, means)."""
            z_win = z_ctx.clone()
            z_win[zc] = z_c
            scales, means = self.t.split_params(self.t.h_s(z_win + self.z_offsets.to(dev).float()).float())
            scales, means = scales[hs_crop], means[hs_crop]
            y_win = y_ctx.clone()
            y_win[yc] = y_var
            y_hat = torch.where(
                core_mask, y_hat_of(y_win, means), means + torch.round(y_ctx - means).detach()
            )
            bits = self.z_rate(z_c).sum() + gaussian_rate(y_hat - means, scales).sum()
            with codec.fast_math(dev):  # g_s as the decoder runs it
                g_in = (y_hat * self.inverse_gain).contiguous(memory_format=torch.channels_last)
                x_hat = self.t.g_s(g_in).float()[pix_crop]
            return self.lmbda * self._distortion(x_hat, x), bits

        hyper_cache: dict[bytes, tuple[Tensor, np.ndarray]] = {}

        def exact_hyper(z_hard: Tensor) -> tuple[Tensor, np.ndarray]:
            """The window's exact means and table indexes for ẑ symbols ``z_hard`` (float64);
            the last ẑ's are kept, since greedy rounds leave ẑ as it is."""
            key = z_hard.numpy().tobytes()
            if key not in hyper_cache:
                scales, means = self.model.hyper_synthesis(z_hard + self.z_offsets)
                scales, means = scales[hs_crop], means[hs_crop]
                hyper_cache.clear()
                hyper_cache[key] = means, scale_indexes(scales.flatten().numpy(), self.model.scale_table)
            return hyper_cache[key]

        def score(step: int, with_grad: bool = False) -> _Candidate:
            """Hard rounding with exact means, as the coder will code: the objective, and with
            ``with_grad`` the gradient of λ·D at that ŷ (one backward pass through g_s)."""
            with torch.no_grad():
                z_win = z_ctx.clone()
                z_win[zc] = torch.round(self.z_rate.clamp(z_var))
                z_hard = z_win.cpu().double()
                means, index = exact_hyper(z_hard)
                y_win = y_ctx.clone()
                y_win[yc] = y_var
                means_np = means.numpy()
                k = quantisation.y_symbols(y_win.cpu().double().numpy(), means_np, index, self.model.y_tables)
                y_exact = torch.from_numpy(quantisation.dequantize(k, means_np))
            y_in, grad = y_exact.to(dev), None
            with torch.enable_grad() if with_grad else torch.no_grad():
                if with_grad:
                    core = y_in[yc].clone().requires_grad_(True)
                    y_in = y_in.clone()
                    y_in[yc] = core
                with codec.fast_math(dev):  # g_s as the decoder runs it
                    g_in = (y_in * self.inverse_gain).contiguous(memory_format=torch.channels_last)
                    x_hat = self.t.g_s(g_in).float()[pix_crop]
                if with_grad:
                    (grad,) = torch.autograd.grad(self.lmbda * self._distortion(x_hat, x), core)
            with torch.no_grad():
                shown = self._shown(x_hat)
                dist, maps = self._shown_distortion(shown, x)
            z_core = z_hard[zc]
            zs = z_core.flatten().numpy().astype(np.int64)
            z_index = np.repeat(np.arange(z_core.shape[1]), z_core.shape[2] * z_core.shape[3])
            bits = table_bits(zs, z_index, self.model.z_tables) + table_bits(k, index, self.model.y_tables)
            objective = self.lmbda * dist + bits / num_pixels
            if TRACE is not None:
                TRACE.append((step, objective, bits / num_pixels, dist))
            return _Candidate(
                objective,
                z_core.float(),
                y_exact[yc].clone(),
                k.reshape(means.shape)[yc],
                index.reshape(means.shape)[yc],
                means[yc],
                y_exact,
                grad,
                shown,
                maps,
            )

        def curvature(y_hat: Tensor) -> Tensor:
            """Per-channel curvature of λ·D at the window's ŷ, (1, C, 1, 1): a Hutchinson estimate
            (random signs r; E[r ⊙ (∇(ŷ + r) − ∇(ŷ))] is the Hessian's diagonal) on a block of
            at most CURVATURE_BLOCK² core positions, scored on the pixels it reaches; per unit
            of ``coverage`` (greedy rounding scales it by each position's coverage)."""
            (ya, yb), (xa, xb) = (_centred(sl, CURVATURE_BLOCK) for sl in yc[2:])
            reach = CURVATURE_REACH
            rows = (max(16 * (ya - reach), pix_crop[2].start), min(16 * (yb + reach), pix_crop[2].stop))
            cols = (max(16 * (xa - reach), pix_crop[3].start), min(16 * (xb + reach), pix_crop[3].stop))
            ia, ib = max(0, ya - reach - 1), min(y_hat.shape[2], yb + reach + 1)
            ja, jb = max(0, xa - reach - 1), min(y_hat.shape[3], xb + reach + 1)
            block = (slice(None), slice(None), slice(ya - ia, yb - ia), slice(xa - ja, xb - ja))
            out = (slice(None), slice(None), slice(rows[0] - 16 * ia, rows[1] - 16 * ia))
            out += (slice(cols[0] - 16 * ja, cols[1] - 16 * ja),)
            x_block = x[:, :, rows[0] - pix_crop[2].start : rows[1] - pix_crop[2].start]
            x_block = x_block[:, :, :, cols[0] - pix_crop[3].start : cols[1] - pix_crop[3].start]
            share = (rows[1] - rows[0]) * (cols[1] - cols[0]) / num_pixels  # of the window's D
            y_in = y_hat[:, :, ia:ib, ja:jb].to(dev)
            r = torch.randint(0, 2, y_in[block].shape, generator=gen).float().mul_(2).sub_(1).to(dev)

            def grad_at(shift: Tensor | float) -> Tensor:
                with torch.enable_grad():
                    v = (y_in[block] + shift).requires_grad_(True)
                    y_pert = y_in.clone()
                    y_pert[block] = v
                    with codec.fast_math(dev):
                        g_in = (y_pert * self.inverse_gain).contiguous(memory_format=torch.channels_last)
                        x_hat = self.t.g_s(g_in).float()[out]
                    loss = self.lmbda * share * self._distortion(x_hat, x_block)
                    return torch.autograd.grad(loss, v)[0]

            hessian_r = (grad_at(CURVATURE_STEP * r) - grad_at(0.0)) / CURVATURE_STEP
            # Per unit of coverage: a block that reaches into the padding would otherwise be
            # averaged down by positions that barely touch the picture.
            in_core = (slice(ya - yc[2].start, yb - yc[2].start), slice(xa - yc[3].start, xb - yc[3].start))
            block_coverage = max(float(coverage[in_core].mean()), 0.01)
            return (hessian_r * r).mean(dim=(0, 2, 3), keepdim=True).clamp_min(0.0) / block_coverage

        def round_greedily(start: _Candidate, h: Tensor, step: int, last: bool) -> _Candidate:
            """One round of greedy rounding from ``start`` (scored with its gradient); the
            result is scored, with its gradient unless it is the ``last`` round. With
            ``keep_where_helped`` the round is scored, cut back to the positions where it helped
            and scored again, and the better of the two is the result (``start`` when neither
            beats it)."""
            assert start.grad is not None
            settings = greedy_settings(self.metric, sched.greedy_rounds)
            moves = greedy_steps(
                start.k,
                start.index,
                self.model.y_tables,
                start.grad.cpu().double().numpy(),
                h.cpu().double().numpy() * coverage,
                num_pixels,
                settings,
            )
            if not moves.any():
                return start
            if not settings.keep_where_helped:
                return score_at(start.z_core, with_moves(start, moves), step, with_grad=not last)
            candidate = score_at(start.z_core, with_moves(start, moves), step, with_grad=False)
            kept = moves * helped(start, candidate, moves)
            if kept.any() and not np.array_equal(kept, moves):
                kept_only = score_at(start.z_core, with_moves(start, kept), step, with_grad=not last)
                candidate = min(candidate, kept_only, key=lambda c: c.objective)
            if candidate.objective >= start.objective:
                return start  # no better: the rounds stop here (no gradient pass for nothing)
            if candidate.grad is None and not last:
                candidate = score_at(candidate.z_core, candidate.y_core, step, with_grad=True)
            return candidate

        def with_moves(start: _Candidate, moves: np.ndarray) -> Tensor:
            """The core ŷ of ``start`` with its residuals moved by ``moves``."""
            return (start.means + torch.from_numpy((start.k + moves).astype(np.float64))).float()

        def helped(start: _Candidate, candidate: _Candidate, moves: np.ndarray) -> np.ndarray:
            """Where the round from ``start`` to ``candidate`` lowered J, (1, 1, H, W) bool over
            the core's y positions: the exact change of bits plus λ times the change of D laid
            out by neuralcodec.local_acceptance."""
            tables = self.model.y_tables
            bits = symbol_bits(start.k + moves, start.index, tables)
            bits -= symbol_bits(start.k, start.index, tables)
            grid = moves.shape[2:]
            before, target = self._as_measured(start.shown, x)
            after, _ = self._as_measured(candidate.shown, x)
            maps = (start.maps, candidate.maps) if self.metric == "ms-ssim" else None
            distortion = distortion_change_per_position(
                self.metric, before, after, target, (p0 - 64 * r0, q0 - 64 * c0), grid, maps
            )
            change = self.lmbda * distortion + bits.sum(axis=(0, 1)) / num_pixels
            return (change < 0)[None, None]

        # Latents whose picture lies mostly in the padding barely change the scored pixels.
        coverage = latent_coverage(
            (4 * (r1 - r0), 4 * (c1 - c0)), (p0 - 64 * r0, p1 - 64 * r0), (q0 - 64 * c0, q1 - 64 * c0)
        )

        def score_at(z_core: Tensor, y_core: Tensor, step: int, with_grad: bool) -> _Candidate:
            """``score`` of the given core latents (hard ẑ symbols, ŷ = μ_exact + k)."""
            with torch.no_grad():
                z_var.copy_(z_core.to(dev))
                y_var.copy_(y_core.to(dev))
            return score(step, with_grad)

        n = sched.iterations
        rounds = sched.greedy_rounds
        every = max(2, n // 8)
        checkpoints = {n} | {i for i in range(n // 2, n) if (n - i) % every == 0}
        best = score(0, with_grad=rounds > 0 and n == 0)  # the effort-0 result: kept unless beaten
        # ANS streams end in whole 32-bit words after a 64-bit state: a candidate must beat the
        # start by more than that overhead can vary (64 bits per band stream and z) to replace it.
        bands = -(-(r1 - r0) // codec.BAND_ROWS) + 1
        to_beat = best.objective - 64 * (bands + 1) / num_pixels
        if n:  # SGA: only here are the schedule's lr and temperatures set
            opt = Adam([z_var, y_var], lr=sched.lr)
            for i in range(n):
                frac = i / max(1, n - 1)
                tau = sched.tau_start * (sched.tau_end / sched.tau_start) ** frac
                z_soft = _sga_round(self.z_rate.clamp(z_var), tau, _logistic(gen, z_var.shape, dev))

                def soft_y(y_win: Tensor, means: Tensor, tau: float = tau) -> Tensor:
                    return means + _sga_round(y_win - means, tau, _logistic(gen, y_win.shape, dev))

                distortion, bits = synthesis_loss(z_soft, soft_y)
                loss = distortion + bits / num_pixels
                opt.zero_grad()
                loss.backward()
                opt.step()
                tick()
                if i + 1 in checkpoints:
                    candidate = score(i + 1, with_grad=rounds > 0 and i + 1 == n)
                    if candidate.objective < min(best.objective, to_beat):
                        best = candidate
        if rounds:
            # The gradient at the best candidate (already there unless SGA's last one lost).
            current = best if best.grad is not None else score_at(best.z_core, best.y_core, n, with_grad=True)
            h = curvature(current.y_window)
            for r in range(rounds):
                candidate = round_greedily(current, h, n + 1 + r, last=r == rounds - 1)
                tick()
                if candidate.objective >= current.objective:  # no better: later rounds would repeat it
                    for _ in range(r + 1, rounds):
                        tick()
                    break
                current = candidate
            if current.objective < min(best.objective, to_beat):
                best = current
        self.z[:, :, r0:r1, c0:c1] = best.z_core
        self.y[:, :, 4 * r0 : 4 * r1, 4 * c0 : 4 * c1] = best.y_core


def _centred(span: slice, size: int) -> tuple[int, int]:
    """The centred sub-range of at most ``size`` of the range ``span``."""
    start = max(span.start, (span.start + span.stop) // 2 - size // 2)
    return start, min(span.stop, start + size)


def _pixel_reader(x: Tensor | np.ndarray, b: int) -> Callable[[int, int, int, int], Tensor]:
    """Reader of image ``b`` of the batch as (1, 3, h, w) floats in [0, 1] (regions inside it)."""
    if isinstance(x, np.ndarray):
        return lambda top, left, h, w: (
            torch.from_numpy(np.array(x[b : b + 1, top : top + h, left : left + w]))
            .permute(0, 3, 1, 2)
            .float()
            .div_(255.0)
        )
    return lambda top, left, h, w: x[b : b + 1, :, top : top + h, left : left + w].float()


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
    measured there.
    """
    sched = schedule if schedule is not None else schedule_for(effort)
    dev = codec.resolve_device(device)
    height, width = (x.shape[1], x.shape[2]) if isinstance(x, np.ndarray) else (x.shape[2], x.shape[3])
    batch = y.shape[0]
    level = codec.quality_to_level(model, quality)
    windows = _windows(z.shape[2], z.shape[3], height, width, tile_geometry(sched))
    total, done = batch * len(windows) * (sched.iterations + sched.greedy_rounds), 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    offsets = codec.z_offsets(model).float()
    y_out, z_out = y.detach().clone().float().cpu(), z.detach().float().cpu() - offsets
    with torch.inference_mode(False), torch.enable_grad():
        for b in range(batch):
            refiner = _ImageRefiner(
                model, _pixel_reader(x, b), y_out[b : b + 1], z_out[b : b + 1], level, dev, gray_output
            )
            gen = torch.Generator().manual_seed(SEED)  # per image: batching does not change bytes
            for window in windows:
                refiner.refine_window(window, sched, gen, tick)
    return y_out, z_out + offsets  # symbol + offset: exact in float32, as the coder rounds it
