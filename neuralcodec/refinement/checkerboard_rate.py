"""A checkerboard context model's rate, for refinement (``CheckerboardRate``).

Anchors are coded with the hyperprior's parameters, as in ``HyperpriorRate``; non-anchors with
the context's, which read the window's anchors (neuralcodec.checkerboard_latents). So:

- **soft** (SGA): the anchors are softly rounded around h_s's means, the float context
  (neuralcodec.float_context, the shipped integer context's weights dequantised) reads them
  and gives the non-anchors' means and scales, and the non-anchors are softly rounded around
  those; bits are the discretised Gaussian's of each under its own parameters.
- **exact** (scoring): what the coder does, on the window: anchors rounded onto the exact h_s
  means' grid, the exact integer context over those ŷ, non-anchors rounded onto its means'
  grid; bits from the integer tables.

Moving an anchor moves the means of the non-anchors beside it, so a candidate's non-anchors
are re-rounded around their new means when it is scored (greedy rounding plans its moves as
if means stood still; the exact score decides).

The context reads only the window's anchors: where the window ends inside the image (large
images refine tile by tile), its outermost two latent rows and columns see zeros where the
image has anchors. A core lies at least a z position (4 latents) inside its window, so every
latent a core's y can reach is scored as the coder codes it; only when SGA moves the core's ẑ
(efforts 5 to 9), which moves h_s's parameters out to the window's edge, are those edge
latents' bits an approximation. Tile by tile, a core's anchors also re-round the non-anchors
up to 2 latents outside it, whose pixels the window scores only in part: "never worse" (see
neuralcodec.refine) then holds for each window's objective, not strictly for the image. An
image that refines in one window is scored exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from neuralcodec import quantisation
from neuralcodec.entropy_models import scale_indexes, table_bits
from neuralcodec.exact_context import anchor_mask
from neuralcodec.float_context import from_exact
from neuralcodec.models.loaded import LoadedModel
from neuralcodec.rate import gaussian_rate
from neuralcodec.refinement.geometry import Window
from neuralcodec.refinement.rate_model import ExactLatents, HyperpriorRate, HyperpriorWindowRate


class CheckerboardRate(HyperpriorRate):
    """The rate of a checkerboard model's latents (see the module docstring) on ``device``."""

    def __init__(self, model: LoadedModel, device: torch.device) -> None:
        super().__init__(model, device)
        self.context = model.latent_codec.context
        self.float_context = from_exact(self.context).to(device).eval().requires_grad_(False)

    def window(self, z: Tensor, window: Window) -> CheckerboardWindowRate:
        return CheckerboardWindowRate(self, window, z)


class CheckerboardWindowRate(HyperpriorWindowRate):
    """``CheckerboardRate`` of one window."""

    model: CheckerboardRate
    STREAMS_PER_BAND = 2  # each band's anchors, then its non-anchors

    def _anchor_pattern(self, rows: int, cols: int) -> np.ndarray:
        """(rows, cols) bool, True at the window's anchors. A window starts on a z position (a
        multiple of 4 latents in each direction), so its pattern is the image's, from (0, 0)."""
        assert self.window.win_y[0] % 2 == 0 and self.window.win_y[2] % 2 == 0
        return anchor_mask(0, rows, cols)

    def soft(self, z_core: Tensor, latents: Callable[[Tensor], Tensor]) -> tuple[Tensor, Tensor]:
        """Bits: the z tables' of ``z_core``, the anchors' under the float h_s's parameters and the
        non-anchors' under the float context's, which reads the softly rounded anchors."""
        params = self._soft_params(z_core)
        split = self.model.transforms.split_params
        mask = torch.from_numpy(self._anchor_pattern(*params.shape[2:])).to(params.device)
        anchors = latents(split(params)[1])
        scales, means = split(torch.where(mask, params, self.model.float_context(params, anchors)))
        y_hat = torch.where(mask, anchors, latents(means))
        bits = self.model.z_rate(z_core).sum() + gaussian_rate(y_hat - means, scales).sum()
        return y_hat, bits

    def exact(self, z_core: Tensor, y: Tensor) -> ExactLatents:
        model = self.model
        with torch.no_grad():
            z_hard = self._hard_z(z_core)
            hs_scales, hs_means, hs_index = self._exact_hyper(z_hard)
            y_np = y.cpu().double().numpy()
            is_anchor = self._anchor_pattern(*y_np.shape[2:])
            means, index = hs_means.numpy().copy(), hs_index.copy()
            k = np.zeros(y_np.shape, dtype=np.int64)
            y_hat = np.zeros(y_np.shape, dtype=np.float32)
            self._round_onto_grid(y_np, means, index, is_anchor, k, y_hat)
            # The non-anchors: the context's parameters, read from the anchors just rounded.
            non_anchor = ~is_anchor
            ctx_scales, ctx_means = model.context(
                hs_scales.numpy()[0][:, non_anchor],
                hs_means.numpy()[0][:, non_anchor],
                y_hat,
                0,
                y_hat.shape[2],
                0,
            )
            means[0][:, non_anchor] = ctx_means
            index[0][:, non_anchor] = scale_indexes(ctx_scales, model.scale_table)
            self._round_onto_grid(y_np, means, index, non_anchor, k, y_hat)
        k, index = k.ravel(), index.ravel()
        z_core_hard, z_bits = self._z_bits(z_hard)
        bits = z_bits + table_bits(k, index, model.y_tables)
        return ExactLatents(z_core_hard, k, index, torch.from_numpy(means), torch.from_numpy(y_hat), bits)

    def _round_onto_grid(
        self,
        y: np.ndarray,
        means: np.ndarray,
        index: np.ndarray,
        positions: np.ndarray,
        k: np.ndarray,
        y_hat: np.ndarray,
    ) -> None:
        """Round ``y`` at ``positions`` (rows, cols) onto its means' integer grid, within its
        tables (as the coder does): the symbols into ``k``, ŷ into ``y_hat``."""
        mu, table_of = means[0][:, positions], index[0][:, positions].ravel()
        symbols = quantisation.y_symbols(y[0][:, positions], mu, table_of, self.y_tables)
        k[0][:, positions] = symbols.reshape(mu.shape)
        y_hat[0][:, positions] = quantisation.dequantize(symbols, mu)
