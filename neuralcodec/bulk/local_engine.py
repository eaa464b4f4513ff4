"""The local engine: ``jobs`` worker processes on this machine, each loading the model once.

Workers are spawned (not forked: torch's thread pools do not survive a fork) and, on Linux,
die with the process that started them, so a ``kill -9`` of the job leaves no worker behind.
They ignore Ctrl-C: the parent stops the pool, after the items in flight.
Each gets an even share of the cores as torch threads unless the spec names a count.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

from neuralcodec.bulk.engine import bounded_map, threads_per_worker
from neuralcodec.bulk.worker import Item, JobSpec, Outcome, Worker

_worker: Worker | None = None  # one per worker process


def _die_with_parent() -> None:
    """Linux: ask for SIGKILL when the parent dies (prctl PR_SET_PDEATHSIG); elsewhere nothing."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _init(spec: JobSpec) -> None:
    global _worker
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops the pool
    _worker = Worker(spec)


def _run(item: Item) -> Outcome:
    assert _worker is not None
    return _worker.run(item)


class LocalEngine:
    """A process pool with a bounded number of items in flight (two per worker)."""

    def __init__(self, spec: JobSpec, jobs: int | None) -> None:
        self.jobs = jobs or 1
        threads = spec.threads or threads_per_worker(self.jobs)
        self.spec = spec.on(spec.device, threads)
        self._pool = ProcessPoolExecutor(
            self.jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init,
            initargs=(self.spec,),
        )

    def describe(self) -> str:
        return f"local: {self.jobs} worker{'s' * (self.jobs > 1)} x {self.spec.threads} thread(s)"

    def map(self, items: Iterable[Item]) -> Iterator[Outcome]:
        def wait_any(pending: list[Future]) -> list[Future]:
            return list(wait(pending, return_when=FIRST_COMPLETED).done)

        return bounded_map(
            items, lambda i: self._pool.submit(_run, i), wait_any, Future.result, 2 * self.jobs
        )

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def start(spec: JobSpec, jobs: int | None, address: str | None) -> LocalEngine:
    """The engine registry's entry point (``address`` is for cluster engines; refused here)."""
    from neuralcodec.bulk.engine import EngineError

    if address is not None:
        raise EngineError("--address is for --engine ray")
    return LocalEngine(spec, jobs)
