"""Encode under one CPU configuration, decode under others: the latents must match bit for bit.

float32 convolutions differ between thread counts and instruction sets on this CPU; the
exact hyper-synthesis is what keeps the entropy coder's probabilities identical.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neuralcodec.zoo import WEIGHTS_DIR

# Results depend on the transforms' precision: every test runs in float32 and in bf16.
pytestmark = pytest.mark.usefixtures("transforms_precision")

WORKER = Path(__file__).parent / "determinism_worker.py"
THREADS = ["1", "2"]
# oneDNN and ATen for torch's convolutions; OpenBLAS's kernels for the numpy entropy parameters
# (exact integers in float64) and the numpy decoder.
ISAS = [
    {},
    {"ONEDNN_MAX_CPU_ISA": "AVX2", "OPENBLAS_CORETYPE": "Haswell"},
    {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "OPENBLAS_CORETYPE": "Nehalem"},
]
ISA_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "OPENBLAS_CORETYPE")
CONFIGS = [dict(isa, OMP_NUM_THREADS=t) for t in THREADS for isa in ISAS]


def run(env_extra: dict, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ISA_VARIABLES}
    env.update(env_extra)
    subprocess.run(
        [sys.executable, str(WORKER), *args], env=env, check=True, capture_output=True, timeout=300
    )


def model_under_test(tiny_model: Path) -> str:
    """The shipped default model when present (realistic scales), else the tiny fixture."""
    shipped = WEIGHTS_DIR / "msssim.pt"
    return str(shipped if shipped.exists() else tiny_model)


def test_positive_control_the_configurations_really_change_float32_results(tmp_path, tiny_model, make_image):
    """Without this, a matrix of identical environments would prove nothing."""
    model = model_under_test(tiny_model)
    np.save(tmp_path / "img.npy", make_image(96, 160, seed=11))
    outputs = []
    for i, config in enumerate(CONFIGS):
        run(config, "probe", model, str(tmp_path / "img.npy"), str(tmp_path / f"probe{i}.npz"))
        outputs.append(np.load(tmp_path / f"probe{i}.npz")["output"])
    distinct = {o.tobytes() for o in outputs}
    assert len(distinct) > 1, "every CPU configuration gave the same float32 bits"


@pytest.fixture(scope="module")
def checkerboard_model(tmp_path_factory, tiny_model) -> str:
    """The model under test with a random checkerboard context (exact integer parameters)."""
    from checkerboard_weights import write_checkerboard

    out = tmp_path_factory.mktemp("checkerboard") / "checkerboard.pt"
    return str(write_checkerboard(Path(model_under_test(tiny_model)), out, seed=7))


@pytest.mark.parametrize("architecture", ["hyperprior", "checkerboard"])
@pytest.mark.parametrize("encoder", [0, 4], ids=["enc-1thread-default", "enc-2threads-sse41"])
def test_decoded_latents_identical_across_threads_and_isas(
    tmp_path, tiny_model, checkerboard_model, make_image, encoder, architecture
):
    model = model_under_test(tiny_model) if architecture == "hyperprior" else checkerboard_model
    np.save(tmp_path / "img.npy", make_image(96, 160, seed=11))
    nc = tmp_path / "img.nc"
    run(CONFIGS[encoder], "encode", model, str(tmp_path / "img.npy"), str(nc))
    encoded = np.load(str(nc) + ".npz")["latents"]  # the ŷ the encoder coded
    results = []
    for i, config in enumerate(CONFIGS):
        out = tmp_path / f"dec{i}.npz"
        run(config, "decode", model, str(nc), str(out))
        results.append(np.load(out))
    for r in results:
        assert np.array_equal(r["latents"], encoded)  # every decoder rebuilds the encoder's ŷ exactly
    for r in results[1:]:
        diff = np.abs(r["pixels"].astype(int) - results[0]["pixels"].astype(int))
        assert diff.max() <= 8 and diff.mean() < 0.5
        numpy_diff = np.abs(r["numpy_pixels"].astype(int) - results[0]["numpy_pixels"].astype(int))
        assert numpy_diff.max() <= 1  # the numpy decoder: float32 g_s on any BLAS kernel
