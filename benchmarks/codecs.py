"""Codec adapters behind one small interface, so the RD and speed runners never special-case a codec.

Every adapter maps a 0..100 quality to real encoder settings, returns the complete file
(headers and container included: that is what a user stores) and decodes to 8-bit RGB.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import io
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import PIL
from PIL import Image, features

SWEEP_5 = tuple(float(q) for q in range(5, 100, 5))  # CompressAI's JPEG/WebP recipe: q5..95 step 5
SWEEP_10 = tuple(float(q) for q in range(5, 100, 10))  # slower codecs: q5..95 step 10

ALL_CODEC_NAMES = ("jpeg", "jpeg444", "webp", "avif", "jxl", "jpeg2000", "neuralcodec")
# "neuralcodec" runs every shipped model; "neuralcodec:NAME+/path/w.pt" picks models or weights files.


class Codec(ABC):
    """One codec at one configuration; ``quality`` is always on a 0..100 scale."""

    name: str  # file-name-safe key, also the JSON "name"
    label: str  # legend / table label
    description: str  # JSON "description": enough to reproduce the run
    extension: str
    qualities: tuple[float, ...]

    @abstractmethod
    def encode(self, img: np.ndarray, quality: float) -> bytes:
        """Encode an (H, W, 3) uint8 RGB array to the bytes of a complete file."""

    @abstractmethod
    def decode(self, data: bytes) -> np.ndarray:
        """Decode a file's bytes to an (H, W, 3) uint8 RGB array."""

    def info(self) -> dict[str, Any]:
        """Versions and settings recorded with the results."""
        return {"pillow": PIL.__version__}


class PillowCodec(Codec):
    """Any format Pillow (or a Pillow plugin) can save; ``options(quality)`` gives the save() kwargs."""

    def __init__(
        self,
        name: str,
        label: str,
        fmt: str,
        extension: str,
        options: Callable[[float], dict[str, Any]],
        qualities: Sequence[float],
        description: str,
        versions: dict[str, Any] | None = None,
    ) -> None:
        self.name, self.label, self.fmt, self.extension = name, label, fmt, extension
        self.options = options
        self.qualities = tuple(float(q) for q in qualities)
        self.description = description
        self.versions = versions or {}

    def encode(self, img: np.ndarray, quality: float) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(img, mode="RGB").save(buf, format=self.fmt, **self.options(quality))
        return buf.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)

    def info(self) -> dict[str, Any]:
        return {"pillow": PIL.__version__, "format": self.fmt, **self.versions}


def _int_quality(q: float) -> int:
    return round(q)


def jpeg2000_ratio(quality: float) -> float:
    """OpenJPEG has no quality scale: q asks for 0.1·32^(q/100) bpp, i.e. 0.12–2.7 bpp over q5–95."""
    target_bpp = 0.1 * 32 ** (quality / 100.0)
    return 24.0 / target_bpp


def _feature_version(name: str) -> str | None:
    try:
        return features.version(name)
    except Exception:  # unknown feature name on older Pillow
        return None


def make_jpeg(subsampling: str = "4:2:0") -> Codec:
    """Pillow JPEG. 4:2:0 is exactly CompressAI's anchor call (``save(quality=q)``, baseline Huffman)."""
    versions = {"libjpeg-turbo": _feature_version("libjpeg_turbo")}
    if subsampling == "4:2:0":
        return PillowCodec(
            "jpeg",
            "JPEG 4:2:0",
            "JPEG",
            ".jpg",
            lambda q: {"quality": _int_quality(q)},
            SWEEP_5,
            f"JPEG 4:2:0, Pillow {PIL.__version__} save(quality=q) "
            f"(libjpeg-turbo {versions['libjpeg-turbo']})",
            versions,
        )
    return PillowCodec(
        "jpeg444",
        "JPEG 4:4:4",
        "JPEG",
        ".jpg",
        lambda q: {"quality": _int_quality(q), "subsampling": 0},
        SWEEP_5,
        f"JPEG 4:4:4, Pillow {PIL.__version__} save(quality=q, subsampling=0) "
        f"(libjpeg-turbo {versions['libjpeg-turbo']})",
        versions,
    )


def make_webp() -> Codec:
    version = _feature_version("webp")
    return PillowCodec(
        "webp",
        "WebP",
        "WEBP",
        ".webp",
        lambda q: {"quality": _int_quality(q)},
        SWEEP_5,
        f"WebP, Pillow {PIL.__version__} save(quality=q) (libwebp {version})",
        {"libwebp": version},
    )


def make_avif() -> Codec:
    version = _feature_version("avif")
    return PillowCodec(
        "avif",
        "AVIF",
        "AVIF",
        ".avif",
        lambda q: {"quality": _int_quality(q), "speed": 6, "subsampling": "4:2:0"},
        SWEEP_10,
        f"AVIF 4:2:0, Pillow {PIL.__version__} save(quality=q, speed=6) (libavif {version})",
        {"libavif": version},
    )


def make_jpeg2000() -> Codec:
    version = _feature_version("jpg_2000")
    return PillowCodec(
        "jpeg2000",
        "JPEG 2000",
        "JPEG2000",
        ".jp2",
        lambda q: {
            "quality_mode": "rates",
            "quality_layers": [jpeg2000_ratio(q)],
            "irreversible": True,  # 9/7 wavelet: the lossy mode
            "mct": 1,  # RGB -> YCbCr, as every practical J2K encoder does
        },
        SWEEP_10,
        f"JPEG 2000 (.jp2), Pillow {PIL.__version__} + OpenJPEG {version}, 9/7 + MCT, "
        "rate = 0.1*32^(q/100) bpp",
        {"openjpeg": version},
    )


