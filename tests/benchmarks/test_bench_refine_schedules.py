"""benchmarks.refine_schedules on generated images: seeded picks, J per variant, JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from benchmarks import refine_schedules


@pytest.fixture
def photos(tmp_path: Path, gen_image) -> Path:
    """Four 128x128 'photos' and one too small to give a 64x64 crop twice over."""
    folder = tmp_path / "train"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(gen_image(128, 128, seed=i)).save(folder / f"big{i}.png")
    Image.fromarray(gen_image(100, 128, seed=9)).save(folder / "small.png")
    return folder


def test_pick_images_is_seeded_and_skips_small_ones(photos: Path):
    picks = refine_schedules.pick_images(photos, 5, seed=3, min_side=128)
    assert picks == refine_schedules.pick_images(photos, 5, seed=3, min_side=128)
    assert sorted(p.name for p in picks) == ["big0.png", "big1.png", "big2.png", "big3.png"]


def test_each_variant_gets_a_j_change_never_above_zero(photos: Path, tmp_path: Path):
    out = tmp_path / "r.json"
    results = refine_schedules.main(
        [
            "--model", "mse", "--images", str(photos), "--count", "1", "--crop", "64",
            "--qualities", "50", "--variant", '{"iterations": 2, "lr": 0.015}',
            "--variant", '{"iterations": 4, "lr": 0.015, "tau_start": 1.0}', "--out", str(out),
        ]
    )  # fmt: skip
    assert [v["schedule"]["iterations"] for v in results["variants"]] == [2, 4]
    assert all(v["j_change"] <= 0.0 for v in results["variants"])
    assert any(v["j_change"] < 0.0 for v in results["variants"])
    assert json.loads(out.read_text()) == results


@pytest.mark.parametrize(
    "variant", ['{"iters": 3}', '{"iterations": 0, "lr": 0.015, "greedy_rounds": 2}']
)  # an unknown field; SGA's learning rate for a schedule without SGA
def test_a_bad_variant_is_a_usage_error(photos: Path, variant: str):
    with pytest.raises(SystemExit) as e:
        refine_schedules.main(["--images", str(photos), "--variant", variant])
    assert e.value.code == 2
