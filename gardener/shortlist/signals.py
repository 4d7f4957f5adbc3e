"""What the ranker knows of each candidate: the numbers a calibration turns into a chance.

Why apart from the ranking: the shortlist only needs an order, while a link's confidence
needs the evidence behind the order (``gardener.library.calibration``): the rank, the
lexical score, whether the candidate already links to the pattern, and the closeness in the
curated graph. Pure, from the index's public scores.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from gardener.model import Pattern
from gardener.shortlist.candidates import (
    CandidateIndex,
    pattern_fields,
    tokenize,
    weighted_terms,
)

_SURFACE = re.compile(r"[^\W_]+")
SHARED_WORDS = 4


@dataclass(frozen=True)
class Signal:
    """One candidate of a pattern, as the ranker saw it."""

    slug: str
    title: str
    summary: str
    rank: int
    """1 = the ranker's best."""
    lexical: float
    """BM25 over the descriptive fields, scaled so the pattern's best match is 1."""
    in_link: float
    """1 when the candidate's own human relationships point at the pattern."""
    two_hop: float
    """Closeness through shared curated neighbours (resource allocation, at most 1)."""
    shared: tuple[str, ...] = ()
    """Words of the candidate's title and summary that the pattern's descriptive fields
    have too, as the candidate writes them, rarest in the library first."""

    def features(self) -> dict[str, float]:
        """The ranker's features, named as ``calibration.RANKER_FEATURES``."""
        return {"log_rank": math.log(self.rank), "lexical": self.lexical,
                "in_link": self.in_link, "two_hop": self.two_hop}


def signals(index: CandidateIndex, pattern: Pattern, k: int, *,
            hide_relationships: bool = False) -> list[Signal]:
    """The ranker's top ``k`` candidates of ``pattern`` with their evidence, best first."""
    ranked = index.ranked(pattern, k, hide_relationships=hide_relationships)
    if not ranked:
        return []
    lexical = index.lexical_scores(pattern)
    in_links, two_hop = index.graph_scores(pattern, hide_relationships=hide_relationships)
    mine = set(weighted_terms(pattern_fields(pattern)))
    out = []
    for rank, slug in enumerate(ranked, 1):
        info = index.info(slug)
        out.append(Signal(slug=slug, title=info.title, summary=info.summary, rank=rank,
                          lexical=round(lexical.get(slug, 0.0), 6),
                          in_link=in_links.get(slug, 0.0),
                          two_hop=round(two_hop.get(slug, 0.0), 6),
                          shared=shared_words(index, mine, f"{info.title} {info.summary}")))
    return out


def shared_words(index: CandidateIndex, mine: set[str], text: str,
                 limit: int = SHARED_WORDS) -> tuple[str, ...]:
    """The words of ``text`` whose index terms are in ``mine``, rarest first, each once."""
    found: dict[str, tuple[float, int, str]] = {}
    for at, word in enumerate(_SURFACE.findall(text)):
        terms = tokenize(word)
        if len(terms) == 1 and terms[0] in mine and terms[0] not in found:
            found[terms[0]] = (-index.rarity(terms[0]), at, word.casefold())
    return tuple(w for _, _, w in sorted(found.values())[:limit])
