"""The gardening pass in plain Python: one library, each stale pattern gardened once.

``garden_library`` reads the library and builds the candidate index once, decides which
patterns are stale (``gardener.library.state``: content, prompt version, model or candidate
set changed since the pattern was last gardened; the others are SKIPPED without a request)
and hands the stale ones to a ``Runner``: ``in_threads`` here (a thread pool, each pattern
retried after a transient model failure with tenacity), or the Prefect adapter's task runner
(``gardener.pipeline.prefect.flows``). Model calls in flight are bounded by the run's slots
(``options.concurrency``) whatever the number of threads. A pass that writes holds the
library's lock (``gardener.library.lock``); it saves the state as it goes and writes the JSON
report at the end.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_fixed

from gardener.endpoint.client import LLMError, Usage
from gardener.endpoint.prices import as_dict as cost_of
from gardener.endpoint.prices import price_for
from gardener.endpoint.settings import LLMSettings
from gardener.errors import UsageError
from gardener.graph.entities import load_aliases, resolve_library
from gardener.library import decisions as decisions_mod
from gardener.library import load as library_mod
from gardener.library.calibration import calibration_for
from gardener.library.load import Entry, Library
from gardener.library.lock import holding
from gardener.library.registry import load_registry
from gardener.library.state import load_state, save_state
from gardener.library.write import remove_leftovers
from gardener.model import Detail, Outcome, Status
from gardener.pipeline import DEFAULT_CONCURRENCY, report
from gardener.pipeline.client import within_endpoint
from gardener.pipeline.options import GardenOptions
from gardener.pipeline.pattern_task import (
    Gardened,
    check,
    garden_one,
    skipped,
    tokens_of,
    usage_of,
)
from gardener.pipeline.run import NOT_ASKED, Run
from gardener.propose.profiles import profile_for
from gardener.propose.prompts import default_prompts
from gardener.propose.propose import StructuredLLM
from gardener.shortlist.candidates import CandidateIndex
from gardener.steps.link import usual_type
from gardener.steps.outliers import in_degrees
from gardener.steps.rejections import Rejections

log = logging.getLogger("gardener.flows")

SAVE_EVERY = 50
"""Save the state after this many gardened patterns, so an interrupted run keeps its work."""
SAVE_INTERVAL_S = 2.0
"""...and when this long has passed since the last save: a killed run loses at most this
much work (the files it wrote are kept; only their state records would be re-asked)."""
INTERRUPTED = "the run was interrupted"

OnResult = Callable[[Gardened], None]


class Runner(Protocol):
    """Gardens the ``stale`` patterns of ``run`` (indices into ``run.entries``), handing each
    result to ``on_result`` as it comes: a crash or a failure after the retries is the
    pattern's failed outcome (``failed_outcome``), never an exception out of the runner."""

    def __call__(self, run: Run, stale: Sequence[int], on_result: OnResult) -> None: ...


@dataclass(frozen=True)
class Passed:
    """A finished pass: one outcome per pattern, and what the report says of the pass."""

    outcomes: list[Outcome]
    meta: dict[str, Any]


def select(lib: Library, only: tuple[str, ...]) -> tuple[list[Entry], list[Outcome]]:
    """The entries to garden, and failed outcomes for files sharing another file's slug."""
    if only:
        unknown = sorted(set(only) - lib.slugs)
        if unknown:
            raise UsageError(f"--only names no pattern of {lib.root}: {', '.join(unknown)}")
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
                      "give one of them another slug", detail=Detail(problem="duplicate_slug")))
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
    calibration, note = calibration_for(root, model)
    run = Run(root=root, entries=entries, index=CandidateIndex(lib.patterns),
              slugs=lib.slugs, state=load_state(root), llm=llm, model=model, prompts=prompts,
              prompt_version=prompts.version, today=options.today or dt.date.today(),
              options=options, calibration=calibration, calibration_note=note,
              usual_type=usual_type(lib.patterns), rejections=Rejections.of(ledger),
              registry=load_registry(root),
              entities=resolve_library(lib.patterns, load_aliases(root)),
              profile=profile_for(model))
    return run, report.unreadable(lib.errors) + clashes, lib


