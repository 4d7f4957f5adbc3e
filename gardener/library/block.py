"""The ``graph_garden`` block of a pattern file as it stands: where it is, its sections, each
item's exact lines.

Reading a garden (``gardener.library.garden``) and rendering one (``gardener.steps.splice``)
both need this map of the file; it lives with the reading, so the renderer depends on the
reader and never the other way round. Everything is found through the composed node tree's
marks: nothing re-serializes YAML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

from gardener.library.document import Document
from gardener.library.yaml_text import (
    GARDEN_KEY,
    RELATIONSHIPS_KEY,
    dash_line,
    deep_end,
    editable_root,
    key_name,
    leading_spaces,
    line_end,
    line_start,
    pair_limits,
    region_end,
)
from gardener.model import Community, Entity, Link

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
PROVENANCE_KEYS = frozenset({"contributors", "sources", "license", "attribution"})


Item = Entity | Community | Link


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


def extra_text(section: Section) -> str:
    """The text of a key this tool does not know, relative to its own column.

    Stored without the block's indentation and line endings so that a garden reads back
    equal whether it sat in a flow mapping, at another indentation, or in a CRLF file.
    """
    column = int(section.key_node.start_mark.column)
    text = section.text.replace("\r\n", "\n")
    text = text.removesuffix("\n")
    return "\n".join(line[min(column, leading_spaces(line)):] for line in text.split("\n"))
