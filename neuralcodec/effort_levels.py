"""The encoder's effort levels, for the API and the command line alike.

Torch-free, so that ``ncodec`` can check ``--effort`` and print its help without importing
torch. Effort 0 is the single-pass encoder; 1..MAX_EFFORT refine the latents of each image
(neuralcodec.refine, one schedule per level).
"""

from __future__ import annotations

MAX_EFFORT = 9
DEFAULT_EFFORT: int | None = None  # None: each image's own (neuralcodec.api.default_effort)
# The effort an image that refines in one window gets when none is asked for, per distortion
# metric of its model: the best BD-rate whose encode stays within about 3 s per Kodak image
# (768 x 512) on two threads of a 2-core CPU.
DEFAULT_EFFORTS = {"mse": 2, "ms-ssim": 1}
