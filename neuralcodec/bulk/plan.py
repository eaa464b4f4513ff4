"""Tree walking and planning: which source files a job takes, where each output goes, and which
of them are still to do.

Compress takes every file whose extension Pillow reads (``.nc`` files excluded); decompress every
``.nc`` file. Outputs mirror the source tree: ``a/b/c.jpg`` -> ``DST/a/b/c.nc`` (compress) or
``DST/a/b/c.png`` (decompress). Hidden files and folders (``.name``), which include this
package's manifest and the temporaries of interrupted writes, are never inputs, and neither is
anything inside DST when DST lies within the source tree. The order is sorted, so every engine
sees the same plan.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from neuralcodec.bulk.manifest import ManifestState

# fileio.write_atomic's temporaries: ".NAME.XXXXXXXX.tmpSUFFIX" beside the output.
_TEMPORARY = re.compile(r"\..+\.[0-9a-f]{8}\.tmp(\.[^/]*)?")


@dataclass(frozen=True)
class Task:
    """One source file and its output, as relative POSIX paths."""

    src: str
    out: str


@dataclass(frozen=True)
class Clash:
    """Sources that would write the same output (``a.png`` and ``a.jpg`` -> ``a.nc``)."""

    src: str
    other: str


def input_extensions(command: str) -> set[str]:
    """Lower-case extensions (with the dot) a job takes as inputs."""
    if command == "decompress":
        return {".nc"}
    from PIL import Image

    Image.init()  # every plugin, so that registered_extensions() is complete
    return {ext for ext in Image.registered_extensions() if ext != ".nc"}


def walk(src_root: Path, dst_root: Path, command: str) -> tuple[list[Task], list[Clash]]:
    """The tasks of a tree, sorted by source path, and the sources whose output name clashes with
    an earlier one's (those are reported, not done)."""
    extensions = input_extensions(command)
    suffix = ".png" if command == "decompress" else ".nc"
    skip = dst_root.resolve()
    found: list[str] = []
    for folder, dirs, files in os.walk(src_root):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (here / d).resolve() != skip)
        for name in files:
            if not name.startswith(".") and Path(name).suffix.lower() in extensions:
                found.append((here / name).relative_to(src_root).as_posix())
    tasks: list[Task] = []
    clashes: list[Clash] = []
    owner: dict[str, str] = {}
    for src in sorted(found):
        out = PurePosixPath(src).with_suffix(suffix).as_posix()
        if out.lower() in owner:  # case-insensitive file systems would clash as well
            clashes.append(Clash(src, owner[out.lower()]))
        else:
            owner[out.lower()] = src
            tasks.append(Task(src, out))
    return tasks, clashes


def is_complete(
    task: Task, state: ManifestState, src_root: Path, dst_root: Path, settings: dict[str, Any]
) -> bool:
    """Whether the manifest records ``task`` as done with these settings, and the source and the
    output are still as recorded (source size and mtime, output size)."""
    record = state.done.get(task.src)
    if record is None or record.out != task.out or record.settings != settings:
        return False
    try:
        source = (src_root / task.src).stat()
        output = (dst_root / task.out).stat()
    except OSError:
        return False
    return (
        source.st_size == record.src_size
        and source.st_mtime_ns == record.src_mtime_ns
        and output.st_size == record.out_size
    )


def remove_temporaries(dst_root: Path, tasks: list[Task]) -> int:
    """Delete the temporaries that interrupted writes left beside this job's outputs (only in
    the folders the job writes, only names of the temporary pattern); returns how many."""
    removed = 0
    for folder in sorted({(dst_root / t.out).parent for t in tasks}):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if _TEMPORARY.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                try:
                    os.unlink(entry.path)
                    removed += 1
                except OSError:
                    pass
    return removed
