"""The gardening pass as a Prefect flow: one task per pattern, bounded, retried, incremental.

The flow reads the library and builds the candidate index once, decides which patterns are
stale and submits one task per stale pattern to its task runner: Prefect's
``ThreadPoolTaskRunner`` by default, or any other the flow is given
(``garden.with_options(task_runner=...)``, e.g. Dask). A task gets a run key, an index into
that run's pattern list, the slug (for its name), the library and the options: in the flow's
process the key finds the run the flow built; in another process (a Dask worker) the task
rebuilds it from the library and the options. No result is persisted. Model calls in flight
are bounded by a semaphore of ``concurrency`` per process, whatever the number of threads.

A task asks the model only when the pattern is stale (``gardener.library.state``): its content, the
prompt version, the model or its candidate set changed since it was last gardened. Otherwise
it is SKIPPED without a request. A transient model failure (rate limit or server error after
the client's own retries, a timeout, a dropped connection) is raised so that Prefect retries
the task later; any other failure becomes the pattern's FAILED outcome and the others go on.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, cast

from prefect import flow, task
from prefect.cache_policies import NONE
from prefect.futures import PrefectFuture, as_completed
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from gardener.endpoint.client import LLM, LLMError, Usage
from gardener.endpoint.prices import as_dict as cost_of
from gardener.endpoint.prices import price_for
from gardener.endpoint.settings import LLMSettings
from gardener.graph.entities import load_aliases, resolve_library
from gardener.library import decisions as decisions_mod
from gardener.library import load as library_mod
from gardener.library.load import Entry, Library
from gardener.library.lock import holding
from gardener.library.registry import load_registry
from gardener.library.state import load_state, save_state
from gardener.library.write import remove_leftovers
from gardener.model import Outcome, Outcomes, Status
from gardener.pipeline import (
    Hooks,
    attached,
    finish,
    hooks_for,
    in_process_run,
    refuse_unserved,
    report,
)
from gardener.pipeline.client import model_client, within_endpoint
from gardener.pipeline.options import GardenOptions
from gardener.pipeline.pattern_task import (
    Gardened,
    check,
    garden_one,
    skipped,
    tokens_of,
    usage_of,
)
from gardener.pipeline.run import Run
from gardener.propose.profiles import profile_for
from gardener.propose.prompts import default_prompts
from gardener.propose.propose import StructuredLLM
from gardener.shortlist.candidates import CandidateIndex
from gardener.steps.outliers import in_degrees
from gardener.steps.rejections import Rejections

log = logging.getLogger("gardener.flows")

SAVE_EVERY = 50
"""Save the state after this many gardened patterns, so an interrupted run keeps its work."""
SAVE_INTERVAL_S = 2.0
"""...and when this long has passed since the last save: a killed run loses at most this
much work (the files it wrote are kept; only their state records would be re-asked)."""

_runs: dict[str, Run] = {}
_runs_lock = threading.Lock()


def _worker_run(key: str, library: str, options: GardenOptions) -> Run:
    """The run in a process other than the flow's (a Dask worker, say).

    Built once per process from the task's parameters, as the flow built its own: the same
    library read the same way gives the same pattern order. The client comes from the
    environment and the options (fixtures included) and stays open for the life of the
    worker process.
    """
    with _runs_lock:
        found = _runs.get(key)
        if found is not None:
            return found
        llm = _worker_clients.enter_context(model_client(options))
        run = open_run(Path(library), options, llm, llm.settings.model)[0]
        _runs[key] = run
        return run


_worker_clients = ExitStack()


def pattern_in_run(run: str, index: int, slug: str, library: str,
                   options: GardenOptions) -> Gardened:
    """Pattern ``index`` of run ``run``, in whatever process the task landed in."""
    shared = _runs.get(run) or _worker_run(run, library, options)
    if shared.entries[index].pattern.slug != slug:
        raise RuntimeError(f"{library} changed while it was being gardened: pattern {index} "
                           f"is no longer '{slug}'")
    return garden_one(shared, index)


@task(name="garden-pattern", task_run_name="garden-{slug}", cache_policy=NONE,
      persist_result=False, log_prints=False)
def garden_pattern(run: str, index: int, slug: str, library: str,
                   options: GardenOptions) -> Gardened:
    """One pattern, as a Prefect task: retried by Prefect when its model call failed briefly.

    ``run`` keys the flow's shared objects in this process; ``library`` and ``options`` let
    a worker in another process rebuild them.
    """
    return pattern_in_run(run, index, slug, library, options)


# ---------------------------------------------------------------------------------------------
# The flow


def select(lib: Library, only: tuple[str, ...]) -> tuple[list[Entry], list[Outcome]]:
    """The entries to garden, and failed outcomes for files sharing another file's slug."""
    if only:
        unknown = sorted(set(only) - lib.slugs)
        if unknown:
            raise ValueError(f"--only names no pattern of {lib.root}: {', '.join(unknown)}")
    first = lib.by_slug()
    chosen: list[Entry] = []
    clashes: list[Outcome] = []
    for e in lib.entries:
        p = e.pattern
        if only and p.slug not in only:
            continue
        if first[p.slug] is not e:
            clashes.append(Outcome(
                path=str(p.path), slug=p.slug, status=Status.FAILED,
                error=f"{p.path}: slug '{p.slug}' is also used by {first[p.slug].pattern.path}; "
                      "give one of them another slug"))
            continue
        chosen.append(e)
    return chosen, clashes


