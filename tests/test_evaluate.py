"""``gardener evaluate``: held-out patterns gardened in a copy, their links scored against the
hidden human relationships, beside the ranker alone; the library itself never written.

The end-to-end tests run on a small library made in a temporary folder from
``../shared/gold/commons-engineering`` (five held-out patterns and the patterns their human
relationships name) with the loopback fake model; they skip, saying why, when it is absent.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gardener.cli.main import app
from gardener.library import load as library_mod
from gardener.model import (
    Detail,
    Garden,
    HumanLink,
    Link,
    Outcome,
    Pattern,
    Status,
    vocabulary_type,
)
from gardener.pipeline.evaluate import Evaluation, Heldout, measure
from gardener.pipeline.evaluation_report import markdown
from gardener.pipeline.holdout import eligible, gold_of, unique_slugs
from gardener.shortlist.candidates import CandidateIndex
from gardener.testing.fake_answers import link_targets, request_schema
from gardener.testing.fake_openai import FakeOpenAI, use_as_endpoint
from gardener.testing.responders import asked_slug, grounded_responder

ROOT = Path(__file__).resolve().parents[1]
GOLD = ROOT.parent / "shared" / "gold" / "commons-engineering"
HELD_OUT = 5
runner = CliRunner()


# ---------------------------------------------------------------------------------------------
# The scoring, on plain data


def _pattern(slug: str, text: str, *, rels: tuple[tuple[str, str], ...] = (),
             links: tuple[tuple[str, str], ...] | None = None) -> Pattern:
    garden = None if links is None else Garden(inferred_links=tuple(
        Link(target=t, type=k, confidence=0.9) for t, k in links))
    return Pattern(path=Path(f"/lib/{slug}.md"), slug=slug, title=slug.replace("-", " "),
                   summary=text, keywords=tuple(text.split()[:3]),
                   relationships=tuple(HumanLink(target=t, type=k) for t, k in rels),
                   garden=garden)


def test_measure_scores_written_links_and_the_ranker_at_the_same_m() -> None:
    words = {"hub": "river water commons", "a": "river water flow", "b": "river commons care",
             "c": "water commons stewardship", "d": "mountain stone", "e": "river stone"}
    gold = {"a": frozenset({"enables"}), "b": frozenset({"requires", "related"}),
            "c": frozenset({"governed_by"})}
    held = Heldout(root=Path("/lib"), chosen=("hub",), golds={"hub": gold},
                   before={"hub": _pattern("hub", words["hub"])}, eligible=1,
                   guess="enables", seed=1, n=1)
    copied = [_pattern(s, t) for s, t in words.items()]
    # written: a (hit, type agrees), b (hit, type disagrees), e (miss), a again (not twice)
    written = (("a", "enables"), ("b", "complementary"), ("e", "enables"), ("a", "requires"))
    gardened = [_pattern("hub", words["hub"], links=written), *copied[1:]]
    outcome = Outcome(path="/lib/hub.md", slug="hub", status=Status.CHANGED,
                      usage={"prompt_tokens": 100, "completion_tokens": 20}, requests=1,
                      detail=Detail(dropped=["inferred_links[4] 'c': evidence: too short",
                                             "inferred_links[5] 'd': evidence: too short",
                                             "entities[0] 'x': copied"]))
    [row] = measure(held, copied, gardened, [outcome], shown=4)
    assert (row.model.proposed, row.model.hits, row.model.targets) == (3, 2, 3)
    assert (row.model.typed_hits, row.model.agreeing) == (2, 1)  # b: requires, not complementary
    index = CandidateIndex(copied)
    assert row.ranker == index.ranked(copied[0], 3)  # its own top m, m = 3 distinct targets
    assert row.ranker_score.hits == sum(t in gold for t in row.ranker)
    assert row.ranker_score.agreeing == sum(gold[t] == {"enables"} for t in row.ranker
                                            if t in gold)  # every link typed "enables"
    # its picks before validation: the written targets and the dropped links' (c, d)
    assert (row.picks.proposed, row.picks.hits) == (5, 3)
    assert row.ranker_picks.proposed == len(index.ranked(copied[0], 5))
    offered = index.ranked(copied[0], 4)
    assert row.shown == len(offered) and row.in_shortlist == sum(t in gold for t in offered)
    ev = Evaluation(library="/lib", model="m", held=held, rows=[row])
    t = ev.model_totals
    assert (t.precision, t.recall, t.agreement) == (2 / 3, 2 / 3, 0.5)
    data = ev.as_dict()
    assert data["totals"]["model"]["precision"] == round(2 / 3, 4)
    assert [link["hit"] for link in data["patterns"][0]["links"]] == [True, True, False, True]
    assert "| model | 3 | 3.0 | 67% (2) | 67% | 50% (1/2) |" in markdown(ev)
    assert "| model's picks before validation | 5 | 5.0 | 60% (3) | 100% | - |" in markdown(ev)


def test_a_pattern_the_pass_did_not_answer_is_listed_and_left_out_of_the_totals() -> None:
    gold = {"a": frozenset({"enables"}), "b": frozenset({"requires"}),
            "c": frozenset({"enables"})}
    held = Heldout(root=Path("/lib"), chosen=("hub", "other"),
                   golds={"hub": gold, "other": gold},
                   before={}, eligible=2, guess="enables", seed=1, n=2)
    copied = [_pattern(s, "river water") for s in ("hub", "other", "a", "b", "c")]
    gardened = [_pattern("hub", "river water", links=(("a", "enables"),)), *copied[1:]]
    outcomes = [Outcome(path="/lib/hub.md", slug="hub", status=Status.CHANGED),
                Outcome(path="/tmp/x/library/other.md", slug="other", status=Status.FAILED,
                        error="/tmp/x/library/other.md: the endpoint refused")]
    rows = measure(held, copied, gardened, outcomes, shown=40, copy=Path("/tmp/x/library"))
    assert [r.scored for r in rows] == [True, False]
    assert rows[1].error == "/lib/other.md: the endpoint refused"  # the library's path
    ev = Evaluation(library="/lib", model="m", held=held, rows=rows)
    assert (ev.model_totals.patterns, ev.model_totals.targets) == (1, 3)
    assert ev.model_totals.precision == 1.0
    assert "Failures:" in markdown(ev)


# ---------------------------------------------------------------------------------------------
# End to end, on a small library made from ../shared/gold


@pytest.fixture(scope="module")
def small_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five eligible patterns of the gold library and every pattern their human
    relationships name, at their own relative paths."""
    if not GOLD.is_dir():
        pytest.skip(f"{GOLD} is absent: the gold library (../shared/gold) is not mounted")
    patterns = library_mod.load(GOLD).patterns
    slugs = frozenset(p.slug for p in patterns)
    unique = unique_slugs(patterns)
    golds = {p.slug: gold_of(p, slugs) for p in patterns if p.slug in unique}
    chosen = eligible({s: len(g) for s, g in golds.items()})[:HELD_OUT]
    by_slug = {p.slug: p for p in patterns}
    lib = tmp_path_factory.mktemp("evaluate") / "lib"
    for slug in sorted(set(chosen) | {t for s in chosen for t in golds[s]}):
        dest = lib / by_slug[slug].path.relative_to(GOLD)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(by_slug[slug].path, dest)
    for path in lib.rglob("*.md"):  # read-only, as the shared library is
        path.chmod(stat.S_IMODE(path.stat().st_mode) & ~(stat.S_IWUSR | stat.S_IWGRP
                                                         | stat.S_IWOTH))
    return lib


