"""Held-out patterns for ``bench/quality.py``, and how links score against them: pure parts.

Why apart: the choice of patterns, the hiding of their human links in a copy, and precision,
recall and type agreement are what the benchmark's numbers rest on, so they are small
functions on plain data, tested on their own (tests/test_quality_bench.py); so is `merged`,
which makes one report of the benchmark's per-pattern runs.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gardener.library.document import read as read_document
from gardener.library.pattern import HUMAN_KEYS
from gardener.model import LINK_TYPES, TYPE_RENAMES, Pattern

HIDDEN_KEYS = frozenset(("relationships", "graph_garden", *HUMAN_KEYS))
"""Top-level keys a held-out pattern loses in the copy: its human links and its garden."""
MIN_LINKS = 3

Gold = dict[str, frozenset[str]]
"""A held-out pattern's human targets, each with the relationship kinds naming it."""
Proposed = list[tuple[str, str | None]]
"""Links as (target, type), in the order written."""


def gold_of(pattern: Pattern, slugs: frozenset[str]) -> Gold:
    """The pattern's human targets that resolve in the library, with their kinds."""
    kinds: dict[str, set[str]] = {}
    for r in pattern.relationships:
        if r.resolved and r.target != pattern.slug and r.target in slugs:
            kinds.setdefault(r.target, set()).add(r.type)
    return {target: frozenset(k) for target, k in kinds.items()}


def unique_slugs(patterns: Sequence[Pattern]) -> frozenset[str]:
    """Slugs of exactly one file: the gardener refuses to garden a slug two files use."""
    counts = Counter(p.slug for p in patterns)
    return frozenset(slug for slug, n in counts.items() if n == 1)


def choose(counts: Mapping[str, int], n: int, seed: int, least: int = MIN_LINKS) -> list[str]:
    """N slugs with at least ``least`` hidden targets (``counts``), the same for the same
    seed and library."""
    eligible = sorted(slug for slug, count in counts.items() if count >= least)
    return sorted(random.Random(seed).sample(eligible, min(n, len(eligible))))


def vocabulary_type(kind: str) -> str | None:
    """A human relationship key in the link vocabulary (renames applied), or None for the
    human-only kinds (related, manifests_as, governed_by) no link type stands for."""
    kind = TYPE_RENAMES.get(kind, kind)
    return kind if kind in LINK_TYPES else None


@dataclass(frozen=True)
class Score:
    """One pattern's links against its hidden human targets."""

    proposed: int
    hits: int
    targets: int
    typed_hits: int
    """Hits whose human kind has a link type (type agreement is counted over these)."""
    agreeing: int


def score(links: Sequence[tuple[str, str | None]], gold: Gold) -> Score:
    """Precision, recall and type-agreement counts of ``links`` (a target counted once)."""
    seen: set[str] = set()
    hits = typed = agreeing = 0
    for target, kind in links:
        if target in seen:
            continue
        seen.add(target)
        if target not in gold:
            continue
        hits += 1
        wanted = {t for t in (vocabulary_type(k) for k in gold[target]) if t is not None}
        if wanted:
            typed += 1
            agreeing += kind in wanted
    return Score(len(seen), hits, len(gold), typed, agreeing)


@dataclass(frozen=True)
class Totals:
    patterns: int
    proposed: int
    hits: int
    targets: int
    typed_hits: int
    agreeing: int

    @property
    def precision(self) -> float:
        return self.hits / self.proposed if self.proposed else 0.0

    @property
    def recall(self) -> float:
        return self.hits / self.targets if self.targets else 0.0

    @property
    def agreement(self) -> float:
        return self.agreeing / self.typed_hits if self.typed_hits else 0.0


def total(scores: Iterable[Score]) -> Totals:
    """Micro-averaged over links and targets: every link and every hidden target counts once."""
    s = list(scores)
    return Totals(len(s), sum(x.proposed for x in s), sum(x.hits for x in s),
                  sum(x.targets for x in s), sum(x.typed_hits for x in s),
                  sum(x.agreeing for x in s))