def open_run(root: Path, options: GardenOptions, llm: StructuredLLM,
             model: str) -> tuple[Run, list[Outcome], Library]:
    """Read and index the library, load the state: once per run and process."""
    lib = library_mod.load(root, scope=options.scope)
    entries, clashes = select(lib, options.only)
    ledger = decisions_mod.load(decisions_mod.ledger_path(root))
    if options.decisions:
        ledger = ledger.union(decisions_mod.load(Path(options.decisions)))
    prompts = default_prompts()
    run = Run(root=root, entries=entries, index=CandidateIndex(lib.patterns),
              slugs=lib.slugs, state=load_state(root), llm=llm, model=model, prompts=prompts,
              prompt_version=prompts.version, today=options.today or dt.date.today(),
              options=options, rejections=Rejections.of(ledger),
              registry=load_registry(root),
              entities=resolve_library(lib.patterns, load_aliases(root)),
              profile=profile_for(model))
    return run, report.unreadable(lib.errors) + clashes, lib


def _failed_task(run: Run, i: int, exc: BaseException) -> Outcome:
    """A task that still failed after Prefect's retries (or crashed) as the pattern's outcome."""
    p = run.entries[i].pattern
    # The tries that failed were counted as they failed, in this process; a task that ran in
    # another process (Dask) left only its last exception's usage.
    used = usage_of(run, i, Usage())
    if used.requests == 0 and isinstance(exc, LLMError):
        used = exc.usage
    retries = run.options.retries
    after = f" (after {retries} Prefect retr{'y' if retries == 1 else 'ies'})" if retries else ""
    said = exc.message if isinstance(exc, LLMError) else f"{type(exc).__name__}: {exc}"
    return Outcome(path=str(p.path), slug=p.slug, status=Status.FAILED,
                   error=f"{p.path}: {said}{after}", warnings=list(p.warnings),
                   usage=tokens_of(used), requests=used.requests)


def pattern_threads(concurrency: int | None = None) -> TaskRunner[PrefectFuture[Any]]:
    """Prefect's thread runner; for a pass in this process, a thread per model call allowed
    in flight, so no task run starts only to wait for a slot. None: Prefect's default."""
    # A cast only for the type checker: Prefect types its runners' futures invariantly.
    return cast("TaskRunner[PrefectFuture[Any]]", ThreadPoolTaskRunner(max_workers=concurrency))


def _run_tasks(run: Run, key: str, on_result: Callable[[Gardened], None]) -> None:
    """Decide each pattern here, submit a task for each stale one, and hand every outcome to
    ``on_result`` (the progress bar, the state) as soon as it is there: skips at once, the
    others as their tasks finish."""
    options = run.options
    pattern_task = garden_pattern.with_options(retries=options.retries,
                                               retry_delay_seconds=options.retry_delay_s)
    library = str(run.root)
    futures: dict[PrefectFuture[Gardened], int] = {}
    for i, entry in enumerate(run.entries):
        try:
            c = check(run, i)
        except Exception as exc:  # a bug in one decision must not stop the others
            log.exception("%s: unexpected error while deciding", entry.pattern.path)
            on_result(Gardened(_failed_task(run, i, exc)))
            continue
        if not c.stale:
            on_result(skipped(run, i, c.reason))
            continue
        with run.lock:
            run.checks[i] = c
        future = pattern_task.submit(run=key, index=i, slug=entry.pattern.slug,
                                     library=library, options=options)
        futures[future] = i
    for future in as_completed(list(futures)):
        i = futures[future]
        value = future.result(raise_on_failure=False)
        if not isinstance(value, Gardened):
            failure = value if isinstance(value, BaseException) else RuntimeError(str(value))
            value = Gardened(_failed_task(run, i, failure))
        on_result(value)


def garden_library(root: Path, options: GardenOptions, hooks: Hooks,
                   llm: StructuredLLM, model: str) -> list[Outcome]:
    """The pass over one library with a ready client; the flow's body. A pass that writes
    holds the library's lock (`gardener.library.lock`): a second one is refused at once."""
    if options.dry_run:
        return _garden_library(root, options, hooks, llm, model)
    with holding(root, "gardener run"):
        return _garden_library(root, options, hooks, llm, model)


