"""How healthy a library's graph is, as numbers and flags: a pure function of its graph.

The defects that matter are invisible one file at a time: a tool that only ever saw an
alphabetical prefix of the library (99% of its link targets start with "a"), a community
vocabulary with as many ids as patterns, links into nothing, patterns nothing points at,
pairs that contradict each other. Each metric here is computed on a ``LibraryGraph`` and
each flag states its numbers, so a report says what is wrong and by how much.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from gardener.graph.library_graph import Edge, LibraryGraph, Origin
from gardener.model import LINK_TYPES

INVERSE: Mapping[str, str] = {
    "specializes_to": "generalizes_from",
    "generalizes_from": "specializes_to",
    "enables": "requires",
    "requires": "enables",
}
"""Link types whose reverse link, when there is one of the same family, must be the inverse."""

MIN_LINKS_FOR_SKEW = 20
"""Below this many links, a skew is noise: nothing is flagged."""
KS_EFFECT = 0.25
"""Smallest distance between the targets' alphabetical spread and the slugs' that is flagged:
a quarter of the targets sitting where a uniform spread would not put them."""
KS_ALPHA_COEFFICIENT = 1.63
"""Kolmogorov-Smirnov critical value coefficient at alpha = 0.01: c / sqrt(n)."""
TVD_EFFECT = 0.4
"""First-letter shares of targets and slugs this far apart (total variation) are flagged,
when Pearson's chi-square also rejects "spread like the slugs" at alpha = 0.01: with few
links, the letters of a fair sample are far apart by chance alone."""
Z_ALPHA = 2.326
"""Standard normal quantile at 0.99, for the chi-square critical value."""
FRAGMENTED_SINGLETON_SHARE = 0.5
"""A vocabulary where most community ids are used by one pattern only is fragmented."""
FRAGMENTED_IDS_PER_PATTERN = 0.25
"""More than one distinct community id per four patterns is no shared vocabulary."""
MIN_IDS_FOR_FRAGMENTATION = 10
SIZE_BINS: tuple[tuple[int, int], ...] = ((1, 1), (2, 2), (3, 5), (6, 10), (11, 20),
                                          (21, 50), (51, 100), (101, 10**9))
EXAMPLES = 20
"""How many examples a metric keeps for the report (counts are always complete)."""


@dataclass(frozen=True)
class Flag:
    code: str
    message: str


@dataclass(frozen=True)
class Skew:
    """How one origin's link targets are spread over the library, against the slugs."""

    origin: str
    links: int
    """Links into the library (dangling ones are counted apart): both tests use these."""
    target_letters: dict[str, float]
    slug_letters: dict[str, float]
    tvd: float
    """Total variation distance between the two first-letter distributions (0..1)."""
    chi2: float
    """Pearson's statistic of the target letters against the slug letters' shares."""
    chi2_critical: float
    top_letter: str
    top_target_share: float
    top_slug_share: float
    ks: float
    """Kolmogorov-Smirnov distance of the targets' alphabetical rank positions from uniform."""
    ks_critical: float
    coverage: float
    """Distinct patterns targeted, as a share of all patterns."""
    rank_positions: list[float] = field(repr=False)
    """Each internal target's position in the sorted slugs, 0..1 (for the chart)."""

    @property
    def flagged(self) -> bool:
        if self.links < MIN_LINKS_FOR_SKEW:
            return False
        ranked = self.ks >= max(KS_EFFECT, self.ks_critical)
        lettered = self.tvd >= TVD_EFFECT and self.chi2 > self.chi2_critical
        return ranked or lettered


@dataclass(frozen=True)
class Links:
    patterns: int
    human: int
    inferred: int
    dangling_human: int
    dangling_inferred: int
    dangling_examples: list[str]
    no_links: int
    """Patterns holding no link at all, human or inferred."""
    no_links_examples: list[str]
    orphans: int
    """Patterns no other pattern links to."""
    orphan_examples: list[str]
    isolated: int
    """Patterns with no link in or out within the library."""
    isolated_examples: list[str]


@dataclass(frozen=True)
class InversePairs:
    checked: int
    """Linked pairs with a typed link each way in the same family (hierarchy, dependency)."""
    consistent: int
    inconsistent: int
    examples: list[str]
    one_way: int
    """Hierarchy or dependency links whose target holds no link back (informational)."""


