"""What the command line prints: messages reach the user whole, one line each.

Rich reads ``[...]`` in a printed string as markup, so a message holding an error tag, a
path or a model's text in square brackets lost that part silently; and a progress bar that
draws nothing (stderr not a terminal) still ended with a stray blank line.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from gardener.cli.main import app
from gardener.testing.fake_openai import FakeOpenAI, request_schema, use_as_endpoint

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "patterns"
BRACKETED = "Both rely on [bold]shared[/bold] commitments [1]."

runner = CliRunner()


def bracketed_responder(body: dict[str, Any]) -> dict[str, Any]:
    """One link to the first candidate, with square brackets in its reason and labels."""
    schema = request_schema(body) or {}
    defs = schema.get("$defs", {})
    link = next(d for name, d in defs.items() if "target" in d.get("properties", {}))
    first = link["properties"]["target"]["enum"][0]
    return {
        "entities": [{"id": "reasoned-objection", "type": "concept",
                      "label": "[red]Reasoned objection[/red]", "relevance_pct": 80}],
        "communities": [{"id": "governance", "label": "[Governance]", "confidence_pct": 70}],
        "inferred_links": [{"target": first, "type": "complementary", "confidence_pct": 80,
                            "evidence": "no member has a reasoned objection",
                            "reason": BRACKETED}],
        "vitality_band": "sustaining",
        "vitality_reasoning": "Widely practised [see field notes] and still taught in new "
                              "groups.",
    }


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    with FakeOpenAI(responder=bracketed_responder, api_key="sk-right-key") as fake:
        use_as_endpoint(monkeypatch, fake, key="sk-right-key")
        monkeypatch.setenv("COLUMNS", "400")
        yield fake


def propose(*args: str) -> Result:
    result = runner.invoke(app, ["propose", str(SAMPLE / "consent-decision-making.md"),
                                 "--library", str(SAMPLE), "--model", "m", "--mode", "tools",
                                 *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(result.output) from result.exception
    return result


def test_a_refused_key_is_one_whole_line_with_its_pattern_tag(
        endpoint: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key")
    result = propose()
    assert result.exit_code == 1
    assert result.stderr.startswith("error: [pattern=consent-decision-making prompt=propose@")
    assert result.stderr.count("\n") == 1
    assert "check OPENAI_API_KEY" in result.stderr and "sk-wrong-key" not in result.stderr


def test_square_brackets_in_a_proposal_are_printed_as_written(endpoint: FakeOpenAI) -> None:
    result = propose()
    assert result.exit_code == 0, result.output
    assert not result.stdout.startswith("\n")
    for text in (BRACKETED, "[red]Reasoned objection[/red]", "[Governance]",
                 "[see field notes]"):
        assert text in result.stdout, text


def test_check_prints_a_bracketed_path_whole(tmp_path: Path) -> None:
    root = tmp_path / "lib [draft]"
    root.mkdir()
    broken = root / "broken.md"
    broken.write_text("---\nslug: broken\ntitle: {a: 1\n---\n", encoding="utf-8")
    result = runner.invoke(app, ["check", str(root)])
    assert result.exit_code == 1
    assert result.stdout.startswith(f"error: {broken}:")


def test_the_prune_summary_keeps_every_name_on_a_narrow_terminal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    (tmp_path / "a.md").write_bytes((SAMPLE / "consent-decision-making.md").read_bytes())
    result = runner.invoke(app, ["prune", str(tmp_path), "--dry-run"])
    assert result.exit_code == 0, result.output
    names = [line.strip("│ ").split()[0] for line in result.stderr.splitlines()
             if line.startswith("│")]
    assert names == ["patterns", "changed", "unchanged", "skipped", "failed", "conflict",
                     "removed", "renamed", "human"]
