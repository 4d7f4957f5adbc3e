"""Scenarios of crashes: ``write_atomic`` and ``gardener run`` SIGKILLed at random moments,
and a state file cut in half. Every file must be as it was or fully written afterwards.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gardener.library.state import load_state
from gardener.library.write import leftovers, remove_leftovers
from gardener.testing.fake_openai import FakeOpenAI
from gardener.testing.libraries import generate
from gardener.testing.processes import descendants, running
from gardener.testing.reliability.checks import FileCheck, check_files, offered_targets, snapshot
from gardener.testing.reliability.run import ROOT, Runner, RunSpec, gardener_run, process_env
from gardener.testing.responders import grounded_responder

WRITER = """
import sys
from pathlib import Path
from gardener.library.write import write_atomic
path = Path(sys.argv[1])
texts = ["a" * int(sys.argv[2]), "b" * int(sys.argv[3])]
print("ready", flush=True)
i = 0
while True:
    write_atomic(path, texts[i % 2])
    i += 1
"""


@dataclass
class WriteKills:
    kills: int
    torn: int
    """Kills after which the file was neither the old nor the new text."""
    temp_left: int
    """Kills that left a temporary file behind (cleaned by the next pass)."""
    cleaned: int


def kill_writes(workdir: Path, *, kills: int, seed: int, sizes: tuple[int, int] = (
        400_000, 900_000)) -> WriteKills:
    """``write_atomic`` in a loop in a child process, SIGKILLed at random moments."""

    rng = random.Random(seed)
    folder = workdir / "writes"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pattern.md"
    path.write_bytes(b"a" * sizes[0])
    allowed = {b"a" * sizes[0], b"b" * sizes[1]}
    torn = temp_left = cleaned = 0
    for _ in range(kills):
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(sizes[0]),
                                  str(sizes[1])], stdout=subprocess.PIPE, text=True,
                                 env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
        assert child.stdout is not None
        child.stdout.readline()
        time.sleep(rng.uniform(0.0, 0.15))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        torn += path.read_bytes() not in allowed
        found = leftovers(folder)
        temp_left += bool(found)
        cleaned += len(remove_leftovers(folder))
    return WriteKills(kills, torn, temp_left, cleaned)


@dataclass
class Kill:
    after_s: float
    requests: int
    """Model requests the killed run had made."""
    check: FileCheck
    state_ok: bool
    """state.json parsed cleanly (or was absent) after the kill."""
    orphans: bool
    """A process the killed run started (Prefect's temporary server) outlived it."""


@dataclass
class Crashes:
    patterns: int
    kills: list[Kill]
    resumed: dict[str, Any]
    resumed_requests: int
    final: FileCheck
    recorded: int


def crash_pass(runner: Runner, workdir: Path, *, patterns: int, kills: int, seed: int,
               prefect_home: Path, spec: RunSpec, latency: float = 0.1) -> Crashes:
    """``gardener run`` SIGKILLed at a random moment after its first model request, ``kills``
    times in a row, then a run to the end: every file must be as it was or fully written."""
    rng = random.Random(seed)
    library = workdir / "crash"
    originals = snapshot(generate(library, patterns))
    work = patterns * latency / spec.concurrency
    records: list[Kill] = []
    with FakeOpenAI(responder=grounded_responder, latency=latency) as fake:
        for k in range(kills):
            asked = len(fake.chat_requests)
            report = workdir / f"crash-{k}.json"
            child = subprocess.Popen(
                [sys.executable, "-m", "gardener", *spec.command(library, report)],
                env=process_env(spec.environment(fake.url), prefect_home), cwd=ROOT,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            _wait_for(_asked_or_ended(fake, asked, child))
            delay = rng.uniform(0.0, work)
            time.sleep(delay)
            # Its server and watchdogs; the server runs in a session of its own.
            helpers = descendants(child.pid)
            child.send_signal(signal.SIGKILL)
            child.wait()
            orphans = end_all(helpers)
            state = load_state(library)
            records.append(Kill(delay, len(fake.chat_requests) - asked,
                                check_files(originals, offered_targets(fake), library),
                                not state.problems, orphans))
        asked = len(fake.chat_requests)
        resumed = gardener_run(runner, library, fake.url, workdir / "crash-final.json", spec)
        final = check_files(originals, offered_targets(fake), library)
        resumed_requests = len(fake.chat_requests) - asked
    return Crashes(patterns, records, resumed.report["totals"], resumed_requests, final,
                   len(load_state(library)))


def end_all(pids: list[int], grace_s: float = 5.0) -> bool:
    """End what is left of ``pids`` (a killed process's helpers) after ``grace_s``; whether
    anything was left (a server or worker outliving the process that started it)."""
    for _ in range(int(grace_s * 10)):
        if not any(running(p) for p in pids):
            return False
        time.sleep(0.1)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in pids:
            if running(p):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, sig)
        for _ in range(50):
            if not any(running(p) for p in pids):
                return True
            time.sleep(0.1)
    return True


def _asked_or_ended(fake: FakeOpenAI, asked: int,
                    child: subprocess.Popen[bytes]) -> Callable[[], bool]:
    """Whether the model got a request beyond the first ``asked``, or ``child`` ended."""
    return lambda: len(fake.chat_requests) > asked or child.poll() is not None


def _wait_for(condition: Callable[[], bool], timeout: float = 300.0) -> None:
    deadline_at = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline_at:
            raise TimeoutError("the gardener never asked the model")
        time.sleep(0.02)


@dataclass
class CorruptState:
    problems: list[str]
    backup: bool
    totals: dict[str, Any]
    recorded: int


def corrupt_state(runner: Runner, workdir: Path, *, patterns: int, spec: RunSpec) -> CorruptState:
    """A state.json cut in half (a crash of another tool, a bad merge): reported, kept as a
    .bak, and the run goes on as if there were no state."""
    library = workdir / "state"
    generate(library, patterns)
    with FakeOpenAI(responder=grounded_responder) as fake:
        gardener_run(runner, library, fake.url, workdir / "state-1.json", spec)
        path = library / ".gardener" / "state.json"
        text = path.read_bytes()
        path.write_bytes(text[: len(text) // 2])
        ran = gardener_run(runner, library, fake.url, workdir / "state-2.json", spec)
    return CorruptState(list(ran.report.get("state_problems", [])),
                        (path.parent / "state.json.bak").is_file(), ran.report["totals"],
                        len(load_state(library)))
