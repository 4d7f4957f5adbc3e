"""The only module that knows how YAML text is laid out: find the garden, render it, splice it in.

A pattern file is written by people; the gardener may rewrite exactly one region of it, the
``graph_garden`` block, and must leave every other byte alone (banners, quoting, folded
scalars, flow lists, indentation, CRLF, the body). So nothing here re-serializes YAML: the
block is located through the composed node tree's marks, rendered as text in the style the
file already uses, and pasted between the untouched bytes before and after it. Inside the
block, whatever still means the same (a whole unchanged garden, an unchanged section, an
unchanged item) keeps its original bytes, so an unchanged garden writes no diff at all.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import yaml

from gardener.library.document import Document
from gardener.model import Community, Entity, Garden, Link

if TYPE_CHECKING:
    from gardener.library.garden import GardenReading

GARDEN_KEY = "graph_garden"
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
RELATIONSHIPS_KEY = "relationships"

Item = Entity | Community | Link

try:  # the C loader is much faster for checking reused item text
    _CheckLoader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _CheckLoader = yaml.SafeLoader


class SpliceError(Exception):
    """The file's layout does not allow a safe splice; the message names the file."""

    def __init__(self, doc: Document, message: str, offset: int | None = None) -> None:
        where = str(doc.path)
        if offset is not None:
            where += f":{doc.text.count(chr(10), 0, offset) + 1}"
        super().__init__(f"{where}: {message}")
        self.path = doc.path


@dataclass(frozen=True)
class Style:
    """How the file lays out its YAML, so that a rendered block looks like the rest of it."""

    indent: int = 2
    """Columns from a key to the keys of its nested mapping."""
    seq_indent: int = 2
    """Columns from a key to the ``-`` of its block sequence (0: ``-`` under the key)."""
    newline: str = "\n"
    column: int = 0
    """Column of the top-level keys (0 in every real file)."""


SEED_STYLE = Style()


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
# Locating text
# ---------------------------------------------------------------------------------------------

def _line_start(text: str, i: int) -> int:
    return text.rfind("\n", 0, i) + 1


def _line_end(text: str, i: int) -> int:
    """Offset just past the newline of the line holding offset ``i``."""
    j = text.find("\n", i)
    return len(text) if j < 0 else j + 1


def _is_filler(line: str) -> bool:
    """Blank and comment-only lines: they sit between values and belong to none of them."""
    s = line.strip()
    return not s or s.startswith("#")


def _scalar_end(fm: str, node: yaml.Node) -> int:
    """End of a scalar or flow collection; block scalars lose their trailing blank lines."""
    end = int(node.end_mark.index)
    if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
        start = int(node.start_mark.index)
        while end > start and fm[end - 1] in " \t\r\n":
            end -= 1
    return end


def _deep_end(fm: str, node: yaml.Node) -> int:
    """Offset just past the last character that belongs to a node's value.

    PyYAML's end marks of block collections point at the next token, past any comments and
    blank lines, so a block collection ends where its last child does. Children come in
    file order except aliases, which carry their anchor's earlier marks: then all count.
    """
    if isinstance(node, yaml.ScalarNode) or getattr(node, "flow_style", False):
        return _scalar_end(fm, node)
    children: list[yaml.Node] = (
        [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode)
        else list(node.value))
    if not children:
        return int(node.start_mark.index)
    marks = [int(c.start_mark.index) for c in children]
    if all(a < b for a, b in itertools.pairwise(marks)):
        return max(int(node.start_mark.index), _deep_end(fm, children[-1]))
    return max(int(node.start_mark.index), *(_deep_end(fm, c) for c in children))


