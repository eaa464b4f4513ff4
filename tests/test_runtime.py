"""runtime: whether torch is installed (without importing it) and the precision asked for."""

from __future__ import annotations

import sys

import pytest

from neuralcodec import runtime
from neuralcodec.errors import ConfigurationError


def test_torch_available_follows_sys_modules(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # what `import torch` failing looks like
    assert not runtime.torch_available()
    with pytest.raises(runtime.TorchRequiredError, match="effort 3 needs torch.*pip install"):
        runtime.require_torch("effort 3")


def test_torch_available_finds_an_installed_torch_without_importing_it(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.setattr(runtime.importlib.util, "find_spec", lambda name: object())
    assert runtime.torch_available() and "torch" not in sys.modules
    monkeypatch.setattr(runtime.importlib.util, "find_spec", lambda name: None)
    assert not runtime.torch_available()


@pytest.mark.parametrize(("value", "expected"), [("", "auto"), (" BF16 ", "bf16"), ("float32", "float32")])
def test_requested_precision(monkeypatch, value, expected):
    monkeypatch.setenv(runtime.TRANSFORMS_ENV, value)
    assert runtime.requested_precision() == expected


def test_an_unknown_precision_is_a_configuration_error(monkeypatch):
    monkeypatch.setenv(runtime.TRANSFORMS_ENV, "half")
    with pytest.raises(ConfigurationError, match="half"):
        runtime.requested_precision()
