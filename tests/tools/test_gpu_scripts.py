"""tools/gpu_chunk.sh, gpu_effort.sh and gpu_window.sh, the scripts that run on a GPU machine: they
refuse a model they do not know before they start anything; the effort script's run (here on the
CPU, DEVICE=cpu) returns its rows, logs and report where the device tool collects them; the window
script measures, trains, exports and evaluates within its budget, returns at most 8 files, and the
next window resumes from what it returned."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

TOOLS = Path(__file__).resolve().parents[2] / "tools"
REPO = TOOLS.parent
needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


@needs_bash
@pytest.mark.parametrize(
    "script, args",
    [("gpu_chunk.sh", ["1", "1e-4", "1e-5", "1"]), ("gpu_effort.sh", ["1"]), ("gpu_window.sh", ["1"])],
)
def test_unknown_models_are_refused_with_exit_2(tmp_path, script, args):
    env = {**os.environ, "MODELS": "mse nosuch", "OUT": str(tmp_path / "out"), "ROWS": str(tmp_path / "rows")}
    env["WORK"] = str(tmp_path / "work")
    done = subprocess.run(
        ["bash", str(TOOLS / script), *args], env=env, capture_output=True, text=True, cwd=REPO
    )
    assert done.returncode == 2
    assert "unknown model 'nosuch'" in done.stderr
    assert not any((tmp_path / d).exists() for d in ("out", "rows", "work"))  # nothing started


@needs_bash
def test_the_effort_script_returns_rows_logs_and_one_report_for_both_models(tmp_path, make_image):
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(make_image(176, 192, seed=3)).save(images / "a.png")
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "DEVICE": "cpu",
        "EFFORTS": "0",
        "DATASET": str(images),
        "OUT": str(tmp_path / "out"),
        "ROWS": str(tmp_path / "rows"),
    }
    done = subprocess.run(
        ["bash", str(TOOLS / "gpu_effort.sh"), "5"], env=env, capture_output=True, text=True, cwd=REPO
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = tmp_path / "out"
    per_model = {f"effort-{m}.{x}" for m in ("mse", "msssim") for x in ("jsonl", "log")}
    names = {"effort.json", "effort.md"} | per_model
    assert {f.name for f in out.iterdir()} == names
    assert sorted(json.loads((out / "effort.json").read_text())) == ["mse-cpu-images", "msssim-cpu-images"]
    for model in ("mse", "msssim"):
        rows = (out / f"effort-{model}.jsonl").read_text().splitlines()
        assert len(rows) == 4  # one image at four qualities, effort 0
        assert (tmp_path / "rows" / f"effort-{model}.jsonl").read_text().splitlines() == rows


@needs_bash
@pytest.mark.slow
def test_the_window_script_trains_exports_evaluates_and_the_next_window_resumes(tmp_path, make_image):
    from neuralcodec.training.data import write_pack
    from neuralcodec.training.portable import load_portable

    photos, kodak = tmp_path / "photos", tmp_path / "kodak24"
    photos.mkdir()
    kodak.mkdir()
    for i in range(3):
        Image.fromarray(make_image(96, 112, seed=i)).save(photos / f"p{i}.png")
    Image.fromarray(make_image(176, 192, seed=7)).save(kodak / "kodim01.png")
    Image.fromarray(make_image(176, 192, seed=8)).save(
        kodak / "kodim02.webp", lossless=True
    )  # as it may travel
    write_pack(photos, tmp_path / "pack.npz", count=4, size=80, progress=False)
    tiny = "--N 16 --M 24 --levels 3 --metric mse --eval-every 4 --checkpoint-every 3 --eval-images 2"
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "DEVICE": "cpu",
        "PACK": str(tmp_path / "pack.npz"),
        "KODAK": str(kodak),
        "STATE": str(tmp_path / "state"),
        "RUNS": str(tmp_path / "runs"),
        "WORK": str(tmp_path / "work"),
        "OUT": str(tmp_path / "out"),
        "CROP": "64",
        "BATCH": "2",
        "MODEL_FLAGS": tiny,
        "SHIPPED_INIT": "0",
        "TESTS": "",
        "SPEED_ARGS": "--limit 1 --repeats 1",
        "RD_CODECS": "jpeg",
        "THROUGHPUT": "fp32:64:1:device",
        "EVAL_MINUTES": "0.4",
        "STARTUP_S": "10",
    }
    done = subprocess.run(
        ["bash", str(TOOLS / "gpu_window.sh"), "1.5"], env=env, capture_output=True, text=True, cwd=REPO
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    out = tmp_path / "out"
    returned = sorted(str(f.relative_to(out)) for f in out.rglob("*") if f.is_file())
    assert len(returned) <= 8 and {"summary.txt", "results.tar.gz"} <= set(returned)
    for model in ("mse", "msssim"):
        assert {f"{model}/params-00.pt", f"{model}/portable.json", f"weights/{model}-gpu.pt"} <= set(returned)
        assert (
            tmp_path / "work" / f"rd-{model}-gpu" / f"neuralcodec-{model}-gpu.json"
        ).is_file()  # evaluated
        assert "| 2 |" in (tmp_path / "work" / f"top-{model}.md").read_text()  # quality 100 (3 levels)
    summary = (out / "summary.txt").read_text()
    assert "fp32 1x64² device" in summary and "seed" in summary
    assert (tmp_path / "work" / "speed").is_dir() and (
        tmp_path / "work" / "rd-shipped" / "jpeg.json"
    ).is_file()
    steps = load_portable(out / "mse")[1]["step"]
    assert steps > 0

    # The next window: a fresh machine (no runs/), the returned folders carried as STATE.
    shutil.copytree(out, tmp_path / "state", ignore=shutil.ignore_patterns("weights", "*.gz", "*.txt"))
    shutil.rmtree(out)
    again = {**env, "RUNS": str(tmp_path / "runs2"), "WORK": str(tmp_path / "work2"), "START": "0"}
    again["TRAIN_FLAGS"] = "--crops device --no-such-option"  # fails at once: the fallback flags train
    again["EVAL_MINUTES"] = "0.3"
    done = subprocess.run(
        ["bash", str(TOOLS / "gpu_window.sh"), "0.9"], env=again, capture_output=True, text=True, cwd=REPO
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "initialised from portable parameters" in (tmp_path / "work2" / "train-mse.out").read_text()
    assert "again with ''" in (tmp_path / "work2" / "machine.txt").read_text()
    history = load_portable(out / "mse")[1]["history"]
    assert sum(s["steps"] for s in history) > steps and len(history) == 2
