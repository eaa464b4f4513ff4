"""Every image mode a user has, and the metadata that travels with it."""

import io

import numpy as np
import pytest
from PIL import Image

import neuralcodec
from neuralcodec import image_modes
from neuralcodec.container import ColorMode
from neuralcodec.errors import InvalidInputError
from neuralcodec.image_modes import ORIENTATION_TAG, pack_alpha, prepare, unpack_alpha

# Results depend on the transforms' precision: every test runs in float32 and in bf16.
pytestmark = pytest.mark.usefixtures("transforms_precision")


def round_trip(image: Image.Image, tiny_model, **kw) -> tuple[Image.Image, bytes]:
    data = neuralcodec.compress(image, 80, tiny_model)
    return neuralcodec.decompress(data, model=tiny_model, **kw), data


@pytest.fixture
def rgb(image) -> Image.Image:
    return Image.fromarray(image)


def test_rgb_stays_rgb(rgb, tiny_model):
    out, _ = round_trip(rgb, tiny_model)
    assert out.mode == "RGB" and out.size == rgb.size


def test_grayscale_is_coded_as_grayscale_and_decodes_to_L(rgb, tiny_model):
    gray = rgb.convert("L")
    out, data = round_trip(gray, tiny_model)
    assert out.mode == "L" and out.size == gray.size
    assert neuralcodec.read_header(data).header.mode == ColorMode.L


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_travels_losslessly(rgb, tiny_model, mode):
    base = rgb.convert(mode[:-1])
    alpha = np.tile(np.arange(96, dtype=np.uint8) * 2, (64, 1))
    alpha[10:20, 10:30] = 0
    base.putalpha(Image.fromarray(alpha))
    out, _ = round_trip(base, tiny_model)
    assert out.mode == mode
    assert np.array_equal(np.asarray(out.getchannel("A")), alpha)


def test_palette_and_one_bit_images_expand(rgb, tiny_model):
    out, _ = round_trip(rgb.convert("P"), tiny_model)
    assert out.mode == "RGB"
    out, _ = round_trip(rgb.convert("1"), tiny_model)
    assert out.mode == "L"


def test_palette_with_transparency_keeps_it(rgb, tiny_model):
    p = rgb.convert("P")
    p.info["transparency"] = 0
    out, _ = round_trip(p, tiny_model)
    assert out.mode == "RGBA"


def test_cmyk_is_converted_with_a_note(rgb, tiny_model):
    out, data = round_trip(rgb.convert("CMYK"), tiny_model)
    assert out.mode == "RGB"
    assert b"CMYK" in data


@pytest.mark.parametrize("mode", ["I;16", "I"])
def test_sixteen_bit_is_coded_at_eight_bits_with_a_note(tiny_model, mode):
    ramp = (np.arange(64 * 96, dtype=np.int32).reshape(64, 96) * 10).astype(np.uint16)
    image = Image.fromarray(ramp)  # uint16 -> mode I;16
    image = image.convert(mode) if mode == "I" else image
    assert image.mode == mode
    data, stats = neuralcodec.compress_with_stats(image, 80, tiny_model)
    assert any("8-bit" in n for n in stats.notes)
    out = neuralcodec.decompress(data, model=tiny_model)
    assert out.mode == "L"


def test_sixteen_bit_png_file(tmp_path, tiny_model):
    ramp = (np.arange(32 * 40).reshape(32, 40) * 50).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(ramp).save(path)
    out, _ = round_trip(Image.open(path), tiny_model)
    assert out.mode == "L" and out.size == (40, 32)


def test_exif_orientation_is_applied_and_reset(rgb, tiny_model):
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = 6  # rotate 90° clockwise to display
    exif[0x010F] = "TestCam"  # Make
    buf = io.BytesIO()
    rgb.save(buf, format="JPEG", exif=exif.tobytes(), quality=95)
    photo = Image.open(io.BytesIO(buf.getvalue()))
    out, _ = round_trip(photo, tiny_model)
    assert out.size == (64, 96)  # upright: width and height swapped
    carried = Image.Exif()
    carried.load(out.info["exif"])
    assert carried[ORIENTATION_TAG] == 1 and carried[0x010F] == "TestCam"


