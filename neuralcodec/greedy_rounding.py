"""Greedy rounding: move single latents of ŷ to the next integer where the objective drops.

Once the latents are hard-rounded (the analysis output at effort 0, or SGA's result), a
residual k = ŷ − μ may do better at k + 1 or k − 1: fewer bits where the picture barely
changes, or less distortion for a few bits more. Trying each flip on its own would take one
synthesis per latent; instead every flip is predicted from a quadratic model of J = λ·D + bits
per pixel around the current ŷ:

    ΔJ(±1) = Δbits / pixels ± ∂(λ·D)/∂ŷ + ½ · h_c · coverage,

with the exact bit change from the integer tables, the gradient from one backward pass through
g_s, h_c a per-channel curvature of λ·D (a Hutchinson estimate: E[r ⊙ H r] for random
signs r is the Hessian's diagonal) and ``coverage`` the share of the latent's picture that lies
in the image rather than the padding (``latent_coverage``). Flips whose predicted ΔJ is
negative are made together. They interact where they share pixels, which the diagonal model
cannot see, so at most a few channels flip at one spatial position (the most promising ones;
``GREEDY_SETTINGS``).

This module only predicts (``greedy_steps``). neuralcodec.refine scores every round exactly (hard
rounding, exact means, table bits, the decoder's g_s) and keeps it only if J really dropped, so a
round never makes the result worse. With ``keep_where_helped`` it first lays the scored round's
exact change of bits and of distortion out over the y positions (``neuralcodec.local_acceptance``),
keeps the flips only where J dropped and scores that too: one synthesis more per round.

The settings were fitted on training photos and checked on Kodak; what else was tried, with its
numbers, is in docs/experiments.md ("Latent refinement").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuralcodec.entropy_models import TableSet, symbol_bits


@dataclass(frozen=True)
class GreedySettings:
    """How boldly one round flips."""

    curvature_scale: float  # the estimated curvature is multiplied by this
    flips_per_position: int  # most channels moved at one spatial position in one round
    # Score the round, then keep its flips only at the y positions where that score shows the
    # bits and the decoded picture gained (neuralcodec.local_acceptance), and score again.
    keep_where_helped: bool = False


# Per metric, by the fewest rounds of a schedule they apply to (see ``greedy_settings``): MSE
# rounds flip at most four channels per position, MS-SSIM ones, far from quadratic in ŷ, at most
# three; every round of both keeps its flips only where they helped.
GREEDY_SETTINGS: dict[str, dict[int, GreedySettings]] = {
    "mse": {1: GreedySettings(curvature_scale=1.25, flips_per_position=4, keep_where_helped=True)},
    "ms-ssim": {1: GreedySettings(curvature_scale=1.0, flips_per_position=3, keep_where_helped=True)},
}


def greedy_settings(metric: str, rounds: int) -> GreedySettings:
    """The settings of every round of a schedule that runs ``rounds`` rounds for ``metric``:
    ``GREEDY_SETTINGS``' entry for the most rounds not above ``rounds``; KeyError for an
    unknown metric."""
    by_rounds = GREEDY_SETTINGS[metric]
    return by_rounds[max((r for r in by_rounds if r <= rounds), default=min(by_rounds))]


# Share of a y position's synthesis response (energy) that falls in its own 16-pixel cell and in
# each neighbouring cell, per axis: measured on the shipped models (an impulse on the latents of a
# Kodak crop: 83 % (mse) / 70 % (msssim) within ±8 pixels of the cell centre, 98 % / 95 % within ±16).
_OWN_CELL_SHARE = 0.8


def latent_coverage(
    size_y: tuple[int, int], scored_rows: tuple[int, int], scored_cols: tuple[int, int]
) -> np.ndarray:
    """The share of each y position's effect on the picture that lands on scored pixels, (H, W), in [0, 1].

    ``size_y``: the latent grid (H, W), y position (i, j) covering pixels 16i..16i+15,
    16j..16j+15; ``scored_rows`` / ``scored_cols``: the pixel range [start, stop) that distortion
    is measured on (the image; the rest is padding). Separable: per axis the overlap of a
    position's cell with the range, blended with its neighbours' (``_OWN_CELL_SHARE``), since a
    latent's response reaches about half a cell further. 1 well inside the image, 0 for a
    position whose cell and neighbours lie in the padding.
    """

    def axis(n: int, span: tuple[int, int]) -> np.ndarray:
        start = 16 * np.arange(n)
        own = np.clip(np.minimum(start + 16, span[1]) - np.maximum(start, span[0]), 0, 16) / 16.0
        padded = np.concatenate([own[:1], own, own[-1:]])
        side = (1.0 - _OWN_CELL_SHARE) / 2
        return _OWN_CELL_SHARE * own + side * (padded[:-2] + padded[2:])

    return np.outer(axis(size_y[0], scored_rows), axis(size_y[1], scored_cols))


def greedy_steps(
    k: np.ndarray,
    index: np.ndarray,
    tables: TableSet,
    grad: np.ndarray,
    curvature: np.ndarray,
    pixels: int,
    settings: GreedySettings,
) -> np.ndarray:
    """The step (−1, 0 or +1, int64, the shape of ``k``) to give each residual.

    ``k``: int64 residuals (B, C, H, W), inside their tables; ``index``: their table indexes;
    ``grad``: ∂(λ·D)/∂ŷ at ŷ = μ + k; ``curvature``: the estimated curvature of λ·D per
    channel, broadcastable to ``k`` (e.g. (1, C, 1, 1)); ``pixels``: what bits are divided by
    in J. A step is nonzero only where the predicted change of J is negative, never takes a
    symbol outside its table, and at most ``settings.flips_per_position`` channels of one
    (b, ·, h, w) move. Deterministic: ties are broken by channel order.
    """
    bits = symbol_bits(k, index, tables)
    half_curvature = 0.5 * settings.curvature_scale * curvature
    best_change = np.zeros(k.shape)
    best_step = np.zeros(k.shape, dtype=np.int64)
    for step in (1, -1):
        moved = tables.clamp(k + step, index)
        change = np.where(
            moved == k + step,
            (symbol_bits(moved, index, tables) - bits) / pixels + step * grad + half_curvature,
            np.inf,
        )
        better = change < best_change
        best_change = np.where(better, change, best_change)
        best_step = np.where(better, step, best_step)
    if settings.flips_per_position < k.shape[1]:
        rank = np.argsort(np.argsort(best_change, axis=1, kind="stable"), axis=1, kind="stable")
        best_step = np.where(rank < settings.flips_per_position, best_step, 0)
    return best_step
