"""Gardening pass throughput: N generated patterns against a model that answers after 1 s.

Runs ``gardener run`` (the Prefect flow, end to end, in its own process) over libraries of
generated patterns, against ``gardener.testing.fake_openai`` running in a separate process with a
fixed latency, and compares the wall time with the ideal ``N x latency / concurrency``. The
fixed cost of a run (Python and Prefect start-up, Prefect's temporary server, reading the
library) is measured separately as the wall time of the same command over an empty library
(one Markdown file without front matter, so no pattern).

    .venv/bin/python bench/concurrency.py --no-write       # 400 patterns, 16 in flight, 1 s
    .venv/bin/python bench/concurrency.py --latency 0.2 --sizes 200 1000 --no-write

The target, at a realistic latency (1 s and up; real endpoints answer in 2 to 30 s):
``pass - start-up <= 1.3 x ideal``. Below 1 s the figures are information only: there the
gardener's and Prefect's own CPU per pattern (reported in the second table) is no longer
small beside the model's time. Without ``--no-write`` the table goes to docs/benchmarks.md
under "## Gardening pass concurrency".

The fake model's answers come from ``gardener.testing.responders.grounded_responder``: a
deterministic proposal that links to the first candidates offered, so every pattern really
changes and is written. The libraries are ``gardener.testing.libraries.generate``'s copies of
the sample.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import commit, machine
from gardener.testing.libraries import generate

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
HEADING = "## Gardening pass concurrency"
TARGET = 1.3
TARGET_LATENCY = 1.0
"""The target holds from this model latency up; below it the ratio is only shown."""


# ---------------------------------------------------------------------------------------------
# Measuring


@dataclass(frozen=True)
class Cpu:
    """CPU seconds (user + system) of each process taking part in a run."""

    gardener: float
    """The gardener's own process: the flow, its tasks, the model client."""
    server: float
    """The other processes the gardener started and waited for: Prefect's temporary server
    (and the watchdog that would stop it if the gardener were killed)."""
    model: float
    """The stand-in model's process, during the run (not what is measured, but it shares
    the machine's cores)."""

    @property
    def total(self) -> float:
        return self.gardener + self.server + self.model

    def __sub__(self, other: Cpu) -> Cpu:
        return Cpu(self.gardener - other.gardener, self.server - other.server,
                   self.model - other.model)


@dataclass(frozen=True)
class Measure:
    patterns: int
    seconds: float
    requests: int
    changed: int
    failed: int
    cpu: Cpu
    flow_seconds: float
    """The flow's own account (the report's ``seconds``): from taking the library to the
    last pattern, without interpreter and Prefect start-up; a cross-check on a busy machine."""


class FakeServer:
    """``gardener.testing.fake_openai`` in its own process: its CPU time is not the gardener's."""

    def __init__(self, latency: float) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gardener.testing.fake_openai", "--port", "0",
             "--latency", str(latency), "--responder",
             "gardener.testing.responders:grounded_responder"],
            stdout=subprocess.PIPE, text=True, env=env)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http://"):
            self.close()
            raise RuntimeError(f"fake server did not start (said {self.url!r})")

    def cpu(self) -> float:
        """CPU seconds the stand-in has used so far (0 where /proc cannot tell)."""
        return process_cpu(self.process.pid)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def process_cpu(pid: int) -> float:
    """User + system seconds of a running process, from /proc (Linux); 0 elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


CLI = ("import atexit, json, os, resource, sys, typer\n"
       "def _cpu():\n"
       "    me = resource.getrusage(resource.RUSAGE_SELF)\n"
       "    kids = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
       "    with open(os.environ['GARDENER_BENCH_CPU'], 'w') as out:\n"
       "        json.dump({'self': me.ru_utime + me.ru_stime,\n"
       "                   'children': kids.ru_utime + kids.ru_stime}, out)\n"
       "atexit.register(_cpu)\n"
       "from gardener.cli import flows as cli_flows\n"
       "app = typer.Typer()\n"
       "app.command('run')(cli_flows.run)\n"
       "app.command('serve')(cli_flows.serve)\n"
       "sys.exit(app())\n")
"""``gardener run`` without depending on how ``gardener.cli.main`` registers it. At exit (after
Prefect's own exit handlers, registered later, have stopped and waited for its temporary
server) it writes its own CPU time and that of the processes it waited for."""


def gardener_run(library: Path, fake: FakeServer, concurrency: int, report: Path) -> Measure:
    cpu_file = report.with_suffix(".cpu.json")
    env = {**os.environ, "OPENAI_BASE_URL": fake.url, "OPENAI_API_KEY": "bench-key",
           "GARDENER_BENCH_CPU": str(cpu_file)}
    command = [sys.executable, "-c", CLI, "run", str(library), "--concurrency", str(concurrency),
               "--model", "fake-model", "--today", "2026-01-01", "--report", str(report)]
    before, model_before = _children_cpu(), fake.cpu()
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - started
    both, model = _children_cpu() - before, fake.cpu() - model_before
    if done.returncode not in (0, 1) or not report.is_file():
        raise RuntimeError(f"gardener run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    own = json.loads(cpu_file.read_text(encoding="utf-8"))["self"]
    written = json.loads(report.read_text(encoding="utf-8"))
    totals = written["totals"]
    return Measure(patterns=totals["patterns"], seconds=seconds, requests=totals["requests"],
                   changed=totals["changed"], failed=totals["failed"],
                   cpu=Cpu(gardener=own, server=both - own, model=model),
                   flow_seconds=float(written["seconds"]))


def _children_cpu() -> float:
    """User and system time of finished children, and of the children they waited for."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


