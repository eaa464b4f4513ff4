"""Portable training state: fp32 parameters split into files under 16 MiB, no optimizer state.

This is what a remote GPU machine sends back (at most 8 files of 16 MiB each), and
what CPU training (``tools/train.py --init DIR``) and export (``tools/export.py DIR``) resume
from. ``portable.json`` holds the step count, the training history and the run's config.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

MAX_FILE_BYTES = 15 * 2**20  # under the 16 MiB a device run can return per file
MANIFEST = "portable.json"


def is_portable(path: Path) -> bool:
    return Path(path).is_dir() and (Path(path) / MANIFEST).is_file()


def split_state(state: dict[str, torch.Tensor], max_bytes: int = MAX_FILE_BYTES) -> list[dict]:
    """Group tensors (in order) into parts of at most ``max_bytes`` each (a larger tensor alone)."""
    parts: list[dict] = [{}]
    size = 0
    for key, value in state.items():
        nbytes = value.numel() * value.element_size()
        if parts[-1] and size + nbytes > max_bytes:
            parts.append({})
            size = 0
        parts[-1][key] = value
        size += nbytes
    return parts


def save_portable(
    folder: Path, state: dict[str, torch.Tensor], step: int, history: list, run: dict
) -> list[Path]:
    """Write ``state`` (float tensors as fp32) as params-NN.pt files plus the manifest; atomic per file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: (v.detach().float() if v.is_floating_point() else v.detach()).cpu() for k, v in state.items()}
    paths = []
    for i, part in enumerate(split_state(state)):
        path = folder / f"params-{i:02d}.pt"
        torch.save(part, path.with_suffix(".tmp"))
        os.replace(path.with_suffix(".tmp"), path)
        paths.append(path)
    for stale in folder.glob("params-*.pt"):
        if stale not in paths:
            stale.unlink()
    manifest = {"step": step, "history": history, "run": run, "parts": [p.name for p in paths]}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, default=str))
    return [*paths, folder / MANIFEST]


def load_portable(folder: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """The parameters and the manifest (step, history, run) of a portable folder."""
    folder = Path(folder)
    manifest = json.loads((folder / MANIFEST).read_text())
    state: dict[str, torch.Tensor] = {}
    for name in manifest["parts"]:
        state.update(torch.load(folder / name, map_location="cpu", weights_only=True))
    return state, manifest
