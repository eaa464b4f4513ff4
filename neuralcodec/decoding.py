"""Decoding ``.nc`` bytes with either backend, chosen per call.

``torch``: the transforms on any device, in the precision the encoder's machine would pick
(neuralcodec.coding). ``numpy``: on the CPU, in float32, never importing torch
(neuralcodec.numpy_decoder). Both rebuild the same latents bit for bit (exact integer
arithmetic); their pixels differ by at most one level. ``auto``: torch when it is installed,
else numpy.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from neuralcodec.container import DEFAULT_MAX_PIXELS, Container, unpack
from neuralcodec.errors import DeviceUnavailableError
from neuralcodec.runtime import require_torch, torch_available

if TYPE_CHECKING:  # numpy loads only after ncodec --threads has set the BLAS's threads
    from neuralcodec.image_modes import DecodedPixels

BACKENDS = ("auto", "torch", "numpy")


def choose_backend(backend: str = "auto", device: str = "auto", model: Any = None) -> str:
    """``torch`` or ``numpy``: what decodes on ``device`` with ``model`` (a name, a path, or a
    torch LoadedModel, which only torch takes). TorchRequiredError when torch is needed but
    missing; ValueError for an unknown backend."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown decoding backend {backend!r}; use {', '.join(BACKENDS)}")
    on_cpu = device in ("auto", "cpu")
    needs_torch = not on_cpu or not (model is None or isinstance(model, (str, Path)))
    if backend == "numpy":
        if not on_cpu:
            raise DeviceUnavailableError(f"the numpy decoder runs on the CPU only, not {device!r}")
        if needs_torch:
            raise ValueError("the numpy decoder takes a model's name or weights file, not a loaded model")
        return "numpy"
    if backend == "auto" and not needs_torch and not torch_available():
        return "numpy"
    require_torch(f"decoding on {device!r}" if not on_cpu else "the torch decoder")
    return "torch"


def decompress(
    data: bytes,
    device: str = "auto",
    model: Any = None,
    strip: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    backend: str = "auto",
) -> Image.Image:
    """Decode ``.nc`` bytes to a PIL image (mode RGB, L, RGBA or LA as recorded).

    Images above ``max_pixels`` are refused before anything is decoded (None: up to the
    format's maximum). ``backend``: see the module docstring.
    """
    return decompress_pixels(data, device, model, strip, max_pixels, backend).image()


def decompress_pixels(
    data: bytes,
    device: str = "auto",
    model: Any = None,
    strip: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    backend: str = "auto",
) -> DecodedPixels:
    """:func:`decompress`'s pixels before they become a PIL image (image_modes.DecodedPixels:
    what ``ncodec decompress`` writes a PNG from, a strip at a time)."""
    if choose_backend(backend, device, model) == "numpy":
        from neuralcodec import numpy_decoder

        return numpy_decoder.decompress_pixels(data, model, strip, max_pixels)
    from neuralcodec import coding

    return coding.decompress_pixels(data, device, model, strip, max_pixels)


def read_header(data: bytes) -> Container:
    """Parse and validate a stream without decoding it (``ncodec info``)."""
    return unpack(bytes(data))
