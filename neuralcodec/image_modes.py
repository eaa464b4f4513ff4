"""Turning whatever image a user has into what the codec codes, and back.

The latents are always 8-bit RGB. Around them: grayscale stays grayscale (coded as R=G=B,
decoded to mode L), alpha travels losslessly in its own section, palette and 1-bit images
are expanded, CMYK is converted to RGB, and 16/32-bit grayscale is reduced to 8 bits with
a note in the file. EXIF orientation is applied on input (the tag is then reset to 1 in
the carried EXIF), so every viewer shows the decoded image upright.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from neuralcodec.container import ColorMode, Container, SectionType, check_dimensions
from neuralcodec.errors import InvalidInputError
from neuralcodec.png_writer import PngWriter

ORIENTATION_TAG = 0x0112
# Tags that describe how a TIFF container lays out its pixels (sizes, strips, tiles, sample
# format) or duplicate what travels elsewhere (34675: the ICC profile). Pillow reports a TIFF's
# own IFD as its EXIF; these are not metadata of the picture and describe nothing in a .nc file
# (a TIFF's strip tables alone can be kilobytes).
CONTAINER_LAYOUT_TAGS = frozenset(
    (256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 284, 317, 320, 322, 323, 324, 325, 338, 339, 34675)
)
# Pixels are copied out of a Pillow image this many bytes of rows at a time: np.asarray(image)
# goes through Image.tobytes, which holds the whole image twice more (its pieces and their join).
STRIP_BYTES = 16 << 20


@dataclass
class PreparedImage:
    """An image split into what is coded lossily (rgb) and what travels alongside."""

    rgb: np.ndarray  # (H, W, 3) uint8
    mode: ColorMode
    alpha: np.ndarray | None = None  # (H, W) uint8
    icc: bytes | None = None
    exif: bytes | None = None
    notes: list[str] = field(default_factory=list)


def open_image(source: str | Path) -> tuple[Image.Image, int]:
    """Open an image file (its first frame, loaded) and count its frames, with a clear error
    for non-images and oversized images.

    Pillow's decompression-bomb guard (``PIL.Image.MAX_IMAGE_PIXELS``) applies as the
    application set it: a library never changes that process-wide setting (``ncodec`` sets
    it from ``--max-pixels``). The codec's own size limits are checked before any pixel is
    decoded.
    """
    try:
        with Image.open(source) as im:
            check_dimensions(*im.size)
            frames = frame_count(im)  # while the file is open (GIF seeks through it, then back)
            im.load()
            return im, frames
    except FileNotFoundError:
        raise InvalidInputError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise InvalidInputError(f"{source}: is a directory") from None
    except Image.DecompressionBombError as exc:
        raise InvalidInputError(
            f"{source}: image too large for Pillow's decompression-bomb guard ({exc}); raise "
            "PIL.Image.MAX_IMAGE_PIXELS (ncodec: --max-pixels) if you trust it"
        ) from None
    except UnidentifiedImageError:
        raise InvalidInputError(f"{source}: not a readable image") from None
    except (OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, InvalidInputError):
            raise
        raise InvalidInputError(f"{source}: cannot read image ({exc})") from None


def frame_count(image: Image.Image) -> int:
    """Frames in an animated image (GIF, APNG, WebP, multi-page TIFF); 1 where it cannot tell."""
    try:
        return max(1, int(getattr(image, "n_frames", 1)))
    except Exception:  # a closed file, a damaged later frame: the first frame still codes
        return 1


def _from_array(array: np.ndarray) -> Image.Image:
    if array.dtype != np.uint8:
        raise InvalidInputError(f"arrays must be uint8, got {array.dtype}")
    if array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 3, 4)):
        return Image.fromarray(array.squeeze(2) if array.ndim == 3 and array.shape[2] == 1 else array)
    raise InvalidInputError(f"array shape {array.shape} is not (H, W), (H, W, 3) or (H, W, 4)")


def pixel_array(image: Image.Image, channel: int | slice | None = None) -> np.ndarray:
    """An 8-bit image's samples as a writable uint8 array, (H, W) for one band or ``channel`` an
    int, else (H, W, C) (``channel`` a slice selects bands). Copied a strip of rows (about
    STRIP_BYTES) at a time, so it needs the array plus one strip, not three times the image."""
    width, height = image.size
    bands = len(image.getbands())
    if bands == 1:
        channel = None
    picked = range(bands)[channel] if channel is not None else range(bands)
    shape = (height, width) if isinstance(picked, int) or bands == 1 else (height, width, len(picked))
    out = np.empty(shape, dtype=np.uint8)
    rows = max(1, STRIP_BYTES // max(1, width * bands))
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        strip = np.asarray(image.crop((0, top, width, bottom)))
        out[top:bottom] = strip if channel is None else strip[..., channel]
    return out


def _carried_exif(image: Image.Image) -> bytes | None:
    """The image's EXIF with Orientation = 1 and without container layout tags, or None when
    nothing else is left (a copy: the image's own EXIF is untouched)."""
    if not image.getexif():
        return None
    exif = Image.Exif()
    exif.load(image.getexif().tobytes())
    for tag in CONTAINER_LAYOUT_TAGS & set(exif):
        del exif[tag]
    if not exif:
        return None
    if ORIENTATION_TAG in exif:
        exif[ORIENTATION_TAG] = 1
    return exif.tobytes()


def prepare(source: Image.Image | str | Path | np.ndarray, keep_metadata: bool = True) -> PreparedImage:
    """Normalise any supported input to a PreparedImage."""
    frames = 1
    if isinstance(source, np.ndarray):
        image = _from_array(source)
    elif isinstance(source, Image.Image):
        image, frames = source, frame_count(source)
    else:
        image, frames = open_image(source)
    check_dimensions(*image.size)
    icc = image.info.get("icc_profile") if keep_metadata else None
    notes: list[str] = []
    if frames > 1:
        notes.append(f"the input has {frames} frames (pages); only the first was coded")
    exif = None
    if keep_metadata:
        try:
            exif = _carried_exif(image)
        except Exception:  # Pillow raises SyntaxError, struct.error, ... on a damaged EXIF block
            notes.append("the input's EXIF data is damaged and was dropped")
    try:
        if image.getexif().get(ORIENTATION_TAG, 1) in range(2, 9):  # else exif_transpose only copies
            image = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block must not stop the image from coding
        pass
    mode = image.mode
    if mode in ("La", "RGBa"):  # premultiplied alpha (e.g. TIFF with associated alpha): un-premultiply
        image = image.convert(mode.upper())
        mode = image.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0)  # NaN (mode F) -> black
        if mode == "F" and arr.max() <= 1.0:  # float samples in 0..1 (not 0..255): 1.0 is white
            peak = 1.0
        else:
            peak = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        gray = np.clip(np.round(arr * (255.0 / peak)), 0, 255).astype(np.uint8)
        notes.append(f"input mode {mode} was coded at 8-bit precision; decodes to mode L")
        image, mode = Image.fromarray(gray, "L"), "L"
    if mode == "1":
        image, mode = image.convert("L"), "L"
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode == "PA":
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in ("L", "LA"):
        alpha = pixel_array(image, 1) if mode == "LA" else None
        gray = pixel_array(image, 0)
        rgb = np.repeat(gray[:, :, None], 3, axis=2)
        return PreparedImage(rgb, ColorMode.LA if alpha is not None else ColorMode.L, alpha, icc, exif, notes)
    if mode == "RGBA":
        rgb, alpha = pixel_array(image, slice(0, 3)), pixel_array(image, 3)
        return PreparedImage(rgb, ColorMode.RGBA, alpha, icc, exif, notes)
    if mode != "RGB":
        if mode == "CMYK":
            notes.append("CMYK input was converted to RGB")
            icc = None  # a CMYK profile does not describe the RGB pixels
        image = image.convert("RGB")
    return PreparedImage(pixel_array(image), ColorMode.RGB, None, icc, exif, notes)


