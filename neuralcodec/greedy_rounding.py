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
``GREEDY_SETTINGS``); refinement then scores the result exactly and keeps it only if J really dropped.
With ``keep_where_helped`` (every round of both models since session 22; ``keep_where_helped_last``
does it in a schedule's last round only) it first lays the scored round's exact change of bits and
change of distortion out over the y positions (``neuralcodec.local_acceptance``), keeps the
flips only where J dropped, and scores that: one synthesis more per round kept so.

Measured on training photos (``benchmarks/refine_schedules.py``, 6 centre crops of 160²,
qualities 20/50/80, one round; mean change of J against effort 0; AMD EPYC, one thread;
but see session 14 below on these crops' padding):

- ``mse``, at most 6 flips per position, curvature scale 0.7 / 1 / 1.5 / 2 / 3: −1.94 / −2.43 /
  −2.99 / −3.00 / −2.34 %; scale 1.75 with at most 3 / 6 / 12 flips: −2.94 / −3.08 / −1.20 %;
  two rounds −3.43 %. For comparison, 16 SGA iterations: −3.24 % in five times the time.
- ``msssim``, at most 6 flips, scale 2 / 3: −0.02 / −0.38 %; at most one flip per position,
  scale 1.5 / 2 / 3 / 5: −1.99 / −1.76 / −1.39 / −0.60 %; two flips, scale 2: −1.47 %; one flip,
  scale 1.5, two rounds: −2.98 %.

Re-measured in session 13 (same crops and qualities), where several rounds run:

- ``mse``, two rounds at most 6 / 3 / 2 flips per position each: −3.43 / −3.87 / −3.84 %
  (6 then 3: −3.71 %; curvature scale 1.5 / 2 with 3 flips: −3.86 / −3.68 %); three rounds of
  3 flips −4.24 %; 8 SGA iterations then two rounds of 6 / 3 flips: −4.24 / −4.77 %. Each
  round undoes part of the one before, so bold single rounds and cautious repeated ones do best.
- ``msssim``, one flip per position, curvature scale 1.5 / 1 / 0.85 / 0.7 / 0.6 / 0.5 in one
  round: −1.99 / −2.13 / −2.12 / −2.18 / −2.21 / −2.19 %; two rounds at 1.5 / 1 / 0.7 / 0.5:
  −2.98 / −3.38 / −3.69 / −3.75 %; 8 SGA iterations then two rounds at 1.5 / 0.6: −4.15 / −4.86 %.
  But the best scale depends on the image size (MS-SSIM is not a sum over pixels, so the
  curvature block's estimate scales differently): scale 0.6 made whole Kodak images *worse*
  (real bytes, 24 images, BD-rate vs effort 0: one round −1.94 → −1.49 %, two −2.95 → −2.68 %),
  and on 512² crops of 3 training photos one round at 0.6 / 1 / 1.5 / 2 / 3 gave −1.40 / −1.63 /
  −1.64 / −1.42 / −0.68 %, two rounds at 1 / 1.5 −2.68 / −2.56 %. Scale 1 is the one that does
  well at both sizes.

Session 14 found those 160² crops misleading: padded to 192², 30 % of their latents lie in the
padding, where a change barely touches the scored pixels, and the 12 × 12 curvature block
covered them too, so the per-channel curvature came out too small and a large scale made up
for it. Now each latent's curvature is weighed by its coverage of the image
(``latent_coverage``, the block's estimate taken per unit of coverage). On 160² crops (mean
change of J, as above) ``mse`` one / two rounds went from −2.81 / −3.50 % (the old settings) to
−4.12 / −5.03 % (the new ones), ``msssim`` from −2.33 / −3.48 % to −2.60 / −4.05 %. On crops
without padding (256², 14 training photos, two rounds of at most 4 flips per position) the
``mse`` curvature scale 1.25 / 1.5 / 1.75 gave −3.32 / −3.26 / −3.02 % (3 flips at 1.75, the
old setting: −2.99 %; 1.0 / 0.8: −2.97 / −2.28 % on 6 photos; at most 5, or 6 then 4: −3.14 /
−3.24 %), and one round of at most 4 / 6 / 8 flips −2.64 / −2.53 / −2.09 % (real bytes, 24
Kodak images, effort 1: at most 4 flips −4.33 %, 6 −3.90 % BD-rate vs effort 0); ``msssim``
at scale 0.5 / 0.7 / 1 / 1.5 with one flip −2.26 / −2.43 / −2.59 / −2.28 % (two flips at
1 / 2: −2.22 / −1.88 %; flipping only one colour of a checkerboard per round: −2.04 %). A
per-position curvature (a Hutchinson estimate over the
whole window, four samples) gained nothing on unpadded crops (``mse`` one round −2.23 vs
−2.32 %, ``msssim`` −1.73 vs −1.65 %); a per-channel curvature from the whole window rather than
the block, one sample, gave ``msssim`` −2.80 vs −2.68 % (512² crops, two rounds) for a full
extra gradient pass. A round's predicted gains are several times its real ones (256² crops,
one round: ``mse`` predicts −5 to −9 % of J and gets −2.5 to −3.8 %, ``msssim`` −2 to −9 % for
−1.1 to −2.8 %), and modelling the flips' interactions by the Gauss–Newton kernel of g_s (the
channels' pixel responses at the window's centre, correlated within a position or over 5 × 5
positions, applied flip by flip) gained little (``mse`` one round −2.76 / −2.96 % vs −2.71 %)
and let no more flips through (12 per position: −1.61 %).

Session 15: keeping a round only where it helped (``keep_where_helped``). Whole training photos
(qualities 20/50/80; 8 photos of about 320 × 480 and 4 of 512 × 512 to 512 × 683), ``msssim``,
two rounds: −4.81 / −3.15 % of J without, −7.08 / −4.69 % with at most two flips per position,
−7.43 / −4.69 % with three (four: −7.39 %; six: −6.90 %; three at curvature scale 1.3 / 1.7:
−7.70 / −7.60 % on the small photos but −4.54 % at 1.3 on the large ones; four at 1.7 −3.87 %
there; two at 0.7 / 0.8: −6.72 / −4.71 %); three rounds without: −5.55 % (small). One round
with it: −4.86 % against −2.82 % without (small). ``mse`` (small photos, two rounds of at most
four flips): −4.87 % without, −5.37 % with (six flips: −5.53 %), three rounds without −5.12 %:
less than the extra synthesis costs at the default effort, so ``mse`` does without. Cutting back
per 2 × 2 or 4 × 4 positions instead of per position did worse (256² crops, one round: −1.83 /
−1.77 % vs −1.83 % at one flip; at two flips 2 × 2 −2.16 % vs −2.29 % per position), as did
making the most promising single flip where a round was cut back (−2.17 % vs −2.29 %) and
skipping the second score by merging the two gradients and pictures per position (two rounds,
small photos: −6.49 % vs −7.08 %). A dead zone (rounding residuals towards the mean, by
0.03–0.3) instead raised J at every width for both models (``mse`` +0.7 % at 0.05, ``msssim``
+0.2 % at 0.03, before any round).

Session 16: ``mse`` keeps its rounds where they helped from four rounds on (8 SGA iterations +
4 rounds, the same small photos: −5.64 → −6.40 % of J; six flips per position −6.29 %; all 24
whole Kodak images, real bytes, BD-rate vs effort 0: effort 3 −5.3 → −6.7 %, effort 4 −5.6 →
−6.8 %), but not at two rounds, where it made encodes 1.38 times slower (about 3.3 s instead of
2.4 s on two threads) for −4.87 → −5.37 % of J. Dropped for ``msssim``: a second round from the
first's gradient updated by the diagonal curvature instead of a new backward pass (J −6.23 %
instead of −7.43 %; on Kodak −3.21 %, effort 1's figure); a lone round of four flips per
position at curvature scale 1.3 (small photos −5.69 % vs −5.29 %, but 4 photos of 512 × 512–683
−3.31 % vs −3.45 %), or of four flips at scale 1 (−5.42 / −3.34 %).

Session 18, with the GPU-retrained weights (8 centre crops of 320 × 480 from training photos,
qualities 20/50/80, ``mse``, mean change of J, one thread beside a benchmark): one round −2.76 %
at 1.62 s per encode, kept where helped −3.35 % at 1.88 s; two rounds −3.48 % at 2.17 s, kept
where helped in the first round only −3.95 % at 2.62 s, in both −4.31 % at 2.79 s (six flips per
position: −4.20 %). Keeping costs 16–29 % more time; scaled to the 2.77 s that two plain rounds
take on a whole Kodak image (two threads, quiet), two kept rounds would take about 3.6 s, over
the default's budget, so the ``mse`` settings stay as they are.

Session 19 (the same 8 photos, which are whole training photos of 321 × 481): keeping the
second of two rounds only where it helped (``keep_where_helped_last``) gives −4.06 % at 2.48 s
against −3.48 % at 2.12 s (the first only: −3.95 % at 2.45 s; both −4.31 % at 2.68 s; with a
curvature block of 8 positions instead of 12, −3.90 %; a reach of 2 instead of 3, −4.06 %). On
whole Kodak images (kodim01–04, qualities 60 and 75, one thread beside a training run, one run)
it takes 1.14 times as long as two plain rounds (both rounds kept: 1.25 times), so ``mse``'s
two rounds now keep the last round where it helped. All 24 whole Kodak images, real bytes:
effort 2 went from −4.47 to −5.52 % BD-rate vs effort 0 on PSNR, and takes 2.69 s per image on
two threads with nothing else running (``benchmarks/results/kodak/effort.md``).

Session 20, with ``mse`` retrained on a GPU (6.9 % smaller files at effort 0), on the same 8
photos: last round kept −5.25 % of J, both rounds kept −5.51 % (5 % more time), a curvature
scale of 1.0 / 1.5 −4.99 / −5.00 %, six flips per position −4.83 %: the settings stay. On the
24 Kodak images effort 2 now saves 4.46 % BD-rate vs effort 0 (2.82 s on two threads).

Session 21: on Kodak, keeping both of effort 2's rounds only where they helped gains more than
those photos' J suggested: all 24 whole images, real bytes, BD-rate vs effort 0 on PSNR −4.46 →
−5.15 % (section ``mse-keepboth-kodak24-e2``; the first 20 held-out photos −3.87 → −4.94 %),
for 1.12 times the time (kodim01–04, qualities 60 and 75, two threads, nothing else running,
both in one session on a slower AMD EPYC: 5.73 s against 5.11 s; on session 20's host, where
the last-round-only effort 2 took 2.82 s, about 3.2 s). So ``mse`` rounds now keep their flips
only where they helped from two rounds on.

Session 22: a lone ``mse`` round (effort 1) keeps its flips only where they helped too. Session 18
had measured that on the 8 training photos (−2.76 → −3.35 % of J for 16 % more time) and left
effort 1 as it was; on all 24 whole Kodak images, real bytes, BD-rate vs effort 0 on PSNR, it
goes −2.63 → −4.15 % (section ``mse-keep1-kodak24-e1``; the first 20 held-out photos −2.28 →
−3.79 %), for 1.20 times the time (kodim01–04, qualities 60 and 75, two threads, nothing else
running: 3.84 s against 3.19 s on a Zen 1 EPYC where effort 0 took 0.74 s).

Also session 22 (whole Kodak images kodim01/03/05/07 at qualities 40 and 75, ``mse`` effort 1, mean
change of J; evaluation images, so only to rule things out): where the curvature block sits
matters for one image (kodim03 at quality 40: −0.70 to −2.85 % with the block at the centre or
at a quadrant's), but not on average: the best of curvature scales ×0.6 / 0.8 / 1 / 1.25 chosen
per image by exact score gives −1.91 % against −1.86 % at the fixed scale, and a curvature per
quadrant (four blocks) −1.91 % for four times the curvature work. Neither is worth its time.

Session 23: cutting a kept round back once more (the positions where the kept flips still raised
J, by the same split of its exact score, one synthesis more; ``msssim`` effort 1, the 8 training
photos at qualities 20/50/80) gave −6.133 % of J against −6.126 %: a round kept where it helped is
already kept almost only where it helps. The lone ``msssim`` round's settings re-checked on 8
Urban100 training photos (512 wide, qualities 20/50/80; mean change of J): −2.548 % as shipped,
curvature scale 0.8 / 1.25 −2.512 / −2.532 %, at most 2 / 4 flips per position −2.457 / −2.481 %.
(The same round finds −6.13 % on the 8 BSDS photos above and −1.6 % on Kodak: fitting on those
small photos overstates every gain.)

An oracle on one 96² crop (``mse``, quality 50: every single flip's exact change of J, by one
synthesis each) shows what limits a round: the 1223 flips that help on their own add up to
−11.6 % of J, but made together they raise J by 3.8 %; the best 3 / 6 / 12 per position give
−3.3 / −3.9 / −3.2 %. Flips that fix the same error compete, and only a new gradient sees that.

The curvature's finite-difference step (``refine.CURVATURE_STEP``) was chosen on one Kodak
image (kodim01, ``mse``, qualities 20/50/80, one round): steps of 1 / 0.3 / 0.1 / 0.03 gave
−0.34 / −1.77 / −2.84 / −2.89 % at quality 20 (and alike at the others): a whole step measures
the secant, which g_s's curvature makes several times too large.
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
    # The same in a schedule's last round only: one synthesis more in all, not one per round.
    keep_where_helped_last: bool = False

    def keeps_where_helped(self, last: bool) -> bool:
        """Whether a round (the schedule's ``last`` or an earlier one) keeps its flips only where
        they helped."""
        return self.keep_where_helped or (self.keep_where_helped_last and last)


# Per metric, by the fewest rounds of a schedule they apply to (see ``greedy_settings``).
# Measured on training photos and Kodak (see the module docstring; sessions 14 to 22): MSE rounds
# flip at most four channels per position (a bold lone round helped only on padded crops);
# MS-SSIM, far from quadratic in ŷ, at most three. Every round of both keeps its flips only where
# they helped, at one synthesis more per kept round.
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
