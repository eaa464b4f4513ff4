"""Progress bar and end-of-job summary (also written as JSON beside the manifest)."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from neuralcodec.bulk.worker import BAD_INPUT, FAILURE, SETUP, USAGE
from neuralcodec.fileio import write_atomic

SUMMARY_NAME = ".ncodec-summary.json"
# The ncodec CLI's exit codes per failure kind (the worst one decides).
EXIT_CODES = {USAGE: 1, BAD_INPUT: 2, FAILURE: 3, SETUP: 2}


@dataclass(frozen=True)
class Failure:
    """A source that was not done, and why (one line)."""

    src: str
    kind: str
    reason: str


@dataclass
class Summary:
    """What a tree job did. Bytes, ratio and bpp cover every complete file of the tree (done now
    or before); ``files_per_s`` and ``mb_in_per_s`` this run's work only."""

    command: str
    source: str
    output: str
    engine: str
    files: int = 0
    done_now: int = 0
    done_before: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    pixels: int = 0
    mean_bpp: float = 0.0
    seconds: float = 0.0
    bytes_in_now: int = 0
    failures: list[Failure] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.bytes_in / self.bytes_out if self.bytes_out else 0.0

    @property
    def exit_code(self) -> int:
        return max((EXIT_CODES[f.kind] for f in self.failures), default=0)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(ratio=self.ratio, exit_code=self.exit_code)
        data["files_per_s"] = self.done_now / self.seconds if self.seconds else 0.0
        data["mb_in_per_s"] = self.bytes_in_now / 1e6 / self.seconds if self.seconds else 0.0
        return data

    def lines(self) -> list[str]:
        """The summary as printed: counts, sizes, then one line per failure."""
        rate = self.as_dict()
        out = [
            f"{self.command}: {self.files} files in {self.source}: {self.done_now} done now, "
            f"{self.done_before} done before, {len(self.failures)} failed ({self.engine}, "
            f"{self.seconds:.1f} s, {rate['files_per_s']:.2f} files/s)",
            f"{self.bytes_in / 1e6:.2f} MB in, {self.bytes_out / 1e6:.2f} MB out, ratio {self.ratio:.2f}, "
            f"mean {self.mean_bpp:.4f} bpp",
        ]
        return out + [f"{f.src}: {f.reason}" for f in self.failures]

    def write_json(self, folder: Path) -> Path:
        path = folder / SUMMARY_NAME
        text = json.dumps(self.as_dict(), indent=2) + "\n"
        write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), force=True)
        return path


class Progress:
    """A one-line stderr progress bar: files, files/s, MB in and out, ETA (at most 5 redraws/s)."""

    def __init__(self, label: str, total: int, enabled: bool, stream: TextIO | None = None) -> None:
        self.label, self.total, self.enabled = label, total, enabled and total > 0
        self.stream = stream or sys.stderr
        self.count = self.bytes_in = self.bytes_out = 0
        self.start = self._drawn = time.monotonic()

    def advance(self, bytes_in: int = 0, bytes_out: int = 0) -> None:
        self.count += 1
        self.bytes_in += bytes_in
        self.bytes_out += bytes_out
        if self.enabled and (time.monotonic() - self._drawn >= 0.2 or self.count == self.total):
            self._draw()

    def _draw(self) -> None:
        self._drawn = time.monotonic()
        elapsed = max(self._drawn - self.start, 1e-9)
        rate = self.count / elapsed
        eta = (self.total - self.count) / rate if rate else 0
        filled = 24 * self.count // self.total
        self.stream.write(
            f"\r{self.label} [{'#' * filled}{'.' * (24 - filled)}] {self.count}/{self.total} "
            f"{rate:.2f} files/s, {self.bytes_in / 1e6:.1f} MB in, {self.bytes_out / 1e6:.1f} MB out, "
            f"ETA {int(eta) // 60}:{int(eta) % 60:02d} "
        )
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.count:
            self.stream.write("\n")
            self.stream.flush()
