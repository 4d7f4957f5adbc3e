"""Read one pattern file: split front matter from body exactly, and parse it safely.

The split keeps every byte (BOM, CRLF, the body) so that the writer can put the file back
together; the parse uses PyYAML's C loader where available and refuses what a library file
should never contain (duplicate keys, alias bombs, non-mapping front matter) with an error
that names the file, line and column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from gardener.errors import GardenerError, brief

try:  # the C loader is ~10x faster; fall back where libyaml is missing
    _BaseLoader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _BaseLoader = yaml.SafeLoader

BOM = "\ufeff"
MAX_EXPANDED_NODES = 100_000
"""More nodes than this once aliases are expanded is an alias bomb, not a pattern."""
MAX_FILE_BYTES = 2 * 1024 * 1024
"""A pattern is a few KB (the largest real one seen is 330 KB); a bigger file is refused,
never read whole, rather than parsed, indexed and sent to a model."""
PLAIN_TAGS = frozenset(f"tag:yaml.org,2002:{name}" for name in (
    "str", "int", "float", "bool", "null", "timestamp", "seq", "map", "merge", "value"))
"""The tags plain YAML values resolve to; any other (``!!python/object``, ``!!binary``,
``!!set``, ``!custom``) is refused: a pattern file has no use for it."""

_OPEN = re.compile(r"---[ \t]*(\r\n|\n|\r)")
_CLOSE = re.compile(r"^(---|\.\.\.)[ \t]*(\r\n|\n|\r|$)", re.MULTILINE)


class ReadError(GardenerError):
    """A file that cannot be read as a pattern; the message names file, line and column."""

    exit_code = 1  # a file could not be processed

    def __init__(self, path: Path | str, message: str, line: int | None = None,
                 column: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.column = column
        self.problem = message
        where = str(path)
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Document:
    """A pattern file split into its parts; ``text`` is the whole file, decoded losslessly."""

    path: Path
    text: str
    fm_start: int
    """Offset of the first character of the front matter (after the opening ``---`` line)."""
    fm_end: int
    """Offset of the closing ``---`` line."""
    data: dict[str, Any]
    node: yaml.MappingNode | None = field(default=None, repr=False, compare=False)
    """The composed YAML node tree as read; ``released`` drops it (see ``root``)."""
    kept: bool = field(default=True, repr=False, compare=False)
    """False once ``released``: ``root`` composes the tree again when it is asked for."""

    @property
    def root(self) -> yaml.MappingNode | None:
        """The composed YAML node tree, whose marks locate each key in ``front_matter``.

        Only a file being written needs it (to splice its garden), so a library read whole
        keeps it for no file (``released``): the trees were a third of a 3,600-pattern
        library's memory. Composed again here from the same text, which passed the guards.
        """
        if not self.kept:
            node = _compose(self.front_matter)
            object.__setattr__(self, "node", node)  # a cache of a pure function of the text
            object.__setattr__(self, "kept", True)
        return self.node

    def released(self) -> Document:
        """This document without its node tree, which ``root`` composes again on demand."""
        return replace(self, node=None, kept=False)

    @property
    def front_matter(self) -> str:
        return self.text[self.fm_start:self.fm_end]

    @property
    def body(self) -> str:
        m = _CLOSE.match(self.text, self.fm_end)
        return self.text[m.end():] if m else ""

    @property
    def fm_line_offset(self) -> int:
        """Number of file lines before the front matter's first line."""
        return self.text.count("\n", 0, self.fm_start)

    @property
    def newline(self) -> str:
        return "\r\n" if "\r\n" in self.text[: self.fm_end] else "\n"


def _compose(fm: str) -> yaml.MappingNode | None:
    """The node tree of front matter already read once (guarded, parsed without error)."""
    loader = _StrictLoader(fm)
    try:
        node = loader.get_single_node()
    finally:
        loader.dispose()
    return node if isinstance(node, yaml.MappingNode) else None


