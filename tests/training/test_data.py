"""Training crops: the uint8 batches that travel to a GPU are exactly the float batches."""

import numpy as np
import pytest
import torch
from PIL import Image

from neuralcodec.training.data import InMemoryCrops, to_unit_float


@pytest.fixture
def photos(tmp_path, make_image):
    for i in range(2):
        Image.fromarray(make_image(80, 90, seed=i)).save(tmp_path / f"p{i}.png")
    return tmp_path


def test_uint8_batches_are_the_float_batches_before_scaling(photos):
    as_uint8 = InMemoryCrops(photos, 48, seed=3, progress=False).batch_uint8(4)
    as_float = InMemoryCrops(photos, 48, seed=3, progress=False).batch(4)
    assert as_uint8.dtype == torch.uint8 and as_uint8.shape == (4, 3, 48, 48)
    assert torch.equal(to_unit_float(as_uint8), as_float)
    assert 0.0 <= as_float.min() and as_float.max() <= 1.0


def test_crops_come_from_the_images(photos):
    crops = InMemoryCrops(photos, 80, seed=0, progress=False)
    batch = crops.batch_uint8(6).permute(0, 2, 3, 1).numpy()
    sources = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(photos.glob("*.png"))]
    for crop in batch:
        assert any(
            np.array_equal(crop, src[top : top + 80, left : left + 80])
            or np.array_equal(crop, src[top : top + 80, left : left + 80][:, ::-1])
            for src in sources
            for top in range(src.shape[0] - 79)
            for left in range(src.shape[1] - 79)
        )
