"""One process, many threads: concurrent calls give exactly what sequential calls give."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from PIL import Image

import neuralcodec
from neuralcodec.zoo import load_model


def test_concurrent_compress_and_decompress_match_sequential(tiny_model, make_image):
    images = [make_image(70 + 13 * i, 90 + 7 * i, seed=i) for i in range(6)]
    qualities = [10, 30, 50, 70, 90, 100]
    sequential = [neuralcodec.compress(im, q, tiny_model, "cpu") for im, q in zip(images, qualities)]
    decoded = [np.asarray(neuralcodec.decompress(d, "cpu", tiny_model)) for d in sequential]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(2):
            streams = list(
                pool.map(
                    lambda a: neuralcodec.compress(a[0], a[1], tiny_model, "cpu"), zip(images, qualities)
                )
            )
            assert streams == sequential
            pixels = list(
                pool.map(lambda d: np.asarray(neuralcodec.decompress(d, "cpu", tiny_model)), sequential)
            )
            assert all(np.array_equal(p, q) for p, q in zip(pixels, decoded))


def test_library_calls_leave_pillows_global_limit_alone(tmp_path, tiny_model, make_image, monkeypatch):
    path = tmp_path / "photo.png"
    Image.fromarray(make_image(64, 64)).save(path)
    before, seen = Image.MAX_IMAGE_PIXELS, []
    real_open = Image.open

    def spying_open(*args, **kwargs):
        seen.append(Image.MAX_IMAGE_PIXELS)  # what another thread would see during the call
        return real_open(*args, **kwargs)

    monkeypatch.setattr(Image, "open", spying_open)
    neuralcodec.compress(path, 50, tiny_model, "cpu")
    assert seen and set(seen) == {before}
    assert Image.MAX_IMAGE_PIXELS == before


def test_other_devices_get_a_copy_and_the_shared_cpu_model_never_moves(tiny_model):
    model = load_model(tiny_model)
    cpu = model.transforms_on(torch.device("cpu"))
    assert cpu is model.transforms
    meta = model.transforms_on(torch.device("meta"))  # any non-CPU device
    assert meta is not model.transforms and meta is model.transforms_on(torch.device("meta"))
    assert all(p.device.type == "cpu" for p in model.transforms.parameters())
    assert all(p.device.type == "meta" for p in meta.parameters())


def test_device_copies_made_inside_inference_mode_can_be_refined(tiny_model):
    """encode runs under inference_mode; refinement (effort > 0) differentiates through the copy.

    On CUDA a copy made as an inference tensor failed with "Inference tensors cannot be saved
    for backward"; meta stands in for any non-CPU device here.
    """
    model = load_model(tiny_model)
    with torch.inference_mode():
        copy = model.transforms_on(torch.device("meta"))
    assert not any(p.is_inference() for p in copy.parameters())
    assert not any(b.is_inference() for b in copy.buffers())