def _garden_library(root: Path, options: GardenOptions, hooks: Hooks,
                    llm: StructuredLLM, model: str) -> list[Outcome]:
    started = time.monotonic()
    options = within_endpoint(options, llm)
    # Temporary files of a run that was killed mid-write: never patterns, but litter.
    leftovers = [] if options.dry_run else [str(p) for p in remove_leftovers(root)]
    run, outcomes, lib = open_run(root, options, llm, model)
    if hooks.on_start is not None:
        hooks.on_start(len(run.entries) + len(outcomes))
    for o in outcomes:
        if hooks.on_outcome is not None:
            hooks.on_outcome(o)
    state = run.state
    gardened = 0
    saved = time.monotonic()

    def collect(result: Gardened) -> None:
        nonlocal gardened, saved
        outcomes.append(result.outcome)
        r = result.record
        if r is not None and result.outcome.slug is not None:
            state.record(result.outcome.slug, fingerprint=r.fingerprint,
                         prompt_version=r.prompt_version, model=r.model,
                         candidates_fp=r.candidates_fp, garden=r.garden, on=run.today)
            gardened += 1
            if gardened % SAVE_EVERY == 0 or time.monotonic() - saved >= SAVE_INTERVAL_S:
                save_state(root, state)
                saved = time.monotonic()
        if hooks.on_outcome is not None:
            hooks.on_outcome(result.outcome)

    opened = hooks.extra.get(OPENED)
    if isinstance(opened, list):
        opened.append(run)
    key = uuid.uuid4().hex
    with _runs_lock:
        _runs[key] = run
    try:
        _run_tasks(run, key, collect)
    except BaseException:
        # Ctrl-C: the tasks still waiting for a slot give up instead of asking the model.
        run.stopped = INTERRUPTED
        raise
    finally:
        with _runs_lock:
            del _runs[key]
        if not options.dry_run:
            state.retain(lib.slugs)
            save_state(root, state)
    meta: dict[str, Any] = {
        "dry_run": options.dry_run, "today": run.today.isoformat(), "model": model,
        "prompt_version": run.prompt_version, "concurrency": options.concurrency,
        "fixtures": options.fixture_mode.value if options.fixture_mode else None,
        "vitality_target": options.vitality_target,
        "only": list(options.only), "seconds": round(time.monotonic() - started, 2),
        "cost": pass_cost(outcomes, model, options, llm),
    }
    if options.budget_tokens is not None:
        meta["budget_tokens"] = options.budget_tokens
    if state.problems:
        meta["state_problems"] = list(state.problems)
    if leftovers:
        meta["removed_leftovers"] = leftovers
    finish(outcomes, command="garden", library=root, report_path=options.report, meta=meta,
           existing=in_degrees(lib.patterns))
    return outcomes


def pass_cost(outcomes: list[Outcome], model: str, options: GardenOptions,
              llm: StructuredLLM) -> dict[str, object]:
    """The pass's tokens (as the endpoint reported them) and their estimated price."""
    settings = getattr(llm, "settings", None)
    local = isinstance(settings, LLMSettings) and settings.loopback
    used = report.totals(outcomes)["usage"]
    return cost_of(price_for(model, options.prices, local=local),
                   used.get("prompt_tokens", 0), used.get("completion_tokens", 0))


@flow(name="garden", flow_run_name="garden {library}", persist_result=False, log_prints=False,
      task_runner=pattern_threads())
def garden(library: str, options: GardenOptions | None = None,
           session: str | None = None) -> Outcomes:
    """Garden a library: ask the model for each stale pattern's garden and write it back.

    ``session`` names hooks attached by a caller in this process (``flows.attached``): a
    ready model client, progress callbacks. A scheduled run has none and opens its own client.
    The tasks run on the flow's task runner: Prefect's thread pool unless the flow was given
    another (``garden.with_options(task_runner=...)``); the threads wait at the run's slots,
    so ``options.concurrency`` bounds the model calls either way
    (``PREFECT_TASKS_RUNNER_THREAD_POOL_MAX_WORKERS`` bounds the threads of a deployment).
    """
    opts = options or GardenOptions()
    refuse_unserved(library, opts.report)
    hooks = hooks_for(session)
    root = Path(library)
    if hooks.llm is not None:
        return Outcomes(garden_library(root, opts, hooks, hooks.llm,
                                       hooks.model or opts.model or "?"))
    with model_client(opts) as llm:
        return Outcomes(garden_library(root, opts, hooks, llm, llm.settings.model))


OPENED = "opened-runs"
"""``Hooks.extra`` key of a list the flow appends its ``Run`` to, for the caller to stop."""

INTERRUPTED = "the run was interrupted"


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
    opened: list[Run] = []
    hooks.extra[OPENED] = opened
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
            for run in opened:
                run.stop(INTERRUPTED)
            raise
    if failed:
        raise failed[0]
    return list(done[0])
