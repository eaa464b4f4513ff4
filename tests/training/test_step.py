"""One training step: both optimisers move their parameters, gradients are clipped, EMA follows."""

from __future__ import annotations

import torch

from neuralcodec.models.hyperprior import HyperpriorConfig
from neuralcodec.training.ema import ParameterEMA
from neuralcodec.training.model import TrainableHyperprior
from neuralcodec.training.step import GRAD_CLIP_NORM, Optimisers, training_step
from neuralcodec.training.train import main_parameter_names, split_parameters


def _setup(lr: float = 1e-3):
    torch.manual_seed(0)
    model = TrainableHyperprior(HyperpriorConfig(N=8, M=12, levels=3), bf16=False)
    main_params, aux_params = split_parameters(model)
    opts = Optimisers(torch.optim.SGD(main_params, lr=lr), torch.optim.SGD(aux_params, lr=lr))
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    return model, opts, x


def test_step_moves_both_parameter_groups_and_returns_the_loss_parts():
    model, opts, x = _setup()
    before_main = [p.detach().clone() for p in opts.main_params]
    before_aux = [p.detach().clone() for p in opts.aux_params]
    parts = training_step(model, model, x, torch.tensor([0.0, 2.0]), "mse", opts)
    assert {"loss", "bpp", "distortion"} <= set(parts)
    assert any(not torch.equal(a, p) for a, p in zip(before_main, opts.main_params))
    assert any(not torch.equal(a, p) for a, p in zip(before_aux, opts.aux_params))


def test_main_gradients_are_clipped():
    model, opts, x = _setup()
    training_step(model, model, 255 * x, torch.tensor([2.0, 2.0]), "mse", opts)  # huge distortion
    norm = torch.linalg.vector_norm(
        torch.stack([p.grad.norm() for p in opts.main_params if p.grad is not None])
    )
    assert norm <= GRAD_CLIP_NORM * (1 + 1e-4)


def test_ema_follows_the_step():
    model, opts, x = _setup(lr=1e-2)
    ema = ParameterEMA(model, 0.5, main_parameter_names(model))
    start = ema.state_dict()
    training_step(model, model, x, torch.tensor([1.0, 1.0]), "mse", opts, ema)
    moved = ema.state_dict()
    assert any(not torch.equal(start[n], moved[n]) for n in start)


def test_encoder_only_step_moves_the_encoder_and_nothing_the_decoder_uses():
    torch.manual_seed(0)
    model = TrainableHyperprior(HyperpriorConfig(N=8, M=12, levels=3), bf16=False)
    main_params, aux_params = split_parameters(model, "encoder")
    assert aux_params == []
    opts = Optimisers(torch.optim.SGD(main_params, lr=1e-3), None)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    training_step(model, model, x, torch.tensor([0.0, 2.0]), "mse", opts)
    trained = set(main_parameter_names(model, "encoder"))
    assert trained and all(
        n.startswith(("transforms.g_a.", "transforms.h_a.", "transforms.log_gain")) for n in trained
    )
    moved = {n for n, p in model.named_parameters() if not torch.equal(before[n], p)}
    assert moved and moved <= trained
