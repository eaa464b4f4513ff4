"""neuralcodec.training.context_export: the 8-bit integer context computes what the float one does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuralcodec.exact_context import anchor_mask
from neuralcodec.float_context import FloatCheckerboardContext
from neuralcodec.training.context_export import quantize_context

M = 12


@pytest.mark.parametrize("seed", [0, 1])
def test_integer_context_matches_the_float_one(seed):
    torch.manual_seed(seed)
    context = FloatCheckerboardContext(M, hidden=(32, 24)).eval()
    with torch.no_grad():
        context.entropy_parameters[-1].weight.normal_(0, 0.05)
        context.entropy_parameters[-1].bias.normal_(0, 0.1)
    params = torch.cat([torch.rand(1, M, 10, 14) * 4 + 0.2, torch.randn(1, M, 10, 14) * 2], dim=1)
    anchors = torch.round(torch.randn(1, M, 10, 14) * 5) + params[:, M:]
    exact = quantize_context(context, [(params, anchors)])
    with torch.no_grad():
        expected = context(params.double().float(), anchors).double()[0]
    non_anchor = ~anchor_mask(0, 10, 14)
    p = params.double().numpy()
    scales, means = exact(p[0, :M][:, non_anchor], p[0, M:][:, non_anchor], anchors.numpy(), 0, 10, 0)
    got = np.concatenate([scales, means])
    want = expected.numpy()[:, non_anchor]
    change = np.abs(want - p[0][:, non_anchor])  # what the context adds to the hyperprior's
    assert change.max() > 0.05  # the context does something here
    assert np.abs(got - want).max() < 0.02 * max(1.0, change.max())
