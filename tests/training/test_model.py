"""The training model's rate proxies: noise (CompressAI's) and the rounded latents the codec codes."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("compressai")

from neuralcodec.models.hyperprior import HyperpriorConfig  # noqa: E402
from neuralcodec.training.model import TrainableHyperprior  # noqa: E402


def _model(rate_proxy: str) -> TrainableHyperprior:
    torch.manual_seed(0)
    return TrainableHyperprior(
        HyperpriorConfig(N=8, M=12, levels=3), bf16=False, rate_proxy=rate_proxy
    ).train()


def test_round_proxy_scores_the_rounded_latents_and_trains_the_encoder_through_them():
    model = _model("round")
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    level = torch.tensor([0.0, 2.0])
    out = model(x, level)
    # The same forward without training noise (eval) differs only in how ẑ is rounded: CompressAI
    # rounds around its medians, the codec (and this proxy) to integers. Check against integers.
    t = model.transforms
    gain, _ = t.gains(level)
    with torch.no_grad():
        z = t.h_a(t.g_a(x) * gain)
        z_int = torch.round(z)
        lik, _, _ = model.entropy_bottleneck._likelihood(z_int.transpose(0, 1).reshape(8, 1, -1))
        expected = model.entropy_bottleneck.likelihood_lower_bound(lik).reshape(z.transpose(0, 1).shape)
    torch.testing.assert_close(out["z_likelihoods"].detach(), expected.transpose(0, 1))
    # Every y likelihood is that of an integer residual: the same on a second run (no noise).
    again = model(x, level)
    assert torch.equal(out["y_likelihoods"], again["y_likelihoods"])
    bits = -out["y_likelihoods"].log2().sum() - out["z_likelihoods"].log2().sum()
    bits.backward()
    assert t.g_a[0].weight.grad is not None and t.g_a[0].weight.grad.abs().sum() > 0
    assert t.h_a[0].weight.grad is not None and t.h_a[0].weight.grad.abs().sum() > 0


def test_noise_proxy_is_random_and_an_unknown_proxy_is_refused():
    model = _model("noise")
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    a, b = model(x, torch.tensor([1.0])), model(x, torch.tensor([1.0]))
    assert not torch.equal(a["y_likelihoods"], b["y_likelihoods"])
    with pytest.raises(ValueError, match="rate_proxy"):
        _model("jitter")
