"""A small local server speaking enough of the OpenAI chat completions API for instructor.

Tests and benchmarks need a model that answers instantly (or with a fixed latency), can be told
to misbehave on cue (429, 500, stalls, dropped connections, broken JSON) and records what it was
sent, without reaching the network. It understands instructor's four OpenAI modes by looking at
the request: `tools` → a tool call; `response_format` json_schema / json_object → bare JSON
content; otherwise (md_json) → JSON inside a ```json fence.

In a test::

    with FakeOpenAI() as fake:
        fake.script(rate_limited("0.05"), answer({"name": "x"}))
        ... LLMSettings(base_url=fake.url, ...)

From a shell (benchmarks)::

    python -m gardener.testing.fake_openai --port 0 --latency 0.2 [--responder module:function]

prints its base URL (``http://127.0.0.1:PORT/v1``) on the first line and serves until killed.

The behaviours it can be scripted with and its random faults live in
`gardener.testing.fake_answers` and are re-exported here. Random faults (`Faults`): with a
rate, each chat request the script does not cover misbehaves in one of `FAULT_KINDS`, drawn
from a seeded generator so a run can be repeated; `Faults.counts` (and ``GET /_fake/faults``)
says how often each happened::

    with FakeOpenAI(responder=grounded_responder, faults=Faults(rate=0.2, seed=1)) as fake:
        ...
        fake.fault_counts()  # {"ok": 81, "429": 3, "drop": 2, ...}
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import json
import signal
import socket
import sys
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any

from gardener.endpoint.settings import ENDPOINT_VARIABLES
from gardener.testing.fake_answers import (
    FAULT_KINDS,
    Arguments,
    Behaviour,
    Faults,
    Responder,
    answer,
    drop,
    invented_links,
    link_targets,
    minimal_instance,
    minimal_responder,
    rate_limited,
    raw,
    request_schema,
    server_error,
    stall,
    status,
    truncated,
)

if TYPE_CHECKING:
    import pytest

__all__ = ["FAKE_MODEL", "FAULT_KINDS", "Arguments", "Behaviour", "FakeOpenAI", "Faults",
           "ReceivedRequest", "Responder", "answer", "drop", "invented_links", "link_targets",
           "main", "minimal_instance", "minimal_responder", "rate_limited", "raw",
           "request_schema", "server_error", "stall", "status", "truncated", "use_as_endpoint"]

FAKE_MODEL = "fake-model"


def use_as_endpoint(monkeypatch: pytest.MonkeyPatch, server: FakeOpenAI,
                    key: str = "test-key") -> FakeOpenAI:
    """``server`` as the only configured endpoint, for the test's duration."""
    for name in ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    monkeypatch.setenv("OPENAI_API_KEY", key)
    return server



# ---------------------------------------------------------------------------------------------
# The server


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    body: dict[str, Any] | None
    authorization: str | None  # kept so a test can check the key was sent, never stored
    header_names: frozenset[str] = frozenset()
    headers: tuple[tuple[str, str], ...] = ()
    """Every header but Authorization, names in lower case."""

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name.lower()), None)


