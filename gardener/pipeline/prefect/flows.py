"""The pass as Prefect flows: the adapter around ``gardener.pipeline.garden`` and ``.prune``.

``garden`` runs the plain pass with a runner that submits one Prefect task per stale pattern
to the flow's task runner: Prefect's ``ThreadPoolTaskRunner`` by default, or any other the
flow is given (``garden.with_options(task_runner=...)``, e.g. Dask). A task gets a run key,
an index into that run's pattern list, the slug (for its name), the library and the options:
in the flow's process the key finds the run the flow built; in another process (a Dask
worker) the task rebuilds it from the library and the options, once per process. A transient
model failure is raised for Prefect to retry (``options.retries``); no result is persisted.

A caller in the same process (``gardener run``) hands the flow its live objects, a model
client and progress callbacks, through ``attached``: a key passed as the flow's ``session``
parameter, so nothing Prefect would have to serialise is a parameter.
"""

from __future__ import annotations

import atexit
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast, overload

from prefect import flow, task
from prefect.cache_policies import NONE
from prefect.futures import PrefectFuture, as_completed
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from gardener.endpoint.client import LLM
from gardener.model import Outcome
from gardener.pipeline.client import model_client
from gardener.pipeline.garden import (
    INTERRUPTED,
    OnResult,
    Passed,
    failed_outcome,
    garden_library,
    open_run,
)
from gardener.pipeline.options import GardenOptions
from gardener.pipeline.pattern_task import Gardened, garden_one
from gardener.pipeline.prefect import runtime
from gardener.pipeline.prefect.artifacts import publish
from gardener.pipeline.prune import PruneOptions, prune_library
from gardener.pipeline.run import Run
from gardener.pipeline.served import refuse_unserved


class Outcomes(Sequence[Outcome]):
    """A pass's outcomes as its flow returns them: a sequence Prefect leaves alone.

    When a flow ends, Prefect walks its return value for futures to wait on, into every
    list, dict and model: a list of outcomes cost that walk about a tenth of a second per
    thousand patterns, at the end of every pass. A sequence that is none of those is
    returned as it is.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[Outcome] = ()) -> None:
        self._items = tuple(items)

    @overload
    def __getitem__(self, index: int) -> Outcome: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Outcome]: ...

    def __getitem__(self, index: int | slice) -> Outcome | Sequence[Outcome]:
        return self._items[index]

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Outcomes({len(self._items)})"


@dataclass
class Hooks:
    """What a caller in the same process attaches to a flow run; every part is optional."""

    llm: Any = None
    """A ``gardener.endpoint.client.LLM`` (or anything with its ``structured`` method), as is."""
    model: str | None = None
    """The model name ``llm`` asks for, recorded in the state."""
    on_start: Callable[[int], None] | None = None
    """Called once with the number of patterns the run will go through."""
    on_outcome: Callable[[Outcome], None] | None = None
    """Called from the flow's thread as each pattern finishes."""
    opened: list[Run] = field(default_factory=list)
    """The runs the flow opened, for the caller to stop on Ctrl-C."""


_hooks: dict[str, Hooks] = {}
_runs: dict[str, Run] = {}
"""This process's runs by key: the flow's own, or one a worker process rebuilt."""
_lock = threading.Lock()
_worker_clients = ExitStack()
atexit.register(_worker_clients.close)


@contextmanager
def attached(hooks: Hooks) -> Iterator[str]:
    """Register ``hooks`` for a flow run; pass the key as the flow's ``session`` parameter."""
    key = uuid.uuid4().hex
    with _lock:
        _hooks[key] = hooks
    try:
        yield key
    finally:
        with _lock:
            _hooks.pop(key, None)


def hooks_for(session: str | None) -> Hooks:
    """The hooks attached under ``session``; empty hooks for a run started by a scheduler."""
    if session is None:
        return Hooks()
    with _lock:
        found = _hooks.get(session)
    if found is None:
        raise LookupError(f"no hooks attached under session {session!r}: a session key only "
                          "works in the process that attached it")
    return found


@contextmanager
def in_process_run() -> Iterator[None]:
    """Around a flow called in this process (not by a scheduler or a worker): Prefect's API
    is up first (``runtime.connect``), so a server that cannot start, or a configured one
    that does not answer, stops the run with its reason before any pattern."""
    runtime.connect()
    yield


def pattern_threads(concurrency: int | None = None) -> TaskRunner[PrefectFuture[Any]]:
    """Prefect's thread runner; for a pass in this process, a thread per model call allowed
    in flight, so no task run starts only to wait for a slot. None: Prefect's default."""
    # A cast only for the type checker: Prefect types its runners' futures invariantly.
    return cast("TaskRunner[PrefectFuture[Any]]", ThreadPoolTaskRunner(max_workers=concurrency))


def _run_in_process(key: str, library: str, options: GardenOptions) -> Run:
    """The run under ``key``: the flow's, or in a process other than the flow's (a Dask
    worker) built once from the task's parameters, as the flow built its own (the same
    library read the same way gives the same pattern order). Its client stays open for the
    life of the worker process."""
    with _lock:
        found = _runs.get(key)
        if found is not None:
            return found
        llm = _worker_clients.enter_context(model_client(options))
        run = open_run(Path(library), options, llm, llm.settings.model)[0]
        _runs[key] = run
        return run


@task(name="garden-pattern", task_run_name="garden-{slug}", cache_policy=NONE,
      persist_result=False, log_prints=False)
