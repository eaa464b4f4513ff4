"""Training's entropy models: the shipped z tables come back from their own parameters, the
Gaussian charges what the codec's rate model charges, checkpoints of CompressAI's modules load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from neuralcodec.models.hyperprior import HyperpriorConfig
from neuralcodec.rate import gaussian_rate
from neuralcodec.training.entropy_models import FactorizedPrior, GaussianConditional
from neuralcodec.training.export import load_exported, z_offsets, z_tables
from neuralcodec.training.model import TrainableHyperprior

WEIGHTS = Path(__file__).resolve().parents[2] / "neuralcodec" / "weights"

# CompressAI's EntropyBottleneck(128) / GaussianConditional(None) state-dict names, as training
# checkpoints and weights files store them.
COMPRESSAI_BOTTLENECK_KEYS = {
    "quantiles",
    "target",
    "likelihood_lower_bound.bound",
    *(f"matrices.{i}" for i in range(5)),
    *(f"biases.{i}" for i in range(5)),
    *(f"factors.{i}" for i in range(4)),
}


@pytest.mark.parametrize("name", ["mse", "msssim"])
def test_shipped_z_tables_are_rebuilt_bit_for_bit_from_the_stored_prior(name):
    path = WEIGHTS / f"{name}.pt"
    if not path.exists():
        pytest.skip(f"no shipped {name} weights in this checkout")
    stored = torch.load(path, map_location="cpu", weights_only=True)
    model = TrainableHyperprior(HyperpriorConfig(**stored["config"]), bf16=False).eval()
    load_exported(model, path)
    offsets = z_offsets(model)
    assert torch.equal(offsets.to(stored["z_offsets"].dtype), stored["z_offsets"])
    tables = z_tables(model, offsets)
    for key in ("counts", "lengths", "offsets"):
        assert np.array_equal(np.asarray(getattr(tables, key)), np.asarray(stored["z_tables"][key])), key


def test_state_dict_names_are_compressais_and_its_coder_caches_are_ignored():
    prior = FactorizedPrior(128)
    assert set(prior.state_dict()) == COMPRESSAI_BOTTLENECK_KEYS
    legacy = {k: v.clone() + 0.25 for k, v in prior.state_dict().items()}
    legacy |= {
        "_offset": torch.zeros(128, dtype=torch.int32),
        "_quantized_cdf": torch.zeros(128, 9, dtype=torch.int32),
    }
    legacy["_cdf_length"] = torch.zeros(128, dtype=torch.int32)
    again = FactorizedPrior(128)
    again.load_state_dict(legacy)  # strict: only the coder caches may be left out
    assert torch.equal(again.quantiles, legacy["quantiles"])
    gaussian = GaussianConditional()
    gaussian.load_state_dict(
        {**gaussian.state_dict(), "scale_table": torch.tensor([]), "_offset": torch.zeros(1)}
    )
    with pytest.raises(RuntimeError):
        again.load_state_dict({**legacy, "matrices.5": torch.zeros(1)})


def test_gaussian_charges_what_the_codec_rate_model_charges():
    torch.manual_seed(0)
    gaussian = GaussianConditional().eval()
    # float64: in float32, ndtr loses the far tails that erfc keeps.
    y = torch.randn(2, 4, 8, 8, dtype=torch.float64) * 6
    means = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    scales = torch.rand(2, 4, 8, 8, dtype=torch.float64) * 4 + 0.05
    y_hat, likelihood = gaussian(y, scales, means)
    assert torch.allclose(y_hat - means, torch.round(y - means), atol=1e-5)
    bits = -torch.log2(likelihood).flatten(1).sum(1)
    assert torch.allclose(bits, gaussian_rate(y_hat - means, scales), rtol=1e-9)


def test_training_adds_noise_within_half_a_bin_and_evaluation_rounds_around_the_median():
    torch.manual_seed(1)
    prior = FactorizedPrior(3)
    with torch.no_grad():
        prior.quantiles[:, 0, 1] = torch.tensor([0.3, -0.2, 0.0])
    z = torch.randn(2, 3, 4, 5) * 3
    noisy, likelihood = prior.train()(z)
    assert noisy.shape == z.shape == likelihood.shape
    assert 0 < float((noisy - z).abs().max()) <= 0.5
    rounded, _ = prior.eval()(z)
    medians = prior.quantiles[:, 0, 1].view(1, 3, 1, 1)
    assert torch.allclose(rounded - medians, torch.round(z - medians), atol=1e-6)
    assert bool(((likelihood > 0) & (likelihood <= 1)).all())


def test_auxiliary_loss_trains_only_the_quantiles():
    prior = FactorizedPrior(4)
    prior.loss().backward()
    assert prior.quantiles.grad is not None and float(prior.quantiles.grad.abs().sum()) > 0
    assert all(p.grad is None for n, p in prior.named_parameters() if n != "quantiles")
