"""The pruning pass in plain Python: no model, so it can run often and unattended.

Pruning is pure and takes about a millisecond a pattern: one loop over the library, each
pattern's failure its own outcome. ``gardener prune`` and the Prefect ``prune`` flow
(``gardener.pipeline.prefect.flows``) both run this one function.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gardener.library import load as library_mod
from gardener.library.lock import holding
from gardener.library.scope import Scope
from gardener.library.write import remove_leftovers
from gardener.model import Outcome
from gardener.pipeline import report
from gardener.pipeline.garden import Passed
from gardener.steps.passes import apply, prune_entry
from gardener.steps.prune import PruneSettings


class PruneOptions(BaseModel):
    """Everything a pruning run is told; plain values, so a deployment can carry them."""

    model_config = ConfigDict(frozen=True)

    dry_run: bool = False
    today: dt.date | None = None
    min_confidence: float = Field(PruneSettings.min_confidence, ge=0.0, le=1.0)
    max_links: int = Field(PruneSettings.max_links, ge=0)
    max_entities: int = Field(PruneSettings.max_entities, ge=0)
    max_communities: int = Field(PruneSettings.max_communities, ge=0)
    renames: tuple[tuple[str, str], ...] = ()
    """The library's own link type renames (``gardener.toml``), besides the built-in ones."""
    untyped: str | None = PruneSettings.untyped
    """The type an older tool's link without one gets (``relationships.untyped``)."""
    scope: Scope = Field(default_factory=Scope)
    """Which files are patterns, which extra keys hold human relationships."""
    report: str | None = None

    @classmethod
    def of(cls, settings: PruneSettings, **rest: Any) -> PruneOptions:
        """Options carrying ``settings`` (pruning's threshold, caps and type rules)."""
        return cls(min_confidence=settings.min_confidence, max_links=settings.max_links,
                   max_entities=settings.max_entities, max_communities=settings.max_communities,
                   renames=settings.renames, untyped=settings.untyped, **rest)

    @property
    def settings(self) -> PruneSettings:
        return PruneSettings(min_confidence=self.min_confidence, max_links=self.max_links,
                             max_entities=self.max_entities,
                             max_communities=self.max_communities, renames=self.renames,
                             untyped=self.untyped)


def prune_library(root: Path, opts: PruneOptions, *,
                  on_start: Callable[[int], None] | None = None,
                  on_outcome: Callable[[Outcome], None] | None = None) -> Passed:
    """Prune every garden of a library: stale, weak, dangling, duplicated items go, with
    reasons. A pass that writes holds the library's lock and first clears the temporary files
    of a run killed mid-write; a dry run only computes (each outcome carries its diff)."""
    started = time.monotonic()
    with contextlib.ExitStack() as held:
        if not opts.dry_run:
            held.enter_context(holding(root, "gardener prune"))
            remove_leftovers(root)  # of a run killed mid-write; no other pass is running
        lib = library_mod.load(root, scope=opts.scope)
        outcomes = report.unreadable(lib.errors)
        if on_start is not None:
            on_start(len(lib.entries) + len(outcomes))
        for o in outcomes:
            if on_outcome is not None:
                on_outcome(o)
        today = opts.today or dt.date.today()
        settings = opts.settings
        for entry in lib.entries:
            outcome = apply(prune_entry(entry, slugs=lib.slugs, today=today, settings=settings,
                                        diff=opts.dry_run), dry_run=opts.dry_run, root=root)
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
    meta: dict[str, Any] = {"dry_run": opts.dry_run, "today": today.isoformat(),
                            "settings": settings.__dict__,
                            "seconds": round(time.monotonic() - started, 2)}
    if opts.report:
        report.write(Path(opts.report), report.build(outcomes, command="prune", library=root,
                                                     meta=meta))
    return Passed(outcomes, meta)
