"""The LLM client against a local fake OpenAI server: answers, retries, re-asks, errors, usage."""

from __future__ import annotations

import json
import logging
import pickle
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, Field, ValidationInfo, field_validator

from gardener.endpoint.client import (
    LLM,
    LLMError,
    StructuredOutputError,
    Usage,
    retry_after_s,
    scrub,
    usage_of,
)
from gardener.endpoint.fixtures import FixtureMissing
from gardener.endpoint.grammar import grammar_schema
from gardener.endpoint.settings import (
    DEFAULT_MODEL,
    LOCAL_MODE,
    LOCAL_MODEL,
    LOOPBACK_TIMEOUT_S,
    REMOTE_TIMEOUT_S,
    LLMSettings,
    default_mode,
    is_loopback,
)
from gardener.testing.fake_openai import (
    Behaviour,
    FakeOpenAI,
    answer,
    drop,
    rate_limited,
    raw,
    server_error,
    stall,
    status,
    truncated,
)


class Pet(BaseModel):
    name: str
    legs: int = Field(ge=0)


class Named(BaseModel):
    """A name that must be one the caller allows (validation context)."""

    name: str

    @field_validator("name")
    @classmethod
    def allowed(cls, value: str, info: ValidationInfo) -> str:
        allowed = (info.context or {}).get("allowed", ())
        if value not in allowed:
            raise ValueError(f"{value!r} is not one of {sorted(allowed)}")
        return value


REX = {"name": "rex", "legs": 4}
ASK = [{"role": "system", "content": "Describe the pet."}, {"role": "user", "content": "Rex."}]


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def settings_for(url: str, **changes: Any) -> LLMSettings:
    values: dict[str, Any] = dict(
        base_url=url, api_key="sk-test-key-for-the-fake", model="fake-model", mode="tools",
        timeout_s=2.0, max_attempts=4, max_wait_s=20.0, max_retries=2,
        retry_initial_s=0.01, retry_cap_s=0.5)
    values.update(changes)
    return LLMSettings(**values)


