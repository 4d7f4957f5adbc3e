"""The pruning pass as a Prefect flow: no model, so it can run often and unattended.

Pruning is pure and takes about a millisecond per pattern, so the library is pruned in a few
batches (one task each) rather than one task per pattern: the run stays visible in the
Prefect UI, and the per-task overhead stays far below the work.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NONE
from pydantic import BaseModel, ConfigDict, Field

from gardener.library import load as library_mod
from gardener.library.load import Entry
from gardener.library.lock import holding
from gardener.library.scope import Scope
from gardener.library.write import remove_leftovers
from gardener.model import Outcome, Outcomes
from gardener.pipeline import (
    Hooks,
    attached,
    finish,
    hooks_for,
    in_process_run,
    refuse_unserved,
    report,
)
from gardener.steps.passes import apply, prune_entry
from gardener.steps.prune import PruneSettings

BATCH = 250
"""Patterns per task."""


class PruneOptions(BaseModel):
    """Everything a pruning run is told; plain values, so a deployment can carry them."""

    model_config = ConfigDict(frozen=True)

    dry_run: bool = False
    today: dt.date | None = None
    min_confidence: float = Field(0.5, ge=0.0, le=1.0)
    max_links: int = Field(12, ge=0)
    max_entities: int = Field(12, ge=0)
    max_communities: int = Field(5, ge=0)
    renames: tuple[tuple[str, str], ...] = ()
    """The library's own link type renames (``gardener.toml``), besides the built-in ones."""
    untyped: str | None = PruneSettings.untyped
    """The type an older tool's link without one gets (``relationships.untyped``)."""
    scope: Scope = Field(default_factory=Scope)
    """Which files are patterns, which extra keys hold human relationships."""
    report: str | None = None

    @property
    def settings(self) -> PruneSettings:
        return PruneSettings(min_confidence=self.min_confidence, max_links=self.max_links,
                             max_entities=self.max_entities,
                             max_communities=self.max_communities, renames=self.renames,
                             untyped=self.untyped)


@dataclass(frozen=True)
class _Run:
    entries: list[Entry]
    slugs: frozenset[str]
    today: dt.date
    options: PruneOptions


_runs: dict[str, _Run] = {}


@task(name="prune-patterns", task_run_name="prune-{start}-{stop}", cache_policy=NONE,
      persist_result=False, log_prints=False)
def prune_patterns(run: str, start: int, stop: int) -> list[Outcome]:
    """Prune patterns ``start`` to ``stop`` of the run; each one's failure is its outcome."""
    r = _runs[run]
    settings = r.options.settings
    dry_run = r.options.dry_run
    return [apply(prune_entry(entry, slugs=r.slugs, today=r.today, settings=settings,
                              diff=dry_run), dry_run=dry_run)
            for entry in r.entries[start:stop]]


@flow(name="prune", flow_run_name="prune {library}", persist_result=False, log_prints=False)
def prune(library: str, options: PruneOptions | None = None,
          session: str | None = None) -> Outcomes:
    """Prune every garden of a library: stale, weak, dangling, duplicated items go, with reasons."""
    opts = options or PruneOptions()
    refuse_unserved(library, opts.report)
    hooks = hooks_for(session)
    started = time.monotonic()
    root = Path(library)
    with contextlib.ExitStack() as held:
        if not opts.dry_run:
            held.enter_context(holding(root, "gardener prune (flow)"))
            remove_leftovers(root)  # of a run killed mid-write; no other pass is running
        return _prune(root, opts, hooks, started)


def _prune(root: Path, opts: PruneOptions, hooks: Hooks, started: float) -> Outcomes:
    lib = library_mod.load(root, scope=opts.scope)
    outcomes = report.unreadable(lib.errors)
    if hooks.on_start is not None:
        hooks.on_start(len(lib.entries) + len(outcomes))
    today = opts.today or dt.date.today()
    key = uuid.uuid4().hex
    _runs[key] = _Run(entries=list(lib.entries), slugs=lib.slugs, today=today, options=opts)
    try:
        for start in range(0, len(lib.entries), BATCH):
            batch = prune_patterns(key, start, min(start + BATCH, len(lib.entries)))
            outcomes.extend(batch)
            for o in batch:
                if hooks.on_outcome is not None:
                    hooks.on_outcome(o)
    finally:
        del _runs[key]
    meta: dict[str, Any] = {"dry_run": opts.dry_run, "today": today.isoformat(),
                            "settings": opts.settings.__dict__,
                            "seconds": round(time.monotonic() - started, 2)}
    finish(outcomes, command="prune", library=root, report_path=opts.report, meta=meta)
    return Outcomes(outcomes)


def run_prune(library: Path, options: PruneOptions, **hooks: Any) -> list[Outcome]:
    """Run the flow in this process with live hooks (``on_start``, ``on_outcome``)."""
    with attached(Hooks(**hooks)) as session, in_process_run():
        result: Outcomes = prune(str(library), options, session)
    return list(result)