def decode(raw: bytes, path: Path | str) -> str:
    """UTF-8 or a clear refusal naming the line of the first bad byte (or NUL: a binary)."""
    nul = raw.find(b"\x00")
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        raise ReadError(path, f"a binary file, not Markdown text: NUL byte at offset {nul}",
                        line)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ReadError(
            path,
            f"not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start} ({exc.reason}); "
            "re-save the file as UTF-8",
            line,
            column,
        ) from None


def split(text: str, path: Path | str = "<text>") -> tuple[int, int] | None:
    """Locate the front matter: (start, end) offsets, or None when the file has none.

    A file has front matter when its first line (after an optional BOM) is ``---``; it ends
    at the next line that is ``---`` or ``...``. Later ``---`` lines belong to the body.
    """
    start = 1 if text.startswith(BOM) else 0
    m = _OPEN.match(text, start)
    if not m:
        return None
    close = _CLOSE.search(text, m.end())
    if close is None:
        raise ReadError(path, "front matter opened with '---' is never closed by a '---' line", 1)
    return m.end(), close.start()


class _PlainLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Safe loader for which a value PyYAML resolves but cannot make (``2025-13-45``: a
    timestamp with a 13th month) is a YAML error at that value's line, not a ``ValueError``
    from deep inside PyYAML that names no file."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:
            shown = brief(node.value) if isinstance(node, yaml.ScalarNode) else "value"
            raise yaml.constructor.ConstructorError(
                None, None, f"{shown} cannot be read as {_short_tag(node.tag)} ({exc})",
                node.start_mark) from None


class _StrictLoader(_PlainLoader):
    """Safe loader that refuses duplicate keys instead of silently keeping the last."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    "found an unhashable key", key_node.start_mark) from None
            if key in seen:
                first = seen[key].start_mark.line + 1
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"found duplicate key {key!r} (first defined on front-matter line {first})",
                    key_node.start_mark)
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


def _expanded_size(node: yaml.Node, memo: dict[int, int], active: set[int]) -> int:
    """Node count with aliases expanded, without expanding them (memoized on identity)."""
    key = id(node)
    if key in memo:
        return memo[key]
    if key in active:
        raise ValueError("recursive alias")
    active.add(key)
    size = 1
    if isinstance(node, yaml.SequenceNode):
        for child in node.value:
            size += _expanded_size(child, memo, active)
            if size > MAX_EXPANDED_NODES:
                break
    elif isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            size += _expanded_size(k, memo, active) + _expanded_size(v, memo, active)
            if size > MAX_EXPANDED_NODES:
                break
    active.discard(key)
    memo[key] = size
    return size


def _foreign_tag(root: yaml.Node) -> yaml.Node | None:
    """The first node carrying a tag outside ``PLAIN_TAGS``; each node visited once."""
    seen: set[int] = set()
    todo = [root]
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.tag not in PLAIN_TAGS:
            return node
        if isinstance(node, yaml.SequenceNode):
            todo.extend(reversed(node.value))
        elif isinstance(node, yaml.MappingNode):
            todo.extend(n for pair in reversed(node.value) for n in reversed(pair))
    return None


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml") else tag


def guard(node: yaml.Node, path: Path | str, line_offset: int) -> None:
    """Refuse alias bombs, recursive aliases and tags outside ``PLAIN_TAGS`` under ``node``."""
    try:
        size = _expanded_size(node, {}, set())
    except ValueError:
        raise ReadError(path, "front matter contains a recursive YAML alias",
                        line_offset + node.start_mark.line + 1) from None
    except RecursionError:
        raise ReadError(path, "front matter is nested too deeply to be a pattern",
                        line_offset + node.start_mark.line + 1) from None
    if size > MAX_EXPANDED_NODES:
        raise ReadError(
            path,
            f"front matter expands to more than {MAX_EXPANDED_NODES:,} YAML nodes through "
            "aliases (an alias bomb?); refusing to load it",
            line_offset + node.start_mark.line + 1)
    foreign = _foreign_tag(node)
    if foreign is not None:
        raise ReadError(
            path, f"front matter uses the YAML tag '{_short_tag(foreign.tag)}'; a pattern "
            "holds plain values (text, numbers, dates, lists, mappings), so it is refused",
            line_offset + foreign.start_mark.line + 1, foreign.start_mark.column + 1)


def yaml_error(path: Path | str, exc: yaml.YAMLError, said: str,
               line_offset: int = 0) -> ReadError:
    """PyYAML's error as one line naming the file, line and column (and where the construct
    it was in began); never the offending value whole."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return ReadError(path, f"{said}: {brief(str(exc))}")
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "invalid"
    if exc.context:
        problem = f"{problem} ({exc.context}"
        if exc.context_mark is not None and exc.context_mark is not mark:
            problem += f" started on line {line_offset + exc.context_mark.line + 1}"
        problem += ")"
    return ReadError(path, f"{said}: {problem}",
                     line_offset + mark.line + 1 if mark else None,
                     mark.column + 1 if mark else None)


