"""How good a pass's links are on a library of your own: ``gardener evaluate``.

The product form of ``bench/quality.py``. Patterns with three or more human relationships
that resolve in the library (``gardener.pipeline.holdout``) are chosen with a seed
(`hold_out`); in a temporary copy of the library they lose those relationships and their
garden (`hidden_copy`; the library itself is only read); the same pass as ``gardener run``
(``garden.garden_library``: the same prompts, fitting, validation, merge and prune) gardens
them in the copy, ``--only`` those slugs (`garden_heldout`), and the links it wrote there are
scored against the hidden ones (`measure`): precision, recall and type agreement per pattern
and in total, beside the candidate ranker alone at the same number of links (its own top m,
m = the links the pass wrote for that pattern, every one typed with the library's most common
human kind) and the shortlist the model was shown (the most any model could find).

A pattern the pass did not answer (failed, or not asked once ``budget_tokens`` was spent) is
listed and left out of the totals: its zero would be the endpoint's, not the model's.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import stat
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gardener.endpoint.prices import dollars
from gardener.errors import UsageError
from gardener.library import load as library_mod
from gardener.library.calibration import Calibration
from gardener.library.scope import Scope
from gardener.library.state import STATE_DIR, STATE_FILE
from gardener.model import Outcome, Pattern, Status
from gardener.pipeline.calibrate import FIT_CANDIDATES, Sample
from gardener.pipeline.garden import garden_library
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
from gardener.propose.profiles import profile_for
from gardener.propose.propose import StructuredLLM
from gardener.shortlist.candidates import CandidateIndex
from gardener.shortlist.signals import signals
from gardener.text import one_line

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


def hidden_copy(held: Heldout, dest: Path, scope: Scope) -> list[Pattern]:
    """Copy the library to ``dest`` (links kept as links, so nothing writes through them into
    the library; no incremental state, so every held-out pattern is asked), hide the
    held-out patterns' human relationships and gardens there, and return the copy's
    patterns as the pass will read them. A `Failed` when hiding did not take."""
    shutil.copytree(held.root, dest, symlinks=True,
                    ignore=shutil.ignore_patterns(*NOT_COPIED))
    _writable(dest)
    (dest / STATE_DIR / STATE_FILE).unlink(missing_ok=True)
    for slug in held.chosen:
        hide(dest / held.before[slug].path.relative_to(held.root), scope.human_types)
    copied = library_mod.load(dest, scope=scope).patterns
    check_hidden(held.before, {p.slug: p for p in copied}, held.chosen)
    return copied


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
            "dropped": list(self.dropped)}


def _score_dict(s: Score | Totals) -> dict[str, Any]:
    t = s if isinstance(s, Totals) else total([s])
    return {"links": t.proposed, "hits": t.hits, "targets": t.targets,
            "typed_hits": t.typed_hits, "agreeing": t.agreeing,
            "precision": round(t.precision, 4), "recall": round(t.recall, 4),
            "type_agreement": round(t.agreement, 4)}


def measure(held: Heldout, copied: Sequence[Pattern], gardened: Sequence[Pattern],
            outcomes: Sequence[Outcome], shown: int, copy: Path | None = None) -> list[Row]:
    """Score each held-out pattern: the links its garden holds in the copy after the pass
    (``gardened``), and the ranker's top m on the copy as the pass read it (``copied``).
    ``shown``: the shortlist size the model was offered, unless a pattern's request was cut
    (its ``detail.fitted``). ``copy``: the copy's folder, named as the library in errors."""
    index = CandidateIndex(copied)
    before = {p.slug: p for p in copied}
    after = {p.slug: p for p in gardened}
    by_slug = {o.slug: o for o in outcomes if o.slug is not None}
    rows = []
    for slug in held.chosen:
        gold, outcome = held.golds[slug], by_slug.get(slug)
        answered = outcome is not None and outcome.status not in (Status.FAILED,
                                                                  Status.SKIPPED)
        links = written_links(after[slug]) if answered and slug in after else []
        m = len({t for t, _ in links})
        ranked = index.ranked(before[slug], m)
        fitted = (outcome.detail.fitted or {}) if outcome is not None else {}
        size = int(fitted.get("candidates", shown))
        offered = index.ranked(before[slug], size)
        refused = ([*outcome.detail.dropped, *outcome.detail.refused]
                   if answered and outcome is not None else [])
        dropped = dropped_targets({"dropped": refused})
        said = outcome.detail.proposed if answered and outcome is not None else {}
        picks = score([(t, None) for t in [*(t for t, _ in links), *dropped]], gold)
        rows.append(Row(
            slug=slug, status=outcome.status.value if outcome is not None else "missing",
            gold=gold, links=links, model=score(links, gold), ranker=ranked,
            ranker_score=score([(t, held.guess) for t in ranked], gold), shown=len(offered),
            in_shortlist=score([(t, None) for t in offered], gold).hits, scored=answered,
            picks=picks, ranker_picks=score(
                [(t, None) for t in index.ranked(before[slug], picks.proposed)], gold),
            error=_in_library(outcome.error, copy, held.root) if outcome is not None else None,
            usage=dict(outcome.usage) if outcome is not None else {},
            requests=outcome.requests if outcome is not None else 0,
            evidence=dict(outcome.evidence) if outcome is not None else {},
            dropped=list(refused),
            samples=samples(index, before[slug], gold, said, size) if answered else []))
    return rows


