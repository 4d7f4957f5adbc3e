"""Model profiles and answer caps: a small model is asked for less, and only a small model."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from gardener.endpoint.settings import DEFAULT_MODEL, LOCAL_MODE, LLMSettings
from gardener.local.server import MODEL_NAME, Endpoint, LocalModel
from gardener.model import KEBAB, MAX_ENTITIES, MAX_REASON, MAX_VITALITY_REASONING, Pattern, Section
from gardener.pipeline.client import model_settings, within_endpoint
from gardener.pipeline.options import GardenOptions
from gardener.propose.profiles import DEFAULT, SMALL, profile_for
from gardener.propose.prompts import render_messages
from gardener.propose.propose import propose
from gardener.propose.response import build_response_model, salvage
from gardener.propose.schemas import DEFAULT_CAPS, Caps

SLUG = "distributed-leadership-design"
TARGETS = ["adaptive-facilitation", "accountability-partnership", "active-listening-depth"]
REASONING = "A sustaining pattern: leadership renews itself while roles keep rotating."


@pytest.mark.parametrize(("model", "profile"), [
    ("SmolLM2-135M-Instruct", SMALL),
    ("smollm2:135m", SMALL),
    ("HuggingFaceTB/SmolLM2-360M-Instruct", SMALL),
    (DEFAULT_MODEL, DEFAULT),
    ("llama3.1", DEFAULT),
    ("Qwen2.5-7B-Instruct", DEFAULT),
])
def test_the_profile_follows_the_model_name(model: str, profile: object) -> None:
    assert profile_for(model) is profile


def test_the_small_profile_asks_for_less_everywhere() -> None:
    assert SMALL.candidates < DEFAULT.candidates
    small, full = SMALL.limits, DEFAULT.limits
    assert small.body < full.body and small.section < full.section
    assert small.candidate_summary < full.candidate_summary
    assert SMALL.caps.entities < DEFAULT_CAPS.entities
    assert SMALL.caps.links < DEFAULT_CAPS.links
    assert SMALL.caps.reasoning < DEFAULT_CAPS.reasoning
    assert SMALL.caps.reason < DEFAULT_CAPS.reason


def test_tune_bounds_answer_tokens_and_re_asks_only_where_the_profile_says() -> None:
    settings = LLMSettings(base_url=None, api_key=None, model="m", mode="tools")
    assert DEFAULT.tune(settings) == settings
    small = SMALL.tune(settings)
    assert (small.max_tokens, small.max_retries) == (SMALL.max_tokens, SMALL.max_retries)
    assert small.model == "m" and small.mode == "tools"


def test_an_unknown_id_pattern_or_cap_is_refused_with_its_name() -> None:
    with pytest.raises(ValueError, match="entities must be between 0 and 12"):
        Caps(entities=MAX_ENTITIES + 1)
    with pytest.raises(ValueError, match="reasoning must allow at least 40"):
        Caps(reasoning=10)
    with pytest.raises(ValueError, match="id_pattern must be anchored"):
        Caps(id_pattern="[a-z]+")


# --- caps in the schema, the validation and salvage ----------------------------------------


def small_answer(**kw: Any) -> dict[str, Any]:
    return {"entities": [{"id": "distributed-leadership", "type": "concept",
                          "label": "Distributed Leadership", "relevance_pct": 95}],
            "communities": [],
            "inferred_links": [{"target": "adaptive-facilitation", "type": "complementary",
                                "confidence_pct": 80,
                                "evidence": "Leadership spread across the commons.",
                                "reason": "They reinforce each other."}],
            "vitality_band": "sustaining", "vitality_reasoning": REASONING} | kw


def test_caps_become_the_schema_bounds_a_grammar_enforces() -> None:
    schema = build_response_model(SLUG, TARGETS, 3.5, SMALL.caps).model_json_schema()
    props, defs = schema["properties"], schema["$defs"]
    assert props["entities"]["maxItems"] == SMALL.caps.entities
    assert props["communities"]["maxItems"] == SMALL.caps.communities
    assert props["inferred_links"]["maxItems"] == SMALL.caps.links
    assert props["vitality_reasoning"]["maxLength"] == SMALL.caps.reasoning
    assert defs["LinkDraft"]["properties"]["reason"]["maxLength"] == SMALL.caps.reason
    assert defs["EntityDraft"]["properties"]["id"]["pattern"] == SMALL.caps.id_pattern
    assert defs["CommunityDraft"]["properties"]["id"]["pattern"] == SMALL.caps.id_pattern
    assert defs["LinkDraft"]["properties"]["target"]["enum"] == TARGETS


def test_default_caps_leave_the_schema_as_it_was() -> None:
    schema = build_response_model(SLUG, TARGETS, 3.5).model_json_schema()
    defs = schema["$defs"]
    assert schema["properties"]["entities"]["maxItems"] == MAX_ENTITIES
    assert schema["properties"]["vitality_reasoning"]["maxLength"] == MAX_VITALITY_REASONING
    assert defs["LinkDraft"]["properties"]["reason"]["maxLength"] == MAX_REASON
    assert defs["EntityDraft"]["properties"]["id"]["pattern"] == KEBAB


def test_an_answer_beyond_the_caps_is_refused_with_the_bound() -> None:
    model = build_response_model(SLUG, TARGETS, 3.5, SMALL.caps)
    model.model_validate(small_answer())
    too_many = [{"id": f"entity-{i}", "type": "concept", "label": "E", "relevance_pct": 50}
                for i in range(SMALL.caps.entities + 1)]
    with pytest.raises(ValidationError, match=f"at most {SMALL.caps.entities} items"):
        model.model_validate(small_answer(entities=too_many))
    with pytest.raises(ValidationError, match=f"at most {SMALL.caps.reasoning} characters"):
        model.model_validate(small_answer(vitality_reasoning="x" * (SMALL.caps.reasoning + 1)))
    long_reason = [{"target": "adaptive-facilitation", "type": "complementary",
                    "confidence_pct": 80, "evidence": "Leadership spread across the commons.",
                    "reason": "y" * (SMALL.caps.reason + 1)}]
    with pytest.raises(ValidationError, match=f"at most {SMALL.caps.reason} characters"):
        model.model_validate(small_answer(inferred_links=long_reason))
    # The id pattern only guides a grammar; the validator still takes any kebab-case id.
    model.model_validate(small_answer(entities=[{"id": "a-b-c-d-e-f", "type": "concept",
                                                 "label": "E", "relevance_pct": 50}]))


def test_salvage_keeps_no_more_than_the_caps() -> None:
    links = [{"target": t, "type": "complementary", "confidence_pct": 70,
              "evidence": "Leadership spread across the commons.",
              "reason": "They reinforce each other."} for t in TARGETS]
    raw = json.dumps(small_answer(inferred_links=links, entities="not a list"))
    caps = Caps(links=2)
    proposal, dropped = salvage(raw, SLUG, TARGETS, 3.5, caps)
    assert [lk.target for lk in proposal.inferred_links] == TARGETS[:2]
    assert "inferred_links[2] 'active-listening-depth': beyond the limit of 2" in dropped


# --- the prompt and the request follow the profile -------------------------------------------


@dataclass(frozen=True)
class Cand:
    slug: str
    title: str
    summary: str = ""


PATTERN = Pattern(
    path=Path("lib/distributed-leadership-design.md"), slug=SLUG,
    title="Distributed Leadership Design", summary="Leadership spread across the commons. " * 20,
    vitality=3.5,
    sections=(Section(heading="Problem", level=3, text="Leaders burn out. " * 200),
              Section(heading="Vitality", level=3, text="Signs of life: new people lead.")),
)
CANDIDATES = [Cand(t, t.replace("-", " ").title(), "A summary of it. " * 20) for t in TARGETS]


def test_the_prompt_states_the_caps_and_quotes_within_the_limits() -> None:
    system, user = (m["content"] for m in render_messages(
        PATTERN, CANDIDATES, limits=SMALL.limits, caps=SMALL.caps))
    assert f"# Entities (at most {SMALL.caps.entities})" in system
    assert f"# Communities (at most {SMALL.caps.communities})" in system
    assert f"# Inferred links (at most {SMALL.caps.links})" in system
    assert f"at most {SMALL.caps.reason} characters" in system
    assert f"(40-{SMALL.caps.reasoning} characters)" in system
    assert "Leaders burn out. " * 60 not in user  # the body is cut to the small limit
    full = render_messages(PATTERN, CANDIDATES)[1]["content"]
    assert len(user) < len(full) / 2


class Recorder:
    """Answers like a model would, and keeps what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []

    def structured(self, *, response_model: Any, messages: list[dict[str, Any]],
                   context: dict[str, Any] | None = None, tag: str = "",
                   max_retries: int | None = None) -> Any:
        from gardener.endpoint.client import Usage

        self.asked.append((response_model.model_json_schema(), messages))
        return response_model.model_validate(small_answer(), context=context), Usage(1, 1, 1)


