"""Merge a new proposal into the existing garden: add what is new, never degrade what is there.

A model never answers twice in the same words or numbers, and a small model answers worse
than whoever wrote the garden (the bundled model once replaced a seed's eight curated entities
by ``kebab-case`` and ``distribution-style-system-123456789012345``). So one answer is not a
reason to replace anything: an existing item changes only where the answer brings something
concrete, and it leaves only by a prune rule, with a reason code (``stale``, ``duplicate``,
``cap``, ...), or as ``retyped`` below. A weak model over a good garden changes little; a
strong model over an empty garden fills it, up to pruning's caps.

Links (keyed by target):

- An existing link the proposal does not mention stays as it is, text included.
- A proposed link of the same type (legacy type names read as their vocabulary type) whose
  confidence moved by less than ``TOLERANCE`` keeps the existing link as it is: reason and
  bytes. A bigger move brings the confidence halfway to the new value (:func:`toward`, the
  mean, rounded to 2 decimals): one answer is one noisy sample, so it may not swing a value
  by more than half, while answers that keep agreeing converge on it. The reason stays.
- A proposed link of another type replaces the existing link's type only when the proposal
  quotes ``evidence`` for it (a quote of the pattern, already checked against its text by
  the response model's validators): the proposed link then takes the place of the existing
  one (type, confidence and reason, since the old ones vouched for the old type), reported as
  a :class:`~gardener.model.Removal` with reason ``retyped``. Without evidence the existing
  link stays as it is.
- A target the proposal names for the first time is added.

Entities and communities (keyed by id): an existing item the proposal does not name stays as
it is. A re-proposed one keeps its id, label, type or source, strength and bytes; the proposal
only fills the fields it lacks (``None``), which is concrete and takes nothing away. A legacy
plain-string item is only an id, so the proposal's mapping form replaces it. New ids are added.

Existing items keep their places; new ones follow, strongest first, then by key. Pruning's
``cap`` then keeps the strongest of old and new alike, and its ties keep the earlier, so a
tie keeps the existing item. A proposal that repeats a key counts its strongest item (ties:
the first), as pruning's duplicate rule would. An existing garden with a repeated key is
left to pruning; the proposal speaks to the first of them (for links: the first of the same
type closest in confidence, else the first).

Idempotence: ``merge(merge(e, p), p)`` equals ``merge(e, p)``, texts included, in entities,
communities, link targets, types, reasons and order. Only a link confidence may move again:
each merge halves its distance to the proposed value until it is within ``TOLERANCE``, where
it stays, so at most four merges of one proposal reach a fixed point.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypedDict, TypeVar

from gardener.model import Community, Entity, Garden, Link, Reason, Removal
from gardener.steps.prune import canonical_type

TOLERANCE = 0.1
"""A confidence or relevance that moved by less than this has not changed in meaning."""

_EPSILON = 1e-9
"""Float noise: 0.9 - 0.8 is 0.09999999999999998, a move of 0.1 all the same."""

VitalityTarget = Literal["garden", "assessment"]
TextChange = Literal["added", "updated", "kept", "removed", "absent"]
_T = TypeVar("_T", Link, Entity, Community)
_K = TypeVar("_K", Entity, Community)

_FILLABLE: dict[type, tuple[str, ...]] = {
    Entity: ("type", "label", "relevance"),
    Community: ("label", "source", "confidence"),
}
"""The fields a proposal may fill in an existing item that lacks them."""


def _usable(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


def _strength(value: float | None) -> float:
    """A strength that sorts: missing or NaN counts as 0, as in pruning."""
    return value if value is not None and not math.isnan(value) else 0.0


def close(old: float | None, new: float | None, tolerance: float = TOLERANCE) -> bool:
    """True when a score moved by less than ``tolerance`` (both missing counts as unmoved)."""
    if old is None or new is None:
        return old is None and new is None
    if math.isnan(old) or math.isnan(new):
        return False
    return abs(old - new) < tolerance - _EPSILON


def toward(old: float | None, new: float) -> float:
    """Halfway from ``old`` to ``new``, rounded to 2 decimals; ``new`` when ``old`` is
    missing or not a number (nothing vouched for it)."""
    if not _usable(old):
        return round(new, 2)
    assert old is not None
    return round((old + new) / 2, 2)


def same_type(old: Link, new: Link) -> bool:
    """Both links claim the same relationship: equal types once legacy names are read."""
    return (canonical_type(old.type) or old.type) == (canonical_type(new.type) or new.type)


def _link_key(link: Link) -> str:
    return link.target


def _id_key(item: Entity | Community) -> str:
    return item.id


def _strongest_per_key(items: Iterable[_T], key: Callable[[_T], str]) -> dict[str, _T]:
    """One item per key: the strongest, ties to the first (insertion order kept)."""
    best: dict[str, _T] = {}
    for item in items:
        k = key(item)
        if k not in best or _strength(item.strength) > _strength(best[k].strength):
            best[k] = item
    return best


def _ordered(items: Iterable[_T], key: Callable[[_T], str]) -> list[_T]:
    """Strongest first, then by key; the sort is stable, so equal items keep their order."""
    return sorted(items, key=lambda item: (-_strength(item.strength), key(item)))


def _addressed(existing: Sequence[Link], new: Mapping[str, Link]) -> dict[str, int]:
    """Per proposed target, the index of the existing link the proposal speaks to: the
    first of the same type closest in confidence, else the first link to that target."""
    picked: dict[str, int] = {}
    for i, link in enumerate(existing):
        proposal = new.get(link.target)
        if proposal is None:
            continue
        j = picked.get(link.target)
        if j is None:
            picked[link.target] = i
            continue
        best = existing[j]
        if same_type(link, proposal) and (
                not same_type(best, proposal)
                or abs(_strength(link.confidence) - proposal.strength)
                < abs(_strength(best.confidence) - proposal.strength)):
            picked[link.target] = i
    return picked


def _settle_link(old: Link, new: Link, evidence: str | None) -> tuple[Link, Removal | None]:
    """What the existing link ``old`` becomes when ``new`` is proposed for its target."""
    if same_type(old, new):
        if not _usable(new.confidence) or close(old.confidence, new.confidence):
            return old, None
        assert new.confidence is not None
        return old.model_copy(update={"confidence": toward(old.confidence, new.confidence),
                                      "reason": old.reason or new.reason, "text": None}), None
    if not (evidence and evidence.strip()):
        return old, None
    detail = f"was '{old.type}', now '{new.type}' with evidence: \"{evidence.strip()}\""
    return new, Removal(kind="link", item=old.target, reason=Reason.RETYPED, detail=detail)


def merge_links(existing: Sequence[Link], proposed: Iterable[Link],
                evidence: Mapping[str, str] | None = None,
                ) -> tuple[tuple[Link, ...], tuple[Removal, ...]]:
    """Existing links updated in place, then the new targets; and the ``retyped`` removals.

    ``evidence`` maps a proposed link's target to its quote of the pattern (see the module
    doc): only a link with one may change an existing link's type.
    """
    new = _strongest_per_key(proposed, _link_key)
    evidence = evidence or {}
    picked = _addressed(existing, new)
    out: list[Link] = []
    retyped: list[Removal] = []
    for i, link in enumerate(existing):
        if picked.get(link.target) != i:
            out.append(link)
            continue
        settled, removal = _settle_link(link, new[link.target], evidence.get(link.target))
        out.append(settled)
        if removal is not None:
            retyped.append(removal)
    known = {link.target for link in existing}
    out += _ordered((lk for t, lk in new.items() if t not in known), _link_key)
    return tuple(out), tuple(retyped)


def _fill(old: _K, new: _K) -> _K:
    """``old`` with the fields it lacks taken from ``new``; a legacy item becomes ``new``."""
    if old.legacy:
        return new
    update = {f: getattr(new, f) for f in _FILLABLE[type(old)]
              if getattr(old, f) is None and getattr(new, f) is not None}
    return old.model_copy(update={**update, "text": None}) if update else old


def merge_items(existing: Sequence[_K], proposed: Iterable[_K]) -> tuple[_K, ...]:
    """Existing items (the first of each id filled from its proposal), then the new ids."""
    new = _strongest_per_key(proposed, _id_key)
    done: set[str] = set()
    out: list[_K] = []
    for item in existing:
        if item.id in new and item.id not in done:
            done.add(item.id)
            out.append(_fill(item, new[item.id]))
        else:
            out.append(item)
    known = {item.id for item in existing}
    out += _ordered((item for k, item in new.items() if k not in known), _id_key)
    return tuple(out)


@dataclass(frozen=True)
class MergeResult:
    garden: Garden
    """The garden after the proposal, before pruning."""
    retyped: tuple[Removal, ...] = ()
    """Existing links whose type gave way to a proposed type with evidence."""


def merge_pass(existing: Garden | None, proposed: Garden, *,
               evidence: Mapping[str, str] | None = None,
               vitality_target: VitalityTarget = "garden") -> MergeResult:
    """The garden after a proposal, before pruning, and the links it retyped.

    ``proposed`` holds the model's new items (no ``text``); ``evidence`` the quote of each
    proposed link by target. ``last_pruned`` and unknown keys (``extra``) stay as they were:
    only pruning sets the one, and the other is not ours. With
    ``vitality_target="assessment"`` the vitality reasoning is written elsewhere (the
    pattern's ``ontology.commons_assessment``), so the garden's own stays as it was.
    """
    base = existing if existing is not None else Garden()
    reasoning = base.vitality_reasoning
    if vitality_target == "garden" and proposed.vitality_reasoning is not None:
        reasoning = proposed.vitality_reasoning
    links, retyped = merge_links(base.inferred_links, proposed.inferred_links, evidence)
    garden = Garden(
        last_pruned=base.last_pruned,
        entities=merge_items(base.entities, proposed.entities),
        communities=merge_items(base.communities, proposed.communities),
        inferred_links=links,
        vitality_reasoning=reasoning,
        extra=base.extra,
    )
    return MergeResult(garden, retyped)


def merge(existing: Garden | None, proposed: Garden, *,
          evidence: Mapping[str, str] | None = None,
          vitality_target: VitalityTarget = "garden") -> Garden:
    """The garden of :func:`merge_pass`, for callers that need no report of retypes."""
    return merge_pass(existing, proposed, evidence=evidence,
                      vitality_target=vitality_target).garden


class ItemChanges(TypedDict):
    """Keys (link targets, entity or community ids) by what the merge did to them."""

    added: list[str]
    """Keys the existing garden did not have."""
    updated: list[str]
    """Keys whose item the proposal replaced with different values."""
    kept: list[str]
    """Items the merge left exactly as they were, text included."""
    replaced: list[str]
    """Existing items gone from the merged garden, their key not listed under ``updated``."""


class Changes(TypedDict):
    links: ItemChanges
    entities: ItemChanges
    communities: ItemChanges
    vitality_reasoning: TextChange


def _same(a: _T, b: _T) -> bool:
    return a == b and a.text == b.text


def _describe_items(old: Sequence[_T], new: Sequence[_T],
                    key: Callable[[_T], str]) -> ItemChanges:
    out = ItemChanges(added=[], updated=[], kept=[], replaced=[])
    old_keys = {key(item) for item in old}
    unmatched = list(old)
    for item in new:
        match = next((i for i, o in enumerate(unmatched) if _same(o, item)), None)
        if match is not None:
            del unmatched[match]
            out["kept"].append(key(item))
        elif key(item) in old_keys:
            out["updated"].append(key(item))
        else:
            out["added"].append(key(item))
    updated = set(out["updated"])
    out["replaced"] = [key(item) for item in unmatched if key(item) not in updated]
    return out


def _describe_text(old: str | None, new: str | None) -> TextChange:
    if old == new:
        return "absent" if new is None else "kept"
    if old is None:
        return "added"
    return "removed" if new is None else "updated"


def describe(existing: Garden | None, merged: Garden) -> Changes:
    """What a pass did, by key, for reports; pure and JSON-ready. ``merged`` may be the
    merged or the pruned garden: untouched items are ``kept`` either way."""
    base = existing if existing is not None else Garden()
    return Changes(
        links=_describe_items(base.inferred_links, merged.inferred_links, _link_key),
        entities=_describe_items(base.entities, merged.entities, _id_key),
        communities=_describe_items(base.communities, merged.communities, _id_key),
        vitality_reasoning=_describe_text(base.vitality_reasoning, merged.vitality_reasoning),
    )


def unchanged(existing: Garden | None, final: Garden) -> dict[str, int]:
    """How many items per kind a pass left exactly as they were (text included): the
    "N unchanged" of the report and the pull-request body."""
    changes = describe(existing, final)
    return {"links": len(changes["links"]["kept"]),
            "entities": len(changes["entities"]["kept"]),
            "communities": len(changes["communities"]["kept"])}
