"""The gardening pass as a Prefect flow: one task per pattern, bounded, retried, incremental.

The flow reads the library and builds the candidate index once, decides which patterns are
stale and submits one task per stale pattern to its task runner: Prefect's
``ThreadPoolTaskRunner`` by default, or any other the flow is given
(``garden.with_options(task_runner=...)``, e.g. Dask). A task gets a run key, an index into
that run's pattern list, the slug (for its name), the library and the options: in the flow's
process the key finds the run the flow built; in another process (a Dask worker) the task
rebuilds it from the library and the options. No result is persisted. Model calls in flight
are bounded by a semaphore of ``concurrency`` per process, whatever the number of threads.

A task asks the model only when the pattern is stale (``gardener.pipeline.state``): its content, the
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
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar, cast

from prefect import flow, task
from prefect.cache_policies import NONE
from prefect.futures import PrefectFuture, as_completed
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from pydantic import BaseModel

from gardener.graph.communities import Registry, load_registry
from gardener.graph.entities import Resolution, load_aliases, resolve_library
from gardener.library import load as library_mod
from gardener.library.load import Entry, Library
from gardener.library.lock import holding
from gardener.library.write import remove_leftovers
from gardener.llm.candidates import CandidateIndex, CandidateInfo
from gardener.llm.client import LLM, LLMError, StructuredOutputError, Usage
from gardener.llm.fixtures import FixtureMissing
from gardener.llm.prices import as_dict as cost_of
from gardener.llm.prices import price_for
from gardener.llm.profiles import DEFAULT as DEFAULT_PROFILE
from gardener.llm.profiles import Profile, profile_for
from gardener.llm.prompts import PromptSet, default_prompts
from gardener.llm.propose import ProposalResult, StructuredLLM, fitted_profile, propose
from gardener.llm.settings import LLMSettings
from gardener.model import Garden, Outcome, Outcomes, Status
from gardener.pipeline import (
    Hooks,
    attached,
    finish,
    hooks_for,
    in_process_run,
    refuse_unserved,
    report,
)
from gardener.pipeline.endpoint import is_transient, model_client, within_endpoint
from gardener.pipeline.options import GardenOptions
from gardener.pipeline.state import (
    StaleReason,
    State,
    content_fingerprint,
    load_state,
    needs_gardening,
    save_state,
)
from gardener.review import decisions as decisions_mod
from gardener.steps.passes import apply, garden_entry

log = logging.getLogger("gardener.flows")

SAVE_EVERY = 50
"""Save the state after this many gardened patterns, so an interrupted run keeps its work."""
SAVE_INTERVAL_S = 2.0
"""...and when this long has passed since the last save: a killed run loses at most this
much work (the files it wrote are kept; only their state records would be re-asked)."""


# ---------------------------------------------------------------------------------------------
# One pattern


@dataclass
class Run:
    """What every task of one flow run shares; built once per process, read by all tasks."""

    root: Path
    entries: list[Entry]
    index: CandidateIndex
    slugs: frozenset[str]
    state: State
    """Read by tasks for the skip decision; only the flow records into it."""
    llm: StructuredLLM
    model: str
    prompts: PromptSet
    prompt_version: str
    today: dt.date
    options: GardenOptions
    rejections: decisions_mod.Rejections = field(default_factory=decisions_mod.Rejections)
    """Links people rejected: never proposed again."""
    spent: dict[int, Usage] = field(default_factory=dict)
    """Usage of attempts that failed and were retried, per pattern, so no token goes unbilled."""
    checks: dict[int, Check] = field(default_factory=dict)
    """The flow's decisions for the patterns it sent to tasks in this process, so no task
    redoes them."""
    profile: Profile = DEFAULT_PROFILE
    """The model's shortlist, prompt and answer sizes (``gardener.llm.profiles``)."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    fatal: str | None = None
    """An endpoint error no other pattern can get past (bad key, unknown model, nothing
    listening): once seen, later patterns fail with it instead of repeating the request."""
    registry: Registry | None = None
    """The library's community registry: proposals draw their communities from it."""
    entities: Resolution | None = None
    """The library's entity ids by concept: proposals reuse them."""
    started: float = field(default_factory=time.monotonic)
    first_try: dict[int, float] = field(default_factory=dict)
    """When each pattern's first model call started, for ``pattern_budget_s``."""
    failing: int = 0
    """Model calls failed transiently in a row, with no success since: see ``give_up_after``."""
    stopped: str | None = None
    """Why the run was stopped (Ctrl-C): no model call starts and no file is written after."""
    writing: int = 0
    """Patterns being merged and written now: what ``stop`` waits for."""
    used_tokens: int = 0
    """Tokens the run's finished model calls used (prompt + completion): ``budget_tokens``."""
    asked: int = 0
    """Patterns this run has started asking the model about: ``max_patterns``."""
    slots: threading.BoundedSemaphore = field(init=False)
    """One per model call allowed in flight (``options.concurrency``), held only around it."""
    idle: threading.Condition = field(init=False)
    """Notified (under ``lock``) when a pattern's write is done."""

    def __post_init__(self) -> None:
        self.slots = threading.BoundedSemaphore(self.options.concurrency)
        self.idle = threading.Condition(self.lock)

    def stop(self, why: str, timeout_s: float = 30.0) -> None:
        """Stop the run now, from any thread: no more model calls or writes; the writes
        under way finish (no file is left half-replaced), then the state records what was
        written and collected. Answers still to come are dropped, unwritten."""
        with self.lock:
            self.stopped = self.stopped or why
            self.idle.wait_for(lambda: self.writing == 0, timeout=timeout_s)
        if not self.options.dry_run:
            save_state(self.root, self.state)

    def writes(self) -> bool:
        """Count a write in, unless the run was stopped (see ``wrote``)."""
        with self.lock:
            if self.stopped is not None:
                return False
            self.writing += 1
            return True

    def wrote(self) -> None:
        with self.lock:
            self.writing -= 1
            self.idle.notify_all()

    def halted(self) -> str | None:
        """Why no more model calls may start in this run, if none may."""
        if self.fatal is not None:
            return self.fatal
        if self.stopped is not None:
            return self.stopped
        deadline = self.options.deadline_s
        if deadline is not None and time.monotonic() - self.started >= deadline:
            return (f"the run reached its deadline of {deadline:g} s; run again to garden "
                    "the patterns left")
        return None

    def over_budget(self) -> str | None:
        """Why no more model calls may start, if the run's token budget is spent."""
        budget = self.options.budget_tokens
        with self.lock:
            used = self.used_tokens
        if budget is None or used < budget:
            return None
        return (f"token budget spent ({used:,} of {budget:,} tokens); the next run asks "
                "the patterns left")

    def take_pattern(self) -> str | None:
        """Count one more pattern asked, or say why ``max_patterns`` allows no more."""
        limit = self.options.max_patterns
        with self.lock:
            if limit is not None and self.asked >= limit:
                return (f"pattern limit reached ({limit} asked this run); the next run asks "
                        "the patterns left")
            self.asked += 1
        return None

    def charge(self, used: Usage) -> None:
        """Count a finished call's tokens against the budget."""
        with self.lock:
            self.used_tokens += used.prompt_tokens + used.completion_tokens


