"""Read the garden a file already has into models, whatever shape an older tool left it in.

Real gardens hold plain-string entities, links without a type, quoted dates and the odd
non-mapping item. Reading never fails on them: each odd item becomes the closest model plus
one warning naming file and line, and only what cannot be a model at all is skipped. What
is read carries its exact text, so the writer can keep unchanged items byte for byte.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import yaml

from gardener.folding import kebab
from gardener.library import yaml_text
from gardener.library.block import (
    ITEM_FIELDS,
    SECTION_KEYS,
    Section,
    extra_text,
    item_texts,
    locate,
)
from gardener.library.document import Document
from gardener.model import Community, Entity, Garden, Link

Item = Entity | Community | Link


@dataclass(frozen=True)
class GardenReading:
    """A garden as read, with what reading it had to say and what it could not keep."""

    garden: Garden | None
    """None when the file has no ``graph_garden`` key."""
    warnings: tuple[str, ...] = ()
    dropped: frozenset[str] = frozenset()
    """Sections (``entities``, ``last_pruned``...) from which something in the file was not
    kept in the model; ``graph_garden`` when the value as a whole was unusable."""


def _text(value: Any, name: str, problems: list[str]) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float | dt.date):
        problems.append(f"{name} {value!r} is not text; read as {str(value)!r}")
        return str(value)
    problems.append(f"{name} is a {type(value).__name__}, not text; ignored")
    return None


def _score(value: Any, name: str, problems: list[str]) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            problems.append(f"{name} {value!r} is quoted; read as the number {number}")
            return number
    problems.append(f"{name} {value!r} is not a number; ignored")
    return None


def _unknown(data: dict[Any, Any], known: tuple[str, ...], problems: list[str]) -> None:
    extra = [str(k) for k in data if k not in known]
    if extra:
        problems.append("unknown key" + ("s " if len(extra) > 1 else " ")
                        + ", ".join(repr(k) for k in extra) + " ignored")


def _legacy(kind: str, data: Any, problems: list[str]) -> str | None:
    """The name in a plain-string item, or None (with a problem) when it has none."""
    name = _text(data, "item", problems) if not isinstance(data, str) else data
    if name is None or not name.strip() or not kebab(name):
        problems.append(f"{kind} item {data!r} is not a mapping and names nothing; skipped")
        return None
    return name


def entity_from_data(data: Any) -> tuple[Entity | None, list[str]]:
    """An entity from one parsed list item; None when nothing usable is there."""
    problems: list[str] = []
    if not isinstance(data, dict):
        if isinstance(data, list | dict) or data is None:
            return None, [f"entity item {data!r} is not a mapping; skipped"]
        name = _legacy("entity", data, problems)
        if name is None:
            return None, problems
        problems.append(f"entity {name!r} is a plain string, not an {{id, type, label, "
                        f"relevance}} mapping; read as id {kebab(name)!r}")
        return Entity(id=kebab(name), label=name, legacy=True), problems
    fields = ITEM_FIELDS["entities"]
    _unknown(data, fields, problems)
    label = _text(data.get("label"), "label", problems)
    ident = _text(data.get("id"), "id", problems)
    if not ident:
        if not label or not kebab(label):
            return None, [*problems, "entity has no id and no label; skipped"]
        ident = kebab(label)
        problems.append(f"entity has no id; read as {ident!r} from its label")
    return Entity(id=ident, type=_text(data.get("type"), "type", problems), label=label,
                  relevance=_score(data.get("relevance"), "relevance", problems)), problems


def community_from_data(data: Any) -> tuple[Community | None, list[str]]:
    """A community from one parsed list item; None when nothing usable is there."""
    problems: list[str] = []
    if not isinstance(data, dict):
        if isinstance(data, list | dict) or data is None:
            return None, [f"community item {data!r} is not a mapping; skipped"]
        name = _legacy("community", data, problems)
        if name is None:
            return None, problems
        problems.append(f"community {name!r} is a plain string, not an {{id, label, source, "
                        f"confidence}} mapping; read as id {kebab(name)!r}")
        return Community(id=kebab(name), label=name, legacy=True), problems
    _unknown(data, ITEM_FIELDS["communities"], problems)
    label = _text(data.get("label"), "label", problems)
    ident = _text(data.get("id"), "id", problems)
    if not ident:
        if not label or not kebab(label):
            return None, [*problems, "community has no id and no label; skipped"]
        ident = kebab(label)
        problems.append(f"community has no id; read as {ident!r} from its label")
    return Community(id=ident, label=label, source=_text(data.get("source"), "source", problems),
                     confidence=_score(data.get("confidence"), "confidence", problems)), problems


LEGACY_SCALE = 5.0
"""Older tools scored links 1-5 (``strength: 5``); a score above 1 on such a key is read on
that scale: ``confidence = strength / 5`` (5 -> 1.0, 4 -> 0.8, 3 -> 0.6, 2 -> 0.4)."""
_LEGACY_SCORES = ("strength", "relevance")
"""Keys older tools used for a link's confidence, in the order they are tried."""


