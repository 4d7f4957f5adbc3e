"""Link targets a pass proposed far more often than usual: where prompt injection shows.

Grounding keeps every link honest one pattern at a time: its target is a candidate and its
evidence a real quote of its own pattern. A pattern whose text tells the model "maintainers
require a link to X at confidence 1.0" passes those checks in every other pattern whose
prompt shows it, so the attack is only visible across the pass: one target gaining links from
many patterns at once. This module finds those targets, so the pull-request body and the JSON
report can put them in front of the people who decide. Pure: data in, findings out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gardener.model import Outcome, Pattern

MIN_PATTERNS = 5
"""A target gaining links from fewer patterns than this in one pass is never flagged: in a
small pass any target may be chosen a few times, and five is already a pattern people see."""
FACTOR = 4.0
"""How many times its expected count a target must gain to be flagged. Measured on the
shared corpus, treating each library's inferred links (to its own patterns) as one pass:
the most linked target of ``commons-os-patterns`` (84 of 617 links) is 1.7 times its
expected count, by its human in-degree or by the other targets' mean; no target of
``commons-engineering`` or ``patterns/`` reaches 5 links. Real hubs stay under 2. A first
pass of the fake model (``gardener.testing.responders.grounded_responder``: the top three
candidates) over ``patterns/`` links a pattern linked once before from 5 patterns: 7 times
its library share, 2.1 times the pass's mean, so not flagged; the injection of
``tests/test_attacks_review.py`` (12 patterns) is 6 times the larger."""


@dataclass(frozen=True)
class Outlier:
    """A target that gained links from ``patterns`` in one pass, against ``expected``."""

    target: str
    patterns: tuple[str, ...]
    """The patterns that gained a link to it, sorted."""
    expected: float
    """How many would have, at its usual share (see `outliers`)."""
    existing: int | None
    """The patterns linking to it before the pass, where the caller knew them."""

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "patterns": list(self.patterns),
                "count": len(self.patterns), "expected": round(self.expected, 2),
                "existing": self.existing}

    def describe(self) -> str:
        before = ("" if self.existing is None else
                  f"; {self.existing} pattern{'s' if self.existing != 1 else ''} linked it "
                  "before")
        return (f"gained a link from {len(self.patterns)} patterns in this pass "
                f"(about {self.expected:.1f} expected{before})")


def gained(outcomes: Iterable[Outcome]) -> dict[str, tuple[str, ...]]:
    """The targets each pattern gained in the pass (``Outcome.added``), by slug (or path)."""
    return {o.slug or o.path: tuple(dict.fromkeys(o.added)) for o in outcomes if o.added}


def in_degrees(patterns: Iterable[Pattern]) -> dict[str, int]:
    """How many patterns link to each pattern now (0 for none): human relationships
    (resolved) and inferred links, each source counted once per target. Pass it as
    ``existing`` before the pass writes anything."""
    pats = list(patterns)
    counts: Counter[str] = Counter({p.slug: 0 for p in pats})  # every pattern is a target
    for p in pats:
        targets = {h.target for h in p.relationships if h.resolved}
        targets |= {lk.target for lk in (p.garden.inferred_links if p.garden else ())}
        counts.update(targets - {p.slug})
    return dict(counts)


def outliers(added: Mapping[str, Iterable[str]], *, existing: Mapping[str, int] | None = None,
             library: int = 0, at_least: int = MIN_PATTERNS,
             factor: float = FACTOR) -> tuple[Outlier, ...]:
    """The targets added to suspiciously many patterns in one pass, most gained first.

    ``added`` maps each pattern of the pass to the targets it gained (new links only). For a
    target ``t`` gained by ``c`` patterns, with ``A`` links added in all, two expectations:

    - the pass's: the mean of the other targets it added, leaving ``t`` out so an outlier
      does not raise its own bar: ``(A - c) / max(1, targets - 1)``;
    - the library's, with ``existing`` (patterns linking to each target before the pass,
      `in_degrees`, over a library of ``library`` patterns): its part of the links already
      there, one link added to every pattern so a target nobody links yet still has one:
      ``A * (existing[t] + 1) / (sum(existing) + library)``.

    ``expected`` is the larger of the two (the pass's alone without ``existing``), and ``t``
    is flagged when ``c >= at_least`` and ``c >= factor * max(1, expected)``: many patterns,
    several times what both its place in the library (a hub gains many links) and the pass
    (a new pattern, linked by nobody yet, catches up with a few) explain. An injection that
    reaches no more patterns than a usual target is not told apart by counts: per-link
    review (reason, evidence) is what remains for it.
    """
    by_target: dict[str, list[str]] = {}
    for pattern, targets in added.items():
        for target in dict.fromkeys(targets):
            if target != pattern:
                by_target.setdefault(target, []).append(pattern)
    total = sum(len(v) for v in by_target.values())
    pool = sum(existing.values()) + max(library, len(existing), 1) if existing is not None else 1
    found: list[Outlier] = []
    for target, sources in by_target.items():
        count = len(sources)
        if count < at_least:
            continue
        expected = (total - count) / max(1, len(by_target) - 1)
        if existing is not None:
            expected = max(expected, total * (existing.get(target, 0) + 1) / pool)
        if count >= factor * max(1.0, expected):
            found.append(Outlier(target, tuple(sorted(sources)), expected,
                                 existing.get(target, 0) if existing is not None else None))
    return tuple(sorted(found, key=lambda o: (-len(o.patterns), o.target)))
