"""Recall@k of candidate shortlists, leave-one-out against the human-curated relationships:
the measure ``bench/recall.py`` tabulates and the corpus test of ``tests/test_candidates.py``
holds to.

For every pattern with human relationships into its library, those relationships are hidden
(the shortlist is asked with ``hide_relationships``) and the shortlist is checked for the
hidden targets. `METHODS` are the rankers compared: the old tool's alphabetical prefix, BM25
variants, the graph signals alone, and the combined default.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gardener.model import Pattern
from gardener.shortlist.candidates import CandidateIndex, Weights, resolved_targets

KS: tuple[int, ...] = (10, 20, 40, 80)
PLAIN_FIELDS = {"title": 1, "summary": 1, "keywords": 1, "headings": 1}
TITLE_HEAVY_FIELDS = {"title": 3, "keywords": 2, "domain": 2, "summary": 1, "headings": 1}
"""The weights before 2026-12-03 (title words 3, no title phrase): kept to show the change."""

Ranker = Callable[[Pattern, int], list[str]]


def alphabetical(patterns: Sequence[Pattern]) -> Ranker:
    """What the old tool showed: the library's first slugs, whatever the pattern."""
    slugs = sorted({p.slug for p in patterns})

    def rank(p: Pattern, k: int) -> list[str]:
        return [s for s in slugs if s != p.slug][:k]

    return rank


def indexed(**options: object) -> Callable[[Sequence[Pattern]], Ranker]:
    def build(patterns: Sequence[Pattern]) -> Ranker:
        index = CandidateIndex(patterns, **options)  # type: ignore[arg-type]

        def rank(p: Pattern, k: int) -> list[str]:
            return index.ranked(p, k, hide_relationships=True)

        return rank

    return build


METHODS: dict[str, Callable[[Sequence[Pattern]], Ranker]] = {
    "alphabetical prefix (old tool)": alphabetical,
    "BM25 plain: title+summary+keywords+headings": indexed(
        field_weights=PLAIN_FIELDS, weights=Weights(1.0, 0.0, 0.0), max_query_terms=10**6),
    "BM25 fielded, title words x3 (before 2026-12-03)": indexed(
        field_weights=TITLE_HEAVY_FIELDS, weights=Weights(1.0, 0.0, 0.0)),
    "combined, title words x3 (before 2026-12-03)": indexed(field_weights=TITLE_HEAVY_FIELDS),
    "BM25 fielded (+aliases, domain, title pairs)": indexed(
        weights=Weights(1.0, 0.0, 0.0)),
    "fielded + in-links": indexed(weights=Weights(two_hop=0.0)),
    "fielded + 2-hop": indexed(weights=Weights(in_link=0.0)),
    "graph only (in-links + 2-hop)": indexed(weights=Weights(lexical=0.0)),
    "**combined (default)**": indexed(),
}


@dataclass(frozen=True)
class Recall:
    micro: dict[int, float]
    macro: dict[int, float]
    queries: int
    targets: int


def hidden_targets(p: Pattern, slugs: frozenset[str]) -> set[str]:
    return {t for t in resolved_targets(p) if t in slugs}


def recall(patterns: Sequence[Pattern], rank: Ranker, ks: Sequence[int] = KS,
           queries_from: Sequence[Pattern] | None = None) -> Recall:
    """Leave-one-out recall of ``rank`` over a library, querying all or only some patterns."""
    slugs = frozenset(p.slug for p in patterns)
    hits = {k: 0 for k in ks}
    fractions: dict[int, list[float]] = {k: [] for k in ks}
    total = queries = 0
    for p in patterns if queries_from is None else queries_from:
        targets = hidden_targets(p, slugs)
        if not targets:
            continue
        queries += 1
        total += len(targets)
        for k in ks:
            found = len(targets & set(rank(p, k)))
            hits[k] += found
            fractions[k].append(found / len(targets))
    return Recall(
        micro={k: hits[k] / total if total else 0.0 for k in ks},
        macro={k: statistics.fmean(fractions[k]) if fractions[k] else 0.0 for k in ks},
        queries=queries, targets=total)
