"""The client's requests are the ones instructor over a bare ``openai.OpenAI`` sends.

What the client adds (the guarded transport, the tag, a validation context bound to the
response model, answers as the caller's own class) must not change a byte of meaning in the
request: fixtures are keyed by it. The oracle is instructor over openai's SDK as instructor's
documentation sets it up, on the same kind of transport.
"""

from __future__ import annotations

import json
from typing import Any, cast

import httpx
import instructor
import openai
import pytest
from pydantic import BaseModel, Field, ValidationInfo, field_validator

from gardener.endpoint.client import LLM, LLMError
from gardener.endpoint.settings import LLMSettings

KEY = "sk-test-key-0123456789abcdef"
MODES = {"tools": instructor.Mode.TOOLS, "json_schema": instructor.Mode.JSON_SCHEMA,
         "json": instructor.Mode.JSON, "md_json": instructor.Mode.MD_JSON}


class Pet(BaseModel):
    """A pet, as the model describes it."""

    name: str = Field(description="What it answers to")
    legs: int = Field(ge=0)

    @field_validator("name")
    @classmethod
    def _known(cls, value: str, info: ValidationInfo) -> str:
        known = (info.context or {}).get("known")
        if known is not None and value not in known:
            raise ValueError(f"{value!r} is not a known pet")
        return value


def completion(body: dict[str, Any], arguments: dict[str, Any]) -> dict[str, Any]:
    """The answer an OpenAI server gives, in whatever shape the request's mode wants."""
    text = json.dumps(arguments)
    message: dict[str, Any] = {"role": "assistant", "content": None}
    if body.get("tools"):
        message["tool_calls"] = [{"id": "call_1", "type": "function", "function": {
            "name": body["tools"][0]["function"]["name"], "arguments": text}}]
    elif body.get("response_format"):
        message["content"] = text
    else:
        message["content"] = f"```json\n{text}\n```"
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}}


class Recorder:
    """A transport that answers every request with a valid pet, or one with -1 legs first."""

    def __init__(self, answers: list[dict[str, Any]]) -> None:
        self.answers = answers
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        body = json.loads(request.content)
        arguments = self.answers[min(len(self.requests), len(self.answers)) - 1]
        return httpx.Response(200, json=completion(body, arguments))


def client_of(mode: str, transport: httpx.BaseTransport) -> LLM:
    settings = LLMSettings(base_url="http://model.test/v1", api_key=KEY, model="pet-model",
                           mode=mode, max_attempts=1, max_retries=2)
    return LLM(settings, transport=transport)


def through_openai(mode: str, transport: httpx.BaseTransport,
                   messages: list[dict[str, Any]]) -> Pet:
    """The oracle: instructor over openai's SDK, on a plain client over ``transport``."""
    sdk = openai.OpenAI(base_url="http://model.test/v1", api_key=KEY, max_retries=0,
                        http_client=cast(Any, httpx.Client(transport=transport)))
    client = instructor.from_openai(sdk, mode=MODES[mode])
    return client.chat.completions.create(
        response_model=Pet, messages=cast(Any, messages), max_retries=2, model="pet-model",
        temperature=0.0, max_tokens=2048)


@pytest.mark.parametrize("mode", list(MODES))
def test_requests_and_answers_are_openais_own(mode: str) -> None:
    answers = [{"name": "Rex", "legs": -1}, {"name": "Rex", "legs": 4}]  # one re-ask
    messages = [{"role": "system", "content": "Describe pets."},
                {"role": "user", "content": "Rex, the dog with {{ braces }} and\n  \nblank lines"}]
    ours_recorder, theirs_recorder = Recorder(answers), Recorder(answers)
    with client_of(mode, httpx.MockTransport(ours_recorder)) as llm:
        ours, usage = llm.structured(response_model=Pet, messages=messages, tag="pet=rex",
                                     context={"known": ["Rex"]})
    theirs = through_openai(mode, httpx.MockTransport(theirs_recorder), messages)
    assert type(ours) is Pet and ours == Pet(name="Rex", legs=4)
    assert theirs.model_dump() == ours.model_dump()
    assert usage.requests == 2 and (usage.prompt_tokens, usage.completion_tokens) == (22, 14)
    sent = (ours_recorder.requests, theirs_recorder.requests)
    assert len(sent[0]) == len(sent[1]) == 2
    for mine, sdk in zip(*sent, strict=True):
        assert (mine.method, mine.url) == (sdk.method, sdk.url)
        assert json.loads(mine.content) == json.loads(sdk.content)
        assert mine.headers["authorization"] == sdk.headers["authorization"] == f"Bearer {KEY}"
        assert mine.headers["content-type"] == sdk.headers["content-type"]
        assert "x-gardener-tag" not in mine.headers
    # Sent as written, not rendered as a template (md_json appends its instruction).
    assert messages[1]["content"] in json.loads(sent[0][0].content)["messages"][1]["content"]


def test_the_bound_context_reaches_the_validators() -> None:
    answers = [{"name": "Felix", "legs": 4}, {"name": "Rex", "legs": 4}]
    recorder = Recorder(answers)
    with client_of("json_schema", httpx.MockTransport(recorder)) as llm:
        pet, usage = llm.structured(response_model=Pet, context={"known": ["Rex"]},
                                    messages=[{"role": "user", "content": "A pet"}])
    assert pet == Pet(name="Rex", legs=4) and usage.requests == 2
    assert "'Felix' is not a known pet" in recorder.requests[1].content.decode()


def test_an_answer_that_is_not_json_fails_the_call_with_the_endpoint_named() -> None:
    page = "<html>Gateway login required</html>"
    llm = client_of("json_schema", httpx.MockTransport(
        lambda request: httpx.Response(200, text=page, headers={"content-type": "text/html"})))
    with pytest.raises(LLMError) as info:
        llm.structured(response_model=Pet, messages=[{"role": "user", "content": "Rex"}],
                       tag="pet=rex")
    error = info.value
    assert "http://model.test/v1 answered HTTP 200 without a JSON object" in error.message
    assert "Gateway login required" in error.message
    assert not error.transient and error.tag == "pet=rex" and error.usage.requests == 1
