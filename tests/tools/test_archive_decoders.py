"""tools/archive_decoders.py: every decoder a commit shipped and the working tree no longer
ships is rebuilt from git history as NAME-DIGEST.pt, byte for byte, where the runtime finds it."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from neuralcodec.training import archive
from neuralcodec.zoo import WEIGHTS_PATH_VARIABLE, available_models, bytes_digest, find_decoder

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
WEIGHTS = "neuralcodec/weights/tiny.pt"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def saved(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


@dataclass
class History:
    """A repository whose tiny.pt had decoders first, second (twice: the second time with a
    retrained encoder, same digest) and current (the working tree's)."""

    repo: Path
    blobs: dict[str, bytes]  # commit label -> the weights it committed
    commits: dict[str, str]  # commit label -> full hash
    digests: dict[str, bytes]  # decoder label -> digest


@pytest.fixture
def history(tmp_path) -> History:
    repo = tmp_path / "repo"
    (repo / "neuralcodec" / "weights").mkdir(parents=True)
    git(repo, "init", "-q")
    for key, value in [
        ("user.name", "Test"),
        ("user.email", "test@example.com"),
        ("commit.gpgsign", "false"),
    ]:
        git(repo, "config", key, value)
    first = (FIXTURES / "tiny.pt").read_bytes()  # format 1, no decoder_digest entry: the file hash
    second = (FIXTURES / "tiny-offsets.pt").read_bytes()  # format 2: another decoder
    encoder = torch.load(FIXTURES / "tiny-offsets.pt", weights_only=True)
    encoder["transforms"]["g_a.0.bias"] = encoder["transforms"]["g_a.0.bias"] + 0.5
    encoder["decoder_digest"] = bytes_digest(second).hex()  # as export.py --decoder-from writes it
    current = torch.load(FIXTURES / "tiny.pt", weights_only=True) | {"meta": {"note": "current"}}
    blobs = {"first": first, "second": second, "encoder": saved(encoder), "current": saved(current)}
    commits = {}
    for label, blob in blobs.items():
        (repo / WEIGHTS).write_bytes(blob)
        git(repo, "add", WEIGHTS)
        git(repo, "commit", "-q", "-m", f"ship {label}")
        commits[label] = git(repo, "rev-parse", "HEAD").strip()
    (repo / "README.md").write_text("a commit that leaves the weights alone\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-q", "-m", "docs")
    digests = {label: bytes_digest(blobs[label]) for label in ("first", "second", "current")}
    return History(repo, blobs, commits, digests)


def run(*args: str) -> int:
    try:
        archive.main(list(args))
    except SystemExit as exc:
        return exc.code
    return 0


def file_of(history: History, decoder: str) -> str:
    return f"tiny-{history.digests[decoder].hex()}.pt"


def test_every_earlier_decoder_is_filed_once_with_the_newest_weights_that_had_it(history, tmp_path, capsys):
    out = tmp_path / "out"
    assert run("--repo", str(history.repo), "--out", str(out)) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [file_of(history, "first"), file_of(history, "second")]
    )
    assert (out / file_of(history, "first")).read_bytes() == history.blobs["first"]
    # The encoder-only retrain kept the second decoder's digest: its weights (the newer) are filed.
    filed = (out / file_of(history, "second")).read_bytes()
    assert filed == history.blobs["encoder"] != history.blobs["second"]
    assert (
        filed
        == subprocess.run(
            ["git", "-C", str(history.repo), "show", f"{history.commits['encoder']}:{WEIGHTS}"],
            check=True,
            capture_output=True,
        ).stdout
    )
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    short = {
        label: git(history.repo, "rev-parse", "--short", commit).strip()
        for label, commit in history.commits.items()
    }
    second, first = lines[:2]  # newest first
    assert second.startswith(file_of(history, "second")) and f"from {short['encoder']}" in second
    assert f"also {short['second']}" in second and "written" in second
    assert first.startswith(file_of(history, "first")) and f"from {short['first']}" in first
    assert "MB" in first and "also" not in first
    assert lines[2].startswith("2 earlier decoders") and history.digests["current"].hex() in lines[2]


def test_an_archived_decoder_is_found_where_the_runtime_looks(history, tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert run("--repo", str(history.repo), "--out", str(out)) == 0
    assert "tiny" not in available_models()  # so find_decoder searches the weights path
    monkeypatch.setenv(WEIGHTS_PATH_VARIABLE, str(out))
    for decoder in ("first", "second"):
        model = find_decoder("tiny", history.digests[decoder])
        assert model is not None and model.digest == history.digests[decoder]
    assert find_decoder("tiny", history.digests["current"]) is None  # shipped: never filed


def test_a_dry_run_lists_the_files_and_writes_nothing(history, tmp_path, capsys):
    out = tmp_path / "out"
    assert run("--repo", str(history.repo), "--out", str(out), "--dry-run", "--models", "tiny") == 0
    assert not out.exists()
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[:2]] == [file_of(history, "second"), file_of(history, "first")]
    assert all("to write" in line for line in lines[:2]) and "dry run" in lines[2]


def test_identical_files_are_left_and_a_different_one_is_refused_before_anything_is_written(
    history, tmp_path, capsys
):
    out = tmp_path / "out"
    assert run("--repo", str(history.repo), "--out", str(out)) == 0
    capsys.readouterr()
    assert run("--repo", str(history.repo), "--out", str(out)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all("(already there" in line for line in lines[:2]) and "2 already there;" in lines[2]
    (out / file_of(history, "second")).unlink()  # the newest, filed first
    (out / file_of(history, "first")).write_bytes(history.blobs["current"])  # another file, same name
    assert run("--repo", str(history.repo), "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and file_of(history, "first") in err and "exists" in err
    assert (out / file_of(history, "first")).read_bytes() == history.blobs["current"]
    assert not (out / file_of(history, "second")).exists()


def test_weights_that_do_not_load_with_their_digest_are_never_filed(history, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(archive, "load_model", lambda path: SimpleNamespace(digest=bytes(8)))
    out = tmp_path / "out"
    out.mkdir()
    assert run("--repo", str(history.repo), "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "0000000000000000" in err
    assert not list(out.iterdir())  # not even a temporary file


@pytest.mark.parametrize(
    "case, expected",
    [
        ("unknown model", "unknown model nope"),
        ("out is a file", "is a file"),
        ("no git", "git not found"),
        ("no weights", "ever changed neuralcodec/weights"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(history, tmp_path, monkeypatch, capsys, case, expected):
    args = ["--repo", str(history.repo), "--out", str(tmp_path / "out")]
    if case == "unknown model":
        args += ["--models", "tiny,nope"]
    elif case == "out is a file":
        (tmp_path / "out").write_text("")
    elif case == "no git":
        monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    else:
        other = tmp_path / "other"
        other.mkdir()
        git(other, "init", "-q")
        git(
            other,
            "-c",
            "user.name=T",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "0",
        )
        args[1] = str(other)
    assert run(*args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err and err.startswith("archive_decoders: ")


def test_a_folder_outside_any_repository_is_one_line_and_exit_status_2(tmp_path):
    (tmp_path / "plain").mkdir()
    env = os.environ | {"GIT_CEILING_DIRECTORIES": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(REPO / "tools" / "archive_decoders.py"), "--repo", str(tmp_path / "plain")]
        + ["--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "not a git repository" in done.stderr
    assert not (tmp_path / "out").exists()
