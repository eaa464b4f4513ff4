"""Tensor-level batch API: floats or uint8 in, uint8 out, on a chosen device."""

import numpy as np
import pytest
import torch

from neuralcodec import codec, runtime
from neuralcodec.zoo import load_model

# Results depend on the transforms' precision: every test runs in float32 and in bf16.
pytestmark = pytest.mark.usefixtures("transforms_precision")

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_batch_encode_decode_matches_single_images(tiny_model, make_image, device):
    model = load_model(tiny_model)
    images = np.stack([make_image(80, 112, seed=s) for s in range(3)])
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    batch = codec.encode_batch(model, x.to(device), 60, device)
    assert len(batch) == 3
    singles = [codec.encode_batch(model, images[i : i + 1], 60, device)[0] for i in range(3)]
    for b, s in zip(batch, singles):
        assert abs(b.actual_bits - s.actual_bits) <= 0.02 * s.actual_bits + 64
    out = codec.decode_batch(model, batch, 60, 80, 112, device)
    assert out.dtype == torch.uint8 and out.shape == (3, 3, 80, 112)


def test_quality_maps_linearly_onto_gain_levels(tiny_model):
    model = load_model(tiny_model)
    levels = model.config.levels - 1
    assert codec.quality_to_level(model, 0) == 0
    assert codec.quality_to_level(model, 100) == levels
    assert codec.quality_to_level(model, 50) == pytest.approx(levels / 2)


def test_unknown_device_is_a_clear_error():
    from neuralcodec.errors import DeviceUnavailableError

    with pytest.raises(DeviceUnavailableError):
        codec.resolve_device("tpu9")


@pytest.mark.parametrize(
    ("setting", "expected"), [("float32", "float32"), ("bf16", "bf16"), (" BF16 ", "bf16"), ("", None)]
)
def test_the_transforms_precision_follows_the_environment(monkeypatch, setting, expected):
    monkeypatch.setenv(runtime.TRANSFORMS_ENV, setting)
    automatic = "bf16" if codec.cpu_has_fast_bf16() else "float32"
    assert codec.transforms_precision(torch.device("cpu")) == (expected or automatic)
    with codec.fast_math(torch.device("cpu")):
        conv = torch.nn.functional.conv2d(torch.ones(1, 1, 3, 3), torch.ones(1, 1, 1, 1))
    assert conv.dtype == (torch.bfloat16 if (expected or automatic) == "bf16" else torch.float32)


def test_an_unknown_transforms_precision_is_refused_by_name(monkeypatch):
    from neuralcodec.errors import ConfigurationError

    monkeypatch.setenv(runtime.TRANSFORMS_ENV, "half")
    with pytest.raises(ConfigurationError, match="NEURALCODEC_TRANSFORMS='half'"):
        codec.transforms_precision(torch.device("cpu"))
