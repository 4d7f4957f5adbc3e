"""The same flows on Prefect's other engines: a Dask task runner, a deployment on a work pool.

The garden flow takes its task runner from Prefect (``garden.with_options(task_runner=...)``);
its tasks rebuild what they need from their parameters in whatever process they land in, so
on a Dask cluster of worker processes it writes the same bytes as on the default thread pool.
The prune flow is deployed from ``flows/prune.py:prune`` to a process work pool of a real
Prefect server (``prefect server start``) and run there by ``prefect worker start``, as
docs/scaling.md shows.
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
from pathlib import Path

import httpx
import pytest
from shell_env import newcomer_env

from gardener.endpoint.fixtures import FixtureMode
from gardener.endpoint.settings import ENDPOINT_VARIABLES
from gardener.model import Status
from gardener.pipeline.options import GardenOptions
from gardener.pipeline.prefect.flows import garden, in_process_run, pattern_threads

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "patterns"
FIXTURES = ROOT / "fixtures"
GOLDEN = Path(__file__).resolve().parent / "golden"
TODAY = dt.date(2026, 2, 19)

needs_dask = pytest.mark.skipif(
    importlib.util.find_spec("prefect_dask") is None,
    reason="prefect-dask is not installed (pip install -e '.[dask]')")


def copy_samples(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(SAMPLES.glob("*.md")):
        if path.name != "README.md":
            (folder / path.name).write_bytes(path.read_bytes())
            (folder / path.name).chmod(0o644)
    return folder


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.md"))}


@pytest.fixture
def no_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@needs_dask
def test_the_garden_flow_on_dask_worker_processes_writes_what_the_threads_write(
        tmp_path: Path, no_endpoint: None) -> None:
    from prefect_dask import DaskTaskRunner

    options = GardenOptions(fixtures=str(FIXTURES), fixture_mode=FixtureMode.REPLAY,
                            today=TODAY)
    threads, dask = copy_samples(tmp_path / "threads"), copy_samples(tmp_path / "dask")
    dask_runner = DaskTaskRunner(cluster_kwargs={
        "n_workers": 2, "processes": True, "threads_per_worker": 1,
        "dashboard_address": None})  # no dashboard port to clash with another cluster's
    with in_process_run():
        on_threads = garden.with_options(task_runner=pattern_threads(4))(str(threads), options)
        on_dask = garden.with_options(task_runner=dask_runner)(str(dask), options)
    assert (sorted((o.slug, o.status) for o in on_threads)
            == sorted((o.slug, o.status) for o in on_dask))
    assert Status.FAILED not in {o.status for o in on_threads}
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


@pytest.fixture
def prefect_server(tmp_path: Path) -> Iterator[dict[str, str]]:
    """``prefect server start`` on a free port with its own home: the environment to use it."""
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


DEPLOY_AND_RUN = textwrap.dedent("""
    import json, sys
    from prefect import flow
    from prefect.deployments import run_deployment

    root, library, report, pool = sys.argv[1:5]
    source = flow.from_source(source=root, entrypoint="flows/prune.py:prune")
    source.deploy(name="prune-test", work_pool_name=pool, parameters={
        "library": library, "options": {"dry_run": True, "report": report}})
    run = run_deployment(name="prune/prune-test", timeout=240)
    print(json.dumps({"state": run.state.type.value if run.state else None,
                      "name": run.name}))
""")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups")
def test_the_prune_flow_deployed_to_a_process_work_pool_completes_on_a_worker(
        tmp_path: Path, prefect_server: dict[str, str]) -> None:
    env = prefect_server
    library = copy_samples(tmp_path / "library")
    before = files(library)
    report = tmp_path / "prune.json"
    pool = "gardener-test"
    made = subprocess.run(_prefect("work-pool", "create", pool, "--type", "process"), env=env,
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stdout + made.stderr
    worker_log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(_prefect("worker", "start", "--pool", pool), env=env, cwd=tmp_path,
                              stdout=worker_log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        done = subprocess.run([sys.executable, "-c", DEPLOY_AND_RUN, str(ROOT), str(library),
                               str(report), pool], env=env, capture_output=True, text=True,
                              timeout=300)
    finally:
        _stop(worker)
        worker_log.close()
    said = (tmp_path / "worker.log").read_text(encoding="utf-8", errors="replace")
    assert done.returncode == 0, done.stderr + said
    run = json.loads(done.stdout.strip().splitlines()[-1])
    assert run["state"] == "COMPLETED", said
    # The worker ran the flow from flows/prune.py on this library: its report, no writes.
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["command"] == "prune" and data["dry_run"] is True
    assert data["totals"]["patterns"] == len(before)
    assert data["totals"]["changed"] > 0
    assert files(library) == before
