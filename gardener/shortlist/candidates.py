"""Choose, for one pattern, the few library patterns worth showing the model as link targets.

The model can only link to what it is shown, and a library of thousands does not fit in a
prompt: the old tool showed an alphabetical prefix, so 99% of its links started with "a".
Here the shortlist is ranked by evidence instead: words shared with the pattern (BM25 over
its title, aliases, summary, keywords, domain and headings) and the human-curated graph
(patterns that already point at this one, and the neighbours of its neighbours). Everything
is pure and deterministic; ``CandidateIndex`` is built once per library pass.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gardener.folding import STOPWORDS, stem
from gardener.model import Pattern

FIELD_WEIGHTS: Mapping[str, int] = {
    "title": 1,
    "title_pairs": 3,
    "keywords": 1,
    "domain": 1,
    "summary": 1,
    "headings": 1,
}
"""Term-frequency multipliers (a BM25F-lite: a plain bag of words). Every field's words count
once: weighting title words 3 and keywords and domain 2 *lowered* recall on both measured
libraries (docs/candidates.md), since BM25 saturates a repeated term and the longer weighted
bags were penalised for their length. What a title says best is its phrase: two titles that
share a pair of adjacent words ("distributed leadership") share a rare token, which counts 3."""

BM25_K1 = 1.2
BM25_B = 0.75
MAX_QUERY_TERMS = 256
"""Query by document, capped as Lucene's MoreLikeThis caps it, but loosely: the fields are a
short description already, and cutting to 32 terms cost recall on the sample libraries."""

IN_LINK_WEIGHT = 1.0
"""A human already linked the candidate to this pattern: the relation's inverse (or its
symmetric twin) is very likely, so an in-linker sharing no word at all ranks level with the
best lexical match, and above it as soon as it shares any."""
IN_LINK_SHARE = 0.5
"""The largest share of a shortlist that in-links may promote (see ``CandidateIndex.scores``)."""
TWO_HOP_WEIGHT = 0.5
"""Sharing curated neighbours is suggestive but weaker than a direct link: a strong two-hop
candidate ranks with a good lexical match, and above it only with some lexical support."""

_TOKEN = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class CandidateInfo:
    """What the prompt shows for each candidate."""

    slug: str
    title: str
    summary: str


def tokenize(text: str) -> list[str]:
    """Lowercase words split at non-alphanumerics, minus stopwords and bare numbers, stemmed."""
    out: list[str] = []
    for raw in _TOKEN.findall(text.lower()):
        if len(raw) < 2 or raw.isdigit() or raw in STOPWORDS:
            continue
        out.append(stem(raw))
    return out


def word_pairs(tokens: Sequence[str]) -> list[str]:
    """Adjacent tokens as one token each (``distribut_leadership``): a title's phrase."""
    return [f"{first}_{second}" for first, second in itertools.pairwise(tokens)]


def pattern_fields(pattern: Pattern) -> dict[str, list[str]]:
    """The tokens of each lexical field of a pattern."""
    fields = {
        "title": tokenize(" ".join((pattern.title, *pattern.aliases))),
        "title_pairs": [pair for name in (pattern.title, *pattern.aliases)
                        for pair in word_pairs(tokenize(name))],
        "keywords": tokenize(" ".join(pattern.keywords)),
        "domain": tokenize(pattern.domain or ""),
        "summary": tokenize(pattern.summary),
        "headings": tokenize(" ".join(s.heading for s in pattern.sections)),
    }
    if pattern.domain:
        # The whole domain as one token too: sharing the exact domain is a categorical signal
        # that the split words ("commons", "design") only hint at.
        fields["domain"].append("domain:" + pattern.domain.strip().lower())
    return fields


def weighted_terms(fields: Mapping[str, Sequence[str]],
                   weights: Mapping[str, int] = FIELD_WEIGHTS) -> Counter[str]:
    """One bag of words from several fields, each field's counts multiplied by its weight."""
    bag: Counter[str] = Counter()
    for name, tokens in fields.items():
        w = weights.get(name, 0)
        if w <= 0:
            continue
        for token in tokens:
            bag[token] += w
    return bag