def pack_alpha(alpha: np.ndarray) -> bytes:
    """Lossless alpha: zlib of the row-differenced plane (smooth alpha compresses well)."""
    diff = np.diff(alpha.astype(np.int16), axis=1, prepend=0).astype(np.uint8)
    return zlib.compress(diff.tobytes(), 9)


def unpack_alpha(data: bytes, width: int, height: int) -> np.ndarray:
    stream = zlib.decompressobj()
    try:
        raw = stream.decompress(data, width * height + 1)
    except zlib.error as exc:
        raise InvalidInputError(f"corrupt alpha section: {exc}") from None
    if len(raw) != width * height:
        raise InvalidInputError("corrupt alpha section: wrong size")
    if not stream.eof or stream.unused_data:  # the section is exactly one whole zlib stream
        raise InvalidInputError(
            "corrupt alpha section: " + ("data after its end" if stream.eof else "truncated")
        )
    diff = np.frombuffer(raw, dtype=np.uint8).reshape(height, width)
    return np.cumsum(diff, axis=1, dtype=np.uint64).astype(np.uint8)


def finish(rgb: np.ndarray, mode: ColorMode, alpha: np.ndarray | None) -> Image.Image:
    """Decoded RGB (+ alpha) -> a PIL image in the mode the file records."""
    if mode in (ColorMode.L, ColorMode.LA):
        image = Image.fromarray(_gray(rgb), "L")
    else:
        image = Image.fromarray(rgb, "RGB")
    if alpha is not None:
        image.putalpha(Image.fromarray(alpha, "L"))
    return image