def test_icc_profile_travels_and_strip_drops_it(rgb, tiny_model):
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    rgb.info["icc_profile"] = icc
    out, data = round_trip(rgb, tiny_model)
    assert out.info["icc_profile"] == icc
    stripped = neuralcodec.decompress(data, model=tiny_model, strip=True)
    assert "icc_profile" not in stripped.info
    assert len(neuralcodec.compress(prepare(rgb, keep_metadata=False), 80, tiny_model)) < len(data)


def test_alpha_packing_round_trip_on_random_planes():
    rng = np.random.default_rng(0)
    plane = rng.integers(0, 256, (17, 23), dtype=np.uint8)
    assert np.array_equal(unpack_alpha(pack_alpha(plane), 23, 17), plane)


@pytest.mark.parametrize("mode", ["La", "RGBa"])
def test_premultiplied_alpha_keeps_its_alpha(rgb, tiny_model, mode):
    """A TIFF with associated alpha opens as La: 'conversion from La to L not supported'."""
    straight = rgb.convert("LA" if mode == "La" else "RGBA")
    alpha = np.tile(np.linspace(0, 255, straight.width).astype(np.uint8), (straight.height, 1))
    straight.putalpha(Image.fromarray(alpha))
    out, _ = round_trip(straight.convert(mode), tiny_model)
    assert out.mode == mode.upper()
    assert np.array_equal(np.asarray(out.getchannel("A")), alpha)


def test_native_endian_sixteen_bit_is_grayscale_with_a_note(tiny_model):
    ramp = (np.arange(32 * 40).reshape(32, 40) * 50).astype(np.uint16)
    image = Image.frombytes("I;16N", (40, 32), ramp.astype("=u2").tobytes())
    data, stats = neuralcodec.compress_with_stats(image, 80, tiny_model)  # was coded as RGB, no note
    assert any("8-bit" in n for n in stats.notes)
    assert neuralcodec.decompress(data, model=tiny_model).mode == "L"


def test_float_image_with_nan_codes_without_a_warning(tiny_model):
    import warnings

    plane = np.full((32, 40), 100.0, dtype=np.float32)
    plane[5:9, 5:9] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "invalid value encountered in cast"
        prepared = prepare(Image.fromarray(plane))
    assert prepared.rgb[6, 6, 0] == 0 and prepared.rgb[20, 20, 0] == 100


@pytest.mark.parametrize("peak", [1.0, 255.0])
def test_float_images_in_unit_range_or_eight_bit_range_keep_their_brightness(peak):
    """Mode F samples in 0..1 (the float convention) used to code as nearly black."""
    ramp = np.linspace(0.0, 1.0, 32 * 40, dtype=np.float32).reshape(32, 40)
    prepared = prepare(Image.fromarray(ramp * np.float32(peak)))
    assert prepared.rgb[0, 0, 0] == 0 and prepared.rgb[-1, -1, 0] == 255
    assert np.abs(prepared.rgb[..., 0].astype(int) - np.round(ramp * 255)).max() <= 1


def test_alpha_section_must_be_one_whole_zlib_stream():
    import zlib

    plane = np.random.default_rng(1).integers(0, 256, (9, 11), dtype=np.uint8)
    packed = pack_alpha(plane)
    for damaged in (packed[:-4], packed[:-1], packed + b"junk", packed + packed):  # accepted before
        with pytest.raises(InvalidInputError, match="corrupt alpha"):
            unpack_alpha(damaged, 11, 9)
    assert np.array_equal(unpack_alpha(packed, 11, 9), plane)
    assert zlib.decompress(packed)  # the intact section is a plain zlib stream


