"""tools/train_throughput.py times every kind of setup it offers (host or device crops, fused Adam,
two models in one process) and refuses setups it does not know."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "train_throughput.py"
spec = importlib.util.spec_from_file_location("train_throughput", TOOL)
train_throughput = importlib.util.module_from_spec(spec)
sys.modules["train_throughput"] = train_throughput  # its dataclass looks itself up there
spec.loader.exec_module(train_throughput)


def table_rows(out: str) -> list[list[str]]:
    return [
        [c.strip() for c in line.strip("|").split("|")] for line in out.splitlines() if line.startswith("| ")
    ][1:]


def test_each_setup_gets_a_row_with_per_model_and_total_megapixels(capsys):
    train_throughput.main(
        ["--steps", "1", "--warmup", "0", "--setups", "fp32:64:1", "fp32:64:1:host", "fp32:64:1:device:fused"]
    )
    rows = table_rows(capsys.readouterr().out)
    assert [r[0] for r in rows] == ["fp32 1x64²", "fp32 1x64² host", "fp32 1x64² device fused"]
    assert all(float(r[3]) > 0 and r[3] == r[4] for r in rows)


def test_data_only_times_the_batches_of_both_models(capsys):
    train_throughput.main(
        ["--steps", "2", "--warmup", "1", "--data-only", "--setups", "fp32:64:2:device:pair"]
    )
    out = capsys.readouterr().out
    assert out.startswith("# data path alone")
    (row,) = table_rows(out)
    assert float(row[4]) == pytest.approx(2 * float(row[3]), rel=0.01)


@pytest.mark.parametrize("spec", ["fp16:64:1", "fp32:64:1:warp", "fp32:64:1:host:device"])
def test_unknown_setups_are_refused(spec):
    with pytest.raises(SystemExit):
        train_throughput.main(["--setups", spec])
