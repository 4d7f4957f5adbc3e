"""Record and replay model exchanges, so tests and re-runs need no network and cost nothing.

The store is an httpx transport: it sits under the guarded transport of
`gardener.endpoint.transport`, so every HTTP exchange (first asks and re-asks alike) is recorded or
replayed, and the code above cannot tell a replay from a live call.

An exchange is keyed by the sha256 of its canonical request: method, path and the whole JSON
body with sorted keys (model, messages, tools / response_format, tool_choice, sampling
parameters). A changed prompt, schema, model or setting therefore misses instead of replaying
a stale answer; the same request asked twice (an identical re-ask, the same pattern in two
runs) replays the same answer each time.

Files are readable JSON, one per exchange, ``<folder>/<key[:16]>.json`` where the folder is the
pattern slug from the tag (``pattern=<slug> ...``). They hold the request and response bodies,
status, usage, model, tag and recording date, never a header, and any credential the request
carried is masked. Only successful (2xx) answers are stored: an error replayed forever would
only hide the fault.

Re-recording does not churn: when the new answer says the same thing as the stored one (all
but the per-call ``id``s, ``created`` and ``system_fingerprint``), the file, date included, is
left untouched.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx

from gardener.endpoint.exchange import (
    LLMError,
    scrub,
    usage_of,
)
from gardener.endpoint.transport import (
    TAG_HEADER,
    EnvironmentTransport,
    tag_of,
)
from gardener.library.write import write_atomic

VOLATILE = frozenset({"id", "created", "system_fingerprint"})
"""Response fields (at any depth: tool-call ids too) that differ on every call and say nothing
about the answer."""

CREDENTIAL_HEADERS = ("authorization", "api-key", "x-api-key", "openai-api-key")


class FixtureMode(StrEnum):
    RECORD = "record"  # always call the endpoint, store each answer
    REPLAY = "replay"  # never touch the network; a missing answer is an error
    AUTO = "auto"  # replay what is stored, record the rest


class FixtureMissing(LLMError):
    """Replay found no recorded answer for a request."""

    def __init__(self, tag: str, key: str, expected: Path) -> None:
        self.key = key
        self.expected = expected
        who = tag or "an untagged request"
        super().__init__(
            f"no recorded answer for {who} (key {key[:16]}, expected {expected}); the prompt, "
            "schema, model or settings changed since recording. Record it by running again "
            "with --auto (records only what is missing) or --record instead of --replay; both "
            "call the model", tag=tag)

    def __str__(self) -> str:
        return self.message  # the message names the tag already


# ---------------------------------------------------------------------------------------------
# Pure parts


def canonical_body(body: bytes) -> Any:
    """The request body as data (JSON), or as text when it is not JSON; None when empty."""
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body.decode("utf-8", "replace")


def fixture_key(method: str, path: str, body: bytes) -> str:
    """sha256 of the canonical request: equal requests, equal keys, whatever the key order."""
    canonical = json.dumps({"method": method.upper(), "path": path, "body": canonical_body(body)},
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


_UNSAFE = re.compile(r"[^a-z0-9._-]+")


def tag_folder(tag: str) -> str:
    """Folder for a tag's fixtures: the pattern slug when the tag names one."""
    match = re.search(r"(?:^|\s)pattern=(\S+)", tag)
    name = match.group(1) if match else tag
    slug = _UNSAFE.sub("-", name.lower()).strip("-.")
    return slug or "_untagged"


def scrub_data(value: Any, secrets: Iterable[str | None]) -> Any:
    """`value` with every string scrubbed of the secrets (see gardener.endpoint.client.scrub)."""
    secrets = tuple(secrets)
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, list):
        return [scrub_data(item, secrets) for item in value]
    if isinstance(value, dict):
        return {scrub(str(k), secrets): scrub_data(v, secrets) for k, v in value.items()}
    return value


def credentials_in(request: httpx.Request) -> tuple[str, ...]:
    """The secrets a request carries in its headers, so they can be kept out of files."""
    found: list[str] = []
    for name in CREDENTIAL_HEADERS:
        value = request.headers.get(name)
        if value:
            found.append(value)
            found.append(re.sub(r"(?i)^bearer\s+", "", value))
    return tuple(found)


