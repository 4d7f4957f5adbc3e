"""A request body made from another pattern's, for ``--estimate``: pure functions.

Why: building a pattern's request through the pass's own call (its response model with
pydantic's ``create_model``, the model's JSON schema, instructor's and openai's request) is
about 13 ms a pattern, and where the endpoint counts the schema as prompt tokens (tools and
json modes) the estimate needs the schema's text. Two patterns whose schemas have one shape
(``gardener.propose.propose.schema_shape``: caps, a fixed vitality band, none, one or more
link targets) differ only where their targets are listed. So the first built request of a
shape is a `Template`: its body, and the one place in it (outside the messages) that lists
that pattern's targets. Each further built request of the shape is checked against the
template filled with its own messages and targets (`learn`); once `CHECKS` of them are
equal, the rest of that shape is filled, not built (`Template.ready`), and at the first
difference, or when the targets are not found exactly once, never.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

CHECKS = 2
"""Built requests of a shape that its template must reproduce before it is used."""

Path = tuple[str | int, ...]
"""Keys and list positions from a body's root to one value."""


def listed(found: Sequence[str]) -> Any:
    """How a schema lists link targets: a JSON Schema ``const`` for one, an ``enum`` list
    for more; nothing (None) for none."""
    if not found:
        return None
    return found[0] if len(found) == 1 else list(found)


def places(value: Any, wanted: Any, at: Path = ()) -> Iterator[Path]:
    """Every path below ``value`` whose value equals ``wanted``."""
    if value == wanted and type(value) is type(wanted):
        yield at
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield from places(item, wanted, (*at, key))
    elif isinstance(value, list):
        for n, item in enumerate(value):
            yield from places(item, wanted, (*at, n))


def slot(body: dict[str, Any], found: Sequence[str]) -> Path | None:
    """Where ``body`` lists the targets ``found`` (``listed``): its one place outside the
    messages; ``()`` when there are no targets to list; None when they are listed in no
    place or in several."""
    wanted = listed(found)
    if wanted is None:
        return ()
    hits = [(key, *rest) for key, item in body.items() if key != "messages"
            for rest in places(item, wanted)]
    return hits[0] if len(hits) == 1 else None


def put(value: Any, at: Path, new: Any) -> Any:
    """``value`` with ``new`` at ``at``: the containers along the path copied, the rest
    shared."""
    if not at:
        return new
    head, rest = at[0], at[1:]
    if isinstance(value, dict):
        return {**value, head: put(value[head], rest, new)}
    copied = list(value)
    copied[int(head)] = put(copied[int(head)], rest, new)
    return copied


@dataclass(frozen=True)
class Template:
    """The first built request of a shape, and what the later ones showed of it."""

    body: dict[str, Any]
    at: Path | None
    """Where its targets are listed (`slot`); None: nowhere usable, never filled."""
    checked: int = 0
    """Built requests it reproduced."""
    failed: bool = False
    """A built request differed from it: never filled."""

    def ready(self, checks: int = CHECKS) -> bool:
        """Whether requests of its shape are filled: it reproduced ``checks`` built ones."""
        return not self.failed and self.at is not None and self.checked >= checks

    def filled(self, messages: list[dict[str, Any]], found: Sequence[str]) -> dict[str, Any]:
        """The body of a request of this shape with ``messages`` and targets ``found``."""
        assert self.at is not None
        body = {**self.body, "messages": messages}
        return put(body, self.at, listed(found)) if self.at else body


def learn(template: Template | None, body: dict[str, Any], messages: list[dict[str, Any]],
          found: Sequence[str]) -> Template:
    """What ``template`` becomes once a request of its shape was built as ``body``, for
    ``messages`` and targets ``found``: made of it when there was none, checked by it after.
    The body's messages must be ``messages`` (the pass rendered them and the client sent them
    unchanged)."""
    if template is None:
        return Template(body, slot(body, found), failed=body.get("messages") != messages)
    if template.failed or template.at is None:
        return template
    if template.filled(messages, found) == body:
        return replace(template, checked=template.checked + 1)
    return replace(template, failed=True)
