"""Shared fixtures: a tiny committed model and generated images (no real photos needed)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(FIXTURES))

from make_fixtures import synthetic_image  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"

# Subprocess tests (CLI, determinism, memory) must import this checkout's package, not whatever
# an earlier `pip install -e` of another checkout left on the path.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
# Nor may they find decoders in the user's own weights folder (zoo.weights_search_path): none.
os.environ["NEURALCODEC_WEIGHTS"] = ""


@pytest.fixture(params=["float32", "bf16"])
def transforms_precision(request, monkeypatch) -> str:
    """The test once with the conv transforms forced to float32 and once to bf16
    (NEURALCODEC_TRANSFORMS, inherited by subprocesses): CPUs with AMX or AVX512-BF16 run bf16
    by default and the others float32, so both paths are covered on any machine. Modules whose
    results depend on the precision use it (``pytestmark = pytest.mark.usefixtures(...)``)."""
    monkeypatch.setenv("NEURALCODEC_TRANSFORMS", request.param)
    return request.param


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    """A 16/24-channel random-init model: exercises every code path in milliseconds."""
    return FIXTURES / "tiny.pt"


@pytest.fixture(scope="session", params=["tiny.pt", "tiny-offsets.pt"])
def tiny_models(request) -> Path:
    """tiny.pt, then tiny-offsets.pt: the same network, its ẑ on the integers (weights format 1)
    and on a grid offset per channel (format 2)."""
    return FIXTURES / request.param


@pytest.fixture(scope="session", params=["tiny.pt", "tiny-offsets.pt", "checkerboard"])
def tiny_architectures(request, tmp_path_factory) -> Path:
    """``tiny_models``' two hyperpriors, then tiny-offsets.pt with a seeded random checkerboard
    context: small models of each built-in architecture."""
    if request.param != "checkerboard":
        return FIXTURES / request.param
    from checkerboard_weights import write_checkerboard

    out = tmp_path_factory.mktemp("cb") / "cb.pt"
    return write_checkerboard(FIXTURES / "tiny-offsets.pt", out, seed=5)


@pytest.fixture
def image() -> np.ndarray:
    return synthetic_image(64, 96, seed=1)


@pytest.fixture
def make_image():
    return synthetic_image


@pytest.fixture(scope="session")
def kodak_dir() -> Path:
    path = SHARED / "kodak"
    if not path.is_dir():
        pytest.skip(f"real photos not available: {path} is absent (a fresh clone has no ../shared)")
    return path
