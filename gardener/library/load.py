"""Load a whole library folder once: every pattern file, its typed view, and what failed.

Resolution of human references (slug or ``pat_`` id) needs the whole library, so it happens
here, after every file is read. One unreadable file becomes a ``ReadError`` in the list,
never an exception that stops the others.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gardener.library import document, pattern
from gardener.library.document import MAX_FILE_BYTES, Document, ReadError
from gardener.library.garden import read_garden
from gardener.library.scope import Scope
from gardener.library.yaml_text import SpliceError
from gardener.model import Garden, HumanLink, Pattern

SKIP_DIRS = frozenset({".git", ".gardener", ".venv", "node_modules", "__pycache__"})
MAX_FILE_BYTES_VARIABLE = "GARDENER_MAX_FILE_BYTES"


@dataclass(frozen=True)
class Entry:
    """One readable pattern file: its raw document (for splicing) and its typed view."""

    doc: Document
    pattern: Pattern


@dataclass
class Library:
    root: Path
    entries: list[Entry] = field(default_factory=list)
    errors: list[ReadError] = field(default_factory=list)
    no_front_matter: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """Library-level oddities (duplicate slugs), as messages naming the files."""

    @property
    def patterns(self) -> list[Pattern]:
        return [e.pattern for e in self.entries]

    @property
    def slugs(self) -> frozenset[str]:
        return frozenset(e.pattern.slug for e in self.entries)

    def by_slug(self) -> dict[str, Entry]:
        out: dict[str, Entry] = {}
        for e in self.entries:
            out.setdefault(e.pattern.slug, e)
        return out

    def __len__(self) -> int:
        return len(self.entries)


def discover(root: Path, scope: Scope | None = None) -> list[Path]:
    """Markdown files under ``root`` in a stable order, skipping tool and VCS folders; with a
    ``scope``, only those its include and exclude globs admit."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such library folder")
    found: list[Path] = []
    for path in root.rglob("*.md"):
        rel = path.relative_to(root)
        if any(part in SKIP_DIRS or part.startswith(".") for part in rel.parts[:-1]):
            continue
        if scope is not None and not scope.admits(rel.as_posix()):
            continue
        if path.is_file():
            found.append(path)
    return sorted(found)


def max_file_bytes(environ: Mapping[str, str] | None = None) -> int:
    """The size limit of one pattern file: GARDENER_MAX_FILE_BYTES, else the default."""
    env = os.environ if environ is None else environ
    value = env.get(MAX_FILE_BYTES_VARIABLE, "").strip()
    if not value:
        return MAX_FILE_BYTES
    try:
        limit = int(value)
    except ValueError:
        raise ValueError(f"{MAX_FILE_BYTES_VARIABLE}={value!r} is not a whole number of "
                         "bytes") from None
    if limit < 1:
        raise ValueError(f"{MAX_FILE_BYTES_VARIABLE} must be positive, got {limit}")
    return limit


def escape_of(root: Path, path: Path) -> Path | None:
    """Where ``path`` really leads when that is outside ``root`` (a symlink out), else None.

    The gardener reads and rewrites what it finds; a link out of the library would let a
    pass edit a file nobody asked it to touch. A path below ``root`` with no symlink among
    its parts below it is inside without resolving anything: an ``lstat`` per part below
    the root instead of one per part of both whole paths (each a wait for the GIL when the
    patterns' threads write at once).
    """
    below = _parts_below(root, path)
    if below and not any(_link_or_unknown(root.joinpath(*below[:k]))
                         for k in range(1, len(below) + 1)):
        return None
    base = (root if root.is_dir() else root.parent).resolve()
    real = path.resolve()
    return None if real.is_relative_to(base) else real


