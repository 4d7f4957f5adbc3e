"""How YAML text is laid out, as the gardener reads and writes it: lines, regions, style, scalars.

Every edit the gardener makes to a pattern file is a paste between untouched bytes, never a
re-serialization, so the modules that edit (``splice`` for the garden block, ``edit`` for a
scalar or a relationship) share one knowledge of the text: where a node's lines start and end
(PyYAML's marks, corrected for comments, blank lines and aliases), which indentation and line
endings the file already uses, and how to write a scalar that every reader takes back as
exactly the value meant.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import yaml

from gardener.errors import GardenerError
from gardener.library.document import Document

GARDEN_KEY = "graph_garden"
"""The top-level key of the block only the gardener writes (its style wins in ``detect_style``)."""
RELATIONSHIPS_KEY = "relationships"
"""The top-level key of the human relationships (group 5 of a pattern file)."""


class SpliceError(GardenerError):
    """The file's layout does not allow a safe splice; the message names the file."""

    exit_code = 1  # a file could not be processed

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


# ---------------------------------------------------------------------------------------------
# Locating text
# ---------------------------------------------------------------------------------------------

def line_start(text: str, i: int) -> int:
    return text.rfind("\n", 0, i) + 1


def line_end(text: str, i: int) -> int:
    """Offset just past the newline of the line holding offset ``i``."""
    j = text.find("\n", i)
    return len(text) if j < 0 else j + 1


def is_filler(line: str) -> bool:
    """Blank and comment-only lines: they sit between values and belong to none of them."""
    s = line.strip()
    return not s or s.startswith("#")


def scalar_end(fm: str, node: yaml.Node) -> int:
    """End of a scalar or flow collection; block scalars lose their trailing blank lines."""
    end = int(node.end_mark.index)
    if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
        start = int(node.start_mark.index)
        while end > start and fm[end - 1] in " \t\r\n":
            end -= 1
    return end


def deep_end(fm: str, node: yaml.Node) -> int:
    """Offset just past the last character that belongs to a node's value.

    PyYAML's end marks of block collections point at the next token, past any comments and
    blank lines, so a block collection ends where its last child does. Children come in
    file order except aliases, which carry their anchor's earlier marks: then all count.
    """
    if isinstance(node, yaml.ScalarNode) or getattr(node, "flow_style", False):
        return scalar_end(fm, node)
    children: list[yaml.Node] = (
        [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode)
        else list(node.value))
    if not children:
        return int(node.start_mark.index)
    marks = [int(c.start_mark.index) for c in children]
    if all(a < b for a, b in itertools.pairwise(marks)):
        return max(int(node.start_mark.index), deep_end(fm, children[-1]))
    return max(int(node.start_mark.index), *(deep_end(fm, c) for c in children))


def region_end(fm: str, start: int, node: yaml.Node, limit: int, item: bool = False) -> int:
    """End of the last line before ``limit`` carrying the value owned by the line at ``start``.

    Lines after the value that are blank or comments only (the next group's banner) are not
    part of it. A more indented content line before ``limit`` is (an alias, whose node marks
    lie elsewhere); a line at the owner's column or left of it is a sibling's.
    """
    content = deep_end(fm, node)
    end = line_end(fm, content - 1) if content > start else line_end(fm, start)
    end = min(end, max(limit, start))
    column = leading_spaces(fm[start:end])
    pos = end
    while pos < limit:
        nxt = min(line_end(fm, pos), limit)
        line = fm[pos:nxt]
        if not is_filler(line):
            lead = leading_spaces(line)
            if lead < column or (lead == column and (item or not line[lead:].startswith("-"))):
                break
            end = nxt
        pos = nxt
    return end


def key_name(node: yaml.Node) -> str | None:
    return node.value if isinstance(node, yaml.ScalarNode) else None


def editable_root(doc: Document) -> yaml.MappingNode | None:
    root = doc.root
    if root is not None and root.flow_style:
        raise SpliceError(doc, "the front matter is one flow mapping ({...}); cannot edit it "
                          "line by line", doc.fm_start)
    return root


def pair_limits(node: yaml.MappingNode, fm: str, limit: int) -> list[int]:
    """For each pair of a block mapping, the line start of the next key (or ``limit``)."""
    starts = [line_start(fm, int(k.start_mark.index)) for k, _ in node.value]
    return [*starts[1:], limit]


def leading_spaces(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def dash_line(fm: str, item: yaml.Node) -> int | None:
    """Line start of the ``-`` that introduces a block sequence item."""
    i = int(item.start_mark.index)
    if isinstance(item, yaml.ScalarNode) and i == int(item.end_mark.index) and fm[i - 1:i] == "-":
        return line_start(fm, i)  # an empty item: '-' then nothing
    j = i - 1
    while j >= 0 and fm[j] in " \t\r\n":
        j -= 1
    if j < 0 or fm[j] != "-":
        return None
    return line_start(fm, j)


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


def indents(node: yaml.Node) -> tuple[int | None, int | None]:
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
        (v for k, v in root.value if key_name(k) == GARDEN_KEY), None)
    indent: int | None = None
    seq: int | None = None
    if garden is not None and isinstance(garden, yaml.MappingNode) and not garden.flow_style \
            and garden.value:
        garden_key = next(k for k, v in root.value if v is garden)
        indent = int(garden.start_mark.column) - int(garden_key.start_mark.column)
        indent = indent if indent > 0 else None
        seq = indents(garden)[1]
    if indent is None or seq is None:
        fm_indent, fm_seq = indents(root)
        indent = indent if indent is not None else fm_indent
        seq = seq if seq is not None else fm_seq
    return Style(indent=indent if indent is not None else SEED_STYLE.indent,
                 seq_indent=seq if seq is not None else SEED_STYLE.seq_indent,
                 newline=doc.newline, column=column)


# ---------------------------------------------------------------------------------------------
# Rendering scalars
# ---------------------------------------------------------------------------------------------

ESCAPES = {
    "\0": "\\0", "\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v", "\f": "\\f",
    "\r": "\\r", "\x1b": "\\e", '"': '\\"', "\\": "\\\\", "\x85": "\\N", "\u2028": "\\L",
    "\u2029": "\\P", "\ufeff": "\\uFEFF",
}


def printable(c: str) -> bool:
    o = ord(c)
    return (0x20 <= o <= 0x7E or 0xA0 <= o <= 0xD7FF or 0xE000 <= o <= 0xFFFD
            or 0x10000 <= o <= 0x10FFFF)


_AS_IS = re.compile("[\x20\x21\x23-\x5b\x5d-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe"
                    "\uff00-\ufffd\U00010000-\U0010ffff]*\\Z")
"""Text that goes between the quotes unchanged: printable (``printable``) and not one of
``ESCAPES``. Most values are: one regular-expression match instead of a test per
character (a tenth of a pattern's splice)."""


def quote(value: str) -> str:
    """A YAML double-quoted scalar on one line; every reader gets back exactly ``value``."""
    if _AS_IS.match(value):
        return f'"{value}"'
    out = ['"']
    for c in value:
        esc = ESCAPES.get(c)
        if esc is not None:
            out.append(esc)
        elif printable(c):
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
