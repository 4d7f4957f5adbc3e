"""The same flows on Prefect's other engines: a Dask task runner, a deployment on a work pool.

The garden flow takes its task runner from Prefect (``garden.with_options(task_runner=...)``);
its tasks rebuild what they need from their parameters in whatever process they land in, so
on a Dask cluster of worker processes it writes the same bytes as on the default thread pool.
The prune and garden flows are deployed from ``flows/prune.py:prune`` and
``flows/garden.py:garden`` to a process work pool of a real Prefect server (``prefect server
start``) and run there by ``prefect worker start``, as docs/scaling.md shows; the garden flow
run by the worker writes the bytes a run in this process writes.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from shell_env import newcomer_env

from gardener.endpoint.fixtures import FixtureMode
from gardener.endpoint.settings import ENDPOINT_VARIABLES
from gardener.model import Status
from gardener.pipeline.options import GardenOptions
from gardener.pipeline.prefect.flows import Outcomes, garden, in_process_run, pattern_threads
from gardener.testing.libraries import copy_samples

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
GOLDEN = Path(__file__).resolve().parent / "golden"
TODAY = dt.date(2026, 2, 19)

needs_dask = pytest.mark.skipif(
    importlib.util.find_spec("prefect_dask") is None,
    reason="prefect-dask is not installed (pip install -e '.[dask]')")




def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.md"))}


@pytest.fixture
def no_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)


OPTIONS = GardenOptions(fixtures=str(FIXTURES), fixture_mode=FixtureMode.REPLAY, today=TODAY)
"""The sample library's recorded answers, replayed: no model, no endpoint."""


@dataclass(frozen=True)
class LocalRun:
    """The garden flow run in this process, on Prefect's thread pool: what the other engines
    must write."""

    folder: Path
    outcomes: Outcomes


@pytest.fixture(scope="module")
def on_threads(tmp_path_factory: pytest.TempPathFactory) -> LocalRun:
    """One local pass over a copy of the samples for the module's comparisons."""
    threads = copy_samples(tmp_path_factory.mktemp("threads"))
    with pytest.MonkeyPatch.context() as patch:
        for name in ENDPOINT_VARIABLES:
            patch.delenv(name, raising=False)
        with in_process_run():
            outcomes = garden.with_options(task_runner=pattern_threads(4))(str(threads),
                                                                           OPTIONS)
    return LocalRun(threads, outcomes)


@needs_dask
def test_the_garden_flow_on_dask_worker_processes_writes_what_the_threads_write(
        tmp_path: Path, no_endpoint: None, on_threads: LocalRun) -> None:
    from prefect_dask import DaskTaskRunner

    threads = on_threads.folder
    dask = copy_samples(tmp_path / "dask")
    dask_runner = DaskTaskRunner(cluster_kwargs={
        "n_workers": 2, "processes": True, "threads_per_worker": 1,
        "dashboard_address": None})  # no dashboard port to clash with another cluster's
    with in_process_run():
        on_dask = garden.with_options(task_runner=dask_runner)(str(dask), OPTIONS)
    assert (sorted((o.slug, o.status) for o in on_threads.outcomes)
            == sorted((o.slug, o.status) for o in on_dask))
    assert Status.FAILED not in {o.status for o in on_threads.outcomes}
    assert files(dask) == files(threads)
    assert files(threads) == files(GOLDEN)
    assert (dask / ".gardener" / "state.json").read_bytes() == (
        threads / ".gardener" / "state.json").read_bytes()


