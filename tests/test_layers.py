"""GDN / IGDN: the in-place inference path computes the textbook formula, bit for bit, and
training still gets gradients through it."""

from __future__ import annotations

import pytest
import torch

from neuralcodec.layers import GDN


def _reference(layer: GDN, x: torch.Tensor) -> torch.Tensor:
    beta, gamma = layer.effective_parameters()
    c = gamma.shape[0]
    norm = torch.nn.functional.conv2d(x * x, gamma.view(c, c, 1, 1), beta)
    return x * (torch.sqrt(norm) if layer.inverse else torch.rsqrt(norm))


def _layer(inverse: bool) -> GDN:
    torch.manual_seed(3)
    layer = GDN(8, inverse=inverse)
    with torch.no_grad():
        layer.gamma.add_(0.05 * torch.rand_like(layer.gamma))
        layer.beta.add_(0.1 * torch.rand_like(layer.beta))
    return layer


@pytest.mark.parametrize("inverse", [False, True])
def test_inference_matches_the_formula_exactly(inverse: bool) -> None:
    layer = _layer(inverse).requires_grad_(False)
    x = torch.randn(2, 8, 9, 7).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        expected = _reference(layer, x)
        assert torch.equal(layer(x), expected)
    with torch.inference_mode():
        assert torch.equal(layer(x), expected)


@pytest.mark.parametrize("inverse", [False, True])
def test_gradients_match_the_formula(inverse: bool) -> None:
    layer = _layer(inverse)
    x = torch.randn(2, 8, 9, 7, requires_grad=True)
    weights = torch.randn(2, 8, 9, 7)
    grads = torch.autograd.grad((layer(x) * weights).sum(), [x, layer.gamma, layer.beta])
    expected = torch.autograd.grad((_reference(layer, x) * weights).sum(), [x, layer.gamma, layer.beta])
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got, want)


def test_a_gradient_wrt_the_input_alone_flows_through_frozen_parameters() -> None:
    layer = _layer(True).requires_grad_(False)
    x = torch.randn(1, 8, 5, 5, requires_grad=True)
    (grad,) = torch.autograd.grad(layer(x).square().sum(), x)
    (want,) = torch.autograd.grad(_reference(layer, x).square().sum(), x)
    torch.testing.assert_close(grad, want)
