"""The library's community registry file: its model, how it is read, checked and written.

The registry (``LIBRARY/.gardener/communities.yaml``) is the shared vocabulary that gardens
and proposals draw their community ids from, so gardening, proposals and the commands all
read and check it, while only ``communities`` builds one. It is plain data: ids, labels,
descriptions, the aliases a former id is read as, and the members a build assigned.
``parse_registry`` reports every problem by line, ``dump_registry`` writes keys in a fixed
order so that a rebuild diffs cleanly, and ``normalise_id`` (which detection shares) is how
an id spelt differently still resolves to its community.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gardener import folding as spelling
from gardener.library import tables
from gardener.model import MAX_ID, MAX_LABEL, Community

REGISTRY_FILE = Path(".gardener") / "communities.yaml"
REGISTRY_VERSION = 1

_KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_PREFIX = re.compile(r"^(?:(?:comm|cmty)[_:\-.]|community[_:.])+")
"""Machine prefixes on ids (``comm_``, ``community:``); ``community-building`` is a real id."""
KEYS = ("id", "label", "description", "aliases", "members")


def normalise_id(raw: str) -> str:
    """The spelling-free key of a community id or label: case, punctuation, ``&``/``and``,
    plurals and ``comm_`` prefixes do not count."""
    return spelling.key(_PREFIX.sub("", raw.strip().casefold()))


@dataclass(frozen=True)
class RegistryCommunity:
    id: str
    label: str
    description: str = ""
    aliases: tuple[str, ...] = ()
    """Former ids folded into this one; a garden using one is read as this community."""
    members: tuple[str, ...] = ()
    """Slugs of the patterns assigned to it when it was built."""
    line: int = 0


@dataclass(frozen=True)
class Registry:
    communities: tuple[RegistryCommunity, ...]
    path: Path | None = None

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.communities)

    def get(self, cid: str) -> RegistryCommunity | None:
        return next((c for c in self.communities if c.id == cid), None)

    def resolve(self, raw: str) -> str | None:
        """The registry id a garden's community id stands for: itself, an alias, or the
        same id spelt differently; None when the registry does not know it."""
        key = normalise_id(raw)
        for c in self.communities:
            if raw == c.id or raw in c.aliases:
                return c.id
        for c in self.communities:
            if key == normalise_id(c.id) or key in {normalise_id(a) for a in c.aliases}:
                return c.id
        return None

    def assignment(self) -> dict[str, str]:
        """Slug -> registry id, the first community listing a slug winning."""
        out: dict[str, str] = {}
        for c in self.communities:
            for slug in c.members:
                out.setdefault(slug, c.id)
        return out


def registry_path(root: Path) -> Path:
    return root / REGISTRY_FILE


def _text(value: Any, where: str, name: str, problems: list[str], *,
          required: bool, limit: int | None = None) -> str:
    if value is None:
        if required:
            problems.append(f"{where}: {name} is missing")
        return ""
    if not isinstance(value, str):
        problems.append(f"{where}: {name} must be text, not {type(value).__name__}")
        return ""
    if required and not value.strip():
        problems.append(f"{where}: {name} is empty")
    if limit is not None and len(value) > limit:
        problems.append(f"{where}: {name} is longer than {limit} characters")
    if name == "label" and ("\n" in value or "\r" in value):
        problems.append(f"{where}: label must be one line")
    return value


def _strings(value: Any, where: str, name: str, problems: list[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{where}: {name} must be a list of text items")
        return ()
    repeated = sorted(v for v, n in Counter(value).items() if n > 1)
    if repeated:
        problems.append(f"{where}: {name} repeats {', '.join(repeated)}")
    return tuple(value)


def parse_registry(text: str, path: Path) -> Registry:
    """The registry in ``text``; raises ``tables.TableError`` listing every problem by line."""
    table = tables.parse(text, path)
    data = table.data
    if not isinstance(data, dict) or not isinstance(data.get("communities"), list):
        raise tables.TableError([f"{path}:1: a registry is a mapping with a 'communities' "
                                 "list of {id, label, description} items"])
    problems: list[str] = []
    version = data.get("version", REGISTRY_VERSION)
    if version != REGISTRY_VERSION:
        problems.append(f"{table.where(table.child(table.node, 'version'))}: version "
                        f"{version!r} is not {REGISTRY_VERSION}")
    nodes = table.items(table.child(table.node, "communities"))
    found: list[RegistryCommunity] = []
    for item, node in zip(data["communities"], nodes, strict=True):
        where = table.where(node)
        if not isinstance(item, dict):
            problems.append(f"{where}: a community is a mapping with id, label, description")
            continue
        unknown = sorted(str(k) for k in item if k not in KEYS)
        if unknown:
            problems.append(f"{where}: unknown key(s) {', '.join(unknown)}; "
                            f"allowed: {', '.join(KEYS)}")
        cid = _text(item.get("id"), where, "id", problems, required=True, limit=MAX_ID)
        if cid and not _KEBAB.match(cid):
            problems.append(f"{where}: id {cid!r} is not kebab-case (lowercase letters, "
                            "digits, single hyphens)")
        found.append(RegistryCommunity(
            id=cid,
            label=_text(item.get("label"), where, "label", problems, required=True,
                        limit=MAX_LABEL),
            description=_text(item.get("description"), where, "description", problems,
                              required=False),
            aliases=_strings(item.get("aliases"), where, "aliases", problems),
            members=_strings(item.get("members"), where, "members", problems),
            line=node.start_mark.line + 1 if node is not None else 0,
        ))
    problems += _clashes(found, path)
    if problems:
        raise tables.TableError(problems)
    return Registry(tuple(found), path)


def _clashes(found: Sequence[RegistryCommunity], path: Path) -> list[str]:
    """Ids must be unique, and an alias must not name another community."""
    problems: list[str] = []
    owner: dict[str, RegistryCommunity] = {}
    for c in found:
        if not c.id:
            continue
        first = owner.get(normalise_id(c.id))
        if first is not None:
            problems.append(f"{path}:{c.line}: id {c.id!r} is the same community as "
                            f"{first.id!r} (line {first.line})")
        else:
            owner[normalise_id(c.id)] = c
    for c in found:
        for alias in c.aliases:
            other = owner.get(normalise_id(alias))
            if other is not None and other is not c:
                problems.append(f"{path}:{c.line}: alias {alias!r} of {c.id!r} names community "
                                f"{other.id!r} (line {other.line})")
    return problems


def load_registry(root: Path) -> Registry | None:
    """The library's registry, or None when it has none; raises ``TableError`` when bad."""
    path = registry_path(root)
    if not path.is_file():
        return None
    return parse_registry(tables.read_text(path), path)


def unknown_members(registry: Registry, slugs: Iterable[str]) -> list[str]:
    """Members that name no pattern of the library, as ``file:line`` messages."""
    known = set(slugs)
    return [f"{registry.path}:{c.line}: member {m!r} of {c.id!r} is not a pattern of the "
            "library" for c in registry.communities for m in c.members if m not in known]


def dump_registry(registry: Registry, header: str = "") -> str:
    """The registry as YAML, keys in a fixed order, so a rebuild diffs cleanly."""
    items: list[dict[str, Any]] = []
    for c in registry.communities:
        item: dict[str, Any] = {"id": c.id, "label": c.label, "description": c.description}
        if c.aliases:
            item["aliases"] = list(c.aliases)
        if c.members:
            item["members"] = list(c.members)
        items.append(item)
    body = yaml.safe_dump({"version": REGISTRY_VERSION, "communities": items},
                          sort_keys=False, allow_unicode=True, width=96)
    lines = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return lines + body


def garden_problems(communities: Iterable[Community], registry: Registry) -> list[str]:
    """Community ids a garden holds that the registry does not (aliases count as known)."""
    return [f"community {c.id!r} is not in the registry"
            for c in communities if registry.resolve(c.id) is None]
