"""Training crops: the uint8 batches that travel to a GPU are exactly the float batches; crops cut
on the training device come from the pack, flipped or not, repeatably."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from neuralcodec.training.data import DeviceCrops, InMemoryCrops, read_pack, to_unit_float, write_pack


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


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture
def pack(tmp_path, photos):
    path = tmp_path / "pack.npz"
    write_pack(photos, path, count=5, size=64, quality=95, seed=1, progress=False)
    return path


@pytest.mark.parametrize("device", DEVICES)
def test_device_crops_are_windows_of_the_stored_crops_flipped_or_not(pack, device):
    crops = DeviceCrops(pack, 40, device, seed=2, progress=False)
    stored = crops.pixels.permute(0, 1, 3, 2).cpu().numpy()  # (K, S, 3, S) -> (K, S, S, 3)
    assert crops.pixels.dtype == torch.uint8 and crops.pixels.shape == (5, 64, 3, 64)
    batch = crops.batch_uint8(8)
    assert batch.dtype == torch.uint8 and batch.shape == (8, 3, 40, 40) and batch.device.type == device
    batch = batch.cpu()
    flipped = 0
    for crop in batch.permute(0, 2, 3, 1).numpy():
        windows = [
            (src[t : t + 40, s : s + 40], src[t : t + 40, s : s + 40][:, ::-1])
            for src in stored
            for t in range(25)
            for s in range(25)
        ]
        assert any(
            np.array_equal(crop, plain) or np.array_equal(crop, mirrored) for plain, mirrored in windows
        )
        flipped += not any(np.array_equal(crop, plain) for plain, _ in windows)
    assert 0 < flipped < 8  # both orientations drawn (seeded)


def test_device_crops_repeat_with_the_seed_and_calibration_leaves_the_stream_alone(pack):
    a = DeviceCrops(pack, 32, seed=5, progress=False)
    b = DeviceCrops(pack, 32, seed=5, progress=False)
    assert torch.equal(a.calibration_uint8(4), b.calibration_uint8(4))
    a.calibration_uint8(4)  # an extra fixed draw does not shift the training stream
    assert torch.equal(a.batch_uint8(3), b.batch_uint8(3))
    assert not torch.equal(a.batch_uint8(3), DeviceCrops(pack, 32, seed=6, progress=False).batch_uint8(3))


@pytest.mark.parametrize("device", DEVICES)
def test_rescaled_device_crops_keep_the_crop_size_and_the_pixel_range(pack, device):
    crops = DeviceCrops(pack, 32, device, seed=0, progress=False, rescale=0.5)
    for _ in range(4):
        batch = crops.batch_uint8(3)
        assert batch.shape == (3, 3, 32, 32) and batch.dtype == torch.uint8
    with pytest.raises(ValueError, match="rescale"):
        DeviceCrops(pack, 32, progress=False, rescale=0.0)


def test_device_crops_of_a_folder_hold_one_crop_per_photo(photos):
    crops = DeviceCrops(photos, 48, seed=0, progress=False)
    assert len(crops) == 2 and crops.side == 80  # the shortest side of the photos


@pytest.mark.parametrize("fmt, lossless", [("jpeg", False), ("webp", False), ("png", True)])
def test_packs_store_crops_at_several_scales_and_report_their_fidelity(photos, tmp_path, fmt, lossless):
    psnrs: list[float] = []
    pack = tmp_path / f"{fmt}.npz"
    write_pack(
        photos,
        pack,
        count=6,
        size=40,
        quality=95,
        seed=3,
        progress=False,
        fmt=fmt,
        scales=(1.0, 0.5),
        psnrs=psnrs,
    )
    crops = read_pack(pack)
    assert len(crops) == len(psnrs) == 6 and all(c.shape == (40, 40, 3) for c in crops)
    assert all(np.isinf(p) for p in psnrs) if lossless else all(15 < p < 80 for p in psnrs)
    with np.load(pack) as stored:
        meta = json.loads(str(stored["meta"]))
    assert meta["format"] == fmt and meta["scales"] == [1.0, 0.5] and meta["seed"] == 3
