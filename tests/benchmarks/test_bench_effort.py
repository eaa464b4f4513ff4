"""benchmarks.effort end to end on generated images: JSON, report, device and thread options."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

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


def _args(dataset: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--model", "mse", "--dataset", str(dataset), "--limit", "2", "--crop", "64", "--qualities", "20,80",
        "--efforts", "0,1", "--full-size-efforts", "", "--threads", "1", "--out", str(out), *extra,
    ]  # fmt: skip


def _counting_encodes(monkeypatch) -> list:
    calls = []
    real = effort.encode_one
    monkeypatch.setattr(effort, "encode_one", lambda *a, **k: calls.append(a[1:]) or real(*a, **k))
    return calls


def test_a_run_resumes_from_its_rows_and_measures_only_what_is_missing(
    bench_dataset: Path, tmp_path: Path, monkeypatch
):
    out, rows = tmp_path / "results", tmp_path / "rows.jsonl"
    effort.main(_args(bench_dataset, out, "--rows", str(rows), "--tag=-whole"))
    lines = rows.read_text().splitlines()
    assert len(lines) == 2 * 2 * 2  # images x qualities x efforts, one line each as it finished
    rows.write_text("\n".join(lines[:3]) + "\n" + lines[3][:20])  # killed while writing the 4th
    whole = json.loads((out / "effort.json").read_text())["mse-whole"]
    (out / "effort.json").unlink()  # resume from the rows file alone
    calls = _counting_encodes(monkeypatch)
    effort.main(_args(bench_dataset, out, "--rows", str(rows), "--tag=-resumed"))
    assert len(calls) == 5
    resumed = json.loads((out / "effort.json").read_text())["mse-resumed"]
    assert resumed["images"] == whole["images"] and resumed["images_planned"] == 2
    for key in ("bpp", "bd_rate", "j_change"):
        assert resumed["summary"]["1"][key] == pytest.approx(whole["summary"]["1"][key])


def test_rows_of_other_weights_are_measured_again(bench_dataset: Path, tmp_path: Path, monkeypatch):
    out, rows = tmp_path / "results", tmp_path / "rows.jsonl"
    effort.main(_args(bench_dataset, out, "--rows", str(rows), "--efforts", "0"))
    stale = [json.loads(line) for line in rows.read_text().splitlines()]
    for row in stale:
        row["setup"]["weights_sha256"] = "0" * 16  # say, the encoder was retrained since
    rows.write_text("".join(json.dumps(r) + "\n" for r in stale))
    kept = json.loads((out / "effort.json").read_text())
    kept["mse"]["setups"]["0"]["weights_sha256"] = "0" * 16  # and so do the committed rows
    (out / "effort.json").write_text(json.dumps(kept))
    calls = _counting_encodes(monkeypatch)
    effort.main(_args(bench_dataset, out, "--rows", str(rows), "--efforts", "0"))
    assert len(calls) == 2 * 2


def test_rows_of_other_greedy_rounding_settings_are_measured_again(
    bench_dataset: Path, tmp_path: Path, monkeypatch
):
    out, rows = tmp_path / "results", tmp_path / "rows.jsonl"
    effort.main(_args(bench_dataset, out, "--rows", str(rows)))
    from neuralcodec.greedy_rounding import GREEDY_SETTINGS

    tuned = {
        rounds: dataclasses.replace(s, curvature_scale=9.0) for rounds, s in GREEDY_SETTINGS["mse"].items()
    }
    monkeypatch.setitem(GREEDY_SETTINGS, "mse", tuned)
    calls = _counting_encodes(monkeypatch)
    effort.main(_args(bench_dataset, out, "--rows", str(rows), "--tag=-retuned"))
    assert {c[2] for c in calls} == {1} and len(calls) == 2 * 2  # effort 0 has no rounds: reused


def test_a_setup_records_sga_settings_only_for_efforts_that_run_sga():
    from neuralcodec.greedy_rounding import greedy_settings

    greedy_only = effort.refinement_setup("mse", 2)
    assert greedy_only["schedule"] == {
        "iterations": 0, "lr": None, "tau_start": None, "tau_end": None, "greedy_rounds": 2,
    }  # fmt: skip
    assert greedy_only["greedy"] == dataclasses.asdict(greedy_settings("mse", 2))
    with_sga = effort.refinement_setup("mse", 5)["schedule"]
    assert with_sga["iterations"] > 0 and None not in with_sga.values()


def test_rows_of_an_earlier_refinement_algorithm_are_measured_again(
    bench_dataset: Path, tmp_path: Path, monkeypatch
):
    out, rows = tmp_path / "results", tmp_path / "rows.jsonl"
    effort.main(_args(bench_dataset, out, "--rows", str(rows)))
    monkeypatch.setattr(effort.refine, "ALGORITHM_VERSION", effort.refine.ALGORITHM_VERSION + 1)
    calls = _counting_encodes(monkeypatch)
    effort.main(_args(bench_dataset, out, "--rows", str(rows), "--tag=-next-version"))
    assert {c[2] for c in calls} == {1} and len(calls) == 2 * 2  # effort 0 refines nothing: reused


def test_a_time_budget_summarises_only_the_images_measured_in_full(
    bench_dataset: Path, tmp_path: Path, capsys
):
    out, rows = tmp_path / "results", tmp_path / "rows.jsonl"
    effort.main(_args(bench_dataset, out, "--rows", str(rows), "--max-minutes", "0"))
    assert "no image has every quality and effort measured" in capsys.readouterr().out
    assert not (out / "effort.json").exists() and not rows.exists()
    effort.main(_args(bench_dataset, out, "--rows", str(rows), "--limit", "1"))
    effort.main(_args(bench_dataset, out, "--rows", str(rows), "--max-minutes", "0", "--tag=-partial"))
    partial = json.loads((out / "effort.json").read_text())["mse-partial"]
    assert partial["images"] == ["img00.png"] and partial["images_planned"] == 2
    assert f"1 {bench_dataset.name} images (of 2 planned" in (out / "effort.md").read_text()


def test_a_fresh_clone_resumes_from_the_rows_effort_json_keeps(
    bench_dataset: Path, tmp_path: Path, monkeypatch
):
    out = tmp_path / "results"
    effort.main(_args(bench_dataset, out, "--rows", str(tmp_path / "lost.jsonl"), "--efforts", "0"))
    (tmp_path / "lost.jsonl").unlink()  # runs/ is not committed: a fresh clone has no rows file
    calls = _counting_encodes(monkeypatch)
    effort.main(_args(bench_dataset, out, "--rows", str(tmp_path / "new.jsonl"), "--tag=-more"))
    assert len(calls) == 2 * 2  # only effort 1: the effort-0 rows came from effort.json
    assert {c[2] for c in calls} == {1}
    calls.clear()
    effort.main(_args(bench_dataset, out, "--tag=-fresh"))  # without --rows: measured afresh
    assert len(calls) == 2 * 2 * 2
    calls.clear()
    threads = torch.get_num_threads()
    try:
        effort.main(_args(bench_dataset, out, "--rows", str(tmp_path / "n2.jsonl"), "--threads", "2"))
    finally:
        torch.set_num_threads(threads)
    assert len(calls) == 2 * 2 * 2  # another thread count: the timings would not compare


def test_the_report_says_which_sections_measured_the_weights_shipped_now(bench_dataset: Path, tmp_path: Path):
    out = tmp_path / "results"
    effort.main(_args(bench_dataset, out, "--tag=-now"))
    stored = json.loads((out / "effort.json").read_text())
    shipped = stored["mse-now"]["setups"]["1"]["weights_sha256"]
    earlier = json.loads(json.dumps(stored["mse-now"]))
    for setup in earlier["setups"].values():
        setup["weights_sha256"] = "ab" * 32
    unrecorded = {k: v for k, v in stored["mse-now"].items() if k != "setups"}
    stored |= {"mse-earlier": earlier, "mse-unrecorded": unrecorded}
    (out / "effort.json").write_text(json.dumps(stored))
    effort.main(["--report-only", "--out", str(out)])
    report = (out / "effort.md").read_text()
    assert "Sections that measured the weights and refinement settings shipped now: `mse-now`." in report
    sections = {part.split("`")[0]: part for part in report.split("\n## `")[1:]}
    assert f"Weights: the shipped `mse` (SHA-256 {shipped[:16]})." in sections["mse-now"]
    assert (
        "Weights: earlier `mse` (SHA-256 abababababababab), not the ones shipped now."
        in sections["mse-earlier"]
    )
    assert "Weights: not recorded" in sections["mse-unrecorded"]


def test_the_report_says_which_efforts_ran_earlier_refinement_settings(
    bench_dataset: Path, tmp_path: Path, monkeypatch
):
    out = tmp_path / "results"
    effort.main(_args(bench_dataset, out, "--tag=-now"))
    from neuralcodec.greedy_rounding import GREEDY_SETTINGS

    retuned = {
        rounds: dataclasses.replace(s, curvature_scale=9.0) for rounds, s in GREEDY_SETTINGS["mse"].items()
    }
    monkeypatch.setitem(GREEDY_SETTINGS, "mse", retuned)
    effort.main(["--report-only", "--out", str(out)])
    report = (out / "effort.md").read_text()
    assert "Sections that measured the weights and refinement settings shipped now: none yet." in report
    assert (
        "The shipped weights, but earlier settings at some efforts (each section says which): `mse-now`."
        in report
    )
    assert "Effort 1: earlier refinement settings than the codec runs now." in report


def _section(rows: list[dict], efforts: list[int]) -> dict:
    return {
        "model": "mse", "metric": "psnr", "dataset": "kodak", "images": ["a.png", "b.png"], "crop": 0,
        "qualities": sorted({r["quality"] for r in rows}), "cpu": "Zen", "threads": 1, "device": "cpu",
        "loadavg_before": [0.0], "loadavg_after": [0.0], "note": "", "rows": rows,
        "summary": {str(e): {"iterations": 0, "bpp": 1.0, "encode_s": 1.0} for e in efforts},
        "full_size_estimated_s": {}, "full_size_measured_s": {},
    }  # fmt: skip


def test_the_report_compares_each_effort_with_avif_measured_on_the_same_whole_images(tmp_path: Path):
    # AVIF needs 10 % more bits than effort 0 for the same PSNR at every point, and as many as effort 1.
    bpp = {"a.png": [0.2, 0.4, 0.8, 1.6], "b.png": [0.3, 0.6, 1.2, 2.4]}
    psnr = {"a.png": [28.0, 31.0, 34.0, 37.0], "b.png": [27.0, 30.0, 33.0, 36.0]}
    rows = [
        {"image": image, "quality": q, "effort": e, "bpp": bpp[image][i] * scale, "psnr-rgb": psnr[image][i],
         "ms-ssim-rgb": 0.95}
        for image in bpp for i, q in enumerate((20, 40, 60, 80)) for e, scale in ((0, 1.0), (1, 1.1))
    ]  # fmt: skip
    avif = {
        Path(image).stem: {
            "bpp": [b * 1.1 for b in bpp[image]],
            "psnr-rgb": psnr[image],
            "ms-ssim-rgb": [0.95] * 4,
        }
        for image in bpp
    }
    (tmp_path / "per_image").mkdir()
    (tmp_path / "per_image" / "avif.json").write_text(json.dumps({"name": "avif", "images": avif}))
    effort.write_markdown({"mse-whole": _section(rows, [0, 1])}, tmp_path / "effort.md")
    table = [line for line in (tmp_path / "effort.md").read_text().splitlines() if line.startswith("| ")]
    assert table[0].startswith("| effort | SGA iterations (+ greedy rounds) | BD-rate | vs AVIF |")
    vs_avif = {line.split(" | ")[0][2:]: line.split(" | ")[3] for line in table[1:]}
    assert vs_avif == {"0": "-9.09 %", "1": "+0.00 %"}

    (tmp_path / "per_image" / "avif.json").write_text(
        json.dumps({"name": "avif", "images": {"a": avif["a"]}})
    )
    effort.write_markdown({"mse-whole": _section(rows, [0, 1])}, tmp_path / "effort.md")
    assert "vs AVIF" not in (tmp_path / "effort.md").read_text()  # AVIF lacks image b: no comparison