def _parts_below(root: Path, path: Path) -> tuple[str, ...]:
    """The parts of ``path`` below ``root`` as written; empty when it is not written below."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return ()
    return () if ".." in parts else parts


def _link_or_unknown(path: Path) -> bool:
    """A symlink, or something ``lstat`` cannot tell about other than its absence."""
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:
        return True


def read_entry(path: Path, *, root: Path | None = None, max_bytes: int = MAX_FILE_BYTES,
               human_types: tuple[str, ...] = ()) -> Entry | None:
    """One file to an Entry; None when it has no front matter; ReadError when unreadable
    or, given the library ``root``, when it leads out of it. ``human_types``: top-level
    keys holding human relationships besides ``pattern.HUMAN_KEYS``."""
    if root is not None:
        real = escape_of(root, path)
        if real is not None:
            raise ReadError(path, f"a symlink to {real}, outside the library {root}; refusing "
                            "to read or write it")
    doc = document.read(path, max_bytes)
    if doc is None:
        return None
    try:
        garden, warnings = read_garden(doc)
    except SpliceError as exc:  # one flow mapping ({slug: x}): readable, not editable
        garden, warnings = None, [f"{exc}; its garden is not read, and a pass cannot write one"]
    built = pattern.build(doc, garden, warnings, human_types=human_types)
    return Entry(doc.released(), built)


def resolve(entries: list[Entry]) -> tuple[list[Entry], list[str]]:
    """Point human references at slugs (they may name a slug or a ``pat_`` id)."""
    patterns, problems = resolve_patterns([e.pattern for e in entries])
    return [Entry(e.doc, p) for e, p in zip(entries, patterns, strict=True)], problems


def resolve_patterns(patterns: Sequence[Pattern]) -> tuple[list[Pattern], list[str]]:
    """`resolve` for typed views alone: each pattern with its human references pointed at
    slugs, and the duplicate slugs as messages naming the files."""
    slugs: dict[str, Path] = {}
    ids: dict[str, str] = {}
    problems: list[str] = []
    for p in patterns:
        if p.slug in slugs:
            problems.append(f"{p.path}: slug '{p.slug}' is also used by {slugs[p.slug]}")
        else:
            slugs[p.slug] = p.path
        if p.id:
            ids.setdefault(p.id, p.slug)

    def fix(link: HumanLink) -> HumanLink:
        ref = link.target
        if ref in slugs:
            return link.model_copy(update={"resolved": True})
        if ref in ids:
            return link.model_copy(update={"target": ids[ref], "resolved": True})
        return link

    out = [p.model_copy(update={"relationships": tuple(fix(r) for r in p.relationships)})
           for p in patterns]
    return out, problems


def iter_read(paths: list[Path], root: Path | None = None, max_bytes: int = MAX_FILE_BYTES,
              human_types: tuple[str, ...] = (),
              ) -> Iterator[tuple[Path, Entry | ReadError | None]]:
    for path in paths:
        try:
            yield path, read_entry(path, root=root, max_bytes=max_bytes,
                                   human_types=human_types)
        except ReadError as exc:
            yield path, exc


def load(root: Path, on_file: Callable[[Path], None] | None = None,
         max_bytes: int | None = None, scope: Scope | None = None) -> Library:
    """Read every pattern under ``root``; unreadable files are collected, not raised.

    Files over ``max_bytes`` (default: ``max_file_bytes()``) and symlinks leading out of
    ``root`` are among the unreadable ones, each with a message naming it. ``scope`` (the
    library's ``gardener.toml``) says which Markdown files are patterns and which extra keys
    hold human relationships; default: every ``*.md`` file, the built-in keys.
    """
    paths = discover(root, scope)
    lib = Library(root=root)
    entries: list[Entry] = []
    limit = max_file_bytes() if max_bytes is None else max_bytes
    extra = scope.human_types if scope is not None else ()
    for path, result in iter_read(paths, root, limit, extra):
        if isinstance(result, ReadError):
            lib.errors.append(result)
        elif result is None:
            lib.no_front_matter.append(path)
        else:
            entries.append(result)
        if on_file is not None:
            on_file(path)
    lib.entries, lib.problems = resolve(entries)
    return lib


def outline(root: Path, max_bytes: int | None = None,
            scope: Scope | None = None) -> list[Pattern]:
    """Every readable pattern of ``root`` as `load` reads it, keeping only what names and
    links it: path, slug, id, title, vitality, the human relationships (resolved as `load`
    resolves them) and, of its garden, the inferred links; no text, sections or other
    garden items. Unreadable files and files without front matter are left out.

    One file is read at a time and let go, so the library is never held whole: a
    3,600-pattern library read whole is about 310 MB of objects (its text, its sections),
    which the process keeps from the system after they are freed, beside whatever reads the
    library next."""
    limit = max_file_bytes() if max_bytes is None else max_bytes
    extra = scope.human_types if scope is not None else ()
    kept: list[Pattern] = []
    for _, result in iter_read(discover(root, scope), root, limit, extra):
        if isinstance(result, Entry):
            p = result.pattern
            garden = (Garden(inferred_links=p.garden.inferred_links)
                      if p.garden is not None else None)
            kept.append(Pattern(path=p.path, slug=p.slug, id=p.id, title=p.title,
                                vitality=p.vitality, relationships=p.relationships,
                                garden=garden))
    return resolve_patterns(kept)[0]