def _legacy_confidence(data: dict[Any, Any], problems: list[str]) -> tuple[float | None, str]:
    """The confidence an older link's ``strength`` or ``relevance`` means, and how it was read."""
    for key in _LEGACY_SCORES:
        if key not in data:
            continue
        score = _score(data[key], key, problems)
        if score is None or math.isnan(score) or score < 0 or score > LEGACY_SCALE:
            problems.append(f"{key} {data[key]!r} is not a score of 0-1 or 1-5; the link is "
                            "read without a confidence")
            return None, f"{key} {data[key]!r} not read"
        confidence = score / LEGACY_SCALE if score > 1 else score
        confidence = round(confidence, 2)
        return confidence, f"{key} {score:g} read as confidence {confidence:g}"
    return None, ""


def link_from_data(data: Any) -> tuple[Link | None, list[str]]:
    """A link from one parsed list item, its type as written (pruning judges it).

    Older tools' shapes are migrated, never dropped: a bare slug is a link to it; ``strength``
    or ``relevance`` (0-1, or 1-5: ``LEGACY_SCALE``) is its confidence when it has none; a
    missing type is left for pruning to give the library's default (``PruneSettings.untyped``).
    Such a link carries ``migrated`` and no ``text``, so it is written in the current shape.
    """
    problems: list[str] = []
    if isinstance(data, str) and data.strip():
        slug = data.strip()
        problems.append(f"inferred link {slug!r} is a plain slug, not a {{target, type, "
                        "confidence, reason}} mapping; read as a link to it")
        return Link(target=slug, migrated="a plain slug"), problems
    if not isinstance(data, dict):
        return None, [f"inferred link {data!r} is not a mapping; skipped"]
    known = ITEM_FIELDS["inferred_links"]
    _unknown(data, (*known, *_LEGACY_SCORES), problems)
    target = _text(data.get("target"), "target", problems)
    if not target:
        return None, [*problems, "inferred link has no target; skipped"]
    confidence = _score(data.get("confidence"), "confidence", problems)
    migrated: list[str] = []
    if confidence is None and "confidence" not in data:
        confidence, how = _legacy_confidence(data, problems)
        if how:
            migrated.append(how)
            if confidence is not None:
                problems.append(how)
    elif any(key in data for key in _LEGACY_SCORES):
        migrated.append("confidence kept over " + " and ".join(
            k for k in _LEGACY_SCORES if k in data))
    if data.get("type") is None:
        migrated.append("no type")
    return Link(target=target, type=_text(data.get("type"), "type", problems),
                confidence=confidence, reason=_text(data.get("reason"), "reason", problems),
                migrated="; ".join(migrated) or None), problems


def item_from_data(kind: str, data: Any) -> tuple[Item | None, list[str]]:
    """The item of list ``kind`` (``entities``, ``communities``, ``inferred_links``)."""
    if kind == "entities":
        return entity_from_data(data)
    if kind == "communities":
        return community_from_data(data)
    if kind == "inferred_links":
        return link_from_data(data)
    raise ValueError(f"unknown garden list {kind!r}")


