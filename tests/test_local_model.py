"""The bundled-model launcher: its pure parts always, the real model only where the extra is."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import types
from collections.abc import Iterator
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, HTTPServer
from importlib.machinery import ModuleSpec
from pathlib import Path

import httpx
import pytest
from pydantic import BaseModel, Field

from gardener import local_model
from gardener.local_model import (
    MODEL_FILE,
    MODEL_NAME,
    MODEL_PACKAGE,
    Endpoint,
    LocalModelError,
    bundled_model_path,
    endpoint_configured,
    free_port,
    missing_modules,
    server_command,
    server_environment,
    start_local_model,
    wait_until_ready,
)


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
    command = server_command(Path("/m/model.gguf"), 41234, "key", python="/py", threads=2)
    assert command[:3] == ["/py", "-m", "gardener.local_model"]
    options = dict(zip(command[3::2], command[4::2], strict=True))
    assert options == {
        "--model": "/m/model.gguf",
        "--model_alias": MODEL_NAME,
        "--host": "127.0.0.1",
        "--port": "41234",
        "--api_key": "key",
        "--n_ctx": str(local_model.CONTEXT_TOKENS),
        "--n_threads": "2",
        "--n_threads_batch": "2",
        "--logits_all": "False",
        "--verbose": "False",
    }


@pytest.mark.parametrize(("cores", "threads"), [(None, 1), (1, 1), (2, 1), (8, 7)])
def test_one_core_is_left_to_the_rest_of_the_tool(cores: int | None, threads: int) -> None:
    assert local_model.default_threads(cores) == threads


def test_default_thread_count_reaches_the_command_line() -> None:
    command = server_command(Path("/m.gguf"), 1, "key")
    expected = str(local_model.default_threads(os.cpu_count()))
    assert command[command.index("--n_threads") + 1] == expected
    assert command[command.index("--n_threads_batch") + 1] == expected


class FakeRule:
    def __init__(self, content: str, deps: list[str] | None = None) -> None:
        self.content = content
        self.deps = deps or []


def fake_grammar(monkeypatch: pytest.MonkeyPatch, content: str) -> types.ModuleType:
    grammar = types.ModuleType("llama_cpp.llama_grammar")
    grammar.BuiltinRule = FakeRule  # type: ignore[attr-defined]
    grammar.PRIMITIVE_RULES = {"char": FakeRule(content)}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "llama_cpp", types.ModuleType("llama_cpp"))
    monkeypatch.setitem(sys.modules, "llama_cpp.llama_grammar", grammar)
    return grammar


def test_the_loose_string_rule_is_made_strict(monkeypatch: pytest.MonkeyPatch) -> None:
    grammar = fake_grammar(monkeypatch, local_model.LOOSE_CHAR_RULE)
    assert local_model.strict_json_strings() is True
    rule = grammar.PRIMITIVE_RULES["char"]
    assert rule.content == local_model.STRICT_CHAR_RULE
    assert r"\x00-\x1F" in rule.content


def test_a_rule_we_do_not_know_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    grammar = fake_grammar(monkeypatch, "[^\"] | something newer")
    assert local_model.strict_json_strings() is False
    assert grammar.PRIMITIVE_RULES["char"].content == "[^\"] | something newer"


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
    """Before strict strings, the model wrote a raw line break into ``reason`` for this prompt."""

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
        response = httpx.post(
            f"{endpoint.base_url}/chat/completions",
            headers={"Authorization": f"Bearer {endpoint.api_key}"},
            json={
                "model": endpoint.model,
                "messages": [{"role": "user", "content": PROMPT}],
                "response_format": {"type": "json_object", "schema": Links.model_json_schema()},
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