# ---------------------------------------------------------------------------------------------
# A deployment on a process work pool


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _prefect(*args: str) -> list[str]:
    """Prefect's documented command line, from this environment."""
    return [sys.executable, "-m", "prefect", *args]


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """``prefect server start`` on a free port with its own home: the environment to use it.

    One server for the module's deployments (its start-up is most of a test's time)."""
    tmp_path = tmp_path_factory.mktemp("prefect-server")
    port = _free_port()
    env = newcomer_env(tmp_path, PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
                       PREFECT_SERVER_ANALYTICS_ENABLED="false",
                       PREFECT_WORKER_QUERY_SECONDS="1", PREFECT_WORKER_PREFETCH_SECONDS="1")
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(_prefect("server", "start", "--host", "127.0.0.1",
                                       "--port", str(port)),
                              env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
            time.sleep(0.5)
        yield env
    finally:
        _stop(server)
        log.close()


@dataclass(frozen=True)
class WorkPool:
    """A process work pool on the module's server, and the ``prefect worker`` polling it."""

    env: dict[str, str]
    name: str
    log: Path

    def said(self) -> str:
        """What the worker has printed so far (its flow runs' output included)."""
        return self.log.read_text(encoding="utf-8", errors="replace")


WORKER_START_S = 120.0


@pytest.fixture(scope="module")
def work_pool(prefect_server: dict[str, str],
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkPool]:
    """``prefect work-pool create --type process`` and ``prefect worker start`` for it, as
    docs/scaling.md shows. A worker that cannot start here skips the tests, saying why."""
    env = prefect_server
    folder = tmp_path_factory.mktemp("worker")
    pool = WorkPool(env, "gardener-test", folder / "worker.log")
    made = subprocess.run(_prefect("work-pool", "create", pool.name, "--type", "process"),
                          env=env, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stdout + made.stderr
    log = pool.log.open("wb")
    worker = subprocess.Popen(_prefect("worker", "start", "--pool", pool.name), env=env,
                              cwd=folder, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + WORKER_START_S
        while "started!" not in pool.said():
            if worker.poll() is not None or time.monotonic() > deadline:
                why = (f"exited with status {worker.returncode}" if worker.poll() is not None
                       else f"did not say it started within {WORKER_START_S:g} s")
                pytest.skip(f"a Prefect process worker cannot start here: `prefect worker "
                            f"start` {why}; its output ends:\n{pool.said()[-1500:]}")
            time.sleep(0.2)
        yield pool
    finally:
        _stop(worker)
        log.close()


DEPLOY_AND_RUN = textwrap.dedent("""
    import json, sys
    from prefect import flow
    from prefect.deployments import run_deployment

    root, entrypoint, name, pool, parameters = sys.argv[1:6]
    source = flow.from_source(source=root, entrypoint=entrypoint)
    source.deploy(name=name, work_pool_name=pool, parameters=json.loads(parameters))
    run = run_deployment(name=f"{source.name}/{name}", timeout=240)
    print(json.dumps({"state": run.state.type.value if run.state else None,
                      "name": run.name}))
""")


def deploy_and_run(pool: WorkPool, entrypoint: str, name: str,
                   parameters: dict[str, Any]) -> str:
    """Deploy ``entrypoint`` of this checkout to ``pool``, run it there and wait (at most 4
    minutes); the flow run's final state."""
    done = subprocess.run([sys.executable, "-c", DEPLOY_AND_RUN, str(ROOT), entrypoint, name,
                           pool.name, json.dumps(parameters)], env=pool.env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr + pool.said()
    state: str = json.loads(done.stdout.strip().splitlines()[-1])["state"]
    return state


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups")
def test_the_prune_flow_deployed_to_a_process_work_pool_completes_on_a_worker(
        tmp_path: Path, work_pool: WorkPool) -> None:
    library = copy_samples(tmp_path / "library")
    before = files(library)
    report = tmp_path / "prune.json"
    state = deploy_and_run(work_pool, "flows/prune.py:prune", "prune-test", {
        "library": str(library), "options": {"dry_run": True, "report": str(report)}})
    assert state == "COMPLETED", work_pool.said()
    # The worker ran the flow from flows/prune.py on this library: its report, no writes.
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["command"] == "prune" and data["dry_run"] is True
    assert data["totals"]["patterns"] == len(before)
    assert data["totals"]["changed"] > 0
    assert files(library) == before


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups")
def test_the_garden_flow_deployed_to_a_process_work_pool_writes_what_a_local_run_writes(
        tmp_path: Path, work_pool: WorkPool, on_threads: LocalRun) -> None:
    """``flows/garden.py:garden`` deployed and run by the worker, in a flow-run process of its
    own, replaying fixtures: the files and the state it writes are a local run's."""
    here = on_threads.folder
    assert Status.FAILED not in {o.status for o in on_threads.outcomes}
    there = copy_samples(tmp_path / "there")
    before = files(there)
    report = tmp_path / "garden.json"
    state = deploy_and_run(work_pool, "flows/garden.py:garden", "garden-test", {
        "library": str(there), "options": {**OPTIONS.model_dump(mode="json", exclude_unset=True),
                                           "report": str(report)}})
    assert state == "COMPLETED", work_pool.said()
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["command"] == "garden"
    assert sorted((p["slug"], p["status"]) for p in data["patterns"]) == sorted(
        (o.slug, o.status.value) for o in on_threads.outcomes)
    assert files(there) == files(here) != before
    assert (there / ".gardener" / "state.json").read_bytes() == (
        here / ".gardener" / "state.json").read_bytes()
