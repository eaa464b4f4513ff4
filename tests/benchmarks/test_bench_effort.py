"""benchmarks.effort end to end on generated images: JSON, report, device and thread options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import effort


def test_effort_run_writes_summary_and_report(bench_dataset: Path, tmp_path: Path):
    out = tmp_path / "results"
    effort.main(
        [
            "--model", "mse", "--dataset", str(bench_dataset), "--limit", "2", "--crop", "0",
            "--efforts", "0,1", "--full-size-efforts", "", "--device", "cpu", "--threads", "1",
            "--out", str(out), "--tag=-test",
        ]
    )  # fmt: skip
    results = json.loads((out / "effort.json").read_text())["mse-test"]
    assert results["device"] == "cpu"
    assert results["threads"] == 1
    assert set(results["summary"]) == {"0", "1"}
    one = results["summary"]["1"]
    assert one["iterations"] == effort.iterations(1)
    assert one["j_change"] <= 0.0  # refinement never keeps a candidate worse than effort 0
    assert len(results["rows"]) == 2 * 4 * 2  # images x qualities x efforts
    report = (out / "effort.md").read_text()
    assert "## `mse-test` (psnr)" in report
    assert f"2 {bench_dataset.name} images" in report
    assert "CPU: " in report and "GPU: " not in report


@pytest.mark.parametrize(
    ("device", "expected"),
    [("cpu", "CPU: Zen, 2 threads"), ("NVIDIA H100", "GPU: NVIDIA H100 (CPU: Zen, 2 threads)")],
)
def test_report_names_the_device_that_ran_the_encodes(device: str, expected: str):
    assert effort.where_measured({"cpu": "Zen", "threads": 2, "device": device}) == expected