def test_propose_asks_with_the_profile_caps() -> None:
    llm = Recorder()
    result = propose(PATTERN, CANDIDATES, llm, limits=SMALL.limits, caps=SMALL.caps)
    schema, messages = llm.asked[0]
    assert schema["properties"]["entities"]["maxItems"] == SMALL.caps.entities
    assert f"(at most {SMALL.caps.links})" in messages[0]["content"]
    assert [lk.target for lk in result.proposal.inferred_links] == ["adaptive-facilitation"]


# --- the run's settings --------------------------------------------------------------------


def fake_local(tmp_path: Path) -> LocalModel:
    """A LocalModel record around a process that has already ended (nothing is served)."""
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    model = LocalModel(Endpoint("http://127.0.0.1:9/v1", MODEL_NAME, "k" * 32), process,
                       tmp_path / "server.log")
    model.close()
    return model


def test_the_bundled_model_runs_in_json_object_schema_mode_one_request_at_a_time(
        tmp_path: Path) -> None:
    settings = model_settings(GardenOptions(), {}, fake_local(tmp_path))
    assert settings.mode == LOCAL_MODE == "json_object_schema"
    assert settings.model == MODEL_NAME and settings.concurrency == 1
    assert (settings.max_tokens, settings.max_retries) == (SMALL.max_tokens, SMALL.max_retries)
    assert settings.base_url == "http://127.0.0.1:9/v1"


