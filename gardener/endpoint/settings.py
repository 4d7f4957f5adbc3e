"""How to reach the model: endpoint, credentials, structured-output mode and retry bounds."""

from __future__ import annotations

import ipaddress
import math
import os
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from gardener.endpoint.gguf import GGUFError, read_header
from gardener.text import redact_url

MODES = ("tools", "json_schema", "json_object_schema", "json", "md_json")
DEFAULT_MODEL = "gpt-4.1-mini"
LOCAL_MODEL = "SmolLM2-135M-Instruct"
"""The bundled model's name (gardener.local.server serves it under this name)."""
LOCAL_MODE = "json_object_schema"
"""Grammar-constrained decoding from the response's JSON schema in the form llama-cpp-python's
server documents (``{"type": "json_object", "schema": ...}``; it refuses OpenAI's
``json_schema``): see `gardener.endpoint.grammar`."""
LOCAL_MODEL_VARIABLE = "GARDENER_LOCAL_MODEL"
"""A GGUF file the local server serves instead of the bundled SmolLM2 (your own weights)."""
LOCAL_CONTEXT_VARIABLE = "GARDENER_LOCAL_CONTEXT"
"""The local server's context size in tokens (bounded by the file's trained context)."""
LOCAL_CONTEXT = 8192
"""The local context when the setting gives none: SmolLM2's trained context, and one that
most small models' KV caches keep within a laptop's memory."""
CONTEXT_VARIABLE = "GARDENER_CONTEXT"
"""Tokens of context the endpoint's model has, when the server does not say
(`gardener.endpoint.window`): requests are then sized to fit it (`gardener.propose.fit`)."""
MIN_CONTEXT = 256
MAX_CONTEXT = 1 << 24
"""16,777,216 tokens: above the largest context any served model has (10 M); a larger
number is a typo, and one of 10^12 would make every request "fit"."""
MAX_TIMEOUT_S = 86_400.0
"""A day for one request: a slow CPU model takes minutes; beyond a day a timeout means none."""
MAX_CONCURRENCY = 256
"""Model calls in flight at once: each is a thread and a connection; hosted rate limits and
local servers are saturated far below this."""
MAX_MODEL_NAME = 256
"""Characters of a model name (``org/family-size-quant:tag`` names run to about 80)."""
MAX_TOKENS = 2048
"""Answer tokens per request, unless a profile or a small context says fewer."""
OPENAI_HOST = "api.openai.com"
REMOTE_TIMEOUT_S = 120.0
"""Seconds a remote endpoint may take for one answer."""
LOOPBACK_TIMEOUT_S = 900.0
"""Seconds a server on this machine may take for one answer: a local model on a CPU (the
bundled one included) can compute for minutes, and a request cut short is work thrown away."""
ENDPOINT_VARIABLES = ("OPENAI_BASE_URL", "OPENAI_API_KEY", "GARDENER_MODEL", "GARDENER_MODE",
                      CONTEXT_VARIABLE)
"""The environment that chooses the gardener's model endpoint (``LLMSettings.from_env``)."""


def model_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a model name, or None. A model name goes into requests, the
    state, the report and the review commit's trailers, where a newline would forge a line."""
    if len(name) > MAX_MODEL_NAME:
        return f"is longer than {MAX_MODEL_NAME} characters"
    for char in name:
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            return (f"holds U+{ord(char):04X} (a control or invisible character), which a "
                    "model name may not")
    return None


def timeout_problem(seconds: float) -> str | None:
    """Why ``seconds`` cannot be one request's timeout, or None."""
    if not math.isfinite(seconds) or seconds <= 0 or seconds > MAX_TIMEOUT_S:
        return f"must be more than 0 and at most {MAX_TIMEOUT_S:g} seconds, got {seconds:g}"
    return None


def context_problem(tokens: int) -> str | None:
    """Why ``tokens`` cannot be a model's context, or None."""
    if not MIN_CONTEXT <= tokens <= MAX_CONTEXT:
        return f"must be {MIN_CONTEXT} to {MAX_CONTEXT} tokens, got {tokens}"
    return None


def is_loopback(base_url: str | None) -> bool:
    """Whether ``base_url`` is a server on this machine (localhost, 127.0.0.0/8, ::1)."""
    host = (urlsplit(base_url).hostname or "").lower() if base_url else ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def default_timeout_s(base_url: str | None) -> float:
    """The request timeout for ``base_url`` when GARDENER_TIMEOUT_S does not set one."""
    return LOOPBACK_TIMEOUT_S if is_loopback(base_url) else REMOTE_TIMEOUT_S


