"""Safe output files, written the way careful tools write them.

- The data goes to a new temporary file in the output's folder, created like any output
  (``O_CREAT | O_EXCL`` with mode 0o666, so the umask and default ACLs apply; not mkstemp's
  0600), and is fsynced before it gets its name.
- Without ``force`` the temporary is published with ``os.link``, which fails if the name
  exists: a file that appears between the caller's existence check and the publish is never
  replaced. With ``force`` it is renamed over the old file (atomic replace). On file systems
  without hard links, the name is first reserved with ``O_EXCL`` and then replaced.
- The folder is fsynced after the publish, so the new name survives a crash.
- A failure at any step removes the temporary, and the folders this write created: no partial
  output is ever left behind.

An input is never overwritten (``check_output``).
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Callable
from pathlib import Path


class OutputExistsError(FileExistsError):
    """The output exists and overwriting was not requested."""


# os.link fails with these where the file system has no hard links (FAT, some FUSE and SMB mounts).
_NO_HARD_LINKS = {errno.EPERM, errno.EACCES, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV}


def check_output(path: Path, inputs: list[Path], force: bool) -> None:
    """Refuse to write over an input, or over an existing file without ``force``."""
    resolved = path.resolve()
    if any(resolved == p.resolve() for p in inputs if p.exists()):
        raise OutputExistsError(f"{path}: refusing to overwrite an input file")
    if path.is_dir():
        raise OutputExistsError(f"{path}: is a directory")
    if path.exists() and not force:
        raise OutputExistsError(f"{path}: already exists (use -f to overwrite)")


def _exists_error(path: Path) -> OutputExistsError:
    return OutputExistsError(f"{path}: already exists (use -f to overwrite)")


def _create_temporary(path: Path) -> Path:
    """A new empty file next to ``path``, created with the permissions any new file gets."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = path.with_name(f".{path.name[:180]}.{secrets.token_hex(4)}.tmp{path.suffix[:16]}")
        try:
            os.close(os.open(tmp, flags, 0o666))
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "cannot create a temporary file", str(path.parent))


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_directory(folder: Path) -> None:
    """Make a rename or link in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a directory
        pass
    finally:
        os.close(fd)


def _publish_no_clobber(tmp: Path, path: Path) -> None:
    """Give ``tmp`` the name ``path`` only if that name is free, atomically."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise _exists_error(path) from None
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        # No hard links here: reserve the name atomically, then replace our own empty file.
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            raise _exists_error(path) from None
        try:
            os.replace(tmp, path)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
    else:
        tmp.unlink(missing_ok=True)


def write_atomic(path: Path, write: Callable[[Path], None], force: bool = False) -> None:
    """Call ``write(tmp_path)``, then publish the temporary file as ``path`` (see the module docstring).

    Raises OutputExistsError when ``path`` exists (also if it appeared while writing) and
    ``force`` is false.
    """
    created = _missing_folders(path.parent)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _create_temporary(path)
        write(tmp)
        _fsync_file(tmp)
        if force:
            os.replace(tmp, path)
        else:
            _publish_no_clobber(tmp, path)
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        _remove_empty_folders(created)
        raise
    fsync_directory(path.parent)


def _missing_folders(folder: Path) -> list[Path]:
    """The folders ``mkdir(parents=True)`` would create for ``folder``, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _remove_empty_folders(folders: list[Path]) -> None:
    """Undo the folders a failed write created (deepest first); a folder that is no longer
    empty (someone else wrote into it meanwhile) is kept, and so are its parents."""
    for folder in folders:
        try:
            folder.rmdir()
        except FileNotFoundError:
            continue
        except OSError:
            break
