"""The one door to the model: structured answers through instructor, over a guarded transport.

Every HTTP exchange, instructor's re-asks included, passes through `GuardedTransport`, which
owns the whole transport policy in one place:

* retries (tenacity) for 429 (honouring Retry-After), 5xx, timeouts and dropped connections,
  with jittered exponential backoff bounded by attempts and total time. Doing it here rather
  than around `structured` means a re-ask that hits a 503 retries that one request instead of
  restarting the conversation, and no attempt escapes the policy or the token count; openai's
  own retries are off (``max_retries=0``) so the two never multiply.
* fail-fast errors that say what to check (key, model, base URL, server running?);
* token accounting: it reads ``usage`` from every JSON response, so re-asks and retried
  attempts are all paid for in `Usage`;
* hygiene: the API key is scrubbed from every response body before instructor, openai, a log
  line or an exception can see it, and the tag header never leaves the process.

An inner transport (the fixture store, a test double) sits below it; by default it is plain
httpx. Responses are read whole (no streaming), which is what counting usage needs.

instructor drives the calls (schema, validation, re-asks) through the client's own
``chat.completions.create`` stand-in: it posts the request openai's SDK would send and reads
the answer into openai's ``ChatCompletion``, without the SDK's request and response layers.
"""

from __future__ import annotations

import contextvars
import email.utils
import functools
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import quote, unquote

import httpx
from pydantic import BaseModel, ValidationError
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

from gardener.llm import instructor_checks
from gardener.llm.connections import PerThreadTransport
from gardener.llm.settings import LLMSettings

if TYPE_CHECKING:
    from instructor.core.exceptions import InstructorRetryException

log = logging.getLogger("gardener.llm.client")

T = TypeVar("T", bound=BaseModel)

TAG_HEADER = "x-gardener-tag"
"""Carries `structured`'s tag down to the transports; never sent over the wire."""
TAG_EXTENSION = "gardener_tag"
"""httpx request extension holding the tag once the header is stripped."""

PLACEHOLDER_KEY = "no-key-set"
"""Sent when OPENAI_API_KEY is unset: local servers accept anything, OpenAI answers 401."""

_MODES = {"tools": "TOOLS", "json_schema": "JSON_SCHEMA", "json": "JSON", "md_json": "MD_JSON"}
"""Our mode names → instructor.Mode members (instructor and openai load on first LLM: slow)."""

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


class LLMError(Exception):
    """The endpoint could not be used: transport failure after retries, or a request it refused.

    The message says what failed and what to check; it never contains the API key.
    """

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