def default_mode(base_url: str | None) -> str:
    """The structured-output mode that works best at `base_url`.

    OpenAI (no base URL, or api.openai.com) gets ``tools``: a forced function call is what
    instructor knows best there and works for every current chat model. Any other endpoint
    (vLLM, Ollama, llama.cpp server, LM Studio, unknown proxies) gets ``json_schema``: those
    servers turn ``response_format`` into grammar-constrained decoding, so even small local
    models emit JSON that parses, while their tool calling depends on per-model chat templates
    and server flags (vLLM's ``--enable-auto-tool-choice``, Ollama ignoring ``tool_choice``) and
    often comes back as plain text. A server that refuses ``json_schema`` (llama-cpp-python's)
    is asked in ``json_object_schema``, then ``tools`` (`gardener.endpoint.client.FALLBACK`).
    """
    if base_url is None:
        return "tools"
    host = (urlsplit(base_url).hostname or "").lower()
    return "tools" if host == OPENAI_HOST else "json_schema"


def _env(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def local_model_file(environ: Mapping[str, str]) -> Path | None:
    """The GGUF file named by GARDENER_LOCAL_MODEL (``~`` expanded), or None: the bundled one."""
    value = _env(environ, LOCAL_MODEL_VARIABLE)
    return Path(value).expanduser() if value else None


def local_model_name(path: Path) -> str:
    """What a local GGUF model is called: its ``general.name``, else the file name less
    ``.gguf``. The name picks the profile (``profiles.profile_for``), so the server's alias,
    the requests, the report and a replay of its recordings all use this one."""
    try:
        name = read_header(path).name
    except (OSError, GGUFError):
        name = None  # the server's start says what is wrong with the file
    return name or path.name.removesuffix(".gguf") or path.name


def local_context(environ: Mapping[str, str], trained: int | None = None) -> int:
    """The local server's context: GARDENER_LOCAL_CONTEXT or ``LOCAL_CONTEXT``, never more
    than the model's trained context (``trained``, from the file), which it would not use
    well and which only costs memory."""
    value = _env(environ, LOCAL_CONTEXT_VARIABLE)
    requested = LOCAL_CONTEXT
    if value is not None:
        try:
            requested = int(value)
        except ValueError:
            raise ValueError(f"{LOCAL_CONTEXT_VARIABLE}={value!r} is not a whole number "
                             "of tokens") from None
        if requested < MIN_CONTEXT or requested > MAX_CONTEXT:
            raise ValueError(f"{LOCAL_CONTEXT_VARIABLE} {context_problem(requested)}")
    return min(requested, trained) if trained else requested


def context_setting(environ: Mapping[str, str]) -> int | None:
    """GARDENER_CONTEXT as a number of tokens, or None when unset."""
    value = _env(environ, CONTEXT_VARIABLE)
    if value is None:
        return None
    try:
        tokens = int(value)
    except ValueError:
        raise ValueError(f"{CONTEXT_VARIABLE}={value!r} is not a whole number of tokens"
                         ) from None
    problem = context_problem(tokens)
    if problem is not None:
        raise ValueError(f"{CONTEXT_VARIABLE} {problem}")
    return tokens


RETRY_BOUNDS = {"GARDENER_TIMEOUT_S": ("timeout_s", float),
                "GARDENER_MAX_ATTEMPTS": ("max_attempts", int),
                "GARDENER_MAX_WAIT_S": ("max_wait_s", float)}
"""Environment variables that bound one request: its timeout, attempts and total time."""


def retry_bounds(environ: Mapping[str, str]) -> dict[str, float | int]:
    """The LLMSettings fields the environment sets through ``RETRY_BOUNDS``."""
    bounds: dict[str, float | int] = {}
    for name, (field_name, kind) in RETRY_BOUNDS.items():
        value = _env(environ, name)
        if value is None:
            continue
        try:
            number = kind(value)
        except ValueError:
            raise ValueError(f"{name}={value!r} is not a {'whole ' if kind is int else ''}"
                             "number") from None
        if not math.isfinite(number) or number <= 0:
            raise ValueError(f"{name} must be positive, got {value}")
        if name == "GARDENER_TIMEOUT_S" and (problem := timeout_problem(number)) is not None:
            raise ValueError(f"{name} {problem}")
        bounds[field_name] = number
    return bounds


@dataclass(frozen=True)
class LLMSettings:
    """Everything the LLM client needs; the API key never shows in repr or logs."""

    base_url: str | None
    api_key: str | None = field(repr=False)
    model: str
    mode: str
    temperature: float = 0.0
    max_tokens: int = MAX_TOKENS
    timeout_s: float = REMOTE_TIMEOUT_S  # from_env: LOOPBACK_TIMEOUT_S on this machine
    max_attempts: int = 6  # transport attempts per HTTP request (first try included)
    max_wait_s: float = 300.0  # no retry starts once this much time has gone on one request
    max_retries: int = 2  # instructor re-asks after a validation failure
    retry_initial_s: float = 0.5  # first backoff; doubles per retry, plus jitter
    retry_cap_s: float = 60.0  # longest single wait, Retry-After included
    concurrency: int | None = None
    """Most requests the endpoint answers at once, when known (the bundled server: one);
    a run keeps no more in flight, since the rest would only queue into their timeouts."""
    context: int | None = None
    """Tokens of context the model has, when known (a setting, the local server's own, or
    what the server says): requests are sized to fit it (`gardener.propose.fit`)."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown LLM mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if not self.model:
            raise ValueError("no model name given (use --model or GARDENER_MODEL)")
        if (problem := model_name_problem(self.model)) is not None:
            raise ValueError(f"model name {self.model!r} {problem}")
        if (problem := timeout_problem(self.timeout_s)) is not None:
            raise ValueError(f"timeout_s {problem}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must not be negative, got {self.max_retries}")
        if self.concurrency is not None and not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise ValueError(f"concurrency must be 1 to {MAX_CONCURRENCY}, got {self.concurrency}")
        if self.context is not None and self.context < MIN_CONTEXT:
            raise ValueError(f"context must be at least {MIN_CONTEXT} tokens, got {self.context}")

    @property
    def loopback(self) -> bool:
        """Whether the endpoint runs on this machine (see ``is_loopback``)."""
        return is_loopback(self.base_url)

    @property
    def url(self) -> str:
        """Where requests go, as configured (it may carry credentials: never show it)."""
        return self.base_url or f"https://{OPENAI_HOST}/v1"

    @property
    def endpoint(self) -> str:
        """Where requests go, for messages, reports and pull requests: credentials in the
        URL (``https://user:pass@host``, ``?api-key=``) masked."""
        return redact_url(self.url)

    @classmethod
    def from_env(cls, model: str | None = None, mode: str | None = None,
                 base_url: str | None = None, *,
                 environ: Mapping[str, str] | None = None) -> LLMSettings:
        """Settings from arguments, falling back to OPENAI_BASE_URL, OPENAI_API_KEY,
        GARDENER_MODEL and GARDENER_MODE; the mode defaults per endpoint (see default_mode).
        GARDENER_TIMEOUT_S (default: ``default_timeout_s``), GARDENER_MAX_ATTEMPTS and
        GARDENER_MAX_WAIT_S bound retries; GARDENER_CONTEXT gives the model's context. With no
        endpoint the model is the local one: GARDENER_LOCAL_MODEL's (``local_model_name``) or
        the bundled SmolLM2, with the local server's context (GARDENER_LOCAL_CONTEXT)."""
        env = os.environ if environ is None else environ
        url = base_url or _env(env, "OPENAI_BASE_URL")
        key = _env(env, "OPENAI_API_KEY")
        # No endpoint at all means the bundled local model (and replays of its recordings).
        local = url is None and key is None
        bounds: dict[str, float | int] = {"timeout_s": default_timeout_s(url), **retry_bounds(env)}
        model = model or _env(env, "GARDENER_MODEL")
        if model is None and local:
            own = local_model_file(env)
            model = local_model_name(own) if own is not None else LOCAL_MODEL
        return cls(
            base_url=url,
            api_key=key,
            model=model or DEFAULT_MODEL,
            mode=mode or _env(env, "GARDENER_MODE") or (LOCAL_MODE if local else default_mode(url)),
            context=local_context(env) if local else context_setting(env),
            **bounds,  # type: ignore[arg-type]
        )
