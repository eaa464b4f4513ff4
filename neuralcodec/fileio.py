"""Safe output files: written to a temporary name in the same folder, then renamed.

A crash or error never leaves a partial output behind, an existing file is replaced only
when asked (``force``), and an input is never overwritten.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


class OutputExistsError(FileExistsError):
    """The output exists and overwriting was not requested."""


def check_output(path: Path, inputs: list[Path], force: bool) -> None:
    """Refuse to write over an input, or over an existing file without ``force``."""
    resolved = path.resolve()
    if any(resolved == p.resolve() for p in inputs if p.exists()):
        raise OutputExistsError(f"{path}: refusing to overwrite an input file")
    if path.exists() and not force:
        raise OutputExistsError(f"{path}: already exists (use -f to overwrite)")
    if path.is_dir():
        raise OutputExistsError(f"{path}: is a directory")


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``; remove the temporary on failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
