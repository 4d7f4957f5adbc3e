"""How good a pass's links are on a library of your own: ``gardener evaluate``.

The product form of ``bench/quality.py``. Patterns with three or more human relationships
that resolve in the library (``gardener.pipeline.holdout``) are chosen with a seed
(`hold_out`); the library is copied to a temporary folder (`hidden_copy`; the library itself
is only read) and, one at a time, each chosen pattern loses its human relationships and its
garden there while the same pass as ``gardener run`` (``garden.garden_library``: the same
prompts, fitting, validation, calibration, merge and prune) gardens it, ``--only`` that slug
(`garden_heldout`). One at a time because a pass gardens one pattern while every other keeps
its links: the ranker's graph signals, which the calibration weighs, come from them. The
links it wrote are scored against the hidden ones (`row`): precision, recall and type
agreement per pattern and in total, beside the candidate ranker alone at the same number of
links (its own top m, m = the links the pass wrote for that pattern, every one typed with
the library's most common human kind) and the shortlist the model was shown (the most any
model could find); each pattern's candidates, with what the pass knew of them, are the
samples ``--calibrate`` fits on (`samples`).

A pattern the pass did not answer (failed, or not asked once ``budget_tokens`` was spent) is
listed and left out of the totals: its zero would be the endpoint's, not the model's.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gardener.errors import Failed, UsageError
from gardener.library import load as library_mod
from gardener.library.load import read_entry
from gardener.library.scope import Scope
from gardener.library.state import STATE_DIR, STATE_FILE
from gardener.library.write import write_atomic
from gardener.model import Detail, Outcome, Pattern, Status
from gardener.pipeline.calibrate import Sample, samples
from gardener.pipeline.garden import garden_library, pass_cost
from gardener.pipeline.holdout import (
    DEFAULT_N,
    DEFAULT_SEED,
    MIN_LINKS,
    Gold,
    Proposed,
    Score,
    Totals,
    check_hidden,
    choose,
    dropped_targets,
    eligible,
    gold_of,
    hide,
    most_common_type,
    score,
    total,
    unique_slugs,
    written_links,
)
from gardener.pipeline.options import GardenOptions
from gardener.pipeline.run import NOT_ASKED
from gardener.propose.profiles import profile_for
from gardener.propose.propose import StructuredLLM
from gardener.shortlist.candidates import CandidateIndex

NOT_COPIED = (".git",)
"""Folders the copy leaves out: a repository's history is no part of the library."""


@dataclass(frozen=True)
class Heldout:
    """The patterns held out of a library, chosen once, and what they are scored against."""

    root: Path
    chosen: tuple[str, ...]
    golds: dict[str, Gold]
    """Each chosen pattern's hidden human targets, with their kinds."""
    before: dict[str, Pattern]
    """The chosen patterns as the library holds them (``check_hidden`` compares)."""
    eligible: int
    """Patterns with at least ``MIN_LINKS`` resolving human relationships."""
    guess: str
    """The library's most common human link type: the ranker's typing."""
    seed: int
    n: int
    only: bool = False
    """Chosen by name (``--only``), not drawn."""


def hold_out(root: Path, scope: Scope, *, n: int = DEFAULT_N, seed: int = DEFAULT_SEED,
             only: Sequence[str] = ()) -> Heldout:
    """Choose the held-out patterns: ``only`` those slugs, else ``n`` eligible ones drawn
    with ``seed`` (the same for the same library and seed). A `UsageError` when none is
    eligible or ``only`` names one that is not."""
    lib = library_mod.load(root, scope=scope)
    patterns = lib.patterns
    slugs = frozenset(p.slug for p in patterns)
    unique = unique_slugs(patterns)
    by_slug = {p.slug: p for p in patterns if p.slug in unique}
    golds = {slug: gold_of(p, slugs) for slug, p in by_slug.items()}
    counts = {slug: len(g) for slug, g in golds.items()}
    pool = eligible(counts)
    if only:
        wrong = sorted(s for s in set(only) if counts.get(s, 0) < MIN_LINKS)
        if wrong:
            raise UsageError(f"--only: {', '.join(wrong)} has no {MIN_LINKS} human "
                             f"relationships that resolve in {root} (or no such pattern, or "
                             "its slug is used twice); it cannot be evaluated")
        chosen = sorted(set(only))
    else:
        chosen = choose(counts, n, seed)
    if not chosen:
        raise UsageError(f"no pattern of {root} has {MIN_LINKS} or more human relationships "
                         "that resolve to other patterns of it: nothing to measure links "
                         "against")
    return Heldout(root=root, chosen=tuple(chosen), golds={s: golds[s] for s in chosen},
                   before={s: by_slug[s] for s in chosen}, eligible=len(pool),
                   guess=most_common_type(patterns), seed=seed, n=n, only=bool(only))


