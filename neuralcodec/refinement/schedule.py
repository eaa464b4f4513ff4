"""What each effort level runs: SGA iterations, then rounds of greedy rounding (``Schedule``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SGA_DEFAULTS = {"lr": 0.015, "tau_start": 0.5, "tau_end": 0.1}


@dataclass(frozen=True)
class Schedule:
    """What one effort runs: ``iterations`` of SGA, then ``greedy_rounds`` rounds of greedy
    rounding (neuralcodec.greedy_rounding).

    ``lr`` (Adam's constant learning rate) and ``tau_start`` / ``tau_end`` (the SGA temperature,
    annealed geometrically from one to the other) drive the SGA iterations: where there are
    some, those not given take ``SGA_DEFAULTS``; where there are none they are None, and giving
    one is a ValueError.
    """

    iterations: int
    lr: float | None = None
    tau_start: float | None = None
    tau_end: float | None = None
    greedy_rounds: int = 0

    def __post_init__(self) -> None:
        for name, default in SGA_DEFAULTS.items():
            if not self.iterations and getattr(self, name) is not None:
                raise ValueError(f"{name} applies to SGA iterations, and this schedule runs none")
            if self.iterations and getattr(self, name) is None:
                object.__setattr__(self, name, default)

    def temperature(self, iteration: int) -> float:
        """The SGA temperature of ``iteration`` (0-based): ``tau_start`` at the first,
        ``tau_end`` at the last, geometric in between."""
        assert self.tau_start is not None and self.tau_end is not None, "a schedule without SGA"
        frac = iteration / max(1, self.iterations - 1)
        return self.tau_start * (self.tau_end / self.tau_start) ** frac

    def checkpoints(self) -> set[int]:
        """The SGA iteration counts after which the latents are scored exactly: the last, and
        about every eighth of the run in its second half."""
        n = self.iterations
        every = max(2, n // 8)
        return {n} | {i for i in range(n // 2, n) if (n - i) % every == 0}


# Efforts 1-4: one, two, four and eight rounds of greedy rounding; efforts 5-9: 16 to 400 SGA
# iterations (``SGA_DEFAULTS``: a constant learning rate with the temperature annealed from 0.5 to
# 0.1, the best at every length tried), then four rounds. A round costs about two SGA iterations.
# Fitted with benchmarks/refine_schedules.py and checked on Kodak (benchmarks/results/kodak/
# effort.md); docs/experiments.md has what else was tried.
SCHEDULES: dict[int, Schedule] = {
    1: Schedule(0, greedy_rounds=1),
    2: Schedule(0, greedy_rounds=2),
    3: Schedule(0, greedy_rounds=4),
    4: Schedule(0, greedy_rounds=8),
} | {
    effort: Schedule(iterations, greedy_rounds=4)
    for effort, iterations in enumerate((16, 32, 64, 128, 400), start=5)
}


def schedule_for(effort: int) -> Schedule:
    """The schedule of ``effort`` 1..9; ValueError otherwise."""
    if isinstance(effort, bool) or not isinstance(effort, (int, np.integer)) or effort not in SCHEDULES:
        raise ValueError(f"refinement effort must be an integer 1..{max(SCHEDULES)}, got {effort!r}")
    return SCHEDULES[int(effort)]
