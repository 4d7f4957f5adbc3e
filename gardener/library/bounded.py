"""Read the tool's own files (``.gardener/*``, ``gardener.toml``) within bounds.

A library commit can put anything in these files, and each is read by every command: a file
too large, nested too deeply, or holding a value too long must be refused with one line that
names the file (and line), never a ``RecursionError``'s traceback or the value echoed whole.
Every reader of such a file goes through ``read_capped`` and the depth guard of its format.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import yaml

from gardener.library.document import ReadError

MAX_YAML_BYTES = 4 * 1024 * 1024
"""A ledger or vocabulary file of 20,000 entries is about 4 MiB; PyYAML composes more slowly
than people wait (a 14.6 MB ledger took 88 s), so a larger one is refused unread."""
MAX_JSON_BYTES = 32 * 1024 * 1024
"""``state.json`` holds about 500 bytes a pattern: 32 MiB is 60,000 patterns."""
MAX_TOML_BYTES = 1024 * 1024
"""``gardener.toml`` is a page of settings."""
LINK_REFUSED = ("a symbolic link; the gardener never reads or writes its files through links "
                "(replace it with the file itself)")
MAX_DEPTH = 64
"""No file of the gardener nests deeper than a handful of levels; Python's parsers recurse,
so a much deeper file would end in ``RecursionError`` instead of a message."""


def read_capped_bytes(path: Path, limit: int, *,
                      follow: bool = False) -> tuple[bytes, os.stat_result]:
    """The bytes of ``path`` (at most ``limit`` of them read) and the status of the file read.

    ``FileNotFoundError`` when there is no file (callers decide what absence means); every
    other problem is a `ReadError` naming the file. Unless ``follow``, a symbolic link is
    refused (``O_NOFOLLOW``): a committed ``.gardener/x -> ~/.ssh/id_rsa`` is never read.
    """
    nofollow = 0 if follow else getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, os.O_RDONLY | nofollow)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP or (not follow and path.is_symlink()):
            raise ReadError(path, LINK_REFUSED) from None
        raise ReadError(path, f"cannot be read ({exc.strerror or exc})") from None
    try:
        status = os.fstat(fd)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:  # a folder (EISDIR) or an I/O error
        raise ReadError(path, f"cannot be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    if size > limit:
        raise ReadError(path, f"larger than {limit // (1024 * 1024)} MiB, too large for this "
                        "file; refusing to read it")
    return b"".join(chunks), status


def decode(data: bytes, path: Path | str) -> str:
    """UTF-8 text, or a `ReadError` naming the line and offset of the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ReadError(path, f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                        f"{exc.start})", line) from None


def read_capped(path: Path, limit: int, *, follow: bool = False) -> str:
    """``read_capped_bytes`` decoded as UTF-8."""
    return decode(read_capped_bytes(path, limit, follow=follow)[0], path)


def check_yaml_depth(text: str, path: Path | str, line_offset: int = 0,
                     max_depth: int = MAX_DEPTH) -> None:
    """Refuse YAML nested deeper than ``max_depth``, naming the line where it gets too deep.

    PyYAML's parser is a state machine (its events come without recursion) while composing
    and constructing recurse: counting the events' nesting first keeps a hostile file from
    ever reaching them. A syntax error is left to the real parse, which reports it.
    """
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > max_depth:
                    mark = event.start_mark
                    raise ReadError(path, f"nested more than {max_depth} levels deep; no "
                                    "file of the gardener nests like that, so it is refused",
                                    line_offset + mark.line + 1 if mark else None)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        return


_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_TOML_TOKENS = re.compile(r'"""(?:[^\\]|\\.)*?"""|\'\'\'.*?\'\'\'|"(?:[^"\\\n]|\\.)*"'
                          r"|'[^'\n]*'|#[^\n]*|[\[\]{}]", re.DOTALL)


def _bracket_depth(text: str, tokens: re.Pattern[str], path: Path | str,
                   max_depth: int) -> None:
    depth = 0
    for match in tokens.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > max_depth:
                line = text.count("\n", 0, match.start()) + 1
                raise ReadError(path, f"nested more than {max_depth} levels deep; no file "
                                "of the gardener nests like that, so it is refused", line)
        elif token in "]}":
            depth -= 1


def check_json_depth(text: str, path: Path | str, max_depth: int = MAX_DEPTH) -> None:
    """Refuse JSON nested deeper than ``max_depth`` before ``json.loads`` recurses into it."""
    _bracket_depth(text, _JSON_TOKENS, path, max_depth)


def check_toml_depth(text: str, path: Path | str, max_depth: int = MAX_DEPTH) -> None:
    """Refuse TOML whose arrays and inline tables nest deeper than ``max_depth``."""
    _bracket_depth(text, _TOML_TOKENS, path, max_depth)