def _writable(folder: Path) -> None:
    """Give the copy's files and folders the owner's write bit (a shared library may be
    read-only); never through a link, which could lead back into the library."""
    for top, dirs, files in os.walk(folder):
        for name in (*dirs, *files):
            path = Path(top) / name
            if not path.is_symlink():
                path.chmod(stat.S_IMODE(path.lstat().st_mode) | stat.S_IWUSR)
    folder.chmod(stat.S_IMODE(folder.lstat().st_mode) | stat.S_IWUSR)


@dataclass(frozen=True)
class Copy:
    """The library's temporary copy, and each held-out file in it as the library has it and
    with its relationships and garden cut: the pass hides one pattern at a time, as a pass
    gardens one pattern while every other keeps its links."""

    root: Path
    files: dict[str, Path]
    shown: dict[str, bytes]
    hidden: dict[str, bytes]

    def hide(self, slug: str) -> None:
        write_atomic(self.files[slug], self.hidden[slug])

    def show(self, slug: str) -> None:
        write_atomic(self.files[slug], self.shown[slug])


def hidden_copy(held: Heldout, dest: Path, scope: Scope) -> Copy:
    """Copy the library to ``dest`` (links kept as links, so nothing writes through them into
    the library; no incremental state, so every held-out pattern is asked) with every
    held-out pattern hidden (what ``--estimate`` counts); a `Failed` when hiding did not take."""
    shutil.copytree(held.root, dest, symlinks=True,
                    ignore=shutil.ignore_patterns(*NOT_COPIED))
    _writable(dest)
    (dest / STATE_DIR / STATE_FILE).unlink(missing_ok=True)
    files = {slug: dest / held.before[slug].path.relative_to(held.root) for slug in held.chosen}
    shown = {slug: path.read_bytes() for slug, path in files.items()}
    for slug in held.chosen:
        hide(files[slug], scope.human_types)
    copied = library_mod.load(dest, scope=scope).patterns
    check_hidden(held.before, {p.slug: p for p in copied}, held.chosen)
    return Copy(root=dest, files=files, shown=shown,
                hidden={slug: path.read_bytes() for slug, path in files.items()})


