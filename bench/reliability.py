"""Never lose a byte: gardening passes under faults, kills, concurrent edits and hostile input.

The nine scenarios of ``gardener.testing.reliability`` at size, each ``gardener run`` in its
own process (as a user runs it) against ``gardener.testing.fake_openai`` on loopback; every
file is checked afterwards, and what happened is counted. The table goes to
docs/reliability.md:

    .venv/bin/python bench/reliability.py                   # 300 patterns, writes the doc
    .venv/bin/python bench/reliability.py --patterns 60 --no-write

What a file may be after any pass, killed or not: byte-identical to what it was, or fully
written and verified (``gardener.steps.verify``: the same bytes and data outside ``graph_garden``,
a garden that parses, every new link among the candidates the model was offered). Anything
else counts as corrupt. ``tests/test_reliability.py`` runs the same scenarios, smaller.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import commit, machine  # noqa: E402
from gardener.testing.reliability import (  # noqa: E402
    CorruptState,
    Crashes,
    Edits,
    FaultPass,
    Halted,
    HostileResult,
    RunSpec,
    Secrets,
    WriteKills,
    concurrent_edits,
    corrupt_state,
    crash_pass,
    dead_endpoint,
    deadline,
    fault_pass,
    hostile,
    kill_writes,
    secret_pass,
    subprocess_runner,
)

DOC = ROOT / "docs" / "reliability.md"
ATTACKS = "## Attacks on the bot's edges"


# ---------------------------------------------------------------------------------------------
# The table


def _count(counts: Mapping[str, int], kind: str) -> int:
    return int(counts.get(kind, 0))


FAULT_ROWS = (
    ("429", "HTTP 429 with `Retry-After`", "retried by the client after the wait asked for"),
    ("429-no-retry-after", "HTTP 429 without `Retry-After`",
     "retried by the client with jittered exponential backoff"),
    ("500", "HTTP 500", "retried by the client with backoff"),
    ("503", "HTTP 503", "retried by the client with backoff"),
    ("slow", "answer slower than the client timeout", "timed out, retried by the client"),
    ("drop", "connection dropped without an answer", "retried by the client"),
    ("truncated", "JSON cut in half", "re-asked (instructor); salvaged item by item when the "
     "re-asks run out"),
    ("invalid", "JSON that does not fit the schema", "re-asked; salvaged or failed"),
    ("invented", "links to targets never offered", "refused by the per-pattern `Literal` of "
     "candidates, re-asked; salvage keeps only offered targets"),
)


def table(results: Mapping[str, Any], seconds: float) -> str:
    faults: FaultPass = results["faults"]
    lines = [
        "# Reliability: faults, crashes, concurrent edits, hostile input and secrets",
        "",
        "Every number below comes from one run of",
        "",
        f"    .venv/bin/python bench/reliability.py --patterns {faults.patterns} "
        f"--seed {results['seed']}",
        "",
        f"measured {time.strftime('%Y-%m-%d')} at commit {commit()} on {machine()}, "
        f"{seconds:.0f} s in all. Each scenario runs the real `gardener run` command (its own "
        "process) against `gardener.testing.fake_openai` on loopback, then checks every file: "
        "it must be byte-identical to what it was, or fully written and verified (same bytes "
        "and data outside `graph_garden`, a garden that parses, every new link among the "
        "candidates the model was offered). `tests/test_reliability.py` runs the same "
        "scenarios, smaller, in the default test suite.",
        "",
    ]
    lines += _fault_section(faults)
    lines += _halt_section(results["dead"], results["deadline"])
    lines += _crash_section(results["crashes"], results["writes"], results["state"])
    lines += _edit_section(results["edits"])
    lines += _hostile_section(results["hostile"])
    lines += _secret_section(results["secrets"])
    return "\n".join(lines).rstrip("\n") + "\n"


def _fault_section(f: FaultPass) -> list[str]:
    total = sum(f.faults.values())
    faulty = total - f.faults.get("ok", 0)
    lines = [
        f"## Faults: {f.patterns} patterns, {f.rate:.0%} of the requests misbehave",
        "",
        f"{total} model requests in all ({faulty} faulty, drawn by a seeded generator); "
        "client timeout 1 s, slow answers take 3 s; the client's defaults otherwise "
        "(6 attempts per request, 2 re-asks, 2 Prefect retries).",
        "",
        "| fault | times | what the gardener does |",
        "|---|---:|---|",
    ]
    for kind, name, outcome in FAULT_ROWS:
        lines.append(f"| {name} | {_count(f.faults, kind)} | {outcome} |")
    lines += ["", "| run | seconds | changed | unchanged | skipped | failed (reasons) "
              "| salvaged | files as they were | files gardened | corrupt | unexplained |",
              "|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    for k, run in enumerate(f.runs, 1):
        t = run.totals
        reasons = ", ".join(f"{n} {r}" for r, n in run.reasons.most_common()) or "-"
        bad = len(run.check.corrupt) + len(run.check.ungrounded)
        lines.append(f"| {k} | {run.seconds:.0f} | {t['changed']} | {t['unchanged']} "
                     f"| {t['skipped']} | {t['failed']} ({reasons}) | {run.salvaged} "
                     f"| {run.check.original} "
                     f"| {run.check.gardened} | {bad} | {len(run.unexplained)} |")
    verdict = ("every pattern gardened and recorded" if f.done
               else f"NOT DONE: {f.recorded} of {f.patterns} recorded")
    lines += ["", f"Result: {verdict} after {len(f.runs)} run(s); no file corrupted, none "
              "half-written, no temporary file left; every failure in a report names its "
              "reason." if f.done and all(r.check.sound and not r.unexplained
                                          for r in f.runs) else f"Result: {verdict}; see above.",
              ""]
    return lines


def _halt_section(dead: Halted, late: Halted) -> list[str]:
    reasons = ", ".join(f"{n} {r}" for r, n in dead.reasons.most_common())
    late_reasons = ", ".join(f"{n} {r}" for r, n in late.reasons.most_common())
    second = late.second or {}
    return [
        "## Bounded retries: a dead endpoint, a deadline",
        "",
        "| scenario | patterns | seconds | model requests | outcome |",
        "|---|---:|---:|---:|---|",
        f"| every request answered 503, the client's defaults (6 attempts, 2 Prefect retries "
        f"15 s apart, `--give-up-after 5`) | {dead.patterns} | {dead.seconds:.0f} "
        f"| {dead.requests} | {dead.totals['failed']} failed ({reasons}); "
        f"{dead.check.original} files as they were |",
        f"| answers take 1 s, concurrency 4, `--deadline 5` | {late.patterns} | {late.seconds:.0f} "
        f"| {late.requests} | {late.totals['changed']} gardened, {late.totals['failed']} failed "
        f"({late_reasons}); the next run gardened {second.get('changed', 0)} and skipped "
        f"{second.get('skipped', 0)} |",
        "",
        "One request is bounded by `GARDENER_MAX_ATTEMPTS` (6) and `GARDENER_MAX_WAIT_S` "
        "(300 s), one pattern by `--retries` (2) and a 900 s budget, the run by "
        "`--give-up-after` (5 failed calls in a row stop all further calls) and `--deadline`.",
        "",
    ]


def _crash_section(c: Crashes, w: WriteKills, s: CorruptState) -> list[str]:
    lines = [
        "## Crashes: SIGKILL at random moments",
        "",
        "| what was killed | times | outcome |",
        "|---|---:|---|",
        f"| `write_atomic` rewriting a 0.4/0.9 MB file in a loop | {w.kills} | torn files: "
        f"{w.torn}; a temporary file was left {w.temp_left} times, all {w.cleaned} removed "
        "by the cleanup every pass starts with |",
    ]
    for k, kill in enumerate(c.kills, 1):
        lines.append(
            f"| `gardener run` over "
            f"{c.patterns} patterns, kill {k}, {kill.after_s:.2f} s after "
            f"its first model request | 1 | {kill.requests} requests made"
            f"{' (nothing was left to garden: the run had ended)' if not kill.requests else ''}"
            "; files: "
            f"{kill.check.gardened} written, {kill.check.original} as they were, "
            f"{len(kill.check.corrupt)} corrupt; temporary files left: "
            f"{len(kill.check.leftovers)}; state.json "
            f"{'readable' if kill.state_ok else 'UNREADABLE'}; its helper processes "
            "(Prefect's temporary server, worker processes) "
            f"{'OUTLIVED IT (ended by the benchmark)' if kill.orphans else 'ended with it'} |")
    lines += [
        f"| the run after the kills | 1 | {c.resumed['changed']} changed, "
        f"{c.resumed['unchanged']} unchanged, {c.resumed['skipped']} skipped, "
        f"{c.resumed['failed']} failed with {c.resumed_requests} requests; every file "
        f"gardened and verified: {c.final.gardened}/{c.patterns}, corrupt "
        f"{len(c.final.corrupt)}, temporary files {len(c.final.leftovers)}, "
        f"recorded {c.recorded}/{c.patterns} |",
        f"| state.json cut in half | 1 | reported (\"{_short(s.problems[0]) if s.problems else '?'}"
        f"\"), kept as state.json.bak: {'yes' if s.backup else 'NO'}; the run went on: "
        f"{s.totals['changed'] + s.totals['unchanged']} gardened, {s.totals['failed']} failed, "
        f"{s.recorded} recorded |",
        "",
        "The state is saved every 50 patterns and every 2 s, so a killed run loses at most "
        "2 s of records: the next run asks again only for what was not yet recorded (files "
        "already written come back unchanged).",
        "",
        "Prefect's temporary API server (which Prefect starts for the run) is stopped by "
        "Prefect at exit; a SIGKILL allows no exit, so the benchmark checks what is left "
        "running after the kill and ends it 5 s later (orphans are counted).",
        "",
    ]
    return lines


def _short(text: str) -> str:
    return text.rsplit("/", 1)[-1][:100]


def _edit_section(e: Edits) -> list[str]:
    first = Counter(e.first.values())
    second = Counter(e.second.values())
    return [
        "## Concurrent edits: a person edits files while the model is thinking",
        "",
        "| what | times | outcome |",
        "|---|---:|---|",
        f"| file edited between the pass reading it and writing it | {len(e.edited)} "
        f"| {', '.join(f'{n} {s}' for s, n in first.items())}, file left exactly as the "
        f"person made it: {e.untouched}, recorded in the state: {len(e.recorded_after_first)}"
        f"; the next run: {', '.join(f'{n} {s}' for s, n in second.items())}, the edit kept "
        f"in {e.kept}; corrupt files {len(e.check.corrupt)} |",
        "",
    ]


def _hostile_section(h: HostileResult) -> list[str]:
    lines = [
        "## Hostile input",
        "",
        "All in one library (given to the command with a `..` in its path) beside ordinary "
        f"patterns; the pass took {h.seconds:.0f} s. Nothing outside the library changed: "
        f"{'yes' if h.outside_untouched else 'NO'}. The model of this scenario obeys the "
        f"injection: it was offered {h.offered_to_injected} candidates for the injected "
        f"pattern and answered with links to all {h.library_slugs} slugs.",
        "",
        "A file over 2 MiB is refused rather than handled: the largest real pattern seen is "
        "330 KB, a bigger one would be parsed, indexed and sent to a model whole, and at most "
        "2 MiB + 1 byte of it is ever read. `GARDENER_MAX_FILE_BYTES` raises the limit. "
        "Refusals are failed outcomes in the report, naming the file (and line and column "
        "where there is one); the pass goes on with the other files.",
        "",
        "| hostile input | times | outcome |",
        "|---|---:|---|",
    ]
    for row in h.rows:
        outcome = row.outcome.replace("|", "\\|")
        lines.append(f"| {row.name} | 1 | {'' if row.ok else 'FAILED CHECK: '}{outcome} |")
    lines.append("")
    return lines


def _secret_section(s: Secrets) -> list[str]:
    return [
        "## Secrets",
        "",
        "| what | times | outcome |",
        "|---|---:|---|",
        f"| a recognizable fake key (`sk-test-SECRET-...`) and GitHub token (`ghp_...`) in "
        f"the environment; a server that quotes the Authorization header in every answer "
        f"and error; {sum(v for k, v in s.faults.items() if k != 'ok')} faulty answers; "
        f"fixtures recorded; then a run whose key the server refuses (401, quoting it) "
        f"| {len(s.runs)} runs, {s.echoed} answers quoting the key "
        f"| {len(s.hits)} occurrences in {s.artifacts} artifacts (stdout and stderr, the "
        "JSON reports, state.json, fixtures, the library, Prefect's log and database) |",
        "",
    ]


# ---------------------------------------------------------------------------------------------


@contextmanager
def _workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="gardener-reliability-") as tmp:
        yield Path(tmp)


def measure(patterns: int, seed: int, rate: float) -> dict[str, Any]:
    with _workdir() as work:
        home = work / "prefect-home"
        runner = subprocess_runner(home)
        spec = RunSpec(concurrency=16)
        results: dict[str, Any] = {"seed": seed}
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("faults", lambda: fault_pass(runner, work, patterns=patterns, rate=rate,
                                          seed=seed, spec=spec)),
            ("dead", lambda: dead_endpoint(runner, work, patterns=patterns,
                                           spec=RunSpec(concurrency=8, timeout_s=120))),
            ("deadline", lambda: deadline(runner, work, patterns=40, latency=1.0,
                                          spec=RunSpec(concurrency=4, timeout_s=30,
                                                       deadline_s=5))),
            ("writes", lambda: kill_writes(work, kills=50, seed=seed)),
            ("crashes", lambda: crash_pass(runner, work, patterns=120, kills=4, seed=seed,
                                           prefect_home=home,
                                           spec=RunSpec(concurrency=4))),
            ("state", lambda: corrupt_state(runner, work, patterns=20, spec=spec)),
            ("edits", lambda: concurrent_edits(runner, work, patterns=40, edits=8, seed=seed,
                                               spec=spec)),
            ("hostile", lambda: hostile(runner, work, patterns=60, spec=spec)),
            ("secrets", lambda: secret_pass(runner, work, patterns=30, spec=spec,
                                            prefect_home=home)),
        ]
        for name, step in steps:
            started = time.perf_counter()
            results[name] = step()
            print(f"{name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--patterns", type=int, default=300)
    parser.add_argument("--rate", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs alone")
    options = parser.parse_args(argv)
    started = time.perf_counter()
    results = measure(options.patterns, options.seed, options.rate)
    text = table(results, time.perf_counter() - started)
    print(text)
    if not options.no_write:
        # The attack table (tests/test_attacks.py, by hand) is kept below the measured part.
        old = DOC.read_text(encoding="utf-8") if DOC.is_file() else ""
        kept = old[old.find(ATTACKS):] if ATTACKS in old else ""
        DOC.write_text(text.rstrip("\n") + "\n\n" + kept if kept else text, encoding="utf-8")
        print(f"written to {DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
