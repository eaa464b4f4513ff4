"""Tiny end-to-end runs on generated images: rd writes JSON, tables and plots; speed writes its report."""

from __future__ import annotations

import json
import sys

import pytest

from benchmarks import codecs as codecs_mod
from benchmarks import rd, report, speed
from benchmarks.codecs import NeuralCodec
from benchmarks.curves import validate_result, write_json
from benchmarks.datasets import load_rgb

FAKE_NCODEC = """
import shutil, sys
args = sys.argv[1:]
src, dst = args[1], args[args.index("-o") + 1]
shutil.copyfile(src, dst)
"""


def test_rd_end_to_end(tmp_path, bench_dataset):
    out = tmp_path / "results"
    info = rd.main(
        ["--dataset", str(bench_dataset), "--codecs", "jpeg,webp", "--qualities", "30,70"]
        + ["--out", str(out), "--no-progress", "--device", "cpu"]
    )
    assert info["codecs"] == ["jpeg", "webp"]
    for name in ("jpeg", "webp"):
        doc = json.loads((out / f"{name}.json").read_text())
        validate_result(doc)
        assert doc["meta"]["images"] == ["img00", "img01", "img02"]
        assert len(doc["results"]["bpp"]) == 2
        assert doc["results"]["bpp"][0] < doc["results"]["bpp"][1]
        assert all(0 < v <= 1 for v in doc["results"]["ms-ssim-rgb"])
        per_image = json.loads((out / "per_image" / f"{name}.json").read_text())
        assert set(per_image["images"]) == {"img00", "img01", "img02"}
    # the file sizes are real: the average of per-image bpp is the results bpp
    per_image = json.loads((out / "per_image" / "jpeg.json").read_text())["images"]
    mean_bpp = sum(v["bpp"][0] for v in per_image.values()) / 3
    assert json.loads((out / "jpeg.json").read_text())["results"]["bpp"][0] == pytest.approx(mean_bpp)
    bd = json.loads((out / "bd_rate.json").read_text())
    assert bd["vs_jpeg"]["jpeg"]["psnr-rgb"] == pytest.approx(0.0, abs=1e-9)
    assert set(bd["pairwise"]["psnr-rgb"]["webp"]) == {"jpeg", "webp"}
    summary = (out / "summary.md").read_text()
    assert "| JPEG 4:2:0 |" in summary and "| WebP |" in summary and "BD-rate matrix" in summary
    for stem in ("rd-psnr", "rd-msssim"):
        assert (out / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in (out / f"{stem}.svg").read_bytes()[:2000]


def test_report_overlays_published_curves_and_skips_other_image_sets(tmp_path, bench_dataset):
    out = tmp_path / "results"
    rd.main(
        ["--dataset", str(bench_dataset), "--codecs", "jpeg", "--qualities", "20,50,80"]
        + ["--out", str(out), "--no-progress", "--device", "cpu", "--limit", "2"]
    )
    anchors = tmp_path / "anchors"
    published = json.loads((out / "jpeg.json").read_text())
    published["results"]["bpp"] = [b * 0.5 for b in published["results"]["bpp"]]
    del published["meta"]
    write_json(anchors / "compressai-kodak" / "jpeg.json", published)
    stray = json.loads((out / "jpeg.json").read_text())
    stray["name"], stray["meta"]["images"] = "other", ["zzz"]
    write_json(out / "other.json", stray)
    info = report.build_report(out, anchors, "t", overlay_anchors=True)
    assert info["curves"] == ["jpeg"]
    assert any("other left out" in n for n in info["notes"])
    summary = (out / "summary.md").read_text()
    assert "| JPEG (CompressAI, Pillow 7.1.2) | -50.0 % |" in summary


def test_rd_with_a_fake_neuralcodec(tmp_path, bench_dataset, monkeypatch, fake_neuralcodec):
    fake = fake_neuralcodec(["fake"])
    monkeypatch.setattr(
        codecs_mod,
        "neuralcodec_codecs",
        lambda device=None, models=None: ([NeuralCodec("fake", api=fake, qualities=[40, 80])], []),
    )
    out = tmp_path / "results"
    info = rd.main(
        ["--dataset", str(bench_dataset), "--codecs", "jpeg,neuralcodec", "--out", str(out)]
        + ["--no-progress", "--device", "cpu", "--limit", "1", "--qualities", "40,80"]
    )
    assert info["codecs"] == ["jpeg", "neuralcodec-fake"]
    validate_result(json.loads((out / "neuralcodec-fake.json").read_text()))


def test_speed_pieces(tmp_path, bench_dataset, fake_neuralcodec):
    images = [(p.stem, load_rgb(p)) for p in sorted(bench_dataset.iterdir())[:1]]
    jpeg = speed.classical_subjects(["jpeg"], 75)[0][0]
    res = speed.measure(jpeg, images, repeats=2)
    row = res["per_image"][0]
    assert row["bytes"] > 0 and row["encode_s"] > 0 and row["decode_mps"] > 0

    class WithStats(fake_neuralcodec):
        def compress_with_stats(self, image, quality, model):
            data = self.compress(image, quality, model)
            return data, {"estimated_bits": len(data) * 8 * 0.99, "actual_bits": len(data) * 8}

    subjects, notes = speed.neuralcodec_subjects("cpu", 60, api=WithStats(["m"]))
    nc = {"neuralcodec-m": speed.measure(subjects[0], images, repeats=1)}
    overhead = speed.entropy_overhead(nc)
    assert overhead["neuralcodec-m"]["mean"] == pytest.approx(1 / 0.99)

    fake_cli = tmp_path / "fake_ncodec.py"
    fake_cli.write_text(FAKE_NCODEC)
    paths = [bench_dataset / "img00.png"]
    cold = speed.cold_cli([sys.executable, str(fake_cli)], paths, "m", 60, "cpu")
    assert cold["per_image"][0]["bytes"] == paths[0].stat().st_size
    assert 0 < cold["peak_rss_mib"] < 200  # the launcher keeps our own RSS out of the child's

    cmp_ = speed.compressai_comparison({**nc, "compressai-msh": res}, cold, "img00")
    assert set(cmp_["speedup_in_process"]) == {"encode_s", "decode_s"}
    report_ = {
        "meta": {
            "dataset": "x",
            "n_images": 1,
            "quality": 60.0,
            "device": "cpu",
            "cpu": "c",
            "torch_threads": 1,
        }
        | {"repeats": 1},
        "notes": [],
        "in_process": {**nc, "jpeg": res},
        "cold_cli": cold,
        "entropy_overhead": overhead,
        "compressai_comparison": cmp_,
    }
    md = speed.speed_markdown(report_)
    assert "vs CompressAI reference" in md and "Entropy-coding overhead" in md and "speedup" in md


def test_compressai_reference_round_trip(gen_image):
    pytest.importorskip("compressai")
    subject = speed.compressai_reference("cpu")
    img = gen_image(70, 90)  # not a multiple of 64: padded, then cropped back
    payload = subject.encode(img)
    assert subject.size(payload) > 0
    assert subject.decode(payload).shape == img.shape


def test_speed_main_runs_a_worker_process(tmp_path, bench_dataset):
    out = tmp_path / "results"
    result = speed.main(
        ["--dataset", str(bench_dataset), "--codecs", "jpeg", "--limit", "1", "--repeats", "1"]
        + ["--out", str(out), "--no-cold", "--device", "cpu"]
    )
    jpeg = result["in_process"]["jpeg"]
    assert jpeg["per_image"][0]["image"] == "img00"
    assert 0 < jpeg["peak_rss_mib"] < 400  # a Pillow-only worker: no torch in its RSS
    saved = json.loads((out / "speed.json").read_text())
    assert saved["meta"]["images"] == ["img00"]
    assert (out / "speed.md").read_text().startswith("# Speed and memory")


def test_rd_keeps_going_when_one_codec_fails(tmp_path, bench_dataset, monkeypatch, fake_neuralcodec):
    class BrokenApi(fake_neuralcodec):
        def compress(self, image, quality=75, model="fake", device="auto"):
            raise RuntimeError("boom")

    real_build = codecs_mod.build_codecs

    def build(names, device=None, qualities=None):
        found, notes = real_build(["jpeg"], device, qualities)
        return [NeuralCodec("broken", api=BrokenApi()), *found], notes

    monkeypatch.setattr(rd, "build_codecs", build)
    out = tmp_path / "results"
    info = rd.main(
        ["--dataset", str(bench_dataset), "--codecs", "jpeg", "--qualities", "30,70", "--limit", "1"]
        + ["--out", str(out), "--no-progress", "--device", "cpu"]
    )
    assert info["failed"] == ["neuralcodec-broken"] and info["codecs"] == ["jpeg"]
    assert "neuralcodec-broken failed: RuntimeError: boom" in (out / "summary.md").read_text()
