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
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
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

from gardener.endpoint.exchange import (
    LLMError,
    Usage,
    error_code,
    explain_status,
    explain_transport,
    is_json_object,
    is_retryable_error,
    is_retryable_response,
    is_sent_and_unanswered,
    model_of,
    retry_after_s,
    scrub,
    server_message,
    usage_of,
)
from gardener.endpoint.settings import LLMSettings
from gardener.text import url_secrets

log = logging.getLogger("gardener.endpoint.client")

TAG_HEADER = "x-gardener-tag"
ONCE_HEADER = "x-gardener-once"
"""Marks a request tried once, never retried (a probe of what the server says about itself);
removed before sending."""
"""Carries the structured call's tag down to the transports; never sent over the wire."""
TAG_EXTENSION = "gardener_tag"
"""httpx request extension holding the tag once the header is stripped."""

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


# ---------------------------------------------------------------------------------------------
# The guarded transport


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
            if not is_json_object(response.content):
                said = scrub(response.content[:200].decode("utf-8", "replace"), self._secrets)
                raise LLMError(f"{endpoint} answered HTTP {response.status_code} without a JSON "
                               f"object ({said!r}); is it an OpenAI-compatible endpoint?",
                               status=response.status_code, tag=tag, attempts=attempts)
            return response
        said = scrub(server_message(response.content), self._secrets)
        message = explain_status(
            response.status_code, said,
            endpoint=endpoint, model=model_of(request), mode=settings.mode,
            key_set=settings.api_key is not None, code=error_code(response.content))
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


