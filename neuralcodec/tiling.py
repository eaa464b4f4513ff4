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
from typing import Any

import numpy as np

# A torch.Tensor or a numpy array, (B, C, h, w); tiling itself imports no torch.
Array = Any
Reader = Callable[[int, int, int, int], Array]  # (top, left, height, width) -> (B, C, h, w)


def _host_empty(like: Array, shape: tuple[int, ...]) -> Array:
    """An uninitialised host (CPU) array of ``like``'s kind and dtype."""
    if isinstance(like, np.ndarray):
        return np.empty(shape, dtype=like.dtype)
    return like.new_empty(shape, device="cpu")


def _to_host(x: Array) -> Array:
    return x if isinstance(x, np.ndarray) else x.cpu()


def _channels_last(x: Array) -> Array:
    return x.transpose(0, 2, 3, 1) if isinstance(x, np.ndarray) else x.permute(0, 2, 3, 1)


def run_tiled(
    fn: Callable[[Array], Array],
    read: Reader,
    size: tuple[int, int],
    up: int,
    down: int,
    tile: tuple[int, int],
    halo: int,
    channels_last: bool = False,
) -> Array:
    """Apply ``fn`` over an input of ``size`` (H, W) tile by tile; output is (H, W)·up/down.

    ``fn`` maps a (B, C, h, w) input crop to a (B, C', h·up/down, w·up/down) output: a torch
    tensor on any device, or a numpy array; the assembled output is of the same kind, on the
    CPU, with ``fn``'s output dtype, (B, C', H', W'), or (B, H', W', C') with
    ``channels_last`` (each tile transposed as it is written: no second whole-size copy).
    """
    height, width = size
    tile_h, tile_w = tile
    for value in (tile_h, tile_w, halo):
        if value % down:
            raise ValueError("tile and halo must be multiples of the stride")
    out: Array | None = None
    for top in range(0, height, tile_h):
        for left in range(0, width, tile_w):
            r0, c0 = max(0, top - halo), max(0, left - halo)
            r1, c1 = min(height, top + tile_h + halo), min(width, left + tile_w + halo)
            result = fn(read(r0, c0, r1 - r0, c1 - c0))
            if out is None:
                shape = (result.shape[0], result.shape[1], height * up // down, width * up // down)
                out = _host_empty(result, (shape[0], *shape[2:], shape[1]) if channels_last else shape)
            bottom, right = min(height, top + tile_h), min(width, left + tile_w)
            crop = result[
                :,
                :,
                (top - r0) * up // down : (bottom - r0) * up // down,
                (left - c0) * up // down : (right - c0) * up // down,
            ]
            rows = slice(top * up // down, bottom * up // down)
            cols = slice(left * up // down, right * up // down)
            if channels_last:
                out[:, rows, cols] = _channels_last(_to_host(crop))
            else:
                out[:, :, rows, cols] = _to_host(crop)
    assert out is not None
    return out


def tensor_reader(x: Array) -> Reader:
    """Reader over an in-memory (B, C, H, W) tensor or array."""
    return lambda top, left, h, w: x[:, :, top : top + h, left : left + w]