@dataclass(frozen=True)
class Conflicts:
    """Inferred links against the human-curated ones."""

    redundant: int
    """Inferred links repeating a human relationship (same pattern, target and type)."""
    same_direction: int
    """Inferred links typed differently from the human relationship to the same target."""
    reverse: int
    """Inferred a->b whose human b->a of the same family is not its inverse."""
    examples: list[str]


@dataclass(frozen=True)
class Communities:
    patterns: int
    with_community: int
    without_community: int
    distinct_ids: int
    memberships: int
    singletons: int
    ids_per_pattern: float
    """Distinct ids per pattern that has any: near 0 for a shared vocabulary."""
    singleton_share: float
    largest: list[tuple[str, int]]
    size_histogram: list[tuple[str, int]]
    label_variants: int
    """Ids written with more than one label."""
    outside_registry: int | None = None
    """Memberships whose id the registry does not hold; None without a registry."""
    registry_size: int | None = None

    @property
    def fragmented(self) -> bool:
        return self.distinct_ids >= MIN_IDS_FOR_FRAGMENTATION and (
            self.singleton_share >= FRAGMENTED_SINGLETON_SHARE
            or self.ids_per_pattern >= FRAGMENTED_IDS_PER_PATTERN)


@dataclass(frozen=True)
class EntitySummary:
    distinct_ids: int
    merged_ids: int
    """Ids that resolution folds into another one (case, plurals, punctuation, aliases)."""
    groups: int
    examples: list[str]


@dataclass(frozen=True)
class Health:
    links: Links
    skew: list[Skew]
    inverse: InversePairs
    conflicts: Conflicts
    communities: Communities
    entities: EntitySummary | None
    flags: list[Flag]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for s, raw in zip(self.skew, data["skew"], strict=True):
            raw["flagged"] = s.flagged
            raw.pop("rank_positions")
        data["communities"]["fragmented"] = self.communities.fragmented
        return data


# --- skew ---------------------------------------------------------------------------------


def first_letter(slug: str) -> str:
    """The bucket of a slug: its first character when a letter, '#' for digits, else '?'."""
    c = slug[:1].lower()
    if c.isalpha() and c.isascii():
        return c
    return "#" if c.isdigit() else "?"


def shares(values: Iterable[str]) -> dict[str, float]:
    counts = Counter(values)
    total = sum(counts.values())
    return {k: counts[k] / total for k in sorted(counts)} if total else {}


def total_variation(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    keys = set(p) | set(q)
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in keys)


def chi_square(observed: Mapping[str, int], expected_share: Mapping[str, float]) -> float:
    """Pearson's statistic; letters no slug starts with are skipped (they are dangling)."""
    n = sum(observed.values())
    return sum((observed.get(k, 0) - n * s) ** 2 / (n * s)
               for k, s in expected_share.items() if s > 0 and n > 0)


def rank_positions(targets: Iterable[str], slugs: Sequence[str]) -> list[float]:
    """Each target's place in the alphabetical order of the slugs, as a fraction 0..1."""
    rank = {s: i for i, s in enumerate(sorted(slugs))}
    n = len(rank)
    return sorted((rank[t] + 0.5) / n for t in targets if t in rank)


def ks_uniform(positions: Sequence[float]) -> float:
    """Kolmogorov-Smirnov distance of sorted positions from the uniform distribution."""
    m = len(positions)
    if m == 0:
        return 0.0
    return max(max((i + 1) / m - x, x - i / m) for i, x in enumerate(positions))


def chi2_critical(dof: int, z: float = Z_ALPHA) -> float:
    """Wilson-Hilferty approximation of the chi-square quantile (no scipy needed)."""
    if dof <= 0:
        return math.inf
    k = 2.0 / (9.0 * dof)
    return float(dof * (1.0 - k + z * math.sqrt(k)) ** 3)


def skew(graph: LibraryGraph, origin: Origin) -> Skew:
    """Targets within the library against the slugs: first letters, and alphabetical rank."""
    slugs = graph.slugs
    internal = graph.internal(origin)
    slug_share = shares(first_letter(s) for s in slugs)
    letters = Counter(first_letter(e.target) for e in internal)
    target_share = shares(first_letter(e.target) for e in internal)
    positions = rank_positions((e.target for e in internal), slugs)
    top = max(sorted(target_share), key=lambda k: target_share[k], default="")
    m = len(positions)
    return Skew(
        origin=origin, links=len(internal),
        target_letters=target_share, slug_letters=slug_share,
        tvd=round(total_variation(target_share, slug_share), 4),
        chi2=round(chi_square(letters, slug_share), 2),
        chi2_critical=round(chi2_critical(len(slug_share) - 1), 2),
        top_letter=top, top_target_share=round(target_share.get(top, 0.0), 4),
        top_slug_share=round(slug_share.get(top, 0.0), 4),
        ks=round(ks_uniform(positions), 4),
        ks_critical=round(KS_ALPHA_COEFFICIENT / math.sqrt(m), 4) if m else 1.0,
        coverage=round(len({e.target for e in internal}) / len(slugs), 4) if slugs else 0.0,
        rank_positions=positions,
    )