def make_jxl() -> Codec:
    """JPEG XL through the ``pillow-jxl-plugin`` Pillow plugin (registers format "JXL" on import)."""
    importlib.import_module("pillow_jxl")
    version = importlib.metadata.version("pillow-jxl-plugin")
    return PillowCodec(
        "jxl",
        "JPEG XL",
        "JXL",
        ".jxl",
        lambda q: {"quality": float(q), "effort": 7},
        SWEEP_10,
        f"JPEG XL, pillow-jxl-plugin {version} save(quality=q, effort=7), bare codestream",
        {"pillow-jxl-plugin": version},
    )


# The rate–distortion benchmark measures the single-pass encoder (effort 0), the figure the
# published results and the model cards quote, whatever the library's default effort is;
# benchmarks/effort.py measures the other efforts against it.
SINGLE_PASS = 0


class NeuralCodec(Codec):
    """A shipped neuralcodec model through the library's public API (the API users call)."""

    extension = ".nc"

    def __init__(
        self,
        model: str,
        api: ModuleType | Any | None = None,
        qualities: Sequence[float] = SWEEP_10,
        device: str | None = None,
        effort: int = SINGLE_PASS,
    ) -> None:
        self.api = api if api is not None else importlib.import_module("neuralcodec")
        self.model = model
        short = Path(model).stem if model.endswith(".pt") else model
        self.name = f"neuralcodec-{short}"
        self.label = f"neuralcodec ({short})"
        self.qualities = tuple(float(q) for q in qualities)
        # Pass a device (and an effort) only where the library accepts one.
        self._enc_extra = _kwargs_accepted(self.api.compress, device=device, effort=effort)
        shown = f", effort={effort}" if "effort" in self._enc_extra else ""
        self.description = f"neuralcodec model '{short}', neuralcodec.compress(quality=q{shown})"
        # A weights file that is not shipped must be named again to decode its streams.
        self._dec_extra = _kwargs_accepted(
            self.api.decompress, device=device, model=model if model.endswith(".pt") else None
        )

    def encode(self, img: np.ndarray, quality: float) -> bytes:
        image = Image.fromarray(img, mode="RGB")
        return self.api.compress(image, quality=quality, model=self.model, **self._enc_extra)

    def decode(self, data: bytes) -> np.ndarray:
        return np.asarray(self.api.decompress(data, **self._dec_extra).convert("RGB"), dtype=np.uint8)

    def info(self) -> dict[str, Any]:
        return {"model": self.model, "neuralcodec": getattr(self.api, "__version__", None), **self._enc_extra}


def _kwargs_accepted(func: Callable[..., Any], **kwargs: Any) -> dict[str, Any]:
    """The non-None ``kwargs`` that ``func`` declares (the API may not take a device)."""
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):  # builtins / C functions without a signature
        return {}
    return {k: v for k, v in kwargs.items() if v is not None and k in params}


def neuralcodec_codecs(
    api: ModuleType | Any | None = None,
    device: str | None = None,
    qualities: Sequence[float] = SWEEP_10,
    models: Sequence[str] | None = None,
) -> tuple[list[Codec], list[str]]:
    """One codec per shipped model (or per ``models`` entry: a name or a .pt weights file).

    Returns a note instead of failing when the library is unusable, so the harness keeps going.
    """
    try:
        api = api if api is not None else importlib.import_module("neuralcodec")
        api.compress, api.decompress  # noqa: B018 (fail early if the API is incomplete)
        models = list(models) if models else list(api.available_models())
    except Exception as exc:
        return [], [f"neuralcodec skipped: {type(exc).__name__}: {exc}"]
    if not models:
        return [], ["neuralcodec skipped: available_models() is empty (no shipped weights)"]
    return [NeuralCodec(m, api=api, qualities=qualities, device=device) for m in models], []


_CLASSICAL: dict[str, tuple[Callable[[], Codec], Callable[[], bool]]] = {
    "jpeg": (lambda: make_jpeg("4:2:0"), lambda: features.check_codec("jpg")),
    "jpeg444": (lambda: make_jpeg("4:4:4"), lambda: features.check_codec("jpg")),
    "webp": (make_webp, lambda: features.check("webp")),
    "avif": (make_avif, lambda: bool(features.check("avif"))),
    "jpeg2000": (make_jpeg2000, lambda: features.check_codec("jpg_2000")),
    "jxl": (make_jxl, lambda: True),
}


def model_spec(name: str) -> list[str] | None:
    """``neuralcodec`` = every shipped model; ``neuralcodec:A+B`` = those names or .pt files."""
    _, _, spec = name.partition(":")
    return [m for m in spec.split("+") if m] or None


def build_codecs(
    names: Sequence[str], device: str | None = None, qualities: Sequence[float] | None = None
) -> tuple[list[Codec], list[str]]:
    """Instantiate the requested codecs; unavailable ones are skipped with a note instead of failing."""
    codecs: list[Codec] = []
    notes: list[str] = []
    for name in names:
        if name == "neuralcodec" or name.startswith("neuralcodec:"):
            found, why = neuralcodec_codecs(device=device, models=model_spec(name))
            codecs.extend(found)
            notes.extend(why)
            continue
        if name not in _CLASSICAL:
            raise ValueError(f"unknown codec {name!r}; choose from {', '.join(ALL_CODEC_NAMES)}")
        factory, available = _CLASSICAL[name]
        try:
            if not available():
                notes.append(f"{name} skipped: this Pillow build has no {name} support")
                continue
            codecs.append(factory())
        except Exception as exc:
            notes.append(f"{name} skipped: {type(exc).__name__}: {exc}")
    if qualities:
        for codec in codecs:
            codec.qualities = tuple(float(q) for q in qualities)
    return codecs, notes
