"""Acceptance on the real corpus: ``check``, ``prune --dry-run``, ``prune`` and a second
``prune`` on a copy of every file of ../shared/corpus, run as a user runs them.

What ``prune`` should change is decided here independently of the pruner: a garden should
change exactly when its raw YAML breaks a rule a pruned garden keeps (a link that dangles,
points at itself or at a pattern the humans already relate to, an off-vocabulary type, a
weak or missing confidence, a repeated target or id, a list over its cap). Every garden
satisfies the rules afterwards, and every changed file differs from the original only
inside its garden block.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import stat
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from gardener.cli.main import app
from gardener.folding import kebab
from gardener.library.block import locate
from gardener.library.document import read_text, split
from gardener.library.pattern import HUMAN_KEYS
from gardener.model import LINK_TYPES, Reason
from gardener.steps.diff import unified_diff
from gardener.steps.prune import PruneSettings

pytestmark = pytest.mark.corpus

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
TODAY = "2026-11-25"
BROKEN = {
    "commons-os-patterns/animal-communication-practice.md": "12:3",
    "commons-os-patterns/animal-relationship-ethics.md": "13:3",
}
"""The two files whose YAML does not parse, with the line:column of the problem."""
OLD_MTIME_NS = 1_000_000_000 * 1_000_000_000
"""A time in 2001 given to every copied file, so any rewrite shows in its mtime."""
RULES = PruneSettings()
SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class FileState:
    raw: bytes
    mtime_ns: int
    inode: int
    mode: int


Snapshot = dict[str, FileState]
"""Every file of the library by its path relative to the library root."""


@dataclass(frozen=True)
class Run:
    result: Result
    report: dict[str, Any]
    after: Snapshot


@dataclass(frozen=True)
class Acceptance:
    root: Path
    original: Snapshot
    check: Result
    dry: Run
    first: Run
    second: Run
    before: dict[str, dict[str, Any]]
    """Front matter of each readable pattern before the pass, read with plain YAML."""
    after: dict[str, dict[str, Any]]
    """The same after the first prune."""

    def path(self, rel: str) -> Path:
        return self.root / rel

    def rel(self, path: str) -> str:
        return Path(path).relative_to(self.root).as_posix()

    def changed(self) -> list[str]:
        return sorted(self.rel(p["path"]) for p in self.first.report["patterns"]
                      if p["status"] == "changed")


def snapshot(root: Path) -> Snapshot:
    out: Snapshot = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            st = p.stat()
            out[p.relative_to(root).as_posix()] = FileState(
                p.read_bytes(), st.st_mtime_ns, st.st_ino, stat.S_IMODE(st.st_mode))
    return out


def invoke(*args: str | Path) -> Result:
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"the command crashed:\n{result.output}") from result.exception
    return result


def prune(root: Path, report: Path, *options: str) -> Run:
    result = invoke("prune", root, "--report", report, "--today", TODAY, *options)
    return Run(result, json.loads(report.read_text(encoding="utf-8")), snapshot(root))


@pytest.fixture(scope="module")
def acceptance(tmp_path_factory: pytest.TempPathFactory) -> Acceptance:
    if not CORPUS.is_dir():
        pytest.skip(f"../shared/corpus not found: {CORPUS} is not a folder")
    work = tmp_path_factory.mktemp("acceptance")
    root = work / "library"
    shutil.copytree(CORPUS, root)
    for p in root.rglob("*"):
        if p.is_file():  # a library its owner may write (the shared corpus is read-only)
            p.chmod(stat.S_IMODE(p.stat().st_mode) | stat.S_IWUSR)
            os.utime(p, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    original = snapshot(root)
    check = invoke("check", root, "--no-warnings")
    dry = prune(root, work / "dry.json", "--dry-run")
    first = prune(root, work / "first.json")
    second = prune(root, work / "second.json")
    return Acceptance(root, original, check, dry, first, second, readable(original),
                      readable(first.after))


# --- an independent reading of what a pruned garden looks like ------------------------------

def front_matter(raw: bytes) -> dict[str, Any] | None:
    """The front matter as plain YAML sees it (safe loading, no gardener code)."""
    text = raw.decode("utf-8")
    span = split(text)
    if span is None:
        return None
    data = yaml.load(text[span[0]:span[1]], Loader=SafeLoader)
    assert isinstance(data, dict)
    return data


def readable(snap: Snapshot) -> dict[str, dict[str, Any]]:
    """Front matter of every file that has some and parses, by relative path."""
    out: dict[str, dict[str, Any]] = {}
    for rel, state in snap.items():
        if not rel.endswith(".md") or rel in BROKEN:
            continue
        data = front_matter(state.raw)
        if data is not None:
            out[rel] = data
    return out


def items(garden: dict[str, Any], key: str) -> list[Any]:
    value = garden.get(key)
    return value if isinstance(value, list) else []


def human_targets(data: dict[str, Any], slugs: set[str], ids: dict[str, str]) -> set[str]:
    """Slugs the humans relate this pattern to, by slug or ``pat_`` id, in either layout."""
    lists: list[Any] = []
    rel = data.get("relationships")
    if isinstance(rel, dict):
        lists.extend(rel.values())
    lists.extend(data[k] for k in HUMAN_KEYS if k in data)
    out: set[str] = set()
    for value in lists:
        for item in value if isinstance(value, list) else [value]:
            ref = item if isinstance(item, str) else (
                item.get("slug") or item.get("id") or item.get("target")
                if isinstance(item, dict) else None)
            if isinstance(ref, str):
                ref = ref.strip()
                if ref in slugs:
                    out.add(ref)
                elif ref in ids:
                    out.add(ids[ref])
    return out


def confidence(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def item_id(item: Any) -> str | None:
    if isinstance(item, dict):
        ident = item.get("id")
        return ident if isinstance(ident, str) else None
    return kebab(item) if isinstance(item, str) else None


def broken_rules(data: dict[str, Any], slugs: set[str], ids: dict[str, str]) -> list[str]:
    """Why this garden is not what a pruned garden looks like (empty: it is)."""
    garden = data.get("graph_garden")
    if not isinstance(garden, dict):
        return []
    slug = str(data.get("slug")).strip()
    human = human_targets(data, slugs, ids)
    out: list[str] = []
    links = items(garden, "inferred_links")
    targets = [link.get("target") for link in links if isinstance(link, dict)]
    for link in links:
        if not isinstance(link, dict):
            continue
        target, c = link.get("target"), confidence(link.get("confidence"))
        if target == slug:
            out.append(f"self link {target}")
        elif target not in slugs:
            out.append(f"dangling {target}")
        elif link.get("type") not in LINK_TYPES:
            out.append(f"type {link.get('type')!r} -> {target}")
        elif target in human:
            out.append(f"human relationship {target}")
        elif c is None or math.isnan(c) or c < RULES.min_confidence:
            out.append(f"weak {target}")
    out += [f"repeated target {t}" for t, n in Counter(targets).items() if n > 1]
    if len(links) > RULES.max_links:
        out.append(f"{len(links)} links")
    for key, cap in (("entities", RULES.max_entities), ("communities", RULES.max_communities)):
        found = items(garden, key)
        if len(found) > cap:
            out.append(f"{len(found)} {key}")
        counts = Counter(item_id(item) for item in found)
        out += [f"repeated {key} id {i}" for i, n in counts.items() if i and n > 1]
    return out


def library_names(library: dict[str, dict[str, Any]]) -> tuple[set[str], dict[str, str]]:
    slugs = {str(d["slug"]).strip() for d in library.values()}
    ids: dict[str, str] = {}
    for d in library.values():
        if isinstance(d.get("id"), str):
            ids.setdefault(d["id"], str(d["slug"]).strip())
    return slugs, ids


def garden_span(text: str) -> tuple[int, int]:
    doc = read_text(text)
    assert doc is not None
    block = locate(doc)
    return block.start, block.end


# --- check ----------------------------------------------------------------------------------

def test_check_reads_all_but_the_two_broken_files_and_names_them(acceptance: Acceptance) -> None:
    result = acceptance.check
    assert result.exit_code == 1
    errors = sorted(line for line in result.stdout.splitlines() if line.startswith("error:"))
    assert len(errors) == 2
    for line, (rel, where) in zip(errors, sorted(BROKEN.items()), strict=True):
        assert line.startswith(f"error: {acceptance.path(rel)}:{where}: invalid YAML: ")
    with_front_matter = [rel for rel, s in acceptance.original.items()
                         if rel.endswith(".md") and s.raw.startswith(b"---")]
    assert len(with_front_matter) == 330
    summary = " ".join(result.stdout.split())
    assert f"{len(with_front_matter) - 2} patterns read, 2 unreadable" in summary


# --- prune ----------------------------------------------------------------------------------

def test_prune_changes_exactly_the_gardens_that_break_a_rule(acceptance: Acceptance) -> None:
    before = acceptance.before
    slugs, ids = library_names(before)
    should = {rel for rel, data in before.items() if broken_rules(data, slugs, ids)}
    changed = set(acceptance.changed())
    assert changed == should, {
        "changed without reason": {r: [] for r in changed - should},
        "not changed": {r: broken_rules(before[r], slugs, ids) for r in should - changed}}
    assert 100 < len(changed) < len(before)
    after = acceptance.after
    assert after.keys() == before.keys()
    for rel, data in after.items():
        assert broken_rules(data, slugs, ids) == [], rel
    # the two broken files are listed, and asked for by no one: the pass is done (exit 0)
    assert acceptance.first.result.exit_code == 0
    for rel in BROKEN:
        assert f"unreadable: {acceptance.path(rel)}:{BROKEN[rel]}: " in \
            acceptance.first.result.stderr


def test_removals_happened_for_each_reason_found_in_the_corpus(acceptance: Acceptance) -> None:
    totals = acceptance.first.report["totals"]
    by_reason = totals["removals_by_reason"]
    for reason in (Reason.DANGLING, Reason.HUMAN_CONFIRMED, Reason.HUMAN_CONFLICT):
        assert by_reason.get(reason.value, 0) > 0, reason
    # the corpus's only off-vocabulary "type" is none at all: migrated, never removed for it
    assert by_reason.get(Reason.BAD_TYPE.value, 0) == 0
    assert totals["renames"] > 0 and totals["conflicts"] == by_reason["human_conflict"]


def test_changed_files_differ_only_inside_the_garden(acceptance: Acceptance) -> None:
    changed = acceptance.changed()
    assert changed
    report = {acceptance.rel(p["path"]): p for p in acceptance.first.report["patterns"]}
    for rel in changed:
        old_raw, new_raw = acceptance.original[rel].raw, acceptance.first.after[rel].raw
        old, new = old_raw.decode("utf-8"), new_raw.decode("utf-8")
        assert old.encode("utf-8") == old_raw and new.encode("utf-8") == new_raw
        (a0, a1), (b0, b1) = garden_span(old), garden_span(new)
        assert new[:b0].encode("utf-8") == old[:a0].encode("utf-8"), rel
        assert new[b1:].encode("utf-8") == old[a1:].encode("utf-8"), rel
        old_fm, new_fm = front_matter(old_raw), front_matter(new_raw)
        assert old_fm is not None and new_fm is not None
        old_garden, new_garden = old_fm.pop("graph_garden"), new_fm.pop("graph_garden")
        assert new_fm == old_fm, rel
        assert str(new_garden["last_pruned"]) == TODAY
        removed = Counter(r["kind"] for r in report[rel]["removals"])
        for key, kind in (("inferred_links", "link"), ("entities", "entity"),
                          ("communities", "community")):
            assert len(items(new_garden, key)) == len(items(old_garden, key)) - removed[kind], rel
        assert acceptance.first.after[rel].mtime_ns != OLD_MTIME_NS
        assert acceptance.first.after[rel].mode == acceptance.original[rel].mode


def test_files_whose_garden_did_not_change_are_never_rewritten(acceptance: Acceptance) -> None:
    changed = set(acceptance.changed())
    untouched = [rel for rel in acceptance.original if rel not in changed]
    assert "README.md" in untouched and set(BROKEN) <= set(untouched)
    assert len(untouched) == len(acceptance.original) - len(changed)
    for rel in untouched:
        assert acceptance.first.after[rel] == acceptance.original[rel], rel
    assert acceptance.first.after.keys() == acceptance.original.keys()  # no temp files left


def test_a_second_prune_changes_nothing(acceptance: Acceptance) -> None:
    second = acceptance.second
    assert second.after == acceptance.first.after
    totals = second.report["totals"]
    assert totals["changed"] == 0 and totals["removals"] == 0
    assert totals["failed"] == 2 and totals["unchanged"] == totals["patterns"] - 2
    assert second.result.exit_code == 0  # the 2 unreadable files are listed, not failed


def test_dry_run_writes_nothing_and_prints_the_diffs(acceptance: Acceptance) -> None:
    dry = acceptance.dry
    assert dry.after == acceptance.original
    assert dry.report["dry_run"] is True
    strip = {"generated", "dry_run", "seconds"}  # when and how long: never the same
    assert {k: v for k, v in dry.report.items() if k not in strip} == {
        k: v for k, v in acceptance.first.report.items() if k not in strip}
    expected = "".join(
        unified_diff(acceptance.path(rel), acceptance.original[rel].raw.decode("utf-8"),
                     acceptance.first.after[rel].raw.decode("utf-8"))
        for rel in acceptance.changed())
    assert dry.result.stdout == expected
    assert dry.result.stdout.count("\n--- a/") + 1 == len(acceptance.changed())


def test_the_report_lists_every_pattern(acceptance: Acceptance) -> None:
    report = acceptance.first.report
    assert report["command"] == "prune" and report["today"] == TODAY
    assert report["library"] == str(acceptance.root)
    patterns = report["patterns"]
    listed = [acceptance.rel(p["path"]) for p in patterns]
    assert listed == sorted(listed)
    expected = sorted(rel for rel, s in acceptance.original.items()
                      if rel.endswith(".md") and s.raw.startswith(b"---"))
    assert listed == expected
    data = acceptance.before
    reasons = {r.value for r in Reason}
    for p in patterns:
        rel = acceptance.rel(p["path"])
        assert p["status"] in {"changed", "unchanged", "failed"}
        if rel in BROKEN:
            assert p["status"] == "failed"
            assert p["error"].startswith(f"{acceptance.path(rel)}:{BROKEN[rel]}: invalid YAML")
            continue
        assert p["error"] is None and p["slug"] == str(data[rel]["slug"]).strip()
        assert (p["status"] == "changed") == bool(p["removals"] or p["renames"]), rel
        for removal in p["removals"]:
            assert removal["reason"] in reasons and removal["item"] and removal["detail"]
    totals = report["totals"]
    status = Counter(p["status"] for p in patterns)
    assert totals["patterns"] == len(patterns)
    assert (totals["changed"], totals["unchanged"], totals["failed"]) == (
        status["changed"], status["unchanged"], status["failed"])
    reasons_seen = Counter(r["reason"] for p in patterns for r in p["removals"])
    assert totals["removals_by_reason"] == dict(sorted(reasons_seen.items()))
    assert totals["removals"] == sum(reasons_seen.values())


def _walk(root: Path) -> Iterator[Path]:
    yield from (p for p in root.rglob("*") if p.is_file())


def test_the_corpus_itself_is_untouched(acceptance: Acceptance) -> None:
    for p in _walk(CORPUS):
        rel = p.relative_to(CORPUS).as_posix()
        assert p.read_bytes() == acceptance.original[rel].raw, rel