# --- links --------------------------------------------------------------------------------


def links(graph: LibraryGraph) -> Links:
    slugs = graph.slugs
    has_any = {e.source for e in graph.edges}
    internal = graph.internal()
    linked_to = {e.target for e in internal}
    linked_from = {e.source for e in internal}
    dangling = graph.dangling()
    no_links = [s for s in slugs if s not in has_any]
    orphans = [s for s in slugs if s not in linked_to]
    isolated = [s for s in slugs if s not in linked_to and s not in linked_from]
    return Links(
        patterns=len(slugs),
        human=sum(1 for e in graph.edges if e.origin == "human"),
        inferred=sum(1 for e in graph.edges if e.origin == "inferred"),
        dangling_human=sum(1 for e in dangling if e.origin == "human"),
        dangling_inferred=sum(1 for e in dangling if e.origin == "inferred"),
        dangling_examples=[f"{e.source} -> {e.target} ({e.origin} {e.type})"
                           for e in dangling[:EXAMPLES]],
        no_links=len(no_links), no_links_examples=no_links[:EXAMPLES],
        orphans=len(orphans), orphan_examples=orphans[:EXAMPLES],
        isolated=len(isolated), isolated_examples=isolated[:EXAMPLES],
    )


# --- inverse pairs and conflicts ------------------------------------------------------------


def _family(link_type: str) -> frozenset[str]:
    inverse = INVERSE.get(link_type)
    return frozenset({link_type, inverse}) if inverse else frozenset()


def _types(edges: Iterable[Edge]) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for e in edges:
        out.setdefault((e.source, e.target), set()).add(e.type)
    return out


def inverse_pairs(graph: LibraryGraph) -> InversePairs:
    """Pairs linked both ways within a family must be inverses (a specializes_to b: b
    generalizes_from a; a enables b: b requires a). Human and inferred links count alike."""
    types = _types(graph.internal())
    checked: set[tuple[str, str, frozenset[str]]] = set()
    bad: list[str] = []
    good = 0
    one_way = 0
    for (a, b), forward in sorted(types.items()):
        back = types.get((b, a), set())
        for t in sorted(forward):
            family = _family(t)
            if not family:
                continue
            related = back & family
            if not related:
                one_way += 1
                continue
            key = (min(a, b), max(a, b), family)
            if key in checked:
                continue
            checked.add(key)
            if INVERSE[t] in related:
                good += 1
            else:
                bad.append(f"{a} {t} {b}, but {b} {'/'.join(sorted(related))} {a}")
    return InversePairs(checked=len(checked), consistent=good, inconsistent=len(bad),
                        examples=bad[:EXAMPLES], one_way=one_way)


def conflicts(graph: LibraryGraph) -> Conflicts:
    human = _types(graph.internal("human"))
    redundant = same = reverse = 0
    examples: list[str] = []
    for e in graph.internal("inferred"):
        known = {t for t in human.get((e.source, e.target), set()) if t in LINK_TYPES}
        loose = human.get((e.source, e.target), set()) - known
        if e.type in known or (loose and not known):
            redundant += 1
        elif known:
            same += 1
            examples.append(f"{e.source}: inferred {e.type} -> {e.target}, human "
                            f"{'/'.join(sorted(known))}")
        family = _family(e.type)
        back = human.get((e.target, e.source), set()) & family
        if back and INVERSE[e.type] not in back:
            reverse += 1
            examples.append(f"{e.source}: inferred {e.type} -> {e.target}, but human "
                            f"{e.target} {'/'.join(sorted(back))} {e.source}")
    return Conflicts(redundant=redundant, same_direction=same, reverse=reverse,
                     examples=examples[:EXAMPLES])


# --- communities --------------------------------------------------------------------------


def _bin(size: int) -> str:
    for low, high in SIZE_BINS:
        if low <= size <= high:
            return str(low) if low == high else (f"{low}+" if high >= 10**9 else f"{low}-{high}")
    return str(size)


