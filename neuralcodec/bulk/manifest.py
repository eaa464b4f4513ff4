"""The manifest of an output tree: which outputs are complete, from which source, made how.

One JSON object per line in ``DST/.ncodec-manifest.jsonl``, written only by the process that
runs the job (never by its workers):

- ``{"event": "start", "src": REL, "out": REL}`` is appended and fsynced *before* an output is
  published. It marks the output name as this tree's own, so a rerun may replace it without
  ``-f`` (e.g. a file published just before a ``kill -9`` and not yet recorded as done).
- ``{"event": "done", "src", "out", "src_size", "src_mtime_ns", "out_size", "out_sha256",
  "width", "height", "settings"}`` is appended after the output is published under its final
  name. ``src_size`` / ``src_mtime_ns`` are those of the source bytes actually coded.

A line cut short by a crash is ignored. A record counts as done only while its source still has
the recorded size and mtime, its output the recorded size, and the settings are the same;
anything else is redone. The tree is locked (``flock`` on DST) while a job runs, so two jobs
never write one manifest.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from neuralcodec.fileio import fsync_directory, write_atomic

MANIFEST_NAME = ".ncodec-manifest.jsonl"


class TreeLockedError(Exception):
    """Another job is writing this output tree."""


@dataclass(frozen=True)
class Done:
    """One finished output, as recorded."""

    src: str
    out: str
    src_size: int
    src_mtime_ns: int
    out_size: int
    out_sha256: str
    width: int
    height: int
    settings: dict[str, Any]


@dataclass
class ManifestState:
    """What the manifest says: the latest ``done`` record per source, and every output name it
    ever announced (``owned``)."""

    done: dict[str, Done]
    owned: set[str]


def read_manifest(path: Path) -> ManifestState:
    """Parse a manifest (absent: empty); lines that do not parse are skipped."""
    state = ManifestState({}, set())
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return state
    for line in text.splitlines():
        try:
            record = json.loads(line)
            state.owned.add(record["out"])
            if record.get("event") == "done":
                fields = {k: record[k] for k in Done.__dataclass_fields__}
                state.done[record["src"]] = Done(**fields)
            elif record.get("event") == "start":
                state.done.pop(record["src"], None)  # being redone: no longer complete
        except (ValueError, KeyError, TypeError):
            continue
    return state


class Manifest:
    """An open manifest: compacted when opened, appended to while the job runs."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / MANIFEST_NAME
        self.state = read_manifest(self.path)
        self._compact()
        self._file: TextIO = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())

    def _compact(self) -> None:
        """Rewrite the manifest with one line per known output (atomically)."""
        lines = [_line({"event": "done", **asdict(d)}) for d in self.state.done.values()]
        done_outs = {d.out for d in self.state.done.values()}
        lines += [
            _line({"event": "start", "src": "", "out": o}) for o in sorted(self.state.owned - done_outs)
        ]
        write_atomic(self.path, lambda tmp: tmp.write_text("".join(lines), encoding="utf-8"), force=True)

    def start(self, src: str, out: str) -> None:
        """Announce that ``out`` is about to be (re)written; durable before it returns."""
        self.state.owned.add(out)
        self.state.done.pop(src, None)
        self._append({"event": "start", "src": src, "out": out}, durable=True)

    def done(self, record: Done) -> None:
        """Record a published output."""
        self.state.done[record.src] = record
        self._append({"event": "done", **asdict(record)}, durable=False)

    def _append(self, record: dict[str, Any], durable: bool) -> None:
        self._file.write(_line(record))
        self._file.flush()
        if durable:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        os.fsync(self._file.fileno())
        self._file.close()
        fsync_directory(self.path.parent)


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"


@contextmanager
def locked_tree(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on the output folder for the job's duration (POSIX ``flock``;
    elsewhere no lock). Raises TreeLockedError at once if another job holds it."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TreeLockedError(f"{folder}: another ncodec job is writing this folder") from None
        yield
    finally:
        os.close(fd)
