"""Whole trees on the local engine: mirroring, resuming, staleness, bad files, the CLI's options."""

from __future__ import annotations

import io
import os
import sys

import numpy as np
import pytest
from bulk_helpers import done_records, make_tree, summary, temporaries
from PIL import Image

import neuralcodec
from neuralcodec.bulk import compress_tree, decompress_tree, engine, tree
from neuralcodec.bulk.worker import Worker
from neuralcodec.cli import main
from neuralcodec.container import ColorMode
from neuralcodec.image_modes import DecodedPixels


class InProcessEngine:
    """An engine without processes (fast), with a hook run before each item is coded."""

    def __init__(self, spec, before=None):
        self.worker, self.before = Worker(spec.on("cpu", 1)), before

    def describe(self):
        return "in-process"

    def map(self, items):
        for item in items:
            if self.before:
                self.before(item)
            yield self.worker.run(item)

    def close(self):
        pass


@pytest.fixture
def in_process(monkeypatch):
    """Run jobs in this process; returns a dict whose "before" hook the test may set."""
    hooks = {}
    monkeypatch.setattr(
        tree, "open_engine", lambda name, spec, jobs, address: InProcessEngine(spec, hooks.get("before"))
    )
    return hooks


def outputs(dst):
    return sorted(
        p.relative_to(dst).as_posix() for p in dst.rglob("*") if p.is_file() and not p.name.startswith(".")
    )


def test_compress_and_decompress_mirror_a_tree_with_two_workers(tmp_path, make_image, tiny_model):
    src, nc, png = tmp_path / "src", tmp_path / "nc", tmp_path / "png"
    names = make_tree(src, make_image, 6)
    Image.fromarray(make_image(40, 40, seed=9)).save(src / "f0" / "photo.jpg")
    (src / "notes.txt").write_text("not an image: not an input")
    result = compress_tree(src, nc, model=tiny_model, effort=0, jobs=2)
    expected = sorted([n.replace(".png", ".nc") for n in names] + ["f0/photo.nc"])
    assert outputs(nc) == expected and result.exit_code == 0 and result.done_now == 7
    for rel in expected:
        assert neuralcodec.read_header((nc / rel).read_bytes()).header.width in (64, 40)
    assert summary(nc)["done_now"] == 7 and summary(nc)["bytes_out"] == sum(
        (nc / r).stat().st_size for r in expected
    )
    back = decompress_tree(nc, png, model=tiny_model, jobs=2)
    assert back.exit_code == 0 and outputs(png) == [r.replace(".nc", ".png") for r in expected]
    assert Image.open(png / "f0/photo.png").size == (40, 40)
    written = (png / "f0/photo.png").read_bytes()  # by the writer ncodec decompress uses
    again = io.BytesIO()
    DecodedPixels(np.asarray(Image.open(io.BytesIO(written))), ColorMode.RGB).save_png(again)
    assert again.getvalue() == written


def test_rerun_skips_done_files_and_redoes_changed_missing_and_partial_ones(
    tmp_path, make_image, tiny_model, in_process
):
    src, dst = tmp_path / "src", tmp_path / "dst"
    names = make_tree(src, make_image, 5)
    assert compress_tree(src, dst, model=tiny_model, effort=0).done_now == 5
    stamps = {n: (dst / n.replace(".png", ".nc")).stat().st_mtime_ns for n in names}
    again = compress_tree(src, dst, model=tiny_model, effort=0)
    assert (again.done_now, again.done_before) == (0, 5)
    assert stamps == {n: (dst / n.replace(".png", ".nc")).stat().st_mtime_ns for n in names}

    changed, missing, partial = names[0], names[1], names[2]
    Image.fromarray(make_image(48, 64, seed=99)).save(src / changed)  # new bytes, new mtime
    os.utime(src / changed, ns=(0, stamps[changed] + 10**9))
    (dst / missing.replace(".png", ".nc")).unlink()
    with open(dst / partial.replace(".png", ".nc"), "r+b") as f:
        f.truncate(10)
    third = compress_tree(src, dst, model=tiny_model, effort=0)
    assert (third.done_now, third.done_before, third.exit_code) == (3, 2, 0)
    records = done_records(dst)
    assert records[changed]["src_size"] == (src / changed).stat().st_size
    assert records[changed]["src_mtime_ns"] == (src / changed).stat().st_mtime_ns
    for rel in (missing, partial):
        data = (dst / rel.replace(".png", ".nc")).read_bytes()
        assert len(data) == records[rel]["out_size"] and neuralcodec.decompress(data, model=tiny_model)

    other = compress_tree(src, dst, model=tiny_model, effort=0, quality=30)  # other settings: all redone
    assert (other.done_now, other.done_before) == (5, 0)


