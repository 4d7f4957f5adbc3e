"""The environment reaches the model request: HTTP proxies (and NO_PROXY), organization, project.

httpx applies HTTP_PROXY / NO_PROXY only to transports it makes itself, and the client gives
its ``httpx.Client`` a transport of its own (the guarded one), so these tests send a real
request through a recording proxy on this machine, and around it.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from pydantic import BaseModel

from gardener.endpoint.client import LLM
from gardener.endpoint.fixtures import FixtureTransport
from gardener.endpoint.settings import LLMSettings
from gardener.testing.fake_openai import FakeOpenAI, answer

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authorization",
                        "te", "trailers", "transfer-encoding", "upgrade", "content-length"})


class Pet(BaseModel):
    name: str
    legs: int


class _Forwarding(BaseHTTPRequestHandler):
    """Records each request line, then forwards the request to the host it names."""

    protocol_version = "HTTP/1.1"
    server: RecordingProxy

    def log_message(self, format: str, *args: Any) -> None:
        """Silent."""

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def _forward(self) -> None:
        with self.server.lock:
            self.server.lines.append(self.requestline)
        target = urlsplit(self.path)  # a proxy is sent the absolute URL
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        upstream = http.client.HTTPConnection(target.hostname or "", target.port, timeout=10)
        try:
            path = target.path + (f"?{target.query}" if target.query else "")
            upstream.request(self.command, path, body=body, headers=headers)
            reply = upstream.getresponse()
            data = reply.read()
        finally:
            upstream.close()
        self.send_response(reply.status)
        for name, value in reply.getheaders():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class RecordingProxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Forwarding)
        self.lines: list[str] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingProxy]:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    server = RecordingProxy()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def settings_for(url: str) -> LLMSettings:
    return LLMSettings(base_url=url, api_key="sk-test-key-for-the-fake", model="fake-model",
                       mode="json_schema", timeout_s=5.0, max_attempts=1)


def ask(llm: LLM) -> Pet:
    pet, _ = llm.structured(response_model=Pet, messages=[{"role": "user", "content": "Rex"}])
    return pet


def test_the_model_request_goes_through_http_proxy(
        proxy: RecordingProxy, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    fake.script(answer({"name": "rex", "legs": 4}))
    with LLM(settings_for(fake.url)) as llm:
        assert ask(llm) == Pet(name="rex", legs=4)
    assert proxy.lines == [f"POST {fake.url}/chat/completions HTTP/1.1"]
    assert len(fake.chat_requests) == 1


def test_no_proxy_covering_the_host_bypasses_the_proxy(
        proxy: RecordingProxy, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "example.org,127.0.0.1")
    fake.script(answer({"name": "rex", "legs": 4}))
    with LLM(settings_for(fake.url)) as llm:
        assert ask(llm).name == "rex"
    assert proxy.lines == []
    assert len(fake.chat_requests) == 1


def test_recording_fixtures_goes_through_the_proxy_too(
        proxy: RecordingProxy, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    fake.script(answer({"name": "rex", "legs": 4}))
    store = FixtureTransport(tmp_path, "record")
    with LLM(settings_for(fake.url), transport=store) as llm:
        assert ask(llm).legs == 4
    assert proxy.lines == [f"POST {fake.url}/chat/completions HTTP/1.1"]
    assert store.recorded == 1


def test_organization_and_project_come_from_the_environment(
        fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_ORG_ID", "org-gardeners")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj_pattern_library")
    fake.script(answer({"name": "rex", "legs": 4}))
    with LLM(settings_for(fake.url)) as llm:
        ask(llm)
    sent = fake.chat_requests[0]
    assert sent.header("OpenAI-Organization") == "org-gardeners"
    assert sent.header("OpenAI-Project") == "proj_pattern_library"


def test_no_organization_or_project_header_without_them(
        fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_ORG_ID", raising=False)
    monkeypatch.delenv("OPENAI_PROJECT_ID", raising=False)
    fake.script(answer({"name": "rex", "legs": 4}))
    with LLM(settings_for(fake.url)) as llm:
        ask(llm)
    names = fake.chat_requests[0].header_names
    assert "openai-organization" not in names and "openai-project" not in names
