"""Is what a pass added grounded in the pattern's own text? The check ``bench/grounding.py``
applies to a pass over a library (issue 19's acceptance), independent of the validators that
should guarantee it: it reads what was written and the report, and counts.

An entity or community is grounded when its label occurs in the pattern's title, summary or
body, or every word of its id does; a link when it has evidence found in that text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from gardener.model import Garden, Pattern
from gardener.propose.grounding import PatternText, pattern_text


def own_text(pattern: Pattern) -> PatternText:
    """The pattern's title, summary and body (domain and keywords as words), nothing else."""
    return pattern_text((pattern.title, pattern.summary,
                         *(f"{s.heading}\n{s.text}" for s in pattern.sections)),
                        terms=(pattern.domain or "", *pattern.keywords))


def label_grounded(text: PatternText, ident: str, label: str) -> bool:
    """The acceptance's wording: the label occurs in the text, or all of its id's words do."""
    return bool(label and text.has_phrase(label)) or text.share(ident) == 1.0


@dataclass
class Tally:
    patterns: int = 0
    failed: int = 0
    entities: int = 0
    communities: int = 0
    links: int = 0
    bad: list[str] = field(default_factory=list)
    bad_entities: int = 0
    bad_communities: int = 0
    links_without_evidence: int = 0
    evidence_not_found: int = 0


def check(before: Pattern, after: Pattern, outcome: dict[str, object], tally: Tally) -> None:
    """Count what this pass added to one pattern's garden, and what of it is not grounded."""
    text = own_text(before)
    old, new = before.garden or Garden(), after.garden or Garden()
    old_entities = {e.id for e in old.entities}
    old_communities = {c.id for c in old.communities}
    for e in new.entities:
        if e.id in old_entities:
            continue
        tally.entities += 1
        if not label_grounded(text, e.id, e.label or ""):
            tally.bad_entities += 1
            tally.bad.append(f"{after.slug}: entity {e.id!r} ({e.label!r})")
    for c in new.communities:
        if c.id in old_communities:
            continue
        tally.communities += 1
        if not label_grounded(text, c.id, c.label or ""):
            tally.bad_communities += 1
            tally.bad.append(f"{after.slug}: community {c.id!r} ({c.label!r})")
    added = outcome.get("added") or []
    evidence = outcome.get("evidence") or {}
    assert isinstance(added, list) and isinstance(evidence, dict)
    for target in added:
        tally.links += 1
        quote = evidence.get(target)
        if not quote:
            tally.links_without_evidence += 1
            tally.bad.append(f"{after.slug}: link to {target!r} without evidence")
        elif text.evidence_problem(str(quote)) is not None:
            tally.evidence_not_found += 1
            tally.bad.append(f"{after.slug}: link to {target!r}: evidence {quote!r} not found")


def existing(patterns: Sequence[Pattern]) -> Tally:
    """Apply the check to every entity and community the gardens hold now (its ``bad``
    lists the communities that fail)."""
    seen = Tally()
    for p in patterns:
        if p.garden is None:
            continue
        seen.patterns += 1
        text = own_text(p)
        for e in p.garden.entities:
            seen.entities += 1
            if not label_grounded(text, e.id, e.label or ""):
                seen.bad_entities += 1
        for c in p.garden.communities:
            seen.communities += 1
            if not label_grounded(text, c.id, c.label or ""):
                seen.bad_communities += 1
                seen.bad.append(f"{p.slug}: community {c.id!r} ({c.label!r})")
    return seen
