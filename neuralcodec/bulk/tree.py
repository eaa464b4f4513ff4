"""Whole trees: ``compress_tree`` / ``decompress_tree`` mirror a source folder into an output
folder with any engine, resumably.

Guarantees, whatever engine runs the work:

- Every output appears under its final name complete or not at all (fileio.write_atomic);
  ``kill -9`` at any moment leaves at most temporaries, which the next run removes.
- The manifest records a file as done only after its output is published, with the size and
  mtime of the source bytes that were coded; a source that changes while it is read or coded
  is reported and not recorded. A rerun of the same job skips what is done and redoes what is
  missing, partial or stale (changed source, other settings).
- An existing output that this tree's manifest never announced is replaced only with
  ``force``; an input is never written.
- One unreadable or corrupt file is a failure in the summary, never the end of the job.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from neuralcodec.bulk.engine import open_engine
from neuralcodec.bulk.manifest import Done, Manifest, locked_tree
from neuralcodec.bulk.plan import Task, is_complete, remove_temporaries, walk
from neuralcodec.bulk.report import Failure, Progress, Summary
from neuralcodec.bulk.worker import BAD_INPUT, FAILURE, SETUP, USAGE, Item, JobSpec, Outcome
from neuralcodec.errors import NeuralCodecError
from neuralcodec.fileio import OutputExistsError, write_atomic


class TreeUsageError(ValueError):
    """The folders given cannot make a job (not a folder, output is a file)."""


class JobSetupError(NeuralCodecError):
    """The workers cannot start coding (e.g. a model that does not load): the job stops."""


def compress_tree(
    src: str | Path,
    dst: str | Path,
    *,
    quality: float = 75.0,
    model: str | Path = "msssim",
    effort: int | None = None,
    target_size: int | None = None,
    target_psnr: float | None = None,
    target_ms_ssim: float | None = None,
    strip: bool = False,
    max_pixels: int | None = None,
    device: str = "auto",
    threads: int | None = None,
    **run: Any,
) -> Summary:
    """Compress every image under ``src`` to ``dst`` (same relative paths, ``.nc``). Coding options
    as in ``neuralcodec.compress``; ``threads`` per worker (default: an even share of the cores);
    ``run``: ``jobs``, ``engine``, ``address``, ``force``, ``progress`` as for :func:`run_tree`.
    See the module docstring for what is guaranteed."""
    target = {"target_size": target_size, "target_psnr": target_psnr, "target_ms_ssim": target_ms_ssim}
    target = {k: v for k, v in target.items() if v is not None}
    spec = JobSpec("compress", str(model), float(quality), target, effort, strip, max_pixels, device, threads)
    return run_tree(src, dst, spec, **run)


def decompress_tree(
    src: str | Path,
    dst: str | Path,
    *,
    model: str | Path | None = None,
    strip: bool = False,
    max_pixels: int | None = None,
    device: str = "auto",
    threads: int | None = None,
    **run: Any,
) -> Summary:
    """Decompress every ``.nc`` file under ``src`` to PNG under ``dst`` (same relative paths);
    ``model`` None: the one each file names; ``max_pixels`` None: neuralcodec.decompress's default
    limit; the rest as for :func:`compress_tree`."""
    name = None if model is None else str(model)
    spec = JobSpec("decompress", name, strip=strip, max_pixels=max_pixels, device=device, threads=threads)
    return run_tree(src, dst, spec, **run)


def run_tree(
    src: str | Path,
    dst: str | Path,
    spec: JobSpec,
    *,
    jobs: int | None = None,
    engine: str = "local",
    address: str | None = None,
    force: bool = False,
    progress: bool = False,
) -> Summary:
    """Run ``spec`` over the tree ``src`` into ``dst``: ``jobs`` workers (None: the engine's
    default) of ``engine`` ("local" or "ray"; ``address``: the Ray cluster to join); ``force``
    replaces existing outputs this tree does not own; ``progress`` draws a bar on stderr.
    Writes the summary JSON into ``dst`` and returns it."""
    src_root, dst_root = Path(src), Path(dst)
    if not src_root.is_dir():
        raise TreeUsageError(f"{src_root}: not a folder")
    if dst_root.exists() and not dst_root.is_dir():
        raise TreeUsageError(f"{dst_root}: exists and is not a folder")
    dst_root.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    with locked_tree(dst_root):
        manifest = Manifest(dst_root)
        try:
            job = _Job(src_root, dst_root, spec, manifest, force)
            job.plan()
            if job.todo:
                runner = open_engine(engine, spec, jobs, address)
                job.summary.engine = runner.describe()
                try:
                    job.run(runner.map(job.items()), progress)
                finally:
                    runner.close()
        finally:
            manifest.close()
        job.finish(time.perf_counter() - began)
        job.summary.write_json(dst_root)
    return job.summary


class _Job:
    """One run over one tree: planning, reading, publishing, recording."""

    def __init__(
        self, src_root: Path, dst_root: Path, spec: JobSpec, manifest: Manifest, force: bool
    ) -> None:
        self.src_root, self.dst_root, self.spec, self.manifest = src_root, dst_root, spec, manifest
        self.force, self.settings = force, spec.settings()
        self.summary = Summary(spec.command, str(src_root), str(dst_root), "none needed")
        self.tasks: list[Task] = []
        self.todo: list[Task] = []
        self.owned_before = set(manifest.state.owned)
        self.read_stat: dict[str, tuple[int, int]] = {}
        self.by_name: dict[str, Task] = {}
        self.bar: Progress | None = None

    def fail(self, src: str, kind: str, reason: str) -> None:
        self.summary.failures.append(Failure(src, kind, reason))
        if self.bar is not None:  # while running: a failed file counts as handled
            self.bar.advance()

    def plan(self) -> None:
        self.tasks, clashes = walk(self.src_root, self.dst_root, self.spec.command)
        for clash in clashes:
            self.fail(clash.src, USAGE, f"same output name as {clash.other}; rename one")
        remove_temporaries(self.dst_root, self.tasks)
        state = self.manifest.state
        for task in self.tasks:
            if is_complete(task, state, self.src_root, self.dst_root, self.settings):
                self.summary.done_before += 1
                continue
            out = self.dst_root / task.out
            if out.is_dir():
                self.fail(task.src, USAGE, f"{task.out} is a folder in the output tree")
            elif (out.exists() or out.is_symlink()) and not self.force and task.out not in self.owned_before:
                self.fail(task.src, USAGE, f"{task.out} already exists (use -f to overwrite)")
            else:
                self.todo.append(task)
                self.by_name[task.src] = task
        self.summary.files = len(self.tasks) + len(clashes)

    def items(self) -> Iterator[Item]:
        """Each task's bytes, with the source's (size, mtime) taken before and checked after the read."""
        for task in self.todo:
            path = self.src_root / task.src
            try:
                before = _stat(path)
                data = path.read_bytes()
                if _stat(path) != before or len(data) != before[0]:
                    self.fail(task.src, FAILURE, "changed while being read; run the job again")
                    continue
            except OSError as exc:
                reason = "no such file" if isinstance(exc, FileNotFoundError) else exc.strerror or str(exc)
                self.fail(task.src, BAD_INPUT, f"cannot read ({reason})")
                continue
            self.read_stat[task.src] = before
            yield Item(task.src, data)

    def run(self, outcomes: Iterator[Outcome], show: bool) -> None:
        self.bar = Progress(self.spec.command, len(self.todo), show)
        try:
            for outcome in outcomes:
                task = self.by_name[outcome.name]
                stat = self.read_stat.pop(task.src)
                if outcome.kind == SETUP:
                    raise JobSetupError(outcome.reason)
                if outcome.data is None:
                    self.fail(task.src, outcome.kind, outcome.reason)
                elif self._publish(task, outcome, stat):
                    self.bar.advance(stat[0], len(outcome.data))
                    self.summary.done_now += 1
                    self.summary.bytes_in_now += stat[0]
        finally:
            self.bar.close()
            self.bar = None

    def _publish(self, task: Task, outcome: Outcome, stat: tuple[int, int]) -> bool:
        """Write the output and record it, unless the source changed since it was read."""
        assert outcome.data is not None
        data = outcome.data
        try:
            if _stat(self.src_root / task.src) != stat:
                self.fail(task.src, FAILURE, "changed while being coded; not recorded, run the job again")
                return False
            self.manifest.start(task.src, task.out)
            force = self.force or task.out in self.owned_before
            write_atomic(self.dst_root / task.out, lambda tmp: tmp.write_bytes(data), force=force)
        except OutputExistsError as exc:
            self.fail(task.src, USAGE, str(exc))
            return False
        except OSError as exc:
            self.fail(task.src, FAILURE, f"cannot write {task.out} ({exc.strerror or exc})")
            return False
        digest = hashlib.sha256(data).hexdigest()
        width, height = outcome.width, outcome.height
        record = Done(task.src, task.out, stat[0], stat[1], len(data), digest, width, height, self.settings)
        self.manifest.done(record)
        return True

    def finish(self, seconds: float) -> None:
        """Totals over every complete file of the tree."""
        summary, bpps = self.summary, []
        summary.seconds = seconds
        failed = {f.src for f in summary.failures}
        for task in self.tasks:
            record = self.manifest.state.done.get(task.src)
            if record is None or task.src in failed:
                continue
            summary.bytes_in += record.src_size
            summary.bytes_out += record.out_size
            summary.pixels += record.width * record.height
            coded = record.out_size if self.spec.command == "compress" else record.src_size
            bpps.append(coded * 8 / max(record.width * record.height, 1))
        summary.mean_bpp = sum(bpps) / len(bpps) if bpps else 0.0


def _stat(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns
