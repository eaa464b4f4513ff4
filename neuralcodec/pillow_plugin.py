"""Pillow plugin: ``Image.open("photo.nc")`` and ``image.save("photo.nc", quality=75)``.

Import this module once to register the format (Pillow's convention for third-party
plugins, like pillow_heif's ``register_heif_opener``)::

    import neuralcodec.pillow_plugin  # noqa: F401
    from PIL import Image
    Image.open("photo.nc").save("photo.png")

``save`` accepts ``quality`` (0..100, default 75), ``effort`` (0..9; by default, as in
``neuralcodec.compress``, up to about a megapixel 2 for ``mse`` models and 1 for ``msssim``
ones, 0 above; 0 is the single-pass encoder,
higher refines this image's latents: slower, smaller files, same decoder; a bad value raises
ValueError), ``model`` and ``device``.
"""

from __future__ import annotations

from typing import IO

from PIL import Image, ImageFile

from neuralcodec.container import MAGIC, ColorMode

FORMAT = "NC"
_PIL_MODES = {ColorMode.RGB: "RGB", ColorMode.L: "L", ColorMode.RGBA: "RGBA", ColorMode.LA: "LA"}


def _accept(prefix: bytes) -> bool:
    return prefix[: len(MAGIC)] == MAGIC


class NcImageFile(ImageFile.ImageFile):
    """Reads the header on open; decodes the pixels on ``load()``."""

    format = FORMAT
    format_description = "neuralcodec learned image codec"

    def _open(self) -> None:
        from neuralcodec.decoding import read_header
        from neuralcodec.errors import InvalidInputError

        data = self.fp.read()
        try:
            header = read_header(data).header
        except InvalidInputError as exc:
            raise SyntaxError(f"not a valid neuralcodec file: {exc}") from None
        self._size = (header.width, header.height)
        self._mode = _PIL_MODES[header.mode]
        self.info["quality"] = header.quality
        self.info["model"] = header.model_name
        self._nc_data = data
        self.tile = [ImageFile._Tile(FORMAT, (0, 0, *self._size), 0, None)]

    def load(self):
        if self.tile and getattr(self, "_nc_data", None) is not None:
            from neuralcodec.decoding import decompress

            decoded = decompress(self._nc_data)
            self.im = decoded.im
            self._mode = decoded.mode
            self.info.update({k: v for k, v in decoded.info.items() if k in ("icc_profile", "exif")})
            self.tile = []
            self._nc_data = None
        return Image.Image.load(self)


def _save(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    from neuralcodec.api import DEFAULT_EFFORT, DEFAULT_QUALITY, compress
    from neuralcodec.zoo import DEFAULT_MODEL

    info = im.encoderinfo
    fp.write(
        compress(
            im,
            quality=info.get("quality", DEFAULT_QUALITY),
            model=info.get("model", DEFAULT_MODEL),
            device=info.get("device", "auto"),
            effort=info.get("effort", DEFAULT_EFFORT),
        )
    )


def register() -> None:
    """Register the format with Pillow (idempotent; done on import)."""
    Image.register_open(FORMAT, NcImageFile, _accept)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, ".nc")
    Image.register_mime(FORMAT, "image/x-neuralcodec")


register()
