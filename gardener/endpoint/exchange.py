"""What one exchange with the model endpoint says: what it cost, whether it failed and how,
whether to try it again, and what to tell the user.

Pure functions and values over httpx's requests, responses and errors; the transport
(``gardener.endpoint.transport``) applies them to every exchange, and the client
(``gardener.endpoint.client``) to the structured call above it.
"""

from __future__ import annotations

import email.utils
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from gardener.errors import GardenerError
from gardener.text import redact_urls_in

# ---------------------------------------------------------------------------------------------
# Values


@dataclass
class Usage:
    """Tokens and HTTP requests one call cost, every re-ask and retried attempt included."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0  # HTTP requests answered (any status), re-asks and retries included

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.prompt_tokens + other.prompt_tokens,
                     self.completion_tokens + other.completion_tokens,
                     self.requests + other.requests)

    def as_dict(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "requests": self.requests}


def usage_of(body: bytes) -> Usage:
    """What one HTTP response reports: one request, plus its tokens when it carries ``usage``."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return Usage(requests=1)
    usage = payload.get("usage") if isinstance(payload, dict) else None
    if not isinstance(usage, dict):
        return Usage(requests=1)

    def count(name: str) -> int:
        value = usage.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    return Usage(count("prompt_tokens"), count("completion_tokens"), 1)


class LLMError(GardenerError):
    """The endpoint could not be used: transport failure after retries, or a request it refused.

    The message says what failed and what to check; it never contains the API key.
    """

    exit_code = 1  # the pattern asked about was not answered

    def __init__(self, message: str, *, status: int | None = None, tag: str = "",
                 attempts: int = 0, usage: Usage | None = None, transient: bool = False,
                 server_said: str = "") -> None:
        self.message = message
        self.server_said = server_said  # the endpoint's own error text, scrubbed
        self.status = status
        self.transient = transient  # busy or flaky, not wrong: worth trying again later
        self.tag = tag
        self.attempts = attempts
        self.usage = usage if usage is not None else Usage()
        super().__init__(message)

    def __str__(self) -> str:
        return f"[{self.tag}] {self.message}" if self.tag else self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only fields: rebuild from the instance dict, so the error crosses processes.
        return (_rebuild, (type(self), self.__dict__))


def _rebuild(cls: type[Exception], state: dict[str, Any]) -> Exception:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    Exception.__init__(error, state.get("message", ""))
    return error


class StructuredOutputError(GardenerError):
    """The model never produced a valid object after the re-asks."""

    exit_code = 1  # the pattern asked about was not answered

    def __init__(self, message: str, *, last_json: str | None, usage: Usage, tag: str = "",
                 attempts: int = 0) -> None:
        self.message = message
        self.last_json = last_json  # raw JSON text of the last attempt, for item-by-item salvage
        self.usage = usage
        self.tag = tag
        self.attempts = attempts
        super().__init__(message)

    def __str__(self) -> str:
        return f"[{self.tag}] {self.message}" if self.tag else self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.__dict__))


# ---------------------------------------------------------------------------------------------
# Pure helpers


_KEYLIKE = re.compile(r"(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{16,}")
_BEARER = re.compile(r"\bBearer\s+[A-Za-z0-9._~+/=-]{8,}")
_GITHUB_TOKEN = re.compile(r"\b(gh[pousr]_|github_pat_)[A-Za-z0-9_]{20,}")
SCHEMA_REFUSAL = re.compile(r"json_schema|response_format|json_object", re.IGNORECASE)
"""How servers that cannot do json_schema response formats say so."""


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with the given secrets, bearer tokens, OpenAI-looking keys, GitHub tokens and
    URL credentials (``?api-key=...``, ``user:password@``: a server may quote the request
    back) masked."""
    for secret in secrets:
        if secret and len(secret) >= 8:  # shorter "keys" are placeholders, and common words
            text = text.replace(secret, "***")
    text = redact_urls_in(text)
    text = _BEARER.sub("Bearer ***", text)
    text = _GITHUB_TOKEN.sub(lambda m: f"{m.group(1)}***", text)
    return _KEYLIKE.sub("sk-***", text)


def retry_after_s(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds the server asked us to wait: retry-after-ms, or Retry-After as seconds/HTTP-date."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def server_message(body: bytes, limit: int = 300) -> str:
    """The human part of an error body, whatever the server's dialect."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body[:limit].decode("utf-8", "replace").strip()
    if isinstance(payload, dict):
        error = payload.get("error", payload)
        if isinstance(error, dict):
            for key in ("message", "detail", "error"):
                if isinstance(error.get(key), str):
                    return str(error[key])[:limit]
        if isinstance(error, str):
            return error[:limit]
    return json.dumps(payload)[:limit]