def test_corrupt_and_unreadable_files_are_reported_and_the_rest_is_done(
    tmp_path, make_image, tiny_model, capsys
):
    src, dst = tmp_path / "src", tmp_path / "dst"
    names = make_tree(src, make_image, 4)
    (src / "f1" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    (src / "f2" / "dangling.png").symlink_to(src / "gone.png")
    unreadable = src / "f3" / "locked.png"
    Image.fromarray(make_image(16, 16)).save(unreadable)
    unreadable.chmod(0)
    root = os.geteuid() == 0  # root reads any file: then only the other two fail
    code = main(
        ["compress", "-r", str(src), "-o", str(dst), "--model", str(tiny_model), "-e", "0", "--jobs", "2"]
    )
    unreadable.chmod(0o644)
    err = capsys.readouterr().err
    assert code == 2, err
    failed = {f["src"]: f["reason"] for f in summary(dst)["failures"]}
    assert failed.keys() == {"f1/corrupt.png", "f2/dangling.png"} | (set() if root else {"f3/locked.png"})
    assert failed["f2/dangling.png"] == "cannot read (no such file)"
    assert "Traceback" not in err and f"ncodec: f1/corrupt.png: {failed['f1/corrupt.png']}" in err
    done = set(done_records(dst))
    assert done == set(names) | ({"f3/locked.png"} if root else set())
    assert "f1/corrupt.nc" not in outputs(dst) and not temporaries(dst)


def test_a_source_that_changes_while_it_is_coded_is_not_recorded(
    tmp_path, make_image, tiny_model, in_process
):
    src, dst = tmp_path / "src", tmp_path / "dst"
    names = make_tree(src, make_image, 3)
    victim = names[1]

    def touch(item):
        if item.name == victim:
            path = src / victim
            os.utime(path, ns=(0, path.stat().st_mtime_ns + 10**9))

    in_process["before"] = touch
    result = compress_tree(src, dst, model=tiny_model, effort=0)
    assert [f.src for f in result.failures] == [victim] and result.exit_code == 3
    assert "changed while being coded" in result.failures[0].reason
    assert set(done_records(dst)) == {names[0], names[2]}
    in_process["before"] = None
    assert compress_tree(src, dst, model=tiny_model, effort=0).done_now == 1  # redone next time


def test_existing_outputs_that_are_not_the_trees_own_need_force(tmp_path, make_image, tiny_model, in_process):
    src, dst = tmp_path / "src", tmp_path / "dst"
    names = make_tree(src, make_image, 2)
    stranger = dst / names[0].replace(".png", ".nc")
    stranger.parent.mkdir(parents=True)
    stranger.write_bytes(b"someone else's file")
    result = compress_tree(src, dst, model=tiny_model, effort=0)
    assert result.exit_code == 1 and "already exists (use -f to overwrite)" in result.failures[0].reason
    assert stranger.read_bytes() == b"someone else's file"
    assert compress_tree(src, dst, model=tiny_model, effort=0, force=True).done_now == 1
    assert neuralcodec.decompress(stranger.read_bytes(), model=tiny_model)


def test_same_output_name_is_reported(tmp_path, make_image, tiny_model, in_process):
    src = tmp_path / "src"
    src.mkdir()
    for ext in ("png", "bmp"):
        Image.fromarray(make_image(16, 16)).save(src / f"a.{ext}")
    result = compress_tree(src, tmp_path / "dst", model=tiny_model, effort=0)
    assert [(f.src, f.reason) for f in result.failures] == [
        ("a.png", "same output name as a.bmp; rename one")
    ]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--jobs", "2"], "--jobs works on whole trees: add -r"),
        (["-r"], "-r needs an output folder"),
        (["-r", "-o", "OUT", "--address", "x:1"], "--address is for --engine ray"),
        (["-r", "-o", "OUT", "--engine", "spark"], "invalid choice: 'spark'"),
        (["-r", "-o", "OUT", "--jobs", "0"], "must be at least 1"),
    ],
)
def test_tree_usage_errors_exit_1(tmp_path, make_image, args, message, capsys):
    make_tree(tmp_path / "src", make_image, 1)
    args = [str(tmp_path / "o") if a == "OUT" else a for a in args]
    assert main(["compress", str(tmp_path / "src"), *args]) == 1
    assert message in capsys.readouterr().err
    assert main(["compress", "-r", str(tmp_path / "src" / "f0"), str(tmp_path / "src"), "-o", "x"]) == 1
    assert "-r takes one source folder" in capsys.readouterr().err


