"""Seam-free tiled evaluation of local (convolutional) functions, for bounded memory.

A function whose outputs depend only on inputs within a finite receptive field gives the
same result on a tile cut with enough surrounding context (the halo) as on the whole
image, once the halo's outputs are cropped away. The whole-image result is never
materialised except for the final output, which the caller keeps (CPU memory). At the
image border no halo is taken, so border handling matches the whole-image computation.
Tile and halo are multiples of the function's stride, so strided grids stay aligned.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Reader = Callable[[int, int, int, int], Tensor]  # (top, left, height, width) -> (B, C, h, w)


def run_tiled(
    fn: Callable[[Tensor], Tensor],
    read: Reader,
    size: tuple[int, int],
    up: int,
    down: int,
    tile: tuple[int, int],
    halo: int,
) -> Tensor:
    """Apply ``fn`` over an input of ``size`` (H, W) tile by tile; output is (H, W)·up/down.

    ``fn`` maps a (B, C, h, w) input crop to a (B, C', h·up/down, w·up/down) output on any
    device; the assembled output lives on the CPU with ``fn``'s output dtype.
    """
    height, width = size
    tile_h, tile_w = tile
    for value in (tile_h, tile_w, halo):
        if value % down:
            raise ValueError("tile and halo must be multiples of the stride")
    out: Tensor | None = None
    for top in range(0, height, tile_h):
        for left in range(0, width, tile_w):
            r0, c0 = max(0, top - halo), max(0, left - halo)
            r1, c1 = min(height, top + tile_h + halo), min(width, left + tile_w + halo)
            result = fn(read(r0, c0, r1 - r0, c1 - c0))
            if out is None:
                out = torch.empty(
                    (result.shape[0], result.shape[1], height * up // down, width * up // down),
                    dtype=result.dtype,
                )
            bottom, right = min(height, top + tile_h), min(width, left + tile_w)
            crop = result[
                :,
                :,
                (top - r0) * up // down : (bottom - r0) * up // down,
                (left - c0) * up // down : (right - c0) * up // down,
            ]
            out[:, :, top * up // down : bottom * up // down, left * up // down : right * up // down] = (
                crop.cpu()
            )
    assert out is not None
    return out


def tensor_reader(x: Tensor) -> Reader:
    """Reader over an in-memory (B, C, H, W) tensor."""
    return lambda top, left, h, w: x[:, :, top : top + h, left : left + w]
