"""Prefect's own servers under the gardener, and the bound on model calls in flight.

``gardener run`` uses the temporary API server that Prefect starts by itself when no
``PREFECT_API_URL`` is set; the gardener only makes sure it answers before the flow and ends
with the run, even a killed one. ``gardener serve`` starts ``prefect server start``. A server
the user configured is used as it is.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from shell_env import newcomer_env

from gardener.endpoint.client import LLM
from gardener.pipeline.options import GardenOptions
from gardener.pipeline.prefect import flows as garden_flow
from gardener.pipeline.prefect import runtime
from gardener.pipeline.prefect.flows import run_garden
from gardener.testing.fake_openai import FakeOpenAI, use_as_endpoint
from gardener.testing.libraries import generate
from gardener.testing.processes import command_line, descendants, running
from gardener.testing.responders import grounded_responder

ROOT = Path(__file__).resolve().parents[1]

linux_only = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def _gardener(library: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "gardener", "run", str(library),
                             "--model", "fake-model", *args],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _servers(pids: list[int]) -> list[int]:
    return [pid for pid in pids if runtime.EPHEMERAL_SERVER in command_line(pid)]


@linux_only
def test_a_run_uses_prefects_own_temporary_server_which_ends_with_it(tmp_path: Path) -> None:
    library = tmp_path / "library"
    generate(library, 12)
    with FakeOpenAI(latency=0.3, responder=grounded_responder) as fake:
        env = newcomer_env(tmp_path, OPENAI_BASE_URL=fake.url, OPENAI_API_KEY="test-key")
        process = _gardener(library, "--concurrency", "2", **env)
        try:
            deadline = time.monotonic() + 120
            while not fake.chat_requests and time.monotonic() < deadline:
                assert process.poll() is None, process.communicate()
                time.sleep(0.05)
            helpers = descendants(process.pid)
            servers = _servers(helpers)
            _out, err = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 0, err
    assert len(servers) == 1, [command_line(pid) for pid in helpers]
    # Its history went to the run's own Prefect home, where the server kept its database.
    assert list((tmp_path / "prefect-home").glob("*.db"))
    time.sleep(1)
    assert [pid for pid in helpers if running(pid)] == []


@linux_only
def test_a_killed_run_leaves_no_server_behind(tmp_path: Path) -> None:
    library = tmp_path / "library"
    generate(library, 40)
    with FakeOpenAI(latency=0.5, responder=grounded_responder) as fake:
        env = newcomer_env(tmp_path, OPENAI_BASE_URL=fake.url, OPENAI_API_KEY="test-key")
        process = _gardener(library, "--concurrency", "2", **env)
        try:
            deadline = time.monotonic() + 120
            while len(fake.chat_requests) < 2 and time.monotonic() < deadline:
                assert process.poll() is None, process.communicate()
                time.sleep(0.05)
            helpers = descendants(process.pid)
            assert _servers(helpers), [command_line(pid) for pid in helpers]
            process.send_signal(signal.SIGKILL)
            process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    for _ in range(50):  # the watchdog looks every 0.5 s
        if not any(running(pid) for pid in helpers):
            break
        time.sleep(0.1)
    assert [pid for pid in helpers if running(pid)] == []


def test_a_configured_server_that_does_not_answer_stops_the_run_before_any_pattern(
        tmp_path: Path) -> None:
    library = tmp_path / "library"
    generate(library, 3)
    before = {p.name: p.read_bytes() for p in library.glob("*.md")}
    env = newcomer_env(tmp_path, OPENAI_BASE_URL="http://127.0.0.1:9/v1", OPENAI_API_KEY="k",
                       PREFECT_API_URL="http://127.0.0.1:9/api")
    done = subprocess.run([sys.executable, "-m", "gardener", "run", str(library),
                           "--model", "fake-model"], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "error: Prefect's API at http://127.0.0.1:9/api did not answer" in done.stderr
    assert "Traceback" not in done.stderr
    assert {p.name: p.read_bytes() for p in library.glob("*.md")} == before
    # No temporary server was started beside the user's.
    assert not list((tmp_path / "prefect-home").glob("*.db"))


def test_a_temporary_server_that_cannot_start_stops_the_run_with_its_reason(
        tmp_path: Path) -> None:
    library = tmp_path / "library"
    generate(library, 3)
    before = {p.name: p.read_bytes() for p in library.glob("*.md")}
    env = newcomer_env(tmp_path, OPENAI_BASE_URL="http://127.0.0.1:9/v1", OPENAI_API_KEY="k",
                       PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="10",
                       PREFECT_API_DATABASE_CONNECTION_URL=(
                           f"sqlite+aiosqlite:///{tmp_path}/no/such/folder/prefect.db"))
    done = subprocess.run([sys.executable, "-m", "gardener", "run", str(library),
                           "--model", "fake-model"], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "error: Prefect's temporary server did not start" in done.stderr
    assert "unable to open database file" in done.stderr  # the cause, from Prefect's log
    assert "Traceback" not in done.stderr.split("Prefect's log")[0]
    assert {p.name: p.read_bytes() for p in library.glob("*.md")} == before


SERVE_SERVER = textwrap.dedent("""
    import json, os, httpx
    from gardener.pipeline.prefect import runtime
    runtime.configure()
    with runtime.api_server() as ui:
        health = httpx.get(f"{ui}/api/health", timeout=10).status_code
        api_url = os.environ["PREFECT_API_URL"]
        from prefect.settings import PREFECT_API_URL
        print(json.dumps({"ui": ui, "health": health, "api_url": api_url,
                          "prefect_sees": PREFECT_API_URL.value()}))
    print(json.dumps({"after": os.environ.get("PREFECT_API_URL")}))
