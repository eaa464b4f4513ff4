"""neuralcodec.adam follows torch.optim.Adam step for step."""

import torch

from neuralcodec.adam import Adam


def _quadratic_run(make_optimizer, set_lr, steps: int = 25) -> torch.Tensor:
    gen = torch.Generator().manual_seed(3)
    target = torch.randn(4, 5, generator=gen)
    p = torch.zeros(4, 5, requires_grad=True)
    opt = make_optimizer(p)
    for i in range(steps):
        set_lr(opt, 0.05 * (1 - i / steps) + 0.01)
        loss = ((p - target) ** 2 * torch.arange(1, 6)).sum() + p.abs().sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return p.detach()


def test_matches_torch_adam_with_a_changing_learning_rate():
    def set_torch_lr(opt, lr):
        for group in opt.param_groups:
            group["lr"] = lr

    def set_own_lr(opt, lr):
        opt.lr = lr

    expected = _quadratic_run(lambda p: torch.optim.Adam([p], lr=0.05), set_torch_lr)
    got = _quadratic_run(lambda p: Adam([p], lr=0.05), set_own_lr)
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert not torch.equal(expected, torch.zeros(4, 5))  # it moved


def test_a_parameter_without_gradient_is_left_alone():
    a = torch.ones(3, requires_grad=True)
    b = torch.ones(3, requires_grad=True)
    opt = Adam([a, b], lr=0.1)
    (a * 2).sum().backward()
    opt.step()
    assert torch.equal(b.detach(), torch.ones(3))
    assert torch.all(a.detach() < 1)