@pytest.mark.parametrize(
    "exif",
    [
        b"Exif\x00\x00MM\x00.\x00\x00\x00\x08",  # bad TIFF magic: SyntaxError
        # tag 0x0141 (a SHORT) holding ASCII "Cam": struct.error when written back
        b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x02\x01A\x00\x02\x00\x00\x00\x04Cam\x00"
        b"\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00\x00\x00\x00\x00",
    ],
)
def test_a_damaged_exif_block_is_dropped_with_a_note(tiny_model, image, exif):
    """Pillow's getexif() raised SyntaxError / struct.error out of compress (ncodec: exit 3)."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", exif=exif)
    photo = Image.open(io.BytesIO(buf.getvalue()))
    data, stats = neuralcodec.compress_with_stats(photo, 80, tiny_model)
    assert any("EXIF" in n for n in stats.notes)
    out = neuralcodec.decompress(data, model=tiny_model)
    assert out.size == (96, 64) and "exif" not in out.info


def test_a_tiffs_own_layout_tags_are_not_carried_as_exif(rgb):
    """Pillow reports a TIFF's IFD (strip offsets, sizes, sample format) as its EXIF."""
    from neuralcodec.image_modes import CONTAINER_LAYOUT_TAGS

    plain = io.BytesIO()
    rgb.save(plain, format="TIFF")
    assert prepare(Image.open(plain)).exif is None

    tagged = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "TestCam"  # Make: metadata of the picture, kept
    rgb.save(tagged, format="TIFF", exif=exif, compression="tiff_lzw")
    assert {273, 279} <= set(Image.open(tagged).getexif())  # what Pillow hands over
    carried = Image.Exif()
    carried.load(prepare(Image.open(tagged)).exif)
    assert carried[0x010F] == "TestCam" and not CONTAINER_LAYOUT_TAGS & set(carried)


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_an_animation_codes_its_first_frame_and_says_so(tmp_path, fmt):
    frames = [Image.new("RGB", (16, 8), (60 * i, 100, 200 - 60 * i)) for i in range(3)]
    path = tmp_path / f"anim.{fmt.lower()}"
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:], lossless=True)
    for source in (path, Image.open(path)):
        prepared = prepare(source)
        assert prepared.notes == ["the input has 3 frames (pages); only the first was coded"]
        assert tuple(prepared.rgb[4, 8]) == (0, 100, 200)
    assert prepare(frames[0]).notes == []


def test_decoded_images_save_with_their_metadata_and_a_fast_png_level():
    from neuralcodec.image_modes import PNG_COMPRESS_LEVEL, save_options

    image = Image.new("RGB", (4, 4))
    image.info.update({"icc_profile": b"icc", "exif": b"exif", "dpi": (72, 72)})
    assert save_options(image, "PNG") == {"icc_profile": b"icc", "exif": b"exif", "compress_level": 3}
    assert save_options(image, "jpeg") == {"icc_profile": b"icc", "exif": b"exif"}
    assert PNG_COMPRESS_LEVEL == 3


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
def test_pixel_array_strips_equal_whole_image(monkeypatch, mode):
    rng = np.random.default_rng(3)
    bands = len(mode)
    pixels = rng.integers(0, 256, (37, 23, bands), dtype=np.uint8)
    image = Image.fromarray(pixels.squeeze(2) if bands == 1 else pixels, mode)
    monkeypatch.setattr(image_modes, "STRIP_BYTES", 23 * bands * 5)  # 5 rows: 8 strips, the last of 2
    whole = np.asarray(image)
    assert np.array_equal(image_modes.pixel_array(image), whole)
    for band in range(bands):
        assert np.array_equal(image_modes.pixel_array(image, band), whole if bands == 1 else whole[..., band])
    if bands > 1:
        assert np.array_equal(image_modes.pixel_array(image, slice(0, bands - 1)), whole[..., :-1])
    prepared = prepare(image)
    assert prepared.rgb.flags.writeable and prepared.rgb.shape == (37, 23, 3)
    assert np.array_equal(prepared.rgb[..., 0], whole if bands == 1 else whole[..., 0])
    if mode.endswith("A"):
        assert np.array_equal(prepared.alpha, whole[..., -1])


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
def test_decoded_pixels_write_the_png_of_the_decoded_image(tiny_model, make_image, mode, monkeypatch):
    from neuralcodec.decoding import decompress_pixels

    source = Image.fromarray(make_image(40, 56, seed=5)).convert(mode)
    source.info["icc_profile"] = b"profile"
    pixels = decompress_pixels(neuralcodec.compress(source, 70, tiny_model, effort=0), model=tiny_model)
    image = pixels.image()
    assert image.mode == pixels.pil_mode == mode and image.size == pixels.size == (56, 40)
    assert np.array_equal(pixels.rows(0, 40), np.asarray(image))
    monkeypatch.setattr(image_modes, "STRIP_BYTES", 1)  # a row at a time
    out = io.BytesIO()
    pixels.save_png(out)
    written = Image.open(out)
    assert written.mode == mode and np.array_equal(np.asarray(written), np.asarray(image))
    assert written.info["icc_profile"] == image.info["icc_profile"] == b"profile"
