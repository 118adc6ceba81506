"""Pools of worker processes: the one home for how Earshot runs Python work in processes of
its own (search pages too large for the API's process, the re-tagging of calls).

A ``WorkerPool`` is a ``ProcessPoolExecutor`` that is

- sized by a setting, read at each use: 0 means no pool (the caller does the work itself), and
  a changed size replaces the pool;
- started at its first use, or all at once by ``start`` (a spawned worker imports its modules:
  a second or two that the first task would otherwise wait);
- "spawn", never fork: the API has threads (and Elasticsearch connections) that a fork would
  copy in whatever state they are in;
- started again after a worker died (``discard`` the broken pool: the next use builds another);
- shut down with the process that owns it: ``shutdown_pools``, from the API's lifespan. uvicorn
  ends on SIGTERM by raising the signal again once its lifespan is done, and that skips the
  interpreter's exit handlers: a pool left open then never unlinks the semaphores of its
  queues, and multiprocessing's resource tracker reports them ("There appear to be 5 leaked
  semaphore objects to clean up at shutdown", one pool's five).

A worker also leaves by itself as soon as its parent is gone (killed, so no shutdown ran): its
siblings keep the task pipe open, so it would otherwise wait for work for ever.

The loader's ``BuildPool`` (``indexer/index/building.py``) is not a ``WorkerPool``: it lives for
one load, is sized by that load and hands each worker the load's state as it starts; it takes
the parent watch from here (``leave_with_parent``).
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from indexer.settings import Settings

# How often a worker checks that the process that started it is still there.
PARENT_CHECK_S = 1.0

# Every pool of this process, for ``shutdown_pools``.
_pools: list[WorkerPool] = []


def _start_worker(
    niceness: int,
    modules: tuple[str, ...],
    initializer: Callable[..., object] | None,
    initargs: tuple[Any, ...],
) -> None:
    if niceness:
        os.nice(niceness)
    leave_with_parent()
    # Imported now, while the worker waits for its first task, not when that task arrives.
    for module in modules:
        importlib.import_module(module)
    if initializer is not None:
        initializer(*initargs)


def leave_with_parent() -> None:
    """Make this worker process exit as soon as the process that started it is gone (for
    pools not made by ``WorkerPool``, which does this itself)."""
    parent = os.getppid()
    threading.Thread(target=_exit_with, args=(parent,), name="parent-watch", daemon=True).start()


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(0)


def _worker_pid() -> int:
    return os.getpid()


class WorkerPool:
    """The pool of one kind of work, shared by every thread of this process."""

    def __init__(
        self,
        name: str,
        size: Callable[[Settings], int],
        *,
        niceness: int = 0,
        modules: tuple[str, ...] = (),
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        """``size`` reads the number of workers from the settings; ``niceness`` is added to
        the workers' nice value; ``modules`` are imported by each worker as it starts;
        ``initializer(*initargs)`` runs in each worker after that (module-level, picklable)."""
        self.name = name
        self._size = size
        self._initargs = (niceness, modules, initializer, initargs)
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._executor_size = 0
        _pools.append(self)

    def executor(self, settings: Settings) -> ProcessPoolExecutor | None:
        """The running pool, started now if need be; None when the settings ask for no
        workers."""
        size = self._size(settings)
        if size == 0:
            return None
        replaced = None
        with self._lock:
            if self._executor is None or self._executor_size != size:
                replaced = self._executor
                self._executor = ProcessPoolExecutor(
                    max_workers=size,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_worker,
                    initargs=self._initargs,
                )
                self._executor_size = size
            executor = self._executor
        if replaced is not None:
            # Its tasks still finish; its workers leave once they have.
            replaced.shutdown(wait=False)
        return executor

    def start(self, settings: Settings) -> list[int]:
        """Start every worker now; the process ids of those that answered (the pool starts a
        process for each task that finds none idle, so all of them start, though a quick one
        may answer for a sibling still starting)."""
        executor = self.executor(settings)
        if executor is None:
            return []
        futures = [executor.submit(_worker_pid) for _ in range(self._size(settings))]
        return sorted({future.result() for future in futures})

    def discard(self, broken: ProcessPoolExecutor) -> None:
        """Forget a pool whose worker died (BrokenProcessPool): the next use starts a new one."""
        with self._lock:
            if self._executor is broken:
                self._executor = None

    def shutdown(self) -> None:
        """Stop the workers, after the tasks they are running (queued ones are cancelled), and
        release the pool's semaphores; the next use starts a new pool."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is None:
            return
        # Its queues' semaphores are unlinked as the executor is freed, with the last
        # reference to it (this one: the pool has forgotten it above).
        executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *_: object) -> None:
        self.shutdown()


def shutdown_pools() -> None:
    """Shut down every pool of this process (the API's lifespan ends with this)."""
    for pool in _pools:
        pool.shutdown()


__all__ = ["WorkerPool", "leave_with_parent", "shutdown_pools"]