def is_fatal(exc: LLMError) -> bool:
    """The endpoint itself is unusable for this run, whatever the pattern."""
    if isinstance(exc, FixtureMissing) or exc.transient:
        return False
    return exc.status in (401, 403, 404) or (exc.status is None and exc.__cause__ is not None)


@dataclass(frozen=True)
class Check:
    """Whether a pattern must be gardened, and the inputs that decision (and the state) use."""

    stale: bool
    reason: str
    shortlist: list[CandidateInfo]
    candidates_fp: str
    fingerprint: str


@dataclass(frozen=True)
class Record:
    """What the state should remember of a pattern whose file now holds its gardening."""

    fingerprint: str
    prompt_version: str
    model: str
    candidates_fp: str
    garden: Garden | None


@dataclass(frozen=True)
class Gardened:
    """A task's result: the outcome, and the state record when there is one to keep."""

    outcome: Outcome
    record: Record | None = None


_runs: dict[str, Run] = {}
_runs_lock = threading.Lock()


T = TypeVar("T", bound=BaseModel)


class NotAsked(Exception):
    """The run halted while the pattern waited for a free slot: its model call never started."""

    def __init__(self, why: str, *, budget: bool = False) -> None:
        super().__init__(why)
        self.budget = budget
        """Stopped by the token budget: the pattern is SKIPPED, not failed."""


