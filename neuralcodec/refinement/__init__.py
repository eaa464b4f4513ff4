"""How latent refinement works (``effort`` 1..9; the entry point is neuralcodec.refine).

The analysis transform g_a is amortised: one pass guesses latents for any image. Here the
latents y and z of the one image being coded are optimised against the model's own
rate–distortion objective at the λ of the chosen quality,

    J = λ·D(x, g_s(ŷ·inverse_gain)) + (bits(ẑ) + bits(ŷ | ẑ)) / pixels,

D = MSE·255² for "mse" models and 1 − MS-SSIM for "ms-ssim" models (neuralcodec.msssim),
measured on the image as it will be shown: for a grayscale file (``gray_output``) that is the
rounded mean of the decoded channels, which is all the decoder outputs,
with stochastic Gumbel annealing (SGA, Yang, Bamler & Mandt 2020): each latent is softly
rounded to floor or ceil of its residual by a Gumbel-softmax whose temperature is annealed
towards hard rounding, and Adam follows the gradient. Then rounds of greedy rounding
(neuralcodec.greedy_rounding) move single residuals of ŷ to the neighbouring integer where a
quadratic model of J, from one gradient and a curvature estimate, predicts a drop; efforts 1
to 4 are greedy rounding alone (one, two, four and eight rounds). Rates: z under the model's integer z
tables (neuralcodec.rate.ZTableRate, exact at integers), y under the discretised Gaussian
whose means and scales come from the float h_s. Every candidate (SGA's at its checkpoints,
each greedy round's) is scored exactly, with hard rounding, the exact means and the integer
tables' bits, and the best, the start included, is kept.

The modules, each with one job:

- ``schedule``: what each effort runs (``Schedule``, ``SCHEDULES``).
- ``geometry``: where a window lies and how an image is cut into windows (``Window``).
- ``objective``: g_s as the decoder runs it, λ, and D of the pixels as shown (``Objective``).
- ``rate_model``: what refinement needs from a model's entropy model, the soft and the exact
  rate of a window's latents (``RateModel``; ``HyperpriorRate``, the mean-scale hyperprior's).
- ``checkerboard_rate``: a checkerboard context model's rate (``CheckerboardRate``).
- ``rate_models``: which rate each architecture refines against (``rate_model_of``).
- ``sga``: SGA's soft rounding and its noise.
- ``window``: one window's refinement, its state and steps (``WindowRefinement``).
"""
