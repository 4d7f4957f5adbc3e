"""Load a whole library folder once: every pattern file, its typed view, and what failed.

Resolution of human references (slug or ``pat_`` id) needs the whole library, so it happens
here, after every file is read. One unreadable file becomes a ``ReadError`` in the list,
never an exception that stops the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gardener import document, pattern
from gardener.document import Document, ReadError
from gardener.garden import read_garden
from gardener.model import HumanLink, Pattern

SKIP_DIRS = frozenset({".git", ".gardener", ".venv", "node_modules", "__pycache__"})


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


def discover(root: Path) -> list[Path]:
    """Markdown files under ``root`` in a stable order, skipping tool and VCS folders."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such library folder")
    found: list[Path] = []
    for path in root.rglob("*.md"):
        rel = path.relative_to(root)
        if any(part in SKIP_DIRS or part.startswith(".") for part in rel.parts[:-1]):
            continue
        if path.is_file():
            found.append(path)
    return sorted(found)


def read_entry(path: Path) -> Entry | None:
    """One file to an Entry; None when it has no front matter; ReadError when unreadable."""
    doc = document.read(path)
    if doc is None:
        return None
    garden, warnings = read_garden(doc)
    return Entry(doc, pattern.build(doc, garden, warnings))


def resolve(entries: list[Entry]) -> tuple[list[Entry], list[str]]:
    """Point human references at slugs (they may name a slug or a ``pat_`` id)."""
    slugs: dict[str, Path] = {}
    ids: dict[str, str] = {}
    problems: list[str] = []
    for e in entries:
        p = e.pattern
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

    out = [
        Entry(e.doc, e.pattern.model_copy(
            update={"relationships": tuple(fix(r) for r in e.pattern.relationships)}))
        for e in entries
    ]
    return out, problems


def iter_read(paths: list[Path]) -> Iterator[tuple[Path, Entry | ReadError | None]]:
    for path in paths:
        try:
            yield path, read_entry(path)
        except ReadError as exc:
            yield path, exc


def load(root: Path, on_file: Callable[[Path], None] | None = None) -> Library:
    """Read every pattern under ``root``; unreadable files are collected, not raised."""
    paths = discover(root)
    lib = Library(root=root)
    entries: list[Entry] = []
    for path, result in iter_read(paths):
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
