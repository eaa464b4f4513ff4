"""The synthesis transform g_s and its inverse gains in numpy float32: ŷ -> uint8 pixels without
torch, tile by tile. Not bit-exact with torch's float32 (summation orders differ), which
nothing requires of pixels: tests hold it within one level per sample of the float32 torch
decoder."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuralcodec.numpy_conv import conv_transpose2d
from neuralcodec.tiling import run_tiled, tensor_reader

STRIDE, PADDING, OUTPUT_PADDING = 2, 2, 1  # models.hyperprior.deconv with kernel 5, stride 2
_REPARAM_OFFSET = 2.0**-18  # layers.GDN's parametrisation
_PEDESTAL = _REPARAM_OFFSET**2
_BETA_MIN = 1e-6
# g_s runs tile by tile: TILE latents (16·TILE pixels) a side plus HALO latents of context.
# Four deconvolutions (kernel 5, stride 2, padding 2) make pixel p depend on ŷ within
# p/16 ± (1 + 1/2 + 1/4 + 1/8): two latents of halo give the whole-image result. 64 latents
# hold a 1024 × 1024 tile's activations in about 0.7 GB (a Kodak image is one tile).
TILE = 64
HALO = 2
GDN_BLOCK_BYTES = 8 << 20  # positions per block of the inverse GDN


def _non_negative(stored: np.ndarray, minimum: float) -> np.ndarray:
    """layers._NonNegative: max(x, bound)² − pedestal, in float32."""
    bound = np.float32((minimum + _PEDESTAL) ** 0.5)
    return np.square(np.maximum(stored, bound)) - np.float32(_PEDESTAL)


@dataclass(frozen=True)
class InverseGDN:
    """y = x · sqrt(β + γ · x²) per position (the 1×1 convolution of x² with γ)."""

    beta: np.ndarray  # (C,) float32, effective
    gamma: np.ndarray  # (C, C) float32, effective

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """In place on ``x`` (1, C, h, w), float32 and contiguous, which it returns; a block of
        positions at a time, so its temporaries stay small."""
        flat = x.reshape(x.shape[1], -1)
        step = max(1, GDN_BLOCK_BYTES // (flat.shape[0] * flat.itemsize))
        for start in range(0, flat.shape[1], step):
            block = flat[:, start : start + step]
            norm = self.gamma @ np.square(block)
            norm += self.beta[:, None]
            np.sqrt(norm, out=norm)
            block *= norm
        return x


@dataclass(frozen=True)
class Synthesis:
    """g_s of a mean-scale hyperprior weights file, with the inverse gains of its levels."""

    deconvs: list[tuple[np.ndarray, np.ndarray]]  # (weight (C_in, C_out, 5, 5), bias), float32
    gdns: list[InverseGDN]
    log_inverse_gain: np.ndarray  # (levels, M) float32

    @classmethod
    def from_transforms(cls, transforms: dict) -> Synthesis:
        """From a weights file's ``transforms`` entry (numpy arrays or anything ``np.asarray``
        takes): g_s.0/2/4/6 deconvolutions, g_s.1/3/5 inverse GDNs."""
        t = {
            k: np.asarray(v, dtype=np.float32)
            for k, v in transforms.items()
            if k.startswith("g_s.") or k == "log_inverse_gain"
        }
        deconvs = [(t[f"g_s.{i}.weight"], t[f"g_s.{i}.bias"]) for i in (0, 2, 4, 6)]
        gdns = [
            InverseGDN(_non_negative(t[f"g_s.{i}.beta"], _BETA_MIN), _non_negative(t[f"g_s.{i}.gamma"], 0.0))
            for i in (1, 3, 5)
        ]
        return cls(deconvs, gdns, t["log_inverse_gain"])

    def inverse_gain(self, level: float) -> np.ndarray:
        """(M,) float32: log-linear interpolation between the two nearest levels."""
        levels = self.log_inverse_gain.shape[0]
        level = min(max(float(level), 0.0), levels - 1.0)
        lower = min(int(np.floor(level)), levels - 2)
        frac = np.float32(level - lower)
        a, b = self.log_inverse_gain[lower], self.log_inverse_gain[lower + 1]
        return np.exp(a + frac * (b - a)).astype(np.float32)

    def pixels(self, y_hat: np.ndarray, inverse_gain: np.ndarray) -> np.ndarray:
        """ŷ (1, M, h, w) of one tile -> uint8 (1, 3, 16h, 16w)."""
        x = (y_hat * inverse_gain[None, :, None, None]).astype(np.float32)
        for i, (weight, bias) in enumerate(self.deconvs):
            x = conv_transpose2d(x, weight, bias, STRIDE, PADDING, OUTPUT_PADDING)
            if i < len(self.gdns):
                x = self.gdns[i](x)
        return np.rint(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)

    def __call__(self, y_hat: np.ndarray, level: float, height: int, width: int) -> np.ndarray:
        """ŷ (1, M, h, w) -> uint8 RGB (height, width, 3), a view cropped from the padded size
        (its rows are contiguous); tile by tile (TILE, HALO), so memory beyond ŷ and the pixels
        stays bounded at any size."""
        inverse_gain = self.inverse_gain(level)
        size = (y_hat.shape[2], y_hat.shape[3])
        out = run_tiled(
            lambda tile: self.pixels(tile, inverse_gain),
            tensor_reader(y_hat),
            size,
            16,
            1,
            (TILE, TILE),
            HALO,
            channels_last=True,
        )
        return out[0, :height, :width]
