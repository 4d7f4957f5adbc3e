"""Running one ``gardener run`` for a scenario: its command line, environment and report.

A `Runner` runs the command: in its own process as a user does (`subprocess_runner`, what
the benchmark uses), or in the test's process through Typer's runner (the tests: one Prefect
server for all of them). Either way `gardener_run` gives the exit code, the output and the
JSON report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gardener.testing.libraries import CHECKOUT

ROOT = CHECKOUT
"""Where ``gardener`` runs from, and what its processes get as PYTHONPATH."""
TODAY = "2026-02-19"
MODEL = "fake-model"
ENDPOINT_VARIABLES = ("OPENAI_BASE_URL", "OPENAI_API_KEY", "GARDENER_MODEL", "GARDENER_MODE",
                      "GARDENER_TIMEOUT_S", "GARDENER_MAX_ATTEMPTS", "GARDENER_MAX_WAIT_S")
FAKE_KEY = "sk-test-SECRET-4f9c2b7e1d0a8c6e5b3a"
FAKE_GITHUB_TOKEN = "ghp_TESTSECRETa1b2c3d4e5f6g7h8i9j0k1l2"


@dataclass(frozen=True)
class RunSpec:
    """The command line and environment of one ``gardener run``."""

    concurrency: int = 8
    timeout_s: float = 1.0
    """GARDENER_TIMEOUT_S: short, so a slow answer costs a second, not two minutes."""
    max_attempts: int | None = None
    retries: int = 2
    give_up_after: int | None = None
    deadline_s: float | None = None
    key: str = "bench-key"
    record: Path | None = None
    """Record every answer into this fixtures folder."""
    extra_env: tuple[tuple[str, str], ...] = ()

    def command(self, library: Path, report: Path) -> list[str]:
        args = ["run", str(library), "--model", MODEL, "--today", TODAY, "--report",
                str(report), "--concurrency", str(self.concurrency), "--retries",
                str(self.retries)]
        if self.give_up_after is not None:
            args += ["--give-up-after", str(self.give_up_after)]
        if self.deadline_s is not None:
            args += ["--deadline", f"{self.deadline_s:g}"]
        if self.record is not None:
            args += ["--fixtures", str(self.record), "--record"]
        return args

    def environment(self, url: str) -> dict[str, str | None]:
        """Variables to set (None: unset) on top of the caller's environment."""
        env: dict[str, str | None] = dict.fromkeys(ENDPOINT_VARIABLES)
        env.update({"OPENAI_BASE_URL": url, "OPENAI_API_KEY": self.key,
                    "GARDENER_TIMEOUT_S": f"{self.timeout_s:g}"})
        if self.max_attempts is not None:
            env["GARDENER_MAX_ATTEMPTS"] = str(self.max_attempts)
        env.update(dict(self.extra_env))
        return env


@dataclass(frozen=True)
class Ran:
    """One finished ``gardener run``."""

    exit_code: int
    output: str
    """Everything it printed, stdout then stderr."""
    seconds: float
    report: dict[str, Any]


Runner = Callable[[list[str], Mapping[str, str | None]], tuple[int, str]]
"""Runs ``gardener`` with these arguments and extra environment: (exit code, output)."""


def subprocess_runner(prefect_home: Path) -> Runner:
    """``gardener`` in its own process, as a user runs it (what the benchmark uses)."""

    def run(args: list[str], env: Mapping[str, str | None]) -> tuple[int, str]:
        done = subprocess.run([sys.executable, "-m", "gardener", *args],
                              env=process_env(env, prefect_home), capture_output=True,
                              text=True, cwd=ROOT, timeout=1800)
        return done.returncode, done.stdout + done.stderr

    return run


def process_env(env: Mapping[str, str | None], prefect_home: Path) -> dict[str, str]:
    """The caller's environment without Prefect settings of its own, plus ``env``."""
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("PREFECT_") and k != "GARDENER_PREFECT_DEFAULTS"}
    base.update({"PREFECT_HOME": str(prefect_home), "PYTHONPATH": str(ROOT), "COLUMNS": "200"})
    for name, value in env.items():
        if value is None:
            base.pop(name, None)
        else:
            base[name] = value
    return base


def gardener_run(runner: Runner, library: Path, url: str, report: Path, spec: RunSpec) -> Ran:
    report.unlink(missing_ok=True)
    started = time.perf_counter()
    code, output = runner(spec.command(library, report), spec.environment(url))
    seconds = time.perf_counter() - started
    if code not in (0, 1, 3) or not report.is_file():  # 3: a deadline or budget stopped it
        raise RuntimeError(f"gardener run ended {code} without a report:\n{output[-3000:]}")
    return Ran(code, output, seconds, json.loads(report.read_text(encoding="utf-8")))
