"""The one door to the model: structured answers through instructor, over openai's own client.

instructor (``instructor.from_openai``) drives each call: the schema, the validation and the
re-asks. openai's SDK sends the requests, through an ``httpx.Client`` whose transport is
`gardener.endpoint.transport.GuardedTransport`: retries, fail-fast messages, usage counted per
HTTP response (re-asks and retried attempts included), secrets scrubbed. openai's own retries
are off (``max_retries=0``). Credentials and routing are the SDK's and httpx's: the key and base
URL come from the settings, OPENAI_ORG_ID and OPENAI_PROJECT_ID are read by the SDK itself,
and proxies come from the environment (`gardener.endpoint.transport.EnvironmentTransport`).

Validation context. instructor 1.17 has one ``context`` for two jobs: pydantic's validation
context, and the variables of a Jinja template that it renders every message as (then
dedents). Our messages are data, not templates: a pattern body with ``{{`` or ``{%`` would
break, whitespace-only lines would be emptied, so instructor is never given a context. A
caller's context reaches the validators through pydantic instead: the model instructor gets
is a subclass of the caller's (same name, docstring and fields, so the same schema and the
same re-ask messages) whose ``model_validate`` and ``model_validate_json`` pass that context
whenever none is passed in. The per-pattern models of `gardener.propose.response` carry their
grounding as class data and need no context at all.

Answers are instances of the caller's model itself. instructor answers a plain pydantic model
with an instance of its own subclass of it (carrying the raw completion), which compares
unequal to the real thing and does not pickle: such an answer is validated once more into the
caller's model. Models derived from ``instructor.OpenAISchema`` come back as they are.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import types
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from gardener.endpoint.exchange import (
    SCHEMA_REFUSAL,
    LLMError,
    StructuredOutputError,
    Usage,
    exception_chain,
    explain_status,
    explain_transport,
    is_retryable_error,
    is_retryable_response,
    retry_after_s,
    scrub,
    server_message,
    usage_of,
)
from gardener.endpoint.grammar import grammar_schema
from gardener.endpoint.settings import LLMSettings
from gardener.endpoint.transport import (
    ONCE_HEADER,
    TAG_EXTENSION,
    TAG_HEADER,
    EnvironmentTransport,
    GuardedTransport,
    counting,
    tag_of,
    take_tag,
)

if TYPE_CHECKING:
    from instructor import Instructor, Mode
    from instructor.core import InstructorRetryException

__all__ = ["LLM", "PLACEHOLDER_KEY", "TAG_EXTENSION", "TAG_HEADER", "EnvironmentTransport",
           "GuardedTransport", "LLMError", "StructuredOutputError", "Usage", "explain_status",
           "explain_transport", "is_retryable_error", "is_retryable_response", "retry_after_s",
           "scrub", "server_message", "tag_of", "take_tag", "usage_of", "with_context"]

log = logging.getLogger("gardener.endpoint.client")

T = TypeVar("T", bound=BaseModel)

PLACEHOLDER_KEY = "no-key-set"
"""Sent when OPENAI_API_KEY is unset: local servers accept anything, OpenAI answers 401."""

CONTEXT_EXCEEDED = re.compile(
    r"context[ _-]?(length|window|size)|maximum context|exceeds? (the )?(available )?context|"
    r"too many tokens|prompt is too long", re.IGNORECASE)
"""How endpoints say a request does not fit the model's context: OpenAI and vLLM ("maximum
context length", code ``context_length_exceeded``), llama.cpp ("exceeds the available context
size"), llama-cpp-python ("exceed context window")."""


def context_exceeded(exc: LLMError) -> bool:
    """The endpoint refused the request because it does not fit the model's context."""
    return exc.status in (400, 413, 422, 500) and (
        CONTEXT_EXCEEDED.search(exc.server_said) is not None
        or CONTEXT_EXCEEDED.search(exc.message) is not None)


_MODES = {"tools": "TOOLS", "json_schema": "JSON_SCHEMA", "json_object_schema": "JSON_SCHEMA",
          "json": "JSON", "md_json": "MD_JSON"}
