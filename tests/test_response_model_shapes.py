"""Per-pattern response models: the schema and the errors of a plain pydantic model.

The oracle is what a reader of the schema expects: a pydantic model built from scratch for
the pattern, whose link target is ``Literal[candidates]``. Fixtures are keyed by the request,
so the schema sent must be that model's, key for key; and a re-ask carries the validation
errors, so they must read the same too.
"""

from __future__ import annotations

import json
from typing import Any, Literal, cast

import pytest
from instructor import generate_openai_schema
from pydantic import BaseModel, Field, ValidationError, create_model

from gardener.model import MAX_COMMUNITIES, MAX_ENTITIES, MAX_LINKS
from gardener.propose.response import (
    RESPONSE_MODEL_NAME,
    CommunityDraft,
    EntityDraft,
    LinkDraft,
    ResponseModel,
    build_response_model,
    grounding_context,
    salvage,
)
from gardener.propose.schemas import BAND_NAMES, Grounding, VitalityReasoning, vitality_band

SLUG = "distributed-leadership-design"
MANY = [f"pattern-{i}-of-the-library" for i in range(40)]


def literal_model(slug: str, candidates: list[str], vitality: float | None) -> type[BaseModel]:
    """The pattern's model as pydantic builds it from scratch, with Literal link targets."""
    grounding = Grounding.of(slug, candidates, vitality)
    targets = grounding.candidates or ()
    fields: dict[str, Any] = {}
    if targets:
        fields["target"] = (cast(Any, Literal)[targets],
                            Field(description="A slug from the candidate list"))
    links = create_model("LinkDraft", __base__=LinkDraft, __doc__=LinkDraft.__doc__, **fields)
    links.grounding = grounding
    band = vitality_band(vitality)
    band_type = cast(Any, Literal)[(band.name,) if band else BAND_NAMES]
    model = create_model(
        RESPONSE_MODEL_NAME, __base__=ResponseModel,
        __doc__="The graph-garden proposal for one pattern of the library.",
        entities=(list[EntityDraft], Field(max_length=MAX_ENTITIES)),
        communities=(list[CommunityDraft], Field(max_length=MAX_COMMUNITIES)),
        inferred_links=(list[links],  # type: ignore[valid-type]
                        Field(max_length=MAX_LINKS if targets else 0)),
        vitality_band=(band_type, Field(description="The rubric band of the vitality score")),
        vitality_reasoning=(VitalityReasoning, Field(
            description="A short paragraph grounded in the pattern's Vitality section")),
    )
    model.grounding = grounding
    return model


CASES = [
    (MANY, 3.5), (MANY, None), (MANY, 4.7), (MANY, 1.0), (MANY, 2.5), (MANY, 9.0),
    (["adaptive-facilitation"], 3.5), (["adaptive-facilitation", SLUG], None),
    ([SLUG], 3.5), ([], None),
]


@pytest.mark.parametrize(("candidates", "vitality"), CASES)
def test_schema_is_the_literal_models_schema_key_for_key(
        candidates: list[str], vitality: float | None) -> None:
    ours = build_response_model(SLUG, candidates, vitality)
    oracle = literal_model(SLUG, candidates, vitality)
    assert json.dumps(ours.model_json_schema()) == json.dumps(oracle.model_json_schema())
    assert ours.__name__ == oracle.__name__ and ours.__doc__ == oracle.__doc__
    # tools mode: instructor's function schema, from the model's own schema and docstring
    assert json.dumps(generate_openai_schema(ours)) == json.dumps(
        generate_openai_schema(oracle))
    serialized = {"mode": "serialization", "ref_template": "#/components/{model}"}
    assert ours.model_json_schema(**serialized) == oracle.model_json_schema(**serialized)


def test_each_pattern_gets_a_fresh_schema_of_its_own() -> None:
    a = build_response_model("a", ["b", "c"])
    b = build_response_model("b", ["a"])
    first = a.model_json_schema()
    first["$defs"]["LinkDraft"]["properties"]["target"]["enum"].append("mutated")
    assert a.model_json_schema()["$defs"]["LinkDraft"]["properties"]["target"]["enum"] == [
        "b", "c"]
    assert b.model_json_schema()["$defs"]["LinkDraft"]["properties"]["target"]["const"] == "a"


