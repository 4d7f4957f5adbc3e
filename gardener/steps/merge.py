"""Merge a new proposal into the existing garden without churning what did not change.

A model never answers twice in exactly the same words or numbers. If every re-run rewrote
the garden from the latest answer, each pass would produce a diff full of noise: a link's
confidence going from 0.88 to 0.86, a reason rephrased. So an item whose meaning did not
change keeps the existing item, and with it the exact text it has in the file.

Links (keyed by target):

- A proposed link that agrees with an existing link to the same target (same type, and a
  confidence that moved by less than ``TOLERANCE``) keeps the existing link as it is,
  reason included. Otherwise the proposed link replaces every existing link to that target.
- A target the proposal names for the first time is added.
- An existing link the proposal does not mention is kept: whether it still deserves its
  place is pruning's decision, which gives a reason for every removal.

Entities and communities (keyed by id) are the proposal's: the existing ones it does not
name are gone. A proposed item equal in meaning to an existing one (same id, type or source,
label up to case and spacing, relevance or confidence within ``TOLERANCE``) keeps the
existing item. Legacy plain-string items are never kept this way: the proposal upgrades them
to the mapping form.

A proposal that repeats a key keeps its strongest item (ties: the first), as pruning's
duplicate rule would; the merge then stays a function of the set of keys, which is what
makes it idempotent.

Every list comes out strongest first, then by key, so that a second merge of the same
proposal is a no-op: ``merge(merge(e, p), p) == merge(e, p)``, texts included.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Literal, TypedDict, TypeVar

from gardener.model import Community, Entity, Garden, Link

TOLERANCE = 0.1
"""A confidence or relevance that moved by less than this has not changed in meaning."""

_EPSILON = 1e-9
"""Float noise: 0.9 - 0.8 is 0.09999999999999998, a move of 0.1 all the same."""

VitalityTarget = Literal["garden", "assessment"]
TextChange = Literal["added", "updated", "kept", "removed", "absent"]
_T = TypeVar("_T", Link, Entity, Community)
_K = TypeVar("_K", Entity, Community)


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


def _label(value: str | None) -> str | None:
    return " ".join(value.split()).casefold() if value is not None else None


def link_agrees(old: Link, new: Link) -> bool:
    """Same target and type, confidence within tolerance: the old link says the same thing."""
    return (old.target == new.target and old.type == new.type
            and close(old.confidence, new.confidence))


def entity_agrees(old: Entity, new: Entity) -> bool:
    return (not old.legacy and old.id == new.id and old.type == new.type
            and _label(old.label) == _label(new.label) and close(old.relevance, new.relevance))


def community_agrees(old: Community, new: Community) -> bool:
    return (not old.legacy and old.id == new.id and old.source == new.source
            and _label(old.label) == _label(new.label)
            and close(old.confidence, new.confidence))


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


def _settle(proposed: _T, existing: Sequence[_T], agrees: Callable[[_T, _T], bool]) -> _T:
    """The existing item that already says what ``proposed`` says, else ``proposed``.

    Among several agreeing items, the closest in strength wins (ties: the first), so the
    choice does not depend on anything but the items themselves.
    """
    candidates = [old for old in existing if agrees(old, proposed)]
    if not candidates:
        return proposed
    return min(candidates, key=lambda old: abs(_strength(old.strength) - proposed.strength))


def _ordered(items: Iterable[_T], key: Callable[[_T], str]) -> tuple[_T, ...]:
    """Strongest first, then by key; the sort is stable, so equal items keep their order."""
    return tuple(sorted(items, key=lambda item: (-_strength(item.strength), key(item))))


def _by_key(items: Iterable[_T], key: Callable[[_T], str]) -> dict[str, list[_T]]:
    out: dict[str, list[_T]] = {}
    for item in items:
        out.setdefault(key(item), []).append(item)
    return out


def merge_links(existing: Sequence[Link], proposed: Iterable[Link]) -> tuple[Link, ...]:
    """Existing links plus the proposal, one link per proposed target (see the module doc)."""
    new = _strongest_per_key(proposed, _link_key)
    old = _by_key(existing, _link_key)
    settled = [_settle(link, old.get(target, ()), link_agrees) for target, link in new.items()]
    unproposed = [link for link in existing if link.target not in new]
    return _ordered([*settled, *unproposed], _link_key)


def replace_items(existing: Sequence[_K], proposed: Iterable[_K],
                  agrees: Callable[[_K, _K], bool]) -> tuple[_K, ...]:
    """The proposal's items, each one kept as the existing item where it agrees with it."""
    new = _strongest_per_key(proposed, _id_key)
    old = _by_key(existing, _id_key)
    return _ordered((_settle(item, old.get(k, ()), agrees) for k, item in new.items()), _id_key)


def merge(existing: Garden | None, proposed: Garden, *,
          vitality_target: VitalityTarget = "garden") -> Garden:
    """The garden after a proposal, before pruning.

    ``proposed`` holds the model's new items (no ``text``). ``last_pruned`` and unknown keys
    (``extra``) stay as they were: only pruning sets the one, and the other is not ours.
    With ``vitality_target="assessment"`` the vitality reasoning is written elsewhere (the
    pattern's ``ontology.commons_assessment``), so the garden's own stays as it was.
    """
    base = existing if existing is not None else Garden()
    reasoning = base.vitality_reasoning
    if vitality_target == "garden" and proposed.vitality_reasoning is not None:
        reasoning = proposed.vitality_reasoning
    return Garden(
        last_pruned=base.last_pruned,
        entities=replace_items(base.entities, proposed.entities, entity_agrees),
        communities=replace_items(base.communities, proposed.communities, community_agrees),
        inferred_links=merge_links(base.inferred_links, proposed.inferred_links),
        vitality_reasoning=reasoning,
        extra=base.extra,
    )


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
    """What a merge did, by key, for reports; pure and JSON-ready."""
    base = existing if existing is not None else Garden()
    return Changes(
        links=_describe_items(base.inferred_links, merged.inferred_links, _link_key),
        entities=_describe_items(base.entities, merged.entities, _id_key),
        communities=_describe_items(base.communities, merged.communities, _id_key),
        vitality_reasoning=_describe_text(base.vitality_reasoning, merged.vitality_reasoning),
    )