"""Our mode names → instructor.Mode members (instructor and openai load on first LLM: slow).
``json_object_schema`` is instructor's JSON_SCHEMA mode (the schema travels in the request, not
in the messages) with the response format in the llama.cpp servers' documented form,
``{"type": "json_object", "schema": ...}``, given as the SDK's ``extra_body`` (whose keys take
precedence over the SDK's own): see `response_format`."""
PROBE_TIMEOUT_S = 10.0
"""Seconds a question to the server about itself (``server_json``) may take."""
FALLBACK = {"json_schema": "json_object_schema", "json_object_schema": "tools"}
"""What to try when an endpoint refuses a mode's response format: llama.cpp's dialect first
(grammar-constrained still), then a forced tool call (constrained only where the server does)."""


def response_format(mode: str, model: type[BaseModel]) -> dict[str, Any] | None:
    """The ``extra_body`` of a request in ``mode`` for answers of ``model``, if any."""
    if mode != "json_object_schema":
        return None
    return {"response_format": {"type": "json_object",
                                "schema": grammar_schema(model.model_json_schema())}}


def with_context(model: type[T], context: dict[str, Any]) -> type[T]:
    """``model`` validating with ``context`` as pydantic's validation context by default.

    A subclass under the same name, docstring and module, adding no field or validator: its
    schema and its validation errors read as ``model``'s. A context passed in explicitly
    still wins.
    """
    bound = dict(context)

    def model_validate(cls: type[T], /, obj: Any, *, context: Any | None = None,
                       **kwargs: Any) -> T:
        parent: Any = super(made, cls)
        return cast(T, parent.model_validate(obj, context=bound if context is None else context,
                                             **kwargs))

    def model_validate_json(cls: type[T], /, json_data: str | bytes | bytearray, *,
                            context: Any | None = None, **kwargs: Any) -> T:
        parent: Any = super(made, cls)
        return cast(T, parent.model_validate_json(
            json_data, context=bound if context is None else context, **kwargs))

    def namespace(ns: dict[str, Any]) -> None:
        ns.update({"__module__": model.__module__, "__qualname__": model.__qualname__,
                   "__doc__": model.__doc__, "model_validate": classmethod(model_validate),
                   "model_validate_json": classmethod(model_validate_json)})

    made: type[T] = types.new_class(model.__name__, (model,), exec_body=namespace)
    return made


def _exactly(model: type[T], value: BaseModel, context: dict[str, Any] | None) -> T:
    """``value`` as an instance of ``model`` itself (see the module's docstring)."""
    if type(value) is model:
        return value
    return model.model_validate(value.model_dump(round_trip=True, exclude_unset=True),
                                context=context)


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
    return next((e for e in exception_chain(exc) if isinstance(e, LLMError)), None)


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


