"""The proposal's rules, tried with the answers a misbehaving model actually gives."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import pytest
from pydantic import ValidationError

from gardener.model import (
    ENTITY_TYPES,
    LINK_TYPES,
    MAX_ENTITIES,
    MAX_REASON,
    Community,
    Entity,
    Garden,
    Link,
)
from gardener.propose.response import (
    RESPONSE_MODEL_NAME,
    ResponseModel,
    build_response_model,
    grounding_context,
    salvage,
)
from gardener.propose.schemas import (
    Proposal,
    ProposedCommunity,
    ProposedEntity,
    ProposedLink,
    to_garden,
    vitality_band,
)

SLUG = "distributed-leadership-design"
CANDIDATES = ["adaptive-facilitation", "accountability-partnership", SLUG, "active-listening-depth",
              "adaptive-facilitation"]
TARGETS = ["adaptive-facilitation", "accountability-partnership", "active-listening-depth"]
SCORE = 3.5
REASONING = ("A sustaining pattern: it renews leadership capacity while roles rotate with "
             "teaching, but decays into shadow authority when rotation stops.")


def entity(id: str = "distributed-leadership", **kw: Any) -> dict[str, Any]:
    return {"id": id, "type": "concept", "label": "Distributed Leadership",
            "relevance_pct": 95} | kw


def community(id: str = "organizational-design", **kw: Any) -> dict[str, Any]:
    return {"id": id, "label": "Organizational Design", "confidence_pct": 90} | kw


def link(target: str = "adaptive-facilitation", **kw: Any) -> dict[str, Any]:
    return {"target": target, "type": "complementary", "confidence_pct": 88,
            "evidence": "leadership capacity is distributed across the commons",
            "reason": "Real-time facilitation keeps distributed decisions moving."} | kw


def answer(**kw: Any) -> dict[str, Any]:
    return {
        "entities": [entity(), entity("shared-responsibility", type="practice", relevance_pct=80)],
        "communities": [community()],
        "inferred_links": [link(), link("accountability-partnership", type="enables",
                                        confidence_pct=85)],
        "vitality_band": "sustaining",
        "vitality_reasoning": REASONING,
    } | kw


@pytest.fixture
def model() -> type[ResponseModel]:
    return build_response_model(SLUG, CANDIDATES, SCORE)


def errors_of(model: type[Any], data: dict[str, Any], context: dict[str, Any] | None = None
              ) -> str:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data, context=context)
    return str(info.value)


# --- the per-pattern response model ----------------------------------------------------------


def test_valid_answer_becomes_a_proposal_in_fractions(model: type[ResponseModel]) -> None:
    proposal = model.model_validate(
        answer(), context=grounding_context(SLUG, CANDIDATES, SCORE)).to_proposal()
    assert [(e.id, e.type, e.relevance) for e in proposal.entities] == [
        ("distributed-leadership", "concept", 0.95), ("shared-responsibility", "practice", 0.8)]
    assert [(c.id, c.confidence) for c in proposal.communities] == [("organizational-design", 0.9)]
    assert [(lk.target, lk.type, lk.confidence) for lk in proposal.inferred_links] == [
        ("adaptive-facilitation", "complementary", 0.88),
        ("accountability-partnership", "enables", 0.85)]
    assert proposal.vitality_band == "sustaining"
    assert proposal.vitality_reasoning == REASONING


def test_terminal_escapes_in_model_text_are_stripped(model: type[ResponseModel]) -> None:
    hostile = answer(
        entities=[entity(label="Distributed \x1b[2JLeadership\x9b")],
        inferred_links=[link(reason="Facilitation keeps \x07decisions moving.")],
        vitality_reasoning=REASONING + "\x1b]0;owned\x07")
    proposal = model.model_validate(
        hostile, context=grounding_context(SLUG, CANDIDATES, SCORE)).to_proposal()
    assert proposal.entities[0].label == "Distributed [2JLeadership"
    assert proposal.inferred_links[0].reason == "Facilitation keeps decisions moving."
    assert proposal.vitality_reasoning == REASONING + "]0;owned"


def test_schema_grounds_targets_and_bounds_by_construction(model: type[ResponseModel]) -> None:
    schema = model.model_json_schema()
    assert schema["title"] == RESPONSE_MODEL_NAME
    defs = schema["$defs"]
    assert defs["LinkDraft"]["properties"]["target"]["enum"] == TARGETS
    assert defs["LinkDraft"]["properties"]["type"]["enum"] == list(LINK_TYPES)
    assert defs["EntityDraft"]["properties"]["type"]["enum"] == list(ENTITY_TYPES)
    for name, field in (("EntityDraft", "relevance_pct"), ("CommunityDraft", "confidence_pct"),
                        ("LinkDraft", "confidence_pct")):
        prop = defs[name]["properties"][field]
        assert (prop["type"], prop["minimum"], prop["maximum"]) == ("integer", 0, 100)
    assert defs["EntityDraft"]["properties"]["id"]["pattern"] == "^[a-z0-9]+(-[a-z0-9]+)*$"
    assert defs["LinkDraft"]["properties"]["reason"]["maxLength"] == MAX_REASON
    assert schema["properties"]["entities"]["maxItems"] == MAX_ENTITIES
    assert schema["properties"]["vitality_band"]["const"] == "sustaining"


def test_models_of_two_patterns_do_not_share_grounding() -> None:
    a = build_response_model("a", ["b", "c"])
    b = build_response_model("b", ["a"])
    a.model_validate(answer(inferred_links=[link("b")], vitality_band="functional"))
    assert "not one of the candidate slugs" in errors_of(
        b, answer(inferred_links=[link("c")], vitality_band="functional"))


@pytest.mark.parametrize("use_context", [True, False])
def test_invented_target_is_named_in_a_fixable_message(
        model: type[ResponseModel], use_context: bool) -> None:
    context = grounding_context(SLUG, CANDIDATES, SCORE) if use_context else None
    msg = errors_of(model, answer(inferred_links=[link("abundance-vs-scarcity-mindset")]), context)
    assert "target 'abundance-vs-scarcity-mindset' is not one of the candidate slugs" in msg
    assert "choose from the list" in msg


def test_self_link_is_refused(model: type[ResponseModel]) -> None:
    msg = errors_of(model, answer(inferred_links=[link(SLUG)]))
    assert f"target '{SLUG}' is the pattern itself" in msg


def test_duplicate_targets_are_refused(model: type[ResponseModel]) -> None:
    msg = errors_of(model, answer(inferred_links=[link(), link(type="enables")]))
    assert "inferred_links[1]: target 'adaptive-facilitation' appears twice" in msg


def test_duplicate_entity_and_community_ids_are_refused(model: type[ResponseModel]) -> None:
    msg = errors_of(model, answer(entities=[entity(), entity(type="practice")],
                                  communities=[community(), community(), community("other")]))
    assert "entities[1]: id 'distributed-leadership' appears twice" in msg
    assert "communities[1]: id 'organizational-design' appears twice" in msg


@pytest.mark.parametrize("bad", [101, -1, 85.5, "high", None])
def test_out_of_range_or_non_integer_percents_are_refused(
        model: type[ResponseModel], bad: Any) -> None:
    for data in (answer(entities=[entity(relevance_pct=bad)]),
                 answer(communities=[community(confidence_pct=bad)]),
                 answer(inferred_links=[link(confidence_pct=bad)])):
        errors_of(model, data)


@pytest.mark.parametrize(("reason", "expected"), [
    ("", "at least 1 character"),
    ("x" * (MAX_REASON + 1), f"at most {MAX_REASON} characters"),
    ("Facilitation helps. It also keeps decisions moving.", "one sentence"),
    ("Facilitation helps\nand keeps decisions moving", "single line"),
])
def test_bad_reasons_are_refused(model: type[ResponseModel], reason: str, expected: str) -> None:
    assert expected in errors_of(model, answer(inferred_links=[link(reason=reason)]))


def test_a_reason_with_an_abbreviation_is_one_sentence(model: type[ResponseModel]) -> None:
    model.model_validate(answer(inferred_links=[link(reason="Both rely on e.g. rotating roles.")]))


@pytest.mark.parametrize("bad_id", ["Shared Responsibility", "shared_responsibility", "a--b",
                                    "-lead", "lead-", "Lead", ""])
def test_ids_must_be_kebab_case(model: type[ResponseModel], bad_id: str) -> None:
    errors_of(model, answer(entities=[entity(bad_id)]))
    errors_of(model, answer(communities=[community(bad_id)]))


def test_kebab_message_shows_the_fix(model: type[ResponseModel]) -> None:
    assert "is not kebab-case" in errors_of(model, answer(entities=[entity("Group Dynamics")]))


def test_off_vocabulary_types_are_refused(model: type[ResponseModel]) -> None:
    assert "'concept'" in errors_of(model, answer(entities=[entity(type="idea")]))
    assert "'complementary'" in errors_of(model, answer(inferred_links=[link(type="enabler")]))


def test_list_sizes_are_bounded(model: type[ResponseModel]) -> None:
    many = [entity(f"entity-{i}") for i in range(MAX_ENTITIES + 1)]
    assert f"at most {MAX_ENTITIES} items" in errors_of(model, answer(entities=many))


def test_band_must_match_the_human_score(model: type[ResponseModel]) -> None:
    msg = errors_of(model, answer(vitality_band="generative"))
    assert "contradicts the human vitality score 3.5" in msg
    assert "use 'sustaining'" in msg


def test_reasoning_may_not_claim_a_contradicting_band(model: type[ResponseModel]) -> None:
    msg = errors_of(model, answer(
        vitality_reasoning="This is a generative pattern that creates conditions for new life."))
    assert "calls the pattern generative" in msg
    assert "sustaining band (3.5-4.4)" in msg
    model.model_validate(answer(vitality_reasoning=(
        "Sustaining rather than generative: it renews what exists without new adaptation.")))
    model.model_validate(answer(vitality_reasoning=(
        "It renews existing capacity while roles rotate with teaching and handover.")))


def test_reasoning_length_is_bounded(model: type[ResponseModel]) -> None:
    errors_of(model, answer(vitality_reasoning="Sustaining."))
    errors_of(model, answer(vitality_reasoning="Sustaining. " * 60))


def test_without_a_score_any_band_is_accepted() -> None:
    free = build_response_model(SLUG, CANDIDATES, None)
    free.model_validate(answer(vitality_band="generative", vitality_reasoning=(
        "A generative pattern: new leaders keep appearing as roles rotate with teaching.")))
    off_scale = build_response_model(SLUG, CANDIDATES, 7.0)
    off_scale.model_validate(answer(vitality_band="extractive"))


def test_no_candidates_means_no_links() -> None:
    lonely = build_response_model(SLUG, [SLUG])
    lonely.model_validate(answer(inferred_links=[]))
    errors_of(lonely, answer(inferred_links=[link()]))


@pytest.mark.parametrize(("score", "band"), [
    (5.0, "generative"), (4.5, "generative"), (4.4, "sustaining"), (3.5, "sustaining"),
    (3.4, "functional"), (2.0, "functional"), (1.9, "extractive"), (0.0, "extractive"),
    (None, None), (-1.0, None), (5.5, None)])
def test_vitality_band_follows_the_rubric(score: float | None, band: str | None) -> None:
    found = vitality_band(score)
    assert (found.name if found else None) == band


# --- the domain value validated with instructor's context -----------------------------------


def proposal_data(**kw: Any) -> dict[str, Any]:
    return {
        "entities": [{"id": "distributed-leadership", "type": "concept",
                      "label": "Distributed Leadership", "relevance": 0.95}],
        "communities": [{"id": "organizational-design", "label": "Org", "confidence": 0.9}],
        "inferred_links": [{"target": "adaptive-facilitation", "type": "complementary",
                            "confidence": 0.88, "reason": "Facilitation keeps it moving."}],
        "vitality_reasoning": REASONING,
    } | kw


def test_proposal_checks_grounding_from_the_context() -> None:
    context = grounding_context(SLUG, CANDIDATES, SCORE)
    Proposal.model_validate(proposal_data(), context=context)
    bad_links = [{"target": t, "type": "enables", "confidence": 0.5, "reason": "Because."}
                 for t in ("made-up", SLUG, "active-listening-depth", "active-listening-depth")]
    msg = errors_of(Proposal, proposal_data(inferred_links=bad_links), context)
    assert "inferred_links[0]: target 'made-up' is not one of the candidate slugs" in msg
    assert f"inferred_links[1]: target '{SLUG}' is the pattern itself" in msg
    assert "inferred_links[3]: target 'active-listening-depth' appears twice" in msg
    assert "vitality_band 'generative' contradicts" in errors_of(
        Proposal, proposal_data(vitality_band="generative"), context)


def test_proposal_without_context_checks_only_what_it_can() -> None:
    Proposal.model_validate(proposal_data(inferred_links=[
        {"target": "anything", "type": "tools", "confidence": 0.5, "reason": "Because."}]))
    errors_of(Proposal, proposal_data(entities=[
        {"id": "x", "type": "concept", "label": "X", "relevance": 1.5}]))
    errors_of(Proposal, proposal_data(entities=[
        {"id": "x", "type": "concept", "label": "X", "relevance": 0.5}] * 2))


# --- salvage --------------------------------------------------------------------------------


def test_salvage_keeps_every_valid_item_and_names_each_dropped_one(
        caplog: pytest.LogCaptureFixture) -> None:
    raw = json.dumps(answer(
        entities=[entity(), entity("Bad Id"), entity("shared-responsibility", type="idea"),
                  entity("rotation", relevance_pct=140), entity()],
        communities=[community(), {"id": "governance"}],
        inferred_links=[link(), link("invented-slug"), link(SLUG), link(type="enables"),
                        link("active-listening-depth", reason=""),
                        link("accountability-partnership", reason="x" * 300)],
    ))
    with caplog.at_level(logging.WARNING, logger="gardener.propose.schemas"):
        proposal, dropped = salvage(raw, SLUG, CANDIDATES, SCORE)
    assert [e.id for e in proposal.entities] == ["distributed-leadership"]
    assert [c.id for c in proposal.communities] == ["organizational-design"]
    assert [lk.target for lk in proposal.inferred_links] == ["adaptive-facilitation"]
    assert proposal.vitality_reasoning == REASONING
    assert len(dropped) == 10
    joined = "\n".join(dropped)
    for expected in (
        "entities[1] 'Bad Id': id: id 'Bad Id' is not kebab-case",
        "entities[2] 'shared-responsibility': type: Input should be",
        "entities[3] 'rotation': relevance_pct: Input should be less than or equal to 100",
        "entities[4] 'distributed-leadership': duplicate of an earlier item",
        "communities[1] 'governance': label: Field required",
        "inferred_links[1] 'invented-slug': target: target 'invented-slug' is not one of",
        f"inferred_links[2] '{SLUG}': target: target '{SLUG}' is the pattern itself",
        "inferred_links[3] 'adaptive-facilitation': duplicate of an earlier item",
        "inferred_links[4] 'active-listening-depth': reason: String should have at least 1",
        "inferred_links[5] 'accountability-partnership': reason: String should have at most",
    ):
        assert expected in joined
    assert len([r for r in caplog.records if SLUG in r.getMessage()]) == 10


def test_salvage_recovers_a_truncated_fenced_answer() -> None:
    text = json.dumps(answer(vitality_reasoning=REASONING))
    cut = text[: text.index('"accountability-partnership"') + 20]
    proposal, dropped = salvage(f"Here you go:\n```json\n{cut}", SLUG, CANDIDATES, SCORE)
    assert [e.id for e in proposal.entities] == ["distributed-leadership", "shared-responsibility"]
    assert [lk.target for lk in proposal.inferred_links] == ["adaptive-facilitation"]
    assert any(d.startswith("inferred_links[1]") for d in dropped)
    assert "vitality_reasoning: missing" in dropped


def test_salvage_ignores_chatter_around_the_object() -> None:
    raw = f"Sure! {json.dumps(answer())} Hope this helps."
    proposal, dropped = salvage(raw, SLUG, CANDIDATES, SCORE)
    assert dropped == []
    assert proposal == build_response_model(SLUG, CANDIDATES, SCORE).model_validate(
        answer()).to_proposal()


def test_salvage_drops_a_reasoning_that_contradicts_the_score() -> None:
    raw = json.dumps(answer(vitality_band="extractive", vitality_reasoning=(
        "An extractive pattern: it depletes the people who hold the rotating roles.")))
    proposal, dropped = salvage(raw, SLUG, CANDIDATES, SCORE)
    assert proposal.vitality_reasoning is None and proposal.vitality_band is None
    assert len(proposal.inferred_links) == 2
    assert any("vitality_reasoning calls the pattern extractive" in d for d in dropped)
    assert any(d.startswith("vitality_band:") for d in dropped)


def test_salvage_keeps_the_first_items_up_to_the_limit() -> None:
    raw = json.dumps(answer(entities=[entity(f"entity-{i}") for i in range(MAX_ENTITIES + 2)]))
    proposal, dropped = salvage(raw, SLUG, CANDIDATES, SCORE)
    assert len(proposal.entities) == MAX_ENTITIES
    assert dropped == [f"entities[{i}] 'entity-{i}': beyond the limit of {MAX_ENTITIES}"
                       for i in (MAX_ENTITIES, MAX_ENTITIES + 1)]


@pytest.mark.parametrize(("raw", "reason"), [
    (None, "no answer to salvage"),
    ("   ", "no answer to salvage"),
    ("I cannot help with that.", "answer is not JSON"),
    ('["a", "b"]', "answer is not JSON"),
    ("{not json at all", "answer is not JSON"),
])
def test_salvage_of_nothing_is_an_empty_proposal(raw: str | None, reason: str) -> None:
    proposal, dropped = salvage(raw, SLUG, CANDIDATES, SCORE)
    assert proposal.empty
    assert len(dropped) == 1 and dropped[0].startswith(reason)


def test_salvage_drops_a_field_of_the_wrong_shape_whole() -> None:
    proposal, dropped = salvage(json.dumps(answer(entities={"id": "x"})), SLUG, CANDIDATES, SCORE)
    assert proposal.entities == ()
    assert len(proposal.inferred_links) == 2
    assert dropped == ["entities: not a list (dict); dropped whole"]


# --- into the garden ------------------------------------------------------------------------


def test_to_garden_converts_items_and_marks_communities_inferred() -> None:
    proposal = Proposal(
        entities=(ProposedEntity(id="distributed-leadership", type="concept",
                                 label="Distributed Leadership", relevance=0.95),),
        communities=(ProposedCommunity(id="organizational-design", label="Organizational Design",
                                       confidence=0.9),),
        inferred_links=(ProposedLink(target="adaptive-facilitation", type="complementary",
                                     confidence=0.876, reason="Facilitation keeps it moving."),),
        vitality_band="sustaining",
        vitality_reasoning=REASONING,
    )
    garden = to_garden(proposal, dt.date(2026, 3, 1))
    assert garden == Garden(
        last_pruned=dt.date(2026, 3, 1),
        entities=(Entity(id="distributed-leadership", type="concept",
                         label="Distributed Leadership", relevance=0.95),),
        communities=(Community(id="organizational-design", label="Organizational Design",
                               source="inferred", confidence=0.9),),
        inferred_links=(Link(target="adaptive-facilitation", type="complementary",
                             confidence=0.88, reason="Facilitation keeps it moving."),),
        vitality_reasoning=REASONING,
    )
    empty = to_garden(Proposal())
    assert empty.last_pruned is None and empty.vitality_reasoning is None
    assert (empty.entities, empty.communities, empty.inferred_links) == ((), (), ())
