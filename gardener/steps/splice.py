"""The ``graph_garden`` block: find it, render it, splice it in.

A pattern file is written by people; the gardener may rewrite exactly one region of it, the
``graph_garden`` block, and must leave every other byte alone (banners, quoting, folded
scalars, flow lists, indentation, CRLF, the body). So nothing here re-serializes YAML: the
block is located through the composed node tree's marks, rendered as text in the style the
file already uses (``yaml_text``), and pasted between the untouched bytes before and after it.
Inside the block, whatever still means the same (a whole unchanged garden, an unchanged
section, an unchanged item) keeps its original bytes, so an unchanged garden writes no diff.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from gardener.library.document import Document
from gardener.model import Community, Entity, Garden, Link
from gardener.steps.yaml_text import (
    GARDEN_KEY,
    RELATIONSHIPS_KEY,
    SEED_STYLE,
    Style,
    dash_line,
    date,
    deep_end,
    detect_style,
    editable_root,
    is_filler,
    key_name,
    leading_spaces,
    line_end,
    line_start,
    number,
    pair_limits,
    quote,
    region_end,
    word,
)

if TYPE_CHECKING:
    from gardener.library.garden import GardenReading


SECTION_KEYS: tuple[str, ...] = (
    "last_pruned", "entities", "communities", "inferred_links", "vitality_reasoning")
"""The garden keys this tool writes, in the order it writes them."""
LIST_KEYS: tuple[str, ...] = ("entities", "communities", "inferred_links")
ITEM_FIELDS: dict[str, tuple[str, ...]] = {
    "entities": ("id", "type", "label", "relevance"),
    "communities": ("id", "label", "source", "confidence"),
    "inferred_links": ("target", "type", "confidence", "reason"),
}
"""Per list, the item keys in the seed's order; which of them are prose decides the quoting."""
QUOTED_FIELDS = frozenset({"label", "reason"})
PROVENANCE_KEYS = frozenset({"contributors", "sources", "license", "attribution"})

Item = Entity | Community | Link

try:  # the C loader is much faster for checking reused item text
    _CheckLoader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _CheckLoader = yaml.SafeLoader


@dataclass(frozen=True)
class Section:
    """One key of the garden mapping and the exact text it occupies."""

    key: str
    key_node: yaml.Node
    value_node: yaml.Node
    start: int
    """Offset in ``doc.text`` of the key line (of the key, in a flow mapping)."""
    end: int
    """Offset in ``doc.text`` just past the last line of the value (past the value, in flow)."""
    text: str


@dataclass(frozen=True)
class Block:
    """Where the garden is, or would go: a splice replaces ``doc.text[start:end]``."""

    start: int
    end: int
    present: bool
    key_node: yaml.Node | None = None
    value_node: yaml.Node | None = None
    sections: tuple[Section, ...] = ()

    @property
    def block_mapping(self) -> bool:
        """True when the garden is a block mapping, whose sections are whole lines."""
        node = self.value_node
        return isinstance(node, yaml.MappingNode) and not node.flow_style

    def section(self, key: str) -> Section | None:
        return next((s for s in self.sections if s.key == key), None)


# ---------------------------------------------------------------------------------------------
# Locating the garden
# ---------------------------------------------------------------------------------------------

def locate(doc: Document) -> Block:
    """The garden block of a document, or the empty span where a new one would be inserted."""
    fm = doc.front_matter
    base = doc.fm_start
    root = editable_root(doc)
    if root is None:
        return Block(doc.fm_end, doc.fm_end, present=False)
    limits = pair_limits(root, fm, len(fm))
    for (knode, vnode), limit in zip(root.value, limits, strict=True):
        if key_name(knode) != GARDEN_KEY:
            continue
        start = line_start(fm, int(knode.start_mark.index))
        end = region_end(fm, start, vnode, limit)
        sections = _sections(fm, base, vnode, end)
        return Block(base + start, base + end, True, knode, vnode, sections)
    pos = _insertion_point(fm, root)
    return Block(base + pos, base + pos, present=False)


def _sections(fm: str, base: int, node: yaml.Node, limit: int) -> tuple[Section, ...]:
    if not isinstance(node, yaml.MappingNode) or not node.value:
        return ()
    out: list[Section] = []
    if node.flow_style:
        for knode, vnode in node.value:
            s, e = int(knode.start_mark.index), deep_end(fm, vnode)
            out.append(Section(key_name(knode) or fm[s:int(knode.end_mark.index)],
                               knode, vnode, base + s, base + e, fm[s:e]))
        return tuple(out)
    for (knode, vnode), lim in zip(node.value, pair_limits(node, fm, limit), strict=True):
        s = line_start(fm, int(knode.start_mark.index))
        e = region_end(fm, s, vnode, lim)
        out.append(Section(key_name(knode) or fm[int(knode.start_mark.index):
                                                  int(knode.end_mark.index)],
                           knode, vnode, base + s, base + e, fm[s:e]))
    return tuple(out)


