"""Check a spliced file before it is written: the last line of defence for human bytes.

The splice is trusted only after the new text has been read back by the same reader a later
pass will use: it must parse, hold the same front matter outside the garden, keep every byte
before and after the garden block, and give back exactly the garden that was meant.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import yaml

from gardener.errors import GardenerError
from gardener.library import yaml_text
from gardener.library.block import Block, locate
from gardener.library.document import Document, ReadError, guard, read_text
from gardener.library.garden import read_garden
from gardener.model import Garden
from gardener.steps.edit import Append, scalar_edit, set_nested


class VerifyError(GardenerError):
    """A spliced text that must not be written; the message names the file and the problem."""

    exit_code = 1  # a file could not be processed

    def __init__(self, doc: Document, problem: str) -> None:
        super().__init__(f"{doc.path}: refusing to write: {problem}")
        self.path = doc.path
        self.problem = problem


def same(a: Any, b: Any) -> bool:
    """Parsed-YAML equality that also holds for NaN and for key order of mappings."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in dict.fromkeys([*a, *b]):
            sub = f"{path}.{k}" if path else str(k)
            if k not in a or k not in b:
                return f"key '{sub}' was {'added' if k not in a else 'removed'}"
            if not same(a[k], b[k]):
                return _first_difference(a[k], b[k], sub)
        return f"the keys under '{path or 'the front matter'}' changed order"
    return f"'{path}' changed from {a!r} to {b!r}"[:300]


def _reparse(old: Document, new_text: str, *, guarded: bool = True) -> Document:
    try:
        new = read_text(new_text, old.path, guarded=guarded)
    except ReadError as exc:
        raise VerifyError(old, f"the new text does not parse: {exc.problem} "
                               f"(line {exc.line})") from None
    if new is None:
        raise VerifyError(old, "the new text has no front matter")
    return new


def _kept(old: Document, new_text: str, start: int, end: int) -> None:
    """Every byte of the old file before ``start`` and from ``end`` on is in the new text."""
    tail = len(old.text) - end
    prefix = old.text[:start]
    if not new_text.startswith(prefix):
        at = next((i for i, (x, y) in enumerate(zip(prefix, new_text, strict=False)) if x != y),
                  min(len(prefix), len(new_text)))
        line = old.text.count("\n", 0, at) + 1
        raise VerifyError(old, f"bytes before the garden changed (first at line {line})")
    if len(new_text) < start + tail or not new_text.endswith(old.text[end:]):
        raise VerifyError(old, "bytes after the garden changed (body or later front matter)")


def verify(old: Document, new_text: str, expected: Garden) -> None:
    """Raise VerifyError unless ``new_text`` is ``old`` with only its garden set to ``expected``."""
    block = locate(old)
    _kept(old, new_text, block.start, block.end)
    middle = new_text[block.start:len(new_text) - (len(old.text) - block.end)]
    if middle and not middle.endswith("\n"):
        raise VerifyError(old, "bytes after the garden changed: the garden no longer ends "
                               "with its own line break")
    # The old text passed the reading guards and the new one has its bytes outside the
    # garden (checked above): only the garden is guarded again (``_guard_garden``), a
    # fifth of a parse's CPU.
    new = _reparse(old, new_text, guarded=False)
    before = {k: v for k, v in old.data.items() if k != yaml_text.GARDEN_KEY}
    after = {k: v for k, v in new.data.items() if k != yaml_text.GARDEN_KEY}
    if not same(before, after):
        raise VerifyError(old, "front matter outside graph_garden changed: "
                               + _first_difference(before, after))
    new_block = locate(new)
    if not new_block.present:
        raise VerifyError(old, "the new text has no graph_garden")
    tail = len(old.text) - block.end
    if (new_block.start, new_block.end) != (block.start, len(new_text) - tail):
        raise VerifyError(old, "the new graph_garden block does not sit exactly where the old "
                               "one was")
    _guard_garden(old, new, new_block)
    got, _ = read_garden(new)
    if got != expected:
        raise VerifyError(old, "the garden read back differs from the one meant: "
                               + _garden_difference(expected, got))


def _guard_garden(old: Document, new: Document, block: Block) -> None:
    """The reading guards (``gardener.library.document.guard``) on the new garden's YAML nodes, and
    no alias out of it: every node under it is written inside it."""
    value = block.value_node
    if value is None:
        return
    try:
        guard(value, new.path, new.fm_line_offset)
    except ReadError as exc:
        raise VerifyError(old, f"the new garden would not be read: {exc.problem} "
                               f"(line {exc.line})") from None
    todo: list[yaml.Node] = [value]
    while todo:
        node = todo.pop()
        at = new.fm_start + node.start_mark.index
        if not block.start <= at < block.end:
            raise VerifyError(old, "the new garden refers to a value outside itself (a YAML "
                                   f"alias, line {new.fm_line_offset + node.start_mark.line + 1})")
        if isinstance(node, yaml.SequenceNode):
            todo.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            todo.extend(n for pair in node.value for n in pair)


def _garden_difference(expected: Garden, got: Garden | None) -> str:
    if got is None:
        return "no garden read back"
    for name in Garden.model_fields:
        a, b = getattr(expected, name), getattr(got, name)
        if a != b:
            return f"{name}: meant {a!r}, read {b!r}"[:500]
    return "unknown difference"  # pragma: no cover - the models compared unequal


def verify_scalar(old: Document, new_text: str, keys: Sequence[str], value: str) -> None:
    """Raise VerifyError unless ``new_text`` is ``old`` with only ``keys`` set to ``value``."""
    try:
        edit = scalar_edit(old, keys, value)
    except yaml_text.SpliceError as exc:
        raise VerifyError(old, f"cannot set {'.'.join(keys)}: {exc}") from None
    _kept(old, new_text, edit.start, edit.end)
    new = _reparse(old, new_text)
    expected = set_nested(old.data, keys, value)
    if not same(expected, new.data):
        raise VerifyError(old, f"setting {'.'.join(keys)} changed more than that value: "
                               + _first_difference(expected, new.data))


def verify_append(old: Document, new_text: str, append: Append) -> None:
    """Raise VerifyError unless ``new_text`` is ``old`` with only ``append``'s item added."""
    _kept(old, new_text, append.edit.start, append.edit.end)
    new = _reparse(old, new_text)
    expected = append.expected(old.data)
    if not same(expected, new.data):
        raise VerifyError(old, f"adding to {'.'.join(append.keys)} changed more than that "
                               "list: " + _first_difference(expected, new.data))
