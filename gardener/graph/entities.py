"""One concept, one entity id across the library: resolution rules and the alias table.

Each answer names entities in its own spelling: ``feedback-loops`` here, ``Feedback_Loop``
there, ``systems-thinking`` and ``system-thinking``. Ids that agree once case, punctuation,
filler words and plurals are set aside (``spelling.key``), or that the library's alias table
(``LIBRARY/.gardener/entities.yaml``) declares equal, resolve to one canonical id: the
table's, else the spelling the library uses most. Every merge is reported.

The alias table::

    version: 1
    aliases:
      systems-thinking: [system-thinking, systemic-thinking]
      ostrom-elinor: [elinor-ostrom]
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from gardener import folding as spelling
from gardener.library import tables
from gardener.model import Entity, Garden, Pattern

ALIASES_FILE = Path(".gardener") / "entities.yaml"
ALIASES_VERSION = 1
_KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


@dataclass(frozen=True)
class AliasTable:
    canonical: Mapping[str, str] = field(default_factory=dict)
    """Key of every alias (and of each canonical id itself) -> the canonical id."""
    path: Path | None = None


def parse_aliases(text: str, path: Path) -> AliasTable:
    """The alias table in ``text``; raises ``tables.TableError`` naming each bad line."""
    table = tables.parse(text, path)
    data = table.data
    if data is None:
        return AliasTable(path=path)
    if not isinstance(data, dict) or not isinstance(data.get("aliases", {}), dict):
        raise tables.TableError([f"{path}:1: an alias table is a mapping with an 'aliases' "
                                 "mapping of canonical id -> list of aliases"])
    problems: list[str] = []
    unknown = sorted(str(k) for k in data if k not in ("version", "aliases"))
    if unknown:
        problems.append(f"{path}:1: unknown key(s) {', '.join(unknown)}; allowed: version, "
                        "aliases")
    if data.get("version", ALIASES_VERSION) != ALIASES_VERSION:
        problems.append(f"{table.where(table.child(table.node, 'version'))}: version "
                        f"{data.get('version')!r} is not {ALIASES_VERSION}")
    mapping_node = table.child(table.node, "aliases")
    canonical: dict[str, str] = {}
    owner_line: dict[str, int] = {}
    pairs = mapping_node.value if isinstance(mapping_node, yaml.MappingNode) else []
    for key_node, value_node in pairs:
        where = table.where(key_node)
        cid = key_node.value
        line = key_node.start_mark.line + 1
        if not isinstance(cid, str) or not _KEBAB.match(cid):
            problems.append(f"{where}: canonical id {cid!r} is not kebab-case")
            continue
        values = data["aliases"].get(cid)
        if values is None:
            values = []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            problems.append(f"{table.where(value_node)}: aliases of {cid!r} must be a list "
                            "of ids")
            continue
        for name in (cid, *values):
            k = spelling.key(name)
            if not k:
                problems.append(f"{where}: alias {name!r} of {cid!r} has no letters or digits")
                continue
            other = canonical.get(k)
            if other is not None and other != cid:
                problems.append(f"{where}: {name!r} is already an alias of {other!r} "
                                f"(line {owner_line[k]})")
                continue
            canonical[k] = cid
            owner_line[k] = line
    if problems:
        raise tables.TableError(problems)
    return AliasTable(canonical, path)


def load_aliases(root: Path) -> AliasTable:
    """The library's alias table; empty when it has none. Raises ``TableError`` when bad."""
    path = root / ALIASES_FILE
    if not path.is_file():
        return AliasTable()
    return parse_aliases(tables.read_text(path), path)


@dataclass(frozen=True)
class Merge:
    """Several spellings that resolution makes one id."""

    canonical: str
    variants: tuple[str, ...]
    """The other ids folded into ``canonical``."""
    patterns: int
    """Patterns using any of the variants."""
    rule: str
    """``spelling`` (case, punctuation, plurals, filler) or ``alias`` (the table)."""


@dataclass(frozen=True)
class Resolution:
    by_key: Mapping[str, str]
    """Spelling key -> canonical id, for ids the library uses and the table names."""
    merges: tuple[Merge, ...] = ()
    distinct: int = 0
    """Distinct raw ids in the library."""

    def resolve(self, raw: str) -> str:
        """The canonical id of ``raw``; an id the library does not know stays as it is."""
        return self.by_key.get(spelling.key(raw), raw)

    @property
    def merged(self) -> int:
        return sum(len(m.variants) for m in self.merges)


def _pick(spellings: Counter[str]) -> str:
    """The most used spelling, kebab-case ones first, then shorter, then alphabetical."""
    return min(spellings, key=lambda s: (not _KEBAB.match(s), -spellings[s], len(s), s))


def resolve_library(patterns: Iterable[Pattern], table: AliasTable = AliasTable()
                    ) -> Resolution:
    """Group the library's entity ids by spelling key (the table joining keys) and choose
    one canonical id per group."""
    used: dict[str, Counter[str]] = {}
    users: dict[str, set[str]] = {}
    distinct: set[str] = set()
    for p in patterns:
        if p.garden is None:
            continue
        for e in p.garden.entities:
            k = spelling.key(e.id)
            if not k:
                continue
            distinct.add(e.id)
            group = table.canonical.get(k, "")
            gk = f"alias:{group}" if group else k
            used.setdefault(gk, Counter())[e.id] += 1
            users.setdefault(gk, set()).add(p.slug)
    by_key: dict[str, str] = {k: cid for k, cid in table.canonical.items()}
    merges: list[Merge] = []
    for gk in sorted(used):
        spellings = used[gk]
        canonical = gk.removeprefix("alias:") if gk.startswith("alias:") else _pick(spellings)
        for s in spellings:
            by_key[spelling.key(s)] = canonical
        variants = tuple(sorted(s for s in spellings if s != canonical))
        if variants:
            merges.append(Merge(canonical, variants, len(users[gk]),
                                "alias" if gk.startswith("alias:") else "spelling"))
    return Resolution(by_key=by_key, merges=tuple(merges), distinct=len(distinct))


def canonical_entities(garden: Garden, resolution: Resolution) -> Garden:
    """The garden with each entity under its canonical id; two that become one keep the
    stronger (ties: the first). Untouched items keep their text."""
    kept: dict[str, Entity] = {}
    for e in garden.entities:
        cid = resolution.resolve(e.id)
        item = e if cid == e.id else e.model_copy(update={"id": cid})
        old = kept.get(cid)
        if old is None or item.strength > old.strength:
            kept[cid] = item
    order: dict[str, int] = {}
    for i, e in enumerate(garden.entities):
        order.setdefault(resolution.resolve(e.id), i)
    entities = tuple(sorted(kept.values(), key=lambda e: order[e.id]))
    if entities == garden.entities:
        return garden
    return garden.model_copy(update={"entities": entities})
