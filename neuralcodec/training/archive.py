"""Rebuild, from a clone's git history, every decoder ever shipped that is no longer shipped.

Every ``.nc`` file names its decoder (model name + 8-byte digest, docs/FORMAT.md). Once a
release replaces ``neuralcodec/weights/NAME.pt`` with weights of another decoder, files
written before need the replaced weights, filed as ``NAME-DIGEST.pt`` in a folder of the
runtime's weights search path (``zoo.find_decoder``). Each of those files is a weights file
that some commit shipped, byte for byte, so the history of any clone can write them all again:

    python tools/archive_decoders.py --out release-decoders

Guarantees: every file written holds exactly the bytes of a committed weights file, is named by
the digest the runtime computes for it, and was loaded with ``zoo.load_model`` and found to
carry that digest before it got its name (a file that does not is never published). Where
several commits share a decoder (an encoder-only retrain keeps its parent's digest), the newest
one's weights are filed: its encoder is the better one. The decoder of the weights in the
working tree (what this checkout's package decodes with) is never filed. An existing file is
never overwritten.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import torch

from neuralcodec.errors import one_line
from neuralcodec.fileio import OutputExistsError, write_atomic
from neuralcodec.zoo import decoder_digest, decoder_file_name, load_model

WEIGHTS = PurePosixPath("neuralcodec/weights")  # where shipped weights live in the repository
DEFAULT_REPO = Path(__file__).resolve().parents[2]


class ArchiveError(Exception):
    """Something the user must fix, said in one line (the CLI exits with status 2)."""


class GitError(ArchiveError):
    """A git command failed; ``detail`` is git's own message."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


@dataclass
class Decoder:
    """One decoder of the history: the weights of the newest commit that shipped it."""

    name: str
    digest: bytes
    commit: str  # full hash of the newest commit whose weights have this decoder
    short: str  # its abbreviated hash
    path: str  # the weights file's path in that commit
    blob: bytes = field(repr=False)
    older: list[str] = field(default_factory=list)  # abbreviated hashes of older commits sharing it

    @property
    def file_name(self) -> str:
        return decoder_file_name(self.name, self.digest)


def git(repo: Path, *args: str) -> bytes:
    """The standard output of ``git -C repo ARGS`` (no shell); ArchiveError when it fails."""
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)
    except FileNotFoundError:
        raise ArchiveError("git not found: install git, or put it on PATH") from None
    if done.returncode != 0:
        detail = one_line(done.stderr.decode(errors="replace")) or f"exit status {done.returncode}"
        raise GitError(f"git {' '.join(args[:2])} in {repo}: {detail}", detail)
    return done.stdout


def work_tree(repo: Path) -> Path:
    """The top folder of the git working tree that holds ``repo``."""
    if not repo.is_dir():
        raise ArchiveError(f"{repo} is not a folder (--repo must be a git checkout of neuralcodec)")
    try:
        top = git(repo, "rev-parse", "--show-toplevel")
    except GitError as exc:  # git's own words: "not a git repository", "dubious ownership", ...
        raise ArchiveError(f"cannot read the git history of {repo}: {exc.detail}") from None
    return Path(top.decode().strip())


def weights_paths(repo: Path) -> dict[str, str]:
    """Model name (file stem) -> path of every ``neuralcodec/weights/*.pt`` any commit added or changed."""
    # ACMRT: the changes that leave a file at the path (git 2.39 listed no commit at all for
    # "d", all but deletions, in `git log --format=%H`).
    listed = git(repo, "log", "--format=", "--name-only", "--diff-filter=ACMRT", "--", f"{WEIGHTS}/*.pt")
    paths = {PurePosixPath(line) for line in listed.decode().splitlines() if line}
    return {p.stem: str(p) for p in sorted(paths) if p.parent == WEIGHTS and p.suffix == ".pt"}


def load_weights(blob: bytes, label: str) -> tuple[str, bytes]:
    """The model name and decoder digest of the weights file ``blob``, as the runtime computes them
    (``zoo.decoder_digest`` on its bytes); ``label`` names it in errors."""
    try:
        state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
        return str(state["name"]), decoder_digest(state, Path(label), blob)
    except Exception as exc:  # any unreadable file: torch, pickle, zip and key errors alike
        raise ArchiveError(f"{label} is not a readable weights file: {one_line(exc)}") from None


def history(repo: Path, path: str) -> list[Decoder]:
    """The decoders the file ``path`` ever had, newest first, each with its newest commit's weights."""
    found: dict[bytes, Decoder] = {}
    for line in git(repo, "log", "--format=%H %h", "--diff-filter=ACMRT", "--", path).decode().splitlines():
        commit, short = line.split()
        blob = git(repo, "show", f"{commit}:{path}")
        name, digest = load_weights(blob, f"{short}:{path}")
        if digest in found:
            found[digest].older.append(short)
        else:
            found[digest] = Decoder(name, digest, commit, short, path, blob)
    return list(found.values())


def shipped_digest(top: Path, path: str) -> bytes | None:
    """The decoder digest of the weights at ``path`` in the working tree, None when it has none."""
    file = top / path
    if not file.is_file():
        return None
    return load_weights(file.read_bytes(), str(file))[1]