def test_a_configured_endpoint_keeps_the_default_bounds() -> None:
    env = {"OPENAI_BASE_URL": "http://127.0.0.1:8000/v1", "GARDENER_MODEL": "llama3.1"}
    settings = model_settings(GardenOptions(), env)
    baseline = LLMSettings.from_env(environ=env)
    assert settings == baseline and settings.concurrency is None
    replayed = model_settings(GardenOptions(), {})  # no endpoint: what a replay uses
    assert (replayed.model, replayed.mode) == (MODEL_NAME, LOCAL_MODE)
    assert replayed.max_tokens == SMALL.max_tokens


class WithSettings:
    def __init__(self, settings: LLMSettings) -> None:
        self.settings = settings


def test_a_run_keeps_no_more_in_flight_than_the_endpoint_serves() -> None:
    options = GardenOptions(concurrency=8)
    serial = LLMSettings(base_url="http://127.0.0.1:9/v1", api_key=None, model="m",
                         mode="json_schema", concurrency=1)
    assert within_endpoint(options, WithSettings(serial)).concurrency == 1
    free = LLMSettings(base_url=None, api_key=None, model="m", mode="tools")
    assert within_endpoint(options, WithSettings(free)) is options
    assert within_endpoint(GardenOptions(concurrency=1),
                           WithSettings(serial)).concurrency == 1