def test_a_model_that_does_not_load_stops_the_job_with_one_line(tmp_path, make_image, capsys, in_process):
    make_tree(tmp_path / "src", make_image, 2)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not weights")
    assert (
        main(["compress", "-r", str(tmp_path / "src"), "-o", str(tmp_path / "dst"), "--model", str(bad)]) == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a usable neuralcodec weights file" in err[0]


def test_ray_engine_without_ray_says_how_to_install_it(tmp_path, make_image, tiny_model, monkeypatch, capsys):
    make_tree(tmp_path / "src", make_image, 1)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails as if not installed
    monkeypatch.delitem(sys.modules, "neuralcodec.bulk.ray_engine", raising=False)
    args = ["compress", "-r", str(tmp_path / "src"), "-o", str(tmp_path / "dst"), "--engine", "ray"]
    assert main([*args, "--model", str(tiny_model)]) == 3
    assert capsys.readouterr().err.strip() == (
        "ncodec: --engine ray needs Ray: pip install 'neuralcodec[cluster]' (or pip install ray)"
    )


def test_the_package_imports_neither_torch_nor_ray(tmp_path):
    import subprocess

    code = "import sys, neuralcodec.bulk; print('torch' in sys.modules, 'ray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.split() == [
        "False",
        "False",
    ]
    assert engine.ENGINES.keys() == {"local", "ray"}


def test_progress_bar_and_printed_summary(tmp_path, make_image, tiny_model, in_process, capsys):
    import io

    from neuralcodec.bulk.report import Progress

    stream = io.StringIO()
    bar = Progress("compress", 4, True, stream)
    for _ in range(4):
        bar.advance(2_000_000, 100_000)
    bar.close()
    last = stream.getvalue().split("\r")[-1]
    assert "4/4" in last and "files/s" in last and "8.0 MB in, 0.4 MB out" in last and "ETA 0:00" in last

    make_tree(tmp_path / "src", make_image, 3)
    args = ["compress", "-r", str(tmp_path / "src"), "-o", str(tmp_path / "dst"), "--model", str(tiny_model)]
    assert main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"compress: 3 files in {tmp_path / 'src'}: 3 done now, 0 done before, 0 failed")
    assert out[1].endswith("bpp") and "ratio" in out[1] and len(out) == 2


def test_manifest_skips_a_line_cut_short_and_a_restarted_file_is_not_done(tmp_path):
    import json

    from neuralcodec.bulk.manifest import MANIFEST_NAME, Manifest, read_manifest

    done = {"event": "done", "src": "a.png", "out": "a.nc", "src_size": 1, "src_mtime_ns": 2}
    done.update(out_size=3, out_sha256="00", width=1, height=1, settings={})
    lines = [json.dumps(done), json.dumps({**done, "src": "b.png", "out": "b.nc"})]
    lines.append(json.dumps({"event": "start", "src": "b.png", "out": "b.nc"}))  # b redone, then killed
    (tmp_path / MANIFEST_NAME).write_text("\n".join(lines) + '\n{"event": "done", "src": "c.p')
    state = read_manifest(tmp_path / MANIFEST_NAME)
    assert set(state.done) == {"a.png"} and state.owned == {"a.nc", "b.nc"}
    Manifest(tmp_path).close()  # compacts: the same state, every line whole
    assert read_manifest(tmp_path / MANIFEST_NAME) == state
    assert all(json.loads(line) for line in (tmp_path / MANIFEST_NAME).read_text().splitlines())


def test_a_second_job_on_the_same_output_tree_is_refused(tmp_path, make_image, tiny_model, capsys):
    from neuralcodec.bulk.manifest import locked_tree

    make_tree(tmp_path / "src", make_image, 1)
    (tmp_path / "dst").mkdir()
    with locked_tree(tmp_path / "dst"):
        args = [
            "compress",
            "-r",
            str(tmp_path / "src"),
            "-o",
            str(tmp_path / "dst"),
            "--model",
            str(tiny_model),
        ]
        assert main(args) == 1
    assert "another ncodec job is writing this folder" in capsys.readouterr().err


def test_decompress_reports_a_damaged_nc_file_and_decodes_the_rest(
    tmp_path, make_image, tiny_model, in_process
):
    src, nc, png = tmp_path / "src", tmp_path / "nc", tmp_path / "png"
    make_tree(src, make_image, 3)
    compress_tree(src, nc, model=tiny_model, effort=0)
    damaged = nc / "f1" / "sub1" / "img001.nc"
    damaged.write_bytes(damaged.read_bytes()[:20])
    result = decompress_tree(nc, png, model=tiny_model)
    assert [(f.src, f.kind) for f in result.failures] == [("f1/sub1/img001.nc", "bad-input")]
    assert (
        result.exit_code == 2 and result.done_now == 2 and not (png / "f1" / "sub1" / "img001.png").exists()
    )
    assert outputs(png) == ["f0/sub0/img000.png", "f2/sub0/img002.png"]
