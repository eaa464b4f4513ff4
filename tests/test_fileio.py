"""Safe output files: umask, no-clobber publish, fsync, cleanup (neuralcodec.fileio)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from neuralcodec import fileio
from neuralcodec.fileio import OutputExistsError, check_output, write_atomic


def _hidden(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        write_atomic(tmp_path / "out.nc", lambda p: p.write_bytes(b"data"))
    finally:
        os.umask(old)
    assert (tmp_path / "out.nc").stat().st_mode & 0o777 == mode


def test_existing_file_is_kept_without_force_and_replaced_with_it(tmp_path):
    out = tmp_path / "out.nc"
    out.write_bytes(b"old")
    with pytest.raises(OutputExistsError, match="already exists"):
        write_atomic(out, lambda p: p.write_bytes(b"new"))
    assert out.read_bytes() == b"old"
    write_atomic(out, lambda p: p.write_bytes(b"new"), force=True)
    assert out.read_bytes() == b"new"
    assert _hidden(tmp_path) == []


def test_a_file_that_appears_while_writing_is_not_replaced(tmp_path):
    out = tmp_path / "out.nc"

    def write(tmp: Path) -> None:
        tmp.write_bytes(b"ours")
        out.write_bytes(b"theirs")  # another process creates the name after any check we made

    with pytest.raises(OutputExistsError):
        write_atomic(out, write)
    assert out.read_bytes() == b"theirs"
    assert _hidden(tmp_path) == []


@pytest.mark.parametrize("code", [errno.EPERM, errno.EOPNOTSUPP])
def test_file_systems_without_hard_links_still_never_clobber(tmp_path, monkeypatch, code):
    def no_link(src, dst):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(fileio.os, "link", no_link)
    out = tmp_path / "out.nc"
    write_atomic(out, lambda p: p.write_bytes(b"first"))
    assert out.read_bytes() == b"first"
    with pytest.raises(OutputExistsError):
        write_atomic(out, lambda p: p.write_bytes(b"second"))
    assert out.read_bytes() == b"first"
    assert _hidden(tmp_path) == []


def test_file_and_folder_are_fsynced(tmp_path, monkeypatch):
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else str(fd))
        real_fsync(fd)

    monkeypatch.setattr(fileio.os, "fsync", fsync)
    out = tmp_path / "out.nc"
    write_atomic(out, lambda p: p.write_bytes(b"data"))
    assert len(synced) == 2
    if os.path.exists("/proc/self/fd"):
        assert Path(synced[0]).parent == tmp_path and Path(synced[0]).name.startswith(".out.nc.")
        assert Path(synced[1]) == tmp_path


def test_failure_while_writing_leaves_nothing(tmp_path):
    def write(tmp: Path) -> None:
        tmp.write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        write_atomic(tmp_path / "out.nc", write)
    assert list(tmp_path.iterdir()) == []


def test_missing_folders_are_created(tmp_path):
    out = tmp_path / "a" / "b" / "out.nc"
    write_atomic(out, lambda p: p.write_bytes(b"x"))
    assert out.read_bytes() == b"x"


def test_failure_also_removes_the_folders_it_created(tmp_path):
    """``ncodec decompress x.nc new/sub/out.jpg`` failing (an RGBA image) left new/sub behind."""

    def fail(tmp: Path) -> None:
        tmp.write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    (tmp_path / "kept").mkdir()
    for out in (tmp_path / "new" / "sub" / "out.nc", tmp_path / "kept" / "sub" / "out.nc"):
        with pytest.raises(OSError, match="No space"):
            write_atomic(out, fail)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]  # a folder that existed stays
    assert list((tmp_path / "kept").iterdir()) == []


def test_check_output_refuses_inputs_folders_and_existing_files(tmp_path):
    src = tmp_path / "in.png"
    src.write_bytes(b"image")
    with pytest.raises(OutputExistsError, match="input"):
        check_output(tmp_path / "." / "in.png", [src], force=True)
    (tmp_path / "dir").mkdir()
    with pytest.raises(OutputExistsError, match="directory"):
        check_output(tmp_path / "dir", [src], force=True)
    (tmp_path / "there.nc").write_bytes(b"x")
    with pytest.raises(OutputExistsError, match="-f"):
        check_output(tmp_path / "there.nc", [src], force=False)
    check_output(tmp_path / "there.nc", [src], force=True)
    check_output(tmp_path / "new.nc", [src], force=False)
