"""Shared by tests/test_bulk_*.py: small generated trees and how to read a job's results."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from neuralcodec.bulk import MANIFEST_NAME, SUMMARY_NAME


def make_tree(
    root: Path, make_image, count: int, folders: int = 4, size: tuple[int, int] = (48, 64), vary: bool = False
) -> list[str]:
    """``count`` PNGs spread over nested folders (``vary``: each of its own size, so that even the
    tiny model's files differ); their relative paths, sorted."""
    names = []
    for i in range(count):
        rel = f"f{i % folders}/sub{i % 2}/img{i:03d}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        height, width = (size[0] + 8 * i, size[1] + 4 * i) if vary else size
        Image.fromarray(make_image(height, width, seed=i)).save(root / rel)
        names.append(rel)
    return sorted(names)


def done_records(dst: Path) -> dict[str, dict]:
    """The manifest's last ``done`` record per source (cut-short lines skipped)."""
    records: dict[str, dict] = {}
    path = dst / MANIFEST_NAME
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record["event"] == "done":
            records[record["src"]] = record
        else:
            records.pop(record["src"], None)
    return records


def summary(dst: Path) -> dict:
    return json.loads((dst / SUMMARY_NAME).read_text())


def temporaries(dst: Path) -> list[Path]:
    """Leftovers of interrupted writes (fileio's ``.NAME.XXXXXXXX.tmp.EXT``)."""
    return [p for p in dst.rglob(".*.tmp*") if p.is_file()]
