"""Edits outside the garden: one nested scalar set, one human relationship added.

Besides its own ``graph_garden`` block, the gardener changes a pattern file in two small ways:
it sets one nested scalar (the vitality assessment) and, when a reviewer promotes a
suggestion, adds one item to a human relationship list. Both are single pastes between
untouched bytes, laid out like their neighbours (``yaml_text``), so only the lines of that
key or that list change and the parsed front matter reads back as expected.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from gardener.library.document import Document
from gardener.library.yaml_text import (
    RELATIONSHIPS_KEY,
    SpliceError,
    Style,
    dash_line,
    deep_end,
    detect_style,
    editable_root,
    indents,
    key_name,
    line_start,
    number,
    pair_limits,
    quote,
    region_end,
    scalar_end,
    word,
)

# ---------------------------------------------------------------------------------------------
# One nested scalar
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Edit:
    """Replace ``doc.text[start:end]`` with ``text``."""

    start: int
    end: int
    text: str


def _nested_lines(keys: Sequence[str], value: str, column: int, style: Style) -> list[str]:
    lines = [f"{' ' * (column + d * style.indent)}{word(k)}:" for d, k in enumerate(keys[:-1])]
    depth = len(keys) - 1
    lines.append(f"{' ' * (column + depth * style.indent)}{word(keys[-1])}: {quote(value)}")
    return lines


def _is_null(node: yaml.Node) -> bool:
    return (isinstance(node, yaml.ScalarNode) and not node.style
            and node.value in ("", "~", "null", "Null", "NULL"))


def scalar_edit(doc: Document, keys: Sequence[str], value: str) -> Edit:
    """The one edit that sets a nested scalar (``ontology.commons_assessment.x``) to ``value``."""
    if not keys:
        raise ValueError("scalar_edit needs at least one key")
    style = detect_style(doc)
    fm = doc.front_matter
    base = doc.fm_start
    nl = style.newline
    root = editable_root(doc)
    if root is None:
        lines = _nested_lines(keys, value, 0, style)
        return Edit(doc.fm_end, doc.fm_end, "".join(line + nl for line in lines))
    node: yaml.Node = root
    limit = len(fm)
    for depth, key in enumerate(keys):
        assert isinstance(node, yaml.MappingNode)
        limits = pair_limits(node, fm, limit) if not node.flow_style else [limit] * len(
            node.value)
        found = next(((k, v, lim) for (k, v), lim in zip(node.value, limits, strict=True)
                      if key_name(k) == key), None)
        path = ".".join(keys[:depth + 1])
        if found is None:
            if node.flow_style:
                raise SpliceError(doc, f"cannot add '{path}' inside a flow mapping ({{...}})",
                                  base + int(node.start_mark.index))
            column = int(node.value[0][0].start_mark.column)
            start = line_start(fm, int(node.start_mark.index))
            pos = region_end(fm, start, node, limit)
            if pos > 0 and fm[pos - 1] != "\n":
                raise SpliceError(doc, f"cannot add '{path}': the front matter does not end "
                                  "with a line break", base + pos)
            lines = _nested_lines(keys[depth:], value, column, style)
            return Edit(base + pos, base + pos, "".join(line + nl for line in lines))
        knode, vnode, limit = found
        if int(vnode.start_mark.index) < int(knode.end_mark.index):
            raise SpliceError(doc, f"'{path}' is an alias (*name) of a value elsewhere; "
                              "edit the anchored value instead", base + int(knode.start_mark.index))
        if depth == len(keys) - 1:
            if not isinstance(vnode, yaml.ScalarNode):
                raise SpliceError(doc, f"'{path}' holds a {_kind(vnode)}, not a single value",
                                  base + int(vnode.start_mark.index))
            s, e = int(vnode.start_mark.index), scalar_end(fm, vnode)
            if s == e and fm[s - 1:s] == ":":
                return Edit(base + s, base + e, " " + quote(value))
            return Edit(base + s, base + e, quote(value))
        if isinstance(vnode, yaml.MappingNode) and vnode.value:
            node = vnode
            continue
        if not (_is_null(vnode) or (isinstance(vnode, yaml.MappingNode) and not vnode.value)):
            raise SpliceError(doc, f"'{path}' holds a {_kind(vnode)}, not a mapping",
                              base + int(vnode.start_mark.index))
        if (isinstance(node, yaml.MappingNode) and node.flow_style) or (
                isinstance(vnode, yaml.MappingNode) and vnode.flow_style
                and int(vnode.start_mark.line) != int(vnode.end_mark.line)):
            raise SpliceError(doc, f"cannot add under '{path}' inside a flow mapping",
                              base + int(vnode.start_mark.index))
        # an empty value (``key:``, ``key: null``, ``key: {}``): the nested keys go right under it
        s = int(knode.end_mark.index)
        colon = fm.find(":", s)
        s = colon + 1 if colon >= 0 else s
        e = deep_end(fm, vnode)
        column = int(knode.start_mark.column) + style.indent
        lines = _nested_lines(keys[depth + 1:], value, column, style)
        return Edit(base + s, base + e, "".join(nl + line for line in lines))
    raise AssertionError("unreachable")  # pragma: no cover


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "mapping"
    if isinstance(node, yaml.SequenceNode):
        return "list"
    return "single value"


def splice_scalar(doc: Document, keys: Sequence[str], value: str) -> str:
    """The whole file text with one nested scalar set (double-quoted) and nothing else touched."""
    edit = scalar_edit(doc, keys, value)
    return doc.text[:edit.start] + edit.text + doc.text[edit.end:]


def set_nested(data: dict[str, Any], keys: Sequence[str], value: Any) -> dict[str, Any]:
    """A copy of parsed front matter with one nested value set, as ``splice_scalar`` means it."""
    out = copy.deepcopy(data)
    cur: dict[str, Any] = out
    for key in keys[:-1]:
        nxt = cur.get(key)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[key] = nxt
        cur = nxt
    cur[keys[-1]] = value
    return out


# ---------------------------------------------------------------------------------------------
# One human relationship more
# ---------------------------------------------------------------------------------------------

HUMAN_LIST_KEYS: tuple[str, ...] = (
    "generalizes_from", "specializes_to", "enables", "requires", "alternatives",
    "complementary", "tools", "related", "manifests_as", "governed_by")
"""Keys holding human relationship lists, under ``relationships:`` (v7.1) or at top level."""
_REF_KEYS = ("slug", "id", "target")


@dataclass(frozen=True)
class Append:
    """An edit adding one item to a list of the front matter, and what that item reads as."""

    edit: Edit
    keys: tuple[str, ...]
    """Where the list is: ``("relationships", "enables")``, or ``("enables",)`` when flat."""
    item: Any
    after: str | None = None
    """When the list is new: the key its own key follows in the same mapping."""

    def expected(self, data: dict[str, Any]) -> dict[str, Any]:
        """Parsed front matter as it must read after the edit (for verification)."""
        out = copy.deepcopy(data)
        parent: dict[str, Any] = out
        for key in self.keys[:-1]:
            nxt = parent.get(key)
            if not isinstance(nxt, dict):
                nxt = {}
                parent[key] = nxt
            parent = nxt
        last = self.keys[-1]
        current = parent.get(last)
        if isinstance(current, list):
            current.append(self.item)
        elif last in parent or self.after is None or self.after not in parent:
            parent[last] = [self.item]
        else:
            pairs = list(parent.items())
            at = [k for k, _ in pairs].index(self.after) + 1
            parent.clear()
            parent.update([*pairs[:at], (last, [self.item]), *pairs[at:]])
        return out


@dataclass(frozen=True)
class _ItemShape:
    form: str
    """``plain`` (a bare slug), ``block`` or ``flow`` (a mapping)."""
    ref: str = "slug"


_SEED_SHAPE = _ItemShape("block", "slug")


def _shape(node: yaml.Node) -> _ItemShape | None:
    if isinstance(node, yaml.ScalarNode):
        return _ItemShape("plain")
    if isinstance(node, yaml.MappingNode):
        keys = [key_name(k) for k, _ in node.value]
        ref = next((r for r in _REF_KEYS if r in keys), "slug")
        return _ItemShape("flow" if node.flow_style else "block", ref)
    return None


def _sibling_shape(group: yaml.MappingNode) -> _ItemShape | None:
    """The shape of the first item of any human list in ``group``: new items look the same."""
    for k, v in group.value:
        if key_name(k) in HUMAN_LIST_KEYS and isinstance(v, yaml.SequenceNode) and v.value:
            found = _shape(v.value[0])
            if found is not None:
                return found
    return None


def _list_shape(value: yaml.Node, default: _ItemShape) -> _ItemShape:
    """A list's own last item decides the new item's shape; an empty list takes ``default``."""
    if isinstance(value, yaml.SequenceNode) and value.value:
        return _shape(value.value[-1]) or default
    return default


def _new_item(shape: _ItemShape, target: str, weight: float | None) -> Any:
    if shape.form == "plain":
        return target
    return {shape.ref: target, **({"weight": weight} if weight is not None else {})}


def _flow_item(shape: _ItemShape, target: str, weight: float | None) -> str:
    if shape.form == "plain":
        return word(target)
    w = f", weight: {number(weight)}" if weight is not None else ""
    return f"{{{shape.ref}: {word(target)}{w}}}"


def _item_lines(shape: _ItemShape, target: str, weight: float | None,
                column: int) -> list[str]:
    pad = " " * column
    if shape.form != "block":
        return [f"{pad}- {_flow_item(shape, target, weight)}"]
    lines = [f"{pad}- {shape.ref}: {word(target)}"]
    if weight is not None:
        lines.append(f"{pad}  weight: {number(weight)}")
    return lines


def _dash_column(fm: str, item: yaml.Node) -> int | None:
    start = dash_line(fm, item)
    if start is None:
        return None
    return fm.index("-", start) - start


def _append_to_list(doc: Document, key: yaml.Node, value: yaml.Node, limit: int,
                    shape: _ItemShape, target: str, weight: float | None,
                    seq_indent: int) -> Edit:
    """Add one item to the list ``value`` of ``key`` (a block or flow list, or empty)."""
    fm = doc.front_matter
    base = doc.fm_start
    nl = doc.newline
    name = key_name(key)
    if isinstance(value, yaml.SequenceNode) and value.value and value.flow_style:
        last = value.value[-1]
        at = deep_end(fm, last)
        return Edit(base + at, base + at, ", " + _flow_item(shape, target, weight))
    if isinstance(value, yaml.SequenceNode) and value.value:
        last = value.value[-1]
        column = _dash_column(fm, last)
        if column is None:
            raise SpliceError(doc, f"cannot find the '-' of the last item of '{name}'",
                              base + int(last.start_mark.index))
        start = line_start(fm, int(key.start_mark.index))
        at = region_end(fm, start, value, limit)
        if at > 0 and fm[at - 1] != "\n":
            raise SpliceError(doc, f"cannot add to '{name}': the front matter does not end "
                              "with a line break", base + at)
        lines = _item_lines(shape, target, weight, column)
        return Edit(base + at, base + at, "".join(line + nl for line in lines))
    empty = (isinstance(value, yaml.SequenceNode) and not value.value) or _is_null(value)
    if not empty:
        raise SpliceError(doc, f"'{name}' holds a {_kind(value)}, not a list",
                          base + int(value.start_mark.index))
    s = int(key.end_mark.index)
    colon = fm.find(":", s)
    s = colon + 1 if colon >= 0 else s
    e = max(s, deep_end(fm, value))
    column = int(key.start_mark.column) + seq_indent
    lines = _item_lines(shape, target, weight, column)
    return Edit(base + s, base + e, "".join(nl + line for line in lines))


def _new_key(doc: Document, group: yaml.MappingNode, limit: int, kind: str,
             shape: _ItemShape, target: str, weight: float | None, seq_indent: int,
             after: yaml.Node | None = None) -> Edit:
    """A new ``kind:`` list with one item, after the pair holding ``after`` (else the last)."""
    fm = doc.front_matter
    base = doc.fm_start
    nl = doc.newline
    limits = pair_limits(group, fm, limit)
    pairs: list[tuple[yaml.Node, yaml.Node, int]] = [
        (k, v, lim) for (k, v), lim in zip(group.value, limits, strict=True)]
    k, v, lim = next((p for p in pairs if p[0] is after), pairs[-1])
    at = region_end(fm, line_start(fm, int(k.start_mark.index)), v, lim)
    if at > 0 and fm[at - 1] != "\n":
        raise SpliceError(doc, f"cannot add '{kind}': the front matter does not end with a "
                          "line break", base + at)
    column = int(k.start_mark.column)
    lines = [f"{' ' * column}{word(kind)}:",
             *_item_lines(shape, target, weight, column + seq_indent)]
    return Edit(base + at, base + at, "".join(line + nl for line in lines))


def relationship_append(doc: Document, kind: str, target: str,
                        weight: float | None) -> Append:
    """The edit adding ``target`` to the human relationships of type ``kind``.

    v7.1 files get it under ``relationships.KIND``; files in the older flat layout (human
    lists at the top level, no ``relationships:``) get it in the top-level ``KIND`` list. The
    new item looks like its neighbours (a bare slug, ``{slug, weight}`` or ``{id, weight}``,
    block or flow); only lines of that list change, or a key is added after its siblings.
    """
    root = editable_root(doc)
    fm = doc.front_matter
    base = doc.fm_start
    if root is None or not root.value:
        raise SpliceError(doc, "the front matter is empty; nothing to add a relationship to")
    style = detect_style(doc)
    limits = pair_limits(root, fm, len(fm))
    top = [(k, v, lim) for (k, v), lim in zip(root.value, limits, strict=True)]
    group = next(((k, v, lim) for k, v, lim in top if key_name(k) == RELATIONSHIPS_KEY), None)
    if group is not None:
        gkey, gvalue, glimit = group
        if isinstance(gvalue, yaml.MappingNode) and gvalue.value:
            if gvalue.flow_style:
                raise SpliceError(doc, "'relationships' is a flow mapping ({...}); cannot add "
                                  "to it line by line", base + int(gvalue.start_mark.index))
            shape = _sibling_shape(gvalue) or _SEED_SHAPE
            seq = indents(gvalue)[1]
            seq_indent = seq if seq is not None else style.seq_indent
            inner = pair_limits(gvalue, fm, glimit)
            for (k, v), lim in zip(gvalue.value, inner, strict=True):
                if key_name(k) == kind:
                    shape = _list_shape(v, shape)
                    edit = _append_to_list(doc, k, v, lim, shape, target, weight, seq_indent)
                    return Append(edit, (RELATIONSHIPS_KEY, kind), _new_item(shape, target,
                                                                              weight))
            edit = _new_key(doc, gvalue, glimit, kind, shape, target, weight, seq_indent)
            return Append(edit, (RELATIONSHIPS_KEY, kind), _new_item(shape, target, weight),
                          after=key_name(gvalue.value[-1][0]))
        if not (_is_null(gvalue) or (isinstance(gvalue, yaml.MappingNode) and not gvalue.value)):
            raise SpliceError(doc, f"'relationships' holds a {_kind(gvalue)}, not a mapping",
                              base + int(gvalue.start_mark.index))
        colon = fm.find(":", int(gkey.end_mark.index))
        s = colon + 1 if colon >= 0 else int(gkey.end_mark.index)
        e = max(s, deep_end(fm, gvalue))
        column = int(gkey.start_mark.column) + style.indent
        lines = [f"{' ' * column}{word(kind)}:",
                 *_item_lines(_SEED_SHAPE, target, weight, column + style.seq_indent)]
        return Append(Edit(base + s, base + e, "".join(doc.newline + ln for ln in lines)),
                      (RELATIONSHIPS_KEY, kind), _new_item(_SEED_SHAPE, target, weight))
    flat = [(k, v, lim) for k, v, lim in top if key_name(k) in HUMAN_LIST_KEYS]
    if not flat:
        raise SpliceError(doc, "no human relationships group ('relationships:' or top-level "
                          "relationship lists) to add to", doc.fm_start)
    shape = _sibling_shape(root) or _ItemShape("plain")
    for k, v, lim in flat:
        if key_name(k) == kind:
            shape = _list_shape(v, shape)
            edit = _append_to_list(doc, k, v, lim, shape, target, weight, style.seq_indent)
            return Append(edit, (kind,), _new_item(shape, target, weight))
    edit = _new_key(doc, root, len(fm), kind, shape, target, weight, style.seq_indent,
                    after=flat[-1][0])
    return Append(edit, (kind,), _new_item(shape, target, weight),
                  after=key_name(flat[-1][0]))