PREFECT_ONLY = """
import sys, threading, time
from gardener.pipeline.prefect.flows import in_process_run, pattern_threads
from prefect import flow, task
from prefect.cache_policies import NONE

slots = threading.BoundedSemaphore({concurrency})

@task(cache_policy=NONE, persist_result=False)
def wait(i: int) -> int:
    with slots:
        time.sleep({latency})
    return i

@flow(persist_result=False, task_runner=pattern_threads({concurrency}))
def tasks(n: int) -> int:
    return sum(f.result() for f in [wait.submit(i) for i in range(n)])

with in_process_run():
    tasks(0)
    started = time.perf_counter()
    tasks({n})
    print(time.perf_counter() - started)
"""


def prefect_only(n: int, concurrency: int, latency: float) -> float:
    """The same task runner and slots with each pattern's work replaced by the model's
    latency alone: what Prefect itself costs, start-up excluded."""
    code = PREFECT_ONLY.format(n=n, concurrency=concurrency, latency=latency)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=True)
    return float(done.stdout.strip().splitlines()[-1])


@dataclass(frozen=True)
class Row:
    """One library size: each repeat's pass with the start-up run just before it."""

    patterns: int
    ideal: float
    bare: float
    """Prefect alone: the same tasks only sleeping (one run)."""
    runs: list[tuple[Measure, Measure]]
    """(pass, start-up) per repeat."""

    def ratios(self) -> list[float]:
        return [(m.seconds - s.seconds) / self.ideal for m, s in self.runs]

    def median(self) -> tuple[Measure, Measure]:
        """The repeat whose ratio is the median (the lower one of an even number)."""
        ratios = self.ratios()
        order = sorted(range(len(self.runs)), key=ratios.__getitem__)
        return self.runs[order[(len(order) - 1) // 2]]

    def ratio(self) -> float:
        """The median repeat's ratio: what the table shows and the target is judged on."""
        m, startup = self.median()
        return (m.seconds - startup.seconds) / self.ideal


@contextmanager
def prefect_home(folder: Path) -> Iterator[None]:
    """Every run of the bench keeps its Prefect state in ``folder`` (and uses the temporary
    server, whatever ``PREFECT_API_URL`` says): the user's own history stays out of it, and
    the bench's thousands of task runs stay out of the user's."""
    saved = {k: os.environ.get(k) for k in ("PREFECT_HOME", "PREFECT_API_URL")}
    os.environ["PREFECT_HOME"] = str(folder)
    os.environ.pop("PREFECT_API_URL", None)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def measure(sizes: Sequence[int], concurrency: int, latency: float,
            repeats: int, home: Path | None = None) -> list[Row]:
    """Per size, ``repeats`` passes, each paired with a start-up run made just before it.

    The machine's speed drifts from minute to minute (a shared host): a start-up measured
    apart from the pass it is subtracted from made the ratio swing by a third between runs.
    Prefect keeps its state in ``home``, by default a new folder (a first run's state, as
    on a new machine).
    """
    fake = FakeServer(latency)
    try:
        with tempfile.TemporaryDirectory(prefix="gardener-bench-") as tmp, \
                prefect_home(home or Path(tmp) / "prefect-home"):
            base = Path(tmp)
            empty = base / "empty"
            empty.mkdir()
            # No pattern, but one Markdown file: the command refuses a folder without any.
            (empty / "README.md").write_text("# An empty library\n", encoding="utf-8")
            # A first run creates or migrates Prefect's database: not part of any pass.
            gardener_run(empty, fake, concurrency, base / "warm-up.json")
            runs: dict[int, list[tuple[Measure, Measure]]] = {n: [] for n in sizes}
            for r in range(repeats):
                for n in sizes:
                    startup = gardener_run(empty, fake, concurrency, base / "r0.json")
                    lib = base / f"lib-{n}-{r}"
                    generate(lib, n)
                    m = gardener_run(lib, fake, concurrency, base / f"r-{n}-{r}.json")
                    shutil.rmtree(lib)
                    if m.requests != n or m.failed:
                        raise RuntimeError(f"{n} patterns: {m.requests} requests, "
                                           f"{m.failed} failed; expected {n} and 0")
                    runs[n].append((m, startup))
            return [Row(n, n * latency / concurrency, prefect_only(n, concurrency, latency),
                        runs[n]) for n in sizes]
    finally:
        fake.close()


def heading(latency: float) -> str:
    """The section of docs/benchmarks.md for this latency: the target's, or information."""
    if latency >= TARGET_LATENCY:
        return HEADING
    return f"{HEADING} at {latency * 1000:g} ms (information, no target)"


def judged(latency: float) -> bool:
    return latency >= TARGET_LATENCY


def table(rows: list[Row], concurrency: int, latency: float, repeats: int,
          machine_at_start: str, command: str) -> str:
    target = f"target <= {TARGET}" if judged(latency) else f"no target below {TARGET_LATENCY:g} s"
    lines = [
        heading(latency),
        "",
        f"Measured {time.strftime('%Y-%m-%d')} at commit {commit()} on {machine_at_start}, "
        f"{os.getloadavg()[0]:.1f} at the end; fake model latency {latency * 1000:g} ms, "
        f"concurrency {concurrency}; {repeats} repeat{'s' if repeats != 1 else ''}, each pass "
        "paired with a start-up run (the same command over an empty library) made just "
        "before it; the row shows the repeat with the median ratio.",
        "",
        f"    {command}",
        "",
        f"| patterns | wall (s) | start-up (s) | minus start-up (s) | ideal N x {latency:g} s / "
        f"{concurrency} (s) | ratio ({target}) | ratio, every repeat "
        "| Prefect alone (s) | the flow's own (s) |",
        "|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for row in rows:
        m, startup = row.median()
        work = m.seconds - startup.seconds
        ratio = row.ratio()
        verdict = (" yes" if ratio <= TARGET else " no") if judged(latency) else ""
        every = ", ".join(f"{r:.2f}" for r in row.ratios())
        lines.append(f"| {m.patterns} | {m.seconds:.1f} | {startup.seconds:.1f} | {work:.1f} "
                     f"| {row.ideal:.1f} | {ratio:.2f}{verdict} "
                     f"| {every} | {row.bare:.1f} ({row.bare / row.ideal:.2f}) "
                     f"| {m.flow_seconds:.1f} ({m.flow_seconds / row.ideal:.2f}) |")
    lines += [
        "",
        "CPU per pattern, start-up subtracted (ms; user + system time of each process):",
        "",
        "| patterns | gardener | Prefect's temporary server | both "
        "| stand-in model (not measured) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        m, startup = row.median()
        c = m.cpu - startup.cpu
        per = 1000 / m.patterns
        lines.append(f"| {m.patterns} | {c.gardener * per:.1f} | {c.server * per:.1f} "
                     f"| {(c.gardener + c.server) * per:.1f} | {c.model * per:.1f} |")
    lines += [
        "",
        "Every pattern is asked once (requests = patterns) and written. \"Prefect alone\" runs",
        "the same number of tasks on the same thread pool, with the same slots, each only",
        "sleeping the model's latency: the orchestration's own cost, start-up excluded.",
        "\"The flow's own\" is the",
        "run's report: from taking the library to the last pattern (not the target's measure,",
        "a cross-check: it has no start-up to subtract). Wall times depend on what else runs",
        "on the machine; the CPU columns are what each process itself spent. Prefect's state",
        "is kept in a new folder for the bench (`--prefect-home` picks another), so the",
        "temporary server's database holds only the bench's own runs.",
    ]
    return "\n".join(lines) + "\n"


def write_section(doc: Path, title: str, section: str) -> None:
    """Replace the section ``title`` of ``doc`` (or append it), leaving the others as is."""
    text = doc.read_text(encoding="utf-8") if doc.is_file() else "# Benchmarks\n"
    start = text.find(title + "\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        nxt = text.find("\n## ", start + len(title))
        text = text[:start] + section + ("\n" + text[nxt + 1:] if nxt >= 0 else "")
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[400])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=1.0,
                        help="seconds the stand-in model takes per answer")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--prefect-home", type=Path, default=None,
                        help="Prefect's home for the runs (default: a new temporary folder)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs alone")
    options = parser.parse_args(argv)
    machine_at_start = machine()
    rows = measure(options.sizes, options.concurrency, options.latency, options.repeats,
                   options.prefect_home)
    command = " ".join([".venv/bin/python bench/concurrency.py",
                        *(a for a in (argv if argv is not None else sys.argv[1:])
                          if a != "--no-write")])
    section = table(rows, options.concurrency, options.latency, options.repeats,
                    machine_at_start, command)
    print(section)
    if not options.no_write:
        write_section(DOC, heading(options.latency), section)
        print(f"written to {DOC}")
    ok = not judged(options.latency) or all(row.ratio() <= TARGET for row in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
