"""Find the files of a few slugs without loading the library: a cheap scan, then one parse.

``gardener reject`` and ``gardener promote`` touch one pattern. Loading the whole library to
find it (every file parsed and built) took 7.4 s and 560 MB at 3,600 patterns
(docs/benchmarks.md). A pattern's slug is its front matter's top-level ``slug`` when that is
a string, else its file name's stem (`gardener.library.pattern.build`), so most files are
ruled out by their text alone: the scan reads each file up to the end of its front matter
and looks at its top-level ``slug:`` line. Only a file that may hold a wanted slug is parsed
as `gardener.library.load` parses it: the one named like it, the one whose ``slug:`` line
says it, and the few whose front matter the scan cannot read for sure (a block or escaped
scalar, an anchor, a merge key, a flow mapping, an indented top level). So `find` finds what
``load(root, scope=scope).by_slug()`` finds, the files the library's scope admits, in the
same order, and the first of them when two share a slug.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from gardener.errors import GardenerError
from gardener.library.document import BOM
from gardener.library.load import Entry, discover, escape_of, max_file_bytes, read_entry, resolve
from gardener.library.scope import Scope

CHUNK = 16_384
"""Bytes read first: a front matter is a few KB; a longer one is read on to its end."""

_OPEN = re.compile(r"---[ \t]*(?:\r\n|\n|\r)")
_CLOSE = re.compile(r"^(?:---|\.\.\.)[ \t]*(?:\r\n|\n|\r|$)", re.MULTILINE)
_SLUG = re.compile(r"\n(?:slug|\"slug\"|'slug')[ \t]*:(?:[ \t]+([^\r\n]*?))?[ \t]*\r?(?=\n|\Z)")
"""A top-level ``slug:`` line, in the front matter with a newline put before it. Each regex
here starts with a newline: the engine looks for newlines, then tries the rest."""
_UNSURE_KEY = re.compile(r"\n(?:[?&!*{\[%@`|>]|<<|\"[^\"\r\n]*\\)")
"""A top-level line that may set ``slug`` in a way `_SLUG` does not see: a complex key, an
anchor or tag, an alias or merge key, a flow collection, an escaped quoted key."""
_DOUBLE = re.compile(r"\"([^\"\\]*)\"(?:[ \t]+#.*)?")
_SINGLE = re.compile(r"'((?:[^']|'')*)'(?:[ \t]+#.*)?")
_COMMENT = re.compile(r"[ \t]+#")
_LONE_CR = re.compile(r"\r(?!\n)")
_RESOLVER = yaml.resolver.Resolver()
_STR = "tag:yaml.org,2002:str"


@dataclass(frozen=True)
class Found:
    """The files whose slug was asked for, parsed; and the candidates that could not be."""

    entries: dict[str, list[Entry]] = field(default_factory=dict)
    """By slug, in the library's order (sorted paths); more than one: a duplicate slug."""
    errors: tuple[tuple[Path, GardenerError], ...] = ()
    """Files that may have held a wanted slug but cannot be read as patterns, and why."""
    scanned: int = 0
    parsed: int = 0

    def first(self, slug: str) -> Entry | None:
        """The entry ``load(...).by_slug()`` gives for ``slug``."""
        found = self.entries.get(slug)
        return found[0] if found else None


def front_matter_head(path: Path, limit: int) -> str | None:
    """The file's front matter text, read no further than its closing line; None when the
    file has no front matter (not a pattern), "" when it is never closed within ``limit``."""
    with path.open("rb") as f:
        raw = f.read(CHUNK)
        text = raw.decode("utf-8", "replace")
        start = 1 if text.startswith(BOM) else 0
        opened = _OPEN.match(text, start)
        if opened is None:
            return None
        close = _CLOSE.search(text, opened.end())
        if close is None and len(raw) == CHUNK:
            raw += f.read(max(limit - CHUNK, 0) + 1)
            text = raw.decode("utf-8", "replace")
            close = _CLOSE.search(text, opened.end())
    return "" if close is None else text[opened.end():close.start()]


