"""The checkerboard context (He et al. 2021) in float (torch): the anchor pattern and the network
that gives non-anchor latents their entropy parameters from h_s's and the anchors' ŷ.

Training trains it (neuralcodec.training; neuralcodec.training.context_export turns a trained one
into the codec's integer form, neuralcodec.exact_context). Refinement runs the float form of a
shipped model's integer context (:func:`from_exact`) for its differentiable rate; the coder
never does: what decides the entropy coder's probabilities is the integer form.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from neuralcodec.exact_context import CheckerboardContext


def anchor_mask(height: int, width: int, device: torch.device | str | None = None) -> Tensor:
    """(1, 1, height, width) bool: True at anchors ((row + col) even), False at non-anchors."""
    rows = torch.arange(height, device=device)[:, None]
    cols = torch.arange(width, device=device)[None, :]
    return ((rows + cols) % 2 == 0)[None, None]


class FloatCheckerboardContext(nn.Module):
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


def dequantize_context(state: dict) -> dict[str, Tensor]:
    """A float context's state dict from a weights file's ``context_exact`` entry: w_int·2^-shift
    and b_int·2^-(shift + input bits) per output channel, exactly the numbers the codec computes
    with, so training can continue from a shipped checkerboard model."""
    context, layers = state["context"], list(state["layers"])

    def layer(d: dict, input_shift: int) -> tuple[Tensor, Tensor]:
        shift = torch.as_tensor(d["weight_shift"]).double()
        weight = torch.as_tensor(d["weight"]).double() * (2.0**-shift).view(-1, 1, 1, 1)
        bias = torch.as_tensor(d["bias"]).double() * 2.0 ** -(shift + input_shift)
        return weight.float(), bias.float()

    out = dict(zip(("context.weight", "context.bias"), layer(context, int(state["anchor_shift"]))))
    shift = int(state["param_shift"])
    for i, d in enumerate(layers):
        out[f"entropy_parameters.{2 * i}.weight"], out[f"entropy_parameters.{2 * i}.bias"] = layer(d, shift)
        shift = int(d["output_shift"])
    return out


def from_exact(exact: CheckerboardContext) -> FloatCheckerboardContext:
    """The float context whose weights are ``exact``'s dequantised (:func:`dequantize_context`);
    its outputs approximate the exact ones up to the fixed-point roundings of the activations.
    Three 1×1 layers, as built here, are required (ValueError otherwise)."""
    layers = exact.layers
    if len(layers) != 3:
        raise ValueError(f"a float context has 3 entropy-parameter layers, this one {len(layers)}")
    m = exact.context.weight.shape[1]
    hidden = (layers[0].weight.shape[0], layers[1].weight.shape[0])
    net = FloatCheckerboardContext(m, hidden, kernel=exact.context.weight.shape[2])
    net.load_state_dict(dequantize_context(exact.state()))
    return net