def _without_volatile(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_volatile(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_without_volatile(item) for item in value]
    return value


def same_answer(a: Any, b: Any) -> bool:
    """Whether two response bodies say the same thing, ignoring per-call identifiers."""
    return bool(_without_volatile(a) == _without_volatile(b))


@dataclass(frozen=True)
class Exchange:
    """One recorded request and its answer, as stored on disk."""

    key: str
    tag: str
    date: str
    model: str | None
    method: str
    path: str
    status: int
    usage: dict[str, int]
    request: Any
    response: Any

    def to_json(self) -> str:
        record = {"key": self.key, "tag": self.tag, "date": self.date, "model": self.model,
                  "method": self.method, "path": self.path, "status": self.status,
                  "usage": self.usage, "request": self.request, "response": self.response}
        return json.dumps(record, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str, where: Path) -> Exchange:
        try:
            record = json.loads(text)
            return cls(key=str(record["key"]), tag=str(record.get("tag", "")),
                       date=str(record.get("date", "")), model=record.get("model"),
                       method=str(record.get("method", "POST")), path=str(record["path"]),
                       status=int(record["status"]), usage=dict(record.get("usage") or {}),
                       request=record.get("request"), response=record["response"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{where}: not a fixture file ({exc})") from exc

    def content(self) -> bytes:
        if isinstance(self.response, str):
            return self.response.encode()
        return json.dumps(self.response, ensure_ascii=False).encode()


def exchange_of(*, key: str, tag: str, method: str, path: str, request_body: bytes,
                status: int, response_body: bytes, secrets: Iterable[str | None],
                date: datetime) -> Exchange:
    """The record to store for one live exchange, credentials masked."""
    secrets = tuple(secrets)
    request = scrub_data(canonical_body(request_body), secrets)
    response = scrub_data(canonical_body(response_body), secrets)
    usage = usage_of(response_body)
    model = request.get("model") if isinstance(request, dict) else None
    return Exchange(key=key, tag=scrub(tag, secrets),
                    date=date.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
                    model=str(model) if model is not None else None, method=method.upper(),
                    path=path, status=status,
                    usage={"prompt_tokens": usage.prompt_tokens,
                           "completion_tokens": usage.completion_tokens},
                    request=request, response=response)


# ---------------------------------------------------------------------------------------------
# The store


class FixtureTransport(httpx.BaseTransport):
    """A record/replay httpx transport over a fixtures directory (default ``fixtures/``).

    ``inner`` sends what is recorded; None: plain httpx with the environment's proxy settings
    (`gardener.endpoint.transport.EnvironmentTransport`), made when first needed.
    """

    def __init__(self, directory: Path | str = "fixtures", mode: FixtureMode | str = "replay", *,
                 inner: httpx.BaseTransport | None = None, secrets: Iterable[str | None] = (),
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        try:
            self.mode = FixtureMode(mode)
        except ValueError:
            choices = ", ".join(m.value for m in FixtureMode)
            raise ValueError(f"unknown fixtures mode {mode!r}; choose one of {choices}") from None
        self.directory = Path(directory)
        self._inner = inner
        self._secrets = tuple(s for s in secrets if s)
        self._clock = clock
        self._lock = threading.Lock()
        self._index: dict[str, Path] | None = None
        self.replayed = 0
        self.recorded = 0

    # -- lookup -------------------------------------------------------------------------------
    def _paths(self) -> dict[str, Path]:
        """key[:16] → file, built once from disk so a fixture is found whatever folder holds it."""
        with self._lock:
            if self._index is None:
                self._index = {p.stem: p for p in sorted(self.directory.glob("**/*.json"))}
            return self._index

    def path_for(self, key: str, tag: str) -> Path:
        """Where the exchange with `key` lives, or would be written."""
        return self._paths().get(key[:16]) or self.directory / tag_folder(tag) / f"{key[:16]}.json"

    def load(self, key: str, tag: str = "") -> Exchange | None:
        path = self.path_for(key, tag)
        if not path.is_file():
            return None
        exchange = Exchange.from_json(path.read_text(encoding="utf-8"), path)
        return exchange if exchange.key == key else None

    # -- transport ----------------------------------------------------------------------------
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        tag = tag_of(request)
        if TAG_HEADER in request.headers:
            del request.headers[TAG_HEADER]
        body = request.read()
        key = fixture_key(request.method, request.url.path, body)
        if self.mode is not FixtureMode.RECORD:
            stored = self.load(key, tag)
            if stored is not None:
                with self._lock:
                    self.replayed += 1
                return httpx.Response(stored.status, content=stored.content(), request=request,
                                      headers={"content-type": "application/json"})
            if self.mode is FixtureMode.REPLAY:
                raise FixtureMissing(tag, key, self.path_for(key, tag))
        response = self._network().handle_request(request)
        try:
            content = response.read()
        finally:
            response.close()
        if 200 <= response.status_code < 300:
            exchange = exchange_of(key=key, tag=tag, method=request.method,
                                   path=request.url.path, request_body=body,
                                   status=response.status_code, response_body=content,
                                   secrets=self._secrets + credentials_in(request),
                                   date=self._clock())
            self._save(exchange)
        dropped = {"content-length", "content-encoding", "transfer-encoding"}
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in dropped]
        return httpx.Response(response.status_code, headers=headers, content=content,
                              request=request)

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()

    # -- parts --------------------------------------------------------------------------------
    def _network(self) -> httpx.BaseTransport:
        """``inner``, or plain httpx with the environment's proxies when none was given."""
        with self._lock:
            if self._inner is None:
                self._inner = EnvironmentTransport()
            return self._inner

    def _save(self, exchange: Exchange) -> None:
        path = self.path_for(exchange.key, exchange.tag)
        with self._lock:
            if path.is_file():
                try:
                    old = Exchange.from_json(path.read_text(encoding="utf-8"), path)
                except ValueError:
                    old = None
                if (old is not None and old.key == exchange.key and old.status == exchange.status
                        and same_answer(old.response, exchange.response)):
                    return
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, exchange.to_json())
            if self._index is not None:
                self._index[exchange.key[:16]] = path
            self.recorded += 1
