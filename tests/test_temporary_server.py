"""The temporary Prefect server a one-off run gets, and the bound on model calls in flight.

``gardener run`` starts Prefect's temporary API server itself, first thing, instead of
letting Prefect start it on the flow's first call: it comes up while the gardener loads,
and the gardener's process never imports Prefect's server package. A server the user
configured is used instead; the run's own ends with it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fake_openai import FakeOpenAI, use_as_endpoint
from shell_env import newcomer_env

from bench.concurrency import generate, grounded_responder
from bench.reliability import descendants, running
from gardener.llm.client import LLM
from gardener.pipeline import garden as garden_flow
from gardener.pipeline import in_process_run, runtime
from gardener.pipeline.garden import GardenOptions, run_garden

ROOT = Path(__file__).resolve().parents[1]

linux_only = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from gardener.pipeline import runtime
    runtime.configure()
    runtime.launch_temporary_server()
    from gardener.pipeline.garden import GardenOptions, run_garden
    outcomes = run_garden(Path(sys.argv[1]), GardenOptions(model="fake-model", concurrency=4))
    print(json.dumps({
        "changed": sum(o.status == "changed" for o in outcomes),
        "server_package_here": "prefect.server.api.server" in sys.modules,
        "api_url": runtime.temporary_api_url(),
    }))
""")


@linux_only
def test_a_run_starts_its_own_server_without_loading_prefects_server_package(
        tmp_path: Path) -> None:
    library = tmp_path / "library"
    generate(library, 6)
    with FakeOpenAI(responder=grounded_responder) as fake:
        env = newcomer_env(tmp_path, OPENAI_BASE_URL=fake.url, OPENAI_API_KEY="test-key")
        done = subprocess.run([sys.executable, "-c", SCRIPT, str(library)], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout.strip().splitlines()[-1])
    assert said["changed"] == 6
    assert said["server_package_here"] is False
    assert said["api_url"].startswith("http://127.0.0.1:")
    # Its history went to the run's own Prefect home, where the server kept its database.
    assert list((tmp_path / "prefect-home").glob("*.db"))


@linux_only
def test_the_cli_server_runs_in_its_own_session_and_ends_with_the_run(tmp_path: Path) -> None:
    library = tmp_path / "library"
    generate(library, 12)
    with FakeOpenAI(latency=0.3, responder=grounded_responder) as fake:
        env = newcomer_env(tmp_path, OPENAI_BASE_URL=fake.url, OPENAI_API_KEY="test-key")
        process = subprocess.Popen(
            [sys.executable, "-m", "gardener", "run", str(library), "--model", "fake-model",
             "--concurrency", "2", "--workers", "0"],
            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            while not fake.chat_requests and time.monotonic() < deadline:
                assert process.poll() is None, process.communicate()
                time.sleep(0.05)
            helpers = descendants(process.pid)
            servers = [pid for pid in helpers if "create_app" in _cmdline(pid)]
            sessions = [os.getsid(pid) for pid in servers]
            _out, err = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 0, err
    assert len(servers) == 1, [_cmdline(pid) for pid in helpers]
    # Ctrl-C in a terminal reaches the run's process group, not its server's.
    assert sessions == servers
    time.sleep(1)
    assert [pid for pid in helpers if running(pid)] == []


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _not_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if this process had never set PREFECT_API_URL (earlier tests' runs did)."""
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv(runtime.OURS, ",".join(
        sorted(runtime._ours(os.environ) - {"PREFECT_API_URL"})))
    monkeypatch.setattr(runtime, "_temporary", None)


def test_no_server_is_launched_when_the_user_set_prefect_api_url(
        monkeypatch: pytest.MonkeyPatch) -> None:
    _not_ours(monkeypatch)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    spawned: list[bool] = []
    monkeypatch.setattr(runtime, "_spawn_temporary", lambda: spawned.append(True))
    runtime.launch_temporary_server()
    assert spawned == [] and runtime.temporary_api_url() is None


def test_a_server_in_prefects_settings_is_used_and_a_launched_one_stopped(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A profile or prefect.toml (not the environment) names the user's server: the one
    launched before Prefect's settings could be read goes, and heartbeats stay as set."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        temporary_settings,
    )

    _not_ours(monkeypatch)
    launched = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    monkeypatch.setattr(runtime, "_temporary", runtime._Temporary(
        process=launched, address="http://127.0.0.1:1", log_path=Path(os.devnull)))
    try:
        with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api",
                                 PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 30}), in_process_run():
            assert PREFECT_API_URL.value() == "http://127.0.0.1:9/api"
            assert PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() == 30
        assert launched.wait(timeout=10) is not None
        assert runtime.temporary_api_url() is None
    finally:
        if launched.poll() is None:
            launched.kill()
            launched.wait()