def _hidden(library: Path) -> dict[str, dict[str, frozenset[str]]]:
    patterns = library_mod.load(library).patterns
    slugs = frozenset(p.slug for p in patterns)
    return {p.slug: gold_of(p, slugs) for p in patterns}


def _snapshot(library: Path) -> dict[str, tuple[bytes, int, int]]:
    return {str(p.relative_to(library)): (p.read_bytes() if p.is_file() else b"",
                                          p.stat().st_mode, p.stat().st_mtime_ns)
            for p in sorted(library.rglob("*"))}


def exactly_the_hidden(hidden: dict[str, dict[str, frozenset[str]]]) -> Any:
    """A responder that links exactly the asked pattern's hidden targets among those it was
    offered (as many as the schema allows), each typed with its human kind where the
    vocabulary has one."""
    def respond(body: dict[str, Any]) -> dict[str, Any]:
        answer = grounded_responder(body)
        gold = hidden.get(asked_slug(body) or "", {})
        evidence = answer["inferred_links"][0]["evidence"] if answer["inferred_links"] else ""
        most = (request_schema(body) or {})["properties"]["inferred_links"]["maxItems"]
        answer["inferred_links"] = [
            {"target": t, "type": next((v for k in sorted(gold[t])
                                        if (v := vocabulary_type(k))), "enables"),
             "confidence_pct": 90, "evidence": evidence,
             "reason": "The human library links these two patterns directly"}
            for t in link_targets(body) if t in gold][:most]
        return answer
    return respond