@dataclass(frozen=True)
class Bm25:
    """A sparse BM25 index: for each term, the documents holding it and their term scores.

    Postings are two parallel tuples (documents, scores) rather than pairs: summing them into
    a flat list is several times faster in pure Python, which keeps a query in milliseconds.
    """

    postings: Mapping[str, tuple[tuple[int, ...], tuple[float, ...]]]
    idf: Mapping[str, float]
    size: int


def bm25_index(docs: Sequence[Mapping[str, int]], k1: float = BM25_K1,
               b: float = BM25_B) -> Bm25:
    """Precompute each (term, document) weight so that a query only sums postings."""
    n = len(docs)
    lengths = [sum(d.values()) for d in docs]
    avg = (sum(lengths) / n) if n else 0.0
    df: Counter[str] = Counter()
    for d in docs:
        df.update(d.keys())
    idf = {t: math.log(1.0 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}
    ids: dict[str, list[int]] = {}
    weights: dict[str, list[float]] = {}
    for i, d in enumerate(docs):
        norm = k1 * (1.0 - b + b * (lengths[i] / avg if avg else 0.0))
        for term, tf in d.items():
            ids.setdefault(term, []).append(i)
            weights.setdefault(term, []).append(idf[term] * tf * (k1 + 1.0) / (tf + norm))
    return Bm25(postings={t: (tuple(ids[t]), tuple(weights[t])) for t in ids}, idf=idf, size=n)


def query_terms(bag: Mapping[str, int], index: Bm25,
                limit: int = MAX_QUERY_TERMS) -> list[tuple[str, float]]:
    """The query's most distinctive terms in the index, with a saturated query-side weight."""
    known = [(t, q) for t, q in bag.items() if t in index.idf]
    ranked = sorted(known, key=lambda tq: (-index.idf[tq[0]] * tq[1], tq[0]))[:limit]
    return [(t, (BM25_K1 + 1.0) * q / (BM25_K1 + q)) for t, q in sorted(ranked)]


def bm25_scores(terms: Iterable[tuple[str, float]], index: Bm25) -> list[float]:
    """The score of every document, by position; only postings of the query terms are read."""
    acc = [0.0] * index.size
    for term, qweight in terms:
        docs, weights = index.postings.get(term, ((), ()))
        for doc, weight in zip(docs, weights, strict=True):
            acc[doc] += qweight * weight
    return acc


class DenseBm25:
    """The postings of a ``Bm25`` as arrays, to score a query with a few array operations.

    A query against a large library touches most documents (a term shared by a hundred
    patterns is common), and the pure-Python sum costs about a millisecond a pattern. Each
    document's score is still added term by term in the same order, with the same products,
    so every score is the same double as ``bm25_scores`` gives.
    """

    def __init__(self, index: Bm25) -> None:
        self.size = index.size
        self.postings: dict[str, tuple[NDArray[np.intp], NDArray[np.float64]]] = {
            t: (np.array(docs, dtype=np.intp), np.array(weights, dtype=np.float64))
            for t, (docs, weights) in index.postings.items()}

    def scores(self, terms: Iterable[tuple[str, float]]) -> NDArray[np.float64]:
        """``bm25_scores`` as an array: a document's postings hold it at most once."""
        acc = np.zeros(self.size, dtype=np.float64)
        for term, qweight in terms:
            found = self.postings.get(term)
            if found is not None:
                docs, weights = found
                acc[docs] += qweight * weights
        return acc


def resolved_targets(pattern: Pattern) -> list[str]:
    """The slugs a pattern's human relationships point at (unresolved references dropped)."""
    return [r.target for r in pattern.relationships if r.resolved and r.target != pattern.slug]


@dataclass(frozen=True)
class Weights:
    """How much each signal counts; zero switches it off (used by the recall benchmark)."""

    lexical: float = 1.0
    in_link: float = IN_LINK_WEIGHT
    two_hop: float = TWO_HOP_WEIGHT


def _rank(scores: Mapping[str, float], k: int) -> list[str]:
    positive = ((s, slug) for slug, s in scores.items() if s > 0.0)
    return [slug for _, slug in heapq.nsmallest(k, positive, key=lambda sc: (-sc[0], sc[1]))]


class CandidateIndex:
    """Lexical and graph evidence for a whole library, built once, queried per pattern.

    Results do not depend on the order files were read: scores are summed in term and slug
    order and ties broken by slug. When two files share a slug the first one counts, as in
    ``Library.by_slug``.
    """

    def __init__(self, patterns: Sequence[Pattern], *,
                 field_weights: Mapping[str, int] = FIELD_WEIGHTS,
                 weights: Weights = Weights(),
                 max_query_terms: int = MAX_QUERY_TERMS) -> None:
        chosen: dict[str, Pattern] = {}
        for p in sorted(patterns, key=lambda p: p.slug):
            chosen.setdefault(p.slug, p)
        self._patterns = chosen
        self._slugs = list(chosen)
        self._field_weights = dict(field_weights)
        self._weights = weights
        self._max_query_terms = max_query_terms
        self._bags = {slug: weighted_terms(pattern_fields(p), self._field_weights)
                      for slug, p in chosen.items()}
        self._lexical = bm25_index(list(self._bags.values()))
        out: dict[str, set[str]] = {s: set() for s in chosen}
        into: dict[str, set[str]] = {s: set() for s in chosen}
        for slug, p in chosen.items():
            for target in resolved_targets(p):
                if target in chosen:
                    out[slug].add(target)
                    into[target].add(slug)
        self._out = {s: frozenset(t) for s, t in out.items()}
        self._in = {s: frozenset(t) for s, t in into.items()}
        self._dense = DenseBm25(self._lexical)
        self._position = {slug: i for i, slug in enumerate(self._slugs)}

    def __len__(self) -> int:
        return len(self._slugs)

    def info(self, slug: str) -> CandidateInfo:
        p = self._patterns[slug]
        return CandidateInfo(slug=p.slug, title=p.title, summary=p.summary)

    def rarity(self, term: str) -> float:
        """The inverse document frequency of a (tokenized) term in the library; 0 if unseen."""
        return self._lexical.idf.get(term, 0.0)

    def _neighbours(self, slug: str) -> frozenset[str]:
        return self._out.get(slug, frozenset()) | self._in.get(slug, frozenset())

    def _bag(self, pattern: Pattern) -> Counter[str]:
        """The pattern's weighted terms; those the index made when it holds this very pattern
        (a pass asks about the patterns it indexed: tokenizing them again was a quarter of
        the skip decision's CPU)."""
        if self._patterns.get(pattern.slug) is pattern:
            return self._bags[pattern.slug]
        return weighted_terms(pattern_fields(pattern), self._field_weights)

    def lexical_scores(self, pattern: Pattern) -> dict[str, float]:
        """BM25 of every pattern sharing a distinctive term, scaled so the best one is 1."""
        acc = self._dense.scores(query_terms(self._bag(pattern), self._lexical,
                                             self._max_query_terms))
        me = self._position.get(pattern.slug)
        if me is not None:
            acc[me] = 0.0
        top = float(acc.max(initial=0.0))
        return {self._slugs[i]: float(acc[i]) / top
                for i in np.flatnonzero(acc > 0.0).tolist()}

    def graph_scores(self, pattern: Pattern, *, hide_relationships: bool = False
                     ) -> tuple[dict[str, float], dict[str, float]]:
        """In-link indicator and two-hop closeness from the human-curated graph.

        The pattern's own outgoing edges come from ``pattern`` (the version being gardened),
        not from the index; hiding them leaves only what others said about it. Two-hop
        closeness is the resource-allocation index (each shared neighbour contributes one over
        its degree), so a hub that touches half the library says little about any one pair.
        """
        me = pattern.slug
        own = frozenset() if hide_relationships else frozenset(
            t for t in resolved_targets(pattern) if t in self._patterns)
        in_links = self._in.get(me, frozenset())
        first = (in_links | own) - {me}
        two_hop: dict[str, float] = {}
        for middle in sorted(first):
            around = self._neighbours(middle) | {me}
            share = 1.0 / len(around)
            for other in sorted(around):
                if other != me:
                    two_hop[other] = two_hop.get(other, 0.0) + share
        return ({s: 1.0 for s in in_links if s != me},
                {s: min(1.0, v) for s, v in two_hop.items()})

    def scores(self, pattern: Pattern, k: int = 40, *, hide_relationships: bool = False
               ) -> dict[str, float]:
        """Combined evidence for every candidate that has any, before the cut to ``k``.

        In-links promote at most ``IN_LINK_SHARE`` of ``k`` candidates, those with the best
        other evidence: a hub that half the library points at still gets half of its list
        chosen by content rather than by who happened to link to it.
        """
        w = self._weights
        exclude = {pattern.slug}
        if not hide_relationships:
            exclude.update(resolved_targets(pattern))
        total: dict[str, float] = {}
        if w.lexical:
            for slug, s in self.lexical_scores(pattern).items():
                total[slug] = w.lexical * s
        in_links, two_hop = self.graph_scores(pattern, hide_relationships=hide_relationships)
        if w.two_hop:
            for slug, s in two_hop.items():
                total[slug] = total.get(slug, 0.0) + w.two_hop * s
        if w.in_link:
            linkers = [(total.get(s, 0.0), s) for s in in_links if s not in exclude]
            room = max(1, math.ceil(IN_LINK_SHARE * k))
            for _, slug in heapq.nsmallest(room, linkers, key=lambda sc: (-sc[0], sc[1])):
                total[slug] = total.get(slug, 0.0) + w.in_link * in_links[slug]
        return {s: v for s, v in total.items() if s not in exclude}

    def ranked(self, pattern: Pattern, k: int = 40, *,
               hide_relationships: bool = False) -> list[str]:
        """The shortlist as slugs: best evidence first, ties broken by slug."""
        if k <= 0:
            return []
        total = self._dense_scores(pattern, k, hide_relationships=hide_relationships)
        chosen = np.flatnonzero(total > 0.0)
        if len(chosen) > k:
            # Keep every candidate scoring at least the k-th best, ties included, then
            # order the few left by score and slug (positions are in slug order).
            kth = np.partition(total[chosen], len(chosen) - k)[len(chosen) - k]
            chosen = chosen[total[chosen] >= kth]
        best = sorted(chosen.tolist(), key=lambda i: (-total[i], i))[:k]
        return [self._slugs[i] for i in best]

    def _dense_scores(self, pattern: Pattern, k: int, *, hide_relationships: bool
                      ) -> NDArray[np.float64]:
        """``scores`` as an array by position, zero where ``scores`` has no entry.

        The same sums in the same order as ``scores``, so the ranking is the same; only the
        lexical part, which touches most of the library, is done on arrays.
        """
        w = self._weights
        position = self._position
        total = np.zeros(len(self._slugs), dtype=np.float64)
        if w.lexical:
            bag = self._bag(pattern)
            acc = self._dense.scores(query_terms(bag, self._lexical, self._max_query_terms))
            me = position.get(pattern.slug)
            if me is not None:
                acc[me] = 0.0
            top = float(acc.max(initial=0.0))
            if top > 0.0:
                lexical = np.where(acc > 0.0, acc / top, 0.0)
                total = w.lexical * lexical
        in_links, two_hop = self.graph_scores(pattern, hide_relationships=hide_relationships)
        if w.two_hop:
            for slug, s in two_hop.items():
                i = position[slug]
                total[i] = float(total[i]) + w.two_hop * s
        exclude = {pattern.slug}
        if not hide_relationships:
            exclude.update(resolved_targets(pattern))
        if w.in_link:
            linkers = [(float(total[position[s]]), s) for s in in_links if s not in exclude]
            room = max(1, math.ceil(IN_LINK_SHARE * k))
            for _, slug in heapq.nsmallest(room, linkers, key=lambda sc: (-sc[0], sc[1])):
                i = position[slug]
                total[i] = float(total[i]) + w.in_link * in_links[slug]
        for slug in exclude:
            at = position.get(slug)
            if at is not None:
                total[at] = 0.0
        return total

    def shortlist(self, pattern: Pattern, k: int = 40, *,
                  hide_relationships: bool = False) -> list[CandidateInfo]:
        """At most ``k`` link targets for ``pattern``, never itself nor its own human targets.

        Only patterns with some evidence are listed, so a pattern with nothing in common with
        the library gets a short list rather than an arbitrary one. ``hide_relationships``
        pretends the pattern has no human relationships of its own (leave-one-out evaluation).
        """
        return [self.info(s) for s in self.ranked(pattern, k,
                                                  hide_relationships=hide_relationships)]

    def fingerprint(self, slugs: Sequence[str]) -> str:
        """A stable hash of a candidate set: order and repeats do not matter.

        Only the slugs count, not their titles or summaries: rewording one pattern should not
        re-run every pattern that lists it as a candidate.
        """
        blob = "\n".join(sorted(set(slugs)))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()