""")


@pytest.mark.usefixtures("prefect_port_4200")
@linux_only
def test_serve_gets_prefects_own_server_for_as_long_as_it_serves(tmp_path: Path) -> None:
    env = newcomer_env(tmp_path)
    done = subprocess.run([sys.executable, "-c", SERVE_SERVER], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    during, after = (json.loads(line) for line in done.stdout.strip().splitlines()[-2:])
    assert during["health"] == 200
    assert during["api_url"] == during["prefect_sees"] == during["ui"] + "/api"
    assert after == {"after": None}
    log = (tmp_path / "prefect-home" / runtime.SERVER_LOG_FILE).read_text(encoding="utf-8")
    assert log  # `prefect server start`'s own output went there
    port = during["ui"].rsplit(":", 1)[1]
    assert not [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
                if f"--port {port}" in command_line(pid)]


def test_at_most_concurrency_model_calls_are_in_flight(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    library = tmp_path / "library"
    generate(library, 24)
    lock = threading.Lock()
    calls = {"now": 0, "most": 0}
    real_structured = LLM.structured

    def counted(self: LLM, **kwargs: Any) -> Any:
        with lock:
            calls["now"] += 1
            calls["most"] = max(calls["most"], calls["now"])
        try:
            return real_structured(self, **kwargs)
        finally:
            with lock:
                calls["now"] -= 1

    monkeypatch.setattr(LLM, "structured", counted)
    with FakeOpenAI(latency=0.2, responder=grounded_responder) as fake:
        use_as_endpoint(monkeypatch, fake)
        outcomes = run_garden(library, GardenOptions(model="fake-model", concurrency=3))
        asked = len(fake.chat_requests)
    assert [o.status for o in outcomes].count("changed") == 24
    assert asked == 24
    assert calls["most"] == 3  # the endpoint's bound held, and was used to the full


def test_the_semaphore_bounds_calls_on_a_runner_with_more_threads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A deployment's thread pool (Prefect's default) may run more tasks than slots."""
    library = tmp_path / "library"
    generate(library, 12)
    seen: list[int] = []
    real_structured = LLM.structured
    lock = threading.Lock()
    now = [0]

    def counted(self: LLM, **kwargs: Any) -> Any:
        with lock:
            now[0] += 1
            seen.append(now[0])
        try:
            return real_structured(self, **kwargs)
        finally:
            with lock:
                now[0] -= 1

    monkeypatch.setattr(LLM, "structured", counted)
    monkeypatch.setattr(garden_flow, "pattern_threads",
                        lambda _concurrency=None: garden_flow.ThreadPoolTaskRunner(max_workers=12))
    with FakeOpenAI(latency=0.2, responder=grounded_responder) as fake:
        use_as_endpoint(monkeypatch, fake)
        outcomes = run_garden(library, GardenOptions(model="fake-model", concurrency=2))
    assert [o.status for o in outcomes].count("changed") == 12
    assert max(seen) == 2
