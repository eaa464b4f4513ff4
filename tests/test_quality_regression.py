"""Each shipped model still performs as its model card says on the bundled example.

A weights commit that loses quality (or a codec change that costs bits) fails here: the card's
"Bundled example" table (float32 transforms) is re-measured with the same code
(tools/model_card.py) in float32 and in bf16.
"""

import importlib.util

import pytest

from neuralcodec.zoo import WEIGHTS_DIR, available_models

REPO = WEIGHTS_DIR.parents[1]
# (bpp relative, PSNR dB, MS-SSIM) tolerances against the card's float32 numbers. float32 differs
# across instruction sets and thread counts only in the last bits; bf16 transforms cost up to
# 0.15 dB PSNR on this image (mse at quality 75).
TOLERANCES = {"float32": (0.01, 0.03, 0.0005), "bf16": (0.02, 0.25, 0.002)}


def model_card_tool():
    spec = importlib.util.spec_from_file_location("model_card", REPO / "tools" / "model_card.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def card_rows(name: str) -> dict[int, tuple[float, float, float]]:
    """quality -> (bpp, PSNR, MS-SSIM) from the card's bundled-example table."""
    tool = model_card_tool()
    text = (WEIGHTS_DIR / f"{name}.md").read_text()
    assert tool.EXAMPLE_HEADING in text, f"{name}.md has no bundled-example table: run tools/model_card.py"
    section = text.split(tool.EXAMPLE_HEADING, 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 4 and cells[0].isdigit():
            rows[int(cells[0])] = tuple(float(c) for c in cells[1:])
    return rows


@pytest.mark.parametrize("precision", sorted(TOLERANCES))
@pytest.mark.parametrize("name", available_models())
def test_shipped_model_matches_its_card_on_the_bundled_example(name, precision):
    bpp_rtol, psnr_db, msssim_abs = TOLERANCES[precision]
    expected = card_rows(name)
    measured = model_card_tool().example_rows(WEIGHTS_DIR / f"{name}.pt", precision)
    assert sorted(expected) == [q for q, *_ in measured]
    for q, bpp, psnr, msssim in measured:
        card_bpp, card_psnr, card_msssim = expected[q]
        assert bpp == pytest.approx(card_bpp, rel=bpp_rtol), f"{name} q{q} bpp ({precision})"
        assert psnr == pytest.approx(card_psnr, abs=psnr_db), f"{name} q{q} PSNR ({precision})"
        assert msssim == pytest.approx(card_msssim, abs=msssim_abs), f"{name} q{q} MS-SSIM ({precision})"
