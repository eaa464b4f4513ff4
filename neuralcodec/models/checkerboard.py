"""The checkerboard context model as the codec runs it (registered as
``mean-scale-checkerboard``): the mean-scale hyperprior's transforms, exact h_s and tables, and
an exact context for the non-anchor latents. Loading, analysis and synthesis are the
hyperprior's; refinement (effort > 0) scores this architecture's own rate
(neuralcodec.refinement.checkerboard_rate); the latents are coded by its latent codec
(neuralcodec.checkerboard_latents).
"""

from __future__ import annotations

from functools import partial

from neuralcodec.checkerboard_latents import CHECKERBOARD
from neuralcodec.models import mean_scale
from neuralcodec.models.interface import Architecture

load = partial(mean_scale.load, architecture=CHECKERBOARD)


def encode(
    model, x, quality: float, device="auto", effort: int = 0, progress=None, gray_output: bool = False
) -> list:
    """Analysis, then (``effort`` > 0) latent refinement against the checkerboard's rate, then the
    checkerboard coding of each image's latents (neuralcodec.latent_codec.CodedLatents)."""
    from neuralcodec import codec, refine

    y, z = codec.analyse(model, x, quality, device)
    if effort:
        y, z = refine.refine_latents(
            model, x, y, z, quality, effort, device, progress=progress, gray_output=gray_output
        )
    coder = model.latent_codec
    # y is not needed after coding: ŷ may take its place
    return [coder.encode(y[i : i + 1].numpy(), z[i : i + 1].numpy(), overwrite_y=True) for i in range(len(y))]


ARCHITECTURE = Architecture(CHECKERBOARD, load=load, encode=encode)
