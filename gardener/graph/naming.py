"""Deterministic names for detected communities: what most of their members share.

A community is named after something enough of its members say, never after what one of
them happens to carry: a name needs the support of ``NAME_SUPPORT`` of the members (and of
two of them, where there are two). The candidates are the existing community ids (a merged
group counts once per member using any of its spellings), the words of those ids (what a
fragmented vocabulary shares: "water" in "water-practice-0" and "water-stewardship-1") and
the members' domains. Names are settled across communities by support, the best supported
pair first (an id before its words before a domain on a tie), so an id names the community
where most of its users sit and no two communities share a name. A community left with no
supported name takes the words of its titles that most set it apart from the library (used
by many members, and far more often than in the library's titles). Each draft keeps its
``basis`` (what named it, and how many members say so), which ``communities build`` prints.

The model may rename the drafts later (``community_names``); this is the name it starts from
and the one ``--no-llm`` keeps.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import networkx as nx

from gardener.folding import FILLER, STOPWORDS, kebab, singular
from gardener.library.registry import normalise_id
from gardener.model import MAX_LABEL, Pattern

if TYPE_CHECKING:
    from gardener.graph.communities import Group

NAME_SUPPORT = 0.1
"""Share of a community's members that must carry an id (or domain) for it to name them."""
MIN_SUPPORTERS = 2
"""...and never fewer members than this (one, in a community of one)."""
TITLE_WORDS = 2
"""Words a name made from the titles takes."""
SHOWN_LABELS = 8
KINDS = ("id", "id words", "domain", "title words")
"""Kinds of name, preferred in this order when their support is equal."""


@dataclass(frozen=True)
class Draft:
    """A detected community before it has its final name: what naming looks at."""

    id: str
    label: str
    description: str
    members: tuple[str, ...]
    """Slugs, most central first."""
    titles: tuple[str, ...]
    labels: tuple[str, ...]
    """Existing labels among its members, most used first."""
    former: tuple[str, ...]
    """Existing ids whose patterns mostly landed here."""
    basis: str = ""
    """What the deterministic name came from, with its support ("id 'x': 412 of 586")."""


@dataclass(frozen=True)
class Candidate:
    """A possible name and how many members support it."""

    id: str
    label: str
    support: int
    kind: str
    """One of ``KINDS``."""
    via: str = ""
    """The word an ``id words`` name stands for."""
    bare: bool = False
    """The word itself, for when its most used id is taken or lacks support."""

    def basis(self, size: int) -> str:
        what = (f"id word '{self.via}'" + ("" if self.bare else f" (as '{self.id}')")
                if self.via else f"{self.kind} '{self.id}'")
        return f"{what}: {self.support} of {size} members"


def needed(size: int) -> int:
    """Members that must support a name in a community of ``size``."""
    return min(size, max(MIN_SUPPORTERS, math.ceil(NAME_SUPPORT * size)))


def humanised(label: str) -> str:
    """A label that is only an id ("governance-and-trust") as words ("Governance and Trust")."""
    if label != kebab(label):
        return label
    return " ".join(w if w in FILLER else w.capitalize() for w in label.split("-"))


def _title_words(title: str) -> dict[str, str]:
    """A title's words, plurals folded ("stories" and "story" are one), each with the form
    it was written in."""
    return {singular(w): w for w in re.findall(r"[a-z]+", title.lower())
            if len(w) > 3 and w not in STOPWORDS}


@dataclass(frozen=True)
class TitleWords:
    """How many of the library's titles use each word: what makes a community's word its own."""

    titles: int
    uses: Mapping[str, int]

    @classmethod
    def of(cls, titles: Iterable[str]) -> TitleWords:
        seen = [_title_words(t) for t in titles]
        return cls(len(seen), Counter(w for words in seen for w in words))

    def score(self, word: str, count: int, size: int) -> float:
        """Members using the word, times the log of how much more often they use it than the
        library does: "soil" in a third of a community's titles against 2% of the library's
        scores high; "building", in titles everywhere, does not."""
        library = self.uses.get(word, 0) / max(self.titles, 1)
        return count * math.log((count / size) / library) if library > 0 else 0.0


def _centrality(g: nx.Graph[str], members: Sequence[str]) -> list[str]:
    inside = set(members)
    degree = {n: sum(float(a.get("weight", 1.0)) for o, a in g[n].items() if o in inside)
              for n in members}
    return sorted(members, key=lambda n: (-degree[n], n))


def _ranked(counts: Counter[str]) -> list[str]:
    return sorted(counts, key=lambda v: (-counts[v], len(v), v))


def candidates(members: Sequence[str], groups_of: Mapping[str, Sequence[Group]],
               patterns: Mapping[str, Pattern]) -> list[Candidate]:
    """Ids and domains that enough members carry, the best supported first."""
    need = needed(len(members))
    votes: Counter[str] = Counter(grp.key for s in members for grp in groups_of.get(s, ()))
    by_key = {grp.key: grp for s in members for grp in groups_of.get(s, ())}
    found: list[Candidate] = []
    for key, n in votes.items():
        grp = by_key[key]
        cid = kebab(grp.ids[0])
        if n >= need and cid:
            found.append(Candidate(cid, humanised(grp.labels[0] if grp.labels else grp.ids[0]),
                                   n, "id"))
    found += _id_words(members, patterns, need)
    domains = Counter(kebab(patterns[s].domain or "") for s in members)
    domains.pop("", None)
    found += [Candidate(d, humanised(d), n, "domain") for d, n in domains.items() if n >= need]
    return sorted(found, key=lambda c: (-c.support, KINDS.index(c.kind), c.bare, c.id))