def _region_end(fm: str, start: int, node: yaml.Node, limit: int, item: bool = False) -> int:
    """End of the last line before ``limit`` carrying the value owned by the line at ``start``.

    Lines after the value that are blank or comments only (the next group's banner) are not
    part of it. A more indented content line before ``limit`` is (an alias, whose node marks
    lie elsewhere); a line at the owner's column or left of it is a sibling's.
    """
    content = _deep_end(fm, node)
    end = _line_end(fm, content - 1) if content > start else _line_end(fm, start)
    end = min(end, max(limit, start))
    column = _lead(fm[start:end])
    pos = end
    while pos < limit:
        nxt = min(_line_end(fm, pos), limit)
        line = fm[pos:nxt]
        if not _is_filler(line):
            lead = _lead(line)
            if lead < column or (lead == column and (item or not line[lead:].startswith("-"))):
                break
            end = nxt
        pos = nxt
    return end


def _key_name(node: yaml.Node) -> str | None:
    return node.value if isinstance(node, yaml.ScalarNode) else None


def _root(doc: Document) -> yaml.MappingNode | None:
    root = doc.root
    if root is not None and root.flow_style:
        raise SpliceError(doc, "the front matter is one flow mapping ({...}); cannot edit it "
                          "line by line", doc.fm_start)
    return root


def _pair_limits(node: yaml.MappingNode, fm: str, limit: int) -> list[int]:
    """For each pair of a block mapping, the line start of the next key (or ``limit``)."""
    starts = [_line_start(fm, int(k.start_mark.index)) for k, _ in node.value]
    return [*starts[1:], limit]


