"""Format drift guard: a committed .nc must keep decoding to the committed pixels."""

from pathlib import Path

import numpy as np
from PIL import Image

import neuralcodec

FIXTURES = Path(__file__).parent / "fixtures"


def test_golden_file_decodes_to_the_same_pixels(tiny_model):
    data = (FIXTURES / "golden.nc").read_bytes()
    decoded = np.asarray(neuralcodec.decompress(data, model=tiny_model, device="cpu"), dtype=np.int16)
    expected = np.asarray(Image.open(FIXTURES / "golden.png"), dtype=np.int16)
    assert decoded.shape == expected.shape
    # The latents decode bit-exactly; the bf16 synthesis may move a pixel by a level or two.
    assert np.abs(decoded - expected).max() <= 2


def test_golden_header_fields_are_stable():
    header = neuralcodec.read_header((FIXTURES / "golden.nc").read_bytes()).header
    assert (header.width, header.height, header.model_name, header.quality) == (90, 70, "tiny", 60.0)
