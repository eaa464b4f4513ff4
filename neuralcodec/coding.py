"""One image <-> one ``.nc`` file at a given quality and effort: the model a file needs, its
sections and header, the decoded image in the recorded mode. neuralcodec.api is the public
face of this module; neuralcodec.encoding adds rate control's targets and, where torch is
missing, the numpy encoder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image

from neuralcodec import codec, refine
from neuralcodec.container import (
    DEFAULT_MAX_PIXELS,
    ColorMode,
    Header,
    check_pixel_limit,
    unpack,
)
from neuralcodec.effort_levels import DEFAULT_EFFORT, DEFAULT_EFFORTS
from neuralcodec.encoded_file import (
    DEFAULT_QUALITY,
    CompressStats,
    ImageSource,
    check_effort,
    check_quality,
    encoded_file,
)
from neuralcodec.image_modes import DecodedPixels, PreparedImage, decoded_pixels, prepare
from neuralcodec.latent_codecs import file_latents
from neuralcodec.models.interface import DEFAULT_ARCHITECTURE
from neuralcodec.models.loaded import LoadedModel
from neuralcodec.models.registry import get_architecture
from neuralcodec.weights_file import decoder_for, load_reporting
from neuralcodec.zoo import DEFAULT_MODEL, load_model


def default_effort(
    width: int, height: int, metric: str = "mse", architecture: str = DEFAULT_ARCHITECTURE
) -> int:
    """The effort of an image when none is asked for.

    ``DEFAULT_EFFORTS[metric]`` (neuralcodec.effort_levels: 2 for ``mse`` models, 1 for
    ``ms-ssim`` ones, 0 for a metric not listed) when the image refines in one window (at most
    ``refine.SINGLE_WINDOW_PIXELS``, 1 Mpx, once padded to the latent grid), else 0. The levels
    were chosen as the best BD-rate whose encode stays within about 3 s per Kodak image
    (768 x 512) on two threads of a 2-core CPU; larger images, which would refine tile by tile
    (``refine.TileGeometry``) for many seconds per megapixel, get the single-pass encoder unless
    an effort is asked for. 0 as well for an ``architecture`` whose refinement does not score
    its own rate (``Architecture.refines_own_rate``; every built-in one does). Depends only on
    the size, the metric and the architecture, so the same image and model always get the same
    effort. Measured payoff of refinement on Kodak (benchmarks/results/kodak/effort.md): the
    hyperprior models' files 5.2 % (``mse``) and 2.8 % (``ms-ssim``) smaller than effort 0 at
    equal quality, the checkerboard ``mse``'s 4.3 % at effort 2.
    """
    if not refine.refines_in_one_window(height, width) or not get_architecture(architecture).refines_own_rate:
        return 0
    return DEFAULT_EFFORTS.get(metric, 0)


def compress_with_stats(
    image: ImageSource,
    quality: float = DEFAULT_QUALITY,
    model: str | Path | LoadedModel = DEFAULT_MODEL,
    device: str = "auto",
    keep_metadata: bool = True,
    effort: int | None = DEFAULT_EFFORT,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[bytes, CompressStats]:
    """Compress one image; also return sizes and the model's own rate estimate.

    ``model``: a shipped model's name, a weights file, or a model loaded already
    (``zoo.load_model``, ``zoo.model_from_state``).

    ``effort`` 0 is the single-pass encoder; higher levels refine the latents of this image
    (slower, smaller files at the same quality; the decoder is the same); None, the default,
    picks :func:`default_effort` for the image and model (up to about a megapixel 2 for ``mse``
    models, 1 for ``ms-ssim`` ones; else 0);
    ``progress(done, total)`` is called while it runs.
    """
    q = check_quality(quality)
    effort = check_effort(effort)
    loaded = loaded_model(model)
    prepared = image if isinstance(image, PreparedImage) else prepare(image, keep_metadata)
    h, w = prepared.rgb.shape[:2]
    effort = default_effort(w, h, loaded.config.metric, loaded.architecture) if effort is None else effort
    architecture = get_architecture(loaded.architecture)
    gray = prepared.mode in (ColorMode.L, ColorMode.LA)
    streams = architecture.encode(
        loaded, prepared.rgb[None], q, device, effort=effort, progress=progress, gray_output=gray
    )[0]
    coder = loaded.latent_codec
    data = encoded_file(
        prepared,
        loaded.name,
        loaded.digest,
        q,
        streams.sections,
        streams.band_rows,
        coder.architecture,
        coder.format_version,
    )
    stats = CompressStats(w, h, len(data), streams.estimated_bits, streams.actual_bits, prepared.notes)
    return data, stats


def loaded_model(model: str | Path | LoadedModel) -> LoadedModel:
    """A shipped model's name or a weights file, loaded (cached); a loaded model as it is.
    Raises InvalidModelError with a one-line message for a file that does not load."""
    return model if isinstance(model, LoadedModel) else load_reporting(load_model, model)


def model_for(header: Header, model: str | Path | LoadedModel | None = None) -> LoadedModel:
    """The loaded model a stream needs (``model``, else the shipped or archived decoder the
    header names: weights_file.decoder_for), or a clear error naming it."""
    return decoder_for(header.model_name, header.model_digest, model, loaded_model)


def decompress(
    data: bytes,
    device: str = "auto",
    model: str | Path | LoadedModel | None = None,
    strip: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> Image.Image:
    """Decode ``.nc`` bytes to a PIL image (mode RGB, L, RGBA or LA as recorded).

    Images above ``max_pixels`` are refused before anything is decoded (None: up to the
    format's maximum).
    """
    return decompress_pixels(data, device, model, strip, max_pixels).image()


def decompress_pixels(
    data: bytes,
    device: str = "auto",
    model: str | Path | LoadedModel | None = None,
    strip: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> DecodedPixels:
    """:func:`decompress`'s pixels before they become a PIL image (image_modes.DecodedPixels)."""
    container = unpack(bytes(data))
    h = container.header
    check_pixel_limit(h.width, h.height, max_pixels)
    loaded = model_for(h, model)
    y_hat = torch.from_numpy(file_latents(loaded, container))
    pixels = codec.synthesize(loaded, y_hat, h.quality, h.height, h.width, device)
    rgb = pixels[0].permute(1, 2, 0).numpy()
    return decoded_pixels(container, rgb, strip)