def parse_front_matter(fm: str, path: Path | str = "<text>", line_offset: int = 0, *,
                       guarded: bool = True) -> tuple[dict[str, Any], yaml.MappingNode | None]:
    """Parse front-matter text into a mapping and its node tree, or raise ReadError.

    ``guarded=False`` leaves out the alias-bomb and foreign-tag guards (``guard``), for
    text the gardener made itself from a document that passed them: ``gardener.steps.verify``
    guards only the part it wrote.
    """
    loader = _StrictLoader(fm)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}, None
        if guarded:
            guard(node, path, line_offset)
        if not isinstance(node, yaml.MappingNode):
            kind = {"SequenceNode": "a list", "ScalarNode": "a single value"}.get(
                type(node).__name__, type(node).__name__)
            raise ReadError(path, f"front matter is {kind}, not a mapping of keys",
                            line_offset + node.start_mark.line + 1,
                            node.start_mark.column + 1)
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise yaml_error(path, exc, "invalid YAML", line_offset) from None
    except RecursionError:
        raise ReadError(path, "front matter is nested too deeply to be a pattern") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):  # pragma: no cover - guarded by the node check
        raise ReadError(path, "front matter is not a mapping of keys")
    if not all(isinstance(k, str) for k in data):
        bad = next(k for k in data if not isinstance(k, str))
        raise ReadError(path, f"front matter key {brief(bad)} is not a string")
    return data, node


def load_plain(text: str, path: Path | str) -> tuple[Any, yaml.Node | None]:
    """A whole YAML file (the ``.gardener/`` tables) as data and node tree, or `ReadError`.

    Composed once, guarded as front matter is (alias bombs, foreign tags), then constructed
    from the same nodes; every error names the file and line. Callers bound the file's size
    and nesting first (``gardener.library.bounded``).
    """
    loader = _PlainLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        guard(node, path, 0)
        return loader.construct_document(node), node
    except yaml.YAMLError as exc:
        raise yaml_error(path, exc, "not valid YAML") from None
    except RecursionError:
        raise ReadError(path, "nested too deeply to be read") from None
    finally:
        loader.dispose()


def read_text(text: str, path: Path | str = "<text>", *, guarded: bool = True
              ) -> Document | None:
    """Split and parse already-decoded text; None when there is no front matter.

    ``guarded``: as in ``parse_front_matter``.
    """
    span = split(text, path)
    if span is None:
        return None
    start, end = span
    line_offset = text.count("\n", 0, start)
    data, root = parse_front_matter(text[start:end], path, line_offset, guarded=guarded)
    return Document(Path(path), text, start, end, data, root)


def read(path: Path, max_bytes: int = MAX_FILE_BYTES) -> Document | None:
    """Read a file from disk; None when it has no front matter (not a pattern).

    A file over ``max_bytes`` is refused: no more than ``max_bytes + 1`` bytes of it are ever
    read, so memory and time stay bounded whatever its size.
    """
    try:
        with path.open("rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        raise ReadError(path, f"cannot read file: {exc.strerror or exc}") from None
    if len(raw) > max_bytes:
        raise ReadError(path, f"the file is larger than {_size(max_bytes)}, too large for a "
                        "pattern (GARDENER_MAX_FILE_BYTES raises the limit); refusing to read it")
    return read_text(decode(raw, path), path)


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:g} MiB" if n >= 1024 * 1024 else f"{n:,} bytes"
