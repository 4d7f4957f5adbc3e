"""How long a context the endpoint's model has, from what its server says.

Why: sizing requests to the context (`gardener.propose.fit`) needs the number, and a user should
not have to know it. Each kind of server says it its own way, none through the OpenAI API:
llama.cpp's ``llama-server`` in ``GET /props`` (the context of one slot), vLLM in ``GET
/v1/models`` (``max_model_len``), Ollama in ``GET /api/ps`` (a loaded model's context) and
``POST /api/show`` (a ``num_ctx`` the model sets). Ollama otherwise picks its default itself
(2,048 in older versions, 4,096 on most machines now) and cuts longer prompts silently, so
an Ollama server that says nothing is taken to have `OLLAMA_ASSUMED`. llama-cpp-python's
server says nothing: the bundled one's context is known, another one's is a setting
(GARDENER_CONTEXT). The readers are pure; `served_context` asks the server.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from gardener.endpoint.client import LLMError

log = logging.getLogger(__name__)

OLLAMA_ASSUMED = 4096
"""An Ollama server's context when neither the loaded model nor its parameters say."""


class Asks(Protocol):
    """What `served_context` needs of a client: `gardener.endpoint.client.LLM`."""

    def server_json(self, url: str, body: Mapping[str, Any] | None = None) -> Any: ...


def server_root(base_url: str) -> str:
    """The server's root URL for routes outside the OpenAI API: ``base_url`` less a final
    ``/v1`` (``http://host:8080/v1`` -> ``http://host:8080``)."""
    parts = urlsplit(base_url)
    path = parts.path.rstrip("/")
    path = path.removesuffix("/v1")
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def llama_cpp_props(data: Any) -> int | None:
    """llama-server's ``/props``: ``default_generation_settings.n_ctx`` (per slot)."""
    if not isinstance(data, dict):
        return None
    settings = data.get("default_generation_settings")
    found = _positive(settings.get("n_ctx")) if isinstance(settings, dict) else None
    return found or _positive(data.get("n_ctx"))


def vllm_models(data: Any, model: str) -> int | None:
    """vLLM's ``/v1/models``: ``max_model_len`` of the entry whose id is ``model``."""
    entries = data.get("data") if isinstance(data, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("id") == model:
            return _positive(entry.get("max_model_len"))
    return None


def _same_ollama_model(name: Any, model: str) -> bool:
    return isinstance(name, str) and (name == model or name == f"{model}:latest")


def ollama_ps(data: Any, model: str) -> int | None:
    """Ollama's ``/api/ps``: ``context_length`` of ``model`` if it is loaded."""
    entries = data.get("models") if isinstance(data, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and (_same_ollama_model(entry.get("name"), model)
                                        or _same_ollama_model(entry.get("model"), model)):
            return _positive(entry.get("context_length"))
    return None


_NUM_CTX = re.compile(r"^\s*num_ctx\s+(\d+)\s*$", re.MULTILINE)


def ollama_show(data: Any) -> int | None:
    """Ollama's ``/api/show``: the ``num_ctx`` among the model's ``parameters``."""
    parameters = data.get("parameters") if isinstance(data, dict) else None
    found = _NUM_CTX.search(parameters) if isinstance(parameters, str) else None
    return int(found.group(1)) if found else None


def _ask(llm: Asks, url: str, body: Mapping[str, Any] | None = None) -> Any | None:
    try:
        return llm.server_json(url, body)
    except (LLMError, ValueError):
        return None


def served_context(llm: Asks, base_url: str, model: str) -> tuple[int, str] | None:
    """The context of ``model`` at ``base_url`` as its server says, and which route said it;
    None when no route does (an OpenAI-compatible server that is none of these)."""
    root = server_root(base_url)
    found = llama_cpp_props(_ask(llm, f"{root}/props"))
    if found:
        return found, "llama.cpp /props"
    found = vllm_models(_ask(llm, f"{base_url.rstrip('/')}/models"), model)
    if found:
        return found, "/v1/models max_model_len"
    found = ollama_ps(_ask(llm, f"{root}/api/ps"), model)
    if found:
        return found, "Ollama /api/ps"
    shown = _ask(llm, f"{root}/api/show", {"model": model})
    if shown is None:
        return None
    found = ollama_show(shown)
    if found:
        return found, "Ollama /api/show num_ctx"
    return OLLAMA_ASSUMED, "Ollama's default (the server does not say)"
