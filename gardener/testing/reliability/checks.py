"""What every file of a library is after a pass, and what the report says about it.

A file may be byte-identical to what it was, or fully written and verified
(``gardener.steps.verify``: the same bytes and data outside ``graph_garden``, a garden that
parses, every new link among the candidates the model was offered). Anything else counts as
corrupt. A failed pattern must say why in the report.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gardener.library import pattern as pattern_mod
from gardener.library.document import ReadError, read_text
from gardener.library.garden import read_garden
from gardener.library.write import leftovers
from gardener.model import Garden
from gardener.steps.verify import verify
from gardener.testing.fake_openai import FakeOpenAI, link_targets
from gardener.testing.responders import asked_slug


@dataclass
class FileCheck:
    """What every file of a library is after a pass, against the bytes it started with."""

    original: int = 0
    gardened: int = 0
    corrupt: list[str] = field(default_factory=list)
    ungrounded: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)

    @property
    def sound(self) -> bool:
        return not (self.corrupt or self.ungrounded)


def check_files(originals: Mapping[Path, bytes], offered: Mapping[str, set[str]] | None = None,
                root: Path | None = None) -> FileCheck:
    """Each file is as it was, or fully written and verified; new links were offered ones."""
    check = FileCheck()
    for path, old in originals.items():
        new = path.read_bytes()
        if new == old:
            check.original += 1
            continue
        problem = written_problem(path, old, new)
        if problem is not None:
            check.corrupt.append(f"{path.name}: {problem}")
            continue
        check.gardened += 1
        if offered is not None:
            check.ungrounded += [f"{path.name}: {t}" for t in new_links(path, old, new, offered)]
    if root is not None:
        check.leftovers = [str(p) for p in leftovers(root)]
    return check


def written_problem(path: Path, old: bytes, new: bytes) -> str | None:
    """Why ``new`` is not a complete, verified gardening of ``old`` (None when it is)."""
    try:
        before = read_text(old.decode("utf-8"), path)
        after = read_text(new.decode("utf-8"), path)
    except (ReadError, UnicodeDecodeError) as exc:
        return f"does not read: {exc}"
    if before is None or after is None:
        return "lost its front matter"
    garden, _ = read_garden(after)
    if garden is None:
        return "changed but has no garden"
    try:
        verify(before, new.decode("utf-8"), garden)
    except Exception as exc:  # VerifyError, or anything else that says it does not hold
        return f"does not verify: {exc}"
    return None


def new_links(path: Path, old: bytes, new: bytes,
              offered: Mapping[str, set[str]]) -> list[str]:
    """Link targets in ``new`` that were neither in ``old`` nor offered to the model."""
    before, after = read_text(old.decode("utf-8"), path), read_text(new.decode("utf-8"), path)
    assert before is not None and after is not None
    slug = str(after.data.get("slug") or path.stem)
    kept = {lk.target for lk in (read_garden(before)[0] or Garden()).inferred_links}
    garden = read_garden(after)[0] or Garden()
    return [lk.target for lk in garden.inferred_links
            if lk.target not in kept and lk.target not in offered.get(slug, set())]


def offered_targets(fake: FakeOpenAI) -> dict[str, set[str]]:
    """Per slug, every link target the model was offered in any request about it."""
    offered: dict[str, set[str]] = {}
    for request in fake.chat_requests:
        if request.body is None:
            continue
        slug = asked_slug(request.body)
        if slug is not None:
            offered.setdefault(slug, set()).update(link_targets(request.body))
    return offered


def snapshot(paths: Iterable[Path]) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in paths}


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (symlinks as their target's name), for before/after."""
    found: dict[str, bytes] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            found[str(path)] = f"-> {os.readlink(path)}".encode()
        elif path.is_file():
            found[str(path)] = path.read_bytes()
    return found


def fingerprint(text: bytes, path: Path) -> str:
    """Front matter outside the garden, plus body: what a person, not the gardener, owns."""
    doc = read_text(text.decode("utf-8"), path)
    assert doc is not None
    return pattern_mod.fingerprint(doc.data, doc.body)


REASONS = (("not asked", "not asked (run halted)"), ("no usable answer", "no usable answer"),
           ("rate-limiting", "rate limited"), ("kept failing", "server errors"),
           ("no answer from", "timed out"), ("connection", "connection failed"),
           ("changed on disk", "conflict"))


def reason_of(error: str) -> str:
    """A short label for a failure message, for counting."""
    for needle, label in REASONS:
        if needle in error:
            return label
    return error.split(": ", 1)[-1][:60]


def unexplained(report: Mapping[str, Any], expected: Iterable[Path]) -> list[str]:
    """Patterns missing from the report, or failed without saying why."""
    by_path = {p["path"]: p for p in report["patterns"]}
    problems = [f"{path}: not in the report" for path in expected if str(path) not in by_path]
    problems += [f"{p['path']}: {p['status']} without a reason" for p in report["patterns"]
                 if p["status"] in ("failed", "conflict") and not p.get("error")]
    return problems