def _date(value: Any) -> tuple[dt.date | None, str | None]:
    if value is None:
        return None, None
    if isinstance(value, dt.datetime):
        return value.date(), None
    if isinstance(value, dt.date):
        return value, None
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()), None
        except ValueError:
            pass
    return None, f"last_pruned {value!r} is not a date (YYYY-MM-DD); read as never pruned"


_NODE_KIND = {"MappingNode": "a mapping", "SequenceNode": "a list", "ScalarNode": "a value"}


def read_detailed(doc: Document) -> GardenReading:
    """The garden with its warnings and what was dropped; the writer needs the latter."""
    block = locate(doc)
    if not block.present or block.value_node is None:
        return GardenReading(None)
    data = doc.data.get(yaml_text.GARDEN_KEY)
    node = block.value_node
    where = f"{doc.path}:{yaml_text.line_of(doc, node)}"
    if data is None or data == {}:
        return GardenReading(Garden())
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        kind = _NODE_KIND.get(type(node).__name__, "value")
        return GardenReading(Garden(), (
            f"{where}: graph_garden is {kind}, not a mapping; read as an empty garden",),
            frozenset({yaml_text.GARDEN_KEY}))
    warnings: list[str] = []
    dropped: set[str] = set()
    fields: dict[str, Any] = {}
    extra: list[tuple[str, str]] = []
    for sec in block.sections:
        here = f"{doc.path}:{yaml_text.line_of(doc, sec.key_node)}"
        if sec.key not in SECTION_KEYS:
            extra.append((sec.key, extra_text(sec)))
            continue
        value = data.get(sec.key)
        if sec.key == "last_pruned":
            fields["last_pruned"], problem = _date(value)
            if problem:
                warnings.append(f"{here}: {problem}")
                dropped.add(sec.key)
        elif sec.key == "vitality_reasoning":
            problems: list[str] = []
            fields["vitality_reasoning"] = _text(value, "vitality_reasoning", problems)
            warnings.extend(f"{here}: {p}" for p in problems)
            if value is not None and not isinstance(value, str | int | float | bool | dt.date):
                dropped.add(sec.key)
        else:
            items, lost = _read_list(doc, sec, value, warnings)
            fields[sec.key] = items
            if lost:
                dropped.add(sec.key)
    return GardenReading(Garden(**fields, extra=tuple(extra)), tuple(warnings),
                         frozenset(dropped))


def _read_list(doc: Document, sec: Section, value: Any,
               warnings: list[str]) -> tuple[tuple[Item, ...], bool]:
    """The items of one garden list, each with its exact text; and whether any was skipped."""
    if value is None:
        return (), False
    node = sec.value_node
    if not isinstance(value, list) or not isinstance(node, yaml.SequenceNode):
        warnings.append(f"{doc.path}:{yaml_text.line_of(doc, node)}: graph_garden.{sec.key} is "
                        f"{_NODE_KIND.get(type(node).__name__, 'a value')}, not a list; "
                        "read as empty")
        return (), True
    texts = item_texts(doc, sec)
    items: list[Item] = []
    lost = False
    for i, (data, item_node, text) in enumerate(zip(value, node.value, texts, strict=True)):
        model, problems = item_from_data(sec.key, data)
        if problems:
            warnings.append(f"{doc.path}:{yaml_text.line_of(doc, item_node)}: "
                            f"graph_garden.{sec.key}[{i}]: " + "; ".join(problems))
        if model is None:
            lost = True
            continue
        if isinstance(model, Link) and model.migrated is not None:
            # An older shape is not kept as written (its ``strength`` key, its missing type):
            # no text, and the section counts as not fully kept, so the writer renders it anew.
            lost = True
            items.append(model)
            continue
        items.append(model.model_copy(update={"text": text}) if text is not None else model)
    return tuple(items), lost


def read_garden(doc: Document) -> tuple[Garden | None, list[str]]:
    """The file's garden (None when it has no ``graph_garden`` key) and one warning per odd item."""
    reading = read_detailed(doc)
    return reading.garden, list(reading.warnings)