def failed_outcome(run: Run, i: int, exc: BaseException, *, retried_by: str = "") -> Outcome:
    """A pattern whose gardening still failed after its retries (or crashed), as its outcome;
    ``retried_by`` names who retried it (``"Prefect"``), when not this module."""
    p = run.entries[i].pattern
    # The tries that failed were counted as they failed, in this process; a task that ran in
    # another process (Dask) left only its last exception's usage.
    used = usage_of(run, i, Usage())
    if used.requests == 0 and isinstance(exc, LLMError):
        used = exc.usage
    retries = run.options.retries
    who = f"{retried_by} " if retried_by else ""
    after = f" (after {retries} {who}retr{'y' if retries == 1 else 'ies'})" if retries else ""
    said = exc.message if isinstance(exc, LLMError) else f"{type(exc).__name__}: {exc}"
    return Outcome(path=str(p.path), slug=p.slug, status=Status.FAILED,
                   error=f"{p.path}: {said}{after}", warnings=list(p.warnings),
                   usage=tokens_of(used), requests=used.requests)


def batch_order(run: Run, stale: Sequence[int]) -> list[int]:
    """Stale patterns in the order a pass asks them: never gardened first, then the longest
    since they were last gardened, then by slug. Stable from run to run, so a pass bounded by
    ``--max-patterns`` takes the next batch each time and a library is gone through in bites."""
    def key(i: int) -> tuple[dt.date, str]:
        slug = run.entries[i].pattern.slug
        entry = run.state.get(slug)
        return (entry.date if entry is not None else dt.date.min, slug)

    return sorted(stale, key=key)


def later(run: Run, i: int, limit: int, reason: str) -> Gardened:
    """A stale pattern past this run's ``max_patterns``: SKIPPED, its state untouched, so a
    later run asks it; a planned batch, not a failure or a spent budget."""
    p = run.entries[i].pattern
    return Gardened(Outcome(
        path=str(p.path), slug=p.slug, status=Status.SKIPPED, warnings=list(p.warnings),
        detail=Detail(reason=f"{NOT_ASKED}: left for a later batch (--max-patterns {limit})",
                      not_asked="batch", stale=reason)))


def decide(run: Run, on_result: OnResult) -> list[int]:
    """Which patterns this run asks, in ``batch_order``, at most ``options.max_patterns`` of
    them; every other pattern's outcome goes to ``on_result`` at once (up to date, or left
    for a later batch), so no task is ever made only to say "not now"."""
    stale: list[int] = []
    for i, entry in enumerate(run.entries):
        try:
            c = check(run, i)
        except Exception as exc:  # a bug in one decision must not stop the others
            log.exception("%s: unexpected error while deciding", entry.pattern.path)
            on_result(Gardened(failed_outcome(run, i, exc)))
            continue
        if not c.stale:
            on_result(skipped(run, i, c.reason))
            continue
        with run.lock:
            run.checks[i] = c
        stale.append(i)
    ordered = batch_order(run, stale)
    limit = run.options.max_patterns
    if limit is None:
        return ordered
    for i in ordered[limit:]:
        with run.lock:
            c = run.checks.pop(i)
        on_result(later(run, i, limit, c.reason))
    return ordered[:limit]


def with_retries(run: Run, i: int) -> Gardened:
    """``garden_one``, tried again ``options.retries`` times after a transient failure (the
    only kind it raises), ``options.retry_delay_s`` apart, unless the run halted meanwhile."""
    options = run.options
    retrying = Retrying(stop=stop_after_attempt(options.retries + 1),
                        wait=wait_fixed(options.retry_delay_s),
                        retry=retry_if_exception(lambda _: run.halted() is None),
                        reraise=True)
    result: Gardened = retrying(garden_one, run, i)
    return result


