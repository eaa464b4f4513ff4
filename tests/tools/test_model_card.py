"""The model card is written from files only: weights history, benchmark JSON, training logs."""

import csv
import importlib.util
import json
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"


def load_tool():
    spec = importlib.util.spec_from_file_location("model_card", REPO / "tools" / "model_card.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def results_file(path: Path, bpp: list[float], psnr: list[float], msssim: list[float]) -> None:
    results = {"bpp": bpp, "psnr-rgb": psnr, "ms-ssim-rgb": msssim}
    results |= {"encoding_time": [0.1] * len(bpp), "decoding_time": [0.1] * len(bpp)}
    meta = {"n_images": 24, "quality": [5.0, 50.0, 95.0]}
    path.write_text(json.dumps({"name": path.stem, "description": "", "meta": meta, "results": results}))


def training_log(path: Path, step: int, bd_msssim: float) -> None:
    path.parent.mkdir(parents=True)
    with path.open("w", newline="") as f:
        log = csv.writer(f)
        log.writerow(["step", "wall_s", "eval_bd_psnr", "eval_bd_msssim", "eval_curve"])
        log.writerow([step, 600, -5.0, bd_msssim, json.dumps({"bpp": [0.15, 0.4, 0.9]})])


def eval_log(path: Path, rows: list[tuple[int, float, float, dict]]) -> Path:
    """A training log with evaluation rows (step, BD PSNR, BD MS-SSIM, eval_curve) only."""
    path.parent.mkdir(parents=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "wall_s", "eval_bd_psnr", "eval_bd_msssim", "eval_curve"])
        for step, bd_psnr, bd_msssim, curve in rows:
            writer.writerow([step, 0.6 * step, bd_psnr, bd_msssim, json.dumps(curve)])
    return path


def test_card_lists_every_run_and_its_learning_curve(tmp_path, monkeypatch):
    tool = load_tool()
    weights, results = tmp_path / "weights", tmp_path / "results"
    weights.mkdir()
    results.mkdir()
    state = torch.load(FIXTURES / "tiny.pt", weights_only=True)
    state["meta"] = {
        "steps": 300,
        "cpu_hours": 0.1,
        "history": [
            {"run": "unit-v1", "steps": 100, "wall_s": 60.0, "processes": 1, "threads": 1, "device": "cpu",
             "batch_size": 8, "crop": 192, "lr": 5e-4, "lr_final": 2e-5, "data": "train"},
            {"run": "unit-v2", "steps": 200, "wall_s": 120.0, "processes": 1, "threads": 2, "device": "cpu",
             "batch_size": 8, "crop": 192, "lr": 3e-4, "lr_final": 2e-5, "decay_start": 0.75,
             "lambda": [1.2, 220.0], "data": "train"},
            {"run": "unit-enc", "steps": 0, "wall_s": 60.0, "processes": 1, "threads": 1, "device": "cpu",
             "batch_size": 8, "crop": 256, "lr": 1e-4, "lr_final": 2e-5, "data": "train",
             "train_only": "encoder"},
        ],
    }  # fmt: skip
    state["decoder_digest"] = "0123456789abcdef"
    torch.save(state, weights / "unit.pt")
    results_file(results / "jpeg.json", [0.3, 0.8, 2.0], [26.0, 30.0, 35.0], [0.90, 0.96, 0.99])
    results_file(results / "neuralcodec-unit.json", [0.2, 0.5, 1.0], [27.0, 30.0, 33.0], [0.94, 0.98, 0.99])
    training_log(tmp_path / "runs" / "unit-v1" / "log.csv", 100, -20.0)
    training_log(tmp_path / "runs" / "unit-v2" / "log.csv", 300, -45.5)
    monkeypatch.setattr(tool, "WEIGHTS", weights)
    monkeypatch.setattr(tool, "CURVES", tmp_path / "curves")
    held_out = tmp_path / "held_out"
    held_out.mkdir()
    results_file(held_out / "jpeg.json", [0.3, 0.8, 2.0], [26.0, 30.0, 35.0], [0.90, 0.96, 0.99])
    results_file(held_out / "neuralcodec-unit.json", [0.15, 0.4, 0.8], [27.0, 30.0, 33.0], [0.94, 0.98, 0.99])
    earlier = ["## Learning curve (`unit-v0`)", "", "| step |", "|---|", "| 50 |", "", "## Status", "", "old"]
    (weights / "unit.md").write_text("\n".join(["# old card", "", *earlier]) + "\n")

    tool.main(
        ["unit", "--results", str(results), "--anchors", str(tmp_path / "none"), "--notes", "shipped because"]
        + ["--held-out", str(held_out)]
        + ["--log", str(tmp_path / "runs/unit-v1/log.csv"), str(tmp_path / "runs/unit-v2/log.csv")]
    )
    card = (weights / "unit.md").read_text()
    assert "300 steps in total" in card
    assert "| unit-enc (encoder only) | 0 |" in card and "`0123456789abcdef`; stored in the weights" in card
    assert "| unit-v1 | 100 | 1 min |" in card and "last 20 %" in card  # older runs: the then default
    assert "0.0003 → 2e-05, last 25 % | 1.2–220 |" in card
    assert "## Learning curve (`unit-v1`)" in card and "## Learning curve (`unit-v2`)" in card
    assert "-45.5 %" in card
    assert card.rstrip().endswith("shipped because")
    # a run whose log is gone from this machine keeps its curve from the previous card
    assert (
        "## Learning curve (`unit-v0`)" in card
        and "| 50 |" in card
        and "old" not in card.split("## Status")[1]
    )
    assert "## Bundled example (quality regression)" in card and "| 75 |" in card
    assert "## Held-out photos (`held_out`, 24 images" in card
    held_out_row = card.split("## Held-out photos")[1].split("| our Pillow JPEG 4:2:0 |")[1].splitlines()[0]
    assert held_out_row.split("|")[1].strip().startswith("-")  # fewer bits than JPEG on PSNR
    assert (tmp_path / "curves" / "unit.png").stat().st_size > 0
    assert "## Learning curves" in card and "(../curves/unit.png)" in card
    # writing the card again from the same files changes nothing (kept sections do not grow)
    tool.main(
        ["unit", "--results", str(results), "--anchors", str(tmp_path / "none"), "--notes", "shipped because"]
        + ["--held-out", str(held_out)]
    )
    assert (weights / "unit.md").read_text() == card


