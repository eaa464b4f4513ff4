"""The refinement of one window's latents (``WindowRefinement``): SGA iterations on the soft
objective, then rounds of greedy rounding, every candidate scored exactly and the best kept."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import torch
from torch import Tensor

from neuralcodec.adam import Adam
from neuralcodec.entropy_models import symbol_bits
from neuralcodec.greedy_rounding import greedy_settings, greedy_steps
from neuralcodec.local_acceptance import distortion_change_per_position
from neuralcodec.refinement.geometry import Window
from neuralcodec.refinement.objective import Objective
from neuralcodec.refinement.rate_model import RateModel, WindowRate
from neuralcodec.refinement.schedule import Schedule
from neuralcodec.refinement.sga import logistic_noise, sga_round

CURVATURE_BLOCK = 12  # side, in y positions, of the core block whose curvature greedy rounding estimates
CURVATURE_REACH = 3  # y positions around that block whose pixels it scores (a y position's reach)
CURVATURE_STEP = 0.05  # finite-difference step of the curvature estimate (in ŷ units)

# (iteration, objective, bits per pixel, distortion) of every scored candidate; 0: the start.
Trace = list[tuple[int, float, float, float]]


@dataclass
class Candidate:
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


def _centred(span: slice, size: int) -> tuple[int, int]:
    """The centred sub-range of at most ``size`` of the range ``span``."""
    start = max(span.start, (span.start + span.stop) // 2 - size // 2)
    return start, min(span.stop, start + size)


@dataclass(eq=False)
class WindowRefinement:
    """One window's refinement: the latents being optimised (``z_var``: the core's ẑ symbols,
    ``y_var``: its y) in the window's fixed context, and the best candidate scored so far.

    ``run`` returns the best candidate, the start (the effort-0 result) included: a candidate
    other than the start must beat it by more than the rate model's word rounding.
    """

    window: Window
    objective: Objective
    rate: WindowRate
    schedule: Schedule
    x: Tensor  # the scored input pixels (1, 3, h, w) in [0, 1], on the device
    y_context: Tensor  # the window's y as it stands (1, M, ·, ·), on the device
    z_var: Tensor  # the core's ẑ symbols, optimised (on the device)
    y_var: Tensor  # the core's y, optimised (on the device)
    gen: torch.Generator  # the Gumbel noise's and the curvature's random signs
    tick: Callable[[], None]  # called after every SGA iteration and every greedy round
    trace: Trace | None = None  # every scored candidate is appended, when a list
    core_mask: Tensor = field(init=False)  # the core in ``y_context``
    coverage: np.ndarray = field(init=False)  # ``Window.coverage``
    best: Candidate = field(init=False)
    to_beat: float = field(init=False)  # what a candidate other than the start must beat

    def __post_init__(self) -> None:
        self.core_mask = torch.zeros_like(self.y_context, dtype=torch.bool)
        self.core_mask[self.window.y_core] = True
        self.coverage = self.window.coverage()

    @classmethod
    def start(
        cls,
        window: Window,
        y: Tensor,
        z: Tensor,
        x: Tensor,
        objective: Objective,
        rate_model: RateModel,
        schedule: Schedule,
        gen: torch.Generator,
        tick: Callable[[], None],
        trace: Trace | None = None,
    ) -> WindowRefinement:
        """The refinement of ``window`` of an image whose latents stand at ``y`` and ``z`` (ẑ
        symbols), both (1, ·, ·, ·) float32 CPU; ``x``: the window's scored pixels."""
        dev = objective.device
        return cls(
            window,
            objective,
            rate_model.window(z, window),
            schedule,
            x.to(dev),
            y[window.image_win_y].to(dev),
            z[window.image_z_core].clone().to(dev).requires_grad_(True),
            y[window.image_y_core].clone().to(dev).requires_grad_(True),
            gen,
            tick,
            trace,
        )

    @property
    def num_pixels(self) -> int:
        return self.window.num_pixels

    def run(self) -> Candidate:
        """The schedule's SGA iterations, then its greedy rounds; the best candidate."""
        n, rounds = self.schedule.iterations, self.schedule.greedy_rounds
        self.best = self.score(0, with_grad=rounds > 0 and n == 0)  # the effort-0 result: kept unless beaten
        self.to_beat = self.best.objective - self.rate.word_rounding_bits() / self.num_pixels
        if n:
            self.run_sga()
        if rounds:
            self.run_greedy_rounds()
        return self.best

    def consider(self, candidate: Candidate) -> None:
        """Keep ``candidate`` if it beats the best so far and the start's bar."""
        if candidate.objective < min(self.best.objective, self.to_beat):
            self.best = candidate

    # -- SGA ------------------------------------------------------------------------------
    def soft_latents(self, means: Tensor, tau: float) -> Tensor:
        """The window's ŷ around ``means``: the core softly rounded at temperature ``tau`` (fresh
        Gumbel noise), the context hard-rounded (constant)."""
        y_win = self.y_context.clone()
        y_win[self.window.y_core] = self.y_var
        noise = logistic_noise(self.gen, y_win.shape, self.objective.device)
        return torch.where(
            self.core_mask,
            means + sga_round(y_win - means, tau, noise),
            means + torch.round(self.y_context - means).detach(),
        )

    def synthesis_loss(self, z_core: Tensor, tau: float) -> tuple[Tensor, Tensor]:
        """(λ·D, bits) of the window for soft core ẑ symbols ``z_core`` and the core's y softly
        rounded at ``tau``; differentiable."""
        y_hat, bits = self.rate.soft(z_core, partial(self.soft_latents, tau=tau))
        x_hat = self.objective.synthesise(y_hat, self.window.pixel_crop)
        return self.objective.lmbda * self.objective.distortion(x_hat, self.x), bits

    def run_sga(self) -> None:
        """The schedule's SGA iterations: Adam on the soft objective, the latents scored at the
        schedule's checkpoints."""
        sched = self.schedule
        n = sched.iterations
        opt = Adam([self.z_var, self.y_var], lr=sched.lr)
        checkpoints = sched.checkpoints()
        for i in range(n):
            tau = sched.temperature(i)
            noise = logistic_noise(self.gen, self.z_var.shape, self.objective.device)
            z_soft = sga_round(self.rate.clamp_z(self.z_var), tau, noise)
            distortion, bits = self.synthesis_loss(z_soft, tau)
            loss = distortion + bits / self.num_pixels
            opt.zero_grad()
            loss.backward()
            opt.step()
            self.tick()
            if i + 1 in checkpoints:
                self.consider(self.score(i + 1, with_grad=sched.greedy_rounds > 0 and i + 1 == n))

    # -- exact scoring --------------------------------------------------------------------
    def score(self, step: int, with_grad: bool = False) -> Candidate:
        """Hard rounding with exact means, as the coder will code: the objective, and with
        ``with_grad`` the gradient of λ·D at that ŷ (one backward pass through g_s)."""
        yc, crop, objective = self.window.y_core, self.window.pixel_crop, self.objective
        with torch.no_grad():
            y_win = self.y_context.clone()
            y_win[yc] = self.y_var
        exact = self.rate.exact(self.z_var, y_win)
        y_in, grad = exact.y_hat.to(objective.device), None
        with torch.enable_grad() if with_grad else torch.no_grad():
            if with_grad:
                core = y_in[yc].clone().requires_grad_(True)
                y_in = y_in.clone()
                y_in[yc] = core
            x_hat = objective.synthesise(y_in, crop)
            if with_grad:
                (grad,) = torch.autograd.grad(objective.lmbda * objective.distortion(x_hat, self.x), core)
        with torch.no_grad():
            shown = objective.shown(x_hat)
            dist, maps = objective.shown_distortion(shown, self.x)
        total = objective.lmbda * dist + exact.bits / self.num_pixels
        if self.trace is not None:
            self.trace.append((step, total, exact.bits / self.num_pixels, dist))
        shape = exact.means.shape
        return Candidate(
            total,
            exact.z_core.float(),
            exact.y_hat[yc].clone(),
            exact.k.reshape(shape)[yc],
            exact.index.reshape(shape)[yc],
            exact.means[yc],
            exact.y_hat,
            grad,
            shown,
            maps,
        )

    def score_at(self, z_core: Tensor, y_core: Tensor, step: int, with_grad: bool) -> Candidate:
        """``score`` of the given core latents (hard ẑ symbols, ŷ = μ_exact + k)."""
        with torch.no_grad():
            self.z_var.copy_(z_core.to(self.objective.device))
            self.y_var.copy_(y_core.to(self.objective.device))
        return self.score(step, with_grad)

    # -- greedy rounding ------------------------------------------------------------------
    def run_greedy_rounds(self) -> None:
        """The schedule's greedy rounds from the best candidate, until one does not improve."""
        n, rounds = self.schedule.iterations, self.schedule.greedy_rounds
        best = self.best
        # The gradient at the best candidate (already there unless SGA's last one lost).
        current = (
            best if best.grad is not None else self.score_at(best.z_core, best.y_core, n, with_grad=True)
        )
        h = self.curvature(current.y_window)
        for r in range(rounds):
            candidate = self.round_greedily(current, h, n + 1 + r, last=r == rounds - 1)
            self.tick()
            if candidate.objective >= current.objective:  # no better: later rounds would repeat it
                for _ in range(r + 1, rounds):
                    self.tick()
                break
            current = candidate
        self.consider(current)

    def _distortion_gradient(
        self,
        y_in: Tensor,
        block: tuple[slice, ...],
        out: tuple[slice, ...],
        x: Tensor,
        share: float,
        shift: Tensor | float,
    ) -> Tensor:
        """∂(λ·share·D)/∂ŷ on ``block`` of ``y_in`` moved by ``shift``, D measured on the ``out``
        crop of g_s's output against ``x``."""
        with torch.enable_grad():
            v = (y_in[block] + shift).requires_grad_(True)
            y_pert = y_in.clone()
            y_pert[block] = v
            x_hat = self.objective.synthesise(y_pert, out)
            loss = self.objective.lmbda * share * self.objective.distortion(x_hat, x)
            return torch.autograd.grad(loss, v)[0]

    def curvature(self, y_hat: Tensor) -> Tensor:
        """Per-channel curvature of λ·D at the window's ŷ, (1, C, 1, 1): a Hutchinson estimate
        (random signs r; E[r ⊙ (∇(ŷ + r) − ∇(ŷ))] is the Hessian's diagonal) on a block of
        at most CURVATURE_BLOCK² core positions, scored on the pixels it reaches; per unit
        of ``coverage`` (greedy rounding scales it by each position's coverage)."""
        yc, pix_crop = self.window.y_core, self.window.pixel_crop
        (ya, yb), (xa, xb) = (_centred(sl, CURVATURE_BLOCK) for sl in yc[2:])
        reach = CURVATURE_REACH
        rows = (max(16 * (ya - reach), pix_crop[2].start), min(16 * (yb + reach), pix_crop[2].stop))
        cols = (max(16 * (xa - reach), pix_crop[3].start), min(16 * (xb + reach), pix_crop[3].stop))
        ia, ib = max(0, ya - reach - 1), min(y_hat.shape[2], yb + reach + 1)
        ja, jb = max(0, xa - reach - 1), min(y_hat.shape[3], xb + reach + 1)
        block = (slice(None), slice(None), slice(ya - ia, yb - ia), slice(xa - ja, xb - ja))
        out = (slice(None), slice(None), slice(rows[0] - 16 * ia, rows[1] - 16 * ia))
        out += (slice(cols[0] - 16 * ja, cols[1] - 16 * ja),)
        x_block = self.x[:, :, rows[0] - pix_crop[2].start : rows[1] - pix_crop[2].start]
        x_block = x_block[:, :, :, cols[0] - pix_crop[3].start : cols[1] - pix_crop[3].start]
        share = (rows[1] - rows[0]) * (cols[1] - cols[0]) / self.num_pixels  # of the window's D
        dev = self.objective.device
        y_in = y_hat[:, :, ia:ib, ja:jb].to(dev)
        r = torch.randint(0, 2, y_in[block].shape, generator=self.gen).float().mul_(2).sub_(1).to(dev)
        gradient = partial(self._distortion_gradient, y_in, block, out, x_block, share)
        hessian_r = (gradient(CURVATURE_STEP * r) - gradient(0.0)) / CURVATURE_STEP
        # Per unit of coverage: a block that reaches into the padding would otherwise be
        # averaged down by positions that barely touch the picture.
        in_core = (slice(ya - yc[2].start, yb - yc[2].start), slice(xa - yc[3].start, xb - yc[3].start))
        block_coverage = max(float(self.coverage[in_core].mean()), 0.01)
        return (hessian_r * r).mean(dim=(0, 2, 3), keepdim=True).clamp_min(0.0) / block_coverage

    def round_greedily(self, start: Candidate, h: Tensor, step: int, last: bool) -> Candidate:
        """One round of greedy rounding from ``start`` (scored with its gradient); the
        result is scored, with its gradient unless it is the ``last`` round. With
        ``keep_where_helped`` the round is scored, cut back to the positions where it helped
        and scored again, and the better of the two is the result (``start`` when neither
        beats it)."""
        assert start.grad is not None
        settings = greedy_settings(self.objective.metric, self.schedule.greedy_rounds)
        moves = greedy_steps(
            start.k,
            start.index,
            self.rate.y_tables,
            start.grad.cpu().double().numpy(),
            h.cpu().double().numpy() * self.coverage,
            self.num_pixels,
            settings,
        )
        if not moves.any():
            return start
        if not settings.keep_where_helped:
            return self.score_at(start.z_core, self.with_moves(start, moves), step, with_grad=not last)
        candidate = self.score_at(start.z_core, self.with_moves(start, moves), step, with_grad=False)
        kept = moves * self.helped(start, candidate, moves)
        if kept.any() and not np.array_equal(kept, moves):
            kept_only = self.score_at(start.z_core, self.with_moves(start, kept), step, with_grad=not last)
            candidate = min(candidate, kept_only, key=lambda c: c.objective)
        if candidate.objective >= start.objective:
            return start  # no better: the rounds stop here (no gradient pass for nothing)
        if candidate.grad is None and not last:
            candidate = self.score_at(candidate.z_core, candidate.y_core, step, with_grad=True)
        return candidate

    @staticmethod
    def with_moves(start: Candidate, moves: np.ndarray) -> Tensor:
        """The core ŷ of ``start`` with its residuals moved by ``moves``."""
        return (start.means + torch.from_numpy((start.k + moves).astype(np.float64))).float()

    def helped(self, start: Candidate, candidate: Candidate, moves: np.ndarray) -> np.ndarray:
        """Where the round from ``start`` to ``candidate`` lowered J, (1, 1, H, W) bool over
        the core's y positions: the exact change of bits plus λ times the change of D laid
        out by neuralcodec.local_acceptance."""
        tables = self.rate.y_tables
        bits = symbol_bits(start.k + moves, start.index, tables)
        bits -= symbol_bits(start.k, start.index, tables)
        grid = moves.shape[2:]
        objective = self.objective
        before, target = objective.as_measured(start.shown, self.x)
        after, _ = objective.as_measured(candidate.shown, self.x)
        maps = (start.maps, candidate.maps) if objective.metric == "ms-ssim" else None
        distortion = distortion_change_per_position(
            objective.metric, before, after, target, self.window.scored_origin, grid, maps
        )
        change = objective.lmbda * distortion + bits.sum(axis=(0, 1)) / self.num_pixels
        return (change < 0)[None, None]
