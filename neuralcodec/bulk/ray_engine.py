"""The Ray engine: the same workers as Ray actors, on a local Ray instance or a cluster.

Ray's batch-inference pattern: each actor loads the model once and items stream through the
actors, a bounded number in flight. Actors receive and return bytes only (the driver reads
sources and writes outputs), so cluster nodes need neuralcodec installed but no shared file
system. Where the cluster has GPUs (and the device is not ``cpu``), one actor per GPU codes on
it; otherwise actors take ``threads`` CPUs each (default 1), as many as the cluster's CPUs
allow. Without ``address``, joins the cluster ``ray start`` runs on this machine, or else
starts a local Ray instance for the job.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

try:
    import ray
    from ray.exceptions import RayError
except ImportError:  # pragma: no cover - depends on the environment
    from neuralcodec.bulk.engine import EngineError

    raise EngineError(
        "--engine ray needs Ray: pip install 'neuralcodec[cluster]' (or pip install ray)"
    ) from None

from neuralcodec.bulk.engine import EngineError, bounded_map
from neuralcodec.bulk.worker import Item, JobSpec, Outcome, Worker


@contextmanager
def _native_logs_silenced() -> Iterator[None]:
    """Standard error (file descriptor 2) to /dev/null: Ray's C++ core logs a line a second while
    it fails to reach a wrong address; the exception that follows says it in one line."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class RayEngine:
    """Actors on a Ray cluster, each with at most two items in flight."""

    def __init__(self, spec: JobSpec, jobs: int | None, address: str | None) -> None:
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            try:
                with _native_logs_silenced():
                    ray.init(
                        address=address, include_dashboard=False, logging_level="ERROR", log_to_driver=False
                    )
            except Exception as exc:  # ConnectionError, ValueError, RuntimeError: one line for the user
                raise EngineError(
                    f"cannot start or join a Ray cluster ({type(exc).__name__}: {exc})"
                ) from None
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        if gpus and spec.device != "cpu":
            self.spec = spec.on("cuda", spec.threads or 1)
            options: dict[str, Any] = {"num_gpus": 1, "num_cpus": 1}
            count = jobs or gpus
        else:
            self.spec = spec.on("cpu" if spec.device == "auto" else spec.device, spec.threads or 1)
            options = {"num_cpus": self.spec.threads}
            count = jobs or max(1, int(resources.get("CPU", 1)) // (self.spec.threads or 1))
        actor = ray.remote(**options)(Worker)
        self._actors = [actor.remote(self.spec) for _ in range(count)]
        self._where = f"{count} actor{'s' * (count > 1)} on {'GPU' if 'num_gpus' in options else 'CPU'}"

    def describe(self) -> str:
        return f"ray: {self._where} x {self.spec.threads} thread(s)"

    def map(self, items: Iterable[Item]) -> Iterator[Outcome]:
        load = [0] * len(self._actors)
        owner: dict[Any, int] = {}

        def submit(item: Item) -> Any:
            index = load.index(min(load))
            load[index] += 1
            ref = self._actors[index].run.remote(item)
            owner[ref] = index
            return ref

        def wait_any(pending: list[Any]) -> list[Any]:
            return ray.wait(pending, num_returns=1)[0]

        def collect(ref: Any) -> Outcome:
            load[owner.pop(ref)] -= 1
            try:
                return ray.get(ref)
            except RayError as exc:  # an actor or node that died: that item fails, the job goes on
                raise RuntimeError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None

        return bounded_map(items, submit, wait_any, collect, 2 * len(self._actors))

    def close(self) -> None:
        for actor in self._actors:
            ray.kill(actor)
        if self._owns_ray:
            ray.shutdown()


def start(spec: JobSpec, jobs: int | None, address: str | None) -> RayEngine:
    """The engine registry's entry point."""
    return RayEngine(spec, jobs, address)
