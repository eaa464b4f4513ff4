"""benchmarks.large_images on generated images: the mosaic, tiled refinement, JSON and report."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import large_images
from benchmarks.datasets import list_images, load_rgb
from benchmarks.effort import row_setup
from neuralcodec import refine
from neuralcodec.greedy_rounding import GREEDY_SETTINGS


def test_the_mosaic_puts_photos_of_one_size_side_by_side(bench_dataset: Path, gen_image):
    from PIL import Image

    Image.fromarray(gen_image(40, 50)).save(bench_dataset / "img01b.png")  # another size: left out
    paths = list_images(bench_dataset)
    img, names = large_images.mosaic(paths, 3, 1)
    assert names == ["img00.png", "img01.png", "img02.png"]
    assert img.shape == (168, 3 * 176, 3)
    assert np.array_equal(img[:, 176:352], load_rgb(bench_dataset / "img01.png"))
    with pytest.raises(ValueError, match="needs 4 images"):
        large_images.mosaic(paths, 2, 2)


def test_a_run_refines_tile_by_tile_and_reports_each_effort(bench_dataset: Path, tmp_path: Path, monkeypatch):
    # As if the 168 x 352 mosaic were above a megapixel: 3 x 6 z positions, cores of one.
    monkeypatch.setattr(refine, "SINGLE_WINDOW_PIXELS", 0)
    monkeypatch.setattr(refine, "GREEDY_TILES", dataclasses.replace(refine.GREEDY_TILES, core_z=1))
    out = tmp_path / "results"
    large_images.main(
        [
            "--model", "mse", "--dataset", str(bench_dataset), "--grid", "2x1", "--qualities", "50",
            "--efforts", "1", "--threads", "1", "--out", str(out),
        ]
    )  # fmt: skip
    result = json.loads((out / "large_images.json").read_text())["mse-2x1"]
    assert (result["height"], result["width"], result["grid"]) == (168, 352, "2x1")
    zero, one = result["rows"]
    assert (zero["effort"], one["effort"]) == (0, 1)
    assert zero["window_work"] == 1.0 and zero["j_file_change"] == 0.0
    # 18 windows of at most 3 x 3 z positions over a 192 x 384 padded image
    assert 1.0 < one["window_work"] <= 18 * 192**2 / (168 * 352)
    assert one["j_file_change"] <= 1e-6  # MSE: each tile step keeps the image's objective no worse
    report = (out / "large_images.md").read_text()
    assert "## `mse-2x1`" in report and "352x168" in report and "img00.png, img01.png" in report
    assert "Weights: the shipped `mse`" in report and "earlier refinement settings" not in report


def test_the_report_says_which_efforts_ran_earlier_refinement_settings(tmp_path: Path, monkeypatch):
    entry = {
        "model": "mse", "dataset": "d", "grid": "2x1", "images": ["a.png", "b.png"],
        "height": 64, "width": 128, "cpu": "Zen", "threads": 1, "device": "cpu", "note": "",
        "rows": [], "setups": {str(e): row_setup("mse", 0, "cpu", e) for e in (0, 1, 2)},
    }  # fmt: skip
    retuned = {r: dataclasses.replace(s, flips_per_position=9) for r, s in GREEDY_SETTINGS["mse"].items()}
    monkeypatch.setitem(GREEDY_SETTINGS, "mse", retuned)
    unrecorded = {**entry, "model": "msssim", "setups": {}}
    large_images.write_markdown({"mse-2x1": entry, "msssim-2x1": unrecorded}, tmp_path / "r.md")
    report = (tmp_path / "r.md").read_text()
    assert "Weights: the shipped `mse` (SHA-256" in report
    assert "Effort 1, 2: earlier refinement settings than the codec runs now." in report
    assert "Weights: not recorded" in report  # an entry from before weights and settings were recorded


def test_window_work_is_one_for_images_that_refine_in_one_window():
    assert large_images.window_work(512, 768, 2) == 1.0
    assert large_images.window_work(512, 768, 0) == 1.0
    # 2304 x 1024: greedy windows (efforts 1-4) 1.375 times the pixels, SGA's (5-9) 2.29
    assert large_images.window_work(1024, 2304, 2) == pytest.approx(1.375)
    assert large_images.window_work(1024, 2304, 4) == pytest.approx(1.375)
    assert large_images.window_work(1024, 2304, 5) == pytest.approx(2.2917, abs=1e-4)


@pytest.mark.parametrize("grid", ["3", "3by2", "0x2", "2x-1"])
def test_a_bad_grid_is_a_usage_error(grid: str, capsys):
    with pytest.raises(SystemExit) as exc:
        large_images.main(["--grid", grid])
    assert exc.value.code == 2 and "--grid must be COLSxROWS" in capsys.readouterr().err