NOT_ASKED = "not asked"
"""``Outcome.detail["not_asked"]`` of a pattern the token budget left for the next run."""


@dataclass(frozen=True)
class InFlight:
    """The run's client behind its slots: at most ``concurrency`` model calls at once.

    The bound is on calls, not on tasks: a pattern that waited for a slot checks again that
    the run may still ask (a dead endpoint or a passed deadline stops it there), so no more
    calls start after the run halted than there were slots.
    """

    run: Run

    @property
    def settings(self) -> LLMSettings | None:
        """The run's client settings (its context, answer bound, re-asks), when it has them."""
        settings = getattr(self.run.llm, "settings", None)
        return settings if isinstance(settings, LLMSettings) else None

    def structured(self, *, response_model: type[T], messages: list[dict[str, Any]],
                   context: dict[str, Any] | None = None, tag: str = "",
                   max_retries: int | None = None) -> tuple[T, Usage]:
        with self.run.slots:
            halted = self.run.halted()
            if halted is not None:
                raise NotAsked(halted)
            spent = self.run.over_budget()
            if spent is not None:
                raise NotAsked(spent, budget=True)
            try:
                answer, used = self.run.llm.structured(
                    response_model=response_model, messages=messages, context=context, tag=tag,
                    max_retries=max_retries)
            except (LLMError, StructuredOutputError) as exc:
                self.run.charge(exc.usage)
                raise
            self.run.charge(used)
            return answer, used


def _usage(run: Run, i: int, used: Usage) -> Usage:
    with run.lock:
        return run.spent.pop(i, Usage()) + used


def _tokens(used: Usage) -> dict[str, int]:
    return {"prompt_tokens": used.prompt_tokens, "completion_tokens": used.completion_tokens}


def check(run: Run, i: int) -> Check:
    """The skip decision for pattern ``i``: content, prompt, model and candidates as before?"""
    entry = run.entries[i]
    p = entry.pattern
    size = run.options.candidates
    shortlist = run.index.shortlist(p, run.profile.candidates if size is None else size)
    # The registry's communities are choices the model is offered, like the candidates: a
    # changed registry makes the pattern stale. Without a registry nothing is added.
    offered = [f"community:{cid}" for cid in run.registry.ids] if run.registry else []
    candidates_fp = run.index.fingerprint([c.slug for c in shortlist] + offered)
    fingerprint = content_fingerprint(
        entry.doc.data, entry.doc.body,
        vitality_in_assessment=run.options.vitality_target == "assessment")
    stale, reason = needs_gardening(run.state.get(p.slug), fingerprint=fingerprint,
                                    prompt_version=run.prompt_version, model=run.model,
                                    candidates_fp=candidates_fp)
    return Check(stale, str(reason), shortlist, candidates_fp, fingerprint)


def skipped(run: Run, i: int, reason: str) -> Gardened:
    p = run.entries[i].pattern
    return Gardened(Outcome(path=str(p.path), slug=p.slug, status=Status.SKIPPED,
                            warnings=list(p.warnings), detail={"reason": reason}))


def _not_asked(run: Run, i: int, halted: str, reason: str, *, used: Usage | None = None,
               what: str = "not asked") -> Gardened:
    p = run.entries[i].pattern
    used = _usage(run, i, used or Usage())
    return Gardened(Outcome(
        path=str(p.path), slug=p.slug, status=Status.FAILED,
        error=f"{p.path}: {what}: {halted}", warnings=list(p.warnings),
        usage=_tokens(used), requests=used.requests, detail={"reason": str(reason)}))


def over_budget(run: Run, i: int, why: str, reason: str) -> Gardened:
    """A pattern the token budget left unasked: SKIPPED, its state untouched, so the next
    run asks it (the summary and the report count it as not asked)."""
    p = run.entries[i].pattern
    used = _usage(run, i, Usage())
    return Gardened(Outcome(path=str(p.path), slug=p.slug, status=Status.SKIPPED,
                            warnings=list(p.warnings), usage=_tokens(used),
                            requests=used.requests,
                            detail={"reason": f"{NOT_ASKED}: {why}", "not_asked": "budget",
                                    "stale": str(reason)}))


