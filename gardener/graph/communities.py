"""One community vocabulary for the whole library: how the registry is built.

Gardening one pattern at a time let every answer coin its own community ids: the real
libraries hold about 2,500 ids for 3,600 patterns, so a community groups nobody. The
registry (``LIBRARY/.gardener/communities.yaml``, read and written by ``registry``) is the
shared vocabulary proposals draw from, validated like link targets. ``build`` seeds it from
what the library already says:

1. existing ids are normalised (case, punctuation, plurals, ``comm_`` prefixes) and
   near-duplicates merged (token-set similarity, or a label naming another id);
2. community detection (seeded Louvain, so it is reproducible) runs on one graph of the
   patterns: their links, the merged id groups and domains as hubs, and their nearest
   neighbours by words, so that patterns with no link at all still find a home;
3. communities smaller than ``min_size`` join the one they are most connected to, and each
   is named after what enough of its members share (``naming``: the id or domain the most
   members carry, never one member's id), or by the model (``community_names``). Every
   pattern ends up in exactly one registry community.

``retarget`` then rewrites a pattern's garden onto the registry's communities.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import networkx as nx

from gardener.graph.naming import Draft, name_drafts
from gardener.library.registry import Registry, RegistryCommunity, normalise_id
from gardener.model import MAX_COMMUNITIES, Community, Garden, Pattern
from gardener.shortlist.candidates import CandidateIndex

TAXONOMY = "taxonomy"
"""``source`` of a garden community drawn from the registry."""
INFERRED = "inferred"
"""``source`` of a community the model proposed outside the registry."""

NEAR_DUPLICATE = 0.6
"""Token-set Jaccard at or above which two normalised ids are one community
("systems-thinking" and "complex-systems-thinking": 2/3)."""
LINK_WEIGHT = 1.0
GROUP_WEIGHT = 1.0
"""Weight of a pattern's tie to an existing community group (times its confidence)."""
DOMAIN_WEIGHT = 0.5
LEXICAL_NEIGHBOURS = 3
LEXICAL_WEIGHT = 0.5
"""Ties to the few patterns sharing the most distinctive words (times the scaled BM25)."""
LEXICAL_FLOOR = 0.2
"""Scaled BM25 below this is no neighbour."""
DEFAULT_SEED = 7
DEFAULT_RESOLUTION = 1.0


# --- normalising and merging ids ------------------------------------------------------------


def _tokens(key: str) -> frozenset[str]:
    return frozenset(w for w in key.split("-") if w)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


@dataclass(frozen=True)
class Membership:
    slug: str
    id: str
    label: str | None
    confidence: float | None


@dataclass(frozen=True)
class Group:
    """Existing ids that are one community once spelling and near-duplicates are set aside."""

    key: str
    ids: tuple[str, ...]
    """The raw ids, most used first."""
    labels: tuple[str, ...]
    """The raw labels, most used first."""
    members: tuple[str, ...]
    """Slugs of the patterns using any of the ids."""