def declared_slug(front_matter: str) -> str | None:
    """The slug a front matter's text declares, when the text alone says so for sure: its
    top-level ``slug:`` value, or ``""`` when it has none or a value that is not a string
    (the file name is the slug then). None: only parsing can tell."""
    if "\r" in front_matter and _LONE_CR.search(front_matter):
        return None  # old Mac line ends: the line rules below see one long line
    text = "\n" + front_matter  # every line starts after a newline
    if _indented(front_matter) or _UNSURE_KEY.search(text):
        return None  # an indented top level, or a key the line rule cannot read
    found = list(_SLUG.finditer(text))
    if not found:
        return ""
    if len(found) > 1:
        return None  # a duplicate key: parsing refuses the file, with its line
    value = found[0].group(1) or ""
    if not value or value[0] in "|>&*!{[%@`":
        return None  # a block scalar, an anchor, a tag, a flow collection, nothing
    if value[0] == '"':
        m = _DOUBLE.fullmatch(value)
        return m.group(1).strip() if m else None
    if value[0] == "'":
        m = _SINGLE.fullmatch(value)
        return m.group(1).replace("''", "'").strip() if m else None
    plain = _COMMENT.split(value, maxsplit=1)[0].strip()
    if '"' in plain or "'" in plain or ": " in plain:
        return None
    tag = _RESOLVER.resolve(  # type: ignore[no-untyped-call]
        yaml.ScalarNode, plain, (True, False))
    return plain if tag == _STR else ""  # a number, a date, true, null: the stem is the slug


def _indented(front_matter: str) -> bool:
    """Whether the first line that is neither blank nor a comment is indented: a top level
    whose keys the line rule, which reads unindented keys, would miss."""
    at = 0
    while at < len(front_matter):
        end = front_matter.find("\n", at)
        end = len(front_matter) if end == -1 else end
        line = front_matter[at:end]
        stripped = line.lstrip(" \t")
        if stripped.strip() and not stripped.startswith("#"):
            return stripped != line
        at = end + 1
    return False


def _maybe(path: Path, root: Path, wanted: frozenset[str], limit: int) -> bool:
    """Whether ``path`` may be a pattern of a wanted slug: parse it to know."""
    if path.stem in wanted:
        return True
    if path.is_symlink() and escape_of(root, path) is not None:
        return False  # never read out of the library; loading refuses it too
    try:
        head = front_matter_head(path, limit)
    except OSError:
        return False  # unreadable: loading refuses it as well
    if head is None or head == "":
        return False  # no front matter, or one never closed: not a pattern
    slug = declared_slug(head)
    return slug is None or slug in wanted


def find(root: Path, slugs: Iterable[str], *, scope: Scope | None = None,
         max_bytes: int | None = None, paths: Sequence[Path] | None = None) -> Found:
    """The entries of ``root`` whose slug is one of ``slugs``, as ``load`` reads them, with
    human references among them resolved (a ``pat_`` id naming one of them becomes its
    slug). ``paths``: the library's files when the caller has listed them already
    (``discover(root, scope)``, which never descends into a linked folder: a link among
    them is a file's own, checked before it is read)."""
    wanted = frozenset(slugs)
    limit = max_file_bytes() if max_bytes is None else max_bytes
    files = list(paths) if paths is not None else discover(root, scope)
    extra = scope.human_types if scope is not None else ()
    entries: list[Entry] = []
    errors: list[tuple[Path, GardenerError]] = []
    parsed = 0
    for path in files:
        if not _maybe(path, root, wanted, limit):
            continue
        parsed += 1
        try:
            entry = read_entry(path, root=root, max_bytes=limit, human_types=extra)
        except GardenerError as exc:  # a ReadError; a layout the splice refuses, too
            errors.append((path, exc))
            continue
        if entry is not None and entry.pattern.slug in wanted:
            entries.append(entry)
    by_slug: dict[str, list[Entry]] = {}
    for entry in resolve(entries)[0]:
        by_slug.setdefault(entry.pattern.slug, []).append(entry)
    return Found(by_slug, tuple(errors), len(files), parsed)
