"""kill -9 in the middle of a ``--jobs 2`` tree job, then the same command again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bulk_helpers import done_records, make_tree, summary, temporaries

import neuralcodec


def _command(src, dst, model) -> list[str]:
    return [sys.executable, "-m", "neuralcodec.cli", "compress", "-r", str(src), "-o", str(dst)] + [
        "--model",
        str(model),
        "-e",
        "1",
        "--jobs",
        "2",
    ]


def _processes_with(marker: str) -> list[int]:
    """Live processes whose environment holds ``marker`` (this test's job and its workers)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker.encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def _outputs(dst) -> dict[str, tuple[int, int]]:
    """Final-named outputs: relative path -> (inode, mtime_ns)."""
    return {
        p.relative_to(dst).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in dst.rglob("*.nc")
        if not p.name.startswith(".")
    }


@pytest.mark.slow
def test_kill_9_midway_then_resume_does_only_the_rest(tmp_path, make_image, tiny_model):
    src, dst = tmp_path / "src", tmp_path / "dst"
    names = make_tree(src, make_image, 40, folders=5, size=(96, 128))
    marker = f"NCODEC_KILL_TEST={tmp_path}"
    env = {**os.environ, "NCODEC_KILL_TEST": str(tmp_path)}
    log = (tmp_path / "killed.log").open("wb")  # not a pipe: a surviving worker would hold it open
    job = subprocess.Popen(_command(src, dst, tiny_model), stdout=log, stderr=log, env=env)
    deadline = time.monotonic() + 120
    while len(done_records(dst)) < 6 and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    job.send_signal(signal.SIGKILL)
    job.wait()
    log.close()
    recorded = done_records(dst)
    assert job.returncode == -signal.SIGKILL, (tmp_path / "killed.log").read_text()
    assert 6 <= len(recorded) < len(names), "the job must be killed midway for this test to mean anything"
    if sys.platform.startswith("linux"):  # the workers die with the job (PR_SET_PDEATHSIG)
        while _processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _processes_with(marker), "worker processes outlived the killed job"

    before = _outputs(dst)
    for rel in before:  # whatever has a final name is complete
        assert neuralcodec.decompress((dst / rel).read_bytes(), model=tiny_model).size == (128, 96)
    for record in recorded.values():
        assert before[record["out"]] and (dst / record["out"]).stat().st_size == record["out_size"]

    resumed = subprocess.run(_command(src, dst, tiny_model), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    after = _outputs(dst)
    assert sorted(after) == sorted(n.replace(".png", ".nc") for n in names)
    assert not temporaries(dst)
    rewritten = {rel for rel in before if after[rel] != before[rel]}
    assert not rewritten & {r["out"] for r in recorded.values()}, "finished files were written again"
    assert len(rewritten) <= 1  # at most the one published but not yet recorded when it was killed
    report = summary(dst)
    assert report["done_before"] == len(recorded) and report["done_now"] == len(names) - len(recorded)
    assert set(done_records(dst)) == set(names)
    for rel in after:
        assert neuralcodec.decompress((dst / rel).read_bytes(), model=tiny_model).size == (128, 96)