def error_code(body: bytes) -> str | None:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    error = payload.get("error") if isinstance(payload, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


def is_retryable_response(response: httpx.Response) -> bool:
    """429 (except an exhausted quota, which waiting does not fix), 408 and every 5xx.

    A 500 that refuses the request's response format (llama-cpp-python answers json_schema
    that way) is not flaky: it fails fast so the client can switch to tools mode.
    """
    if response.status_code == 429:
        return error_code(response.content) != "insufficient_quota"
    if response.status_code == 500 and SCHEMA_REFUSAL.search(
            response.content[:2000].decode("utf-8", "replace")):
        return False
    return response.status_code == 408 or response.status_code >= 500


def exception_chain(exc: BaseException) -> list[BaseException]:
    """`exc` and the exceptions it was raised from or during, each once (chains can loop)."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and all(seen is not known for known in chain):
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    return chain


def _refused(exc: BaseException) -> bool:
    return any(isinstance(e, ConnectionRefusedError) or "Connection refused" in str(e)
               for e in exception_chain(exc))


def is_retryable_error(exc: BaseException) -> bool:
    """Timeouts and dropped or failed connections; not a refused connection (nothing listens,
    retrying only delays the message) nor a malformed URL."""
    if not isinstance(exc, httpx.TransportError):
        return False
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError):
        return False
    return not (isinstance(exc, httpx.ConnectError) and _refused(exc))


def is_json_object(body: bytes) -> bool:
    try:
        return isinstance(json.loads(body), dict)
    except (ValueError, UnicodeDecodeError):
        return False


def model_of(request: httpx.Request) -> str:
    try:
        payload = json.loads(request.content)
    except (ValueError, UnicodeDecodeError, httpx.RequestNotRead):
        return "?"
    model = payload.get("model") if isinstance(payload, dict) else None
    return str(model) if model is not None else "?"


def explain_status(status: int, message: str, *, endpoint: str, model: str, mode: str,
                   key_set: bool, code: str | None = None) -> str:
    """An HTTP error turned into what failed and what to check."""
    said = f"HTTP {status}: {message}" if message else f"HTTP {status}"
    if code == "insufficient_quota":
        return f"the account's quota at {endpoint} is used up ({said}); check its billing"
    if status == 401:
        key = "OPENAI_API_KEY (it is not set)" if not key_set else "OPENAI_API_KEY"
        return f"{endpoint} refused the credentials ({said}); check {key}"
    if status == 403:
        return (f"{endpoint} denied access ({said}); check that OPENAI_API_KEY may use "
                f"model '{model}'")
    if status == 404:
        return (f"model '{model}' not found at {endpoint} ({said}); check --model or "
                f"GARDENER_MODEL against {endpoint.rstrip('/')}/models, and that "
                "OPENAI_BASE_URL ends in /v1")
    if status == 429:
        return (f"{endpoint} kept rate-limiting ({said}); lower the concurrency or raise "
                "max_wait_s")
    if status >= 500 or status == 408:
        return f"{endpoint} kept failing ({said}); is the server healthy?"
    return (f"{endpoint} rejected the request ({said}); check that model '{model}' supports "
            f"mode '{mode}' (try --mode json_schema or md_json) and that the prompt fits its "
            "context window")


def explain_transport(exc: httpx.TransportError, *, endpoint: str, timeout_s: float) -> str:
    if isinstance(exc, httpx.ConnectError) and _refused(exc):
        return f"nothing answers at {endpoint}; is the server running?"
    if isinstance(exc, httpx.TimeoutException):
        return (f"no answer from {endpoint} within {timeout_s:g} s ({type(exc).__name__}); "
                "a slow model may need longer: raise GARDENER_TIMEOUT_S (seconds)")
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect to {endpoint} ({exc}); check OPENAI_BASE_URL and the network"
    return f"the connection to {endpoint} failed ({type(exc).__name__}: {exc})"


def is_sent_and_unanswered(exc: BaseException) -> bool:
    """A read timeout: the server has the request and may still be computing its answer."""
    return isinstance(exc, httpx.ReadTimeout)