def ask(run: Run, i: int, shortlist: list[CandidateInfo], llm: StructuredLLM) -> ProposalResult:
    """Pattern ``i``'s proposal from ``llm``, asked as every pass asks it (``--estimate``
    builds its requests through this too), its prompt cut to the context the client's
    settings know of (``fitted_profile``)."""
    settings = getattr(llm, "settings", None)
    chosen = fitted_profile(run.entries[i].pattern, shortlist, run.profile, settings,
                            prompts=run.prompts, registry=run.registry
                            ) if isinstance(settings, LLMSettings) else None
    profile = run.profile if chosen is None else chosen.profile
    result = propose(run.entries[i].pattern, shortlist[:profile.candidates], llm,
                     today=run.today, prompts=run.prompts, limits=profile.limits,
                     caps=profile.caps, registry=run.registry,
                     max_retries=None if chosen is None else chosen.reasks)
    if chosen is None or (chosen.profile == run.profile and isinstance(settings, LLMSettings)
                          and chosen.reasks == settings.max_retries):
        return result
    return replace(result, asked_with={
        "profile": chosen.profile.name, "candidates": chosen.profile.candidates,
        "reasks": chosen.reasks, "prompt_tokens": chosen.tokens, "budget": chosen.budget,
        "context": settings.context if isinstance(settings, LLMSettings) else None})


def garden_one(run: Run, i: int) -> Gardened:
    """Garden pattern ``i`` of ``run``: propose, merge, prune, render, verify, write.

    The flow sends only stale patterns, so this one is asked whatever the state it finds
    (in another process, a state loaded later may already hold other patterns' records).
    Raises only a transient ``LLMError``, for Prefect to retry; everything else is an outcome.
    """
    entry = run.entries[i]
    p = entry.pattern
    options = run.options
    try:
        with run.lock:
            decided = run.checks.get(i)
        c = decided or check(run, i)
        shortlist, candidates_fp, fingerprint, reason = (
            c.shortlist, c.candidates_fp, c.fingerprint, c.reason)
        halted = run.halted()
        if halted is not None:
            return _not_asked(run, i, halted, reason)
        spent = run.over_budget()
        if spent is None and i not in run.first_try:
            spent = run.take_pattern()  # a Prefect retry of this pattern is not a new one
        if spent is not None:
            return over_budget(run, i, spent, reason)
        with run.lock:
            run.first_try.setdefault(i, time.monotonic())
        try:
            result = ask(run, i, shortlist, InFlight(run))
        except NotAsked as exc:
            if exc.budget:
                return over_budget(run, i, str(exc), reason)
            return _not_asked(run, i, str(exc), reason)
        except LLMError as exc:
            if is_transient(exc):
                with run.lock:
                    run.spent[i] = run.spent.get(i, Usage()) + exc.usage
                stop = _give_up(run, i, exc)
                if stop is None:
                    raise
                used = _usage(run, i, Usage())
                return Gardened(Outcome(
                    path=str(p.path), slug=p.slug, status=Status.FAILED,
                    error=f"{p.path}: {exc.message} ({stop})", warnings=list(p.warnings),
                    usage=_tokens(used), requests=used.requests,
                    detail={"reason": str(reason)}))
            if is_fatal(exc):
                with run.lock:
                    run.fatal = run.fatal or exc.message
            used = _usage(run, i, exc.usage)
            return Gardened(Outcome(
                path=str(p.path), slug=p.slug, status=Status.FAILED,
                error=f"{p.path}: {exc.message}",
                warnings=list(p.warnings), usage=_tokens(used), requests=used.requests,
                detail={"reason": str(reason)}))
        with run.lock:
            run.failing = 0
        if result.salvaged and not result.answered:
            used = _usage(run, i, result.usage)
            return Gardened(Outcome(
                path=str(p.path), slug=p.slug, status=Status.FAILED,
                error=f"{p.path}: the model gave no usable answer, even after re-asking "
                      f"({'; '.join(result.dropped[:3])}); not written, the next run asks "
                      "again", warnings=list(p.warnings), usage=_tokens(used),
                requests=used.requests, detail={"reason": str(reason), "salvaged": True,
                                                "dropped": result.dropped}))
        if not run.writes():
            return _not_asked(run, i, f"{run.stopped}", reason, used=result.usage,
                              what="answered but not written")
        try:
            outcome, new_garden = settle(run, i, result.garden, result.evidence,
                                         edited=reason == StaleReason.CONTENT)
        finally:
            run.wrote()
        used = _usage(run, i, result.usage)
        outcome.usage = _tokens(used)
        outcome.requests = used.requests
        new = [{"id": c.id, "label": c.label, "justification": c.justification}
               for c in result.proposal.communities if c.justification]
        outcome.detail = {**outcome.detail, "reason": str(reason), "salvaged": result.salvaged,
                          **({"dropped": result.dropped} if result.dropped else {}),
                          **({"new_communities": new} if new else {}),
                          **({"fitted": result.asked_with} if result.asked_with else {})}
        outcome.evidence = {t: result.evidence[t] for t in outcome.added if t in result.evidence}
        if outcome.status in (Status.FAILED, Status.CONFLICT) or options.dry_run:
            return Gardened(outcome)
        written = new_garden if outcome.status is Status.CHANGED else p.garden
        return Gardened(outcome, Record(
            fingerprint=fingerprint, prompt_version=result.prompt_version, model=run.model,
            candidates_fp=candidates_fp, garden=written))
    except LLMError:
        raise
    except Exception as exc:  # a bug must not stop the other patterns; it is shown, though
        log.exception("%s: unexpected error while gardening", p.path)
        return Gardened(Outcome(
            path=str(p.path), slug=p.slug, status=Status.FAILED,
            error=f"{p.path}: unexpected error: {type(exc).__name__}: {exc}",
            warnings=list(p.warnings)))


