"""What ``gardener run`` exits with, end to end (issue 27): a workflow can tell done (0), a
pattern asked for that failed (1), usage or set-up (2) and a stopped pass (3) apart, and a
library with a few broken files is still gardened, the broken ones listed.

The model is replayed from ``fixtures/``; every run shares Prefect's temporary server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from gardener.cli.main import app
from gardener.endpoint.settings import ENDPOINT_VARIABLES

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "patterns"
FIXTURES = ROOT / "fixtures"
TODAY = "2026-02-19"
ASKED = "consent-decision-making"
BROKEN = {"broken-yaml.md": "---\nslug: broken\ntitle: {a: 1\n---\nBody.\n",
          "not-closed.md": "---\nslug: open\ntitle: never closed\n"}

runner = CliRunner()


@pytest.fixture
def library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sample library, and two files no reader can read."""
    for name in ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "library"
    folder.mkdir()
    for path in sorted(SAMPLES.glob("*.md")):
        if path.name != "README.md":
            (folder / path.name).write_bytes(path.read_bytes())
    for name, text in BROKEN.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def run(library: Path, *args: str) -> Result:
    return runner.invoke(app, ["run", str(library), "--fixtures", str(FIXTURES), "--replay",
                               "--today", TODAY, *args], catch_exceptions=False)


def report_of(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def summary_rows(stderr: str) -> dict[str, str]:
    """The summary table's rows, name to value."""
    rows: dict[str, str] = {}
    for line in stderr.splitlines():
        if line.startswith("│"):
            name, value = (cell.strip() for cell in line.strip("│").split("│"))
            rows[name] = value
    return rows


def test_broken_files_not_asked_for_are_listed_and_the_pass_is_done(
        library: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    result = run(library, "--only", ASKED, "--report", str(report))
    assert result.exit_code == 0, result.output
    for name in BROKEN:
        assert f"unreadable: {library / name}:" in result.stderr
    assert "error:" not in result.stderr
    rows = summary_rows(result.stderr)
    assert rows["unreadable"] == "2" and rows["failed"] == "0" and rows["changed"] == "1"
    data = report_of(report)
    listed = {Path(p["path"]).name for p in data["patterns"] if p["slug"] is None}
    assert listed == set(BROKEN)


def test_strict_fails_the_pass_on_a_broken_file(library: Path) -> None:
    result = run(library, "--only", ASKED, "--strict")
    assert result.exit_code == 1, result.output
    assert result.stderr.endswith("error: 2 files unreadable (--strict); each is listed "
                                  "above\n")


def test_a_pattern_limit_is_a_planned_batch_not_a_spent_budget(library: Path) -> None:
    result = run(library, "--max-patterns", "3")
    assert result.exit_code == 0, result.output
    patterns = len(list(library.glob("*.md"))) - len(BROKEN)
    said = " ".join(result.stderr.split())
    assert (f"pattern limit reached: {patterns - 3} stale patterns left for a later batch "
            "(--max-patterns); run again to garden them") in said
    assert "token budget" not in said and "not asked (budget)" not in said
    assert "error:" not in said and "stopped:" not in said
    rows = summary_rows(result.stderr)
    assert rows["left for a later batch"] == str(patterns - 3)


def test_a_usage_error_is_exit_2_and_one_line(library: Path) -> None:
    result = run(library, "--vitality-target", "nowhere")
    assert result.exit_code == 2
    assert result.stderr.endswith("error: --vitality-target must be 'garden' or "
                                  "'assessment', not 'nowhere'\n")


def test_two_files_sharing_a_slug_are_listed_not_failed(library: Path) -> None:
    """Real libraries hold files that share a slug (Commons Engineering: the same pattern in
    two folders): the second is no pattern of the pass, so a weekly run stays green."""
    from gardener.cli.errors import verdict
    from gardener.library import load
    from gardener.pipeline.garden import select

    original = (library / f"{ASKED}.md").read_text(encoding="utf-8")
    (library / "sub").mkdir()
    (library / "sub" / f"{ASKED}.md").write_text(original, encoding="utf-8")
    chosen, clashes = select(load.load(library), ())
    (clash,) = clashes
    assert clash.path == str(library / "sub" / f"{ASKED}.md")
    assert clash.detail.problem == "duplicate_slug" and clash.status.value == "failed"
    assert ASKED in {e.pattern.slug for e in chosen}
    assert verdict([clash]) is None
    failed = verdict([clash], strict=True)
    assert failed is not None and failed.exit_code == 1