@dataclass
class DecodedPixels:
    """A decoded file's pixels before they become an image: the synthesised RGB (H, W, 3), the
    mode the file records, its lossless alpha and (unless stripped) its ICC profile and EXIF."""

    rgb: np.ndarray
    mode: ColorMode
    alpha: np.ndarray | None = None
    info: dict = field(default_factory=dict)  # "icc_profile", "exif": bytes

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[1], self.rgb.shape[0]

    @property
    def pil_mode(self) -> str:
        return self.mode.name

    def rows(self, top: int, bottom: int) -> np.ndarray:
        """Rows top .. bottom as the image's samples: (n, W) for L, (n, W, C) otherwise; the
        same values :meth:`image` holds there."""
        rgb = self.rgb[top:bottom]
        if self.mode in (ColorMode.L, ColorMode.LA):
            color = _gray(rgb)[:, :, None]
        else:
            color = rgb
        if self.alpha is None:
            return color[:, :, 0] if self.mode == ColorMode.L else color
        return np.concatenate([color, self.alpha[top:bottom, :, None]], axis=2)

    def image(self) -> Image.Image:
        """The PIL image (mode RGB, L, RGBA or LA), with the metadata in ``image.info``."""
        image = finish(self.rgb, self.mode, self.alpha)
        image.info.update(self.info)
        return image

    def save_png(self, fp: BinaryIO) -> None:
        """Writes the image as PNG (zlib level PNG_COMPRESS_LEVEL, its ICC profile and EXIF) a
        strip of rows at a time (neuralcodec.png_writer): no second copy of the pixels."""
        width, height = self.size
        writer = PngWriter(
            fp,
            width,
            height,
            self.pil_mode,
            icc=self.info.get("icc_profile"),
            exif=self.info.get("exif"),
            level=PNG_COMPRESS_LEVEL,
        )
        rows = max(1, STRIP_BYTES // 16 // max(1, width * 4))  # filtering holds ~16 bytes per byte
        for top in range(0, height, rows):
            writer.write(self.rows(top, min(height, top + rows)))
        writer.close()


def _gray(rgb: np.ndarray) -> np.ndarray:
    """The decoded gray of R=G=B-coded pixels: the rounded mean of the three channels."""
    return np.round(rgb.astype(np.float32).mean(axis=2)).astype(np.uint8)


def decoded_pixels(container: Container, rgb: np.ndarray, strip: bool = False) -> DecodedPixels:
    """The decoded RGB (H, W, 3) of a file with what it records: its mode, its lossless alpha
    and (unless ``strip``) its ICC profile and EXIF."""
    h = container.header
    alpha = None
    if h.mode in (ColorMode.RGBA, ColorMode.LA):
        alpha = unpack_alpha(container.section(SectionType.ALPHA)[0], h.width, h.height)
    info = {}
    if not strip:
        for kind, key in ((SectionType.ICC, "icc_profile"), (SectionType.EXIF, "exif")):
            found = container.section(kind)
            if found:
                info[key] = found[0]
    return DecodedPixels(rgb, h.mode, alpha, info)


# zlib level of the PNG files decoders write. Decoded Kodak images (mse, quality 75) at level 3
# came out 1.4 % smaller in total than at Pillow's default 6 (five images: −7 % to +9 % each) and
# were written 2.8 times as fast (0.042 against 0.116 s for kodim01 on a Zen 5 EPYC).
PNG_COMPRESS_LEVEL = 3


def save_options(image: Image.Image, fmt: str) -> dict:
    """Pillow ``save`` options for a decoded image: its ICC profile and EXIF (what the file
    carried), and for PNG the zlib level above."""
    options = {k: v for k, v in image.info.items() if k in ("icc_profile", "exif")}
    if fmt.upper() == "PNG":
        options["compress_level"] = PNG_COMPRESS_LEVEL
    return options
