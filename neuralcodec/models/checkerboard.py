"""The checkerboard context model as the codec runs it (registered as
``mean-scale-checkerboard``): the mean-scale hyperprior's transforms, exact h_s and tables, and
an exact context for the non-anchor latents. Loading, analysis, refinement and synthesis are the
hyperprior's; the latents are coded by its latent codec (neuralcodec.checkerboard_latents).

Refinement (effort > 0) scores latents with the hyperprior's rate, not with the context's, so it
can pick latents that the context codes worse: the encoder keeps, per image, whichever of the
refined and the single-pass latents gives the lower λ·D + bits/pixel with this model's real
bits, and the default effort of such models is 0 (``Architecture.refines_own_rate``).
"""

from __future__ import annotations

from functools import partial

import numpy as np
import torch

from neuralcodec.checkerboard_latents import CHECKERBOARD
from neuralcodec.models import mean_scale
from neuralcodec.models.interface import Architecture

load = partial(mean_scale.load, architecture=CHECKERBOARD)


def encode(
    model, x, quality: float, device="auto", effort: int = 0, progress=None, gray_output: bool = False
) -> list:
    """Analysis, then (``effort`` > 0) the hyperprior's latent refinement, then the checkerboard
    coding of each image's latents (neuralcodec.latent_codec.CodedLatents); with refinement, the
    cheaper of the refined and the single-pass coding by this model's objective."""
    from neuralcodec import codec, refine

    y, z = codec.analyse(model, x, quality, device)
    coder = model.latent_codec
    single = [
        coder.encode(y[i : i + 1].numpy(), z[i : i + 1].numpy(), keep_y_hat=bool(effort))
        for i in range(len(y))
    ]
    if not effort:
        return single
    y, z = refine.refine_latents(
        model, x, y.clone(), z.clone(), quality, effort, device, progress=progress, gray_output=gray_output
    )
    refined = [
        coder.encode(y[i : i + 1].numpy(), z[i : i + 1].numpy(), keep_y_hat=True) for i in range(len(y))
    ]
    objective = partial(_objective, model, quality=quality, device=device, gray_output=gray_output)
    return [
        r if objective(x[i : i + 1], r) <= objective(x[i : i + 1], s) else s
        for i, (s, r) in enumerate(zip(single, refined))
    ]


def _objective(model, x, coded, quality: float, device, gray_output: bool) -> float:
    """λ·D + bits/pixel of one image's coded latents, D of the pixels its file decodes to."""
    from neuralcodec import codec
    from neuralcodec.refinement.objective import Objective

    device = codec.resolve_device(device)
    if isinstance(x, np.ndarray):  # (1, H, W, 3) uint8
        x = torch.from_numpy(np.array(x)).permute(0, 3, 1, 2).float() / 255.0
    height, width = x.shape[2:]
    pixels = codec.synthesize(model, torch.from_numpy(coded.y_hat), quality, height, width, device)
    objective = Objective.at_level(
        model, codec.quality_to_level(model, quality), torch.device("cpu"), gray_output
    )
    shown = objective.shown(pixels.float() / 255.0)
    with torch.no_grad():
        distortion = float(objective.distortion(shown, x.float().cpu()))
    return objective.lmbda * distortion + coded.actual_bits / (height * width)


ARCHITECTURE = Architecture(CHECKERBOARD, load=load, encode=encode, refines_own_rate=False)
