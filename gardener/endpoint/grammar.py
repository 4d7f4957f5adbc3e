"""A response schema spelled so that a llama.cpp-family grammar enforces all of it.

Why: llama.cpp servers turn a JSON schema into a grammar that constrains decoding, and
llama-cpp-python's server takes it in the form its documentation gives, ``response_format:
{"type": "json_object", "schema": ...}`` (mode ``json_object_schema``). Its converter (0.3.36)
honours ``enum`` and a string's ``pattern`` but drops two things a small model then gets wrong:

* an integer's ``minimum``/``maximum``: it writes ``"confidence_pct": 1000000000000001`` and
  spends its answer on digits. A bounded integer is therefore also given as an ``enum`` of
  its values (ranges of at most `BOUNDED_RANGE`).
* JSON's ban on raw control characters in strings: its string rule lets a line break through,
  and the JSON does not parse (llama-cpp-python issue 1259). A plain string is therefore
  also given a ``pattern`` of printable characters other than ``"`` and ``\\`` (a pattern's
  characters are written unescaped, so those two could not be written at all), keeping its
  ``minLength``/``maxLength`` as the pattern's repetition bounds.

Only the schema sent to the server changes; answers are still validated against the
response model itself, so these are bounds on what the grammar lets through, never on what
a valid answer is. Pure functions on plain JSON data.
"""

from __future__ import annotations

from typing import Any

BOUNDED_RANGE = 1000
"""Widest integer range spelled out as an ``enum`` (a longer one would only slow the grammar)."""
PRINTABLE = r'[^"\\\x00-\x1F\x7F]'
"""One character a grammar may write inside a JSON string without an escape."""
SPECIFIC = frozenset({"enum", "const", "pattern", "format", "$ref", "anyOf", "oneOf", "allOf"})
"""Keys that already say exactly what a value may be: such a node is left as it is."""


def string_pattern(min_length: int | None, max_length: int | None) -> str:
    """A regular expression for a JSON string of printable characters within the bounds."""
    low = min_length or 0
    if max_length is None:
        repeat = "*" if low == 0 else f"{{{low},}}"
    else:
        repeat = f"{{{low},{max_length}}}"
    return f"^{PRINTABLE}{repeat}$"


def integer_enum(schema: dict[str, Any]) -> list[int] | None:
    """The values of a bounded integer, or None when it is unbounded or too wide."""
    low, high = schema.get("minimum"), schema.get("maximum")
    if isinstance(schema.get("exclusiveMinimum"), int):
        low = schema["exclusiveMinimum"] + 1
    if isinstance(schema.get("exclusiveMaximum"), int):
        high = schema["exclusiveMaximum"] - 1
    if not (isinstance(low, int) and isinstance(high, int)) or isinstance(low, bool) or \
            isinstance(high, bool) or not low <= high <= low + BOUNDED_RANGE:
        return None
    return list(range(low, high + 1))


def _node(schema: dict[str, Any]) -> dict[str, Any]:
    spelled = {key: grammar_schema(value) for key, value in schema.items()}
    if SPECIFIC & schema.keys():
        return spelled
    kind = schema.get("type")
    if kind == "string":
        spelled["pattern"] = string_pattern(schema.get("minLength"), schema.get("maxLength"))
    elif kind == "integer":
        values = integer_enum(schema)
        if values is not None:
            spelled["enum"] = values
    return spelled


def grammar_schema(schema: Any) -> Any:
    """``schema`` (any JSON value of it) with every bound a grammar would drop spelled out.

    A new value; the argument is not changed. Properties' *names* are data, not schemas, but
    walking them is harmless: a property called ``type`` has a schema (a dict) as its value.
    """
    if isinstance(schema, dict):
        return _node(schema)
    if isinstance(schema, list):
        return [grammar_schema(item) for item in schema]
    return schema
