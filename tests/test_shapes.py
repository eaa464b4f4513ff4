"""Every image inside the documented limits round-trips, the extreme shapes included."""

import numpy as np
import pytest

import neuralcodec
from neuralcodec.container import MAX_SIDE, SectionType, band_count


def test_the_tallest_image_has_64_bands_and_fits_the_section_table():
    assert band_count(MAX_SIDE, 16) == 64  # 32x65535 once failed: 65 sections > the old limit of 64


@pytest.mark.parametrize(
    "height,width",
    [(1, 1), (1, 999), (999, 1), (MAX_SIDE, 32), (32, MAX_SIDE), (MAX_SIDE, 1), (1, MAX_SIDE)],
)
def test_extreme_shapes_round_trip(tiny_model, height, width):
    rng = np.random.default_rng(height * 7 + width)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    data = neuralcodec.compress(image, 40, tiny_model, "cpu")
    header = neuralcodec.read_header(data)
    assert len(header.section(SectionType.Y)) == band_count(height, 16)
    assert neuralcodec.decompress(data, "cpu", tiny_model).size == (width, height)