def in_threads(run: Run, stale: Sequence[int], on_result: OnResult) -> None:
    """The plain runner: a thread per model call the run allows in flight."""
    workers = max(1, run.options.concurrency or DEFAULT_CONCURRENCY)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gardener")
    try:
        futures = {pool.submit(with_retries, run, i): i for i in stale}
        for future in as_completed(futures):
            i = futures[future]
            try:
                value = future.result()
            except Exception as exc:
                value = Gardened(failed_outcome(run, i, exc))
            on_result(value)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def garden_library(root: Path, options: GardenOptions, llm: StructuredLLM, model: str, *,
                   runner: Runner = in_threads,
                   on_start: Callable[[int], None] | None = None,
                   on_outcome: Callable[[Outcome], None] | None = None,
                   on_open: Callable[[Run], None] | None = None) -> Passed:
    """The pass over one library with a ready client. ``on_start`` gets the number of
    patterns, ``on_outcome`` each outcome as it comes, ``on_open`` the run (a caller stops it
    with ``Run.stop`` on Ctrl-C). A pass that writes holds the library's lock: a second one
    is refused at once."""
    if options.dry_run:
        return _garden_library(root, options, llm, model, runner, on_start, on_outcome, on_open)
    with holding(root, "gardener run"):
        return _garden_library(root, options, llm, model, runner, on_start, on_outcome, on_open)


def _garden_library(root: Path, options: GardenOptions, llm: StructuredLLM, model: str,
                    runner: Runner, on_start: Callable[[int], None] | None,
                    on_outcome: Callable[[Outcome], None] | None,
                    on_open: Callable[[Run], None] | None) -> Passed:
    started = time.monotonic()
    options = within_endpoint(options, llm)
    # Temporary files of a run that was killed mid-write: never patterns, but litter.
    leftovers = [] if options.dry_run else [str(p) for p in remove_leftovers(root)]
    run, outcomes, lib = open_run(root, options, llm, model)
    if on_start is not None:
        on_start(len(run.entries) + len(outcomes))
    for o in outcomes:
        if on_outcome is not None:
            on_outcome(o)
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
        if on_outcome is not None:
            on_outcome(result.outcome)

    if on_open is not None:
        on_open(run)
    try:
        stale = decide(run, collect)
        runner(run, stale, collect)
    except BaseException:
        # Ctrl-C: the patterns still waiting for a slot give up instead of asking the model.
        run.stopped = INTERRUPTED
        raise
    finally:
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
        "calibration": calibration_meta(run),
    }
    if options.budget_tokens is not None:
        meta["budget_tokens"] = options.budget_tokens
    if state.problems:
        meta["state_problems"] = list(state.problems)
    if leftovers:
        meta["removed_leftovers"] = leftovers
    if options.report:
        report.write(Path(options.report), report.build(
            outcomes, command="garden", library=root, meta=meta,
            existing=in_degrees(lib.patterns)))
    return Passed(outcomes, meta)




def calibration_meta(run: Run) -> dict[str, Any]:
    """What the report, the review and health say of the links' confidence."""
    cal = run.calibration
    return {"line": cal.line(), "shipped": cal.shipped, "model": cal.model,
            "date": cal.date, "note": run.calibration_note,
            "min_confidence": run.options.prune.min_confidence}


def pass_cost(outcomes: list[Outcome], model: str, options: GardenOptions,
              llm: StructuredLLM) -> dict[str, object]:
    """The pass's tokens (as the endpoint reported them) and their estimated price."""
    settings = getattr(llm, "settings", None)
    local = isinstance(settings, LLMSettings) and settings.loopback
    used = report.totals(outcomes)["usage"]
    return cost_of(price_for(model, options.prices, local=local),
                   used.get("prompt_tokens", 0), used.get("completion_tokens", 0))
