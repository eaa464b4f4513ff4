"""The analysis transforms of a mean-scale hyperprior in numpy float32: pixels -> (y, z) without
torch.

g_a (with the gain of the quality's level) and h_a compute what neuralcodec.codec.analyse
computes in float32, tile by tile with the same tiles and halos (neuralcodec.tiling), so
memory beyond the latents stays bounded for any image size. Not bit-exact with torch
(summation orders differ): a latent within float32 rounding of a quantisation boundary may
round the other way, which changes a file's bytes, never whether it decodes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from neuralcodec.container import LATENT_ROW
from neuralcodec.numpy_conv import conv2d
from neuralcodec.numpy_synthesis import _BETA_MIN, Synthesis, _non_negative
from neuralcodec.tiling import run_tiled, tensor_reader

TILE = 1024  # pixels per side of a g_a tile (codec.TILE: a Kodak image is a single tile)
PIXEL_HALO = 64  # context around a g_a tile (codec.PIXEL_HALO)
Y_HALO = 16  # context (in y units) around an h_a tile (codec.Y_HALO_FOR_Z)
G_A_STRIDE, H_A_STRIDE = 16, 4  # pixels per y sample, y samples per z sample
H_A_STRIDES = (1, 2, 2)  # of h_a.0 (3×3), h_a.2 and h_a.4 (5×5); g_a's convolutions all have 2

GDN_BYTES = 8 << 20  # float32 activations a GDN normalises at once (per temporary)

Weights = tuple[np.ndarray, np.ndarray]  # (weight (C_out, C_in, k, k), bias (C_out,)), float32


@dataclass(frozen=True)
class GDN:
    """y = x / sqrt(β + γ · x²) per position (layers.GDN, forward), computed as torch does:
    x times the reciprocal square root."""

    beta: np.ndarray  # (C,) float32, effective
    gamma: np.ndarray  # (C, C) float32, effective

    @classmethod
    def from_stored(cls, beta: np.ndarray, gamma: np.ndarray) -> GDN:
        """From the stored (reparametrised) values, as numpy_synthesis reads its inverse GDNs."""
        return cls(_non_negative(beta, _BETA_MIN), _non_negative(gamma, 0.0))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """GDN of x (1, C, h, w), written over x (when contiguous) a chunk of about GDN_BYTES of
        positions at a time, so that it needs no whole-size temporaries."""
        flat = x.reshape(x.shape[1], -1)
        step = max(1, GDN_BYTES // (4 * flat.shape[0]))
        for first in range(0, flat.shape[1], step):
            part = flat[:, first : first + step]
            norm = self.gamma @ np.square(part)
            norm += self.beta[:, None]
            np.sqrt(norm, out=norm)
            np.divide(np.float32(1.0), norm, out=norm)
            part *= norm
        return flat.reshape(x.shape)


def replicate_reader(rgb: np.ndarray) -> Callable[[int, int, int, int], np.ndarray]:
    """Reader over uint8 pixels (H, W, 3) -> (1, 3, h, w) float32 in [0, 1], padding by edge
    replication (codec._replicate_reader)."""
    height, width = rgb.shape[:2]

    def read(top: int, left: int, h: int, w: int) -> np.ndarray:
        rows = np.clip(np.arange(top, top + h), 0, height - 1)
        cols = np.clip(np.arange(left, left + w), 0, width - 1)
        crop = rgb[rows][:, cols].transpose(2, 0, 1)[None]
        return crop.astype(np.float32) / np.float32(255.0)

    return read


def padded_size(height: int, width: int) -> tuple[int, int]:
    """The image size padded to whole ẑ rows and columns (codec.padded_size)."""
    return -(-height // LATENT_ROW) * LATENT_ROW, -(-width // LATENT_ROW) * LATENT_ROW


@dataclass(frozen=True)
class Analysis:
    """g_a, h_a and the gains of a mean-scale hyperprior weights file, in numpy float32."""

    g_a_convs: list[Weights]  # g_a.0/2/4/6: 5×5, stride 2
    gdns: list[GDN]  # g_a.1/3/5
    h_a_convs: list[Weights]  # h_a.0 (3×3, stride 1), h_a.2/4 (5×5, stride 2)
    log_gain: np.ndarray  # (levels, M) float32
    tile: int = TILE  # pixels per side of a g_a tile; h_a tiles are tile / 16 latents

    @classmethod
    def from_transforms(cls, transforms: dict, tile: int = TILE) -> Analysis:
        """From a weights file's ``transforms`` entry (any dtype ``np.asarray`` takes)."""
        ours = (k for k in transforms if k.startswith(("g_a.", "h_a.")))
        t = {k: np.asarray(transforms[k], dtype=np.float32) for k in ours}
        return cls(
            [(t[f"g_a.{i}.weight"], t[f"g_a.{i}.bias"]) for i in (0, 2, 4, 6)],
            [GDN.from_stored(t[f"g_a.{i}.beta"], t[f"g_a.{i}.gamma"]) for i in (1, 3, 5)],
            [(t[f"h_a.{i}.weight"], t[f"h_a.{i}.bias"]) for i in (0, 2, 4)],
            np.asarray(transforms["log_gain"], dtype=np.float32),
            tile,
        )

    def gain(self, level: float) -> np.ndarray:
        """(M,) float32: the log gains interpolated between the two nearest levels, exactly as
        Synthesis.inverse_gain interpolates the inverse ones (the level rounded to float32
        first, as torch's HyperpriorTransforms.gains receives it)."""
        return Synthesis(deconvs=[], gdns=[], log_inverse_gain=self.log_gain).inverse_gain(np.float32(level))

    def g_a(self, x: np.ndarray) -> np.ndarray:
        """Pixels (1, 3, h, w) in [0, 1] -> y before the gain (1, M, h/16, w/16)."""
        for i, (weight, bias) in enumerate(self.g_a_convs):
            x = conv2d(x, weight, bias, 2, 2)
            if i < len(self.gdns):
                x = self.gdns[i](x)
        return x

    def h_a(self, y: np.ndarray) -> np.ndarray:
        """y (1, M, h, w) -> z (1, N, h/4, w/4)."""
        for i, ((weight, bias), stride) in enumerate(zip(self.h_a_convs, H_A_STRIDES)):
            y = conv2d(y, weight, bias, stride, weight.shape[2] // 2)
            if i < len(self.h_a_convs) - 1:
                y = np.maximum(y, 0, out=y)
        return y

    def __call__(self, rgb: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
        """uint8 pixels (H, W, 3) -> (y, z) float32, (1, M, H'/16, W'/16) and (1, N, H'/64, W'/64)
        with H', W' the padded size, at a real gain level (interface.quality_to_level)."""
        gain = self.gain(level)[None, :, None, None]
        hp, wp = padded_size(*rgb.shape[:2])

        def g_a(crop: np.ndarray) -> np.ndarray:
            return self.g_a(crop) * gain

        tile = (self.tile, self.tile)
        y = run_tiled(g_a, replicate_reader(rgb), (hp, wp), 1, G_A_STRIDE, tile, PIXEL_HALO)
        latent_tile = (self.tile // G_A_STRIDE, self.tile // G_A_STRIDE)
        z = run_tiled(self.h_a, tensor_reader(y), y.shape[2:], 1, H_A_STRIDE, latent_tile, Y_HALO)
        return y, z
