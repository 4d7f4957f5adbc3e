"""Worker processes for a pattern's CPU-bound last step: merge, prune, render, verify, write.

A gardening pass runs its patterns on threads of one process, so every pattern's own work
(besides waiting for the model) shares one interpreter lock with Prefect's task engine and
the model client. On a machine with spare cores that lock, not the model, becomes what
bounds a fast endpoint's throughput. The step after the model's answer (``settle``) is pure
work on the pattern and the library plus one atomic write, so it can run in another
process; the threads then only wait for it.

The workers are forked once the library is read and before any task thread starts, so each
inherits the run (the parsed library, its index, the settings) without reading anything
again or pickling the library; a job sends only the pattern's number and the proposed
garden, and gets back the outcome and the garden written. Where ``fork`` is not used (not
Linux), or no core is to spare, everything stays in the flow's process, as it does when a worker
dies or stops answering (the pattern is then settled in this process: a file the worker
did write is never written twice, since a write only replaces the text the pass read).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

MAX_AUTO_WORKERS = 4
"""Worker processes when none is asked for: one per core beyond the first two, at most this
many (a pattern's last step is a few milliseconds; more processes would mostly hold memory)."""

RESERVED_CORES = 2
"""Cores a pass keeps busy without workers: the flow's process, and Prefect's temporary
server recording the task runs. A worker only helps on a core beyond these: on 2 cores one
took as much CPU from the server and the model client as it saved the flow's process, and
the pass was no faster (docs/benchmarks.md)."""

JOB_TIMEOUT_S = 120.0
"""A job that takes longer means a worker is stuck: the pool is stopped and the pattern (and
every later one) is settled in the flow's own process."""

MIN_PATTERNS = 32
"""Fewer stale patterns than this are settled in the flow's process: forking would cost more
than it saves."""

T = TypeVar("T")
log = logging.getLogger("gardener.flows")


def auto_workers(cores: int | None = None) -> int:
    """How many worker processes a pass gets when the user did not say: none on 2 cores."""
    n = os.cpu_count() if cores is None else cores
    return max(0, min((n or 1) - RESERVED_CORES, MAX_AUTO_WORKERS))


def can_fork() -> bool:
    """Linux only: macOS has ``fork`` too, but a process that loaded Apple's system
    frameworks (the proxy settings any HTTP client reads do) may crash in a forked child."""
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def _watch_parent(parent: int) -> None:
    """End this worker when the flow's process is gone (even killed with SIGKILL): nothing
    else would, since a forked worker holds its own copy of every pipe to the parent.

    Ctrl-C reaches the whole process group; the flow's process handles it and stops the
    workers, so they ignore it rather than each print a traceback.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="gardener-worker-watch", daemon=True).start()


def _ready() -> int:
    return os.getpid()


@dataclass
class Workers:
    """A pool of forked worker processes, or none; ``call`` runs a job wherever it can."""

    processes: int
    pool: ProcessPoolExecutor | None = None
    jobs: int = 0
    """Jobs the workers finished."""
    fallbacks: int = 0
    """Jobs settled in this process because the pool broke or stalled."""
    problem: str | None = None
    """Why the pool stopped early, if it did."""
    cpu_s: float = 0.0
    """CPU seconds the workers used, known once they ended."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, job: Callable[..., T], *args: object) -> T:
        """``job(*args)`` in a worker; in this process when there is no (working) pool."""
        pool = self.pool
        if pool is not None:
            try:
                result = pool.submit(job, *args).result(timeout=JOB_TIMEOUT_S)
            except BrokenProcessPool as exc:
                self._stop(f"a worker process died ({exc or 'no reason given'})")
            except FutureTimeout:
                self._stop(f"a worker gave no answer in {JOB_TIMEOUT_S:g} s")
            except RuntimeError:  # submitted while the pool was being shut down
                if pool is self.pool:
                    raise
            else:
                with self.lock:
                    self.jobs += 1
                return result
            with self.lock:
                self.fallbacks += 1
        return job(*args)

    def summary(self) -> dict[str, object]:
        """What the report says of the workers."""
        said: dict[str, object] = {"processes": self.processes, "patterns": self.jobs,
                                   "cpu_s": round(self.cpu_s, 2)}
        if self.fallbacks:
            said["settled_here"] = self.fallbacks
        if self.problem:
            said["problem"] = self.problem
        return said

    def _stop(self, why: str) -> None:
        with self.lock:
            pool, self.pool = self.pool, None
            self.problem = self.problem or why
        if pool is not None:
            log.warning("worker processes stopped: %s; the patterns left are settled in "
                        "the flow's process", why)
            for process in list(getattr(pool, "_processes", {}).values()):
                process.kill()
            pool.shutdown(wait=False, cancel_futures=True)


@contextmanager
def forked_workers(processes: int) -> Iterator[Workers]:
    """``processes`` workers forked now, from the calling thread; stopped when the block ends.

    Call it before any other thread of the pass starts work: a fork copies only the calling
    thread, and a lock another thread held at that moment stays held in the child. All
    workers start at once here (a pool started by a task thread would fork mid-pass).
    """
    if processes <= 0 or not can_fork():
        yield Workers(0)
        return
    context = multiprocessing.get_context("fork")
    cpu_before = children_cpu()
    pool = ProcessPoolExecutor(processes, mp_context=context, initializer=_watch_parent,
                               initargs=(os.getpid(),))
    workers = Workers(processes, pool)
    try:
        # With fork, the first job starts every process; waiting on one job per process
        # would not prove each started, so one job is enough to have them all forked.
        pool.submit(_ready).result(timeout=JOB_TIMEOUT_S)
    except (BrokenProcessPool, FutureTimeout, OSError) as exc:
        workers._stop(f"the worker processes did not start ({exc})")
    try:
        yield workers
    finally:
        with workers.lock:
            pool_left, workers.pool = workers.pool, None
        if pool_left is not None:
            pool_left.shutdown(wait=True)
        workers.cpu_s = children_cpu() - cpu_before


def children_cpu() -> float:
    """CPU seconds of this process's children that have ended and been waited for (0 where
    the platform cannot tell; it has no fork either)."""
    try:
        import resource
    except ImportError:
        return 0.0
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime
