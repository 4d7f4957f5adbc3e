"""The model names detected communities: validated, re-asked, recorded and replayed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from graph_library import write
from test_communities import clusters
from typer.testing import CliRunner

from gardener.endpoint.client import LLM
from gardener.endpoint.settings import LLMSettings
from gardener.graph.community_names import name_communities
from gardener.graph.naming import Draft
from gardener.library.registry import load_registry
from gardener.testing.fake_openai import FakeOpenAI, answer

runner = CliRunner()


def draft(cid: str, size: int) -> Draft:
    titles = tuple(f"{cid.title()} pattern {i}" for i in range(size))
    return Draft(id=cid, label=cid.title(), description="d", members=tuple(
        f"{cid}-{i}" for i in range(size)), titles=titles, labels=(f"{cid} label",),
        former=(cid,))


def named(cid: str, label: str) -> dict[str, Any]:
    return {"id": cid, "label": label,
            "description": f"Patterns about {label.lower()} and how people share it."}


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(params=["json_schema", "tools"])
def llm(request: pytest.FixtureRequest, fake: FakeOpenAI) -> Iterator[LLM]:
    settings = LLMSettings(base_url=fake.url, api_key="test-key", model="fake-model",
                           mode=request.param, max_attempts=1, max_retries=1)
    with LLM(settings, sleep=lambda _: None) as client:
        yield client


def test_each_community_is_named_largest_first(fake: FakeOpenAI, llm: LLM) -> None:
    fake.script(answer(named("water-commons", "Water Commons")),
                answer(named("software-craft", "Software Craft")))
    drafts = [draft("code", 3), draft("water", 5)]
    result = name_communities(drafts, llm)
    assert [(d.id, d.label) for d in result.drafts] == [("software-craft", "Software Craft"),
                                                        ("water-commons", "Water Commons")]
    assert result.drafts[1].members == drafts[1].members  # names change, members do not
    assert result.usage.requests == 2 and result.kept == ()
    first, second = (r.body for r in fake.chat_requests)
    assert first is not None and second is not None
    assert "Water pattern 0" in first["messages"][-1]["content"]
    taken = second["messages"][-1]["content"].split("## Ids already taken")[1]
    assert "water-commons" in taken


def test_a_taken_id_is_reasked(fake: FakeOpenAI, llm: LLM) -> None:
    fake.script(answer(named("commons", "Commons")), answer(named("commons", "Commons 2")),
                answer(named("code-commons", "Code Commons")))
    result = name_communities([draft("water", 5), draft("code", 3)], llm)
    assert [d.id for d in result.drafts] == ["commons", "code-commons"]
    said = " ".join(str(m.get("content")) for m in fake.chat_requests[2].body["messages"]
                    ) if fake.chat_requests[2].body else ""
    assert "already taken" in said


def test_no_valid_answer_keeps_the_deterministic_name(fake: FakeOpenAI, llm: LLM) -> None:
    bad = {"id": "Not Kebab", "label": "x", "description": "short"}
    fake.script(answer(bad), answer(bad))
    result = name_communities([draft("water", 5)], llm)
    assert [d.id for d in result.drafts] == ["water"]
    assert len(result.kept) == 1 and result.kept[0].startswith("water: ")


def naming_responder(body: dict[str, Any]) -> dict[str, Any]:
    """Names a community after the first word of its first listed title."""
    user = body["messages"][-1]["content"]
    first = re.search(r"```text\n(\S+)", user)
    word = first.group(1).lower() if first else "misc"
    return named(f"{word}-commons", f"{word.title()} Commons")


def test_build_records_then_replays_the_same_registry(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from gardener.cli.main import app

    root = write(tmp_path / "lib", clusters())
    tape = tmp_path / "fixtures"
    with FakeOpenAI(responder=naming_responder) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        monkeypatch.setenv("GARDENER_MODEL", "fake-model")
        monkeypatch.setenv("GARDENER_MODE", "json_schema")
        recorded = runner.invoke(app, ["communities", "build", str(root), "--seed", "3",
                                       "--fixtures", str(tape), "--record"])
        assert recorded.exit_code == 0, recorded.output
        assert len(server.chat_requests) == 3
    first = (root / ".gardener" / "communities.yaml").read_text()
    reg = load_registry(root)
    assert reg is not None
    assert sorted(reg.ids) == ["care-commons", "software-commons", "water-commons"]
    assert "names: model fake-model, prompt name_communities@" in first
    # the drafts' names (the tags of the recorded answers): the word each theme's ids share
    assert sorted(p.name for p in tape.iterdir()) == [
        "community.care", "community.code", "community.water"]
    replayed = runner.invoke(app, ["communities", "build", str(root), "--seed", "3",
                                   "--fixtures", str(tape), "--replay"])
    # the gardens are unchanged (no --apply), so the same drafts ask the same questions
    assert replayed.exit_code == 0, replayed.output
    assert (root / ".gardener" / "communities.yaml").read_text() == first
