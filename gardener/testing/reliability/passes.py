"""Scenarios of whole passes: random faults, a dead endpoint, a deadline, concurrent edits.

Each builds a generated library in ``workdir``, serves a fake model on loopback, runs
``gardener run`` through a `Runner` (once or more) and returns what happened, counted and
checked (`gardener.testing.reliability.checks`).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gardener.library.state import load_state
from gardener.testing.fake_openai import FakeOpenAI, Faults
from gardener.testing.libraries import generate
from gardener.testing.reliability.checks import (
    FileCheck,
    check_files,
    fingerprint,
    offered_targets,
    reason_of,
    snapshot,
    unexplained,
)
from gardener.testing.reliability.run import Runner, RunSpec, gardener_run
from gardener.testing.responders import asked_slug, grounded_responder


@dataclass
class PassRun:
    seconds: float
    totals: dict[str, Any]
    reasons: Counter[str]
    check: FileCheck
    unexplained: list[str]
    salvaged: int
    """Patterns whose re-asks ran out, gardened with what salvage kept."""


@dataclass
class FaultPass:
    patterns: int
    rate: float
    runs: list[PassRun]
    faults: dict[str, int]
    requests: int
    recorded: int
    """Patterns in the state after the last run: gardened and remembered."""

    @property
    def done(self) -> bool:
        last = self.runs[-1]
        return last.totals["failed"] == 0 and self.recorded == self.patterns


def fault_pass(runner: Runner, workdir: Path, *, patterns: int, rate: float, seed: int,
               spec: RunSpec, slow_s: float = 3.0, max_runs: int = 4) -> FaultPass:
    """Garden ``patterns`` generated patterns while ``rate`` of the requests misbehave,
    re-running until a run fails nothing (at most ``max_runs``)."""
    library = workdir / "faults"
    originals = snapshot(generate(library, patterns))
    faults = Faults(rate=rate, seed=seed, slow_s=slow_s)
    runs: list[PassRun] = []
    with FakeOpenAI(responder=grounded_responder, faults=faults) as fake:
        for k in range(max_runs):
            ran = gardener_run(runner, library, fake.url, workdir / f"faults-{k}.json", spec)
            failed = [p for p in ran.report["patterns"] if p["status"] == "failed"]
            runs.append(PassRun(
                ran.seconds, ran.report["totals"], Counter(reason_of(p["error"]) for p in failed),
                check_files(originals, offered_targets(fake), library),
                unexplained(ran.report, originals),
                sum(bool(p.get("detail", {}).get("salvaged")) and p["status"] != "failed"
                    for p in ran.report["patterns"])))
            if not failed:
                break
        counts, requests = fake.fault_counts(), len(fake.chat_requests)
    return FaultPass(patterns, rate, runs, counts, requests, len(load_state(library)))


# ---------------------------------------------------------------------------------------------
# Scenario: a dead endpoint, a deadline


@dataclass
class Halted:
    patterns: int
    seconds: float
    requests: int
    totals: dict[str, Any]
    reasons: Counter[str]
    check: FileCheck
    second: dict[str, Any] | None = None
    """Totals of the run after, when the scenario makes one."""


def dead_endpoint(runner: Runner, workdir: Path, *, patterns: int, spec: RunSpec) -> Halted:
    """Every request answered 503: the pass must fail every pattern, soon, with reasons."""
    library = workdir / "dead"
    originals = snapshot(generate(library, patterns))
    with FakeOpenAI(faults=Faults(rate=1.0, kinds=("503",))) as fake:
        ran = gardener_run(runner, library, fake.url, workdir / "dead.json", spec)
        requests = len(fake.chat_requests)
    failed = [p for p in ran.report["patterns"] if p["status"] == "failed"]
    return Halted(patterns, ran.seconds, requests, ran.report["totals"],
                  Counter(reason_of(p["error"]) for p in failed), check_files(originals))


def deadline(runner: Runner, workdir: Path, *, patterns: int, latency: float,
             spec: RunSpec) -> Halted:
    """A healthy but slow endpoint and a deadline: the run stops asking at the deadline,
    the patterns left fail with that reason, and the next run (no deadline) gardens them."""
    library = workdir / "deadline"
    originals = snapshot(generate(library, patterns))
    with FakeOpenAI(responder=grounded_responder, latency=latency) as fake:
        ran = gardener_run(runner, library, fake.url, workdir / "deadline.json", spec)
        requests = len(fake.chat_requests)
        after = gardener_run(runner, library, fake.url, workdir / "deadline-2.json",
                             RunSpec(concurrency=spec.concurrency, timeout_s=spec.timeout_s))
    failed = [p for p in ran.report["patterns"] if p["status"] == "failed"]
    return Halted(patterns, ran.seconds, requests, ran.report["totals"],
                  Counter(reason_of(p["error"]) for p in failed), check_files(originals),
                  second=after.report["totals"])


class EditingResponder:
    """Grounded answers; for the chosen slugs, the file is edited (as a person would) while
    the model is "thinking" about it, once."""

    NOTE = "\nA line a person added while the gardener was busy with this pattern.\n"

    def __init__(self, library: Path, slugs: Iterable[str]) -> None:
        self.library = library
        self.pending = set(slugs)
        self.edited: list[str] = []

    def __call__(self, body: dict[str, Any]) -> dict[str, Any]:
        slug = asked_slug(body)
        if slug in self.pending:
            self.pending.discard(slug)
            path = self.library / f"{slug}.md"
            path.write_bytes(path.read_bytes() + self.NOTE.encode())
            self.edited.append(slug)
        return grounded_responder(body)


@dataclass
class Edits:
    edited: list[str]
    first: dict[str, str]
    """Status of each edited pattern in the run that raced the edit."""
    untouched: int
    """Edited files holding exactly the person's text after that run."""
    recorded_after_first: list[str]
    second: dict[str, str]
    kept: int
    """Edited files still holding the person's edit once the next run gardened them."""
    others_first: Counter[str]
    check: FileCheck
    """After the next run, against the person's text for the edited files."""


