"""Record/replay of model exchanges: replays offline, notices changes, keeps secrets out."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from gardener.endpoint.client import LLM, LLMError, Usage
from gardener.endpoint.fixtures import (
    FixtureMissing,
    FixtureMode,
    FixtureTransport,
    fixture_key,
    tag_folder,
)
from gardener.endpoint.settings import LLMSettings
from gardener.testing.fake_openai import FakeOpenAI, answer, rate_limited, server_error


class Pet(BaseModel):
    name: str
    legs: int


class Kennel(BaseModel):
    pets: list[Pet]


REX = {"name": "rex", "legs": 4}
ASK = [{"role": "system", "content": "Describe the pet."}, {"role": "user", "content": "Rex."}]
TAG = "pattern=distributed-leadership-design prompt=propose@ab12cd"


def settings_for(url: str, **changes: Any) -> LLMSettings:
    values: dict[str, Any] = dict(
        base_url=url, api_key="sk-test-key-for-the-fake", model="fake-model", mode="tools",
        timeout_s=2.0, max_attempts=4, max_wait_s=20.0, max_retries=2,
        retry_initial_s=0.01, retry_cap_s=0.5)
    values.update(changes)
    return LLMSettings(**values)


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a connection fails loudly."""

    def refuse(self: socket.socket, address: Any) -> None:
        raise AssertionError(f"network touched: connect to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def ask(url: str, fixtures: Path, mode: str, **kwargs: Any) -> tuple[Pet, Usage]:
    with LLM(settings_for(url), transport=FixtureTransport(fixtures, mode)) as llm:
        return llm.structured(response_model=Pet, messages=ASK, tag=TAG, **kwargs)


def files(directory: Path) -> list[Path]:
    return sorted(directory.glob("**/*.json"))


# ---------------------------------------------------------------------------------------------


def test_record_then_replay_offline_gives_the_same_objects(
        fake: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.script(answer({"name": "rex"}), answer(REX))  # one re-ask, recorded too
    recorded, recorded_usage = ask(fake.url, tmp_path, "record")
    assert len(files(tmp_path)) == 2
    assert all(p.parent == tmp_path / "distributed-leadership-design" for p in files(tmp_path))

    def refuse(self: socket.socket, address: Any) -> None:
        raise AssertionError(f"network touched: connect to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    store = FixtureTransport(tmp_path, "replay")
    with LLM(settings_for("http://unreachable.invalid/v1"), transport=store) as llm:
        replayed, replayed_usage = llm.structured(response_model=Pet, messages=ASK, tag=TAG)
    assert type(replayed) is Pet and replayed == recorded == Pet(name="rex", legs=4)
    assert replayed_usage == recorded_usage
    assert recorded_usage.requests == 2 and store.replayed == 2


def test_fixture_file_is_readable_and_complete(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.script(answer(REX))
    _, usage = ask(fake.url, tmp_path, "record")
    (path,) = files(tmp_path)
    record = json.loads(path.read_text(encoding="utf-8"))
    assert set(record) == {"key", "tag", "date", "model", "method", "path", "status", "usage",
                           "request", "response"}
    assert path.name == record["key"][:16] + ".json"
    assert record["tag"] == TAG and record["model"] == "fake-model"
    assert (record["method"], record["path"], record["status"]) == (
        "POST", "/v1/chat/completions", 200)
    assert record["request"]["messages"] == ASK and "tools" in record["request"]
    assert record["response"]["choices"][0]["message"]["tool_calls"]
    assert record["usage"] == {"prompt_tokens": usage.prompt_tokens,
                               "completion_tokens": usage.completion_tokens}
    assert datetime.fromisoformat(record["date"]).tzinfo is not None
    assert record["date"].endswith("Z")
    assert "headers" not in json.dumps(record).lower()


def test_replay_miss_names_the_tag_and_key(tmp_path: Path, offline: None) -> None:
    with (LLM(settings_for("http://unreachable.invalid/v1"),
              transport=FixtureTransport(tmp_path, "replay")) as llm,
          pytest.raises(FixtureMissing) as caught):
        llm.structured(response_model=Pet, messages=ASK, tag=TAG)
    error = caught.value
    assert isinstance(error, LLMError)
    assert TAG in str(error) and error.key[:16] in str(error)
    assert str(tmp_path / "distributed-leadership-design") in str(error)
    assert error.usage == Usage()


def test_changed_prompt_or_schema_misses(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.script(answer(REX))
    ask(fake.url, tmp_path, "record")
    store = FixtureTransport(tmp_path, "replay")
    with LLM(settings_for(fake.url), transport=store) as llm:
        changed_prompt = [*ASK[:-1], {"role": "user", "content": "Rex, the dog."}]
        with pytest.raises(FixtureMissing):
            llm.structured(response_model=Pet, messages=changed_prompt, tag=TAG)
        with pytest.raises(FixtureMissing):
            llm.structured(response_model=Kennel, messages=ASK, tag=TAG)
    with (LLM(settings_for(fake.url, temperature=0.7), transport=store) as llm,
          pytest.raises(FixtureMissing)):
        llm.structured(response_model=Pet, messages=ASK, tag=TAG)
    assert len(fake.chat_requests) == 1


def test_auto_records_what_is_missing_then_replays(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.script(answer(REX))
    first, _ = ask(fake.url, tmp_path, "auto")
    second, _ = ask(fake.url, tmp_path, "auto")
    assert first == second == Pet(name="rex", legs=4)
    assert len(fake.chat_requests) == 1 and len(files(tmp_path)) == 1


def test_identical_requests_replay_every_time(fake: FakeOpenAI, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    fake.script(answer(REX))
    ask(fake.url, tmp_path, "record")

    def refuse(self: socket.socket, address: Any) -> None:
        raise AssertionError(f"network touched: connect to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    store = FixtureTransport(tmp_path, "replay")
    with LLM(settings_for(fake.url), transport=store) as llm:
        answers = [llm.structured(response_model=Pet, messages=ASK, tag=TAG)[0] for _ in range(3)]
    assert answers == [Pet(name="rex", legs=4)] * 3 and store.replayed == 3


def test_errors_are_retried_but_not_recorded(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.script(server_error(), rate_limited("0.01"), answer(REX))
    pet, usage = ask(fake.url, tmp_path, "record")
    assert pet.legs == 4 and usage.requests == 3
    (path,) = files(tmp_path)
    assert json.loads(path.read_text())["status"] == 200


def test_rerecording_the_same_answer_does_not_churn(fake: FakeOpenAI, tmp_path: Path) -> None:
    times = iter([datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC),
                  datetime(2025, 9, 1, tzinfo=UTC)])

    def record() -> None:
        store = FixtureTransport(tmp_path, "record", clock=lambda: next(times))
        with LLM(settings_for(fake.url), transport=store) as llm:
            llm.structured(response_model=Pet, messages=ASK, tag=TAG)

    fake.script(answer(REX), answer(REX), answer({"name": "rex", "legs": 3}))
    record()
    (path,) = files(tmp_path)
    before = path.read_bytes()
    record()  # same answer, new id/created/fingerprint from the server
    assert path.read_bytes() == before
    record()  # a different answer replaces the file, with the new date
    after = json.loads(path.read_text())
    assert after["date"] == "2025-09-01T00:00:00Z"
    assert json.loads(after["response"]["choices"][0]["message"]["tool_calls"][0]["function"]
                      ["arguments"]) == {"name": "rex", "legs": 3}


def test_the_api_key_is_never_written_logged_or_raised(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk-test-SECRET123"
    caplog.set_level(logging.DEBUG)
    # A careless server: it echoes the Authorization header inside successful answers.
    with FakeOpenAI(api_key=secret, echo_auth=True) as fake:
        fake.script(rate_limited("0.01"), answer({"name": "rex"}), answer(REX))
        store = FixtureTransport(tmp_path, "record")
        with LLM(settings_for(fake.url, api_key=secret), transport=store) as llm:
            pet, _ = llm.structured(response_model=Pet, messages=ASK, tag=TAG)
        assert pet == Pet(name="rex", legs=4)
        assert {r.authorization for r in fake.chat_requests} == {f"Bearer {secret}"}
        # ...and one that echoes a rejected key in its error message.
        with (LLM(settings_for(fake.url, api_key="sk-test-WRONG-KEY-456"),
                  transport=FixtureTransport(tmp_path, "record")) as llm,
              pytest.raises(LLMError) as caught):
            llm.structured(response_model=Pet, messages=ASK, tag=TAG)
    assert files(tmp_path)
    for path in files(tmp_path):
        text = path.read_text(encoding="utf-8")
        assert secret not in text and "SECRET123" not in text
        assert "authorization" not in json.loads(text)["request"]
    assert any("retry" in r.getMessage() for r in caplog.records)
    assert secret not in caplog.text
    assert all(secret not in r.getMessage() for r in caplog.records)
    assert "check OPENAI_API_KEY" in str(caught.value)
    error: BaseException | None = caught.value
    seen: list[BaseException] = []
    while error is not None and error not in seen:
        assert "sk-test-WRONG-KEY-456" not in str(error) and secret not in str(error)
        assert "sk-test-WRONG-KEY-456" not in repr(error)
        seen.append(error)
        error = error.__cause__ or error.__context__


def test_keys_are_canonical() -> None:
    a = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}]}).encode()
    b = json.dumps({"messages": [{"content": "x", "role": "user"}], "model": "m"},
                   indent=2).encode()
    assert fixture_key("POST", "/v1/chat/completions", a) == fixture_key(
        "post", "/v1/chat/completions", b)
    assert fixture_key("POST", "/v1/chat/completions", a) != fixture_key("POST", "/v1/x", a)
    c = json.dumps({"model": "m", "messages": [{"role": "user", "content": "y"}]}).encode()
    assert fixture_key("POST", "/v1/chat/completions", a) != fixture_key(
        "POST", "/v1/chat/completions", c)


def test_tag_folders() -> None:
    assert tag_folder(TAG) == "distributed-leadership-design"
    assert tag_folder("pattern=Odd Name") == "odd"
    assert tag_folder("smoke test #1") == "smoke-test-1"
    assert tag_folder("") == "_untagged"
    assert tag_folder("pattern=../../etc") == "etc"


def test_unknown_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown fixtures mode 'play'"):
        FixtureTransport(tmp_path, "play")
    assert FixtureTransport(tmp_path, FixtureMode.AUTO).mode is FixtureMode.AUTO
