"""Incremental state: the skip decision, the file round trip, corrupt files, threads."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from gardener.library import document, pattern
from gardener.library.state import (
    PatternState,
    StaleReason,
    State,
    content_fingerprint,
    garden_hash,
    load_state,
    needs_gardening,
    render,
    save_state,
    state_path,
    summarize,
    without_assessment_reasoning,
)
from gardener.model import Entity, Garden, Link

GARDEN = Garden(
    last_pruned=dt.date(2026, 2, 19),
    entities=(Entity(id="distributed-leadership", type="concept", label="Distributed Leadership",
                     relevance=1.0),),
    inferred_links=(Link(target="adaptive-facilitation", type="complementary", confidence=0.88,
                         reason="Real-time facilitation adjustment"),),
)
INPUTS: dict[str, str] = {"fingerprint": "f" * 64, "prompt_version": "propose-v3",
                          "model": "gpt-4o-mini", "candidates_fp": "c" * 64}


def recorded(state: State, slug: str, **override: Any) -> PatternState:
    args: dict[str, Any] = {**INPUTS, "garden": GARDEN, "on": dt.date(2026, 3, 1), **override}
    return state.record(slug, **args)


@pytest.mark.parametrize(("change", "reason"), [
    ({}, StaleReason.UP_TO_DATE),
    ({"fingerprint": "e" * 64}, StaleReason.CONTENT),
    ({"prompt_version": "propose-v4"}, StaleReason.PROMPT),
    ({"model": "gpt-4o"}, StaleReason.MODEL),
    ({"candidates_fp": "d" * 64}, StaleReason.CANDIDATES),
    ({"fingerprint": "e" * 64, "model": "gpt-4o"}, StaleReason.CONTENT),
    ({"prompt_version": "propose-v4", "candidates_fp": "d" * 64}, StaleReason.PROMPT),
])
def test_needs_gardening_gives_the_first_reason(change: dict[str, str],
                                                 reason: StaleReason) -> None:
    entry = recorded(State(), "p")
    stale, why = needs_gardening(entry, **{**INPUTS, **change})
    assert (stale, why) == (reason != StaleReason.UP_TO_DATE, reason)
    assert why == reason.value


def test_a_pattern_never_gardened_is_new() -> None:
    assert needs_gardening(None, **INPUTS) == (True, "new")


def test_round_trip_keeps_every_entry(tmp_path: Path) -> None:
    state = State()
    recorded(state, "b-pattern")
    recorded(state, "a-pattern", model="llama-3.1-8b", garden=None)
    assert state.dirty
    assert save_state(tmp_path, state) is None
    assert not state.dirty
    loaded = load_state(tmp_path)
    assert loaded.problems == ()
    assert loaded.snapshot() == state.snapshot()
    assert loaded.get("a-pattern") == PatternState(
        fingerprint="f" * 64, prompt_version="propose-v3", model="llama-3.1-8b",
        candidates="c" * 64, date=dt.date(2026, 3, 1), garden=garden_hash(None))


def test_file_is_sorted_and_stable_for_git(tmp_path: Path) -> None:
    state = State()
    for slug in ("zeta", "alpha", "mu"):
        recorded(state, slug)
    save_state(tmp_path, state)
    path = state_path(tmp_path)
    assert path == tmp_path / ".gardener" / "state.json"
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n")
    data = json.loads(text)
    assert data["format"] == 1
    assert list(data["patterns"]) == ["alpha", "mu", "zeta"]
    assert list(data["patterns"]["alpha"]) == sorted(data["patterns"]["alpha"])
    assert '\n    "mu": {\n      "candidates": ' in text
    # Re-recording the same inputs changes nothing, and saving again does not touch the file.
    mtime = path.stat().st_mtime_ns
    recorded(state, "mu")
    assert not state.dirty
    save_state(tmp_path, state)
    assert path.stat().st_mtime_ns == mtime
    assert path.read_text(encoding="utf-8") == text


def test_missing_file_is_an_empty_state(tmp_path: Path) -> None:
    state = load_state(tmp_path)
    assert len(state) == 0
    assert state.problems == ()
    assert not (tmp_path / ".gardener").exists()


@pytest.mark.parametrize(("content", "message"), [
    (b'{"format": 1, "patterns": {"a": {', "state.json:1:"),
    (b"[1, 2]", "expected a JSON object, found list"),
    (b'{"format": 99, "patterns": {}}', "unknown state format 99"),
    (b'{"format": 1, "patterns": []}', "'patterns' must be an object"),
    (b"\xff\xfe\x00garbage", "not UTF-8 text"),
])
def test_corrupt_file_is_reported_treated_as_empty_and_backed_up(
        tmp_path: Path, content: bytes, message: str, caplog: pytest.LogCaptureFixture) -> None:
    path = state_path(tmp_path)
    path.parent.mkdir()
    path.write_bytes(content)
    state = load_state(tmp_path)
    assert len(state) == 0
    assert any(message in p and str(path) in p for p in state.problems), state.problems
    assert message in caplog.text
    assert path.read_bytes() == content  # loading never writes
    recorded(state, "p")
    backup = save_state(tmp_path, state)
    assert backup == path.with_name("state.json.bak")
    assert backup.read_bytes() == content
    assert "copied to" in caplog.text
    assert load_state(tmp_path).get("p") is not None
    # A second corruption gets its own backup; the first one is not overwritten.
    path.write_bytes(b"{")
    assert save_state(tmp_path, State()) == path.with_name("state.json.1.bak")
    assert backup.read_bytes() == content


def test_bad_entry_is_dropped_alone_and_the_file_backed_up(tmp_path: Path) -> None:
    good = recorded(State(), "good")
    raw = {"format": 1, "patterns": {
        "good": good.to_json(),
        "no-model": {k: v for k, v in good.to_json().items() if k != "model"},
        "bad-date": {**good.to_json(), "date": "yesterday"},
        "not-object": "x",
    }}
    path = state_path(tmp_path)
    path.parent.mkdir()
    path.write_text(json.dumps(raw), encoding="utf-8")
    state = load_state(tmp_path)
    assert list(state.snapshot()) == ["good"]
    problems = "\n".join(state.problems)
    assert "entry 'no-model': missing model" in problems
    assert "entry 'bad-date': date 'yesterday' is not YYYY-MM-DD" in problems
    assert "entry 'not-object': expected an object, found str" in problems
    assert save_state(tmp_path, state) == path.with_name("state.json.bak")


def test_record_from_many_threads_while_saving(tmp_path: Path) -> None:
    state = State()
    barrier = threading.Barrier(8)

    def work(worker: int) -> None:
        barrier.wait()
        for i in range(50):
            recorded(state, f"p-{worker}-{i}", fingerprint=f"{worker}:{i}")
            if i % 10 == 0:
                save_state(tmp_path, state)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    save_state(tmp_path, state)
    loaded = load_state(tmp_path)
    assert loaded.problems == ()
    assert len(loaded) == 400
    assert loaded.get("p-7-49") == state.get("p-7-49")
    assert not list(state_path(tmp_path).parent.glob("*.tmp"))


def test_retain_and_forget_drop_entries_of_gone_patterns() -> None:
    state = State()
    for slug in ("a", "b", "c"):
        recorded(state, slug)
    assert state.retain({"a", "c", "new"}) == ["b"]
    assert state.forget("c")
    assert not state.forget("c")
    assert list(state.snapshot()) == ["a"]


def test_summarize_lists_patterns_by_slug() -> None:
    state = State()
    recorded(state, "zeta", model="gpt-4o")
    recorded(state, "alpha")
    rows = summarize(state)
    assert [r["slug"] for r in rows] == ["alpha", "zeta"]
    assert rows[1] == {"slug": "zeta", "date": "2026-03-01", "model": "gpt-4o",
                       "prompt_version": "propose-v3", "fingerprint": "ffffffffffff",
                       "candidates": "cccccccccccc", "garden": garden_hash(GARDEN)[:12]}


def test_garden_hash_ignores_layout_and_pruning_date_but_not_meaning() -> None:
    relaid = GARDEN.model_copy(update={
        "last_pruned": None,
        "entities": tuple(e.model_copy(update={"text": "  - id: x\n"})
                          for e in GARDEN.entities)})
    assert garden_hash(relaid) == garden_hash(GARDEN)
    moved = GARDEN.model_copy(update={"inferred_links": (
        GARDEN.inferred_links[0].model_copy(update={"confidence": 0.87}),)})
    assert garden_hash(moved) != garden_hash(GARDEN)
    assert garden_hash(Garden()) != garden_hash(None)


DATA: dict[str, Any] = {
    "slug": "distributed-leadership-design",
    "ontology": {"domain": "governance",
                 "commons_assessment": {"vitality": 4.2, "overall_score": 4.0}},
    "graph_garden": {"entities": []},
}


def test_content_fingerprint_is_pattern_fingerprint_when_the_setting_is_off() -> None:
    assert content_fingerprint(DATA, "body\n") == pattern.fingerprint(DATA, "body\n")
    written = {**DATA, "ontology": {**DATA["ontology"], "commons_assessment": {
        **DATA["ontology"]["commons_assessment"], "vitality_reasoning": "Generative."}}}
    assert content_fingerprint(written, "body\n") != content_fingerprint(DATA, "body\n")


def test_writing_the_reasoning_into_the_assessment_keeps_the_fingerprint() -> None:
    before = content_fingerprint(DATA, "body\n", vitality_in_assessment=True)
    written = {**DATA, "ontology": {**DATA["ontology"], "commons_assessment": {
        **DATA["ontology"]["commons_assessment"], "vitality_reasoning": "Generative."}}}
    assert content_fingerprint(written, "body\n", vitality_in_assessment=True) == before
    # Any other change in the assessment still counts.
    rescored = {**written, "ontology": {**written["ontology"], "commons_assessment": {
        **written["ontology"]["commons_assessment"], "vitality": 3.0}}}
    assert content_fingerprint(rescored, "body\n", vitality_in_assessment=True) != before


@pytest.mark.parametrize("before", [
    {"slug": "p"},
    {"slug": "p", "ontology": {}},
    {"slug": "p", "ontology": {"commons_assessment": {}}},
    {"slug": "p", "ontology": {"commons_assessment": {"vitality_reasoning": None}}},
])
def test_a_new_assessment_just_for_the_reasoning_reads_as_before(before: dict[str, Any]) -> None:
    written = {"slug": "p", "ontology": {"commons_assessment": {"vitality_reasoning": "x"}}}
    assert without_assessment_reasoning(written) == without_assessment_reasoning(before)
    assert (content_fingerprint(written, "", vitality_in_assessment=True)
            == content_fingerprint(before, "", vitality_in_assessment=True))


def test_render_is_deterministic_whatever_the_insertion_order() -> None:
    one, two = State(), State()
    for slug in ("a", "b"):
        recorded(one, slug)
    for slug in ("b", "a"):
        recorded(two, slug)
    assert render(one.snapshot()) == render(two.snapshot())


@pytest.mark.parametrize("slugs", [[], ["a"], ["zeta", "alpha", "mid"],
                                   ["caf\u00e9-\u4e2d", 'quote"d', "back\\slash", "tab\tline\n"]])
def test_render_is_json_dumps_of_the_whole_state(slugs: list[str]) -> None:
    """The file is what ``json.dumps`` (sorted keys, indent 2, UTF-8 kept) makes of it."""
    state = State()
    for n, slug in enumerate(slugs):
        recorded(state, slug, model=f"m\u00e9-{n}", on=dt.date(2026, 3, 1 + n))
    entries = state.snapshot()
    payload = {"format": 1, "patterns": {s: e.to_json() for s, e in entries.items()}}
    assert render(entries) == json.dumps(payload, indent=2, sort_keys=True,
                                         ensure_ascii=False) + "\n"


def test_a_file_corrupted_between_two_saves_is_still_backed_up(tmp_path: Path) -> None:
    """A save skips reading back the file it wrote itself, not one somebody changed since."""
    state = State()
    recorded(state, "a")
    assert save_state(tmp_path, state) is None
    path = state_path(tmp_path)
    path.write_text("{ not json", encoding="utf-8")
    recorded(state, "b")
    backup = save_state(tmp_path, state)
    assert backup is not None and backup.read_text(encoding="utf-8") == "{ not json"
    assert sorted(load_state(tmp_path).snapshot()) == ["a", "b"]
    # Saved again unchanged: the file is left as it is (its text is what a save would write).
    before = path.stat().st_mtime_ns
    assert save_state(tmp_path, state) is None and path.stat().st_mtime_ns == before


SAMPLE_LIBRARY = Path(__file__).resolve().parents[1] / "patterns"


def _with_reasoning(data: dict[str, Any], reasoning: str) -> dict[str, Any]:
    """The front matter as the writer leaves it with the reasoning in the assessment."""
    ontology = data.get("ontology")
    ontology = dict(ontology) if isinstance(ontology, dict) else {}
    assessment = ontology.get("commons_assessment")
    assessment = dict(assessment) if isinstance(assessment, dict) else {}
    assessment["vitality_reasoning"] = reasoning
    ontology["commons_assessment"] = assessment
    return {**data, "ontology": ontology}


def test_sample_library_fingerprints_survive_a_written_reasoning() -> None:
    paths = sorted(SAMPLE_LIBRARY.glob("*.md"))
    docs = [doc for doc in map(document.read, paths) if doc is not None]  # README has none
    assert len(docs) >= 10, f"too few sample patterns in {SAMPLE_LIBRARY}"
    for doc in docs:
        path = doc.path
        on = content_fingerprint(doc.data, doc.body, vitality_in_assessment=True)
        written = _with_reasoning(doc.data, "Generative: stewardship rotates and renews.")
        assert content_fingerprint(written, doc.body, vitality_in_assessment=True) == on, path
        assert content_fingerprint(written, doc.body) != pattern.fingerprint(doc.data, doc.body)
        assert content_fingerprint(doc.data, doc.body + "\nA new line.\n",
                                   vitality_in_assessment=True) != on, path
