"""What a gardening run is told: plain values, so a Prefect deployment can carry them.

A served deployment (``gardener serve``) takes its parameters from whoever may start a flow
run on its server; so a run under ``GARDENER_SERVED`` refuses, when its options are
validated (in the flow run's process, before anything is read), a path outside the served
library and a model the deployment was not made with (`refuse_unserved_options`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gardener.endpoint.fixtures import FixtureMode
from gardener.endpoint.prices import Rate
from gardener.endpoint.settings import MAX_CONCURRENCY, MAX_CONTEXT, MAX_TIMEOUT_S, MIN_CONTEXT
from gardener.library.scope import Scope
from gardener.pipeline import DEFAULT_CONCURRENCY
from gardener.pipeline.served import SERVED, UnservedError
from gardener.steps.prune import PruneSettings


class UnservedOptionError(UnservedError, ValueError):
    """A served run's option that points outside the served library, or names a model the
    deployment was not made with (a ValueError, so pydantic reports it as the option's)."""


def refuse_unserved_options(options: GardenOptions,
                            environ: Mapping[str, str] | None = None) -> None:
    """In a served run, refuse ``options`` that reach past the deployment: a fixtures folder
    (recording writes there, replaying reads there) or a decisions ledger outside the
    library, and a model other than those the deployment names (``models``, from the
    library's ``gardener.toml`` and ``gardener serve --model``). Outside a served run,
    anything goes."""
    raw = (os.environ if environ is None else environ).get(SERVED)
    if not raw:
        return
    fixed = json.loads(raw)
    library = Path(fixed["library"])
    if options.fixture_mode is not None and options.fixtures is None:
        raise UnservedOptionError(f"this server gardens {library} only; refusing fixtures in "
                                  "the working folder: name a fixtures folder inside the "
                                  "library")
    for name, value in (("fixtures", options.fixtures), ("decisions", options.decisions)):
        if value is not None and not Path(value).resolve().is_relative_to(library):
            raise UnservedOptionError(f"this server gardens {library} only; refusing "
                                      f"{name} {value} outside it")
    models = fixed.get("models")
    if options.model is not None and models is not None and options.model not in models:
        named = ", ".join(repr(m) for m in models) or "none (the environment's default)"
        raise UnservedOptionError(f"this server asks the models its deployment names "
                                  f"({named}); refusing model {options.model!r}")


class GardenOptions(BaseModel):
    """Everything a gardening run is told; plain values, so a deployment can carry them."""

    model_config = ConfigDict(frozen=True)

    dry_run: bool = False
    """Compute and report every change (with diffs) but write nothing, not even the state."""
    only: tuple[str, ...] = ()
    """Garden only these slugs (the whole library is still read, for candidates)."""
    concurrency: int = Field(DEFAULT_CONCURRENCY, ge=1, le=MAX_CONCURRENCY)
    """Model calls in flight at once (per process the tasks run in): what an endpoint's rate
    limit sees."""
    model: str | None = None
    mode: str | None = None
    fixtures: str | None = None
    fixture_mode: FixtureMode | None = None
    today: dt.date | None = None
    vitality_target: Literal["garden", "assessment"] = "garden"
    candidates: int | None = Field(None, ge=0)
    """Shortlist size: how many link targets the model may choose from; None: the model's
    profile decides (``gardener.propose.profiles``: 40, 8 for a small model)."""
    retries: int = Field(2, ge=0)
    """Prefect retries of a pattern whose model call failed transiently."""
    retry_delay_s: float = Field(15.0, ge=0)
    pattern_budget_s: float = Field(900.0, gt=0)
    """No Prefect retry of a pattern starts once this long has passed since its first try."""
    give_up_after: int = Field(5, ge=1)
    """This many model calls failing in a row (after the client's own retries), with no
    success between them, mean the endpoint is down: the run asks nothing more."""
    deadline_s: float | None = Field(None, gt=0)
    """No model call starts once the run is this old; the patterns left fail, and the next
    run gardens them. None: no deadline (``give_up_after`` still stops a dead endpoint)."""
    budget_tokens: int | None = Field(None, ge=1)
    """No model call starts once the run's calls have used this many tokens (prompt and
    completion, as the endpoint reported them); calls in flight finish. The patterns left are
    SKIPPED as not asked (``NOT_ASKED``), their state untouched, so the next run asks them."""
    max_patterns: int | None = Field(None, ge=1)
    """Ask the model about at most this many stale patterns in this run, in batch order
    (``garden.batch_order``: never gardened, then longest since, then by slug); the others
    are SKIPPED as left for a later batch (``detail["not_asked"] == "batch"``), a planned
    bite of the library, and the next run asks the next ones."""
    prices: dict[str, Rate] = Field(default_factory=dict)
    """Model family -> dollars per million tokens over the built-in table
    (``gardener.endpoint.prices``), for the report's estimated cost (``gardener.toml``)."""
    report: str | None = None
    """Write the JSON report here."""
    decisions: str | None = None
    """A decisions ledger honoured besides the library's own (``gardener.review.decisions``): the
    user's working copy, when ``gardener review`` gardens a clean checkout of the library."""
    scope: Scope = Field(default_factory=Scope)
    """Which files are patterns, which extra keys hold human relationships (``gardener.toml``)."""
    prune: PruneSettings = Field(default_factory=PruneSettings)
    """Pruning's threshold, caps and the library's type renames, after each merge."""
    timeout_s: float | None = Field(None, gt=0, le=MAX_TIMEOUT_S)
    """Seconds one request may take, when GARDENER_TIMEOUT_S does not say (``gardener.toml``)."""
    context: int | None = Field(None, ge=MIN_CONTEXT, le=MAX_CONTEXT)
    """Tokens of context the model has, when GARDENER_CONTEXT does not say (``gardener.toml``)."""

    @model_validator(mode="after")
    def _served(self) -> GardenOptions:
        """Prefect validates a flow run's parameters into this model: the served run's check."""
        refuse_unserved_options(self)
        return self
