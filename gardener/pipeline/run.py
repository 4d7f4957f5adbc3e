"""One gardening pass's shared state: what its tasks read, its limits, its bound on calls.

Why apart from the pass: the per-pattern work (``pattern_task``) and the pass (``garden``)
both hold a ``Run``; its limits (deadline, token budget, a fatal endpoint error, a stop) are
decided here, under one lock, so every task sees the same answer (the pattern count is
decided before anything is asked, ``garden.decide``). ``InFlight`` is the run's client seen
through its slots: at most ``concurrency`` model calls at once.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from gardener.endpoint.client import LLMError, StructuredOutputError, Usage
from gardener.endpoint.fixtures import FixtureMissing
from gardener.endpoint.settings import LLMSettings
from gardener.graph.entities import Resolution
from gardener.library.calibration import Calibration
from gardener.library.load import Entry
from gardener.library.registry import Registry
from gardener.library.state import State, save_state
from gardener.pipeline.options import GardenOptions
from gardener.propose.profiles import DEFAULT as DEFAULT_PROFILE
from gardener.propose.profiles import Profile
from gardener.propose.prompts import PromptSet
from gardener.propose.propose import StructuredLLM
from gardener.shortlist.candidates import CandidateIndex, CandidateInfo
from gardener.steps.rejections import Rejections


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
    calibration: Calibration
    """What a link's confidence means: the library's own fit, else the shipped default
    (``gardener.library.calibration``); every link is written by it (``steps.link``)."""
    usual_type: str = "complementary"
    """The library's most common human link type: a link the ranker found and no model typed."""
    calibration_note: str | None = None
    """Why the library's own calibration is not used, when it is not."""
    rejections: Rejections = field(default_factory=Rejections)
    """Links people rejected: never proposed again."""
    spent: dict[int, Usage] = field(default_factory=dict)
    """Usage of attempts that failed and were retried, per pattern, so no token goes unbilled."""
    checks: dict[int, Check] = field(default_factory=dict)
    """The flow's decisions for the patterns it sent to tasks in this process, so no task
    redoes them."""
    profile: Profile = DEFAULT_PROFILE
    """The model's shortlist, prompt and answer sizes (``gardener.propose.profiles``)."""
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

    def past_deadline(self) -> bool:
        """The run is older than ``options.deadline_s``."""
        deadline = self.options.deadline_s
        return deadline is not None and time.monotonic() - self.started >= deadline

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
    shortlist: list[CandidateInfo] | None
    """None until needed: a pattern known stale without it (new, edited, a new prompt or
    model) is ranked only when it is asked (``pattern_task.shortlisted``)."""
    candidates_fp: str | None
    fingerprint: str


T = TypeVar("T", bound=BaseModel)


class NotAsked(Exception):
    """The run halted while the pattern waited for a free slot: its model call never started."""

    def __init__(self, why: str, *, budget: bool = False) -> None:
        super().__init__(why)
        self.budget = budget
        """Stopped by the token budget: the pattern is SKIPPED, not failed."""


NOT_ASKED = "not asked"
"""``Outcome.detail.not_asked`` of a pattern the token budget left for the next run."""


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
