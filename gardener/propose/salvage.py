"""Salvage: the items of a failed answer that are valid on their own, and why the others went.

Why: when the re-asks are spent (or cannot be sent), throwing the answer away loses the good
items with the bad. These helpers judge each item alone, in the response model's own shape
and against the same grounding, and say per dropped item what was wrong with it; they know no
particular response model (``gardener.propose.response.salvage`` puts them together).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar, cast

import pydantic_core
from pydantic import BaseModel, TypeAdapter, ValidationError

log = logging.getLogger("gardener.propose.schemas")
"""Salvage logs under the schemas' name, where it always has."""

_FENCED = re.compile(r"```[a-zA-Z]*\s*\n(.*?)```", re.DOTALL)


def lenient_json(raw: str) -> Any:
    """The first JSON object in ``raw``, tolerating code fences, chatter and truncation."""
    fenced = _FENCED.search(raw)
    text = fenced.group(1) if fenced else raw
    start = text.find("{")
    if start < 0:
        raise ValueError("no JSON object in the model's last answer")
    return pydantic_core.from_json(text[start:], allow_partial=True)


def error_text(err: ValidationError) -> str:
    parts = []
    for e in err.errors(include_url=False):
        loc = ".".join(str(p) for p in e["loc"])
        msg = str(e["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


_D = TypeVar("_D", bound=BaseModel)


def _label(item: Any, key: str) -> str:
    if isinstance(item, Mapping) and isinstance(item.get(key), str):
        return f" {item[key]!r}"
    return ""


def salvage_items(
    data: Mapping[str, Any], key: str, draft: type[_D], limit: int, ident: Callable[[_D], str],
    context: Mapping[str, Any], dropped: list[str],
) -> list[_D]:
    raw = data.get(key, [])
    if not isinstance(raw, list):
        dropped.append(f"{key}: not a list ({type(raw).__name__}); dropped whole")
        return []
    kept: list[_D] = []
    seen: set[str] = set()
    id_key = "target" if key == "inferred_links" else "id"
    for i, item in enumerate(raw):
        where = f"{key}[{i}]{_label(item, id_key)}"
        try:
            value = draft.model_validate(item, context=dict(context))
        except ValidationError as err:
            dropped.append(f"{where}: {error_text(err)}")
            continue
        if ident(value) in seen:
            dropped.append(f"{where}: duplicate of an earlier item")
            continue
        if len(kept) >= limit:
            dropped.append(f"{where}: beyond the limit of {limit}")
            continue
        seen.add(ident(value))
        kept.append(value)
    return kept


def salvage_field(data: Mapping[str, Any], key: str, model: type[BaseModel],
                  context: Mapping[str, Any], dropped: list[str]) -> str | None:
    if key not in data:
        dropped.append(f"{key}: missing")
        return None
    field = model.model_fields[key]
    adapter: TypeAdapter[Any] = TypeAdapter(cast(Any, Annotated)[field.annotation, field])
    try:
        value = adapter.validate_python(data[key], context=dict(context))
    except ValidationError as err:
        dropped.append(f"{key}: {error_text(err)}")
        return None
    return value if isinstance(value, str) else None


_V = TypeVar("_V")


def logged(slug: str, value: _V, dropped: list[str]) -> tuple[_V, list[str]]:
    """``value`` and ``dropped``, each dropped item logged with its reason."""
    for reason in dropped:
        log.warning("salvage %s: dropped %s", slug, reason)
    return value, dropped