def test_learning_curve_shows_the_raw_parameters_of_an_ema_run(tmp_path):
    tool = load_tool()
    raw = {"bd_psnr": -30.25, "bd_ms-ssim": -50.0, "bpp": [0.2, 0.5]}
    log = eval_log(
        tmp_path / "runs" / "ema-v1" / "log.csv", [(100, -31.0, -51.0, {"bpp": [0.2, 0.5], "raw": raw})]
    )
    lines = tool.learning_curve(log)
    assert "raw parameters (no EMA)" in lines[-3]
    assert lines[-1].endswith("| -30.2 % / -50.0 % |")
    plain = tmp_path / "runs" / "plain" / "log.csv"
    training_log(plain, 100, -45.0)
    assert not any("raw parameters" in line for line in tool.learning_curve(plain))


def test_learning_curve_shows_real_file_bd_rates_where_a_run_measured_them(tmp_path):
    tool = load_tool()
    files = {"bd_psnr": -29.5, "bd_ms-ssim": -49.25, "bpp": [0.21, 0.52]}
    rows = [
        (100, -31.0, -51.0, {"bpp": [0.2, 0.5]}),
        (200, -31.5, -51.5, {"bpp": [0.2, 0.5], "files": files}),
    ]
    lines = tool.learning_curve(eval_log(tmp_path / "runs" / "files-v1" / "log.csv", rows))
    assert "real files (`--eval-files`)" in lines[-4]
    assert lines[-2].endswith("| — |") and lines[-1].endswith("| -29.5 % / -49.2 % |")


def test_earlier_runs_are_read_back_from_the_card_for_the_figure(tmp_path):
    tool = load_tool()
    card = tmp_path / "unit.md"
    header = ["| step | wall min | BD-rate PSNR | BD-rate MS-SSIM dB | bpp |", "|---|---|---|---|---|"]
    card.write_text(
        "\n".join(
            ["# card", "", "## Learning curve (`unit-v0`)", "", *header]
            + ["| 50 | 1 | -10.50 % | -20.25 % | 0.1 |", "| 100 | 2 | -11.00 % | -21.00 % | 0.1 |", ""]
            + ["## Learning curve (`unit-v1`)", "", *header, "| 300 | 3 | -12.00 % | -22.00 % | 0.1 |", ""]
            + ["## Status", "", "| 7 | not | a | curve |"]
        )
        + "\n"
    )
    runs = tool.curve_rows(tool.kept_learning_curves(card, {"unit-v1"}))  # unit-v1: drawn from its log
    assert [run for run, _ in runs] == ["unit-v0"]
    assert runs[0][1] == [
        {"step": "50", "eval_bd_psnr": "-10.50", "eval_bd_msssim": "-20.25"},
        {"step": "100", "eval_bd_psnr": "-11.00", "eval_bd_msssim": "-21.00"},
    ]
    figure = tool.plot_learning_curves("unit", [], tmp_path / "unit.png", runs)
    assert figure is not None and figure.stat().st_size > 0
    assert tool.curve_rows(tool.kept_learning_curves(tmp_path / "missing.md", set())) == []
