"""The numpy hyper-synthesis gives, bit for bit, the scales and means of the torch one (the
numbers that decide the entropy coder's probabilities), without importing torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neuralcodec import codec, exact, exact_numpy, numpy_conv
from neuralcodec.zoo import available_models, load_model


@pytest.mark.parametrize(
    ("stride", "padding", "kernel"), [(1, 1, 3), (2, 2, 5), (1, 0, 3), (2, 1, 3), (3, 1, 2), (2, 0, 1)]
)
def test_integer_convolutions_equal_torchs_exactly(stride, padding, kernel):
    rng = np.random.default_rng(stride * 10 + padding)
    x = rng.integers(0, 2**20, (1, 7, 9, 11)).astype(np.float64)
    weight = rng.integers(-(2**14) + 1, 2**14, (5, 7, kernel, kernel)).astype(np.float64)
    bias = rng.integers(-(2**30), 2**30, 5).astype(np.float64)
    expected = F.conv2d(*map(torch.from_numpy, (x, weight, bias)), stride=stride, padding=padding)
    assert np.array_equal(numpy_conv.conv2d(x, weight, bias, stride, padding), expected.numpy())
    weight_t = np.ascontiguousarray(weight.transpose(1, 0, 2, 3))  # (C_in, C_out, k, k)
    bias_t = bias[:7]
    for output_padding in range(stride):
        expected = F.conv_transpose2d(
            *map(torch.from_numpy, (x[:, :5], weight_t[:5, :7], bias_t)),
            stride=stride,
            padding=padding,
            output_padding=output_padding,
        )
        for method in (numpy_conv.conv_transpose2d_by_phase, numpy_conv.conv_transpose2d_by_tap):
            got = method(x[:, :5], weight_t[:5, :7], bias_t, stride, padding, output_padding)
            assert np.array_equal(got, expected.numpy()), method.__name__


def _numpy_twin(model) -> exact_numpy.HyperSynthesis:
    state = [{k: v.numpy() for k, v in layer.items()} for layer in model.hyper_synthesis.state_dict()]
    return exact_numpy.HyperSynthesis.from_state(state, model.hyper_synthesis.input_shift)


def _models(tiny_models) -> list:
    return [load_model(tiny_models)] + [load_model(name) for name in available_models()]


def test_scales_and_means_are_bit_identical_on_real_and_extreme_latents(tiny_models, make_image):
    for model in _models(tiny_models):
        numpy_hs = _numpy_twin(model)
        y, z = codec.analyse(model, make_image(128, 192, seed=2)[None], 70, "cpu")
        rows, cols = z.shape[2:]
        tables = model.z_tables
        rng = np.random.default_rng(0)
        low = tables.offsets[:, None]
        high = (tables.offsets + tables.lengths - 1)[:, None]
        extremes = rng.choice([0, 1], (model.config.N, rows * cols)) * (high - low) + low  # table ends
        for symbols in (codec.z_symbols(model, z), extremes.flatten()):
            z_hat = codec.z_values(model, symbols, rows, cols)
            scales, means = model.hyper_synthesis._compute(z_hat)
            got_scales, got_means = numpy_hs(z_hat.numpy())
            assert np.array_equal(got_scales, scales.numpy()), model.name
            assert np.array_equal(got_means, means.numpy()), model.name


def test_the_constants_are_the_torch_modules_and_importing_needs_no_torch():
    assert (exact.ACTIVATION_MAX, exact.MAX_TAPS) == (exact_numpy.ACTIVATION_MAX, exact_numpy.MAX_TAPS)
    code = "import sys, neuralcodec.exact_numpy; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
