"""What every encoder shares, torch-free: the argument checks, the ``.nc`` file assembled from an
image's coded latents and what travels beside them, and the statistics ``ncodec compress -v``
prints (neuralcodec.coding and neuralcodec.numpy_encoder both write files through here)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from neuralcodec.container import (
    FORMAT_ARCHITECTURE,
    FORMAT_VERSION,
    FORMAT_VERSIONS,
    MAX_BAND_ROWS,
    Container,
    Header,
    SectionType,
    pack,
)
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
    sections: list[bytes],
    band_rows: int = MAX_BAND_ROWS,
    architecture: str = FORMAT_ARCHITECTURE,
    format_version: int = FORMAT_VERSION,
) -> bytes:
    """The ``.nc`` file of an image's coded latents (``sections``: the architecture's payloads)
    and what travels beside them: alpha, ICC profile, EXIF and notes, in the section order
    docs/FORMAT.md requires.

    Format 2 (mean-scale hyperprior only): ``sections[0]`` is the Z section and the rest one Y
    section per band of ``band_rows`` ẑ rows, byte for byte the file every format-2 writer
    makes. Format 3: every payload is a MODEL section and the header names ``architecture``.
    Raises ValueError for anything the container refuses.
    """
    if format_version == 2:
        if not sections:
            raise ValueError("format version 2 needs a Z section")
        coded = [(SectionType.Z, sections[0])] + [(SectionType.Y, band) for band in sections[1:]]
    elif format_version == 3:
        coded = [(SectionType.MODEL, payload) for payload in sections]
    else:
        raise ValueError(f"format version {format_version} is not one of {FORMAT_VERSIONS}")
    if prepared.alpha is not None:
        coded.append((SectionType.ALPHA, pack_alpha(prepared.alpha)))
    if prepared.icc:
        coded.append((SectionType.ICC, prepared.icc))
    if prepared.exif:
        coded.append((SectionType.EXIF, prepared.exif))
    if prepared.notes:
        coded.append((SectionType.NOTE, "\n".join(prepared.notes).encode()))
    height, width = prepared.rgb.shape[:2]
    header = Header(
        model_name,
        model_digest,
        width,
        height,
        prepared.mode,
        quality,
        band_rows,
        architecture=architecture,
        format_version=format_version,
    )
    return pack(Container(header, coded))