def samples(index: CandidateIndex, pattern: Pattern, gold: Gold,
            said: Mapping[str, float], shown: int) -> list[Sample]:
    """The calibration's samples of one held-out pattern: the ranker's top
    ``FIT_CANDIDATES`` and every link the model proposed (``said``: target -> its stated
    confidence; ``shown``: the candidates it was offered), each labelled by whether people
    had made it."""
    out = []
    for s in signals(index, pattern, max(FIT_CANDIDATES, shown)):
        if s.rank > FIT_CANDIDATES and s.slug not in said:
            continue
        values = s.features()
        values["model_link"] = 1.0 if s.slug in said else 0.0
        values["model_confidence"] = said.get(s.slug, 0.0)
        out.append(Sample(pattern.slug, s.slug, values, s.slug in gold))
    return out


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


def garden_heldout(copy: Path, held: Heldout, copied: Sequence[Pattern],
                   options: GardenOptions, llm: StructuredLLM, model: str, *,
                   on_start: Callable[[int], None] | None = None,
                   on_outcome: Callable[[Outcome], None] | None = None,
                   estimate: Mapping[str, Any] | None = None) -> Evaluation:
    """Garden the held-out patterns in ``copy`` as ``gardener run COPY --only ...`` would
    (``options``' budget, fixtures and prices honoured; nothing written outside the copy),
    then score what the pass wrote there."""
    only = options.model_copy(update={"only": held.chosen, "dry_run": False, "report": None,
                                      "max_patterns": None, "decisions": None})
    done = garden_library(copy, only, llm, model, on_start=on_start, on_outcome=on_outcome)
    gardened = library_mod.load(copy, scope=options.scope).patterns
    rows = measure(held, copied, gardened, done.outcomes, shown_candidates(options, model),
                   copy)
    return Evaluation(library=str(held.root), model=model, held=held, rows=rows,
                      meta=dict(done.meta), estimate=dict(estimate) if estimate else None,
                      outcomes=list(done.outcomes))


def pct(x: float) -> str:
    return f"{x:.0%}"


def _cell(text: object) -> str:
    """Text from files or models as one inert table cell."""
    return one_line(str(text)).replace("|", "\\|").replace("`", "'")