def test_a_patterns_model_answers_with_instances_of_itself() -> None:
    """A real pydantic model, made once per grounding: instructor uses it as it is."""
    model = build_response_model("a", ["b", "c"])
    assert model is build_response_model("a", ["b", "c", "a"])  # the same grounding
    assert model is not build_response_model("a", ["b", "c"], 3.5)
    assert model.__name__ == RESPONSE_MODEL_NAME and issubclass(model, ResponseModel)
    valid = {"entities": [], "communities": [], "inferred_links": [],
             "vitality_band": BAND_NAMES[0], "vitality_reasoning": "x" * 80}
    assert type(model.model_validate(valid)) is model


def errors(model: type[BaseModel], data: Any, context: dict[str, Any] | None = None,
           ) -> tuple[str, list[Any]]:
    """The message a re-ask would carry, and the errors (the exception objects aside)."""
    try:
        model.model_validate_json(json.dumps(data), context=context, strict=True)
    except ValidationError as err:
        return str(err), err.errors(include_url=True, include_context=False)
    return "", []


def answer(*targets: Any, band: str = "sustaining") -> dict[str, Any]:
    return {
        "entities": [{"id": "distributed-leadership", "type": "concept",
                      "label": "Distributed Leadership", "relevance_pct": 95}],
        "communities": [],
        "inferred_links": [{"target": t, "type": "enables", "confidence_pct": 80,
                            "evidence": "roles rotate with teaching",
                            "reason": "It helps."} for t in targets],
        "vitality_band": band,
        "vitality_reasoning": "It renews leadership capacity while roles rotate with teaching.",
    }


@pytest.mark.parametrize("data", [
    answer("pattern-1-of-the-library", "pattern-2-of-the-library"),
    answer(7, None, ["pattern-1-of-the-library"], {"slug": "x"}),
    answer("made-up", SLUG, "pattern-1-of-the-library", "pattern-1-of-the-library"),
    answer("pattern-3-of-the-library", band="generative"),
    answer(*MANY[:MAX_LINKS + 1]),
])
@pytest.mark.parametrize("with_context", [False, True])
def test_validation_errors_are_the_literal_models_errors(data: Any,
                                                         with_context: bool) -> None:
    context = grounding_context(SLUG, MANY, 3.5) if with_context else None
    ours = build_response_model(SLUG, MANY, 3.5)
    oracle = literal_model(SLUG, MANY, 3.5)
    assert errors(ours, data, context) == errors(oracle, data, context)


def test_a_single_candidate_is_named_as_pydantic_names_it() -> None:
    ours = build_response_model(SLUG, ["adaptive-facilitation"], None)
    oracle = literal_model(SLUG, ["adaptive-facilitation"], None)
    data = answer(3, band="functional")
    assert errors(ours, data) == errors(oracle, data) != ("", [])


def test_a_context_passed_in_overrides_the_grounding_key_by_key() -> None:
    model = build_response_model(SLUG, MANY, 3.5)
    narrowed = {"candidates": MANY[:1], "vitality": 4.7}
    model.model_validate(answer(MANY[0], band="sustaining"))
    assert "target 'pattern-1-of-the-library' is not one of the candidate slugs" in str(
        errors(model, answer(MANY[1]), narrowed))
    # The band stays the schema's (the score's), the message names the context's score.
    assert "contradicts the human vitality score 4.7" in str(
        errors(model, answer(band="functional"), narrowed))


def test_salvage_judges_items_in_the_patterns_own_shape() -> None:
    raw = json.dumps(answer("pattern-1-of-the-library", 7, band="generative"))
    proposal, dropped = salvage(raw, SLUG, MANY, 3.5)
    assert [lk.target for lk in proposal.inferred_links] == ["pattern-1-of-the-library"]
    assert proposal.vitality_band is None
    assert any(d.startswith("inferred_links[1]: target: Input should be 'pattern-0")
               for d in dropped)
    assert any(d.startswith("vitality_band: ") for d in dropped)