def test_a_run_on_the_temporary_server_sends_no_heartbeats() -> None:
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY

    with in_process_run():
        assert PREFECT_API_URL.value() == runtime.temporary_api_url() is not None
        assert PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() is None


def test_at_most_concurrency_model_calls_are_in_flight_while_more_patterns_progress(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    library = tmp_path / "library"
    generate(library, 24)
    lock = threading.Lock()
    calls = {"now": 0, "most": 0}
    tasks = {"now": 0, "most": 0}
    real_structured, real_one = LLM.structured, garden_flow.garden_one

    def counted(counter: dict[str, int], call: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            counter["now"] += 1
            counter["most"] = max(counter["most"], counter["now"])
        try:
            return call(*args, **kwargs)
        finally:
            with lock:
                counter["now"] -= 1

    monkeypatch.setattr(LLM, "structured",
                        lambda self, **kw: counted(calls, real_structured, self, **kw))
    monkeypatch.setattr(garden_flow, "garden_one",
                        lambda run, i: counted(tasks, real_one, run, i))
    with FakeOpenAI(latency=0.2, responder=grounded_responder) as fake:
        use_as_endpoint(monkeypatch, fake)
        outcomes = run_garden(library, GardenOptions(model="fake-model", concurrency=3,
                                                     workers=0))
        in_flight_at_server = fake.chat_requests
    assert [o.status for o in outcomes].count("changed") == 24
    assert len(in_flight_at_server) == 24
    assert calls["most"] == 3  # the endpoint's bound held, and was used to the full
    assert tasks["most"] == garden_flow.task_threads(3) > 3  # the next ones waited ready


def test_a_server_that_cannot_start_stops_the_run_with_its_reason(tmp_path: Path) -> None:
    library = tmp_path / "library"
    generate(library, 3)
    before = {p.name: p.read_bytes() for p in library.glob("*.md")}
    env = newcomer_env(tmp_path, OPENAI_BASE_URL="http://127.0.0.1:9/v1", OPENAI_API_KEY="k",
                    PREFECT_API_DATABASE_CONNECTION_URL=(
                        f"sqlite+aiosqlite:///{tmp_path}/no/such/folder/prefect.db"))
    done = subprocess.run([sys.executable, "-m", "gardener", "run", str(library),
                           "--model", "fake-model"], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "Prefect's temporary server exited with code" in done.stderr
    assert "unable to open database file" in done.stderr  # the cause, from Prefect's log
    assert "Traceback (most recent call last)" not in done.stderr.split("Prefect's log")[0]
    assert {p.name: p.read_bytes() for p in library.glob("*.md")} == before


def test_only_a_port_taken_under_it_starts_the_server_again(tmp_path: Path) -> None:
    output = tmp_path / "temporary-server.log"
    output.write_text("ERROR:    [Errno 98] error while attempting to bind on address "
                      "('127.0.0.1', 8123): address already in use\n", encoding="utf-8")
    assert runtime._port_taken(output)
    output.write_text("ERROR:    Application startup failed. Exiting.\n", encoding="utf-8")
    assert not runtime._port_taken(output)
    assert not runtime._port_taken(tmp_path / "missing.log")
