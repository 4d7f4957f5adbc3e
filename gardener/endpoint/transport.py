"""The transport policy under the model client: one place for every HTTP exchange's rules.

`GuardedTransport` is an httpx transport, so the openai SDK (and instructor above it) sends
every request, re-asks included, through it:

* retries (tenacity) for 429 (honouring Retry-After), 5xx, timeouts and dropped connections,
  with jittered exponential backoff bounded by attempts and total time. Doing it here rather
  than around the structured call means a re-ask that hits a 503 retries that one request
  instead of restarting the conversation, and no attempt escapes the policy or the token
  count; openai's own retries are off (``max_retries=0``) so the two never multiply. A read
  timeout against a server on this machine is not retried: the server got the request and
  is most likely still computing it (a local model on a CPU), and asking again would only
  queue a second copy behind the first; against a remote endpoint it is retried, with a
  warning saying so.
* fail-fast errors that say what to check (key, model, base URL, server running?,
  GARDENER_TIMEOUT_S);
* token accounting: it reads ``usage`` from every JSON response, so re-asks and retried
  attempts are all paid for in `Usage`;
* hygiene: the API key is scrubbed from every response body before instructor, openai, a log
  line or an exception can see it, and the tag header never leaves the process.

An inner transport (the fixture store, a test double) sits below it; by default it is
`EnvironmentTransport`, plain httpx with the environment's proxy and TLS settings. Responses
are read whole (no streaming), which is what counting usage needs.
"""

from __future__ import annotations

import contextvars
import email.utils
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential,
    wait_random,
)

from gardener.endpoint.settings import LLMSettings
from gardener.errors import GardenerError
from gardener.text import redact_urls_in, url_secrets

log = logging.getLogger("gardener.endpoint.client")

TAG_HEADER = "x-gardener-tag"
ONCE_HEADER = "x-gardener-once"
"""Marks a request tried once, never retried (a probe of what the server says about itself);
removed before sending."""
"""Carries the structured call's tag down to the transports; never sent over the wire."""
TAG_EXTENSION = "gardener_tag"
"""httpx request extension holding the tag once the header is stripped."""

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


def tag_of(request: httpx.Request) -> str:
    """The tag `structured` attached to this request, or ''."""
    tag = request.extensions.get(TAG_EXTENSION)
    if isinstance(tag, str):
        return tag
    return unquote(request.headers.get(TAG_HEADER, ""))


def take_tag(request: httpx.Request) -> str:
    """Move the tag header into the request's extensions, so it is never sent or hashed."""
    tag = tag_of(request)
    if TAG_HEADER in request.headers:
        del request.headers[TAG_HEADER]
    request.extensions[TAG_EXTENSION] = tag
    return tag


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


def _error_code(body: bytes) -> str | None:
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
        return _error_code(response.content) != "insufficient_quota"
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


def _is_json_object(body: bytes) -> bool:
    try:
        return isinstance(json.loads(body), dict)
    except (ValueError, UnicodeDecodeError):
        return False


def _model_of(request: httpx.Request) -> str:
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


# ---------------------------------------------------------------------------------------------
# The guarded transport


def is_sent_and_unanswered(exc: BaseException) -> bool:
    """A read timeout: the server has the request and may still be computing its answer."""
    return isinstance(exc, httpx.ReadTimeout)


_usage_sink: contextvars.ContextVar[Usage | None] = contextvars.ContextVar(
    "gardener_usage_sink", default=None)
"""The current structured call's `Usage`: the SDK sends each of its requests synchronously, in
the calling thread's context, so the transport adds what each response cost to the call that
asked for it, however many threads share the client."""


@contextmanager
def counting(usage: Usage) -> Iterator[Usage]:
    """Add what every response answered in this block (this thread, this context) to ``usage``."""
    token = _usage_sink.set(usage)
    try:
        yield usage
    finally:
        _usage_sink.reset(token)


class EnvironmentTransport(httpx.BaseTransport):
    """Plain httpx, proxies and TLS from the environment, as ``httpx.Client()`` does them.

    httpx ignores HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY for a client given its own
    transport (``trust_env`` applies them only to the transports it makes itself). Sending
    through a client that made its own (``trust_env=True``, the default) keeps httpx's rules
    exactly: which proxy serves which scheme, which hosts NO_PROXY exempts, SSL_CERT_FILE.
    The request is sent as it is (``Client.send``); redirects are the outer client's.
    """

    def __init__(self) -> None:
        self._client = httpx.Client(trust_env=True, follow_redirects=False)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._client.send(request, stream=True)

    def close(self) -> None:
        self._client.close()


