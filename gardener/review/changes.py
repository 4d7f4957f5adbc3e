"""What a gardening pass changed, as a reviewer counts it: per pattern and over the pass.

The pull-request body and the pass report (`gardener.review.body`) are made from these:
each changed pattern with its garden before and after (`PatternChange`), the links added,
removed and retyped (`link_delta`), the entities and communities added and removed
(`item_delta`), and the pass's totals. Pure: data in, data out.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from gardener.endpoint.prices import Price
from gardener.library.decisions import Decision
from gardener.model import Garden, HumanLink, Link, Outcome, Status


@dataclass(frozen=True)
class PatternChange:
    """One pattern the pass looked at, with what a reviewer needs to judge it."""

    slug: str
    path: str
    """Relative to the repository, as GitHub shows it."""
    title: str
    outcome: Outcome
    old: Garden | None
    new: Garden | None
    human: tuple[HumanLink, ...] = ()
    vitality: float | None = None
    """The human vitality score (``ontology.commons_assessment.vitality``)."""
    human_reasoning: str | None = None
    """The human vitality reasoning (``ontology.commons_assessment.vitality_reasoning``)."""


@dataclass(frozen=True)
class PassInfo:
    """What the whole pass was: where, on what, with which model and prompt."""

    library: str
    base: str
    branch: str
    model: str
    prompt_version: str
    today: dt.date
    base_sha: str = ""
    learned: tuple[Decision, ...] = ()
    """Rejections learned in this run: links deleted by hand, links of closed pull requests."""
    honoured: int = 0
    """Rejections in force (ledger and history) during the pass."""
    schedule: str = ""
    """When the bot runs (a cron line, or words); empty: when someone runs it."""
    price: Price | None = None
    """What the model's tokens cost (``gardener.endpoint.prices``); None: the built-in table's."""
    calibration: str = ""
    """What the links' confidence means, in one line (``Calibration.line``)."""


@dataclass(frozen=True)
class LinkDelta:
    added: tuple[Link, ...] = ()
    removed: tuple[tuple[Link, str], ...] = ()
    """Each removed link and why it went (pruning's reason code and detail)."""
    retyped: tuple[tuple[Link, Link], ...] = ()


@dataclass(frozen=True)
class ItemDelta:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Totals:
    changed: int = 0
    failed: int = 0
    links_added: int = 0
    links_removed: int = 0
    links_retyped: int = 0
    entities: ItemDelta = field(default_factory=ItemDelta)
    communities: ItemDelta = field(default_factory=ItemDelta)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0
    later: int = 0
    """Stale patterns ``--max-patterns`` left for the next runs (a planned batch)."""


def link_delta(old: Garden | None, new: Garden | None, outcome: Outcome) -> LinkDelta:
    """Links by target: added, removed (with the pass's reason), retyped."""
    before = {lk.target: lk for lk in (old.inferred_links if old else ())}
    after = {lk.target: lk for lk in (new.inferred_links if new else ())}
    why = {r.item: f"{r.reason.value}" + (f": {r.detail}" if r.detail else "")
           for r in outcome.removals if r.kind == "link"}
    added = tuple(lk for t, lk in after.items() if t not in before)
    removed = tuple((lk, why.get(t, "removed by the pass"))
                    for t, lk in before.items() if t not in after)
    retyped = tuple((before[t], lk) for t, lk in after.items()
                    if t in before and before[t].type != lk.type)
    return LinkDelta(added, removed, retyped)


def item_delta(old: Iterable[str], new: Iterable[str]) -> ItemDelta:
    a, b = list(dict.fromkeys(old)), list(dict.fromkeys(new))
    return ItemDelta(tuple(x for x in b if x not in a), tuple(x for x in a if x not in b))


def entities(g: Garden | None) -> list[str]:
    return [e.id for e in g.entities] if g else []


def communities(g: Garden | None) -> list[str]:
    return [c.id for c in g.communities] if g else []


def removal_codes(c: PatternChange) -> list[tuple[str, str, str]]:
    """What the pass took out of the pattern's file, as ``(kind, item, reason code)``: links
    by target, entities and communities by id; ``removed`` where the pass gave no code."""
    o = c.outcome
    code: dict[tuple[str, str], str] = {(r.kind, r.item): r.reason.value for r in o.removals}
    d = link_delta(c.old, c.new, o)
    out = [("link", lk.target, code.get(("link", lk.target), "removed")) for lk, _ in d.removed]
    for kind, delta in (("entity", item_delta(entities(c.old), entities(c.new))),
                        ("community", item_delta(communities(c.old), communities(c.new)))):
        out += [(kind, x, code.get((kind, x), "removed")) for x in delta.removed]
    return out


def totals(changes: Sequence[PatternChange], outcomes: Sequence[Outcome]) -> Totals:
    ents_added: list[str] = []
    ents_removed: list[str] = []
    coms_added: list[str] = []
    coms_removed: list[str] = []
    added = removed = retyped = 0
    for c in changes:
        if c.outcome.status is not Status.CHANGED:
            continue
        d = link_delta(c.old, c.new, c.outcome)
        added, removed, retyped = (added + len(d.added), removed + len(d.removed),
                                   retyped + len(d.retyped))
        e = item_delta(entities(c.old), entities(c.new))
        m = item_delta(communities(c.old), communities(c.new))
        ents_added += e.added
        ents_removed += e.removed
        coms_added += m.added
        coms_removed += m.removed
    return Totals(
        changed=sum(1 for o in outcomes if o.status is Status.CHANGED),
        failed=sum(1 for o in outcomes if o.status is Status.FAILED),
        links_added=added, links_removed=removed, links_retyped=retyped,
        entities=ItemDelta(tuple(ents_added), tuple(ents_removed)),
        communities=ItemDelta(tuple(coms_added), tuple(coms_removed)),
        prompt_tokens=sum(o.usage.get("prompt_tokens", 0) for o in outcomes),
        completion_tokens=sum(o.usage.get("completion_tokens", 0) for o in outcomes),
        requests=sum(o.requests for o in outcomes),
        later=sum(1 for o in outcomes if o.detail.not_asked == "batch"))


def existing_links(changes: Sequence[PatternChange]) -> dict[str, int]:
    """How many of the changed patterns linked to each target before the pass (human and
    inferred): the in-degrees an outlier is judged by when the caller gives none."""
    counts: Counter[str] = Counter()
    for c in changes:
        targets = {h.target for h in c.human if h.resolved}
        targets |= {lk.target for lk in (c.old.inferred_links if c.old else ())}
        counts.update(targets - {c.slug})
    return dict(counts)
