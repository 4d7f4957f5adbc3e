"""Ctrl-C during ``gardener run``: a quick, clean stop that keeps what was written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from shell_env import newcomer_env

from gardener.testing.fake_openai import FakeOpenAI
from gardener.testing.libraries import generate
from gardener.testing.processes import descendants, running
from gardener.testing.responders import grounded_responder

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and sessions")


def _default_sigint() -> None:
    # A shell without job control starts background commands ignoring SIGINT; a terminal's
    # foreground command has the default, which is what is tested here.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_ctrl_c_stops_the_run_and_its_server_and_keeps_what_was_written(
        tmp_path: Path) -> None:
    library = tmp_path / "library"
    generate(library, 60)
    before = {p.name: p.read_bytes() for p in library.glob("*.md")}
    with FakeOpenAI(latency=0.4, responder=grounded_responder) as fake:
        env = newcomer_env(tmp_path, OPENAI_BASE_URL=fake.url, OPENAI_API_KEY="test-key")
        # Like a terminal's foreground job: its own process group, Ctrl-C sent to the group.
        process = subprocess.Popen(
            [sys.executable, "-m", "gardener", "run", str(library), "--concurrency", "2",
             "--model", "fake-model"],
            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True, preexec_fn=_default_sigint)
        try:
            deadline = time.monotonic() + 120
            while len(fake.chat_requests) < 6 and time.monotonic() < deadline:
                assert process.poll() is None, process.communicate()
                time.sleep(0.1)
            helpers = descendants(process.pid)  # Prefect's temporary server, its watchdog
            os.killpg(process.pid, signal.SIGINT)
            interrupted = time.monotonic()
            _out, err = process.communicate(timeout=90)
            took = time.monotonic() - interrupted
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 130, err
    assert "interrupted: the patterns written so far are kept and recorded" in err
    assert "Traceback" not in err
    assert took < 30, f"the run took {took:.1f} s to stop"
    time.sleep(1)  # the watchdogs notice within 0.5 s
    assert [pid for pid in helpers if running(pid)] == []
    # What was recorded was written, and nothing else changed halfway.
    state = json.loads((library / ".gardener" / "state.json").read_text(encoding="utf-8"))
    recorded = set(state["patterns"])
    assert recorded, "no pattern was recorded before the interrupt"
    changed = {p.stem for p in library.glob("*.md") if p.read_bytes() != before[p.name]}
    assert recorded <= {p.stem for p in library.glob("*.md")}
    assert changed >= recorded
    assert len(changed) < 60  # it did stop
    assert list(library.glob(".*.tmp")) == []  # no write was cut off halfway
