"""Held-out patterns, and how links score against their hidden human links: pure parts.

The one place of this logic: ``gardener evaluate`` (``gardener.pipeline.evaluate``) and the
benchmark (``bench/quality.py``, through ``gardener.testing.holdout``) both use it.

Why apart: the choice of patterns, the hiding of their human links in a copy, and precision,
recall and type agreement are what the numbers rest on, so they are small functions on plain
data, tested on their own (tests/test_quality_bench.py, tests/test_evaluate.py).

A held-out pattern is one with at least ``MIN_LINKS`` human relationships that resolve to
another pattern of the library (its "gold": target -> the relationship kinds naming it),
and a slug no other file uses. In a copy of the library it loses its human relationships and
its garden (``hide``: the keys' lines cut from the front matter, the rest byte for byte);
links from other patterns to it stay. A pattern that cannot be hidden is a `Failed` (exit 1):
the evaluation would score links the model could see.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gardener.errors import Failed
from gardener.library.document import read as read_document
from gardener.library.pattern import HUMAN_KEYS
from gardener.library.write import write_atomic
from gardener.model import LINK_TYPES, Pattern, vocabulary_type
from gardener.steps.link import usual_type

HIDDEN_KEYS = frozenset(("relationships", "graph_garden", *HUMAN_KEYS))
"""Top-level keys a held-out pattern loses in the copy: its human links and its garden."""
MIN_LINKS = 3
"""Human relationships (resolving in the library) a pattern needs to be held out."""
DEFAULT_N = 30
"""Held-out patterns ``gardener evaluate`` draws by default: a first reading at a known price."""
DEFAULT_SEED = 19
"""The seed ``bench/quality.py`` measured with (docs/quality.md)."""

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


def eligible(counts: Mapping[str, int], least: int = MIN_LINKS) -> list[str]:
    """The slugs with at least ``least`` hidden targets (``counts``), sorted."""
    return sorted(slug for slug, count in counts.items() if count >= least)


def choose(counts: Mapping[str, int], n: int, seed: int, least: int = MIN_LINKS) -> list[str]:
    """N slugs with at least ``least`` hidden targets (``counts``), the same for the same
    seed and library."""
    pool = eligible(counts, least)
    return sorted(random.Random(seed).sample(pool, min(n, len(pool))))


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
    return usual_type(patterns, default=LINK_TYPES[0])


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


def hide(path: Path, extra_keys: Iterable[str] = ()) -> None:
    """Remove the hidden keys (and ``extra_keys``: a library's own relationship kinds) from
    the pattern file at ``path``, a file of the copy, never of the library itself."""
    doc = read_document(path)
    if doc is None or doc.root is None:
        raise Failed(f"{path}: no front matter to hide relationships in")
    hidden = HIDDEN_KEYS | frozenset(extra_keys)
    fm = doc.front_matter
    pairs = doc.root.value
    spans = []
    for i, (key, _) in enumerate(pairs):
        if getattr(key, "value", None) not in hidden:
            continue
        if key.start_mark.column != 0:
            raise Failed(f"{path}: indented top-level key {key.value!r}; not hidden")
        end = (_line_start(fm, pairs[i + 1][0].start_mark.index) if i + 1 < len(pairs)
               else len(fm))
        spans.append((_line_start(fm, key.start_mark.index), end))
    write_atomic(path, without_keys(doc.text, doc.fm_start, spans))


def check_hidden(before: Mapping[str, Pattern], after: Mapping[str, Pattern],
                 slugs: Sequence[str]) -> None:
    """The copy's held-out patterns have no relationships and no garden, and the same text."""
    for slug in slugs:
        old, new = before[slug], after.get(slug)
        if new is None:
            raise Failed(f"{slug}: lost from the copy while hiding its relationships")
        if new.relationships or new.garden is not None:
            raise Failed(f"{slug}: relationships or garden still in the copy")
        same = ("title", "summary", "keywords", "sections", "domain", "vitality", "id")
        changed = [name for name in same if getattr(old, name) != getattr(new, name)]
        if changed:
            raise Failed(f"{slug}: hiding changed {', '.join(changed)}")


def written_links(pattern: Pattern) -> Proposed:
    """The links a pattern's garden holds, as (target, type), in the order written."""
    garden = pattern.garden
    return [(link.target, link.type) for link in garden.inferred_links] if garden else []


DROPPED_LINK = re.compile(r"^inferred_links(?:\[\d+\])? '([^']+)'")
"""How salvage names a link it dropped (``gardener.propose.response``: its index and target),
and the calibration one it did not write (``gardener.steps.link``: its target)."""


def dropped_targets(detail: Mapping[str, Any]) -> list[str]:
    """Targets of the links the validators dropped from a pattern's answer (report detail)."""
    found = (DROPPED_LINK.match(str(line)) for line in detail.get("dropped") or ())
    return [m.group(1) for m in found if m]
