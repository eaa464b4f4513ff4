"""PNG files written a strip of rows at a time: the pixels and metadata Pillow reads back."""

import io

import numpy as np
import pytest
from PIL import Image

from neuralcodec.png_writer import PngWriter, filtered_rows

MODES = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}


def samples(mode: str, height: int = 23, width: int = 17, seed: int = 0) -> np.ndarray:
    """Smooth rows with noise, so that every filter wins somewhere."""
    rng = np.random.default_rng(seed)
    ramp = np.add.outer(np.arange(height) * 7, np.arange(width) * 3)[:, :, None]
    pixels = (ramp + rng.integers(0, 12, (height, width, MODES[mode]))) % 256
    pixels = pixels.astype(np.uint8)
    return pixels[:, :, 0] if mode == "L" else pixels


def written(pixels: np.ndarray, mode: str, strip: int, **metadata) -> bytes:
    out = io.BytesIO()
    writer = PngWriter(out, pixels.shape[1], pixels.shape[0], mode, **metadata)
    for top in range(0, pixels.shape[0], strip):
        writer.write(pixels[top : top + strip])
    writer.close()
    return out.getvalue()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("strip", [1, 5, 100])
def test_pixels_read_back_as_written(mode, strip):
    pixels = samples(mode)
    image = Image.open(io.BytesIO(written(pixels, mode, strip)))
    assert image.mode == mode and image.size == (17, 23)
    assert np.array_equal(np.asarray(image), pixels)


def test_strips_do_not_change_the_file():
    pixels = samples("RGB")
    assert written(pixels, "RGB", 1) == written(pixels, "RGB", 7) == written(pixels, "RGB", 23)


def test_icc_profile_and_exif_read_back_as_pillow_writes_them():
    exif = Image.Exif()
    exif[0x010F] = "maker"
    icc = b"not really a profile" * 5
    pixels = samples("RGB")
    ours = Image.open(io.BytesIO(written(pixels, "RGB", 4, icc=icc, exif=exif.tobytes())))
    theirs = io.BytesIO()
    Image.fromarray(pixels).save(theirs, format="PNG", icc_profile=icc, exif=exif.tobytes())
    theirs = Image.open(theirs)
    assert ours.info["icc_profile"] == theirs.info["icc_profile"] == icc
    assert ours.info["exif"] == theirs.info["exif"]
    assert ours.getexif()[0x010F] == "maker"


def test_each_row_takes_the_filter_with_the_smallest_sum_of_absolute_signed_bytes():
    rows = samples("RGB", 9, 11, seed=3).reshape(9, 33)
    previous = np.arange(33, dtype=np.uint8)
    out = filtered_rows(rows, previous, 3)
    for i, row in enumerate(rows.astype(int)):
        up = rows[i - 1].astype(int) if i else previous.astype(int)
        left = np.concatenate([[0] * 3, row[:-3]])
        upper_left = np.concatenate([[0] * 3, up[:-3]])
        paeth = []
        for a, b, c in zip(left, up, upper_left):
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            paeth.append(a if pa <= pb and pa <= pc else b if pb <= pc else c)
        options = [row, row - left, row - up, row - (left + up) // 2, row - np.array(paeth)]
        costs = [int(np.abs(((o % 256) + 128) % 256 - 128).sum()) for o in options]
        assert out[i, 0] == int(np.argmin(costs))
        assert np.array_equal(out[i, 1:], options[out[i, 0]] % 256)


def test_wrong_rows_are_refused():
    writer = PngWriter(io.BytesIO(), 4, 2, "RGB")
    with pytest.raises(ValueError, match="uint8"):
        writer.write(np.zeros((1, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        writer.write(np.zeros((1, 4, 3), np.float32))
    writer.write(np.zeros((1, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="rows written"):
        writer.close()
    with pytest.raises(ValueError, match="more rows"):
        writer.write(np.zeros((2, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="modes"):
        PngWriter(io.BytesIO(), 4, 2, "CMYK")
