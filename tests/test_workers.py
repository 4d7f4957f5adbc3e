"""Worker processes that settle patterns (gardener.pipeline.workers): same files, same report, and a
worker that dies or hangs costs nothing but the time to notice it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI, use_as_endpoint
from helpers_text import CORPUS, need
from test_flows import FIXTURES, GOLDEN, TODAY, copy_samples, gardener, report_of

from bench.concurrency import grounded_responder
from bench.reliability import running
from gardener.pipeline import workers as workers_mod
from gardener.pipeline.workers import Workers, auto_workers, can_fork, forked_workers

ROOT = Path(__file__).resolve().parents[1]

needs_fork = pytest.mark.skipif(not can_fork(), reason="this platform has no fork()")


def where(tag: str) -> tuple[str, int]:
    return tag, os.getpid()


def dies_in_a_worker(parent: int) -> str:
    if os.getpid() != parent:
        os._exit(3)
    return "settled here"


def hangs_in_a_worker(parent: int) -> str:
    if os.getpid() != parent:
        time.sleep(60)
    return "settled here"


def test_one_worker_per_core_beyond_the_first_two_at_most_four() -> None:
    assert [auto_workers(n) for n in (1, 2, 3, 4, 6, 16)] == [0, 0, 1, 2, 4, 4]


def test_without_a_pool_a_job_runs_in_this_process() -> None:
    workers = Workers(0)
    assert workers.call(where, "x") == ("x", os.getpid())
    assert workers.jobs == 0 and workers.fallbacks == 0


@needs_fork
def test_jobs_run_in_forked_workers_and_their_cpu_is_counted() -> None:
    with forked_workers(2) as workers:
        results = [workers.call(where, str(n)) for n in range(6)]
    assert [tag for tag, _ in results] == [str(n) for n in range(6)]
    assert {pid for _, pid in results}.isdisjoint({os.getpid()})
    assert workers.jobs == 6 and workers.fallbacks == 0 and workers.problem is None
    assert workers.pool is None  # shut down when the block ended
    summary = workers.summary()
    assert summary["processes"] == 2 and summary["patterns"] == 6
    assert isinstance(summary["cpu_s"], float) and summary["cpu_s"] >= 0


def test_zero_workers_forks_nothing() -> None:
    with forked_workers(0) as workers:
        assert workers.pool is None
        assert workers.call(where, "a") == ("a", os.getpid())


@needs_fork
def test_a_worker_that_dies_leaves_the_job_and_later_ones_to_this_process(
        caplog: pytest.LogCaptureFixture) -> None:
    with forked_workers(1) as workers:
        assert workers.call(dies_in_a_worker, os.getpid()) == "settled here"
        assert workers.pool is None
        assert workers.call(where, "next") == ("next", os.getpid())
    assert workers.fallbacks == 1 and workers.jobs == 0
    assert workers.problem is not None and "died" in workers.problem
    assert workers.summary()["problem"] == workers.problem
    assert any("worker processes stopped" in r.getMessage() for r in caplog.records)


@needs_fork
def test_a_worker_that_hangs_is_stopped_and_the_job_settled_here(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers_mod, "JOB_TIMEOUT_S", 1.0)
    started = time.monotonic()
    with forked_workers(1) as workers:
        processes = list(getattr(workers.pool, "_processes", {}).values())
        assert workers.call(hangs_in_a_worker, os.getpid()) == "settled here"
    assert time.monotonic() - started < 30
    assert workers.problem is not None and "no answer" in workers.problem
    for process in processes:
        process.join(timeout=10)
        assert not process.is_alive()


WATCHED = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, sys.argv[1])
    from gardener.pipeline.workers import forked_workers
    with forked_workers(1) as workers:
        print(workers.call(os.getpid), flush=True)
        time.sleep(60)
""")


