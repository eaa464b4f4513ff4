"""tools/gpu_chunk.sh and tools/gpu_effort.sh, the scripts that run on a GPU machine: they refuse
a model they do not know before they start anything, and the effort script's run (here on the
CPU, DEVICE=cpu) returns its rows, logs and report where the device tool collects them."""

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
    "script, args", [("gpu_chunk.sh", ["1", "1e-4", "1e-5", "1"]), ("gpu_effort.sh", ["1"])]
)
def test_unknown_models_are_refused_with_exit_2(tmp_path, script, args):
    env = {**os.environ, "MODELS": "mse nosuch", "OUT": str(tmp_path / "out"), "ROWS": str(tmp_path / "rows")}
    done = subprocess.run(
        ["bash", str(TOOLS / script), *args], env=env, capture_output=True, text=True, cwd=REPO
    )
    assert done.returncode == 2
    assert "unknown model 'nosuch'" in done.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "rows").exists()  # nothing started


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
