"""The schema sent to llama.cpp-family servers: bounds their grammar would drop, spelled out."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pydantic import BaseModel, Field

from gardener.endpoint.grammar import BOUNDED_RANGE, PRINTABLE, grammar_schema, integer_enum
from gardener.local.server import missing_modules
from gardener.propose.profiles import DEFAULT, SMALL
from gardener.propose.response import build_response_model


class Link(BaseModel):
    target: str = Field(pattern=r"^[a-z-]+$")
    kind: str = Field(json_schema_extra={"enum": ["enables", "requires"]})
    confidence_pct: int = Field(ge=0, le=100)
    count: int = Field(ge=0)
    reason: str = Field(min_length=3, max_length=120)
    note: str = ""


class Answer(BaseModel):
    links: list[Link] = Field(max_length=3)
    summary: str | None = None


def test_plain_strings_get_a_pattern_of_printable_characters_within_their_lengths() -> None:
    schema = grammar_schema(Link.model_json_schema())
    properties = schema["properties"]
    assert properties["reason"]["pattern"] == f"^{PRINTABLE}{{3,120}}$"
    assert properties["note"]["pattern"] == f"^{PRINTABLE}*$"
    # A line break, a tab, a quote or a backslash cannot be written; other text can.
    note = re.compile(properties["note"]["pattern"])
    assert note.match("Shared leadership — rotates, décide; 100% (ok)") is not None
    for bad in ("two\nlines", "a\ttab", 'a "quote"', "back\\slash"):
        assert note.match(bad) is None


def test_what_already_says_exactly_what_a_value_is_is_kept() -> None:
    properties = grammar_schema(Link.model_json_schema())["properties"]
    assert properties["target"]["pattern"] == r"^[a-z-]+$"
    assert properties["kind"]["enum"] == ["enables", "requires"]
    assert "pattern" not in properties["kind"]


def test_bounded_integers_become_the_list_of_their_values() -> None:
    properties = grammar_schema(Link.model_json_schema())["properties"]
    assert properties["confidence_pct"]["enum"] == list(range(101))
    assert "enum" not in properties["count"]  # unbounded above: left to the converter
    assert integer_enum({"type": "integer", "minimum": 0, "maximum": BOUNDED_RANGE + 1}) is None
    assert integer_enum({"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 4}) == [
        1, 2, 3]
    assert integer_enum({"type": "integer", "minimum": 5, "maximum": 1}) is None


def test_nested_definitions_and_optional_values_are_reached_and_nothing_is_changed_in_place(
) -> None:
    original = Answer.model_json_schema()
    before = json.dumps(original, sort_keys=True)
    spelled = grammar_schema(original)
    assert json.dumps(original, sort_keys=True) == before
    assert spelled["$defs"]["Link"]["properties"]["reason"]["pattern"].startswith("^[^")
    optional = spelled["properties"]["summary"]["anyOf"]
    assert {"type": "null"} in optional
    assert any(choice.get("pattern") == f"^{PRINTABLE}*$" for choice in optional)


def _schemas() -> list[dict[str, Any]]:
    return [grammar_schema(build_response_model(
        "seed", [f"candidate-{n}" for n in range(profile.candidates)],
        caps=profile.caps).model_json_schema()) for profile in (SMALL, DEFAULT)]


@pytest.mark.skipif(bool(missing_modules()), reason="the 'local' extra is not installed "
                    "(llama-cpp-python): pip install 'graph-gardener[local]' to run this test")
@pytest.mark.parametrize("index", [0, 1], ids=["small", "default"])
def test_llama_cpp_turns_the_response_schema_into_a_grammar_that_keeps_the_bounds(
        index: int) -> None:
    from llama_cpp import llama_grammar

    schema = _schemas()[index]
    rules = llama_grammar.json_schema_to_gbnf(json.dumps(schema))
    assert '"100"' in rules and "integral-part" not in rules  # percentages, not any integer
    assert r'[^"\\\x00-\x1F\x7F]' in rules  # strings without raw control characters
    llama_grammar.LlamaGrammar.from_string(rules, verbose=False)  # and llama.cpp parses it
