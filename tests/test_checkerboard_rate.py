"""The checkerboard's rate for refinement (neuralcodec.refinement.checkerboard_rate): with a
zero context it is the hyperprior's, and its soft rate carries a move of an anchor into its
neighbours' bits, as the coder's context does."""

from __future__ import annotations

import pytest
import torch
from checkerboard_weights import write_checkerboard

from neuralcodec import codec, refine
from neuralcodec.refinement.checkerboard_rate import CheckerboardRate
from neuralcodec.refinement.rate_model import HyperpriorRate
from neuralcodec.zoo import load_model

QUALITY = 60
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def models(tiny_model, tmp_path_factory):
    """(the hyperprior, it with a zero context, it with a random context)."""
    folder = tmp_path_factory.mktemp("cb")
    zero = write_checkerboard(tiny_model, folder / "zero.pt", seed=1, zero_output=True)
    trained = write_checkerboard(tiny_model, folder / "random.pt", seed=2)
    return load_model(tiny_model), load_model(zero), load_model(trained)


def whole_window(model, image):
    """(y, ẑ symbols, the one window of the image) for ``image``."""
    y, z = codec.analyse(model, image[None], QUALITY, "cpu")
    (window,) = refine._windows(z.shape[2], z.shape[3], *image.shape[:2], refine.GREEDY_TILES)
    return y, z - codec.z_offsets(model).float(), window


def test_a_zero_context_scores_as_the_hyperprior(models, image):
    hyperprior, zero, _ = models
    y, z, window = whole_window(hyperprior, image)
    with torch.inference_mode(False):
        rates = [
            HyperpriorRate(hyperprior, CPU).window(z, window),
            CheckerboardRate(zero, CPU).window(z, window),
        ]
        exact = [r.exact(z[window.image_z_core], y[window.image_win_y]) for r in rates]
        assert exact[0].bits == exact[1].bits
        assert torch.equal(exact[0].y_hat, exact[1].y_hat) and (exact[0].k == exact[1].k).all()
        soft = [r.soft(z[window.image_z_core], lambda means: exact[0].y_hat)[1] for r in rates]
    assert float(soft[0]) == pytest.approx(float(soft[1]), rel=1e-6)


def test_the_soft_rate_of_an_anchor_reaches_its_neighbours(models, image):
    """d bits / d ŷ at the anchors: with a context the non-anchors' bits depend on the anchors,
    so it differs from the zero context's (the hyperprior's), which only sees each anchor's own
    bits; at the non-anchors, whose ŷ nothing reads, both are each latent's own bits' slope."""
    _, zero, random = models
    grads = []
    for model in (zero, random):
        y, z, window = whole_window(model, image)
        with torch.inference_mode(False):
            rate = CheckerboardRate(model, CPU).window(z, window)
            exact = rate.exact(z[window.image_z_core], y[window.image_win_y])
            leaf = exact.y_hat.clone().requires_grad_(True)
            _, bits = rate.soft(z[window.image_z_core], lambda means, leaf=leaf: leaf)
            (grad,) = torch.autograd.grad(bits, leaf)
        grads.append(grad)
    rows, cols = grads[0].shape[2:]
    anchors = ((torch.arange(rows)[:, None] + torch.arange(cols)[None, :]) % 2 == 0).expand_as(grads[0])
    own, with_context = grads[0][anchors], grads[1][anchors]
    assert (own - with_context).abs().max() > 0.1 * own.abs().max()
    assert grads[0][anchors].abs().sum() > 0 and grads[1][~anchors].abs().sum() > 0
