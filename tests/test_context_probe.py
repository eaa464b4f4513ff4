"""neuralcodec.training.checkerboard: the checkerboard context probe on a tiny random model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from neuralcodec.float_context import FloatCheckerboardContext, anchor_mask
from neuralcodec.models.hyperprior import HyperpriorConfig
from neuralcodec.training.checkerboard import CheckerboardProbe, ProbeTrainer
from neuralcodec.training.model import TrainableHyperprior

M = 12


def tiny_probe(seed: int = 0) -> CheckerboardProbe:
    torch.manual_seed(seed)
    base = TrainableHyperprior(HyperpriorConfig(N=8, M=M, levels=3), bf16=False)
    return CheckerboardProbe(base, hidden=(16, 16))


def randomise_last_layer(context: FloatCheckerboardContext) -> None:
    with torch.no_grad():
        last = context.entropy_parameters[-1]
        last.weight.normal_(0, 0.1)
        last.bias.normal_(0, 0.1)


@pytest.mark.parametrize("shape", [(4, 6), (5, 7), (1, 1)])
def test_masks_partition_the_latents(shape):
    anchors = anchor_mask(*shape)
    non_anchors = ~anchors
    assert anchors.shape == (1, 1, *shape)
    assert not (anchors & non_anchors).any()
    assert (anchors | non_anchors).all()
    assert anchors.sum().item() == (shape[0] * shape[1] + 1) // 2
    if shape[1] > 1:  # horizontal neighbours never share a class
        assert not (anchors[..., :, 1:] == anchors[..., :, :-1]).any()
    if shape[0] > 1:
        assert not (anchors[..., 1:, :] == anchors[..., :-1, :]).any()


def test_context_sees_only_anchors():
    torch.manual_seed(1)
    context = FloatCheckerboardContext(M, hidden=(16, 16))
    randomise_last_layer(context)
    params = torch.randn(2, 2 * M, 6, 8)
    y_hat = torch.randn(2, M, 6, 8)
    anchors = anchor_mask(6, 8)
    changed = torch.where(anchors, y_hat, y_hat + 10 * torch.randn_like(y_hat))
    with torch.no_grad():
        before, after = context(params, y_hat), context(params, changed)
    non_anchor = (~anchors).expand_as(before)
    assert torch.equal(before[non_anchor], after[non_anchor])
    moved_anchor = torch.where(anchors, y_hat + 1.0, y_hat)  # the anchors do reach the non-anchors
    with torch.no_grad():
        assert not torch.equal(context(params, moved_anchor)[non_anchor], before[non_anchor])


def test_starts_at_the_hyperprior_exactly():
    context = FloatCheckerboardContext(M, hidden=(16, 16))
    params = torch.randn(2, 2 * M, 5, 7)
    with torch.no_grad():
        assert torch.equal(context(params, torch.randn(2, M, 5, 7)), params)
    probe = tiny_probe().eval()
    x, level = torch.rand(1, 3, 64, 64), torch.tensor([1.3])
    with torch.no_grad():
        base = probe(x, level, context=False, decode=True)
        ctx = probe(x, level, context=True, decode=True)
    for key in ("y_likelihoods", "z_likelihoods", "x_hat"):
        assert torch.equal(base[key], ctx[key])


def test_only_the_context_trains():
    probe = tiny_probe()
    frozen = {k: v.clone() for k, v in probe.base.state_dict().items()}
    trainer = ProbeTrainer(probe, lr=1e-2, warmup=1, levels=3)
    trainer.train_step(torch.rand(2, 3, 64, 64))
    trainer.train_step(torch.rand(2, 3, 64, 64))
    assert all(torch.equal(v, probe.base.state_dict()[k]) for k, v in frozen.items())
    assert probe.context.entropy_parameters[-1].weight.abs().sum() > 0


def test_checkpoint_round_trip_resumes_at_the_same_step(tmp_path: Path):
    first = ProbeTrainer(tiny_probe(), lr=1e-2, warmup=1, levels=3, crop_rng=np.random.default_rng(5))
    for _ in range(2):
        first.train_step(torch.rand(2, 3, 64, 64))
    first.history.append({"step": 2})
    path = tmp_path / "last.ckpt"
    first.save(path)

    second = ProbeTrainer(tiny_probe(seed=7), lr=1e-2, warmup=1, levels=3)
    assert second.resume(path)
    assert second.step == first.step == 2
    assert second.history == first.history
    assert second.crop_rng.integers(1 << 30) == first.crop_rng.integers(1 << 30)
    x = torch.rand(2, 3, 64, 64)
    second.probe.base.load_state_dict(first.probe.base.state_dict())  # the shipped weights, in a run
    torch.set_rng_state(torch.load(path, weights_only=False)["torch_rng"])
    first.train_step(x)
    torch.set_rng_state(torch.load(path, weights_only=False)["torch_rng"])
    second.train_step(x)
    for a, b in zip(first.probe.context.parameters(), second.probe.context.parameters()):
        assert torch.equal(a, b)
    assert not ProbeTrainer(tiny_probe()).resume(tmp_path / "missing.ckpt")