class Sleeps:
    """Records every retry wait (and really waits, so timings stay honest)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        time.sleep(seconds)


def sent_tokens(fake: FakeOpenAI) -> tuple[int, int]:
    sent = fake.usage_sent
    return (sum(u["prompt_tokens"] for u in sent), sum(u["completion_tokens"] for u in sent))


# ---------------------------------------------------------------------------------------------
# Answers


@pytest.mark.parametrize("mode", ["tools", "json_schema", "json", "md_json"])
def test_answers_in_every_mode(fake: FakeOpenAI, mode: str) -> None:
    fake.script(answer(REX))
    with LLM(settings_for(fake.url, mode=mode)) as llm:
        pet, usage = llm.structured(response_model=Pet, messages=ASK)
    assert type(pet) is Pet
    assert pet == Pet(name="rex", legs=4)
    assert usage == Usage(*sent_tokens(fake), requests=1)
    body = fake.chat_requests[0].body
    assert body is not None and body["model"] == "fake-model" and body["temperature"] == 0.0
    assert body["max_tokens"] == 2048


def test_context_reaches_validators_and_text_is_sent_verbatim(fake: FakeOpenAI) -> None:
    text = "Braces {{ like_this }} and {% raw %} stay.\n    \n  indented line"
    fake.script(answer({"name": "felix"}), answer({"name": "rex"}))
    with LLM(settings_for(fake.url)) as llm:
        named, usage = llm.structured(response_model=Named,
                                      messages=[{"role": "user", "content": text}],
                                      context={"allowed": ["rex"]})
    assert named == Named.model_validate({"name": "rex"}, context={"allowed": ["rex"]})
    assert usage.requests == 2
    first, second = (r.body for r in fake.chat_requests)
    assert first is not None and second is not None
    assert first["messages"][0]["content"] == text
    assert "is not one of ['rex']" in json.dumps(second["messages"])


def test_tag_header_never_leaves_the_process(fake: FakeOpenAI) -> None:
    fake.script(answer(REX))
    with LLM(settings_for(fake.url)) as llm:
        llm.structured(response_model=Pet, messages=ASK, tag="pattern=rex prompt=propose@ab12cd")
    assert not any(name.startswith("x-gardener") for name in fake.chat_requests[0].header_names)
    assert fake.chat_requests[0].authorization == "Bearer sk-test-key-for-the-fake"


# ---------------------------------------------------------------------------------------------
# Transport retries


def test_429_waits_as_long_as_retry_after_says(fake: FakeOpenAI) -> None:
    fake.script(rate_limited("0.2"), answer(REX))
    sleeps = Sleeps()
    started = time.monotonic()
    with LLM(settings_for(fake.url), sleep=sleeps) as llm:
        pet, usage = llm.structured(response_model=Pet, messages=ASK)
    assert pet.name == "rex"
    assert sleeps.waits == [pytest.approx(0.2)]
    assert time.monotonic() - started >= 0.2
    assert usage.requests == 2


def test_retry_after_is_capped(fake: FakeOpenAI) -> None:
    fake.script(rate_limited("3600"), answer(REX))
    sleeps = Sleeps()
    with LLM(settings_for(fake.url, retry_cap_s=0.05), sleep=sleeps) as llm:
        llm.structured(response_model=Pet, messages=ASK)
    assert sleeps.waits == [pytest.approx(0.05)]


def test_retry_after_forms() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=7), usegmt=True)
    assert retry_after_s({"retry-after": "1.5"}, now) == 1.5
    assert retry_after_s({"retry-after": later}, now) == 7.0
    assert retry_after_s({"retry-after": format_datetime(now - timedelta(seconds=5),
                                                         usegmt=True)}, now) == 0.0
    assert retry_after_s({"retry-after-ms": "250", "retry-after": "9"}, now) == 0.25
    assert retry_after_s({"retry-after": "soon"}, now) is None
    assert retry_after_s({}, now) is None


def test_500_is_retried_with_backoff(fake: FakeOpenAI) -> None:
    fake.script(server_error(500), server_error(503), answer(REX))
    sleeps = Sleeps()
    with LLM(settings_for(fake.url, retry_initial_s=0.02), sleep=sleeps) as llm:
        pet, usage = llm.structured(response_model=Pet, messages=ASK)
    assert pet.legs == 4
    assert usage == Usage(*sent_tokens(fake), requests=3)
    assert len(sleeps.waits) == 2
    assert 0.02 <= sleeps.waits[0] <= 0.04  # initial + jitter
    assert 0.04 <= sleeps.waits[1] <= 0.06  # doubled + jitter


def test_persistent_500_gives_up_after_max_attempts(fake: FakeOpenAI) -> None:
    fake.script(*[server_error(500)] * 3)
    with LLM(settings_for(fake.url, max_attempts=3)) as llm, pytest.raises(LLMError) as caught:
        llm.structured(response_model=Pet, messages=ASK, tag="pattern=rex prompt=p@1")
    error = caught.value
    assert error.status == 500 and error.attempts == 3 and error.transient
    assert error.usage.requests == 3
    assert str(error).startswith("[pattern=rex prompt=p@1] ")
    assert "kept failing" in str(error) and "gave up after 3 attempts" in str(error)
    assert fake.url in str(error)


def test_wait_beyond_the_time_budget_gives_up_at_once(fake: FakeOpenAI) -> None:
    fake.script(rate_limited("5"), answer(REX))
    started = time.monotonic()
    settings = settings_for(fake.url, max_wait_s=1.0, retry_cap_s=10.0)
    with LLM(settings) as llm, pytest.raises(LLMError) as caught:
        llm.structured(response_model=Pet, messages=ASK)
    assert caught.value.status == 429 and caught.value.attempts == 1
    assert "rate-limiting" in str(caught.value)
    assert time.monotonic() - started < 1.0


REMOTE = "https://models.example/v1"


class TimesOut:
    """A remote endpoint (a transport standing for it) whose first answers never come."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.asked = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.asked += 1
        if self.asked <= self.times:
            raise httpx.ReadTimeout("timed out", request=request)
        body = json.loads(request.content)
        name = body["tools"][0]["function"]["name"]
        message = {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": name, "arguments": json.dumps(REX)}}]}
        return httpx.Response(200, json={
            "id": "c", "object": "chat.completion", "created": 1, "model": "fake-model",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})


def test_a_read_timeout_on_this_machine_is_not_asked_again(fake: FakeOpenAI) -> None:
    """A local server that took the request may still be computing it: no second copy."""
    fake.script(stall(1.0), answer(REX))
    started = time.monotonic()
    with (LLM(settings_for(fake.url, timeout_s=0.2)) as llm,
          pytest.raises(LLMError) as caught):
        llm.structured(response_model=Pet, messages=ASK)
    assert len(fake.chat_requests) == 1
    assert time.monotonic() - started < 1.0
    error = caught.value
    assert f"no answer from {fake.url} within 0.2 s (ReadTimeout)" in str(error)
    assert "raise GARDENER_TIMEOUT_S" in str(error) and "not asked again" in str(error)
    assert error.attempts == 1 and error.status is None and error.usage.requests == 0


def test_a_remote_read_timeout_is_asked_again_with_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    endpoint = TimesOut(1)
    settings = settings_for(REMOTE, timeout_s=0.2)
    with (caplog.at_level(logging.WARNING, logger="gardener.endpoint.client"),
          LLM(settings, transport=httpx.MockTransport(endpoint)) as llm):
        pet, usage = llm.structured(response_model=Pet, messages=ASK, tag="pattern=rex")
    assert pet == Pet(name="rex", legs=4) and endpoint.asked == 2
    assert usage == Usage(3, 2, requests=1)  # the timed-out request was never answered
    warned = [r.getMessage() for r in caplog.records]
    assert any("ReadTimeout" in m and "may still be computing the first answer" in m
               and "asked again" in m for m in warned), warned


def test_persistent_timeout_explains_itself() -> None:
    endpoint = TimesOut(2)
    settings = settings_for(REMOTE, timeout_s=0.1, max_attempts=2)
    with (LLM(settings, transport=httpx.MockTransport(endpoint)) as llm,
          pytest.raises(LLMError) as caught):
        llm.structured(response_model=Pet, messages=ASK)
    assert f"no answer from {REMOTE} within 0.1 s" in str(caught.value)
    assert "GARDENER_TIMEOUT_S" in str(caught.value)
    assert caught.value.attempts == 2 and caught.value.status is None
    assert caught.value.transient


def test_dropped_connection_is_retried(fake: FakeOpenAI) -> None:
    fake.script(drop(), answer(REX))
    with LLM(settings_for(fake.url)) as llm:
        pet, usage = llm.structured(response_model=Pet, messages=ASK)
    assert pet.name == "rex"
    assert usage.requests == 1
    assert len(fake.chat_requests) == 2


# ---------------------------------------------------------------------------------------------
# Re-asks (instructor) and structured failures


def test_truncated_json_is_reasked(fake: FakeOpenAI) -> None:
    fake.script(truncated(REX), answer(REX))
    with LLM(settings_for(fake.url, mode="json_schema")) as llm:
        pet, usage = llm.structured(response_model=Pet, messages=ASK)
    assert pet == Pet(name="rex", legs=4)
    assert usage == Usage(*sent_tokens(fake), requests=2)
    second = fake.chat_requests[1].body
    assert second is not None and len(second["messages"]) == len(ASK) + 2


@pytest.mark.parametrize("mode", ["tools", "json_schema", "md_json"])
def test_schema_invalid_json_fails_after_the_reasks(fake: FakeOpenAI, mode: str) -> None:
    bad: list[dict[str, Any]] = [{"name": "rex", "legs": -1}, {"name": "rex"},
                                 {"legs": "four", "name": "rex"}]
    fake.script(*(answer(b) for b in bad))
    with (LLM(settings_for(fake.url, mode=mode, max_retries=2)) as llm,
          pytest.raises(StructuredOutputError) as caught):
        llm.structured(response_model=Pet, messages=ASK, tag="pattern=rex prompt=p@1")
    error = caught.value
    assert error.last_json is not None and json.loads(error.last_json) == bad[-1]
    assert error.attempts == 3
    assert error.usage == Usage(*sent_tokens(fake), requests=3)
    assert "[pattern=rex prompt=p@1]" in str(error) and "legs" in str(error)
    assert "\n" not in str(error) and "errors.pydantic.dev" not in str(error)  # one log line
    assert len(fake.chat_requests) == 3


def test_reasks_and_retries_are_all_counted(fake: FakeOpenAI) -> None:
    fake.script(server_error(), answer({"name": "rex"}), rate_limited("0.01"), drop(), answer(REX))
    with LLM(settings_for(fake.url)) as llm:
        pet, usage = llm.structured(response_model=Pet, messages=ASK)
        total = llm.total_usage
    assert pet.legs == 4
    # Answered: 500, invalid answer, 429, valid answer (the dropped one never answered).
    assert usage == Usage(*sent_tokens(fake), requests=4)
    assert total == usage


def test_answer_cut_off_at_max_tokens_is_not_reasked(fake: FakeOpenAI) -> None:
    fake.script(truncated(REX, finish_reason="length"))
    with (LLM(settings_for(fake.url, max_tokens=5)) as llm,
          pytest.raises(StructuredOutputError) as caught):
        llm.structured(response_model=Pet, messages=ASK)
    assert "max_tokens=5" in str(caught.value)
    assert caught.value.last_json == json.dumps(REX)[: len(json.dumps(REX)) // 2]
    assert caught.value.usage.requests == 1


def test_not_json_at_all_keeps_the_raw_text(fake: FakeOpenAI) -> None:
    fake.script(*[raw("I cannot do that.")] * 2)
    with (LLM(settings_for(fake.url, mode="json", max_retries=1)) as llm,
          pytest.raises(StructuredOutputError) as caught):
        llm.structured(response_model=Pet, messages=ASK)
    assert caught.value.last_json == "I cannot do that."


# ---------------------------------------------------------------------------------------------
# Errors that fail fast


@pytest.mark.parametrize(("behaviour", "expected"), [
    (status(400, "This model does not support tools"), "rejected the request (HTTP 400"),
    (status(422, "Unprocessable"), "supports mode 'tools'"),
    (status(429, "You exceeded your current quota", error_code="insufficient_quota"),
     "quota at"),
])
def test_client_errors_are_not_retried(fake: FakeOpenAI, behaviour: Behaviour,
                                       expected: str) -> None:
    fake.script(behaviour, answer(REX))
    with LLM(settings_for(fake.url)) as llm, pytest.raises(LLMError) as caught:
        llm.structured(response_model=Pet, messages=ASK)
    assert expected in str(caught.value)
    assert caught.value.status == behaviour.status and caught.value.attempts == 1
    assert not caught.value.transient
    assert len(fake.chat_requests) == 1


def test_401_says_check_the_key_and_hides_it() -> None:
    with FakeOpenAI(api_key="sk-the-right-key-0000") as fake:
        settings = settings_for(fake.url, api_key="sk-wrong-key-123456789")
        with LLM(settings) as llm, pytest.raises(LLMError) as caught:
            llm.structured(response_model=Pet, messages=ASK)
        assert fake.requests[0].authorization == "Bearer sk-wrong-key-123456789"
    assert caught.value.status == 401 and caught.value.attempts == 1
    assert "check OPENAI_API_KEY" in str(caught.value)
    assert "sk-wrong-key-123456789" not in str(caught.value)


def test_unset_key_is_named_as_unset() -> None:
    with (FakeOpenAI(api_key="sk-the-right-key-0000") as fake,
          LLM(settings_for(fake.url, api_key=None)) as llm, pytest.raises(LLMError) as caught):
        llm.structured(response_model=Pet, messages=ASK)
    assert "check OPENAI_API_KEY (it is not set)" in str(caught.value)


def test_unknown_model_is_named_with_the_endpoint() -> None:
    with (FakeOpenAI(models=["fake-model"]) as fake,
          LLM(settings_for(fake.url, model="no-such-model")) as llm,
          pytest.raises(LLMError) as caught):
        llm.structured(response_model=Pet, messages=ASK)
    assert caught.value.status == 404
    assert f"model 'no-such-model' not found at {fake.url}" in str(caught.value)


def test_nothing_listening_fails_fast() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    started = time.monotonic()
    with LLM(settings_for(url)) as llm, pytest.raises(LLMError) as caught:
        llm.structured(response_model=Pet, messages=ASK)
    assert str(caught.value) == f"nothing answers at {url}; is the server running?"
    assert caught.value.attempts == 1 and not caught.value.transient
    assert time.monotonic() - started < 1.0


# ---------------------------------------------------------------------------------------------
# Concurrency, pure helpers, settings


def test_concurrent_calls_count_their_own_usage() -> None:
    def responder(body: dict[str, Any]) -> dict[str, Any]:
        return {"name": "x" * len(body["messages"][-1]["content"]), "legs": 1}

    asks = [[{"role": "user", "content": "y" * n}] for n in range(1, 9)]
    with (FakeOpenAI(latency=0.05, responder=responder) as fake,
          LLM(settings_for(fake.url)) as llm, ThreadPoolExecutor(4) as pool):
        results = list(pool.map(
            lambda messages: llm.structured(response_model=Pet, messages=messages), asks))
        total = llm.total_usage
    for n, (pet, usage) in enumerate(results, start=1):
        assert pet.name == "x" * n
        assert usage.requests == 1
        assert usage.completion_tokens == max(1, len(json.dumps({"name": "x" * n, "legs": 1})) // 4)
    assert total == sum((u for _, u in results), Usage())
    assert total.requests == 8


def test_errors_survive_pickling() -> None:
    errors: list[Exception] = [
        LLMError("boom", status=500, tag="pattern=a", attempts=3, usage=Usage(1, 2, 3)),
        StructuredOutputError("bad", last_json="{", usage=Usage(4, 5, 6), tag="t", attempts=2),
        FixtureMissing("pattern=a prompt=p@1", "ab" * 32, Path("fixtures/a/abab.json")),
    ]
    for error in errors:
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error)
        assert copy.__dict__ == error.__dict__


def test_usage_arithmetic_and_parsing() -> None:
    assert Usage(1, 2, 3) + Usage(10, 20, 30) == Usage(11, 22, 33)
    assert Usage(1, 2, 3).as_dict() == {"prompt_tokens": 1, "completion_tokens": 2,
                                        "requests": 3}
    assert usage_of(b'{"usage": {"prompt_tokens": 5, "completion_tokens": 7}}') == Usage(5, 7, 1)
    assert usage_of(b'{"error": {"message": "x"}}') == Usage(0, 0, 1)
    assert usage_of(b"<html>") == Usage(0, 0, 1)


def test_scrub_masks_keys_but_not_words() -> None:
    text = "key sk-proj-abcdefghijklmnop1234 in task-force-design-pattern, Bearer abcdefgh12345678"
    assert scrub(text) == "key sk-*** in task-force-design-pattern, Bearer ***"
    assert scrub("my secret-key-42 here", ["secret-key-42"]) == "my *** here"
    assert scrub("the test passes", ["test"]) == "the test passes"  # too short to be a key


def test_default_mode_per_endpoint() -> None:
    assert default_mode(None) == "tools"
    assert default_mode("https://api.openai.com/v1") == "tools"
    assert default_mode("http://localhost:11434/v1") == "json_schema"
    assert default_mode("http://127.0.0.1:8000/v1") == "json_schema"


def test_settings_from_env() -> None:
    env = {"OPENAI_BASE_URL": "http://localhost:8000/v1", "OPENAI_API_KEY": "sk-env-key-000000",
           "GARDENER_MODEL": "qwen2.5-7b-instruct"}
    settings = LLMSettings.from_env(environ=env)
    assert (settings.base_url, settings.api_key, settings.model, settings.mode) == (
        "http://localhost:8000/v1", "sk-env-key-000000", "qwen2.5-7b-instruct", "json_schema")
    assert "sk-env-key" not in repr(settings)
    chosen = LLMSettings.from_env(model="m", mode="md_json", base_url="https://api.openai.com/v1",
                                  environ=env)
    assert (chosen.base_url, chosen.model, chosen.mode) == ("https://api.openai.com/v1", "m",
                                                           "md_json")
    # Nothing configured: the bundled local model's name and mode (also for its replays).
    bare = LLMSettings.from_env(environ={"OPENAI_BASE_URL": "  "})
    assert (bare.base_url, bare.api_key, bare.model, bare.mode) == (None, None, LOCAL_MODEL,
                                                                    LOCAL_MODE)
    openai = LLMSettings.from_env(environ={"OPENAI_API_KEY": "sk-env-key-000000"})
    assert (openai.base_url, openai.model, openai.mode) == (None, DEFAULT_MODEL, "tools")
    assert openai.endpoint == "https://api.openai.com/v1"
    with pytest.raises(ValueError, match="unknown LLM mode 'xml'"):
        LLMSettings.from_env(mode="xml", environ={})


def test_a_server_on_this_machine_gets_a_patient_timeout() -> None:
    for url in ("http://127.0.0.1:8080/v1", "http://localhost:11434/v1", "http://[::1]:8000/v1",
                "http://127.0.0.2:9/v1"):
        assert is_loopback(url)
        assert LLMSettings.from_env(environ={"OPENAI_BASE_URL": url}).timeout_s == (
            LOOPBACK_TIMEOUT_S)
    for url in ("https://api.openai.com/v1", "http://10.0.0.5:8000/v1",
                "http://localhost.example/v1"):
        assert not is_loopback(url)
        assert LLMSettings.from_env(environ={"OPENAI_BASE_URL": url}).timeout_s == (
            REMOTE_TIMEOUT_S)
    assert LLMSettings.from_env(environ={"OPENAI_API_KEY": "k"}).timeout_s == REMOTE_TIMEOUT_S
    # No endpoint at all: the bundled model, whose server the pipeline starts with its timeout.
    assert LLMSettings.from_env(environ={}).timeout_s == REMOTE_TIMEOUT_S
    chosen = LLMSettings.from_env(environ={"OPENAI_BASE_URL": "http://127.0.0.1:8080/v1",
                                           "GARDENER_TIMEOUT_S": "30"})
    assert chosen.timeout_s == 30.0 and chosen.loopback


def test_fake_server_runs_as_a_subprocess_for_benchmarks() -> None:
    process = subprocess.Popen([sys.executable, "-m", "gardener.testing.fake_openai", "--port",
                                "0", "--latency", "0.2"], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        started = time.monotonic()
        with LLM(settings_for(url)) as llm:
            pet, usage = llm.structured(response_model=Pet, messages=ASK)
        assert time.monotonic() - started >= 0.2
        assert isinstance(pet.name, str) and pet.legs == 0  # the smallest schema-valid answer
        assert usage.requests == 1
    finally:
        process.terminate()
        process.wait(timeout=5)


REFUSED = "1 validation error: response_format.type Input should be 'text' or 'json_object'"
"""How llama-cpp-python's server answers a json_schema response_format (a 500)."""


def test_json_schema_refusal_moves_to_the_json_object_dialect_once(fake: FakeOpenAI) -> None:
    fake.script(status(500, REFUSED), answer(REX), answer(REX))
    sleeps = Sleeps()
    with LLM(settings_for(fake.url, mode="json_schema"), sleep=sleeps) as llm:
        first, _ = llm.structured(response_model=Pet, messages=ASK)
        second, _ = llm.structured(response_model=Pet, messages=ASK)
        assert llm.mode == "json_object_schema"
    assert first == second == Pet(name="rex", legs=4)
    assert sleeps.waits == []  # the refusal is not retried as a flaky 500
    bodies = [r.body for r in fake.chat_requests]
    assert bodies[0] is not None and bodies[0]["response_format"]["type"] == "json_schema"
    for body in bodies[1:]:
        assert body is not None and "tools" not in body
        assert body["response_format"] == {"type": "json_object",
                                           "schema": grammar_schema(Pet.model_json_schema())}


def test_a_server_refusing_both_formats_is_asked_with_tools(fake: FakeOpenAI) -> None:
    fake.script(status(500, REFUSED), status(400, "response_format: unknown key 'schema'"),
                answer(REX))
    with LLM(settings_for(fake.url, mode="json_schema")) as llm:
        pet, _ = llm.structured(response_model=Pet, messages=ASK)
        assert llm.mode == "tools"
    assert pet == Pet(name="rex", legs=4)
    last = fake.chat_requests[-1].body
    assert last is not None and "tools" in last and "response_format" not in last


def test_json_object_schema_sends_the_schema_a_grammar_enforces(fake: FakeOpenAI) -> None:
    fake.script(answer(REX))
    with LLM(settings_for(fake.url, mode="json_object_schema")) as llm:
        pet, _ = llm.structured(response_model=Pet, messages=ASK)
    assert pet == Pet(name="rex", legs=4)
    body = fake.chat_requests[0].body
    assert body is not None and body["response_format"]["type"] == "json_object"
    sent = body["response_format"]["schema"]
    assert sent["properties"]["name"]["pattern"] == grammar_schema(
        {"type": "string"})["pattern"]
    assert body["messages"] == ASK  # the schema travels in the request, not in the messages


def test_other_500s_do_not_switch_modes(fake: FakeOpenAI) -> None:
    fake.script(*[server_error(500)] * 2)
    with LLM(settings_for(fake.url, mode="json_schema", max_attempts=2)) as llm:
        with pytest.raises(LLMError):
            llm.structured(response_model=Pet, messages=ASK)
        assert llm.mode == "json_schema"


def test_a_400_about_something_else_does_not_switch_modes(fake: FakeOpenAI) -> None:
    fake.script(status(400, "This model's maximum context length is 8192 tokens"))
    with LLM(settings_for(fake.url, mode="json_schema")) as llm:
        with pytest.raises(LLMError, match="maximum context length"):
            llm.structured(response_model=Pet, messages=ASK)
        assert llm.mode == "json_schema"
    assert len(fake.chat_requests) == 1


def test_credentials_in_the_base_url_never_reach_a_message() -> None:
    from gardener.endpoint.settings import LLMSettings

    s = LLMSettings.from_env(environ={"OPENAI_BASE_URL":
                                      "https://bob:hunter2@llm.example/v1?api-key=k3y&region=eu",
                                      "OPENAI_API_KEY": "x"})
    assert s.url == "https://bob:hunter2@llm.example/v1?api-key=k3y&region=eu"
    assert s.endpoint == "https://***@llm.example/v1?api-key=***&region=eu"
