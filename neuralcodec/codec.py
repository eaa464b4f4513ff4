"""Latent-level encoder and decoder: RGB pixels <-> (z stream, y streams per band).

The conv transforms run on the chosen device, in bf16 + channels_last where that is fast
(CUDA, CPUs with AMX or AVX512-BF16; ``NEURALCODEC_TRANSFORMS`` forces either precision),
tile by tile with enough context that tiling changes nothing (neuralcodec.tiling). The
hyper-synthesis that sets the coder's probabilities runs in exact integer arithmetic on the
CPU (neuralcodec.exact), band by band, so a stream decodes identically everywhere and memory
stays bounded for very large images.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from neuralcodec import entropy_decoder, quantisation
from neuralcodec.container import MAX_BAND_ROWS
from neuralcodec.entropy_models import encode_groups, gaussian_bits, table_bits
from neuralcodec.errors import DeviceUnavailableError
from neuralcodec.latent_codec import band_rows_for
from neuralcodec.models import interface
from neuralcodec.models.hyperprior import STRIDE
from neuralcodec.models.loaded import LoadedModel
from neuralcodec.runtime import requested_precision
from neuralcodec.tiling import Reader, run_tiled, tensor_reader

TILE = 1024  # pixels per side of a transform tile (a Kodak image is a single tile)
PIXEL_HALO = 64  # context around a g_a tile; covers g_a's 61-pixel receptive field
LATENT_HALO = 4  # context (in y units) around a g_s tile
Y_HALO_FOR_Z = 16  # context (in y units) around an h_a tile
BAND_ROWS = MAX_BAND_ROWS  # z rows per entropy-coding band (1024 pixels)


@dataclass
class LatentStreams:
    """The entropy-coded streams of one image, plus the model's own rate estimate."""

    z: bytes
    y: list[bytes] = field(default_factory=list)  # one stream per band of band_rows z rows
    band_rows: int = BAND_ROWS
    estimated_bits: float = 0.0  # continuous-scale likelihood of the coded symbols
    table_bits: float = 0.0  # what the integer tables allow
    y_hat: Tensor | None = None  # the ŷ a decoder will rebuild, bit for bit (when asked for)

    @property
    def sections(self) -> list[bytes]:
        """The sections in file order (neuralcodec.latent_codec): z, then y per band."""
        return [self.z, *self.y]

    @property
    def actual_bits(self) -> int:
        return 8 * (len(self.z) + sum(len(b) for b in self.y))


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceUnavailableError("CUDA was requested (--device cuda) but no CUDA device is available")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise DeviceUnavailableError(f"unknown device {device!r}; use auto, cpu or cuda") from None
    # A device torch can name but not use fails later, deep inside a transform: refuse it here.
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise DeviceUnavailableError(
            f"device {device!r} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)"
        )
    backend = {"mps": getattr(torch.backends, "mps", None), "xpu": getattr(torch, "xpu", None)}
    if resolved.type in backend and not (backend[resolved.type] and backend[resolved.type].is_available()):
        raise DeviceUnavailableError(f"device {device!r} is not available on this machine; use cpu")
    return resolved


def quality_to_level(model: LoadedModel, quality: float) -> float:
    """Map quality 0..100 linearly onto the model's gain levels 0..levels-1."""
    return interface.quality_to_level(quality, model.config.levels)


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """True on CPUs with bf16 matrix hardware (AMX or AVX512-BF16) that oneDNN uses.

    Elsewhere (e.g. AVX2-only CPUs) bf16 convolutions are emulated and several times slower
    than float32.
    """
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def transforms_precision(device: torch.device) -> str:
    """``"bf16"`` or ``"float32"``: what the conv transforms run in on ``device``.

    ``NEURALCODEC_TRANSFORMS=bf16|float32`` forces it; ``auto`` (the default) picks bf16 where it
    pays off (CUDA, CPUs with bf16 hardware) and float32 elsewhere. Either way the entropy
    coder's probabilities are exact integer arithmetic: the precision moves decoded pixels by
    a level or so, never the latents a file decodes to.
    """
    choice = requested_precision()
    if choice != "auto":
        return choice
    fast = device.type == "cuda" or (device.type == "cpu" and cpu_has_fast_bf16())
    return "bf16" if fast else "float32"


