"""The checkerboard context (He et al. 2021) in float, for training: the anchor pattern and the
network that gives non-anchor latents their entropy parameters from h_s's and the anchors' ŷ.
neuralcodec.training.context_export turns a trained one into the codec's integer form
(neuralcodec.exact_context)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def anchor_mask(height: int, width: int, device: torch.device | str | None = None) -> Tensor:
    """(1, 1, height, width) bool: True at anchors ((row + col) even), False at non-anchors."""
    rows = torch.arange(height, device=device)[:, None]
    cols = torch.arange(width, device=device)[None, :]
    return ((rows + cols) % 2 == 0)[None, None]


class CheckerboardContext(nn.Module):
    """Non-anchor entropy parameters from the hyperprior's parameters and the anchors' ŷ.

    ``forward(params, y_hat)`` returns parameters shaped like ``params`` (scales ‖ means, 2M
    channels). Guarantees: its value at a non-anchor depends on ``y_hat`` only through the
    anchors (non-anchor entries of ``y_hat`` are zeroed before the context convolution), and
    while the last layer is zero (as initialised) it returns ``params`` exactly.
    """

    def __init__(self, M: int, hidden: tuple[int, int] | None = None, kernel: int = 5) -> None:
        super().__init__()
        h1, h2 = hidden if hidden is not None else (M * 10 // 3, M * 8 // 3)
        self.M = M
        self.context = nn.Conv2d(M, 2 * M, kernel, padding=kernel // 2)
        self.entropy_parameters = nn.Sequential(
            nn.Conv2d(4 * M, h1, 1),
            nn.LeakyReLU(inplace=True),
            nn.Conv2d(h1, h2, 1),
            nn.LeakyReLU(inplace=True),
            nn.Conv2d(h2, 2 * M, 1),
        )
        last = self.entropy_parameters[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, params: Tensor, y_hat: Tensor) -> Tensor:
        anchors = anchor_mask(y_hat.shape[2], y_hat.shape[3], y_hat.device)
        ctx = self.context(y_hat * anchors)
        return params + self.entropy_parameters(torch.cat([params, ctx], dim=1)).float()