_GARDEN_BANNER = re.compile(r"^\s*#.*\b(GRAPH GARDEN|GROUP 6)\b", re.IGNORECASE)
_RULE = re.compile(r"^\s*#\s*[═=─\-~*#]{3,}\s*$")


def _past_garden_banner(fm: str, pos: int) -> int:
    """Where a missing garden goes within the comment lines at ``pos``: after a group-6 banner
    (``# GROUP 6: GRAPH GARDEN`` and its closing rule) when they hold one, else ``pos``."""
    lines: list[tuple[int, int]] = []
    cur = pos
    while cur < len(fm):
        end = line_end(fm, cur)
        text = fm[cur:end].strip()
        if text and not text.startswith("#"):
            break
        lines.append((cur, end))
        cur = end
    for i, (start, end) in enumerate(lines):
        if _GARDEN_BANNER.match(fm[start:end]):
            if i + 1 < len(lines) and _RULE.match(fm[lines[i + 1][0]:lines[i + 1][1]]):
                return lines[i + 1][1]
            return end
    return pos


def _insertion_point(fm: str, root: yaml.MappingNode) -> int:
    """After group 5 (relationships), else before group 7's first key and its banner, else last;
    a group-6 banner with no garden under it gets the garden."""
    limits = pair_limits(root, fm, len(fm))
    for (knode, vnode), limit in zip(root.value, limits, strict=True):
        if key_name(knode) == RELATIONSHIPS_KEY:
            end = region_end(fm, line_start(fm, int(knode.start_mark.index)), vnode, limit)
            return _past_garden_banner(fm, end)
    for knode, _ in root.value:
        if key_name(knode) in PROVENANCE_KEYS:
            pos = line_start(fm, int(knode.start_mark.index))
            while pos > 0:
                prev = line_start(fm, pos - 1)
                if not fm[prev:pos].strip().startswith("#"):
                    break
                pos = prev
            return _past_garden_banner(fm, pos)
    return len(fm)


def item_texts(doc: Document, section: Section) -> list[str | None]:
    """Each item's exact lines, from its ``-`` line to its last value line (None in flow lists)."""
    node = section.value_node
    if not isinstance(node, yaml.SequenceNode):
        return []
    if node.flow_style:
        return [None] * len(node.value)
    fm = doc.front_matter
    limit = section.end - doc.fm_start
    starts: list[int | None] = []
    prev = int(section.key_node.end_mark.index)
    for item in node.value:
        here = int(item.start_mark.index)
        # an alias (``- *x``) carries the marks of its anchor, earlier in the file: no own text
        starts.append(dash_line(fm, item) if here > prev else None)
        prev = max(prev, here)
    out: list[str | None] = []
    for i, (item, start) in enumerate(zip(node.value, starts, strict=True)):
        if start is None:
            out.append(None)
            continue
        nxt = next((s for s in starts[i + 1:] if s is not None), limit)
        out.append(fm[start:region_end(fm, start, item, nxt, item=True)])
    return out


# ---------------------------------------------------------------------------------------------
# Rendering the garden
# ---------------------------------------------------------------------------------------------

def _fits(text: str, column: int, newline: str) -> bool:
    """Item text that can stand at ``column`` in a file with this newline, as it is."""
    if not text.endswith("\n"):
        return False
    if newline == "\n":
        if "\r" in text:
            return False
    elif text.count("\n") != text.count("\r\n"):
        return False
    first, _, rest = text.partition("\n")
    pad = " " * column
    if not (first.startswith(pad + "-") and first[column + 1:column + 2] in ("", " ", "\r")):
        return False
    return all(is_filler(line) or line.startswith(pad + " ") for line in rest.split("\n"))


def _check_loader_parse(text: str) -> Any:
    return yaml.load(text, Loader=_CheckLoader)


def _reusable(kind: str, items: Sequence[Item], column: int, newline: str) -> list[bool]:
    """Which items' original text still says exactly what the item says (read back, compared).

    Callers derive items with ``model_copy(update=...)``, which keeps the old ``text``: it is
    reused only when reading it back gives an equal item.
    """
    from gardener.library.garden import item_from_data

    ok = [False] * len(items)
    idx = [i for i, it in enumerate(items)
           if it.text is not None and _fits(it.text, column, newline)]
    if not idx:
        return ok
    parsed: list[Any] | None = None
    try:
        data = _check_loader_parse("".join(items[i].text or "" for i in idx))
        if isinstance(data, list) and len(data) == len(idx):
            parsed = data
    except yaml.YAMLError:
        parsed = None
    for n, i in enumerate(idx):
        if parsed is not None:
            value = parsed[n]
        else:
            try:
                one = _check_loader_parse(items[i].text or "")
            except yaml.YAMLError:
                continue
            if not (isinstance(one, list) and len(one) == 1):
                continue
            value = one[0]
        model, _ = item_from_data(kind, value)
        ok[i] = model is not None and model == items[i]
    return ok