def fast_math(device: torch.device):
    """The context the conv transforms run in: bf16 autocast or plain float32
    (:func:`transforms_precision`)."""
    if transforms_precision(device) == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def padded_size(height: int, width: int) -> tuple[int, int]:
    return -(-height // STRIDE) * STRIDE, -(-width // STRIDE) * STRIDE


def _replicate_reader(x: Tensor | np.ndarray) -> Reader:
    """Reader over (B, 3, H, W) floats or (B, H, W, 3) uint8, padding by edge replication."""
    is_array = isinstance(x, np.ndarray)
    height, width = (x.shape[1], x.shape[2]) if is_array else (x.shape[2], x.shape[3])

    def read(top: int, left: int, h: int, w: int) -> Tensor:
        rows = np.clip(np.arange(top, top + h), 0, height - 1)
        cols = np.clip(np.arange(left, left + w), 0, width - 1)
        if is_array:
            crop = torch.from_numpy(np.ascontiguousarray(x[:, rows][:, :, cols]))
            return crop.permute(0, 3, 1, 2).float().div_(255.0)
        return x[:, :, torch.from_numpy(rows).to(x.device)][
            :, :, :, torch.from_numpy(cols).to(x.device)
        ].float()

    return read


def _z_index(model: LoadedModel, rows: int, cols: int) -> np.ndarray:
    return quantisation.z_index(model.config.N, rows, cols)


def z_offsets(model: LoadedModel) -> Tensor:
    """The model's per-channel ẑ offsets as a (1, N, 1, 1) float64 tensor (exact dyadic)."""
    return torch.from_numpy(model.z_offsets).view(1, -1, 1, 1)


def z_symbols(model: LoadedModel, z: Tensor) -> np.ndarray:
    """The z symbols the coder writes for z (1, N, rows, cols): round(z − offset), clamped into
    the z tables, flattened in (channel, row, column) order."""
    return quantisation.z_symbols(z.double().numpy(), model.z_offsets, model.z_tables)


def z_values(model: LoadedModel, symbols: np.ndarray, rows: int, cols: int) -> Tensor:
    """ẑ = symbol + offset of its channel: (1, N, rows, cols) float64, exact dyadic numbers."""
    return torch.from_numpy(entropy_decoder.z_values(model.z_offsets, symbols, rows, cols))


@torch.inference_mode()
def analyse(
    model: LoadedModel, x: Tensor | np.ndarray, quality: float, device="auto"
) -> tuple[Tensor, Tensor]:
    """Pixels -> (y, z) on the CPU in float32: (B, M, H'/16, W'/16), (B, N, H'/64, W'/64)."""
    device = resolve_device(device)
    t = model.transforms_on(device)
    batch = x.shape[0]
    height, width = (x.shape[1], x.shape[2]) if isinstance(x, np.ndarray) else (x.shape[2], x.shape[3])
    gain, _ = t.gains(torch.full((batch,), quality_to_level(model, quality), device=device))

    def g_a(crop: Tensor) -> Tensor:
        with fast_math(device):
            crop = crop.to(device).contiguous(memory_format=torch.channels_last)
            return t.g_a(crop).float() * gain

    def h_a(crop: Tensor) -> Tensor:
        with fast_math(device):
            return t.h_a(crop.to(device).contiguous(memory_format=torch.channels_last)).float()

    hp, wp = padded_size(height, width)
    y = run_tiled(g_a, _replicate_reader(x), (hp, wp), 1, 16, (TILE, TILE), PIXEL_HALO)
    z = run_tiled(h_a, tensor_reader(y), (hp // 16, wp // 16), 1, 4, (TILE // 16, TILE // 16), Y_HALO_FOR_Z)
    return y, z


def encode_latents(
    model: LoadedModel, y: Tensor, z: Tensor, band_rows: int | None = None, keep_y_hat: bool = False
) -> LatentStreams:
    """Entropy-code one image's latents (y: (1, M, h, w), z: (1, N, h/4, w/4)).

    ``band_rows`` None: latent_codec.band_rows_for the image's width. With ``keep_y_hat`` the
    streams also carry the coded ŷ, computed exactly as :func:`decode_latents` computes it, so
    the two are bit-identical.
    """
    rows, cols = z.shape[2:]
    band_rows = band_rows or band_rows_for(16 * y.shape[3], y.shape[1])
    z_index = _z_index(model, rows, cols)
    z_sym = z_symbols(model, z)
    z_hat = z_values(model, z_sym, rows, cols)
    z_bits = table_bits(z_sym, z_index, model.z_tables)
    streams = LatentStreams(
        z=encode_groups(z_sym, z_index, model.z_tables),
        band_rows=band_rows,
        estimated_bits=z_bits,
        table_bits=z_bits,
    )
    if keep_y_hat:
        streams.y_hat = torch.empty(y.shape, dtype=torch.float32)
    # the torch exact hyper-synthesis: it keeps its last result for refinement's final scoring
    bands = entropy_decoder.quantised_bands(
        model.hyper_synthesis, z_hat, y, band_rows, model.scale_table, model.y_tables
    )
    for band in bands:
        streams.y.append(encode_groups(band.symbols, band.index, model.y_tables))
        streams.estimated_bits += gaussian_bits(band.symbols, band.scales.ravel())
        streams.table_bits += table_bits(band.symbols, band.index, model.y_tables)
        if streams.y_hat is not None:
            y_hat = quantisation.dequantize(band.symbols, band.means)
            streams.y_hat[:, :, 4 * band.r0 : 4 * band.r1] = torch.from_numpy(y_hat)
    return streams


def encode_batch(
    model: LoadedModel, x: Tensor | np.ndarray, quality: float, device="auto"
) -> list[LatentStreams]:
    """Single-pass encode of same-sized images: floats (B, 3, H, W) in [0, 1] or uint8
    (B, H, W, 3). (Encoding at an effort is the architecture's ``encode``:
    neuralcodec.models.mean_scale.)"""
    y, z = analyse(model, x, quality, device)
    return encode_latents_batch(model, y, z)


def encode_latents_batch(model: LoadedModel, y: Tensor, z: Tensor) -> list[LatentStreams]:
    """Entropy-code each image of a batch of latents (B, M, ...), (B, N, ...)."""
    return [encode_latents(model, y[i : i + 1], z[i : i + 1]) for i in range(y.shape[0])]


def decode_latents(
    model: LoadedModel, z: bytes, y: list[bytes], height: int, width: int, band_rows: int = BAND_ROWS
) -> Tensor:
    """Entropy-decode one image's streams into ŷ (1, M, H'/16, W'/16), float32, CPU
    (entropy_decoder.decode_latents: numpy, the same bits on every machine)."""
    params = model.entropy_parameters
    return torch.from_numpy(entropy_decoder.decode_latents(params, z, y, height, width, band_rows))


@torch.inference_mode()
def synthesize(
    model: LoadedModel, y_hat: Tensor, quality: float, height: int, width: int, device="auto"
) -> Tensor:
    """ŷ (B, M, h, w) -> uint8 RGB (B, 3, height, width) on the CPU."""
    device = resolve_device(device)
    t = model.transforms_on(device)
    _, inverse_gain = t.gains(torch.full((y_hat.shape[0],), quality_to_level(model, quality), device=device))

    def g_s(crop: Tensor) -> Tensor:
        with fast_math(device):
            crop = (crop.to(device) * inverse_gain).contiguous(memory_format=torch.channels_last)
            return t.g_s(crop).float().clamp_(0, 1).mul_(255).round_().to(torch.uint8)

    size = (y_hat.shape[2], y_hat.shape[3])
    out = run_tiled(g_s, tensor_reader(y_hat), size, 16, 1, (TILE // 16, TILE // 16), LATENT_HALO)
    return out[:, :, :height, :width]


def decode_batch(
    model: LoadedModel,
    streams: list[LatentStreams],
    quality: float,
    height: int,
    width: int,
    device="auto",
    band_rows: int = BAND_ROWS,
) -> Tensor:
    """Decode same-sized images' streams (anything with the ``sections`` the model's latent
    codec writes) into a uint8 batch (B, 3, H, W)."""
    coder = model.latent_codec
    y_hat = torch.cat([torch.from_numpy(coder.decode(s.sections, height, width, band_rows)) for s in streams])
    return synthesize(model, y_hat, quality, height, width, device)
