"""Decode ``.nc`` files with numpy, Pillow and constriction only: no torch is imported.

The latents are decoded exactly as the torch decoder decodes them, bit for bit, by the latent
codec of the file's architecture (neuralcodec.latent_codecs: the same numpy code); the
synthesis runs in numpy float32 (neuralcodec.numpy_synthesis), within one level per sample of
the float32 torch decoder's pixels, tile by tile. Files name their decoder (model name and
digest), found as the torch decoder finds it (weights_file.decoder_for): the weights file given
as ``model``, the shipped model when the digest matches, or an archived decoder on the weights
search path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from neuralcodec.container import DEFAULT_MAX_PIXELS, Header, check_pixel_limit, unpack
from neuralcodec.entropy_decoder import EntropyParameters
from neuralcodec.entropy_models import TableSet
from neuralcodec.errors import InvalidModelError
from neuralcodec.exact_numpy import HyperSynthesis
from neuralcodec.image_modes import DecodedPixels, decoded_pixels
from neuralcodec.latent_codec import LatentCodec
from neuralcodec.latent_codecs import file_latents, latent_codecs
from neuralcodec.models.interface import DEFAULT_ARCHITECTURE, quality_to_level
from neuralcodec.models.mean_scale import z_offsets
from neuralcodec.numpy_synthesis import Synthesis
from neuralcodec.weights_file import (
    READABLE_WEIGHTS_FORMATS,
    also_decodes,
    decoder_digest,
    decoder_for,
    load_reporting,
    read_weights,
    resolve_model_path,
)


@dataclass(frozen=True)
class NumpyModel:
    """What decoding needs from a weights file, as numpy arrays: the latent codecs of the file
    architectures it decodes (neuralcodec.latent_codecs) and the synthesis transform."""

    name: str
    digest: bytes
    levels: int
    entropy: EntropyParameters
    synthesis: Synthesis
    architecture: str = DEFAULT_ARCHITECTURE
    latent_codecs: dict[str, LatentCodec] = field(default_factory=dict)
    also_decodes: tuple[bytes, ...] = ()  # other decoders whose files it decodes (weights_file)

    @property
    def latent_codec(self) -> LatentCodec:
        """The codec of the files this model writes."""
        return self.latent_codecs[self.architecture]

    @classmethod
    def from_file(cls, path: Path) -> NumpyModel:
        data = path.read_bytes()
        return cls.from_state(read_weights_file(path, data), path, data)

    @classmethod
    def from_state(cls, state: dict, path: Path, data: bytes) -> NumpyModel:
        """From the contents of the weights file at ``path`` (``data``: its bytes)."""
        if state.get("format") not in READABLE_WEIGHTS_FORMATS:
            raise InvalidModelError(f"{path} is not a neuralcodec weights file of a format this build reads")
        architecture = state.get("architecture", DEFAULT_ARCHITECTURE)
        config = state["config"]
        tables = TableSet.from_dict(state["z_tables"])
        offsets, offset_bits = z_offsets(state, tables, int(config["N"]), str(path))
        entropy = EntropyParameters(
            int(config["M"]),
            tables,
            TableSet.from_dict(state["y_tables"]),
            np.asarray(state["scale_table"], dtype=np.float64),
            offsets,
            HyperSynthesis.from_state(state["h_s_exact"], offset_bits),
        )
        synthesis = Synthesis.from_transforms(state["transforms"])
        try:
            codecs = latent_codecs(architecture, entropy, state)
        except InvalidModelError as exc:
            raise InvalidModelError(f"{path}: {exc}") from None
        digest = decoder_digest(state, path, data)
        also = also_decodes(state, path)
        return cls(
            state["name"], digest, int(config["levels"]), entropy, synthesis, architecture, codecs, also
        )


def read_weights_file(path: Path, data: bytes) -> dict:
    """read_weights of ``data``, the bytes of ``path``, its errors naming the file."""
    try:
        return read_weights(data)
    except InvalidModelError as exc:
        raise InvalidModelError(f"{path}: {exc}") from None


@lru_cache(maxsize=8)
def load(path: Path) -> NumpyModel:
    """The model in a weights file (loaded once per process)."""
    return NumpyModel.from_file(path)


def _load_named(model: str | Path) -> NumpyModel:
    return load_reporting(load, resolve_model_path(model).resolve())


def model_for(header: Header, model: str | Path | None = None) -> NumpyModel:
    """The model a stream needs, as neuralcodec.coding.model_for finds it (the weights ``model``
    names, else the shipped or archived decoder the header names), or a clear error."""
    return decoder_for(header.model_name, header.model_digest, model, _load_named)


def decompress(
    data: bytes,
    model: str | Path | None = None,
    strip: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> Image.Image:
    """Decode ``.nc`` bytes to a PIL image (mode RGB, L, RGBA or LA as recorded), as
    neuralcodec.decompress does, without torch."""
    return decompress_pixels(data, model, strip, max_pixels).image()


def decompress_pixels(
    data: bytes,
    model: str | Path | None = None,
    strip: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> DecodedPixels:
    """:func:`decompress`'s pixels before they become a PIL image (image_modes.DecodedPixels)."""
    container = unpack(bytes(data))
    h = container.header
    check_pixel_limit(h.width, h.height, max_pixels)
    loaded = model_for(h, model)
    y_hat = file_latents(loaded, container)
    rgb = loaded.synthesis(y_hat, quality_to_level(h.quality, loaded.levels), h.height, h.width)
    return decoded_pixels(container, rgb, strip)