@needs_fork
def test_workers_end_when_the_flow_process_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", WATCHED, str(ROOT)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        worker = int(parent.stdout.readline())
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and running(worker):
            time.sleep(0.1)
        assert not running(worker), f"worker {worker} outlived the flow's process"
    finally:
        if parent.poll() is None:
            parent.kill()


@needs_fork
def test_a_pass_with_workers_writes_the_golden_files(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    library = copy_samples(tmp_path / "library")
    report = tmp_path / "report.json"
    result = gardener(str(library), "--fixtures", str(FIXTURES), "--replay", "--today", TODAY,
                      "--report", str(report), "--workers", "2")
    assert result.exit_code == 0, result.output
    for path in sorted(library.glob("*.md")):
        assert path.read_bytes() == (GOLDEN / path.name).read_bytes(), f"{path.name} differs"
    data = report_of(report)
    assert data["workers"]["processes"] == 2
    # Every pattern the model answered was settled by a worker, none in the flow's process.
    assert data["workers"]["patterns"] == data["totals"]["requests"]
    assert "settled_here" not in data["workers"] and "problem" not in data["workers"]


@needs_fork
def test_a_dry_run_with_workers_shows_the_same_diffs(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    outputs = {}
    library = tmp_path / "library"
    for workers in ("0", "2"):
        if library.exists():
            shutil.rmtree(library)
        copy_samples(library)
        before = {p.name: p.read_bytes() for p in library.glob("*.md")}
        report = tmp_path / f"report-{workers}.json"
        result = gardener(str(library), "--fixtures", str(FIXTURES), "--replay", "--today",
                          TODAY, "--dry-run", "--report", str(report), "--workers", workers)
        assert result.exit_code == 0, result.output
        assert {p.name: p.read_bytes() for p in library.glob("*.md")} == before
        rows = report_of(report)["patterns"]
        assert "+++ " in result.stdout  # the diffs, printed
        outputs[workers] = (result.stdout, json.dumps(rows, sort_keys=True))
    assert outputs["0"] == outputs["2"]


def test_a_pass_forks_workers_only_when_asked_or_when_it_is_large_enough(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from gardener.pipeline.garden import GardenOptions, _worker_count

    monkeypatch.setattr(workers_mod, "auto_workers", lambda cores=None: 3)
    assert _worker_count(GardenOptions(), workers_mod.MIN_PATTERNS - 1) == 0
    assert _worker_count(GardenOptions(), workers_mod.MIN_PATTERNS) == 3
    assert _worker_count(GardenOptions(workers=2), 1) == 2  # asked for: whatever the size
    assert _worker_count(GardenOptions(workers=0), 10_000) == 0


@needs_fork
@pytest.mark.corpus
def test_the_real_corpus_gardened_with_a_worker_is_byte_identical(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """330 real files, with all their mess (two that do not parse, two slug clashes): the same
    bytes, state and report whether a worker process or the flow's settled them."""
    corpus = need(CORPUS)
    with FakeOpenAI(responder=grounded_responder) as fake:
        use_as_endpoint(monkeypatch, fake)
        reports = {}
        for workers in ("0", "1"):
            library = tmp_path / f"corpus-{workers}"
            shutil.copytree(corpus, library)
            for path in library.rglob("*"):  # the shared copy may be read-only
                path.chmod(path.stat().st_mode | stat.S_IWUSR)
            report = tmp_path / f"report-{workers}.json"
            result = gardener(str(library), "--concurrency", "8", "--model", "fake-model",
                              "--today", TODAY, "--report", str(report), "--workers", workers)
            assert result.exit_code == 1, result.output  # the corpus's four bad files
            reports[workers] = report_of(report)
    assert reports["0"]["totals"] == reports["1"]["totals"]
    assert reports["0"]["totals"]["changed"] > 300
    assert reports["1"]["workers"]["patterns"] >= reports["1"]["totals"]["changed"]
    first, second = tmp_path / "corpus-0", tmp_path / "corpus-1"
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for name in files:
        assert (first / name).read_bytes() == (second / name).read_bytes(), f"{name} differs"
