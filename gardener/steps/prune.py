"""Prune one garden: take out what should not be there, saying why for every item.

Pruning only removes items or renames a link type whose intent is clear; it never invents
data, and it never reorders what survives, so the rewritten garden differs from the old one
only where something was taken out. Items that survive untouched keep their exact ``text``.

Link rules, applied in this order (the first that matches removes the link, so each removal
carries exactly one reason):

1. ``self``: the link points at the pattern itself.
2. ``dangling``: the target is not a slug of the library.
3. type: an off-vocabulary type is renamed when its intent is clear (``TYPE_RENAMES``, the
   library's own ``PruneSettings.renames``, and case, whitespace and hyphen variants of
   vocabulary words), else ``bad_type``. A link without a type (older tools wrote them) gets
   ``PruneSettings.untyped``, reported as a rename; an older link without any score (a bare
   slug) is kept at ``min_confidence``. Such links are migrated, never dropped for their shape.
4. human relationships: a target the humans already relate to is redundant. It is
   ``human_confirmed`` when the types agree and ``human_conflict`` when they do not (the human
   relationship wins, and the clash is reported in ``conflicts``). A human relationship whose
   type is outside the link vocabulary (``related``, ``manifests_as``, ...) says "these are
   related" without saying how, so it agrees with any link type: confirmed, never a conflict.
   Unresolved human references (``resolved=False``) point at nothing and are ignored.
5. ``duplicate``: the same target twice; the strongest stays (ties: the first).
6. ``weak``: confidence below ``min_confidence``; a link without a usable confidence
   (missing or not a number) is weak too, since nothing vouches for it.
7. ``cap``: more than ``max_links`` links; the strongest stay (ties: the earlier).

Entities and communities: ``stale`` (given the pattern's text), then ``duplicate`` ids (the
strongest stays), then ``cap``. Legacy plain-string items have no strength: they are kept
(pruning never invents a relevance for them), but they rank as strength 0 for duplicates and
caps.

``stale``: an item with a label of which no word, nor any word of its id, occurs in the
pattern's title, summary, body, domain or keywords (case, punctuation and plurals folded by
``gardener.propose.grounding``). Only items with a label: a legacy plain string or an item
without a label is never stale. Why this loose a rule, and not the stricter one new entities
must pass (the label as a phrase, or every word of the id): the stricter rule would take
367 of the 1,132 labelled entities of ``../shared/corpus`` (Commons OS, Commons Engineering)
and 7 of the seed's 8, curated abstractions such as "Shared Responsibility" that the text
says in other words; a garden does not record the text it was written against, so only an
item the text has no word of left is known to be about something that is no longer there
(78 of 1,686 labelled entities and communities there, "Ronald Heifetz" in a pattern that
never names him among them). And only when the text may have lost it: the items already there
are judged only when the text changed since the pattern's last gardening (``settled`` holds
their ids otherwise; ``gardener prune``, which knows no edit, judges none); a proposed item
is always judged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Literal, TypeVar

from gardener.model import (
    LINK_TYPES,
    MAX_COMMUNITIES,
    MAX_ENTITIES,
    MAX_LINKS,
    MIN_CONFIDENCE,
    TYPE_RENAMES,
    Community,
    Entity,
    Garden,
    HumanLink,
    Link,
    Reason,
    Removal,
    Rename,
)
from gardener.propose.grounding import PatternText

Kind = Literal["link", "entity", "community"]
_T = TypeVar("_T", Link, Entity, Community)
_E = TypeVar("_E", Entity, Community)
_PLURAL: dict[Kind, str] = {"link": "links", "entity": "entities", "community": "communities"}


@dataclass(frozen=True)
class PruneSettings:
    min_confidence: float = MIN_CONFIDENCE
    max_links: int = MAX_LINKS
    max_entities: int = MAX_ENTITIES
    max_communities: int = MAX_COMMUNITIES
    renames: tuple[tuple[str, str], ...] = ()
    """A library's own off-vocabulary link types and what they mean, as (old, new) pairs,
    besides ``TYPE_RENAMES`` (``relationships.renames`` of its ``gardener.toml``)."""
    untyped: str | None = "complementary"
    """The type a link an older tool wrote without one gets (``relationships.untyped``):
    ``complementary`` says "these go together" and no more, as such links' reasons do
    ("Shared entities: ..."). None removes them as ``bad_type`` instead."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be within 0..1, not {self.min_confidence}")
        for name in ("max_links", "max_entities", "max_communities"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, not {getattr(self, name)}")
        if self.untyped is not None and self.untyped not in LINK_TYPES:
            raise ValueError(f"untyped {self.untyped!r} is not a link type "
                             f"({', '.join(LINK_TYPES)})")
        for old, new in self.renames:
            if new not in LINK_TYPES:
                raise ValueError(f"rename {old!r} -> {new!r}: {new!r} is not a link type "
                                 f"({', '.join(LINK_TYPES)})")


@dataclass(frozen=True)
class PruneResult:
    garden: Garden
    removals: tuple[Removal, ...]
    renames: tuple[Rename, ...]
    conflicts: tuple[str, ...]
    """Human-readable, e.g. ``inferred enables -> x conflicts with human requires -> x``."""
    changed: bool


def type_key(raw: str) -> str:
    """A link type as renames are looked up: lower case, words joined by underscores."""
    return "_".join(raw.strip().lower().replace("-", " ").replace("_", " ").split())


def canonical_type(raw: str | None,
                   renames: tuple[tuple[str, str], ...] = ()) -> str | None:
    """The vocabulary type a link type means, or None when its intent is not clear.

    Tolerates case, surrounding whitespace and hyphens or spaces for underscores
    (``"Specializes-To"`` means ``specializes_to``), then the known legacy names and the
    library's own ``renames`` (which win over the built-in ones).
    """
    if raw is None:
        return None
    key = type_key(raw)
    if key in LINK_TYPES:
        return key
    own = {type_key(old): new for old, new in renames}
    return own.get(key) or TYPE_RENAMES.get(key)


def _strength(value: float | None) -> float:
    """A strength that sorts: missing or NaN counts as 0 (it vouches for nothing)."""
    return value if value is not None and not math.isnan(value) else 0.0


def _num(value: float | None) -> str:
    return "none" if value is None else f"{value:g}"


@dataclass
class _Pass:
    """The removals of one pruning, collected in rule order."""

    removals: list[Removal] = field(default_factory=list)
    migrated: int = 0
    """Links an older tool wrote, kept in the current shape (``Link.migrated``)."""

    def remove(self, kind: Kind, item: str, reason: Reason, detail: str) -> None:
        self.removals.append(Removal(kind=kind, item=item, reason=reason, detail=detail))


def _dedupe(items: list[_T], key: Callable[[_T], str], strength: Callable[[_T], float],
            kind: Kind, out: _Pass) -> list[_T]:
    """Keep the strongest item per key (ties: the first), in the original order."""
    best: dict[str, int] = {}
    for i, item in enumerate(items):
        k = key(item)
        if k not in best or strength(item) > strength(items[best[k]]):
            best[k] = i
    kept: list[_T] = []
    for i, item in enumerate(items):
        winner = best[key(item)]
        if i == winner:
            kept.append(item)
        else:
            out.remove(kind, key(item), Reason.DUPLICATE,
                       f"kept the {_num(strength(items[winner]))} {kind}")
    return kept


def _cap(items: list[_T], cap: int, key: Callable[[_T], str],
         strength: Callable[[_T], float], kind: Kind, out: _Pass) -> list[_T]:
    """Keep the ``cap`` strongest items (ties: the earlier), in the original order."""
    if len(items) <= cap:
        return items
    ranked = sorted(range(len(items)), key=lambda i: (-strength(items[i]), i))
    keep = set(ranked[:cap])
    weakest_kept = strength(items[ranked[cap - 1]]) if cap else None
    kept: list[_T] = []
    for i, item in enumerate(items):
        if i in keep:
            kept.append(item)
            continue
        floor = f", the weakest kept has {_num(weakest_kept)}" if cap else ""
        out.remove(kind, key(item), Reason.CAP,
                   f"{len(items)} {_PLURAL[kind]} exceed the cap of {cap}; this one has "
                   f"{_num(strength(item))}{floor}")
    return kept


def _human_types(human: Sequence[HumanLink]) -> dict[str, list[str]]:
    """Resolved human relationship types per target slug, in order, without repeats."""
    types: dict[str, list[str]] = {}
    for rel in human:
        if rel.resolved:
            seen = types.setdefault(rel.target, [])
            if rel.type not in seen:
                seen.append(rel.type)
    return types


def _prune_links(links: Sequence[Link], slug: str, library: Collection[str],
                 human: Sequence[HumanLink], settings: PruneSettings, out: _Pass,
                 ) -> tuple[list[Link], list[Rename], list[str]]:
    survivors: list[Link] = []
    pending: dict[int, Rename] = {}  # by id() of the renamed copy, kept alive in survivors
    untyped: set[int] = set()  # ids of links typed by default: they said no type of their own
    for link in links:
        if link.migrated is not None and link.confidence is None:
            # An older tool's link with no score (a bare slug): kept at the threshold, neither
            # vouched for nor against; the model's next proposal for it moves it.
            link = link.model_copy(update={"confidence": settings.min_confidence})
        if link.target == slug:
            out.remove("link", link.target, Reason.SELF, "links the pattern to itself")
        elif link.target not in library:
            out.remove("link", link.target, Reason.DANGLING,
                       f"no pattern '{link.target}' in the library")
        elif (new_type := (settings.untyped if link.type is None
                           else canonical_type(link.type, settings.renames))) is None:
            out.remove("link", link.target, Reason.BAD_TYPE,
                       "no type" if link.type is None
                       else f"type '{link.type}' is not in the vocabulary")
        elif new_type != link.type:
            renamed = link.model_copy(update={"type": new_type, "text": None})
            pending[id(renamed)] = Rename(target=link.target, old_type=link.type or "",
                                          new_type=new_type)
            if link.type is None:
                untyped.add(id(renamed))
            survivors.append(renamed)
        else:
            if link.migrated is not None:
                out.migrated += 1
            survivors.append(link)

    by_target = _human_types(human)
    conflicts: list[str] = []
    unconfirmed: list[Link] = []
    for link in survivors:
        known = by_target.get(link.target)
        if known is None:
            unconfirmed.append(link)
            continue
        agreeing = [t for t in known
                    if t == link.type or t not in LINK_TYPES or id(link) in untyped]
        if agreeing:
            out.remove("link", link.target, Reason.HUMAN_CONFIRMED,
                       f"already a human '{agreeing[0]}' relationship")
        else:
            shown = ", ".join(known)
            out.remove("link", link.target, Reason.HUMAN_CONFLICT,
                       f"inferred '{link.type}' conflicts with human '{shown}'; "
                       "the human relationship wins")
            conflicts.append(f"inferred {link.type} -> {link.target} conflicts with "
                             f"human {shown} -> {link.target}")

    def target(link: Link) -> str:
        return link.target

    def strength(link: Link) -> float:
        return _strength(link.confidence)

    distinct = _dedupe(unconfirmed, target, strength, "link", out)
    strong: list[Link] = []
    for link in distinct:
        c = link.confidence
        if c is None:
            out.remove("link", link.target, Reason.WEAK, "no confidence")
        elif math.isnan(c):
            out.remove("link", link.target, Reason.WEAK, "confidence is not a number")
        elif c < settings.min_confidence:
            out.remove("link", link.target, Reason.WEAK,
                       f"confidence {_num(c)} < {_num(settings.min_confidence)}")
        else:
            strong.append(link)
    kept = _cap(strong, settings.max_links, target, strength, "link", out)
    renames = [pending[id(link)] for link in kept if id(link) in pending]
    return kept, renames, conflicts


def stale_detail(item: Entity | Community, text: PatternText) -> str | None:
    """Why ``item`` is stale in the pattern's ``text`` (see the module doc), or None."""
    if item.legacy or not item.label:
        return None
    if text.share(item.label) > 0 or text.share(item.id) > 0:
        return None
    return (f"no word of its label '{item.label}' or id '{item.id}' is left in the "
            "pattern's title, summary or body")


def _fresh(items: Sequence[_E], kind: Kind, text: PatternText | None, out: _Pass,
           settled: Collection[str] = ()) -> list[_E]:
    """The items that are not stale in ``text`` (all of them without a text); ``settled``
    ids are not judged (items that were there before a pass over an unedited text)."""
    kept: list[_E] = []
    for item in items:
        detail = (stale_detail(item, text)
                  if text is not None and item.id not in settled else None)
        if detail is None:
            kept.append(item)
        else:
            out.remove(kind, item.id, Reason.STALE, detail)
    return kept


def _entity_id(item: Entity) -> str:
    return item.id


def _entity_strength(item: Entity) -> float:
    return _strength(item.relevance)


def _community_id(item: Community) -> str:
    return item.id


def _community_strength(item: Community) -> float:
    return _strength(item.confidence)


def prune(garden: Garden, *, slug: str, library: Collection[str], human: Sequence[HumanLink],
          today: date, settings: PruneSettings = PruneSettings(),
          text: PatternText | None = None, settled: Collection[str] = ()) -> PruneResult:
    """Prune ``garden`` of the pattern ``slug``; a garden with nothing to prune comes back as is.

    ``library`` holds every slug of the library (pass a set: it is probed once per link);
    ``human`` holds the pattern's human relationships with targets resolved to slugs;
    ``text`` the pattern's own words, which entities and communities are checked against
    (``stale``; without it, nothing is), except the entity and community ids in ``settled``:
    a text nobody edited since the last pass cannot have lost a curated item's words.
    ``last_pruned`` becomes ``today`` only when something was removed or renamed, so pruning
    a pruned garden changes nothing, not even the date.
    Renames are reported only for links that survive: a link renamed and then removed is
    reported once, as a removal.
    """
    out = _Pass()
    links, renames, conflicts = _prune_links(garden.inferred_links, slug, library, human,
                                             settings, out)
    entities = _cap(_dedupe(_fresh(garden.entities, "entity", text, out, settled), _entity_id,
                            _entity_strength, "entity", out),
                    settings.max_entities, _entity_id, _entity_strength, "entity", out)
    communities = _cap(
        _dedupe(_fresh(garden.communities, "community", text, out, settled), _community_id,
                _community_strength, "community", out),
        settings.max_communities, _community_id, _community_strength, "community", out)
    if not out.removals and not renames and not out.migrated:
        return PruneResult(garden=garden, removals=(), renames=(), conflicts=(), changed=False)
    pruned = garden.model_copy(update={
        "last_pruned": today,
        "inferred_links": tuple(links),
        "entities": tuple(entities),
        "communities": tuple(communities),
    })
    return PruneResult(garden=pruned, removals=tuple(out.removals), renames=tuple(renames),
                       conflicts=tuple(conflicts), changed=True)