def _linked(body: dict[str, Any], hidden: dict[str, dict[str, frozenset[str]]]) -> list[str]:
    """What `exactly_the_hidden` answered to ``body``: the hidden targets it was offered."""
    return [link["target"] for link in exactly_the_hidden(hidden)(body)["inferred_links"]]


def _invoke(*args: str) -> Any:
    result = runner.invoke(app, ["evaluate", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_a_model_that_links_exactly_the_hidden_targets_scores_precision_one(
        small_library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hidden = _hidden(small_library)
    before = _snapshot(small_library)
    report, md = tmp_path / "out" / "evaluate.json", tmp_path / "out" / "evaluate.md"
    with FakeOpenAI(responder=exactly_the_hidden(hidden)) as fake:
        use_as_endpoint(monkeypatch, fake)
        result = _invoke(str(small_library), "--n", str(HELD_OUT), "--seed", "3",
                         "--report", str(report), "--markdown", str(md))
        offered = {asked_slug(r.body or {}): _linked(r.body or {}, hidden)
                   for r in fake.chat_requests}
    assert result.exit_code == 0, result.output
    assert _snapshot(small_library) == before  # not a byte, mode or time changed
    # the estimate, printed before anything was asked
    assert "estimate for model" in result.output
    assert f"model calls:        {HELD_OUT}" in result.output
    assert result.output.index("estimate for model") < result.output.index("precision")
    data = json.loads(report.read_text(encoding="utf-8"))
    assert len(data["chosen"]) == HELD_OUT and set(offered) == set(data["chosen"])
    assert data["estimate"]["calls"] == HELD_OUT
    for row in data["patterns"]:
        gold = hidden[row["slug"]]
        assert sorted(row["hidden"]) == sorted(gold)
        found = offered[row["slug"]]
        written = [link["target"] for link in row["links"]]
        refused = "\n".join(row["dropped"])
        # the shipped calibration knows the ranker alone: each of the model's picks is
        # written when its chance reaches 0.5, else refused with its chance; the ranker's
        # likely candidates are written too
        for target in found:
            assert (target in written) != (f"'{target}': calibrated confidence" in refused)
        assert row["model"]["hits"] == sum(link["hit"] for link in row["links"])
        assert row["model"]["targets"] == len(gold)
        # the ranker: its own top m, m = the links written, scored the same way
        assert len(row["ranker"]) <= len(written)
        assert row["ranker_score"]["hits"] == sum(r["hit"] for r in row["ranker"])
    totals = data["totals"]["model"]
    targets = sum(len(hidden[s]) for s in data["chosen"])
    assert totals["targets"] == targets
    assert totals["recall"] == round(totals["hits"] / targets, 4)
    assert data["totals"]["ranker"]["links"] == totals["links"]
    assert "not yet calibrated for this library" in data["calibration"]["line"]
    assert not (small_library / ".gardener" / "calibration.json").exists()
    text = md.read_text(encoding="utf-8")
    assert text.startswith("# Link quality of lib")
    assert f"| model | {totals['links']} |" in text and "| ranker alone, top m |" in text
    assert all(f"| {s} |" in text for s in data["chosen"])
    assert "The pass's links: Confidence is not yet calibrated" in text


def test_calibrate_fits_the_model_that_knows_and_the_next_pass_writes_its_picks(
        small_library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    library = tmp_path / "lib"
    shutil.copytree(small_library, library)
    hidden = _hidden(library)
    report = tmp_path / "fit.json"
    with FakeOpenAI(responder=exactly_the_hidden(hidden)) as fake:
        use_as_endpoint(monkeypatch, fake)
        fitted = _invoke(str(library), "--n", str(HELD_OUT), "--calibrate",
                         "--report", str(report), "--markdown", str(tmp_path / "fit.md"))
        assert fitted.exit_code == 0, fitted.output
        path = library / ".gardener" / "calibration.json"
        cal = json.loads(path.read_text(encoding="utf-8"))
        model = json.loads(report.read_text(encoding="utf-8"))["model"]
        assert cal["model"] == model and "model_link" in cal["features"]
        assert cal["patterns"] == HELD_OUT and not cal["shipped"]
        assert cal["measured"]["matched"] == cal["measured"]["written"] > 0
        assert f"calibration written to {path}" in " ".join(fitted.output.split())
        assert json.loads(report.read_text())["fitted"]["fingerprint"] == cal["fingerprint"]
        assert "## Calibration fitted from this evaluation" in (tmp_path / "fit.md").read_text()
        # the next evaluation's pass uses it: the model's picks are written, and only they
        again = _invoke(str(library), "--n", str(HELD_OUT), "--report", str(report))
    assert again.exit_code == 0, again.output
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["calibration"]["line"].startswith("Confidence calibrated on lib:")
    assert data["totals"]["model"]["precision"] == 1.0
    assert data["totals"]["model"]["hits"] == data["totals"]["picks"]["hits"]


def test_estimate_only_asks_nothing_and_writes_nothing(
        small_library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _snapshot(small_library)
    with FakeOpenAI() as fake:
        use_as_endpoint(monkeypatch, fake)
        result = _invoke(str(small_library), "--n", "2", "--estimate",
                         "--report", str(tmp_path / "estimate.json"))
        assert fake.chat_requests == []
    assert result.exit_code == 0, result.output
    assert "model calls:        2" in result.output and "precision" not in result.output
    assert json.loads((tmp_path / "estimate.json").read_text())["calls"] == 2
    assert _snapshot(small_library) == before


def test_recorded_answers_replay_offline_to_the_same_scores(
        small_library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fixtures = tmp_path / "fixtures"
    args = [str(small_library), "--n", "3", "--seed", "7", "--fixtures", str(fixtures)]
    with FakeOpenAI(responder=grounded_responder) as fake:
        use_as_endpoint(monkeypatch, fake)
        recorded = _invoke(*args, "--record", "--report", str(tmp_path / "a.json"))
        asked = len(fake.chat_requests)
    assert recorded.exit_code == 0, recorded.output
    assert asked == 3 and any(fixtures.iterdir())
    # the server is gone: a replay that asked it would fail
    replayed = _invoke(*args, "--replay", "--report", str(tmp_path / "b.json"))
    assert replayed.exit_code == 0, replayed.output
    first, second = (json.loads((tmp_path / n).read_text()) for n in ("a.json", "b.json"))
    assert second["totals"] == first["totals"] and second["chosen"] == first["chosen"]
    assert [r["links"] for r in second["patterns"]] == [r["links"] for r in first["patterns"]]


def test_a_spent_token_budget_leaves_patterns_unscored_and_exits_3(
        small_library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAI(responder=grounded_responder) as fake:
        use_as_endpoint(monkeypatch, fake)
        result = _invoke(str(small_library), "--n", "3", "--budget-tokens", "1",
                         "--concurrency", "1", "--report", str(tmp_path / "r.json"))
    assert result.exit_code == 3, result.output
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["scored"] == 1 and data["not_scored"] == 2
    assert data["totals"]["model"]["targets"] == sum(
        len(r["hidden"]) for r in data["patterns"] if r["scored"])


def test_only_names_an_eligible_pattern_or_is_refused(
        small_library: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hidden = _hidden(small_library)
    few = next(s for s, g in sorted(hidden.items()) if len(g) < 3)
    result = _invoke(str(small_library), "--only", few, "--estimate")
    assert result.exit_code == 2 and "cannot be evaluated" in result.output
    many = next(s for s, g in sorted(hidden.items()) if len(g) >= 3)
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    result = _invoke(str(small_library), "--only", many, "--estimate")
    assert result.exit_code == 0 and "model calls:        1" in result.output


def test_no_pattern_with_enough_human_links_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("---\nslug: a\ntitle: A\n---\n# A\n", encoding="utf-8")
    result = _invoke(str(tmp_path))
    assert result.exit_code == 2 and "nothing to measure links against" in result.output
    assert os.listdir(tmp_path) == ["a.md"]
