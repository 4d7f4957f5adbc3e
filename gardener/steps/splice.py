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

from collections.abc import Sequence
from typing import Any

import yaml

from gardener.library.block import (
    ITEM_FIELDS,
    LIST_KEYS,
    SECTION_KEYS,
    Block,
    Item,
    locate,
)
from gardener.library.document import Document
from gardener.library.garden import GardenReading, item_from_data, read_detailed
from gardener.library.yaml_text import (
    GARDEN_KEY,
    SEED_STYLE,
    Style,
    date,
    detect_style,
    is_filler,
    number,
    quote,
    word,
)
from gardener.model import Garden

QUOTED_FIELDS = frozenset({"label", "reason"})
try:  # the C loader is much faster for checking reused item text
    _CheckLoader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _CheckLoader = yaml.SafeLoader


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
