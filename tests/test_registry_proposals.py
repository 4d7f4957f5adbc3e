"""Proposals in a library with a community registry: communities drawn from it, new ones
justified and flagged; the model's side played by the fake OpenAI server."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from graph_library import Spec, write
from test_propose import CANDIDATES, PATTERN, good_answer, schema_sent

from gardener.endpoint.client import LLM
from gardener.endpoint.settings import LLMSettings
from gardener.library.registry import Registry, RegistryCommunity
from gardener.model import Status
from gardener.propose.prompts import render_messages
from gardener.propose.propose import propose
from gardener.testing.fake_openai import FakeOpenAI, answer, minimal_instance, request_schema

REGISTRY = Registry((
    RegistryCommunity("commons-governance", "Commons Governance",
                      "How commons decide and enforce their rules."),
    RegistryCommunity("organizational-design", "Organizational Design",
                      "Structures, roles and decision rights in organizations.")))
NEW = {"id": "care-work", "label": "Care Work", "confidence_pct": 60,
       "justification": "No registry community covers unpaid care and who carries it."}


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(params=["json_schema", "tools"])
def llm(request: pytest.FixtureRequest, fake: FakeOpenAI) -> Iterator[LLM]:
    settings = LLMSettings(base_url=fake.url, api_key="test-key", model="fake-model",
                           mode=request.param, max_attempts=1, max_retries=2)
    with LLM(settings, sleep=lambda _: None) as client:
        yield client


def registry_answer(**kw: Any) -> dict[str, Any]:
    return good_answer(communities=[{"id": "organizational-design", "confidence_pct": 90}],
                       new_communities=[NEW]) | kw


def test_registry_communities_are_an_enum_and_new_ones_are_justified(
        fake: FakeOpenAI, llm: LLM) -> None:
    fake.script(answer(registry_answer()))
    result = propose(PATTERN, CANDIDATES, llm, registry=REGISTRY)
    assert [(c.id, c.label, c.source, c.confidence) for c in result.garden.communities] == [
        ("organizational-design", "Organizational Design", "taxonomy", 0.9),
        ("care-work", "Care Work", "inferred", 0.6)]
    assert [c.justification for c in result.proposal.communities] == [None, NEW["justification"]]
    (req,) = fake.chat_requests
    schema = schema_sent(req)
    assert schema["$defs"]["RegistryPick"]["properties"]["id"]["enum"] == [
        "commons-governance", "organizational-design"]
    assert "new_communities" in schema["properties"]
    assert req.body is not None
    user = req.body["messages"][-1]["content"]
    assert "## Community registry (2)" in user
    assert "commons-governance: Commons Governance — How commons decide" in user


def test_a_new_community_without_justification_is_reasked(fake: FakeOpenAI, llm: LLM) -> None:
    bare = {k: v for k, v in NEW.items() if k != "justification"} | {"justification": " "}
    fake.script(answer(registry_answer(new_communities=[bare])), answer(registry_answer()))
    result = propose(PATTERN, CANDIDATES, llm, registry=REGISTRY)
    assert len(fake.chat_requests) == 2
    assert [c.id for c in result.proposal.communities] == ["organizational-design", "care-work"]


def test_a_registry_id_given_as_new_is_reasked(fake: FakeOpenAI, llm: LLM) -> None:
    twin = NEW | {"id": "commons-governance"}
    fake.script(answer(registry_answer(new_communities=[twin])), answer(registry_answer()))
    propose(PATTERN, CANDIDATES, llm, registry=REGISTRY)
    second = fake.chat_requests[1].body
    assert second is not None
    said = " ".join(str(m.get("content")) for m in second["messages"])
    assert "is the registry community 'commons-governance'" in said


def test_salvage_keeps_the_valid_registry_picks(fake: FakeOpenAI, llm: LLM) -> None:
    bad = registry_answer(communities=[{"id": "not-in-registry", "confidence_pct": 80},
                                       {"id": "commons-governance", "confidence_pct": 70}])
    fake.script(answer(bad), answer(bad), answer(bad))
    result = propose(PATTERN, CANDIDATES, llm, registry=REGISTRY)
    assert result.salvaged
    assert [(c.id, c.source) for c in result.proposal.communities] == [
        ("commons-governance", "taxonomy"), ("care-work", "inferred")]
    assert any("not-in-registry" in d for d in result.dropped)


def test_without_a_registry_nothing_changes(fake: FakeOpenAI, llm: LLM) -> None:
    fake.script(answer(good_answer()))
    result = propose(PATTERN, CANDIDATES, llm, registry=None)
    assert [c.source for c in result.garden.communities] == ["inferred"]
    schema = schema_sent(fake.chat_requests[0])
    assert "new_communities" not in schema["properties"]
    system, user = (m["content"] for m in render_messages(PATTERN, CANDIDATES))
    assert "Community registry" not in user and "new_communities" not in system
    assert "- id: kebab-case, each at most once; label: a short name" in system


def picking_responder(body: dict[str, Any]) -> dict[str, Any]:
    """The smallest valid answer, choosing the first registry community and one new one."""
    schema = request_schema(body) or {}
    value = minimal_instance(schema)
    if "new_communities" in schema.get("properties", {}):
        ids = schema["$defs"]["RegistryPick"]["properties"]["id"]
        first = ids["const"] if "const" in ids else ids["enum"][0]  # one id: a const
        value["communities"] = [{"id": first, "confidence_pct": 80}]
        value["new_communities"] = [copy.deepcopy(NEW)]
    return dict(value)


def test_the_flow_flags_new_communities_and_writes_sources(tmp_path: Path) -> None:
    from gardener.pipeline.options import GardenOptions
    from gardener.pipeline.prefect.flows import run_garden

    # The proposed new community (Care Work) has words in both texts, or pruning's ``stale``
    # rule would take it out again.
    root = write(tmp_path / "lib", [Spec("alpha", summary="Commons rules for care work"),
                                    Spec("beta", summary="Commons rules for care work too")])
    (root / ".gardener").mkdir()
    (root / ".gardener" / "communities.yaml").write_text(
        "communities:\n  - id: commons-governance\n    label: Commons Governance\n")
    with FakeOpenAI(responder=picking_responder) as server:
        settings = LLMSettings(base_url=server.url, api_key="k", model="fake-model",
                               mode="json_schema", max_attempts=1)
        with LLM(settings) as client:
            outcomes = run_garden(root, GardenOptions(concurrency=1), llm=client)
    assert {o.status for o in outcomes} == {Status.CHANGED}
    for o in outcomes:
        assert o.detail.new_communities == [
            {"id": "care-work", "label": "Care Work", "justification": NEW["justification"]}]
    text = (root / "alpha.md").read_text()
    assert "- id: commons-governance\n      label: \"Commons Governance\"\n" \
           "      source: taxonomy\n" in text
    assert "source: inferred" in text


def test_a_changed_registry_makes_patterns_stale(tmp_path: Path) -> None:
    from gardener.pipeline.options import GardenOptions
    from gardener.pipeline.prefect.flows import run_garden

    # The proposed new community (Care Work) has words in both texts, or pruning's ``stale``
    # rule would take it out again.
    root = write(tmp_path / "lib", [Spec("alpha", summary="Commons rules for care work"),
                                    Spec("beta", summary="Commons rules for care work too")])
    registry = root / ".gardener" / "communities.yaml"
    registry.parent.mkdir()
    registry.write_text("communities:\n  - id: commons-governance\n    label: Commons\n")
    with FakeOpenAI(responder=picking_responder) as server:
        settings = LLMSettings(base_url=server.url, api_key="k", model="fake-model",
                               mode="json_schema", max_attempts=1)
        with LLM(settings) as client:
            run_garden(root, GardenOptions(concurrency=1), llm=client)
            again = run_garden(root, GardenOptions(concurrency=1), llm=client)
            assert {o.status for o in again} == {Status.SKIPPED}
            registry.write_text(registry.read_text()
                                + "  - id: water-care\n    label: Water Care\n")
            changed = run_garden(root, GardenOptions(concurrency=1), llm=client)
    assert {o.status for o in changed} != {Status.SKIPPED}
    assert all("candidate" in str(o.detail.reason) for o in changed), changed
