"""The interface every engine implements, and the registry that picks one by name.

An engine turns a stream of :class:`Item` s into a stream of :class:`Outcome` s (in any order)
with :class:`Worker` s that load the model once. It holds at most a few items per worker in
memory, so a tree of any size streams through; it never touches the file system itself.
Engines are imported only when chosen: ``ray`` is imported by the Ray engine alone.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Protocol, TypeVar

from neuralcodec.bulk.worker import FAILURE, Item, JobSpec, Outcome

ENGINES = {"local": "neuralcodec.bulk.local_engine", "ray": "neuralcodec.bulk.ray_engine"}
Handle = TypeVar("Handle", bound=Hashable)


class EngineError(Exception):
    """The engine cannot run here (not installed, cluster unreachable): one line for the user."""


class Engine(Protocol):
    """What the tree runner needs from an engine."""

    def describe(self) -> str:
        """Where it runs, in a few words (e.g. ``local: 2 workers x 1 thread``)."""
        ...

    def map(self, items: Iterable[Item]) -> Iterator[Outcome]:
        """Code every item, yielding each outcome as soon as it is ready."""
        ...

    def close(self) -> None:
        """Stop the workers (also after an error or an interrupt)."""
        ...


def open_engine(name: str, spec: JobSpec, jobs: int | None = None, address: str | None = None) -> Engine:
    """Start engine ``name`` for ``spec``: ``jobs`` workers (None: the engine's default);
    ``address``, a cluster to join (engines that have one)."""
    if name not in ENGINES:
        raise EngineError(f"unknown engine {name!r}; use {' or '.join(ENGINES)}")
    module = importlib.import_module(ENGINES[name])
    return module.start(spec, jobs, address)


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def threads_per_worker(jobs: int, cores: int | None = None) -> int:
    """An even share of the cores for each of ``jobs`` workers, at least one thread."""
    return max(1, (cores or available_cores()) // jobs)


def bounded_map(
    items: Iterable[Item],
    submit: Callable[[Item], Handle],
    wait_any: Callable[[list[Handle]], list[Handle]],
    collect: Callable[[Handle], Outcome],
    window: int,
) -> Iterator[Outcome]:
    """Keep at most ``window`` items in flight: ``submit`` one, ``wait_any`` for finished
    handles, ``collect`` their outcomes (a collect that raises is a failed item, not a failed job)."""
    pending: dict[Handle, str] = {}
    stream = iter(items)
    exhausted = False
    while True:
        while not exhausted and len(pending) < window:
            item = next(stream, None)
            if item is None:
                exhausted = True
            else:
                pending[submit(item)] = item.name
        if not pending:
            return
        for handle in wait_any(list(pending)):
            name = pending.pop(handle)
            try:
                yield collect(handle)
            except Exception as exc:  # a worker process or node that died
                yield Outcome(name, kind=FAILURE, reason=f"worker lost: {type(exc).__name__}: {exc}")
