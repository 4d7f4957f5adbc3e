"""Scenario: secrets. A recognizable fake key and GitHub token, a server that quotes them
back in every answer and error, fixtures recorded; then every artifact is scanned for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from gardener.testing.fake_openai import FakeOpenAI, Faults
from gardener.testing.libraries import generate
from gardener.testing.reliability.hostile import pattern_file
from gardener.testing.reliability.run import (
    FAKE_GITHUB_TOKEN,
    FAKE_KEY,
    Runner,
    RunSpec,
    gardener_run,
)
from gardener.testing.responders import grounded_responder


@dataclass
class Secrets:
    artifacts: int
    """Files and outputs scanned."""
    hits: list[str]
    runs: list[int]
    """Exit codes: the run with the right key, then the one the server refuses."""
    faults: dict[str, int]
    echoed: int
    """Server answers (successes and errors) that quoted the key back."""


SECRETS = (FAKE_KEY, FAKE_GITHUB_TOKEN, FAKE_KEY[8:], FAKE_GITHUB_TOKEN[4:])


def secret_pass(runner: Runner, workdir: Path, *, patterns: int, spec: RunSpec,
                prefect_home: Path, extra_texts: Callable[[], Iterable[tuple[str, str]]] = tuple,
                ) -> Secrets:
    """Two runs with a recognizable fake key and GitHub token in the environment, against a
    server that quotes the Authorization header back in every answer and error (30% of the
    requests fail), recording fixtures; the second with a key the server refuses (401,
    quoting it). Then every artifact is scanned for the secrets."""
    library = workdir / "secrets"
    fixtures = workdir / "secret-fixtures"
    generate(library, patterns)
    keyed = RunSpec(concurrency=spec.concurrency, timeout_s=spec.timeout_s, retries=spec.retries,
                    key=FAKE_KEY, record=fixtures,
                    extra_env=(("GITHUB_TOKEN", FAKE_GITHUB_TOKEN),))
    outputs: list[tuple[str, str]] = []
    codes: list[int] = []
    faults = Faults(rate=0.3, seed=7, kinds=("429", "500", "503", "invalid", "drop"))
    with FakeOpenAI(responder=grounded_responder, api_key=FAKE_KEY, echo_auth=True,
                    faults=faults) as fake:
        ran = gardener_run(runner, library, fake.url, workdir / "secrets-1.json", keyed)
        outputs.append(("output of the run", ran.output))
        codes.append(ran.exit_code)
        counts = fake.fault_counts()
        echoed = len(fake.chat_requests) - counts.get("drop", 0)
    (library / "edited.md").write_text(pattern_file("edited"), encoding="utf-8")
    with FakeOpenAI(api_key="sk-the-server-wants-another-key-0000") as refusing:
        ran = gardener_run(runner, library, refusing.url, workdir / "secrets-2.json",
                           RunSpec(concurrency=1, key=FAKE_KEY, record=fixtures,
                                   extra_env=(("GITHUB_TOKEN", FAKE_GITHUB_TOKEN),)))
        outputs.append(("output of the refused run", ran.output))
        codes.append(ran.exit_code)
    outputs += list(extra_texts())
    hits, scanned = scan([workdir, prefect_home], outputs)
    return Secrets(scanned, hits, codes, counts, echoed)


def scan(folders: Iterable[Path], texts: Iterable[tuple[str, str]]) -> tuple[list[str], int]:
    """Where any of ``SECRETS`` occurs: every file under ``folders`` (bytes, so databases and
    logs count too) and every named text; and how many artifacts were looked at."""
    hits: list[str] = []
    scanned = 0
    needles = [s.encode() for s in SECRETS]
    for folder in folders:
        for path in folder.rglob("*"):
            if not path.is_file() or path.is_symlink():
                continue
            scanned += 1
            data = path.read_bytes()
            hits += [f"{path}: {n.decode()[:12]}..." for n in needles if n in data]
    for name, text in texts:
        scanned += 1
        hits += [f"{name}: {s[:12]}..." for s in SECRETS if s in text]
    return hits, scanned