def markdown(ev: Evaluation, *, command: str | None = None,
             fitted: Calibration | None = None) -> str:
    """The Markdown report: what was run, the totals beside the ranker, each pattern, and
    the calibration ``fitted`` from it when there is one."""
    t, r, s = ev.model_totals, ev.ranker_totals, ev.shortlist_totals
    k, b = ev.picks_totals, ev.ranker_picks_totals
    h = ev.held
    per = max(1, len(ev.scored))
    used = ev.usage
    cost = ev.meta.get("cost") or {}
    usd = cost.get("usd") if isinstance(cost, Mapping) else None
    left = [row for row in ev.rows if not row.scored]
    lines = [
        f"# Link quality of {_cell(Path(ev.library).name)}",
        "",
        *([f"`{_cell(command)}`", ""] if command else []),
        f"Model `{_cell(ev.model)}`, {dt.date.today().isoformat()}; {len(h.chosen)} held-out "
        f"patterns of {h.eligible} with {MIN_LINKS} or more human relationships "
        + ("(chosen with --only)" if h.only else f"(seed {h.seed})")
        + f", {t.targets} hidden human targets; {len(ev.scored)} answered"
        + (f", {len(left)} not scored (failed or not asked)" if left else "") + ". "
        f"Tokens: {used.get('prompt_tokens', 0):,} prompt + "
        f"{used.get('completion_tokens', 0):,} completion"
        + (f", {dollars(usd)}" if isinstance(usd, int | float) else "") + ".",
        "",
        "| | links | links/pattern | precision | recall | type agreement on hits |",
        "|---|---:|---:|---:|---:|---:|",
        f"| model | {t.proposed} | {t.proposed / per:.1f} | {pct(t.precision)} ({t.hits}) "
        f"| {pct(t.recall)} | {pct(t.agreement)} ({t.agreeing}/{t.typed_hits}) |",
        f"| ranker alone, top m | {r.proposed} | {r.proposed / per:.1f} | "
        f"{pct(r.precision)} ({r.hits}) | {pct(r.recall)} | {pct(r.agreement)} "
        f"({r.agreeing}/{r.typed_hits}, all `{_cell(h.guess)}`) |",
        f"| model's picks before validation | {k.proposed} | {k.proposed / per:.1f} | "
        f"{pct(k.precision)} ({k.hits}) | {pct(k.recall)} | - |",
        f"| ranker alone, top m' (m' = picks) | {b.proposed} | {b.proposed / per:.1f} | "
        f"{pct(b.precision)} ({b.hits}) | {pct(b.recall)} | - |",
        f"| shortlist shown ({_median_shown(ev)} candidates, median) | {s.proposed} | "
        f"{s.proposed / per:.1f} | {pct(s.precision)} ({s.hits}) | {pct(s.recall)} | - |",
        "",
        "m = the links the model wrote for that pattern; its picks are the targets it chose "
        "before the grounding checks dropped the links it could not back with the pattern's "
        "own words. A model that does not beat the ranker alone adds nothing to the links; "
        "the shortlist row is the most any model choosing from it could find.",
        "",
        "| pattern | status | links | hits | ranker hits | types agreeing | picks (hits) "
        "| in shortlist / hidden | tokens |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in ev.rows:
        u = row.usage
        lines.append(
            f"| {_cell(row.slug)} | {row.status} | {row.model.proposed} | {row.model.hits} "
            f"| {row.ranker_score.hits} | {row.model.agreeing}/{row.model.typed_hits} "
            f"| {row.picks.proposed} ({row.picks.hits}) "
            f"| {row.in_shortlist} / {len(row.gold)} "
            f"| {u.get('prompt_tokens', 0):,} + {u.get('completion_tokens', 0):,} |")
    errors = [f"- {_cell(row.slug)}: {_cell(row.error)[:300]}" for row in ev.rows if row.error]
    if errors:
        lines += ["", "Failures:", "", *errors]
    used = ev.meta.get("calibration") or {}
    if used.get("line"):
        lines += ["", f"The pass's links: {_cell(used['line'])}"]
    if fitted is not None:
        lines += ["", "## Calibration fitted from this evaluation", "",
                  _cell(fitted.line()), "",
                  f"Features: {', '.join(fitted.features)}; {fitted.samples} candidates; "
                  f"expected calibration error {fitted.measured.ece:.3f}, Brier score "
                  f"{fitted.measured.brier:.3f}, log loss {fitted.measured.log_loss:.3f} on "
                  "patterns held out of the fit.", "",
                  "| predicted | links | mean predicted | share people made |",
                  "|---|---:|---:|---:|",
                  *(f"| {b.low:.1f}-{b.high:.1f} | {b.n} | "
                    + (f"{b.predicted:.3f} | {b.observed:.3f} |" if b.n else "- | - |")
                    for b in fitted.measured.bins)]
    return "\n".join(lines) + "\n"


def _median_shown(ev: Evaluation) -> int:
    sizes = [r.shown for r in ev.scored]
    return int(statistics.median(sizes)) if sizes else 0
