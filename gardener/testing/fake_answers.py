"""What the fake model server answers: scripted behaviours, schema-minimal answers, faults.

`gardener.testing.fake_openai` serves these; a test scripts them (``fake.script(answer(...),
rate_limited("0.05"))``) or gives the server `Faults` to draw from. Everything here works
on the request body only (a ``dict``), so a responder can be tested without a server.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Arguments = dict[str, Any]
Responder = Callable[[dict[str, Any]], Arguments]


# ---------------------------------------------------------------------------------------------
# Scripted behaviours


@dataclass(frozen=True)
class Behaviour:
    """What the server does with one chat completion request."""

    kind: Literal["answer", "raw", "status", "stall", "drop"]
    arguments: Arguments | None = None  # answer: the object the model "returns"
    text: str | None = None  # raw: the exact JSON text sent as arguments / content
    finish_reason: str = "stop"
    status: int = 200
    message: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    seconds: float = 0.0  # stall: how long to wait before answering normally
    error_code: str | None = None  # status: the OpenAI error code (e.g. "insufficient_quota")


def answer(arguments: Arguments) -> Behaviour:
    """A well-formed answer carrying `arguments` (valid or not for the caller's schema)."""
    return Behaviour("answer", arguments=arguments)


def raw(text: str, finish_reason: str = "stop") -> Behaviour:
    """An answer whose JSON text is exactly `text` (which need not be JSON at all)."""
    return Behaviour("raw", text=text, finish_reason=finish_reason)


def truncated(arguments: Arguments, finish_reason: str = "stop") -> Behaviour:
    """The JSON of `arguments` cut in half, as a model stopped mid-object would send it."""
    text = json.dumps(arguments)
    return Behaviour("raw", text=text[: max(1, len(text) // 2)], finish_reason=finish_reason)


def status(code: int, message: str = "", headers: Sequence[tuple[str, str]] = (),
           error_code: str | None = None) -> Behaviour:
    """An OpenAI-style error response with HTTP status `code`."""
    return Behaviour("status", status=code, message=message or f"fake error {code}",
                     headers=tuple(headers), error_code=error_code)


def rate_limited(retry_after: str | None = "0.05") -> Behaviour:
    """HTTP 429, with a Retry-After header (seconds or HTTP-date) unless None."""
    headers = (("Retry-After", retry_after),) if retry_after is not None else ()
    return status(429, "Rate limit reached for requests", headers)


def server_error(code: int = 500) -> Behaviour:
    return status(code, "The server had an error while processing your request.")


def stall(seconds: float) -> Behaviour:
    """Wait `seconds` before answering normally: longer than the client timeout means a timeout."""
    return Behaviour("stall", seconds=seconds)


def drop() -> Behaviour:
    """Read the request, then close the connection without a word."""
    return Behaviour("drop")


# ---------------------------------------------------------------------------------------------
# Default responder: the smallest object the request's JSON schema accepts


def minimal_instance(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> Any:
    """The smallest value valid for `schema`; lets benchmarks run against any response model."""
    defs = defs if defs is not None else schema.get("$defs", {})
    if "$ref" in schema:
        return minimal_instance(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return minimal_instance(schema[key][0], defs)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: minimal_instance(properties[name], defs)
                for name in schema.get("required", []) if name in properties}
    if kind == "array":
        items = schema.get("items", {})
        return [minimal_instance(items, defs) for _ in range(schema.get("minItems", 0))]
    if kind == "string":
        return "x" * schema.get("minLength", 0)
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    return None


_EMBEDDED_SCHEMA = re.compile(r"json_schema:\s*(\{.*\})\s*Make sure to return", re.DOTALL)


def request_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema instructor sent, wherever the mode put it."""
    tools = body.get("tools")
    if tools:
        return dict(tools[0]["function"].get("parameters", {}))
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        return dict(response_format["json_schema"]["schema"])
    for message in body.get("messages", []):
        content = message.get("content")
        match = _EMBEDDED_SCHEMA.search(content) if isinstance(content, str) else None
        if match:
            try:
                return dict(json.loads(match.group(1)))
            except json.JSONDecodeError:
                return None
    return None


def minimal_responder(body: dict[str, Any]) -> Arguments:
    schema = request_schema(body)
    value = minimal_instance(schema) if schema else {}
    return value if isinstance(value, dict) else {}


def link_targets(body: dict[str, Any]) -> list[str]:
    """The link targets the request's schema allows (its ``target`` enum): the candidates."""
    schema = request_schema(body) or {}
    link = schema.get("$defs", {}).get("LinkDraft", {})
    return list(link.get("properties", {}).get("target", {}).get("enum", []))


# ---------------------------------------------------------------------------------------------
# Random faults


FAULT_KINDS = ("429", "429-no-retry-after", "500", "503", "slow", "drop", "truncated",
               "invalid", "invented")
"""What a faulty request can get: a rate limit with and without Retry-After, a server error,
an answer slower than the client's timeout, a dropped connection, JSON cut in half, JSON that
does not fit the schema, and links to targets that were never offered."""


@dataclass
class Faults:
    """Seeded random faults; each chat request misbehaves with probability ``rate``.

    The kind is drawn uniformly from ``kinds``; ``counts`` holds how many requests got each
    (and ``ok`` for the rest), which is what a reliability table reports.
    """

    rate: float
    seed: int = 0
    kinds: tuple[str, ...] = FAULT_KINDS
    slow_s: float = 5.0
    """How long a slow answer takes: set it beyond the client's timeout."""
    retry_after: str = "0.05"
    counts: Counter[str] = field(default_factory=Counter)
    _rng: random.Random = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.kinds) - set(FAULT_KINDS))
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown}; known: {', '.join(FAULT_KINDS)}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be within 0..1, got {self.rate}")
        self._rng = random.Random(self.seed)

    def draw(self) -> str | None:
        """The fault for the next request, or None (counted as ``ok``)."""
        with self._lock:
            faulty = bool(self.kinds) and self._rng.random() < self.rate
            kind = self._rng.choice(self.kinds) if faulty else None
            self.counts[kind or "ok"] += 1
            return kind

    def behaviour(self, kind: str, body: dict[str, Any], responder: Responder) -> Behaviour:
        if kind == "429":
            return rate_limited(self.retry_after)
        if kind == "429-no-retry-after":
            return rate_limited(None)
        if kind in ("500", "503"):
            return server_error(int(kind))
        if kind == "slow":
            return stall(self.slow_s)
        if kind == "drop":
            return drop()
        if kind == "invalid":
            return answer({"entities": "several", "inferred_links": {"target": 7},
                           "vitality_band": 3})
        arguments = responder(body)
        if kind == "truncated":
            return truncated(arguments)
        return answer(invented_links(arguments))

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)


def invented_links(arguments: Arguments) -> Arguments:
    """``arguments`` with every link pointed at a pattern nobody offered (one link at least)."""
    links = arguments.get("inferred_links")
    links = links if isinstance(links, list) and links else [
        {"type": "enables", "confidence_pct": 80, "reason": "An invented connection"}]
    invented = [{**link, "target": f"invented-pattern-{n}"} if isinstance(link, dict) else link
                for n, link in enumerate(links)]
    return {**arguments, "inferred_links": invented}