def communities(graph: LibraryGraph, registry_ids: Iterable[str] | None = None) -> Communities:
    sizes: Counter[str] = Counter()
    labels: dict[str, set[str]] = {}
    memberships = 0
    with_any = 0
    for node in graph.nodes.values():
        if node.communities:
            with_any += 1
        memberships += len(node.communities)
        sizes.update(node.communities)
        for cid, label in zip(node.communities, node.community_labels, strict=False):
            labels.setdefault(cid, set()).add(label)
    singletons = sum(1 for n in sizes.values() if n == 1)
    histogram = Counter(_bin(n) for n in sizes.values())
    order = [_bin(low) for low, _high in SIZE_BINS]
    known = set(registry_ids) if registry_ids is not None else None
    outside = None if known is None else sum(
        n for cid, n in sizes.items() if cid not in known)
    return Communities(
        patterns=len(graph.nodes), with_community=with_any,
        without_community=len(graph.nodes) - with_any,
        distinct_ids=len(sizes), memberships=memberships, singletons=singletons,
        ids_per_pattern=round(len(sizes) / with_any, 4) if with_any else 0.0,
        singleton_share=round(singletons / len(sizes), 4) if sizes else 0.0,
        largest=sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))[:EXAMPLES],
        size_histogram=[(b, histogram.get(b, 0)) for b in order],
        label_variants=sum(1 for v in labels.values() if len(v) > 1),
        outside_registry=outside,
        registry_size=None if known is None else len(known),
    )


# --- the whole ----------------------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def flags(links_: Links, skews: Sequence[Skew], inverse: InversePairs, conflicts_: Conflicts,
          communities_: Communities) -> list[Flag]:
    out: list[Flag] = []
    for s in skews:
        if s.flagged:
            out.append(Flag("target_skew", (
                f"{s.origin} link targets are not spread like the slugs: "
                f"{_pct(s.top_target_share)} of {s.links} targets in the library start with "
                f"'{s.top_letter}' against {_pct(s.top_slug_share)} of slugs "
                f"(first-letter total variation {s.tvd:.2f}); alphabetical rank KS distance "
                f"{s.ks:.2f} (flagged at {max(KS_EFFECT, s.ks_critical):.2f}); "
                f"{_pct(s.coverage)} of patterns are ever targeted")))
    if communities_.fragmented:
        c = communities_
        out.append(Flag("fragmented_communities", (
            f"{c.distinct_ids} distinct community ids for {c.with_community} patterns that "
            f"have any ({c.ids_per_pattern:.2f} ids per pattern); {c.singletons} ids "
            f"({_pct(c.singleton_share)}) are used by a single pattern; "
            f"{c.without_community} patterns have none")))
    if communities_.outside_registry:
        out.append(Flag("outside_registry", (
            f"{communities_.outside_registry} community memberships use ids the registry "
            f"({communities_.registry_size} communities) does not hold")))
    dangling = links_.dangling_human + links_.dangling_inferred
    if dangling:
        out.append(Flag("dangling", (
            f"{dangling} links point at no pattern of the library ({links_.dangling_inferred} "
            f"inferred, {links_.dangling_human} human)")))
    if links_.isolated:
        out.append(Flag("isolated", (
            f"{links_.isolated} of {links_.patterns} patterns have no link in or out within "
            f"the library; {links_.orphans} are linked to by no pattern; {links_.no_links} "
            "hold no link at all")))
    if inverse.inconsistent:
        out.append(Flag("inverse_pairs", (
            f"{inverse.inconsistent} of {inverse.checked} pairs linked both ways contradict "
            "each other (specializes_to/generalizes_from, enables/requires)")))
    if conflicts_.same_direction or conflicts_.reverse:
        out.append(Flag("human_conflicts", (
            f"{conflicts_.same_direction + conflicts_.reverse} inferred links contradict a "
            f"human relationship ({conflicts_.same_direction} same direction, "
            f"{conflicts_.reverse} reverse)")))
    return out


def assess(graph: LibraryGraph, *, registry_ids: Iterable[str] | None = None,
           entities: EntitySummary | None = None) -> Health:
    """Every metric of the library's graph, and the flags they raise."""
    links_ = links(graph)
    skews = [skew(graph, "inferred"), skew(graph, "human")]
    inverse = inverse_pairs(graph)
    conflicts_ = conflicts(graph)
    communities_ = communities(graph, registry_ids)
    return Health(links=links_, skew=skews, inverse=inverse, conflicts=conflicts_,
                  communities=communities_, entities=entities,
                  flags=flags(links_, skews, inverse, conflicts_, communities_))