def concurrent_edits(runner: Runner, workdir: Path, *, patterns: int, edits: int,
                     seed: int, spec: RunSpec) -> Edits:
    """The model's answer for some patterns comes after a person edited their file: the
    pass must not write those (CONFLICT), nor record them; the next run gardens them."""
    library = workdir / "edits"
    paths = generate(library, patterns)
    originals = snapshot(paths)
    chosen = sorted(random.Random(seed).sample([p.stem for p in paths], edits))
    responder = EditingResponder(library, chosen)
    with FakeOpenAI(responder=responder) as fake:
        first = gardener_run(runner, library, fake.url, workdir / "edits-1.json", spec)
        by_hand = {library / f"{s}.md": originals[library / f"{s}.md"]
                   + EditingResponder.NOTE.encode() for s in chosen}
        untouched = sum(path.read_bytes() == text for path, text in by_hand.items())
        state = load_state(library)
        second = gardener_run(runner, library, fake.url, workdir / "edits-2.json", spec)
        check = check_files({**originals, **by_hand}, offered_targets(fake), library)
    status1 = {p["slug"]: p["status"] for p in first.report["patterns"]}
    status2 = {p["slug"]: p["status"] for p in second.report["patterns"]}
    kept = sum(fingerprint(path.read_bytes(), path) == fingerprint(text, path)
               for path, text in by_hand.items())
    return Edits(
        edited=responder.edited, first={s: status1[s] for s in chosen}, untouched=untouched,
        recorded_after_first=[s for s in chosen if s in state],
        second={s: status2[s] for s in chosen}, kept=kept,
        others_first=Counter(v for s, v in status1.items() if s not in chosen), check=check)
