"""decoding: which backend decodes what, with and without torch installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from neuralcodec import decoding
from neuralcodec.errors import DeviceUnavailableError
from neuralcodec.runtime import TorchRequiredError


@pytest.fixture(params=[True, False], ids=["with-torch", "without-torch"])
def torch_installed(request, monkeypatch) -> bool:
    monkeypatch.setattr(decoding, "torch_available", lambda: request.param)
    monkeypatch.setattr("neuralcodec.runtime.torch_available", lambda: request.param)
    return request.param


def test_auto_is_torch_where_installed_else_numpy(torch_installed):
    expected = "torch" if torch_installed else "numpy"
    assert decoding.choose_backend("auto", "auto", None) == expected
    assert decoding.choose_backend("auto", "cpu", Path("m.pt")) == expected
    assert decoding.choose_backend("numpy", "cpu", "mse") == "numpy"


def test_gpus_and_loaded_models_need_torch(torch_installed):
    for device, model in (("cuda", None), ("auto", object())):
        if torch_installed:
            assert decoding.choose_backend("auto", device, model) == "torch"
        else:
            with pytest.raises(TorchRequiredError):
                decoding.choose_backend("auto", device, model)


def test_the_numpy_backend_refuses_what_it_cannot_do(torch_installed):
    with pytest.raises(DeviceUnavailableError, match="CPU only"):
        decoding.choose_backend("numpy", "cuda")
    with pytest.raises(ValueError, match="loaded model"):
        decoding.choose_backend("numpy", "cpu", object())
    with pytest.raises(ValueError, match="unknown decoding backend"):
        decoding.choose_backend("onnx")
