"""tools/gpu_chunk.sh refuses a model it does not know before it starts anything."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "gpu_chunk.sh"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_unknown_models_are_refused_with_exit_2(tmp_path):
    env = {**os.environ, "MODELS": "mse nosuch", "OUT": str(tmp_path / "out")}
    done = subprocess.run(
        ["bash", str(SCRIPT), "1", "1e-4", "1e-5", "1"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "unknown model 'nosuch'" in done.stderr
    assert not (tmp_path / "out").exists()  # nothing started, nothing written