def _render_item(kind: str, item: Item, column: int, newline: str) -> str:
    pad = " " * column
    lines: list[str] = []
    for name in ITEM_FIELDS[kind]:
        value = getattr(item, name)
        if value is None:
            continue
        if isinstance(value, float | int) and not isinstance(value, bool):
            text = number(value)
        elif name in QUOTED_FIELDS:
            text = quote(str(value))
        else:
            text = word(str(value))
        lines.append(f"{name}: {text}")
    first, *rest = lines
    out = [f"{pad}- {first}{newline}"]
    out.extend(f"{pad}  {line}{newline}" for line in rest)
    return "".join(out)


def _render_list(kind: str, items: Sequence[Item], style: Style) -> str:
    col = style.column + style.indent
    nl = style.newline
    if not items:
        return f"{' ' * col}{kind}: []{nl}"
    item_col = col + style.seq_indent
    reuse = _reusable(kind, items, item_col, nl)
    out = [f"{' ' * col}{kind}:{nl}"]
    for item, keep in zip(items, reuse, strict=True):
        out.append(item.text if keep and item.text is not None
                   else _render_item(kind, item, item_col, nl))
    return "".join(out)


def extra_text(section: Section) -> str:
    """The text of a key this tool does not know, relative to its own column.

    Stored without the block's indentation and line endings so that a garden reads back
    equal whether it sat in a flow mapping, at another indentation, or in a CRLF file.
    """
    column = int(section.key_node.start_mark.column)
    text = section.text.replace("\r\n", "\n")
    text = text.removesuffix("\n")
    return "\n".join(line[min(column, leading_spaces(line)):] for line in text.split("\n"))


def _place(text: str, column: int, newline: str) -> str:
    """Verbatim text of a key this tool does not know, at ``column``."""
    pad = " " * column
    return "".join((pad + line if line else line) + newline for line in text.split("\n"))


def _render_block(garden: Garden, style: Style, reuse: dict[str, str]) -> str:
    nl = style.newline
    col = style.column + style.indent
    out = [f"{' ' * style.column}{GARDEN_KEY}:{nl}"]
    for key in SECTION_KEYS:
        if key in reuse:
            out.append(reuse[key])
        elif key == "last_pruned":
            out.append(f"{' ' * col}last_pruned: {date(garden.last_pruned)}{nl}")
        elif key in LIST_KEYS:
            out.append(_render_list(key, getattr(garden, key), style))
        elif garden.vitality_reasoning is not None:
            out.append(f"{' ' * col}vitality_reasoning: {quote(garden.vitality_reasoning)}{nl}")
    out.extend(_place(text, col, nl) for _, text in garden.extra)
    return "".join(out)


def render_garden(garden: Garden, style: Style = SEED_STYLE) -> str:
    """The ``graph_garden`` block as text in the seed's shape, laid out in ``style``."""
    return _render_block(garden, style, {})


# ---------------------------------------------------------------------------------------------
# Splicing
# ---------------------------------------------------------------------------------------------

def _section_equal(key: str, old: Garden, new: Garden) -> bool:
    return bool(getattr(old, key) == getattr(new, key))


def _reusable_sections(block: Block, reading: GardenReading, garden: Garden) -> dict[str, str]:
    """Old section text for every known section whose meaning is unchanged and fully kept."""
    old = reading.garden
    if old is None or not block.block_mapping:
        return {}
    out: dict[str, str] = {}
    for sec in block.sections:
        if sec.key not in SECTION_KEYS or sec.key in reading.dropped or sec.key in out:
            continue
        if sec.key == "vitality_reasoning" and garden.vitality_reasoning is None:
            continue
        if _section_equal(sec.key, old, garden):
            out[sec.key] = sec.text
    return out


def splice(doc: Document, garden: Garden) -> str:
    """The whole file text with the garden block replaced (or inserted) and nothing else touched.

    A garden that reads back equal to the file's keeps the file as it is, byte for byte.
    """
    from gardener.library.garden import read_detailed

    block = locate(doc)
    style = detect_style(doc)
    if not block.present:
        new = render_garden(garden, style)
        return doc.text[:block.start] + new + doc.text[block.end:]
    reading = read_detailed(doc)
    if reading.garden == garden and not reading.dropped:
        return doc.text
    new = _render_block(garden, style, _reusable_sections(block, reading, garden))
    return doc.text[:block.start] + new + doc.text[block.end:]