class GuardedTransport(httpx.BaseTransport):
    """Retries, explains failures, counts tokens and scrubs secrets for each HTTP request."""

    def __init__(self, inner: httpx.BaseTransport, settings: LLMSettings, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._inner = inner
        self._settings = settings
        self._sleep = sleep
        # The key, and what the base URL carries (an Azure-style ``?api-key=``, a password).
        self._secrets = (settings.api_key, *url_secrets(settings.url))
        self._lock = threading.Lock()
        self.total = Usage()  # every request this transport ever answered

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        tag = take_tag(request)
        settings = self._settings
        if ONCE_HEADER in request.headers:
            del request.headers[ONCE_HEADER]
            settings = replace(settings, max_attempts=1)
        attempts = 0
        started = time.monotonic()

        def attempt() -> httpx.Response:
            nonlocal attempts
            attempts += 1
            return self._buffered(self._inner.handle_request(request), request)

        retrying = Retrying(
            stop=stop_after_attempt(settings.max_attempts) | stop_before_delay(settings.max_wait_s),
            wait=self._wait,
            retry=retry_if_exception(self._resend) | retry_if_result(is_retryable_response),
            before_sleep=lambda state: self._log_retry(state, request, tag),
            sleep=self._sleep,
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
            reraise=True,
        )
        endpoint = settings.endpoint
        try:
            response: httpx.Response = retrying(attempt)
        except httpx.TransportError as exc:
            message = explain_transport(exc, endpoint=endpoint, timeout_s=settings.timeout_s)
            transient = is_retryable_error(exc)
            if not self._resend(exc) and transient:
                message += ("; not asked again, since the server on this machine may still be "
                            "computing the answer")
            if transient:
                message = self._after(message, attempts, started)
            raise LLMError(message, tag=tag, attempts=attempts, transient=transient) from exc
        if response.status_code < 400:
            if not _is_json_object(response.content):
                said = scrub(response.content[:200].decode("utf-8", "replace"), self._secrets)
                raise LLMError(f"{endpoint} answered HTTP {response.status_code} without a JSON "
                               f"object ({said!r}); is it an OpenAI-compatible endpoint?",
                               status=response.status_code, tag=tag, attempts=attempts)
            return response
        said = scrub(server_message(response.content), self._secrets)
        message = explain_status(
            response.status_code, said,
            endpoint=endpoint, model=_model_of(request), mode=settings.mode,
            key_set=settings.api_key is not None, code=_error_code(response.content))
        transient = is_retryable_response(response)
        if transient:
            message = self._after(message, attempts, started)
        raise LLMError(message, status=response.status_code, tag=tag, attempts=attempts,
                       transient=transient, server_said=said)

    def close(self) -> None:
        self._inner.close()

    # -- parts --------------------------------------------------------------------------------
    def _resend(self, exc: BaseException) -> bool:
        """Whether a failed attempt is tried again: not a read timeout on this machine."""
        return is_retryable_error(exc) and not (
            self._settings.loopback and is_sent_and_unanswered(exc))

    @staticmethod
    def _after(message: str, attempts: int, started: float) -> str:
        elapsed = time.monotonic() - started
        plural = "s" if attempts != 1 else ""
        return f"{message} [gave up after {attempts} attempt{plural} in {elapsed:.1f} s]"

    def _buffered(self, response: httpx.Response, request: httpx.Request) -> httpx.Response:
        """Read the whole body (so usage can be counted) and scrub the key out of it."""
        try:
            content = response.read()
        finally:
            response.close()
        if any(secret and secret.encode() in content for secret in self._secrets):
            content = scrub(content.decode("utf-8", "replace"), self._secrets).encode()
        used = usage_of(content)
        with self._lock:
            self.total = self.total + used
        sink = _usage_sink.get()
        if sink is not None:
            sink.prompt_tokens += used.prompt_tokens
            sink.completion_tokens += used.completion_tokens
            sink.requests += used.requests
        dropped = {"content-length", "content-encoding", "transfer-encoding"}
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in dropped]
        extensions = {k: v for k, v in response.extensions.items() if k != "network_stream"}
        return httpx.Response(response.status_code, headers=headers, content=content,
                              request=request, extensions=extensions)

    def _wait(self, state: RetryCallState) -> float:
        settings = self._settings
        outcome = state.outcome
        if outcome is not None and not outcome.failed:
            asked = retry_after_s(outcome.result().headers)
            if asked is not None:
                return min(asked, settings.retry_cap_s)
        backoff = (wait_exponential(multiplier=settings.retry_initial_s,
                                    max=settings.retry_cap_s)
                   + wait_random(0, settings.retry_initial_s))
        return float(backoff(state))

    def _log_retry(self, state: RetryCallState, request: httpx.Request, tag: str) -> None:
        outcome = state.outcome
        if outcome is None:
            return
        failure = outcome.exception() if outcome.failed else None
        what = (type(failure).__name__ if failure is not None
                else f"HTTP {outcome.result().status_code}")
        wait = state.upcoming_sleep
        url = scrub(str(request.url.copy_with(query=None)), self._secrets)
        again = ("; the server may still be computing the first answer, and is being asked "
                 "again" if failure is not None and is_sent_and_unanswered(failure) else "")
        log.warning("%s%s from %s%s; retry %d of %d in %.2f s", f"[{tag}] " if tag else "", what,
                    url, again, state.attempt_number, self._settings.max_attempts - 1, wait)


