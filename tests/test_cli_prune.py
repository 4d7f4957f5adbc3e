"""The ``check`` and ``prune`` commands end to end on small libraries built in each test.

These run the real command line in-process (typer's runner): exit codes, options, what
lands on disk, and that one bad file is refused with its name and line while the pass goes
on to the others.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from gardener.cli.main import app
from gardener.library.block import locate
from gardener.library.document import read_text
from gardener.library.load import read_entry

TODAY = "2026-11-25"
runner = CliRunner()

LinkSpec = tuple[str, str, float]
"""(target, type, confidence) of one inferred link."""


def pattern(slug: str, links: Sequence[LinkSpec] = (), *, body: str = "Body.\n") -> str:
    """A v7.1-style pattern file with banner comments around its garden."""
    garden = "graph_garden:\n  last_pruned: 2026-01-01\n  entities: []\n  communities: []\n"
    if links:
        garden += "  inferred_links:\n"
        for target, type_, confidence in links:
            garden += (f"    - target: {target}\n      type: {type_}\n"
                       f"      confidence: {confidence}\n      reason: \"because\"\n")
    else:
        garden += "  inferred_links: []\n"
    return (
        "---\n"
        "# ═══ GROUP 1: CORE IDENTITY ═══\n"
        f"id: pat_{slug}\n"
        f"slug: {slug}\n"
        f'title: "{slug.title()}: a pattern"\n'
        "summary: >-\n  Folded text that\n  wraps.\n"
        "relationships:\n  enables: []\n"
        "# ═══ GROUP 6: GRAPH GARDEN ═══\n"
        f"{garden}"
        "\n# ═══ GROUP 7: PROVENANCE ═══\n"
        "contributors: [\"someone\"]\n"
        "license: CC-BY-SA-4.0\n"
        "---\n\n"
        f"{body}"
    )


def library(root: Path, files: dict[str, str | bytes]) -> dict[str, Path]:
    """Write ``files`` (relative name -> text or raw bytes) under ``root``."""
    out: dict[str, Path] = {}
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_bytes(content.encode("utf-8"))
        out[name] = path
    return out


def basic(root: Path) -> dict[str, Path]:
    """alpha links beta (strong), gamma (0.6) and a slug that does not exist."""
    return library(root, {
        "alpha.md": pattern("alpha", [("beta", "enables", 0.9), ("gamma", "requires", 0.6),
                                      ("ghost", "enables", 0.9)]),
        "beta.md": pattern("beta", [("alpha", "complementary", 0.8)]),
        "sub/gamma.md": pattern("gamma"),
    })


def invoke(*args: str | Path) -> Result:
    result = runner.invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"the command crashed:\n{result.output}") from result.exception
    return result


def one_line(text: str) -> str:
    """Console output with rich's wrapping at the terminal width undone."""
    return " ".join(text.split())


def snapshot(root: Path) -> dict[Path, tuple[bytes, int, int]]:
    """Every file's bytes, mtime and inode: a rewrite changes at least the inode."""
    out: dict[Path, tuple[bytes, int, int]] = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            st = p.stat()
            out[p] = (p.read_bytes(), st.st_mtime_ns, st.st_ino)
    return out


def targets(path: Path) -> list[str]:
    entry = read_entry(path)
    assert entry is not None and entry.pattern.garden is not None
    return [link.target for link in entry.pattern.garden.inferred_links]


