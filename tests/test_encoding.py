"""encoding: without torch, effort 0 on the CPU from a model's name or file, and nothing more."""

from __future__ import annotations

import pytest

from neuralcodec import encoding
from neuralcodec.runtime import TorchRequiredError


def test_everything_passes_where_torch_is_installed(monkeypatch):
    monkeypatch.setattr(encoding, "torch_available", lambda: True)
    encoding.check_encoder("cuda", 9, True, object())


@pytest.mark.parametrize(
    ("device", "effort", "target", "model", "needs"),
    [
        ("cuda", 0, False, None, "compressing on 'cuda'"),
        ("auto", 0, True, None, "a size, PSNR or MS-SSIM target"),
        ("cpu", 2, False, "mse", "effort 2"),
        ("auto", 0, False, object(), "a loaded torch model"),
    ],
)
def test_what_needs_torch_is_named(monkeypatch, device, effort, target, model, needs):
    monkeypatch.setattr(encoding, "torch_available", lambda: False)
    with pytest.raises(TorchRequiredError, match=needs):
        encoding.check_encoder(device, effort, target, model)


@pytest.mark.parametrize("effort", [None, 0])
def test_effort_0_and_the_default_need_no_torch(monkeypatch, effort):
    monkeypatch.setattr(encoding, "torch_available", lambda: False)
    encoding.check_encoder("auto", effort, False, "mse")
