"""greedy_rounding.greedy_steps: which residuals move, by the exact bits and the quadratic model."""

from __future__ import annotations

import numpy as np
import pytest

from neuralcodec.entropy_models import TableSet, symbol_bits, table_bits
from neuralcodec.greedy_rounding import (
    GREEDY_SETTINGS,
    GreedySettings,
    greedy_settings,
    greedy_steps,
    latent_coverage,
)

# Results depend on the transforms' precision: every test runs in float32 and in bf16.
pytestmark = pytest.mark.usefixtures("transforms_precision")

# One table over symbols -2..2, peaked at 0: moving towards 0 saves bits.
TABLES = TableSet.from_pmfs([np.array([0.05, 0.2, 0.5, 0.2, 0.05])], [-2])
FREE = GreedySettings(curvature_scale=1.0, flips_per_position=64)


def steps(k, grad, curvature=0.0, pixels=1, settings=FREE):
    k = np.asarray(k, dtype=np.int64).reshape(1, -1, 1, 1)
    grad = np.broadcast_to(np.asarray(grad, dtype=np.float64).reshape(1, -1, 1, 1), k.shape)
    return greedy_steps(k, np.zeros_like(k), TABLES, grad, np.asarray(curvature), pixels, settings).ravel()


def test_symbol_bits_sum_to_table_bits():
    k = np.array([-2, -1, 0, 1, 2, 0])
    index = np.zeros_like(k)
    assert symbol_bits(k, index, TABLES).sum() == table_bits(k, index, TABLES)
    assert symbol_bits(k, index, TABLES)[2] < symbol_bits(k, index, TABLES)[0]


def test_with_a_flat_distortion_residuals_move_towards_the_cheaper_symbol():
    assert list(steps([2, 1, 0, -1, -2], 0.0)) == [-1, -1, 0, 1, 1]


def test_the_distortion_gradient_can_pay_for_more_bits_and_curvature_stops_it():
    assert list(steps([0], -5.0)) == [1]  # ΔD ≈ -5 for ~1.3 bits more
    assert list(steps([0], -5.0, curvature=20.0)) == [0]  # ½·h = 10 outweighs the slope
    assert list(steps([1], 5.0, pixels=1)) == [-1]  # both say "down"


def test_a_step_never_leaves_the_table():
    assert list(steps([2, -2], [-100.0, 100.0])) == [0, 0]  # +1 from 2, -1 from -2: outside


def test_at_most_the_allowed_channels_move_at_one_position_the_most_promising_first():
    k = [2, 2, 2, 2]
    grad = [0.0, -0.5, 0.5, 0.2]  # pulling down (towards 0) helps most where grad > 0
    one = GreedySettings(curvature_scale=1.0, flips_per_position=1)
    assert list(steps(k, grad, settings=one)) == [0, 0, -1, 0]
    two = GreedySettings(curvature_scale=1.0, flips_per_position=2)
    assert list(steps(k, grad, settings=two)) == [0, 0, -1, -1]
    assert list(steps(k, grad)) == [-1, -1, -1, -1]


def test_every_metric_has_settings():
    assert set(GREEDY_SETTINGS) == {"mse", "ms-ssim"}


def test_a_schedule_runs_the_settings_of_the_most_rounds_it_reaches(monkeypatch):
    few, many = GreedySettings(1.0, 4), GreedySettings(1.5, 2, keep_where_helped=True)
    monkeypatch.setitem(GREEDY_SETTINGS, "mse", {1: few, 4: many})
    assert [greedy_settings("mse", rounds) for rounds in (0, 1, 2, 3, 4, 9)] == [few] * 4 + [many] * 2
    with pytest.raises(KeyError):
        greedy_settings("psnr-hvs", 1)


def test_every_round_keeps_its_flips_only_where_they_helped():
    def kept(metric: str, rounds: int) -> list[bool]:
        settings = greedy_settings(metric, rounds)
        return [settings.keep_where_helped for _ in range(rounds)]  # one setting for every round

    assert [kept("mse", r) for r in (1, 2, 4)] == [[True], [True] * 2, [True] * 4]
    assert [kept("ms-ssim", r) for r in (1, 2, 4)] == [[True], [True] * 2, [True] * 4]


def test_coverage_is_one_inside_the_image_zero_deep_in_the_padding_and_partial_at_its_edge():
    # 8 x 8 latents (128 x 128 padded pixels) of a 70-row, 128-column image: cell 4 holds rows
    # 64..79 (6 of them in the image), cells 5..7 lie in the padding.
    cover = latent_coverage((8, 8), (0, 70), (0, 128))
    assert cover.shape == (8, 8)
    assert np.all((cover >= 0) & (cover <= 1))
    assert np.allclose(cover[:3], 1.0)  # cells 0..2 and their neighbours: all image
    assert 0 < cover[5, 0] < cover[4, 0] < cover[3, 0] < cover[2, 0] == 1.0  # fading out over the edge
    assert np.allclose(cover[6:], 0.0)  # cell and both neighbours in the padding
    assert np.allclose(cover, np.outer(cover[:, 0], np.ones(8)))  # every column alike: separable


def test_without_curvature_a_latent_of_the_padding_moves_to_the_cheaper_symbol():
    # The same residual in two channels, one inside the image, one whose picture lies in the
    # padding (coverage 0): only the latter is free to save bits.
    curvature = 50.0 * np.array([1.0, 0.0]).reshape(1, 2, 1, 1)
    assert list(steps([1, 1], 0.0, curvature, pixels=100)) == [0, -1]