@dataclass(frozen=True)
class Row:
    """One held-out pattern: what the pass wrote, and how it and the ranker score."""

    slug: str
    status: str
    gold: Gold
    links: Proposed
    """The links the pass wrote, as (target, type)."""
    model: Score
    ranker: list[str]
    """The ranker's own top m, m = the distinct targets the pass wrote."""
    ranker_score: Score
    shown: int
    """Candidates the model was offered (its profile's, or fewer when the request was cut)."""
    in_shortlist: int
    """Hidden targets among them."""
    scored: bool
    """Answered by the pass: counted in the totals."""
    picks: Score
    """The model's link targets before validation (written, and dropped by the grounding
    checks: ``detail.dropped``): what it chose, whether or not it could back it."""
    ranker_picks: Score
    """The ranker's top m', m' = the distinct picks."""
    error: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    evidence: dict[str, str] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    """What the grounding checks and the calibration refused in the answer, each with why."""
    samples: list[Sample] = field(default_factory=list)
    """The ranker's top candidates and the model's picks, each with what the pass knew of it
    and whether people had linked it: what ``--calibrate`` fits on."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "slug": self.slug, "status": self.status, "scored": self.scored,
            "hidden": {t: sorted(k) for t, k in sorted(self.gold.items())},
            "links": [{"target": t, "type": k, "hit": t in self.gold,
                       "evidence": self.evidence.get(t)} for t, k in self.links],
            "ranker": [{"target": t, "hit": t in self.gold} for t in self.ranker],
            "model": _score_dict(self.model), "ranker_score": _score_dict(self.ranker_score),
            "picks": _score_dict(self.picks), "ranker_picks": _score_dict(self.ranker_picks),
            "shown": self.shown, "in_shortlist": self.in_shortlist,
            "usage": dict(self.usage), "requests": self.requests, "error": self.error,
            "dropped": list(self.dropped),
            "candidates": [{"target": x.target, "made": x.made, **x.features}
                           for x in self.samples]}


def _score_dict(s: Score | Totals) -> dict[str, Any]:
    t = s if isinstance(s, Totals) else total([s])
    return {"links": t.proposed, "hits": t.hits, "targets": t.targets,
            "typed_hits": t.typed_hits, "agreeing": t.agreeing,
            "precision": round(t.precision, 4), "recall": round(t.recall, 4),
            "type_agreement": round(t.agreement, 4)}


def measure(held: Heldout, copied: Sequence[Pattern], gardened: Sequence[Pattern],
            outcomes: Sequence[Outcome], shown: int, copy: Path | None = None) -> list[Row]:
    """Score each held-out pattern of one pass over a copy that hid them all: the links its
    garden holds after the pass (``gardened``), and the ranker's top m on the copy as the
    pass read it (``copied``). ``shown``: the shortlist size the model was offered, unless a
    pattern's request was cut (its ``detail.fitted``). ``copy``: the copy's folder, named as
    the library in errors."""
    index = CandidateIndex(copied)
    before = {p.slug: p for p in copied}
    after = {p.slug: p for p in gardened}
    by_slug = {o.slug: o for o in outcomes if o.slug is not None}
    return [row(held, slug, index, before[slug], after.get(slug), by_slug.get(slug), shown,
                copy) for slug in held.chosen]


def row(held: Heldout, slug: str, index: CandidateIndex, before: Pattern,
        after: Pattern | None, outcome: Outcome | None, shown: int,
        copy: Path | None = None) -> Row:
    """Score one held-out pattern: ``before`` as the pass read it (hidden) in the library
    ``index`` holds, ``after`` as the pass wrote it."""
    gold = held.golds[slug]
    answered = outcome is not None and outcome.status not in (Status.FAILED, Status.SKIPPED)
    links = written_links(after) if answered and after is not None else []
    m = len({t for t, _ in links})
    ranked = index.ranked(before, m)
    fitted = (outcome.detail.fitted or {}) if outcome is not None else {}
    size = int(fitted.get("candidates", shown))
    offered = index.ranked(before, size)
    refused = ([*outcome.detail.dropped, *outcome.detail.refused]
               if answered and outcome is not None else [])
    dropped = dropped_targets({"dropped": refused})
    said = outcome.detail.proposed if answered and outcome is not None else {}
    picks = score([(t, None) for t in [*(t for t, _ in links), *dropped]], gold)
    return Row(
        slug=slug, status=outcome.status.value if outcome is not None else "missing",
        gold=gold, links=links, model=score(links, gold), ranker=ranked,
        ranker_score=score([(t, held.guess) for t in ranked], gold), shown=len(offered),
        in_shortlist=score([(t, None) for t in offered], gold).hits, scored=answered,
        picks=picks, ranker_picks=score(
            [(t, None) for t in index.ranked(before, picks.proposed)], gold),
        error=_in_library(outcome.error, copy, held.root) if outcome is not None else None,
        usage=dict(outcome.usage) if outcome is not None else {},
        requests=outcome.requests if outcome is not None else 0,
        evidence=dict(outcome.evidence) if outcome is not None else {},
        dropped=list(refused),
        samples=samples(index, before, gold, said, size) if answered else [])


def _in_library(text: str | None, copy: Path | None, root: Path) -> str | None:
    """A message about the copy, naming the library's files instead (which the user has)."""
    return text if text is None or copy is None else text.replace(str(copy), str(root))


@dataclass(frozen=True)
class Evaluation:
    """An evaluation's result: the rows, and what the pass and its estimate said."""

    library: str
    model: str
    held: Heldout
    rows: list[Row]
    meta: dict[str, Any] = field(default_factory=dict)
    """The pass's own meta (``garden.Passed.meta``): seconds, cost, prompt version."""
    estimate: dict[str, Any] | None = None
    outcomes: list[Outcome] = field(default_factory=list)
    """The pass's outcomes, for the command's exit status (not in the report)."""

    @property
    def scored(self) -> list[Row]:
        return [r for r in self.rows if r.scored]

    @property
    def model_totals(self) -> Totals:
        return total(r.model for r in self.scored)

    @property
    def ranker_totals(self) -> Totals:
        return total(r.ranker_score for r in self.scored)

    @property
    def picks_totals(self) -> Totals:
        return total(r.picks for r in self.scored)

    @property
    def ranker_picks_totals(self) -> Totals:
        return total(r.ranker_picks for r in self.scored)

    @property
    def shortlist_totals(self) -> Totals:
        rows = self.scored
        return Totals(len(rows), sum(r.shown for r in rows), sum(r.in_shortlist for r in rows),
                      sum(len(r.gold) for r in rows), 0, 0)

    @property
    def samples(self) -> list[Sample]:
        return [x for r in self.scored for x in r.samples]

    @property
    def usage(self) -> dict[str, int]:
        used: dict[str, int] = {}
        for r in self.rows:
            for k, v in r.usage.items():
                used[k] = used.get(k, 0) + v
        return used

    def as_dict(self) -> dict[str, Any]:
        h = self.held
        return {
            "command": "evaluate", "library": self.library, "model": self.model,
            "generated": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
            "seed": h.seed, "n": h.n, "only": h.only, "min_links": MIN_LINKS,
            "eligible": h.eligible, "chosen": list(h.chosen), "ranker_type": h.guess,
            "scored": len(self.scored), "not_scored": len(self.rows) - len(self.scored),
            "totals": {"model": _score_dict(self.model_totals),
                       "ranker": _score_dict(self.ranker_totals),
                       "picks": _score_dict(self.picks_totals),
                       "ranker_picks": _score_dict(self.ranker_picks_totals),
                       "shortlist": _score_dict(self.shortlist_totals)},
            "usage": self.usage, "requests": sum(r.requests for r in self.rows),
            "seconds": self.meta.get("seconds"), "cost": self.meta.get("cost"),
            "prompt_version": self.meta.get("prompt_version"),
            "calibration": self.meta.get("calibration"),
            "estimate": self.estimate,
            "patterns": [r.as_dict() for r in self.rows]}