def retired_decoders(repo: Path, models: list[str] | None = None) -> tuple[list[Decoder], dict[str, bytes]]:
    """Every decoder that ``models`` (default: all ever shipped) had in the history of ``repo``
    and that the working tree's weights of that model no longer have, newest first per model;
    and the digests of those working-tree weights (the shipped decoders, never filed), by model."""
    top = work_tree(repo)
    paths = weights_paths(top)
    if not paths:
        raise ArchiveError(f"no commit of {top} ever changed {WEIGHTS}/*.pt")
    models = models or sorted(paths)
    unknown = [m for m in models if m not in paths]
    if unknown:
        raise ArchiveError(f"unknown model {', '.join(unknown)}: the history has {', '.join(sorted(paths))}")
    retired, shipped = [], {}
    for model in models:
        current = shipped_digest(top, paths[model])
        if current is not None:
            shipped[model] = current
        retired += [d for d in history(top, paths[model]) if d.digest != current]
    return retired, shipped


def verify(path: Path, decoder: Decoder) -> None:
    """Load ``path`` as the runtime does; ArchiveError unless it is ``decoder``."""
    try:
        digest = load_model(path).digest
    except Exception as exc:  # whatever the runtime would fail with
        raise ArchiveError(
            f"{decoder.file_name} (from {decoder.short}) does not load: {one_line(exc)}"
        ) from None
    if digest != decoder.digest:
        raise ArchiveError(
            f"{decoder.file_name} (from {decoder.short}) loads with decoder digest {digest.hex()}, "
            f"not {decoder.digest.hex()}: nothing written for it"
        )


def already_filed(decoder: Decoder, out: Path) -> bool:
    """Whether ``out/NAME-DIGEST.pt`` holds ``decoder``'s weights already; ArchiveError when
    something else has that name."""
    target = out / decoder.file_name
    if not target.exists():
        return False
    if not target.is_file() or target.read_bytes() != decoder.blob:
        raise ArchiveError(f"{target} exists and is not the weights of {decoder.short}: move it away first")
    return True


def file_decoder(decoder: Decoder, out: Path, dry_run: bool) -> str:
    """File ``decoder`` as ``out/NAME-DIGEST.pt``; returns what happened ("written", "already
    there", "to write" with ``dry_run``). ArchiveError when a different file has that name, or
    when the weights do not load with their digest (then nothing is written)."""
    target = out / decoder.file_name
    if already_filed(decoder, out):
        verify(target, decoder)
        return "already there"
    if dry_run:
        return "to write"

    def write(tmp: Path) -> None:
        tmp.write_bytes(decoder.blob)
        verify(tmp, decoder)  # before it gets its name: a file that fails is removed, never published

    try:
        write_atomic(target, write)
    except OutputExistsError:
        raise ArchiveError(f"{target} appeared while it was being written: run again") from None
    except OSError as exc:
        raise ArchiveError(f"cannot write {target}: {one_line(exc)}") from None
    return "written"


def archive(repo: Path, out: Path, models: list[str] | None = None, dry_run: bool = False) -> list[Decoder]:
    """File every retired decoder (see :func:`retired_decoders`) in ``out``, printing one line per
    file and a summary; with ``dry_run`` only list them. Returns them."""
    if out.exists() and not out.is_dir():
        raise ArchiveError(f"{out} is a file, not a folder")
    retired, shipped = retired_decoders(repo, models)
    for decoder in retired:  # refuse before writing anything
        already_filed(decoder, out)
    counts: dict[str, int] = {}
    for decoder in retired:
        status = file_decoder(decoder, out, dry_run)
        counts[status] = counts.get(status, 0) + 1
        older = f"; newest of the commits with this decoder, also {', '.join(decoder.older)}"
        print(
            f"{decoder.file_name}  {decoder.name} {decoder.digest.hex()}  from {decoder.short}  "
            f"{len(decoder.blob) / 1e6:.1f} MB  ({status}{older if decoder.older else ''})"
        )
    done = ", ".join(f"{n} {s}" for s, n in counts.items()) or "nothing to file"
    kept = ", ".join(f"{m} {d.hex()}" for m, d in shipped.items()) or "none"
    print(
        f"{len(retired)} earlier decoder{'s' * (len(retired) != 1)} in {out}: {done}"
        f"{' (dry run)' if dry_run else ''}; shipped, so not filed: {kept}"
    )
    return retired


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description="Write NAME-DIGEST.pt for every decoder a commit of the repository shipped and the "
        "working tree no longer ships: the files a release publishes so that earlier .nc files decode."
    )
    p.add_argument("--out", type=Path, required=True, help="folder for the NAME-DIGEST.pt files")
    p.add_argument("--repo", type=Path, default=DEFAULT_REPO, help="git checkout (default: %(default)s)")
    p.add_argument(
        "--models", help="comma-separated model names, e.g. mse,msssim (default: every model of the history)"
    )
    p.add_argument("--dry-run", action="store_true", help="list the files, write nothing")
    args = p.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    try:
        archive(args.repo, args.out, models, args.dry_run)
    except ArchiveError as exc:
        print(f"archive_decoders: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