def settle(run: Run, i: int, proposed: Garden, evidence: Mapping[str, str] | None = None,
           *, edited: bool = False) -> tuple[Outcome, Garden | None]:
    """Merge pattern ``i``'s proposal with its garden, prune, render, verify and write it:
    the outcome, and the garden the file now holds when it changed. ``evidence`` (each
    proposed link's quote, by target) lets a proposed type retype an existing link;
    ``edited`` (the text changed since its last gardening) lets pruning judge the items
    already there as ``stale``."""
    options = run.options
    change = garden_entry(run.entries[i], proposed, slugs=run.slugs, today=run.today,
                          settings=options.prune, vitality_target=options.vitality_target,
                          rejections=run.rejections, entities=run.entities,
                          diff=options.dry_run, evidence=evidence, edited=edited)
    return apply(change, dry_run=options.dry_run, root=run.root), change.garden


def _give_up(run: Run, i: int, exc: LLMError) -> str | None:
    """Why a pattern whose model call failed transiently gets no Prefect retry, if it gets
    none: the endpoint looks down, the pattern's time budget or the run's deadline is spent."""
    options = run.options
    with run.lock:
        run.failing += 1
        if run.fatal is None and run.failing >= options.give_up_after:
            run.fatal = (f"{run.failing} model calls in a row failed with no success between "
                         f"them, the last with: {exc.message}; the endpoint looks down, so "
                         "this run asks nothing more")
            log.error("%s", run.fatal)
        spent = time.monotonic() - run.first_try.get(i, run.started)
    halted = run.halted()
    if halted is not None:
        return f"no retry: {halted}"
    if spent + options.retry_delay_s >= options.pattern_budget_s:
        return (f"no retry: {spent:.0f} s spent on this pattern, its budget is "
                f"{options.pattern_budget_s:g} s")
    return None


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
              options=options, rejections=decisions_mod.Rejections.of(ledger),
              registry=load_registry(root),
              entities=resolve_library(lib.patterns, load_aliases(root)),
              profile=profile_for(model))
    return run, report.unreadable(lib.errors) + clashes, lib


def _failed_task(run: Run, i: int, exc: BaseException) -> Outcome:
    """A task that still failed after Prefect's retries (or crashed) as the pattern's outcome."""
    p = run.entries[i].pattern
    # The tries that failed were counted as they failed, in this process; a task that ran in
    # another process (Dask) left only its last exception's usage.
    used = _usage(run, i, Usage())
    if used.requests == 0 and isinstance(exc, LLMError):
        used = exc.usage
    retries = run.options.retries
    after = f" (after {retries} Prefect retr{'y' if retries == 1 else 'ies'})" if retries else ""
    said = exc.message if isinstance(exc, LLMError) else f"{type(exc).__name__}: {exc}"
    return Outcome(path=str(p.path), slug=p.slug, status=Status.FAILED,
                   error=f"{p.path}: {said}{after}", warnings=list(p.warnings),
                   usage=_tokens(used), requests=used.requests)


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
    finish(outcomes, command="garden", library=root, report_path=options.report, meta=meta)
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