def most_common_type(patterns: Sequence[Pattern]) -> str:
    """The link type human relationships use most across the library: the typing a baseline
    with no model can guess for every link."""
    kinds = Counter(t for p in patterns for r in p.relationships
                    if (t := vocabulary_type(r.type)) is not None)
    return kinds.most_common(1)[0][0] if kinds else LINK_TYPES[0]


def without_keys(text: str, fm_start: int, spans: Sequence[tuple[int, int]]) -> str:
    """``text`` less the front-matter lines from each span's key to the next key.

    ``spans`` are (start, end) offsets within the front matter of top-level pairs to drop,
    from a key's line to the line of the key after it; the rest stays byte for byte.
    """
    out, at = [], 0
    for start, end in sorted(spans):
        out.append(text[at:fm_start + start])
        at = fm_start + end
    out.append(text[at:])
    return "".join(out)


def _line_start(fm: str, i: int) -> int:
    return fm.rfind("\n", 0, i) + 1


def hide(path: Path) -> None:
    """Remove the hidden keys from the pattern file at ``path`` (a file of the copy)."""
    doc = read_document(path)
    if doc is None or doc.root is None:
        raise SystemExit(f"{path}: no front matter to hide relationships in")
    fm = doc.front_matter
    pairs = doc.root.value
    spans = []
    for i, (key, _) in enumerate(pairs):
        if getattr(key, "value", None) not in HIDDEN_KEYS:
            continue
        if key.start_mark.column != 0:
            raise SystemExit(f"{path}: indented top-level key {key.value!r}; not hidden")
        end = (_line_start(fm, pairs[i + 1][0].start_mark.index) if i + 1 < len(pairs)
               else len(fm))
        spans.append((_line_start(fm, key.start_mark.index), end))
    path.write_text(without_keys(doc.text, doc.fm_start, spans), encoding="utf-8")


def check_hidden(before: Mapping[str, Pattern], after: Mapping[str, Pattern],
                 slugs: Sequence[str]) -> None:
    """The copy's held-out patterns have no relationships and no garden, and the same text."""
    for slug in slugs:
        old, new = before[slug], after.get(slug)
        if new is None:
            raise SystemExit(f"{slug}: lost from the copy while hiding its relationships")
        if new.relationships or new.garden is not None:
            raise SystemExit(f"{slug}: relationships or garden still in the copy")
        same = ("title", "summary", "keywords", "sections", "domain", "vitality", "id")
        changed = [name for name in same if getattr(old, name) != getattr(new, name)]
        if changed:
            raise SystemExit(f"{slug}: hiding changed {', '.join(changed)}")


def written_links(pattern: Pattern) -> Proposed:
    garden = pattern.garden
    return [(link.target, link.type) for link in garden.inferred_links] if garden else []


DROPPED_LINK = re.compile(r"^inferred_links\[\d+\] '([^']+)'")
"""How salvage names a link it dropped (``gardener.propose.response``): its index and target."""


def dropped_targets(detail: Mapping[str, Any]) -> list[str]:
    """Targets of the links the validators dropped from a pattern's answer (report detail)."""
    found = (DROPPED_LINK.match(str(line)) for line in detail.get("dropped") or ())
    return [m.group(1) for m in found if m]


def merged(reports: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One report from per-pattern runs: their patterns, and seconds and usage summed."""
    usage: Counter[str] = Counter()
    for r in reports:
        usage.update(r.get("totals", {}).get("usage", {}))
    return {"model": reports[0].get("model") if reports else None,
            "seconds": round(sum(float(r.get("seconds") or 0.0) for r in reports), 2),
            "totals": {"usage": dict(usage)},
            "patterns": [p for r in reports for p in r.get("patterns", [])]}