def garden_pattern(run: str, index: int, slug: str, library: str,
                   options: GardenOptions) -> Gardened:
    """One pattern, as a Prefect task: retried by Prefect when its model call failed briefly."""
    shared = _run_in_process(run, library, options)
    if shared.entries[index].pattern.slug != slug:
        raise RuntimeError(f"{library} changed while it was being gardened: pattern {index} "
                           f"is no longer '{slug}'")
    return garden_one(shared, index)


def in_tasks(run: Run, stale: Sequence[int], on_result: OnResult) -> None:
    """The runner of a flow: one Prefect task per stale pattern on the flow's task runner."""
    options = run.options
    pattern_task = garden_pattern.with_options(retries=options.retries,
                                               retry_delay_seconds=options.retry_delay_s)
    key = uuid.uuid4().hex
    with _lock:
        _runs[key] = run
    try:
        futures: dict[PrefectFuture[Gardened], int] = {}
        for i in stale:
            future = pattern_task.submit(run=key, index=i, slug=run.entries[i].pattern.slug,
                                         library=str(run.root), options=options)
            futures[future] = i
        for future in as_completed(list(futures)):
            i = futures[future]
            value = future.result(raise_on_failure=False)
            if not isinstance(value, Gardened):
                failure = value if isinstance(value, BaseException) else RuntimeError(str(value))
                value = Gardened(failed_outcome(run, i, failure, retried_by="Prefect"))
            on_result(value)
    finally:
        with _lock:
            _runs.pop(key, None)


def _published(library: Path, command: str, done: Passed) -> Outcomes:
    publish(done.outcomes, command=command, library=library, meta=done.meta)
    return Outcomes(done.outcomes)


@flow(name="garden", flow_run_name="garden {library}", persist_result=False, log_prints=False,
      task_runner=pattern_threads())
def garden(library: str, options: GardenOptions | None = None,
           session: str | None = None) -> Outcomes:
    """Garden a library: ask the model for each stale pattern's garden and write it back.

    ``session`` names hooks attached by a caller in this process (``attached``): a ready model
    client, progress callbacks. A scheduled run has none and opens its own client. The tasks
    run on the flow's task runner (Prefect's thread pool unless the flow was given another);
    they wait at the run's slots, so ``options.concurrency`` bounds the model calls either
    way (``PREFECT_TASKS_RUNNER_THREAD_POOL_MAX_WORKERS`` bounds a deployment's threads).
    """
    opts = options or GardenOptions()
    refuse_unserved(library, opts.report)
    hooks = hooks_for(session)
    root = Path(library)

    def go(llm: Any, model: str) -> Outcomes:
        done = garden_library(root, opts, llm, model, runner=in_tasks,
                              on_start=hooks.on_start, on_outcome=hooks.on_outcome,
                              on_open=hooks.opened.append)
        return _published(root, "garden", done)

    if hooks.llm is not None:
        return go(hooks.llm, hooks.model or opts.model or "?")
    with model_client(opts) as llm:
        return go(llm, llm.settings.model)


def run_garden(library: Path, options: GardenOptions, *, llm: LLM | None = None,
               on_start: Callable[[int], None] | None = None,
               on_outcome: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Run the flow in this process with live hooks: what the CLI and the tests call.

    Without ``llm`` the flow opens its own client from ``options`` and the environment. The
    flow runs in a thread of its own, so that Ctrl-C (``KeyboardInterrupt``, raised in this
    thread) stops the run here (``Run.stop``: nothing more asked or written, the state saved)
    and is raised again at once. Ctrl-C also reaches Prefect's temporary server, a child in
    the same process group, which stops: Prefect's own handling of the interrupt would wait
    a minute of retries to record it there. What the caller does next is up to it: the
    flow's thread is left behind (a daemon), and so are the tasks' threads, which Python's
    exit waits for (``gardener run`` ends with ``os._exit``).
    """
    hooks = Hooks(llm=llm, model=llm.settings.model if llm is not None else None,
                  on_start=on_start, on_outcome=on_outcome)
    flow_here = garden.with_options(task_runner=pattern_threads(options.concurrency))
    with attached(hooks) as session, in_process_run():
        done: list[Outcomes] = []
        failed: list[BaseException] = []

        def call() -> None:
            try:
                done.append(flow_here(str(library), options, session))
            except BaseException as exc:
                failed.append(exc)

        thread = threading.Thread(target=call, name="gardener-flow", daemon=True)
        thread.start()
        try:
            while thread.is_alive():
                thread.join(0.5)
        except KeyboardInterrupt:
            for run in hooks.opened:
                run.stop(INTERRUPTED)
            raise
    if failed:
        raise failed[0]
    return list(done[0])


@flow(name="prune", flow_run_name="prune {library}", persist_result=False, log_prints=False)
def prune(library: str, options: PruneOptions | None = None,
          session: str | None = None) -> Outcomes:
    """Prune every garden of a library: stale, weak, dangling, duplicated items go, with reasons."""
    opts = options or PruneOptions()
    refuse_unserved(library, opts.report)
    hooks = hooks_for(session)
    root = Path(library)
    done = prune_library(root, opts, on_start=hooks.on_start, on_outcome=hooks.on_outcome)
    return _published(root, "prune", done)


def run_prune(library: Path, options: PruneOptions, *,
              on_start: Callable[[int], None] | None = None,
              on_outcome: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Run the prune flow in this process with live progress callbacks."""
    with attached(Hooks(on_start=on_start, on_outcome=on_outcome)) as session, \
            in_process_run():
        result: Outcomes = prune(str(library), options, session)
    return list(result)