def locate(doc: Document) -> Block:
    """The garden block of a document, or the empty span where a new one would be inserted."""
    fm = doc.front_matter
    base = doc.fm_start
    root = _root(doc)
    if root is None:
        return Block(doc.fm_end, doc.fm_end, present=False)
    limits = _pair_limits(root, fm, len(fm))
    for (knode, vnode), limit in zip(root.value, limits, strict=True):
        if _key_name(knode) != GARDEN_KEY:
            continue
        start = _line_start(fm, int(knode.start_mark.index))
        end = _region_end(fm, start, vnode, limit)
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
            s, e = int(knode.start_mark.index), _deep_end(fm, vnode)
            out.append(Section(_key_name(knode) or fm[s:int(knode.end_mark.index)],
                               knode, vnode, base + s, base + e, fm[s:e]))
        return tuple(out)
    for (knode, vnode), lim in zip(node.value, _pair_limits(node, fm, limit), strict=True):
        s = _line_start(fm, int(knode.start_mark.index))
        e = _region_end(fm, s, vnode, lim)
        out.append(Section(_key_name(knode) or fm[int(knode.start_mark.index):
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
        end = _line_end(fm, cur)
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
    limits = _pair_limits(root, fm, len(fm))
    for (knode, vnode), limit in zip(root.value, limits, strict=True):
        if _key_name(knode) == RELATIONSHIPS_KEY:
            end = _region_end(fm, _line_start(fm, int(knode.start_mark.index)), vnode, limit)
            return _past_garden_banner(fm, end)
    for knode, _ in root.value:
        if _key_name(knode) in PROVENANCE_KEYS:
            pos = _line_start(fm, int(knode.start_mark.index))
            while pos > 0:
                prev = _line_start(fm, pos - 1)
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
        starts.append(_dash_line(fm, item) if here > prev else None)
        prev = max(prev, here)
    out: list[str | None] = []
    for i, (item, start) in enumerate(zip(node.value, starts, strict=True)):
        if start is None:
            out.append(None)
            continue
        nxt = next((s for s in starts[i + 1:] if s is not None), limit)
        out.append(fm[start:_region_end(fm, start, item, nxt, item=True)])
    return out


def _dash_line(fm: str, item: yaml.Node) -> int | None:
    """Line start of the ``-`` that introduces a block sequence item."""
    i = int(item.start_mark.index)
    if isinstance(item, yaml.ScalarNode) and i == int(item.end_mark.index) and fm[i - 1:i] == "-":
        return _line_start(fm, i)  # an empty item: '-' then nothing
    j = i - 1
    while j >= 0 and fm[j] in " \t\r\n":
        j -= 1
    if j < 0 or fm[j] != "-":
        return None
    return _line_start(fm, j)


def line_of(doc: Document, node: yaml.Node) -> int:
    """The 1-based file line of a node, counted as editors count lines."""
    return doc.text.count("\n", 0, doc.fm_start + int(node.start_mark.index)) + 1


# ---------------------------------------------------------------------------------------------
# Style
# ---------------------------------------------------------------------------------------------

def _pairs_in_order(node: yaml.Node, depth: int = 0) -> Iterator[tuple[yaml.Node, yaml.Node]]:
    if depth > 64:
        return
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            yield k, v
            yield from _pairs_in_order(v, depth + 1)
    elif isinstance(node, yaml.SequenceNode):
        for v in node.value:
            yield from _pairs_in_order(v, depth + 1)


def _indents(node: yaml.Node) -> tuple[int | None, int | None]:
    """(nested-mapping indent, sequence indent) as first used under ``node``, if ever."""
    indent: int | None = None
    seq: int | None = None
    for k, v in _pairs_in_order(node):
        if getattr(v, "flow_style", True) or not v.value:
            continue
        if indent is None and isinstance(v, yaml.MappingNode):
            d = int(v.start_mark.column) - int(k.start_mark.column)
            if d > 0 and v.start_mark.line > k.start_mark.line:
                indent = d
        if seq is None and isinstance(v, yaml.SequenceNode):
            d = int(v.start_mark.column) - int(k.start_mark.column)
            if d >= 0 and v.start_mark.line > k.start_mark.line:
                seq = d
        if indent is not None and seq is not None:
            break
    return indent, seq


def detect_style(doc: Document) -> Style:
    """The garden's own layout where it shows one, else the front matter's, else the seed's."""
    root = doc.root
    if root is None or not isinstance(root, yaml.MappingNode) or not root.value:
        return Style(newline=doc.newline)
    column = int(root.value[0][0].start_mark.column)
    garden: yaml.Node | None = next(
        (v for k, v in root.value if _key_name(k) == GARDEN_KEY), None)
    indent: int | None = None
    seq: int | None = None
    if garden is not None and isinstance(garden, yaml.MappingNode) and not garden.flow_style \
            and garden.value:
        garden_key = next(k for k, v in root.value if v is garden)
        indent = int(garden.start_mark.column) - int(garden_key.start_mark.column)
        indent = indent if indent > 0 else None
        seq = _indents(garden)[1]
    if indent is None or seq is None:
        fm_indent, fm_seq = _indents(root)
        indent = indent if indent is not None else fm_indent
        seq = seq if seq is not None else fm_seq
    return Style(indent=indent if indent is not None else SEED_STYLE.indent,
                 seq_indent=seq if seq is not None else SEED_STYLE.seq_indent,
                 newline=doc.newline, column=column)


# ---------------------------------------------------------------------------------------------
# Rendering scalars
# ---------------------------------------------------------------------------------------------

_ESCAPES = {
    "\0": "\\0", "\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v", "\f": "\\f",
    "\r": "\\r", "\x1b": "\\e", '"': '\\"', "\\": "\\\\", "\x85": "\\N", "\u2028": "\\L",
    "\u2029": "\\P", "\ufeff": "\\uFEFF",
}


def _printable(c: str) -> bool:
    o = ord(c)
    return (0x20 <= o <= 0x7E or 0xA0 <= o <= 0xD7FF or 0xE000 <= o <= 0xFFFD
            or 0x10000 <= o <= 0x10FFFF)


_AS_IS = re.compile("[\x20\x21\x23-\x5b\x5d-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe"
                    "\uff00-\ufffd\U00010000-\U0010ffff]*\\Z")
"""Text that goes between the quotes unchanged: printable (``_printable``) and not one of
``_ESCAPES``. Most values are: one regular-expression match instead of a test per
character (a tenth of a pattern's splice)."""


def quote(value: str) -> str:
    """A YAML double-quoted scalar on one line; every reader gets back exactly ``value``."""
    if _AS_IS.match(value):
        return f'"{value}"'
    out = ['"']
    for c in value:
        esc = _ESCAPES.get(c)
        if esc is not None:
            out.append(esc)
        elif _printable(c):
            out.append(c)
        elif ord(c) <= 0xFF:
            out.append(f"\\x{ord(c):02X}")
        elif ord(c) <= 0xFFFF:
            out.append(f"\\u{ord(c):04X}")
        else:  # pragma: no cover - every non-BMP code point is printable
            out.append(f"\\U{ord(c):08X}")
    out.append('"')
    return "".join(out)


_PLAIN_SAFE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*\Z")
_RESOLVER = yaml.resolver.Resolver()
_STR_TAG = "tag:yaml.org,2002:str"


@lru_cache(maxsize=8192)
def _plain_ok(value: str) -> bool:
    """A slug-like word that every YAML 1.1 reader takes back as this same string."""
    if not _PLAIN_SAFE.match(value):
        return False
    tag = _RESOLVER.resolve(yaml.ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
    return bool(tag == _STR_TAG)


def word(value: str) -> str:
    """Ids, slugs and types: plain when that is unambiguous, quoted otherwise."""
    return value if _plain_ok(value) else quote(value)


def number(value: float) -> str:
    """The shortest text that reads back as this float (0.95, 1.0), and always as a float."""
    x = float(value)
    if math.isnan(x):
        return ".nan"
    if math.isinf(x):
        return ".inf" if x > 0 else "-.inf"
    text = repr(x)
    if "e" in text and "." not in text.split("e")[0]:
        mantissa, exp = text.split("e")
        text = f"{mantissa}.0e{exp if exp[0] in '+-' else '+' + exp}"
    return text


def date(value: dt.date | None) -> str:
    return "null" if value is None else value.isoformat()


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
    return all(_is_filler(line) or line.startswith(pad + " ") for line in rest.split("\n"))


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
    return "\n".join(line[min(column, _lead(line)):] for line in text.split("\n"))


def _place(text: str, column: int, newline: str) -> str:
    """Verbatim text of a key this tool does not know, at ``column``."""
    pad = " " * column
    return "".join((pad + line if line else line) + newline for line in text.split("\n"))


def _lead(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


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
    root = _root(doc)
    if root is None:
        lines = _nested_lines(keys, value, 0, style)
        return Edit(doc.fm_end, doc.fm_end, "".join(line + nl for line in lines))
    node: yaml.Node = root
    limit = len(fm)
    for depth, key in enumerate(keys):
        assert isinstance(node, yaml.MappingNode)
        limits = _pair_limits(node, fm, limit) if not node.flow_style else [limit] * len(
            node.value)
        found = next(((k, v, lim) for (k, v), lim in zip(node.value, limits, strict=True)
                      if _key_name(k) == key), None)
        path = ".".join(keys[:depth + 1])
        if found is None:
            if node.flow_style:
                raise SpliceError(doc, f"cannot add '{path}' inside a flow mapping ({{...}})",
                                  base + int(node.start_mark.index))
            column = int(node.value[0][0].start_mark.column)
            start = _line_start(fm, int(node.start_mark.index))
            pos = _region_end(fm, start, node, limit)
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
            s, e = int(vnode.start_mark.index), _scalar_end(fm, vnode)
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
        e = _deep_end(fm, vnode)
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
        keys = [_key_name(k) for k, _ in node.value]
        ref = next((r for r in _REF_KEYS if r in keys), "slug")
        return _ItemShape("flow" if node.flow_style else "block", ref)
    return None


def _sibling_shape(group: yaml.MappingNode) -> _ItemShape | None:
    """The shape of the first item of any human list in ``group``: new items look the same."""
    for k, v in group.value:
        if _key_name(k) in HUMAN_LIST_KEYS and isinstance(v, yaml.SequenceNode) and v.value:
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
    start = _dash_line(fm, item)
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
    name = _key_name(key)
    if isinstance(value, yaml.SequenceNode) and value.value and value.flow_style:
        last = value.value[-1]
        at = _deep_end(fm, last)
        return Edit(base + at, base + at, ", " + _flow_item(shape, target, weight))
    if isinstance(value, yaml.SequenceNode) and value.value:
        last = value.value[-1]
        column = _dash_column(fm, last)
        if column is None:
            raise SpliceError(doc, f"cannot find the '-' of the last item of '{name}'",
                              base + int(last.start_mark.index))
        start = _line_start(fm, int(key.start_mark.index))
        at = _region_end(fm, start, value, limit)
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
    e = max(s, _deep_end(fm, value))
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
    limits = _pair_limits(group, fm, limit)
    pairs: list[tuple[yaml.Node, yaml.Node, int]] = [
        (k, v, lim) for (k, v), lim in zip(group.value, limits, strict=True)]
    k, v, lim = next((p for p in pairs if p[0] is after), pairs[-1])
    at = _region_end(fm, _line_start(fm, int(k.start_mark.index)), v, lim)
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
    root = _root(doc)
    fm = doc.front_matter
    base = doc.fm_start
    if root is None or not root.value:
        raise SpliceError(doc, "the front matter is empty; nothing to add a relationship to")
    style = detect_style(doc)
    limits = _pair_limits(root, fm, len(fm))
    top = [(k, v, lim) for (k, v), lim in zip(root.value, limits, strict=True)]
    group = next(((k, v, lim) for k, v, lim in top if _key_name(k) == RELATIONSHIPS_KEY), None)
    if group is not None:
        gkey, gvalue, glimit = group
        if isinstance(gvalue, yaml.MappingNode) and gvalue.value:
            if gvalue.flow_style:
                raise SpliceError(doc, "'relationships' is a flow mapping ({...}); cannot add "
                                  "to it line by line", base + int(gvalue.start_mark.index))
            shape = _sibling_shape(gvalue) or _SEED_SHAPE
            seq = _indents(gvalue)[1]
            seq_indent = seq if seq is not None else style.seq_indent
            inner = _pair_limits(gvalue, fm, glimit)
            for (k, v), lim in zip(gvalue.value, inner, strict=True):
                if _key_name(k) == kind:
                    shape = _list_shape(v, shape)
                    edit = _append_to_list(doc, k, v, lim, shape, target, weight, seq_indent)
                    return Append(edit, (RELATIONSHIPS_KEY, kind), _new_item(shape, target,
                                                                              weight))
            edit = _new_key(doc, gvalue, glimit, kind, shape, target, weight, seq_indent)
            return Append(edit, (RELATIONSHIPS_KEY, kind), _new_item(shape, target, weight),
                          after=_key_name(gvalue.value[-1][0]))
        if not (_is_null(gvalue) or (isinstance(gvalue, yaml.MappingNode) and not gvalue.value)):
            raise SpliceError(doc, f"'relationships' holds a {_kind(gvalue)}, not a mapping",
                              base + int(gvalue.start_mark.index))
        colon = fm.find(":", int(gkey.end_mark.index))
        s = colon + 1 if colon >= 0 else int(gkey.end_mark.index)
        e = max(s, _deep_end(fm, gvalue))
        column = int(gkey.start_mark.column) + style.indent
        lines = [f"{' ' * column}{word(kind)}:",
                 *_item_lines(_SEED_SHAPE, target, weight, column + style.seq_indent)]
        return Append(Edit(base + s, base + e, "".join(doc.newline + ln for ln in lines)),
                      (RELATIONSHIPS_KEY, kind), _new_item(_SEED_SHAPE, target, weight))
    flat = [(k, v, lim) for k, v, lim in top if _key_name(k) in HUMAN_LIST_KEYS]
    if not flat:
        raise SpliceError(doc, "no human relationships group ('relationships:' or top-level "
                          "relationship lists) to add to", doc.fm_start)
    shape = _sibling_shape(root) or _ItemShape("plain")
    for k, v, lim in flat:
        if _key_name(k) == kind:
            shape = _list_shape(v, shape)
            edit = _append_to_list(doc, k, v, lim, shape, target, weight, style.seq_indent)
            return Append(edit, (kind,), _new_item(shape, target, weight))
    edit = _new_key(doc, root, len(fm), kind, shape, target, weight, style.seq_indent,
                    after=flat[-1][0])
    return Append(edit, (kind,), _new_item(shape, target, weight),
                  after=_key_name(flat[-1][0]))