class StructuredOutputError(Exception):
    """The model never produced a valid object after the re-asks."""

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
_SCHEMA_REFUSAL = re.compile(r"json_schema|response_format|json_object", re.IGNORECASE)
"""How servers that cannot do json_schema response formats say so."""


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with the given secrets, bearer tokens, OpenAI-looking keys and GitHub tokens
    masked."""
    for secret in secrets:
        if secret and len(secret) >= 8:  # shorter "keys" are placeholders, and common words
            text = text.replace(secret, "***")
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
    if response.status_code == 500 and _SCHEMA_REFUSAL.search(
            response.content[:2000].decode("utf-8", "replace")):
        return False
    return response.status_code == 408 or response.status_code >= 500


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and the exceptions it was raised from or during, each once (chains can loop)."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and all(seen is not known for known in chain):
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    return chain


def _refused(exc: BaseException) -> bool:
    return any(isinstance(e, ConnectionRefusedError) or "Connection refused" in str(e)
               for e in _chain(exc))


def is_retryable_error(exc: BaseException) -> bool:
    """Timeouts and dropped or failed connections; not a refused connection (nothing listens,
    retrying only delays the message) nor a malformed URL."""
    if not isinstance(exc, httpx.TransportError):
        return False
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError):
        return False
    return not (isinstance(exc, httpx.ConnectError) and _refused(exc))


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
                "a slow local model may need a longer timeout")
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect to {endpoint} ({exc}); check OPENAI_BASE_URL and the network"
    return f"the connection to {endpoint} failed ({type(exc).__name__}: {exc})"


# ---------------------------------------------------------------------------------------------
# The guarded transport


_usage_sink: contextvars.ContextVar[Usage | None] = contextvars.ContextVar(
    "gardener_usage_sink", default=None)


class GuardedTransport(httpx.BaseTransport):
    """Retries, explains failures, counts tokens and scrubs secrets for each HTTP request."""

    def __init__(self, inner: httpx.BaseTransport, settings: LLMSettings, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._inner = inner
        self._settings = settings
        self._sleep = sleep
        self._secrets = (settings.api_key,)
        self._lock = threading.Lock()
        self.total = Usage()  # every request this transport ever answered

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        tag = take_tag(request)
        settings = self._settings
        attempts = 0
        started = time.monotonic()

        def attempt() -> httpx.Response:
            nonlocal attempts
            attempts += 1
            return self._buffered(self._inner.handle_request(request), request)

        retrying = Retrying(
            stop=stop_after_attempt(settings.max_attempts) | stop_before_delay(settings.max_wait_s),
            wait=self._wait,
            retry=retry_if_exception(is_retryable_error) | retry_if_result(is_retryable_response),
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
            if transient:
                message = self._after(message, attempts, started)
            raise LLMError(message, tag=tag, attempts=attempts, transient=transient) from exc
        if response.status_code < 400:
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
        if outcome.failed:
            exc = outcome.exception()
            what = type(exc).__name__ if exc is not None else "failure"
        else:
            what = f"HTTP {outcome.result().status_code}"
        wait = state.upcoming_sleep
        url = scrub(str(request.url.copy_with(query=None)), self._secrets)
        log.warning("%s%s from %s; retry %d of %d in %.2f s", f"[{tag}] " if tag else "", what,
                    url, state.attempt_number, self._settings.max_attempts - 1, wait)


# ---------------------------------------------------------------------------------------------
# The client


def _completion_json(completion: Any) -> str | None:
    """The raw JSON text a chat completion carried: tool-call arguments or message content."""
    try:
        message = completion.choices[0].message
    except (AttributeError, IndexError, TypeError):
        return None
    tool_calls = getattr(message, "tool_calls", None) or []
    if tool_calls:
        arguments = tool_calls[0].function.arguments
        return arguments if isinstance(arguments, str) else json.dumps(arguments)
    content = getattr(message, "content", None)
    if not isinstance(content, str):
        return None
    fenced = re.search(r"```(?:json)?\s*(.*?)\s*(?:```|$)", content, re.DOTALL)
    return fenced.group(1) if fenced else content


def _llm_error_in(exc: BaseException) -> LLMError | None:
    return next((e for e in _chain(exc) if isinstance(e, LLMError)), None)


_validation_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "gardener_validation_context", default=None)


@functools.lru_cache(maxsize=64)
def _context_bound(model: type[BaseModel]) -> type[BaseModel]:
    """`model` validating with the current call's context, whatever context instructor passes.

    instructor 1.17 has one ``context`` for two jobs: validation context, and variables for
    rendering every message as a Jinja template (then dedenting it). Our messages are not
    templates: a pattern body with ``{{`` or ``{%`` would break, whitespace-only lines would be
    emptied. So instructor gets no context and this subclass (same name, docstring and schema,
    so the request is unchanged) takes it from a context variable that `structured` sets.
    A model made per call (one per pattern) would make the cache grow for the whole run:
    it keeps the latest few.
    """
    bound: type[BaseModel]

    def validate_json(cls: type[BaseModel], /, json_data: str | bytes | bytearray, *,
                      context: Any | None = None, **kwargs: Any) -> Any:
        context = _validation_context.get() if context is None else context
        parent: Any = super(bound, cls)
        return parent.model_validate_json(json_data, context=context, **kwargs)

    def validate(cls: type[BaseModel], /, obj: Any, *, context: Any | None = None,
                 **kwargs: Any) -> Any:
        context = _validation_context.get() if context is None else context
        parent: Any = super(bound, cls)
        return parent.model_validate(obj, context=context, **kwargs)

    namespace = {"__module__": model.__module__, "__qualname__": model.__qualname__,
                 "__doc__": model.__doc__, "model_validate_json": classmethod(validate_json),
                 "model_validate": classmethod(validate),
                 instructor_checks.CHECKED_AS: model}
    metaclass: Any = type(model)
    bound = metaclass(model.__name__, (model,), namespace)
    return bound


def _exactly(model: type[T], value: BaseModel) -> T:
    """`value` as an instance of `model` itself: instructor returns a subclass carrying the raw
    completion, which compares unequal to (and pickles heavier than) the real thing."""
    if type(value) is model:
        return value
    fields = {name: value.__dict__[name] for name in model.model_fields if name in value.__dict__}
    rebuilt = model.model_construct(_fields_set=set(value.model_fields_set), **fields,
                                    **(value.model_extra or {}))
    if value.__pydantic_private__:
        object.__setattr__(rebuilt, "__pydantic_private__", dict(value.__pydantic_private__))
    return rebuilt


def _one_line(exc: BaseException) -> str:
    """A validation failure as one line (pydantic's own text spans lines and links its docs)."""
    if not isinstance(exc, ValidationError):
        return " ".join(str(exc).split())
    parts = []
    for e in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in e["loc"])
        msg = str(e["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def _load_handlers(mode: Any) -> None:
    """Have instructor load ``mode``'s request and response handlers now, not on first use.

    It imports them with the first call (``requests`` and ``urllib3`` come with them): a
    fifth of a second in which all the first patterns of a pass wait on Python's import lock,
    holding back their requests. Made here, before any pattern, nothing waits. Where this
    instructor keeps its handlers elsewhere, the first call loads them as before.
    """
    try:
        from instructor.v2.core.providers import Provider
        from instructor.v2.core.registry import mode_registry

        mode_registry.get_handlers(Provider.OPENAI, mode)
    except Exception as exc:  # another instructor layout: nothing lost but the head start
        log.debug("instructor's handlers for %s load on first use (%s)", mode, exc)


class LLM:
    """Structured answers from one endpoint; thread-safe, one per run."""

    def __init__(self, settings: LLMSettings, *, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self._transport = GuardedTransport(transport or PerThreadTransport(), settings,
                                           sleep=sleep)
        self._http = httpx.Client(transport=self._transport, timeout=settings.timeout_s)
        self._completions_url = settings.endpoint.rstrip("/") + "/chat/completions"
        import instructor

        instructor_checks.install()
        mode = getattr(instructor.Mode, _MODES[settings.mode])
        self._create = instructor.patch(create=self._chat_completion, mode=mode)
        _load_handlers(mode)
        self.mode = settings.mode
        """The mode in use: the configured one, or ``tools`` after a json_schema refusal."""
        self._mode_lock = threading.Lock()

    @property
    def total_usage(self) -> Usage:
        """Everything this client spent so far, across calls and threads."""
        return self._transport.total

    def structured(self, *, response_model: type[T], messages: list[dict[str, Any]],
                   context: dict[str, Any] | None = None, tag: str = "") -> tuple[T, Usage]:
        """One validated `response_model` and what it cost.

        `context` reaches the model's validators (``info.context``); a failed validation is
        re-asked up to ``settings.max_retries`` times. Raises StructuredOutputError when no
        attempt validates, LLMError when the endpoint cannot be used (FixtureMissing in replay).
        An endpoint that refuses ``json_schema`` response formats (llama-cpp-python's server,
        older vLLM) is asked again, and from then on, in ``tools`` mode.
        """
        try:
            return self._structured(response_model, messages, context, tag)
        except LLMError as exc:
            if not self._switch_to_tools(exc):
                raise
        return self._structured(response_model, messages, context, tag)

    def _switch_to_tools(self, exc: LLMError) -> bool:
        """Fall back from json_schema to tools once, when the endpoint says it cannot do it."""
        import instructor

        with self._mode_lock:
            if self.mode != "json_schema":
                # Another thread switched while this call was on its way: ask again in tools.
                return self.settings.mode == "json_schema" and _SCHEMA_REFUSAL.search(
                    exc.server_said) is not None
            if exc.status not in (400, 415, 422, 500, 501) or not _SCHEMA_REFUSAL.search(
                    exc.server_said):
                return False
            log.warning("%s refused response_format json_schema (%s); using mode 'tools' "
                           "from now on (set --mode to choose)", self.settings.endpoint,
                           exc.message[:200])
            self.mode = "tools"
            self._create = instructor.patch(create=self._chat_completion,
                                            mode=instructor.Mode.TOOLS)
            return True

    def _chat_completion(self, *, extra_headers: Mapping[str, str] | None = None,
                         extra_body: Mapping[str, Any] | None = None, **params: Any) -> Any:
        """One chat completion, as instructor asks openai's ``chat.completions.create`` for it.

        The request is the one openai's client sends (the parameters as the JSON body, the
        key as a bearer token); the answer is read into openai's ``ChatCompletion`` as
        leniently as that client reads it. Going through the guarded client directly leaves
        out the SDK's own request and response layers, which instructor does not need (every
        failure is the transport's ``LLMError`` before any answer is read) and which cost
        about a fifth of a structured call's CPU.
        """
        from openai.types.chat import ChatCompletion

        headers = {"Authorization": f"Bearer {self.settings.api_key or PLACEHOLDER_KEY}",
                   **(extra_headers or {})}
        response = self._http.post(self._completions_url, json={**params, **(extra_body or {})},
                                   headers=headers)
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            said = scrub(response.text[:200], (self.settings.api_key,))
            raise LLMError(f"{self.settings.endpoint} answered HTTP {response.status_code} "
                           f"without a JSON object ({said!r}); is it an OpenAI-compatible "
                           "endpoint?", status=response.status_code, tag=tag_of(response.request))
        return ChatCompletion.model_construct(**data)

    def _structured(self, response_model: type[T], messages: list[dict[str, Any]],
                    context: dict[str, Any] | None, tag: str) -> tuple[T, Usage]:
        from instructor.core.exceptions import IncompleteOutputException, InstructorRetryException

        usage = Usage()
        usage_token = _usage_sink.set(usage)
        context_token = _validation_context.set(context)
        settings = self.settings
        failure: Exception | None = None
        try:
            result = self._create(
                response_model=_context_bound(response_model) if context else response_model,
                messages=cast(Any, messages),
                max_retries=settings.max_retries, model=settings.model,
                temperature=settings.temperature, max_tokens=settings.max_tokens,
                extra_headers={TAG_HEADER: quote(tag, safe=" =@:/,;+")} if tag else None)
        except IncompleteOutputException as exc:
            failure = StructuredOutputError(
                f"the answer was cut off at max_tokens={settings.max_tokens}; raise max_tokens "
                "or ask for less", last_json=_completion_json(exc.last_completion),
                usage=usage, tag=tag, attempts=1)
        except InstructorRetryException as exc:
            failure = self._failure(exc, usage, tag)
        except Exception as exc:
            failure = _llm_error_in(exc)
            if failure is None:
                raise
            failure.usage = usage
        finally:
            _validation_context.reset(context_token)
            _usage_sink.reset(usage_token)
        if failure is not None:
            # Raised here, outside the handlers, so the error does not drag instructor's and
            # openai's wrappers (which wrap it in turn) along as its context.
            raise failure
        return _exactly(response_model, result), usage

    def _failure(self, exc: InstructorRetryException, usage: Usage, tag: str) -> Exception:
        found = _llm_error_in(exc)
        if found is not None:
            found.usage = usage
            return found
        attempts = list(exc.failed_attempts or [])
        if not attempts:
            unexpected = LLMError(f"unexpected failure talking to {self.settings.endpoint}: "
                                  f"{scrub(str(exc), (self.settings.api_key,))}", tag=tag,
                                  usage=usage)
            unexpected.__cause__ = exc
            return unexpected
        last = attempts[-1]
        problem = scrub(_one_line(last.exception), (self.settings.api_key,))
        return StructuredOutputError(
            f"model '{self.settings.model}' gave no valid answer in {len(attempts)} "
            f"attempt{'s' if len(attempts) != 1 else ''} (mode {self.mode}); "
            f"last problem: {problem}",
            last_json=_completion_json(last.completion), usage=usage, tag=tag,
            attempts=len(attempts))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LLM:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