def _meaningful(word: str) -> bool:
    return len(word) > 2 and not word.isdigit() and word not in FILLER and word not in STOPWORDS


def _id_words(members: Sequence[str], patterns: Mapping[str, Pattern],
              need: int) -> list[Candidate]:
    """Words of the members' community ids, each counted once per member that uses it in any
    id: what a fragmented vocabulary ("water-practice-0", "water-stewardship-1") shares.
    The name is the word's most used id when that id has the support itself, else (or when
    that id is taken) the word."""
    words: Counter[str] = Counter()
    uses: dict[str, Counter[str]] = {}
    for s in members:
        garden = patterns[s].garden
        ids = {kebab(c.id) for c in garden.communities} - {""} if garden is not None else set()
        mine: set[str] = set()
        for cid in ids:
            for w in normalise_id(cid).split("-"):
                if _meaningful(w):
                    mine.add(w)
                    uses.setdefault(w, Counter())[cid] += 1
        words.update(mine)
    found: list[Candidate] = []
    for word, n in words.items():
        if n < need:
            continue
        best = min(uses[word], key=lambda c: (-uses[word][c], len(c), c))
        if uses[word][best] >= need:
            found.append(Candidate(best, humanised(best), n, "id words", via=word))
        found.append(Candidate(word, humanised(word), n, "id words", via=word, bare=True))
    return found


def from_titles(titles: Sequence[str], taken: Iterable[str],
                library: TitleWords | None = None) -> Candidate:
    """The words that most set the members' titles apart from the library's, among those
    enough members use when there are such (each title counts a word once; without
    ``library``, the most used words)."""
    counts: Counter[str] = Counter()
    written: dict[str, Counter[str]] = {}
    for t in titles:
        for w, form in _title_words(t).items():
            counts[w] += 1
            written.setdefault(w, Counter())[form] += 1
    size = max(len(titles), 1)
    known = library or TitleWords.of(titles)
    score = {w: known.score(w, n, size) for w, n in counts.items()}
    skip = set(taken)
    ranked = [w for w in sorted(counts, key=lambda w: (-score[w], -counts[w], w))
              if w not in skip and (score[w] > 0 or library is None)]
    supported = [w for w in ranked if counts[w] >= needed(size)]
    ranked = supported or ranked
    forms = [min(written[w], key=lambda f: (-written[w][f], f)) for w in ranked[:TITLE_WORDS]]
    chosen = [f for f in forms if f not in skip] or ["community"]
    return Candidate("-".join(chosen), " ".join(w.capitalize() for w in chosen),
                     counts.get(singular(chosen[0]), 0), "title words")


def _labels(members: Sequence[str], patterns: Mapping[str, Pattern]) -> tuple[str, ...]:
    """The community labels the members carry, the most used first (a member counts once)."""
    counts: Counter[str] = Counter()
    for s in members:
        garden = patterns[s].garden
        if garden is not None:
            counts.update({c.label or c.id for c in garden.communities})
    return tuple(_ranked(counts))


def name_drafts(detected: Sequence[Sequence[str]], groups: Sequence[Group],
                patterns: Mapping[str, Pattern], g: nx.Graph[str]) -> list[Draft]:
    """Names by support, across the communities: the best supported (community, name) pair
    is settled first, so an id goes to the community where most members carry it; the
    communities no supported name is left for take their titles' words."""
    groups_of: dict[str, list[Group]] = {}
    for grp in groups:
        for s in grp.members:
            groups_of.setdefault(s, []).append(grp)
    where = {s: i for i, members in enumerate(detected) for s in members}
    home: dict[str, int] = {}
    for grp in groups:
        seats = Counter(where[s] for s in grp.members if s in where)
        if seats:
            home[grp.key] = min(seats, key=lambda c: (-seats[c], c))
    pairs = sorted(((c, i) for i, members in enumerate(detected)
                    for c in candidates(members, groups_of, patterns)),
                   key=lambda t: (-t[0].support, KINDS.index(t[0].kind), t[0].bare, t[1],
                                  t[0].id))
    chosen: dict[int, Candidate] = {}
    taken: set[str] = set()
    for c, i in pairs:
        if i not in chosen and c.id not in taken:
            chosen[i] = c
            taken.add(c.id)
    library = TitleWords.of(p.title for p in patterns.values())
    drafts: list[Draft] = []
    for i, members in enumerate(detected):
        ordered = _centrality(g, members)
        titles = tuple(patterns[s].title for s in ordered)
        name = chosen.get(i)
        if name is None:
            name = from_titles(titles, taken, library)
            cid, n = name.id, 2
            while cid in taken:
                cid, n = f"{name.id}-{n}", n + 1
            name = Candidate(cid, name.label, name.support, name.kind)
            taken.add(cid)
        former = tuple(sorted({raw for grp in groups if home.get(grp.key) == i
                               for raw in grp.ids}))
        shown = ", ".join(titles[:3])
        description = (f"{len(members)} pattern{'s' if len(members) != 1 else ''}, such as "
                       f"{shown}.")
        drafts.append(Draft(id=name.id, label=name.label[:MAX_LABEL], description=description,
                            members=tuple(ordered), titles=titles,
                            labels=_labels(members, patterns)[:SHOWN_LABELS], former=former,
                            basis=name.basis(len(members))))
    return drafts