@dataclass
class _State:
    latency: float
    responder: Responder
    models: frozenset[str] | None
    api_key: str | None
    echo_auth: bool
    faults: Faults | None = None
    props: dict[str, Any] | None = None
    """What ``GET /props`` answers, as llama.cpp's llama-server does; None: 404."""
    queue: deque[Behaviour] = field(default_factory=deque)
    requests: list[ReceivedRequest] = field(default_factory=list)
    usage_sent: list[dict[str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    ids: Iterator[int] = field(default_factory=itertools.count)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    state: _State

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (it timed out on a slow answer) is expected here."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms stalls
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: test output stays readable."""

    # -- plumbing -------------------------------------------------------------------------------
    def _read_body(self) -> dict[str, Any] | None:
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        if not data:
            return None
        try:
            value = json.loads(data)
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None

    def _send_json(self, code: int, payload: Any, headers: Sequence[tuple[str, str]] = ()) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _error(self, code: int, message: str, headers: Sequence[tuple[str, str]] = (),
               err_type: str = "invalid_request_error", code_name: str | None = None) -> None:
        if self.server.state.echo_auth:  # a careless server quoting the credentials back
            message += f" (request Authorization: {self.headers.get('Authorization', '')})"
        payload = {"error": {"message": message, "type": err_type, "param": None,
                             "code": code_name}}
        self._send_json(code, payload, headers)

    def _record(self, body: dict[str, Any] | None) -> None:
        state = self.server.state
        with state.lock:
            state.requests.append(ReceivedRequest(
                self.command, self.path, body, self.headers.get("Authorization"),
                frozenset(name.lower() for name in self.headers),
                tuple((k.lower(), v) for k, v in self.headers.items()
                      if k.lower() != "authorization")))

    def _authorized(self) -> bool:
        state = self.server.state
        if state.api_key is None:
            return True
        sent = self.headers.get("Authorization", "")
        if sent == f"Bearer {state.api_key}":
            return True
        # A careless server echoing the key it was given: the client must scrub it.
        self._error(401, f"Incorrect API key provided: {sent.removeprefix('Bearer ')}",
                    err_type="invalid_request_error", code_name="invalid_api_key")
        return False

    # -- routes ---------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._record(None)
        state = self.server.state
        if self.path.rstrip("/") == "/_fake/faults":
            self._send_json(200, state.faults.snapshot() if state.faults else {})
            return
        if self.path.rstrip("/") == "/props" and state.props is not None:
            self._send_json(200, state.props)
            return
        if self.path.rstrip("/") != "/v1/models":
            self._error(404, f"Unknown path {self.path}")
            return
        if not self._authorized():
            return
        models = sorted(state.models) if state.models is not None else [FAKE_MODEL]
        self._send_json(200, {"object": "list", "data": [
            {"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in models]})

    def do_POST(self) -> None:
        body = self._read_body()
        self._record(body)
        state = self.server.state
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._error(404, f"Unknown path {self.path}")
            return
        if body is None:
            self._error(400, "Request body is not a JSON object")
            return
        if not self._authorized():
            return
        model = str(body.get("model", ""))
        if state.models is not None and model not in state.models:
            self._error(404, f"The model `{model}` does not exist or you do not have access to it.",
                        code_name="model_not_found")
            return
        with state.lock:
            behaviour = state.queue.popleft() if state.queue else None
        if behaviour is None and state.faults is not None:
            kind = state.faults.draw()
            if kind is not None:
                behaviour = state.faults.behaviour(kind, body, state.responder)
        if state.latency:
            state.stopping.wait(state.latency)
        if behaviour is None or behaviour.kind == "stall":
            if behaviour is not None:
                state.stopping.wait(behaviour.seconds)
                if state.stopping.is_set():
                    return
            behaviour = answer(state.responder(body))
        if behaviour.kind == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if behaviour.kind == "status":
            code_name = behaviour.error_code or (
                "rate_limit_exceeded" if behaviour.status == 429 else None)
            err_type = "requests" if behaviour.status == 429 else "server_error"
            self._error(behaviour.status, behaviour.message, behaviour.headers,
                        err_type=err_type, code_name=code_name)
            return
        text = behaviour.text if behaviour.kind == "raw" else json.dumps(behaviour.arguments)
        self._send_json(200, self._completion(body, text or "", behaviour.finish_reason))

    def _completion(self, body: dict[str, Any], text: str, finish_reason: str) -> dict[str, Any]:
        state = self.server.state
        n = next(state.ids)
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
        tools = body.get("tools")
        response_format = (body.get("response_format") or {}).get("type")
        if tools:
            name = tools[0]["function"]["name"]
            message["tool_calls"] = [{"id": f"call_{n}", "type": "function",
                                      "function": {"name": name, "arguments": text}}]
        elif response_format in ("json_schema", "json_object"):
            message["content"] = text
        else:
            message["content"] = f"```json\n{text}\n```"
        # A server leaking the caller's credentials into a successful answer: the client must
        # keep them out of fixtures and logs all the same.
        extra = ({"debug": {"authorization": self.headers.get("Authorization", "")}}
                 if state.echo_auth else {})
        usage = {"prompt_tokens": max(1, len(json.dumps(body.get("messages", []))) // 4),
                 "completion_tokens": max(1, len(text) // 4)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        with state.lock:
            state.usage_sent.append(usage)
        return {"id": f"chatcmpl-fake-{n}", "object": "chat.completion", "created": 1700000000 + n,
                "model": str(body.get("model", FAKE_MODEL)), "system_fingerprint": f"fp_{n}",
                "choices": [{"index": 0, "message": message, "logprobs": None,
                             "finish_reason": finish_reason}],
                "usage": usage, **extra}


class FakeOpenAI:
    """A threaded fake OpenAI server on 127.0.0.1 (random port unless given)."""

    def __init__(self, *, port: int = 0, latency: float = 0.0, responder: Responder | None = None,
                 models: Sequence[str] | None = None, api_key: str | None = None,
                 echo_auth: bool = False, faults: Faults | None = None,
                 props: dict[str, Any] | None = None) -> None:
        self._state = _State(latency=latency, responder=responder or minimal_responder,
                             models=frozenset(models) if models is not None else None,
                             api_key=api_key, echo_auth=echo_auth, faults=faults, props=props)
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.state = self._state
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._started = False

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL an OpenAI client wants (with /v1)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._state.lock:
            return list(self._state.requests)

    @property
    def chat_requests(self) -> list[ReceivedRequest]:
        return [r for r in self.requests if r.path.startswith("/v1/chat/completions")]

    @property
    def usage_sent(self) -> list[dict[str, int]]:
        with self._state.lock:
            return list(self._state.usage_sent)

    def fault_counts(self) -> dict[str, int]:
        """How many chat requests got each random fault (and ``ok``); empty without faults."""
        return self._state.faults.snapshot() if self._state.faults else {}

    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours for the next requests; once spent, the responder answers."""
        with self._state.lock:
            self._state.queue.extend(behaviours)

    @property
    def pending(self) -> int:
        with self._state.lock:
            return len(self._state.queue)

    def start(self) -> FakeOpenAI:
        if not self._started:
            self._thread.start()
            self._started = True
        return self

    def stop(self) -> None:
        self._state.stopping.set()
        if self._started:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _load_responder(spec: str) -> Responder:
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise SystemExit(f"--responder wants module:function, got {spec!r}")
    function = getattr(importlib.import_module(module_name), attr)
    if not callable(function):
        raise SystemExit(f"--responder {spec!r} is not callable")
    return function  # type: ignore[no-any-return]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--responder", help="module:function taking the request body, "
                        "returning the arguments object (default: smallest schema-valid object)")
    parser.add_argument("--model", action="append", dest="models",
                        help="accepted model name (repeatable; default: any)")
    parser.add_argument("--fault-rate", type=float, default=0.0,
                        help="share of chat requests that misbehave (0..1)")
    parser.add_argument("--fault-seed", type=int, default=0)
    parser.add_argument("--fault-kinds", default=",".join(FAULT_KINDS),
                        help="comma-separated kinds to draw from")
    parser.add_argument("--slow-s", type=float, default=5.0, help="how long a slow answer takes")
    parser.add_argument("--api-key", help="the only key accepted (default: any)")
    parser.add_argument("--echo-auth", action="store_true",
                        help="quote the Authorization header back in answers and errors")
    options = parser.parse_args(argv)
    responder = _load_responder(options.responder) if options.responder else None
    faults = (Faults(rate=options.fault_rate, seed=options.fault_seed,
                     kinds=tuple(k for k in options.fault_kinds.split(",") if k),
                     slow_s=options.slow_s) if options.fault_rate else None)
    fake = FakeOpenAI(port=options.port, latency=options.latency, responder=responder,
                      models=options.models, api_key=options.api_key,
                      echo_auth=options.echo_auth, faults=faults)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    with fake:
        print(fake.url, flush=True)
        done.wait()


if __name__ == "__main__":
    main()