def shown_candidates(options: GardenOptions, model: str) -> int:
    """The shortlist size the pass offers (before any cut to the model's context)."""
    return profile_for(model).candidates if options.candidates is None else options.candidates


def garden_heldout(copy: Copy, held: Heldout, options: GardenOptions, llm: StructuredLLM,
                   model: str, *, on_start: Callable[[int], None] | None = None,
                   on_outcome: Callable[[Outcome], None] | None = None,
                   estimate: Mapping[str, Any] | None = None) -> Evaluation:
    """Garden each held-out pattern in ``copy`` as ``gardener run COPY --only SLUG`` would,
    one at a time: only that pattern hidden, every other as the library has it (a pass
    gardens one pattern while the rest keep their links, and the ranker's signals, which
    the calibration weighs, depend on them). ``options``' budget (over all of them),
    fixtures and prices are honoured; nothing is written outside the copy."""
    for slug in held.chosen:
        copy.show(slug)
    library = library_mod.load(copy.root, scope=options.scope)
    patterns = library.patterns
    base = options.model_copy(update={"dry_run": False, "report": None, "max_patterns": None,
                                      "decisions": None})
    shown = shown_candidates(options, model)
    if on_start is not None:
        on_start(len(held.chosen))
    outcomes: list[Outcome] = []
    rows: list[Row] = []
    seconds = 0.0
    meta: dict[str, Any] = {}
    for slug in held.chosen:
        used = sum(o.usage.get("prompt_tokens", 0) + o.usage.get("completion_tokens", 0)
                   for o in outcomes)
        budget = options.budget_tokens
        # as the copy holds it while hidden (`check_hidden` compared them): only its human
        # relationships and garden are gone, which is all the ranker sees differently
        hidden = held.before[slug].model_copy(update={"relationships": (), "garden": None})
        outcome: Outcome | None
        after: Pattern | None = None
        if budget is not None and used >= budget:
            outcome = _not_asked(held, slug, used, budget)
        else:
            copy.hide(slug)
            try:
                only = base.model_copy(update={
                    "only": (slug,), "budget_tokens": None if budget is None else budget - used})
                done = garden_library(copy.root, only, llm, model)
                outcome = next((o for o in done.outcomes if o.slug == slug), None)
                if outcome is not None and outcome.status is Status.CHANGED:
                    after = _read(copy.files[slug], copy.root, options)
                elif outcome is not None:
                    after = hidden
                if not meta:
                    meta = dict(done.meta)
                    outcomes += [o for o in done.outcomes if o.slug != slug]  # unreadable, once
                seconds += float(done.meta.get("seconds") or 0.0)
            finally:
                copy.show(slug)
        if outcome is None:
            continue
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
        index = CandidateIndex([hidden if p.slug == slug else p for p in patterns])
        rows.append(row(held, slug, index, hidden, after, outcome, shown, copy.root))
    meta["seconds"] = round(seconds, 2)
    meta["cost"] = pass_cost(outcomes, model, base, llm)
    return Evaluation(library=str(held.root), model=model, held=held, rows=rows, meta=meta,
                      estimate=dict(estimate) if estimate else None, outcomes=outcomes)


def _read(path: Path, root: Path, options: GardenOptions) -> Pattern:
    entry = read_entry(path, root=root, human_types=options.scope.human_types)
    if entry is None:
        raise Failed(f"{path}: no pattern in the copy after its pass")
    return entry.pattern


def _not_asked(held: Heldout, slug: str, used: int, budget: int) -> Outcome:
    """A held-out pattern the token budget left unasked (exit 3, as a pass's)."""
    p = held.before[slug]
    return Outcome(path=str(p.path), slug=slug, status=Status.SKIPPED, detail=Detail(
        reason=f"{NOT_ASKED}: token budget spent ({used:,} of {budget:,} tokens)",
        not_asked="budget"))
