"""propose() end to end: the real LLM client and instructor against a local fake OpenAI server."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gardener.endpoint.client import LLM, LLMError
from gardener.endpoint.settings import LLMSettings
from gardener.model import HumanLink, Pattern, Section
from gardener.propose.prompts import default_prompts, render_messages
from gardener.propose.propose import propose
from gardener.testing.fake_openai import FakeOpenAI, ReceivedRequest, answer, raw, server_error

SLUG = "distributed-leadership-design"
MAX_RETRIES = 2
REASONING = ("A sustaining pattern: it renews leadership capacity while roles rotate with "
             "teaching, and decays into shadow authority when they stop.")


@dataclass(frozen=True)
class Cand:
    slug: str
    title: str
    summary: str = ""


CANDIDATES = [Cand("adaptive-facilitation", "Adaptive Facilitation", "Adjusting to the room."),
              Cand("accountability-partnership", "Accountability Partnership", "Mutual checks."),
              Cand("active-listening-depth", "Active Listening Depth", "Listening deeply.")]

PATTERN = Pattern(
    path=Path("lib/distributed-leadership-design.md"),
    slug=SLUG,
    title="Distributed Leadership Design",
    summary="Designing systems where leadership capacity is distributed across the commons.",
    domain="collective-intelligence",
    keywords=("distributed", "leadership"),
    vitality=3.5,
    sections=(Section(heading="Problem", level=3, text="Distributed vs. Design {{ not jinja }}."),
              Section(heading="Vitality", level=3, text="Signs of life: new people lead.")),
    relationships=(HumanLink(target="adaptive-facilitation", type="requires"),),
)


def good_answer(**kw: Any) -> dict[str, Any]:
    return {
        "entities": [{"id": "distributed-leadership", "type": "concept",
                      "label": "Distributed Leadership", "relevance_pct": 95}],
        "communities": [{"id": "commons-leadership", "label": "Commons Leadership",
                         "confidence_pct": 90}],
        "inferred_links": [
            {"target": "adaptive-facilitation", "type": "complementary", "confidence_pct": 88,
             "evidence": "Signs of life: new people lead.",
             "reason": "Real-time facilitation keeps distributed decisions moving."},
            {"target": "accountability-partnership", "type": "enables", "confidence_pct": 80,
             "evidence": "leadership capacity is distributed across the commons",
             "reason": "Clear decision rights give partners something to hold each other to."},
        ],
        "vitality_band": "sustaining",
        "vitality_reasoning": REASONING,
    } | kw


INVENTED = {"target": "abundance-vs-scarcity-mindset", "type": "enables", "confidence_pct": 76,
            "evidence": "Signs of life: new people lead.",
            "reason": "Distributed leadership assumes capacity is not zero-sum."}


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["json_schema", "tools"])
def llm(request: pytest.FixtureRequest, fake: FakeOpenAI) -> Iterator[LLM]:
    settings = LLMSettings(base_url=fake.url, api_key="test-key", model="fake-model",
                           mode=request.param, max_attempts=1, max_retries=MAX_RETRIES)
    with LLM(settings, sleep=lambda _: None) as client:
        yield client


def schema_sent(req: ReceivedRequest) -> dict[str, Any]:
    assert req.body is not None
    if req.body.get("tools"):
        return dict(req.body["tools"][0]["function"]["parameters"])
    return dict(req.body["response_format"]["json_schema"]["schema"])


def test_valid_answer_becomes_the_proposal(fake: FakeOpenAI, llm: LLM) -> None:
    fake.script(answer(good_answer()))
    result = propose(PATTERN, CANDIDATES, llm, today=dt.date(2026, 3, 1))

    assert [(lk.target, lk.type, lk.confidence) for lk in result.proposal.inferred_links] == [
        ("adaptive-facilitation", "complementary", 0.88),
        ("accountability-partnership", "enables", 0.8)]
    assert [(e.id, e.relevance) for e in result.proposal.entities] == [
        ("distributed-leadership", 0.95)]
    assert result.proposal.vitality_reasoning == REASONING
    assert result.dropped == [] and not result.salvaged
    assert result.prompt_version == default_prompts().version
    assert result.usage.requests == 1
    assert result.usage.prompt_tokens == fake.usage_sent[0]["prompt_tokens"]
    assert result.garden.last_pruned == dt.date(2026, 3, 1)
    assert [c.source for c in result.garden.communities] == ["inferred"]

    (req,) = fake.chat_requests
    assert req.body is not None
    sent = [{"role": m["role"], "content": m["content"]} for m in req.body["messages"]]
    expected = render_messages(PATTERN, CANDIDATES)
    assert [m["role"] for m in sent] == [m["role"] for m in expected]
    assert sent[-1]["content"] == expected[-1]["content"]  # pattern text reached the model as is
    schema = schema_sent(req)
    assert schema["$defs"]["LinkDraft"]["properties"]["target"]["enum"] == [
        c.slug for c in CANDIDATES]


def test_invented_target_is_reasked_then_accepted(fake: FakeOpenAI, llm: LLM) -> None:
    first = good_answer()
    first["inferred_links"] = [*first["inferred_links"], INVENTED]
    fake.script(answer(first), answer(good_answer()))
    result = propose(PATTERN, CANDIDATES, llm)

    assert [lk.target for lk in result.proposal.inferred_links] == [
        "adaptive-facilitation", "accountability-partnership"]
    assert result.dropped == [] and not result.salvaged
    assert result.usage.requests == 2
    reask = fake.chat_requests[1].body
    assert reask is not None
    assert "target 'abundance-vs-scarcity-mindset' is not one of the candidate slugs" in (
        json.dumps(reask["messages"]))


def test_always_invalid_answer_is_salvaged_item_by_item(fake: FakeOpenAI, llm: LLM) -> None:
    bad = good_answer(
        entities=[{"id": "distributed-leadership", "type": "concept",
                   "label": "Distributed Leadership", "relevance_pct": 95},
                  {"id": "Shared Responsibility", "type": "practice", "label": "Shared",
                   "relevance_pct": 80}],
        inferred_links=[*good_answer()["inferred_links"], INVENTED,
                        {"target": SLUG, "type": "enables", "confidence_pct": 50,
                         "evidence": "Signs of life: new people lead.", "reason": "Itself."}],
    )
    fake.script(*[answer(bad)] * (MAX_RETRIES + 1))
    result = propose(PATTERN, CANDIDATES, llm)

    assert result.salvaged
    assert [e.id for e in result.proposal.entities] == ["distributed-leadership"]
    assert [lk.target for lk in result.proposal.inferred_links] == [
        "adaptive-facilitation", "accountability-partnership"]
    assert result.proposal.vitality_reasoning == REASONING
    assert len(result.dropped) == 3
    assert result.dropped[0].startswith("entities[1] 'Shared Responsibility': id:")
    assert result.dropped[1].startswith("inferred_links[2] 'abundance-vs-scarcity-mindset':")
    assert result.dropped[2].startswith(f"inferred_links[3] '{SLUG}': target:")
    assert result.usage.requests == MAX_RETRIES + 1
    assert len(fake.chat_requests) == MAX_RETRIES + 1
    assert fake.pending == 0


def test_unparseable_answers_salvage_to_an_empty_proposal(fake: FakeOpenAI, llm: LLM) -> None:
    fake.script(*[raw("I'd rather write a poem.")] * (MAX_RETRIES + 1))
    result = propose(PATTERN, CANDIDATES, llm)
    assert result.salvaged and result.proposal.empty
    assert len(result.dropped) == 1 and result.dropped[0].startswith("answer is not JSON")


def test_transport_failure_propagates(fake: FakeOpenAI, llm: LLM) -> None:
    fake.script(server_error(503))
    with pytest.raises(LLMError, match="HTTP 503"):
        propose(PATTERN, CANDIDATES, llm)
