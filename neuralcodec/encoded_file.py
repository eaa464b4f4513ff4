"""What every encoder shares, torch-free: the argument checks, the ``.nc`` file assembled from an
image's coded latents and what travels beside them, and the statistics ``ncodec compress -v``
prints (neuralcodec.coding and neuralcodec.numpy_encoder both write files through here)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from neuralcodec.container import MAX_BAND_ROWS, Container, Header, SectionType, pack
from neuralcodec.effort_levels import MAX_EFFORT
from neuralcodec.image_modes import PreparedImage, pack_alpha

DEFAULT_QUALITY = 75.0
ImageSource = Image.Image | str | Path | np.ndarray


@dataclass
class CompressStats:
    """What ``ncodec compress -v`` reports."""

    width: int
    height: int
    file_bytes: int
    estimated_bits: float
    actual_bits: int
    notes: list[str]

    @property
    def bpp(self) -> float:
        return self.file_bytes * 8 / (self.width * self.height)


def check_quality(quality: float) -> float:
    """Quality as a float; ValueError outside 0..100."""
    q = float(quality)
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"quality must be within 0..100, got {quality}")
    return q


def check_effort(effort: int | None) -> int | None:
    """Effort must be an integer 0..MAX_EFFORT (0: single-pass encoder), or None: the image's
    default (coding.default_effort)."""
    if effort is None:
        return None
    if isinstance(effort, bool) or not isinstance(effort, (int, np.integer)):
        raise ValueError(f"effort must be an integer 0..{MAX_EFFORT}, got {effort!r}")
    if not 0 <= effort <= MAX_EFFORT:
        raise ValueError(f"effort must be within 0..{MAX_EFFORT}, got {effort}")
    return int(effort)


def encoded_file(
    prepared: PreparedImage,
    model_name: str,
    model_digest: bytes,
    quality: float,
    z: bytes,
    y: list[bytes],
    band_rows: int = MAX_BAND_ROWS,
) -> bytes:
    """The ``.nc`` file of an image's coded latents (``z``, one ``y`` per band of ``band_rows``
    ẑ rows) and what travels beside them: alpha, ICC profile, EXIF and notes, in the section
    order docs/FORMAT.md requires."""
    sections = [(SectionType.Z, z)] + [(SectionType.Y, band) for band in y]
    if prepared.alpha is not None:
        sections.append((SectionType.ALPHA, pack_alpha(prepared.alpha)))
    if prepared.icc:
        sections.append((SectionType.ICC, prepared.icc))
    if prepared.exif:
        sections.append((SectionType.EXIF, prepared.exif))
    if prepared.notes:
        sections.append((SectionType.NOTE, "\n".join(prepared.notes).encode()))
    height, width = prepared.rgb.shape[:2]
    header = Header(model_name, model_digest, width, height, prepared.mode, quality, band_rows)
    return pack(Container(header, sections))
