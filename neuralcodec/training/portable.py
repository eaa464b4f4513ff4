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


def stored_tensor(value: torch.Tensor, half: bool) -> torch.Tensor:
    """fp32 on the CPU; with ``half`` convolution kernels (4-D) as fp16, the precision an exported
    weights file gives them, at half the bytes: every gain, bias and entropy-model tensor stays fp32."""
    value = value.detach()
    if not value.is_floating_point():
        return value.cpu()
    return value.to("cpu", torch.float16 if half and value.dim() == 4 else torch.float32)


def save_portable(
    folder: Path, state: dict[str, torch.Tensor], step: int, history: list, run: dict, half: bool = False
) -> list[Path]:
    """Write ``state`` (float tensors as fp32; with ``half`` the convolution kernels as fp16) as
    params-NN.pt files plus the manifest; atomic per file. Loading casts back to the model's dtype."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: stored_tensor(v, half) for k, v in state.items()}
    paths = []
    for i, part in enumerate(split_state(state)):
        path = folder / f"params-{i:02d}.pt"
        torch.save(part, path.with_suffix(".tmp"))
        os.replace(path.with_suffix(".tmp"), path)
        paths.append(path)
    for stale in folder.glob("params-*.pt"):
        if stale not in paths:
            stale.unlink()
    manifest = {
        "step": step,
        "history": history,
        "run": run,
        "parts": [p.name for p in paths],
        "kernels": "fp16" if half else "fp32",
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, default=str))
    return [*paths, folder / MANIFEST]


def load_portable(folder: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """The parameters and the manifest (step, history, run) of a portable folder."""
    folder = Path(folder)
    manifest = json.loads((folder / MANIFEST).read_text())
    state: dict[str, torch.Tensor] = {}
    for name in manifest["parts"]:
        part = torch.load(folder / name, map_location="cpu", weights_only=True)
        state.update({k: v.float() if v.is_floating_point() else v for k, v in part.items()})
    return state, manifest
