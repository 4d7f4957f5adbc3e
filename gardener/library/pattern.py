"""Build the typed ``Pattern`` view from a parsed document.

Real libraries mix layouts (v7.1 ``relationships:`` mapping, the older flat top-level lists,
``classification:`` instead of ``ontology:``); this is the one place that knows the mapping
from those shapes to the domain model, so the rest of the code sees one shape.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from gardener.errors import brief
from gardener.library.document import Document, ReadError
from gardener.model import LINK_TYPES, Garden, HumanLink, Pattern, Section

HUMAN_KEYS: tuple[str, ...] = (*LINK_TYPES, "related", "manifests_as", "governed_by")
"""Keys that hold human-curated relationships, in a ``relationships:`` mapping or at top level."""

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return " ".join(value.split())
    return str(value)


def _get(data: Mapping[str, Any], *keys: str) -> Any:
    cur: Any = data
    for key in keys:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(key)
    return cur


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def sections(body: str) -> tuple[Section, ...]:
    """Split a Markdown body at its ATX headings (ignoring fenced code)."""
    out: list[Section] = []
    heading, level = "", 0
    lines: list[str] = []
    fence: str | None = None
    for line in body.splitlines():
        m_fence = _FENCE.match(line)
        if m_fence:
            marker = m_fence.group(1)
            if fence is None:
                fence = marker[0] * len(marker)
            elif marker.startswith(fence):
                fence = None
        m = None if fence else _HEADING.match(line)
        if m:
            if heading or "".join(lines).strip():
                out.append(Section(heading=heading, level=level, text="\n".join(lines).strip()))
            heading, level, lines = m.group(2).strip(), len(m.group(1)), []
        else:
            lines.append(line)
    if heading or "".join(lines).strip():
        out.append(Section(heading=heading, level=level, text="\n".join(lines).strip()))
    return tuple(out)


def _human_items(kind: str, value: Any, where: str, warnings: list[str]) -> Iterable[HumanLink]:
    if value is None:
        return
    if isinstance(value, str | Mapping):
        value = [value]
    if not isinstance(value, list):
        warnings.append(f"{where}: relationship '{kind}' is not a list; ignored")
        return
    for item in value:
        ref: Any
        weight: float | None = None
        if isinstance(item, str):
            ref = item
        elif isinstance(item, Mapping):
            ref = item.get("slug") or item.get("id") or item.get("target")
            weight = _number(item.get("weight"))
        else:
            ref = None
        if not isinstance(ref, str) or not ref.strip():
            warnings.append(
                f"{where}: relationship '{kind}' item {item!r} names no pattern; ignored")
            continue
        yield HumanLink(target=ref.strip(), type=kind, weight=weight, resolved=False)


def human_relationships(data: Mapping[str, Any], where: str, warnings: list[str],
                        extra_keys: Iterable[str] = ()) -> tuple[HumanLink, ...]:
    """Human-curated relationships from both layouts, targets still unresolved.

    ``extra_keys``: top-level keys besides ``HUMAN_KEYS`` that hold them in the flat layout
    (a library's own kinds, ``relationships.types`` of its ``gardener.toml``)."""
    links: list[HumanLink] = []
    rel = data.get("relationships")
    if isinstance(rel, Mapping):
        for kind, value in rel.items():
            links.extend(_human_items(str(kind), value, where, warnings))
    elif rel is not None:
        warnings.append(f"{where}: 'relationships' is not a mapping; ignored")
    keys = dict.fromkeys((*HUMAN_KEYS, *extra_keys))
    for kind in keys:
        if kind in data:
            links.extend(_human_items(kind, data[kind], where, warnings))
    return tuple(links)


def fingerprint(data: Mapping[str, Any], body: str) -> str:
    """What the model sees of a pattern: front matter outside the garden, and the body."""
    outside = {k: v for k, v in data.items() if k != "graph_garden"}

    def default(obj: Any) -> str:
        if isinstance(obj, dt.date | dt.datetime):
            return obj.isoformat()
        return repr(obj)

    blob = json.dumps(outside, sort_keys=True, default=default, ensure_ascii=False)
    return hashlib.sha256((blob + "\0" + body).encode("utf-8")).hexdigest()


_UNSAFE_IN_SLUG = re.compile(r"[\s\x00-\x1f\x7f-\x9f`|<>\[\]()\\/*\"']")
"""Whitespace, control characters and what Markdown, shells or paths read as syntax."""
_INVISIBLE_IN_SLUG = re.compile("[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064"
                                "\u2066-\u206f\ufeff\ufff9-\ufffb]")
"""Bidirectional overrides and zero-width characters: a slug that reads as one name in a
terminal or a pull request and is another (``\u202e`` turns ``txt.exe`` around)."""
MAX_SLUG = 200


def slug_problem(slug: str) -> str | None:
    """Why ``slug`` cannot name a pattern, or None: the one slug rule, used on reading."""
    if len(slug) > MAX_SLUG:
        return f"is longer than {MAX_SLUG} characters"
    bad = _UNSAFE_IN_SLUG.search(slug)
    if bad is not None:
        return f"holds {bad.group()!r}, which a slug may not"
    hidden = _INVISIBLE_IN_SLUG.search(slug)
    if hidden is not None:
        char = hidden.group()
        name = unicodedata.name(char, "an invisible format character").lower()
        return f"holds U+{ord(char):04X} ({name}), which a slug may not"
    if slug.startswith(("-", ".")):
        return "starts with '-' or '.'"
    if slug.startswith("@"):  # a pull-request line would mention a person or team
        return "starts with '@', which a slug may not (it mentions a GitHub user or team)"
    return None


def _key_line(doc: Document, key: str) -> int | None:
    """The file line of top-level ``key`` in the front matter, when the node tree has it."""
    if doc.root is None:
        return None
    offset = doc.text.count("\n", 0, doc.fm_start)
    for k, _ in doc.root.value:
        if getattr(k, "value", None) == key:
            return int(offset + k.start_mark.line + 1)
    return None


def build(doc: Document, garden: Garden | None = None,
          garden_warnings: Iterable[str] = (), *, human_types: Iterable[str] = ()) -> Pattern:
    """The typed view of one document; oddities become warnings, never exceptions.
    ``human_types``: extra top-level relationship keys (see ``human_relationships``)."""
    data = doc.data
    where = str(doc.path)
    warnings: list[str] = list(garden_warnings)
    slug = data.get("slug")
    if not isinstance(slug, str) or not slug.strip():
        slug = doc.path.stem
        warnings.append(f"{where}: no 'slug' in front matter; using the file name '{slug}'")
    slug = slug.strip()
    problem = slug_problem(slug)
    if problem is not None:
        raise ReadError(doc.path, f"slug {brief(slug)} {problem}; refusing the pattern (a slug "
                        "names files, links and pull-request lines)", _key_line(doc, "slug"))
    title = _text(data.get("title")) or slug
    keywords: list[str] = []
    for source in (_get(data, "ontology", "search_hints", "vector_keywords"),
                   data.get("keywords"), data.get("tags"),
                   _get(data, "classification", "category")):
        if isinstance(source, list):
            keywords.extend(_text(k) for k in source if isinstance(k, str | int | float))
        elif isinstance(source, str):
            keywords.extend(k.strip() for k in source.split(",") if k.strip())
    domain = _get(data, "ontology", "domain") or _get(data, "classification", "domain")
    aliases = data.get("aliases")
    body = doc.body
    return Pattern(
        path=doc.path,
        slug=slug,
        id=data["id"] if isinstance(data.get("id"), str) else None,
        title=title,
        summary=_text(data.get("summary") or data.get("description")),
        aliases=tuple(_text(a) for a in aliases) if isinstance(aliases, list) else (),
        domain=_text(domain) or None,
        keywords=tuple(k for k in keywords if k),
        vitality=_number(_get(data, "ontology", "commons_assessment", "vitality")),
        sections=sections(body),
        relationships=human_relationships(data, where, warnings, human_types),
        garden=garden,
        warnings=tuple(warnings),
        fingerprint=fingerprint(data, body),
    )