class LLM:
    """Structured answers from one endpoint; thread-safe, one per run.

    ``transport`` is what sends the requests under the guarded one: the fixture store, a test
    double; None means plain httpx with the environment's proxy settings.
    """

    def __init__(self, settings: LLMSettings, *, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        import instructor
        import openai

        self.settings = settings
        self._transport = GuardedTransport(
            transport if transport is not None else EnvironmentTransport(), settings,
            sleep=sleep)
        self._http = httpx.Client(transport=self._transport, timeout=settings.timeout_s)
        # organization and project are left to the SDK: it reads OPENAI_ORG_ID and
        # OPENAI_PROJECT_ID itself.
        self._openai = openai.OpenAI(base_url=settings.url,
                                     api_key=settings.api_key or PLACEHOLDER_KEY,
                                     max_retries=0, timeout=settings.timeout_s,
                                     http_client=cast(Any, self._http))
        self._client: Instructor = instructor.from_openai(self._openai,
                                                          mode=_mode(settings.mode))
        self.mode = settings.mode
        """The mode in use: the configured one, or its `FALLBACK` after a refusal."""
        self._mode_lock = threading.Lock()

    @property
    def total_usage(self) -> Usage:
        """Everything this client spent so far, across calls and threads."""
        return self._transport.total

    def structured(self, *, response_model: type[T], messages: list[dict[str, Any]],
                   context: dict[str, Any] | None = None, tag: str = "",
                   max_retries: int | None = None) -> tuple[T, Usage]:
        """One validated `response_model` and what it cost.

        `context` reaches the model's validators (``info.context``); a failed validation is
        re-asked up to ``max_retries`` times (default ``settings.max_retries``). Raises
        StructuredOutputError when no attempt validates, LLMError when the endpoint cannot be
        used (FixtureMissing in replay).
        An endpoint that refuses a mode's response format (llama-cpp-python's server refuses
        ``json_schema``) is asked again, and from then on, in the mode's `FALLBACK`.
        """
        while True:
            asked_in = self.mode
            try:
                return self._structured(response_model, messages, context, tag, max_retries)
            except LLMError as exc:
                if not self._fall_back(exc, asked_in):
                    raise

    def _fall_back(self, exc: LLMError, asked_in: str) -> bool:
        """Move to the next mode once the endpoint says it cannot do ``asked_in``'s format."""
        import instructor

        refused = exc.status in (400, 415, 422, 500, 501) and SCHEMA_REFUSAL.search(
            exc.server_said) is not None
        with self._mode_lock:
            if self.mode != asked_in:
                # Another thread moved on while this call was on its way: ask again.
                return refused
            following = FALLBACK.get(asked_in)
            if following is None or not refused:
                return False
            log.warning("%s refused the response format of mode '%s' (%s); using mode '%s' "
                        "from now on (set --mode to choose)", self.settings.endpoint,
                        asked_in, exc.message[:200], following)
            self.mode = following
            self._client = instructor.from_openai(self._openai, mode=_mode(following))
            return True

    def _structured(self, response_model: type[T], messages: list[dict[str, Any]],
                    context: dict[str, Any] | None, tag: str,
                    max_retries: int | None = None) -> tuple[T, Usage]:
        from instructor.core import IncompleteOutputException, InstructorRetryException

        settings = self.settings
        asked = response_model if context is None else with_context(response_model, context)
        usage = Usage()
        failure: Exception | None = None
        try:
            with counting(usage):
                result = self._client.chat.completions.create(
                    response_model=asked, messages=cast(Any, messages),
                    max_retries=settings.max_retries if max_retries is None else max_retries,
                    model=settings.model,
                    temperature=settings.temperature, max_tokens=settings.max_tokens,
                    extra_body=response_format(self.mode, asked),
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
        if failure is not None:
            # Raised here, outside the handlers, so the error does not drag instructor's and
            # openai's wrappers (which wrap it in turn) along as its context.
            raise failure
        return _exactly(response_model, result, context), usage

    def _failure(self, exc: InstructorRetryException, usage: Usage, tag: str) -> Exception:
        found = _llm_error_in(exc)
        attempts = list(exc.failed_attempts or [])
        if found is not None and attempts and context_exceeded(found):
            # A re-ask carries the first answer and its errors: on a small local context it
            # may not fit. The answers already received are still there to salvage.
            log.warning("%s: the re-ask was refused, context exceeded (%s); salvaging the "
                        "answer already received", tag, found.server_said[:200])
            return StructuredOutputError(
                f"model '{self.settings.model}' gave no valid answer in {len(attempts)} "
                f"attempt{'s' if len(attempts) != 1 else ''}, and the re-ask did not fit its "
                f"context ({scrub(found.server_said[:200], (self.settings.api_key,))})",
                last_json=_completion_json(attempts[-1].completion), usage=usage, tag=tag,
                attempts=len(attempts))
        if found is not None:
            found.usage = usage
            return found
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

    def server_json(self, url: str, body: Mapping[str, Any] | None = None) -> Any:
        """JSON from a route of the endpoint's server other than chat (llama.cpp's ``/props``,
        Ollama's ``/api/show``): GET, or POST with ``body``, through the same openai client
        and transport, the SDK's documented way to call routes it has no method for; tried
        once, for at most `PROBE_TIMEOUT_S`. Raises LLMError when the server refuses (an
        unknown route: 404)."""
        once: Any = {"headers": {ONCE_HEADER: "1"}, "timeout": PROBE_TIMEOUT_S}
        try:
            if body is None:
                response = self._openai.get(url, cast_to=httpx.Response, options=once)
            else:
                response = self._openai.post(url, body=dict(body), cast_to=httpx.Response,
                                             options=once)
        except Exception as exc:
            found = _llm_error_in(exc)
            if found is None:
                raise
            raise found from None
        return response.json()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LLM:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _mode(name: str) -> Mode:
    import instructor

    return cast("Mode", getattr(instructor.Mode, _MODES[name]))