def report(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def by_path(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {Path(p["path"]).name: p for p in data["patterns"]}


def outside_garden(old: str, new: str) -> tuple[str, str, str, str]:
    """(old prefix, new prefix, old suffix, new suffix) around each text's garden block."""
    old_doc, new_doc = read_text(old), read_text(new)
    assert old_doc is not None and new_doc is not None
    a, b = locate(old_doc), locate(new_doc)
    return old[:a.start], new[:b.start], old[a.end:], new[b.end:]


# --- check ----------------------------------------------------------------------------------

def test_check_exits_0_on_a_clean_library(tmp_path: Path) -> None:
    basic(tmp_path)
    result = invoke("check", tmp_path)
    assert result.exit_code == 0, result.output
    assert "3 patterns read, 0 unreadable" in result.stdout


def test_check_exits_1_and_names_the_unreadable_file_and_line(tmp_path: Path) -> None:
    files = basic(tmp_path)
    broken = library(tmp_path, {"broken.md": "---\nslug: broken\ntitle: {a: 1\nsummary: x\n---\n"})
    result = invoke("check", tmp_path)
    assert result.exit_code == 1
    errors = [line for line in result.stdout.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert errors[0] == (f"error: {broken['broken.md']}:4:8: invalid YAML: did not find "
                         "expected ',' or '}' (while parsing a flow mapping started on line 3)")
    assert "3 patterns read, 1 unreadable" in result.stdout
    assert str(files["alpha.md"]) not in "\n".join(errors)


def test_check_exits_2_on_a_missing_folder(tmp_path: Path) -> None:
    result = invoke("check", tmp_path / "nowhere")
    assert result.exit_code == 2
    assert f"error: {tmp_path / 'nowhere'}: no such library folder" in one_line(result.stderr)


@pytest.mark.parametrize("command", ["check", "prune", "state"])
def test_a_file_given_as_the_library_is_refused_and_nothing_is_written(
        tmp_path: Path, command: str) -> None:
    files = basic(tmp_path)
    (tmp_path / ".gardener").mkdir()
    (tmp_path / ".gardener" / "state.json").write_text('{"format": 1, "patterns": {}}\n')
    before = snapshot(tmp_path)
    result = invoke(command, files["alpha.md"])
    assert result.exit_code == 2
    assert (f"error: {files['alpha.md']} is a file, not a library folder"
            in one_line(result.stderr))
    assert snapshot(tmp_path) == before  # alpha's links to beta and gamma are not 'dangling'


@pytest.mark.parametrize("command", ["check", "prune", "state"])
def test_a_folder_without_markdown_files_is_refused(tmp_path: Path, command: str) -> None:
    (tmp_path / "notes.txt").write_text("not a pattern\n")
    result = invoke(command, tmp_path)
    assert result.exit_code == 2
    assert f"error: {tmp_path}: no *.md files" in one_line(result.stderr)


# --- prune: options -------------------------------------------------------------------------

def test_prune_removes_what_it_should_and_reports_it(tmp_path: Path) -> None:
    files = basic(tmp_path)
    before = snapshot(tmp_path)
    out = tmp_path.parent / f"{tmp_path.name}-report.json"
    result = invoke("prune", tmp_path, "--report", out, "--today", TODAY)
    assert result.exit_code == 0, result.output
    assert targets(files["alpha.md"]) == ["beta", "gamma"]
    assert f"last_pruned: {TODAY}\n" in files["alpha.md"].read_text(encoding="utf-8")
    assert snapshot(tmp_path)[files["beta.md"]] == before[files["beta.md"]]
    data = report(out)
    assert data["totals"]["changed"] == 1 and data["totals"]["unchanged"] == 2
    assert data["totals"]["removals_by_reason"] == {"dangling": 1}
    assert data["today"] == TODAY
    alpha = by_path(data)["alpha.md"]
    assert alpha["status"] == "changed" and alpha["slug"] == "alpha"
    assert [(r["kind"], r["item"], r["reason"]) for r in alpha["removals"]] == [
        ("link", "ghost", "dangling")]


def test_min_confidence_decides_what_is_weak(tmp_path: Path) -> None:
    files = basic(tmp_path)
    out = tmp_path.parent / f"{tmp_path.name}-report.json"
    result = invoke("prune", tmp_path, "--min-confidence", "0.7", "--report", out,
                    "--today", TODAY)
    assert result.exit_code == 0, result.output
    assert targets(files["alpha.md"]) == ["beta"]
    removals = by_path(report(out))["alpha.md"]["removals"]
    assert [(r["item"], r["reason"], r["detail"]) for r in removals] == [
        ("ghost", "dangling", "no pattern 'ghost' in the library"),
        ("gamma", "weak", "confidence 0.6 < 0.7")]
    assert report(out)["settings"]["min_confidence"] == 0.7


@pytest.mark.parametrize("value", ["1.5", "-0.1", "high"])
def test_min_confidence_out_of_range_is_refused_before_anything_is_written(
        tmp_path: Path, value: str) -> None:
    basic(tmp_path)
    before = snapshot(tmp_path)
    result = invoke("prune", tmp_path, "--min-confidence", value)
    assert result.exit_code == 2
    assert "--min-confidence" in result.stderr
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("value", ["2026-02-30", "tomorrow", "25.11.2026"])
def test_today_must_be_a_date(tmp_path: Path, value: str) -> None:
    basic(tmp_path)
    before = snapshot(tmp_path)
    result = invoke("prune", tmp_path, "--today", value)
    assert result.exit_code == 2
    assert f"--today {value!r} is not a date like 2026-02-19" in one_line(result.stderr)
    assert snapshot(tmp_path) == before


def test_dry_run_writes_nothing_and_prints_the_diff(tmp_path: Path) -> None:
    files = basic(tmp_path)
    before = snapshot(tmp_path)
    out = tmp_path.parent / f"{tmp_path.name}-report.json"
    result = invoke("prune", tmp_path, "--dry-run", "--today", TODAY, "--report", out)
    assert result.exit_code == 0, result.output
    assert snapshot(tmp_path) == before
    name = files["alpha.md"].as_posix()
    assert result.stdout.startswith(f"--- a/{name}\n+++ b/{name}\n@@ ")
    assert "-    - target: ghost\n" in result.stdout
    assert f"+  last_pruned: {TODAY}\n" in result.stdout
    assert result.stdout.count("--- a/") == 1
    data = report(out)
    assert data["dry_run"] is True and data["totals"]["changed"] == 1


def test_a_written_file_keeps_its_mode(tmp_path: Path) -> None:
    files = basic(tmp_path)
    files["alpha.md"].chmod(0o640)
    result = invoke("prune", tmp_path, "--today", TODAY)
    assert result.exit_code == 0, result.output
    assert targets(files["alpha.md"]) == ["beta", "gamma"]
    assert stat.S_IMODE(files["alpha.md"].stat().st_mode) == 0o640


def test_a_second_prune_changes_nothing(tmp_path: Path) -> None:
    basic(tmp_path)
    assert invoke("prune", tmp_path, "--today", TODAY).exit_code == 0
    before = snapshot(tmp_path)
    out = tmp_path.parent / f"{tmp_path.name}-report.json"
    result = invoke("prune", tmp_path, "--today", "2026-12-31", "--report", out)
    assert result.exit_code == 0, result.output
    assert snapshot(tmp_path) == before
    assert report(out)["totals"]["changed"] == 0


# --- prune: files that cannot be handled ----------------------------------------------------

def _refuse_replace(monkeypatch: pytest.MonkeyPatch, target: Path) -> None:
    """Make replacing ``target`` fail as a permission error does (root ignores modes)."""
    real = os.replace

    def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if Path(dst) == target:
            raise PermissionError(13, "Permission denied", str(dst))
        real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


def _three_changing(root: Path) -> dict[str, Path]:
    """Three patterns that each lose one dangling link; the middle one sits in ``locked/``."""
    return library(root, {
        "a.md": pattern("a", [("b", "enables", 0.9), ("ghost-a", "enables", 0.9)]),
        "locked/b.md": pattern("b", [("c", "enables", 0.9), ("ghost-b", "enables", 0.9)]),
        "c.md": pattern("c", [("a", "enables", 0.9), ("ghost-c", "enables", 0.9)]),
    })


def test_a_file_that_cannot_be_written_fails_that_pattern_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = _three_changing(tmp_path)
    locked = files["locked/b.md"]
    if os.geteuid() == 0:
        _refuse_replace(monkeypatch, locked)
    else:
        locked.parent.chmod(0o555)  # no new file, no rename, in that folder
    original = locked.read_bytes()
    out = tmp_path.parent / f"{tmp_path.name}-report.json"
    try:
        result = invoke("prune", tmp_path, "--today", TODAY, "--report", out)
    finally:
        locked.parent.chmod(0o755)
    assert result.exit_code == 1
    assert locked.read_bytes() == original
    assert targets(files["a.md"]) == ["b"] and targets(files["c.md"]) == ["a"]
    assert f"failed: {locked}: cannot write:" in result.stderr
    data = report(out)
    failed = by_path(data)["b.md"]
    assert failed["status"] == "failed" and "cannot write" in failed["error"]
    assert data["totals"]["changed"] == 2 and data["totals"]["failed"] == 1
    assert not list(locked.parent.glob(".*.tmp"))


def test_a_read_only_file_is_not_rewritten(tmp_path: Path) -> None:
    files = _three_changing(tmp_path)
    locked = files["locked/b.md"]
    original = locked.read_bytes()
    locked.chmod(0o444)
    out = tmp_path.parent / f"{tmp_path.name}-report.json"
    result = invoke("prune", tmp_path, "--today", TODAY, "--report", out)
    assert locked.read_bytes() == original
    assert stat.S_IMODE(locked.stat().st_mode) == 0o444
    assert result.exit_code == 1
    assert f"failed: {locked}: cannot write: the file is read-only" in one_line(result.stderr)
    failed = by_path(report(out))["b.md"]
    assert failed["status"] == "failed" and "read-only" in failed["error"]
    assert targets(files["a.md"]) == ["b"] and targets(files["c.md"]) == ["a"]


def _bomb() -> str:
    lines = ["---", 'a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 9):
        prev = chr(ord("a") + i - 1)
        this = chr(ord("a") + i)
        lines.append(f"{this}: &{this} [{', '.join([f'*{prev}'] * 10)}]")
    return "\n".join([*lines, "slug: bomb", "---", "Body.", ""])


BAD_FILES: dict[str, tuple[str | bytes, str]] = {
    # name: (content, expected message after "path:")
    "not-utf8": (pattern("x").encode("utf-8").replace(b"Folded", b"Fold\xe9d"),
                 "7:7: not UTF-8: byte 0xe9"),
    "duplicate-key": ("---\nslug: dup\ntitle: One\nslug: again\n---\nBody.\n",
                      "4:1: invalid YAML: found duplicate key 'slug' (first defined on "
                      "front-matter line 1)"),
    "alias-bomb": (_bomb(), "2: front matter expands to more than 100,000 YAML nodes"),
    "a-list": ("---\n- one\n- two\n---\nBody.\n", "2:1: front matter is a list, not a mapping"),
    "a-scalar": ("---\njust text\n---\nBody.\n",
                 "2:1: front matter is a single value, not a mapping"),
    "unclosed": ("---\nslug: open\ntitle: never closed\n", "1: front matter opened with '---' "
                 "is never closed"),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_a_bad_file_is_refused_by_name_and_line_and_the_pass_goes_on(
        tmp_path: Path, kind: str) -> None:
    files = basic(tmp_path)
    content, message = BAD_FILES[kind]
    bad = library(tmp_path, {f"{kind}.md": content})[f"{kind}.md"]
    bad_bytes = bad.read_bytes()

    check = invoke("check", tmp_path)
    assert check.exit_code == 1
    assert f"error: {bad}:{message}" in check.stdout, check.stdout
    assert "3 patterns read, 1 unreadable" in check.stdout

    out = tmp_path.parent / f"{tmp_path.name}-report.json"
    result = invoke("prune", tmp_path, "--today", TODAY, "--report", out)
    assert result.exit_code == 0, result.output  # no pattern in it was asked for
    assert f"unreadable: {bad}:{message}" in result.stderr
    assert "error:" not in result.stderr
    assert [line.split() for line in result.stderr.splitlines() if "│ unreadable" in line] \
        == [["│", "unreadable", "│", "1", "│"]]
    assert bad.read_bytes() == bad_bytes
    assert targets(files["alpha.md"]) == ["beta", "gamma"]
    data = report(out)
    entry = by_path(data)[f"{kind}.md"]
    assert entry["status"] == "failed" and entry["error"].startswith(f"{bad}:{message}")
    assert data["totals"]["failed"] == 1 and data["totals"]["changed"] == 1

    strict = invoke("prune", tmp_path, "--today", TODAY, "--strict")
    assert strict.exit_code == 1
    assert f"unreadable: {bad}:{message}" in strict.stderr
    assert strict.stderr.endswith("error: 1 file unreadable (--strict); each is listed above\n")


Transform = Callable[[str], str]
ENCODINGS: dict[str, Transform] = {
    "crlf": lambda text: text.replace("\n", "\r\n"),
    "bom": lambda text: "\ufeff" + text,
    "bom+crlf": lambda text: "\ufeff" + text.replace("\n", "\r\n"),
}


@pytest.mark.parametrize("kind", sorted(ENCODINGS))
def test_crlf_and_bom_files_are_pruned_with_every_other_byte_intact(
        tmp_path: Path, kind: str) -> None:
    files = basic(tmp_path)
    alpha = files["alpha.md"]
    body = "Body with a CRLF-sensitive table:\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    old = ENCODINGS[kind](pattern("alpha", [("beta", "enables", 0.9), ("ghost", "tools", 0.8)],
                                  body=body))
    alpha.write_bytes(old.encode("utf-8"))
    result = invoke("prune", tmp_path, "--today", TODAY)
    assert result.exit_code == 0, result.output
    raw = alpha.read_bytes()
    new = raw.decode("utf-8")
    assert new != old
    old_head, new_head, old_tail, new_tail = outside_garden(old, new)
    assert new_head.encode("utf-8") == old_head.encode("utf-8")
    assert new_tail.encode("utf-8") == old_tail.encode("utf-8")
    assert raw.startswith(b"\xef\xbb\xbf---") == kind.startswith("bom")
    if "crlf" in kind:
        assert raw.count(b"\n") == raw.count(b"\r\n")
    assert targets(alpha) == ["beta"]
    fm = read_text(new)
    assert fm is not None
    assert yaml.safe_load(fm.front_matter)["graph_garden"]["last_pruned"].isoformat() == TODAY


# --- state ----------------------------------------------------------------------------------

def test_state_says_shared_values_once_and_keeps_slugs_whole_at_80_columns(
        tmp_path: Path) -> None:
    from gardener.library.state import State, save_state
    from gardener.model import Garden

    basic(tmp_path)
    state = State()
    for slug, digit in (("alpha-with-a-rather-long-slug", "1"), ("beta", "2")):
        state.record(slug, fingerprint=digit * 64, prompt_version="propose@abc", model="m1",
                     candidates_fp=digit * 64, garden=Garden(), on=dt.date(2026, 3, 1))
    save_state(tmp_path, state)
    result = runner.invoke(app, ["state", str(tmp_path)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    head, _, table = result.stdout.partition("\u250f")  # the table's top-left corner
    assert one_line(head).startswith(
        "all 2 patterns: date 2026-03-01, model m1, prompt_version propose@abc, garden ")
    assert "alpha-with-a-rather-long-slug" in result.stdout  # not cut to "alpha-wi…"
    assert "model" not in table and "fingerprint" in table  # columns only for what differs