class _Union:
    def __init__(self, keys: Iterable[str]) -> None:
        self.parent = {k: k for k in keys}

    def find(self, k: str) -> str:
        while self.parent[k] != k:
            self.parent[k] = self.parent[self.parent[k]]
            k = self.parent[k]
        return k

    def join(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            low, high = sorted((ra, rb))
            self.parent[high] = low


def memberships(patterns: Iterable[Pattern]) -> list[Membership]:
    out: list[Membership] = []
    seen: set[str] = set()
    for p in patterns:
        if p.slug in seen or p.garden is None:
            continue
        seen.add(p.slug)
        out.extend(Membership(p.slug, c.id, c.label, c.confidence) for c in p.garden.communities)
    return out


def _most_common(values: Iterable[str]) -> tuple[str, ...]:
    counts = Counter(values)
    return tuple(sorted(counts, key=lambda v: (-counts[v], len(v), v)))


def consolidate(found: Sequence[Membership], near: float = NEAR_DUPLICATE) -> list[Group]:
    """Existing ids grouped: same key after normalising, near-duplicate token sets, or a
    label that normalises to another id's key. Deterministic: keys are joined in order."""
    keys = sorted({normalise_id(m.id) for m in found} - {""})
    union = _Union(keys)
    known = set(keys)
    for m in found:
        label_key = normalise_id(m.label or "")
        if label_key in known:
            union.join(normalise_id(m.id), label_key)
    tokens = {k: _tokens(k) for k in keys}
    by_token: dict[str, list[str]] = {}
    for k in keys:
        for t in tokens[k]:
            by_token.setdefault(t, []).append(k)
    for k in keys:
        others = sorted({o for t in tokens[k] for o in by_token[t] if o > k})
        for o in others:
            if jaccard(tokens[k], tokens[o]) >= near:
                union.join(k, o)
    grouped: dict[str, list[Membership]] = {}
    for m in found:
        key = normalise_id(m.id)
        if key:
            grouped.setdefault(union.find(key), []).append(m)
    return [Group(key=root, ids=_most_common(m.id for m in ms),
                  labels=_most_common(m.label for m in ms if m.label),
                  members=tuple(sorted({m.slug for m in ms})))
            for root, ms in sorted(grouped.items())]


# --- detection ----------------------------------------------------------------------------


def _add(g: nx.Graph[str], a: str, b: str, w: float) -> None:
    if a == b or w <= 0:
        return
    if g.has_edge(a, b):
        g.edges[a, b]["weight"] += w
    else:
        g.add_edge(a, b, weight=w)


def detection_graph(patterns: Sequence[Pattern], groups: Sequence[Group],
                    index: CandidateIndex | None = None) -> nx.Graph[str]:
    """Patterns tied by links, by shared community groups and domains (as hub nodes) and by
    their nearest neighbours in words; hubs are named ``group:`` and ``domain:``."""
    chosen: dict[str, Pattern] = {}
    for p in sorted(patterns, key=lambda p: p.slug):
        chosen.setdefault(p.slug, p)
    g: nx.Graph[str] = nx.Graph()
    g.add_nodes_from(chosen)
    for slug, p in chosen.items():
        targets = [r.target for r in p.relationships if r.resolved]
        if p.garden is not None:
            targets += [lk.target for lk in p.garden.inferred_links]
        for t in sorted(set(targets)):
            if t in chosen:
                _add(g, slug, t, LINK_WEIGHT)
    group_of = {normalise_id(i): grp.key for grp in groups for i in grp.ids}
    for grp in groups:
        if len(grp.members) < 2:
            continue
        g.add_node(f"group:{grp.key}")
    for slug, p in chosen.items():
        if p.garden is None:
            continue
        for c in p.garden.communities:
            hub = f"group:{group_of.get(normalise_id(c.id), '')}"
            if hub in g:
                conf = c.confidence if c.confidence is not None else 1.0
                _add(g, slug, hub, GROUP_WEIGHT * max(conf, 0.1))
    domains = Counter(p.domain.strip().lower() for p in chosen.values() if p.domain)
    for slug, p in chosen.items():
        if p.domain and domains[p.domain.strip().lower()] > 1:
            _add(g, slug, f"domain:{p.domain.strip().lower()}", DOMAIN_WEIGHT)
    lexical = index if index is not None else CandidateIndex(list(chosen.values()))
    for slug, p in chosen.items():
        scores = lexical.lexical_scores(p)
        best = heapq.nsmallest(LEXICAL_NEIGHBOURS, scores.items(),
                               key=lambda kv: (-kv[1], kv[0]))
        for other, s in best:
            if s >= LEXICAL_FLOOR and other in chosen:
                _add(g, slug, other, LEXICAL_WEIGHT * s)
    return g


def _is_hub(node: str) -> bool:
    return node.startswith(("group:", "domain:"))


@dataclass(frozen=True)
class Detection:
    communities: list[list[str]]
    """Slugs per community, largest first."""
    label: dict[str, int]
    """Every node's community index (hubs included), into ``communities``."""
    raw: int
    """Communities Louvain found before small ones were folded in."""


def detect(g: nx.Graph[str], *, seed: int = DEFAULT_SEED, resolution: float = DEFAULT_RESOLUTION,
           min_size: int = 3) -> Detection:
    """Seeded Louvain, then each community of fewer than ``min_size`` patterns joins the one
    it is most tied to (smallest first, until none can move). Hubs only carry ties."""
    found = nx.community.louvain_communities(g, weight="weight", resolution=resolution,
                                             seed=seed)
    raw = sum(1 for c in found if any(not _is_hub(n) for n in c))
    label: dict[str, int] = {}
    for i, members in enumerate(sorted((sorted(c) for c in found), key=lambda c: c[0])):
        for n in members:
            label[n] = i
    while True:
        sizes = Counter(label[n] for n in label if not _is_hub(n))
        small = sorted((c for c, n in sizes.items() if n < min_size),
                       key=lambda c: (sizes[c], c))
        moved = False
        for c in small:
            inside = [n for n, lab in label.items() if lab == c]
            ties: dict[int, float] = {}
            for n in inside:
                for other, attrs in g[n].items():
                    if label[other] != c and label[other] in sizes:
                        ties[label[other]] = (ties.get(label[other], 0.0)
                                              + float(attrs.get("weight", 1.0)))
            if ties:
                target = min(ties, key=lambda t: (-ties[t], t))
                for n in inside:
                    label[n] = target
                moved = True
                break
        if not moved:
            break
    grouped: dict[int, list[str]] = {}
    for n in sorted(label):
        if not _is_hub(n):
            grouped.setdefault(label[n], []).append(n)
    order = sorted(grouped, key=lambda c: (-len(grouped[c]), grouped[c][0]))
    renumber = {old: new for new, old in enumerate(order)}
    final_label = {n: renumber[lab] for n, lab in label.items() if lab in renumber}
    return Detection([grouped[c] for c in order], final_label, raw)


# --- naming and the whole build -------------------------------------------------------------


@dataclass(frozen=True)
class BuildResult:
    registry: Registry
    drafts: tuple[Draft, ...]
    ids_before: int
    """Distinct community ids in the gardens before the build."""
    keys_after_normalising: int
    groups_after_merging: int
    detected: int
    """Communities Louvain found, before small ones were folded in."""
    patterns: int
    assigned: int
    strengths: Mapping[str, float] = field(default_factory=dict)
    """How much of each pattern's ties stay inside its community (0..1)."""


def _strength(g: nx.Graph[str], slug: str, label: Mapping[str, int]) -> float:
    """The share of a pattern's ties (links, hubs, word neighbours) inside its community."""
    total = inside = 0.0
    for other, attrs in g[slug].items():
        w = float(attrs.get("weight", 1.0))
        total += w
        if label.get(other) == label[slug]:
            inside += w
    return round(inside / total, 2) if total else 0.0


def registry_of(drafts: Sequence[Draft], path: Path | None = None) -> Registry:
    """Drafts as a registry: members sorted, aliases the former ids that are no other id."""
    ids = {d.id for d in drafts}
    return Registry(tuple(
        RegistryCommunity(id=d.id, label=d.label, description=d.description,
                          aliases=tuple(a for a in d.former if a != d.id and a not in ids),
                          members=tuple(sorted(d.members)))
        for d in sorted(drafts, key=lambda d: d.id)), path)


def build(patterns: Sequence[Pattern], *, seed: int = DEFAULT_SEED,
          resolution: float = DEFAULT_RESOLUTION, min_size: int | None = None,
          index: CandidateIndex | None = None) -> BuildResult:
    """Consolidate and detect, then name deterministically (the model may rename later)."""
    chosen: dict[str, Pattern] = {}
    for p in patterns:
        chosen.setdefault(p.slug, p)
    found = memberships(chosen.values())
    groups = consolidate(found)
    g = detection_graph(list(chosen.values()), groups, index)
    size = min_size if min_size is not None else default_min_size(len(chosen))
    detection = detect(g, seed=seed, resolution=resolution, min_size=size)
    drafts = name_drafts(detection.communities, groups, chosen, g)
    strengths = {s: _strength(g, s, detection.label) for d in drafts for s in d.members}
    return BuildResult(
        registry=registry_of(drafts), drafts=tuple(drafts),
        ids_before=len({m.id for m in found}),
        keys_after_normalising=len({normalise_id(m.id) for m in found} - {""}),
        groups_after_merging=len(groups),
        detected=detection.raw, patterns=len(chosen), assigned=len(strengths),
        strengths=dict(sorted(strengths.items())))


def default_min_size(patterns: int) -> int:
    """Small libraries keep communities of three; large ones about one per hundred patterns."""
    return max(3, math.ceil(patterns / 100))


def renamed(result: BuildResult, drafts: Sequence[Draft]) -> BuildResult:
    """The build with new names (the model's), members and former ids unchanged."""
    return replace(result, drafts=tuple(drafts), registry=registry_of(drafts))


# --- gardens onto the registry ----------------------------------------------------------------


def retarget(garden: Garden | None, slug: str, registry: Registry,
             strength: float | None = None) -> Garden:
    """A garden's communities as registry communities (``source: taxonomy``).

    The pattern's assigned community comes first; its other communities are kept when the
    registry knows them (by id or alias), with their confidence; unknown ones go. Items
    already saying the same keep their text.
    """
    base = garden if garden is not None else Garden()
    chosen: dict[str, float | None] = {}
    assigned = registry.assignment().get(slug)
    if assigned is not None:
        chosen[assigned] = strength
    for c in base.communities:
        cid = registry.resolve(c.id)
        if cid is None:
            continue
        old = chosen.get(cid)
        conf = c.confidence
        if cid not in chosen or (conf is not None and (old is None or conf > old)):
            chosen[cid] = conf
    items: list[Community] = []
    for cid, conf in chosen.items():
        entry = registry.get(cid)
        assert entry is not None
        new = Community(id=cid, label=entry.label, source=TAXONOMY,
                        confidence=round(conf, 2) if conf is not None else None)
        same = next((c for c in base.communities if c == new), None)
        items.append(same if same is not None else new)
    items = items[:1] + sorted(items[1:], key=lambda c: (-(c.confidence or 0.0), c.id))
    return base.model_copy(update={"communities": tuple(items[:MAX_COMMUNITIES])})
