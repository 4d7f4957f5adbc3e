"""Where a gardening pass spends the gardener's CPU, per pattern and per component.

The pass runs in this process against the stand-in model of ``bench/concurrency.py``
answering after 200 ms (``--latency``), at concurrency 16, after a warm-up pass of three
patterns. Each component is timed with ``time.thread_time`` around its function (in
whichever thread runs it), each thread's CPU is read from ``/proc``, and the whole
process's from ``getrusage``. CPU time, not wall time: on a shared machine it is the figure
that stays put from run to run.

    .venv/bin/python bench/task_cpu.py                      # 1,000 patterns
    .venv/bin/python bench/task_cpu.py --patterns 300
    PYTHONPATH=/path/to/other/checkout .venv/bin/python bench/task_cpu.py --code-from-path
    .venv/bin/python bench/task_cpu.py --threads 32      # 32 task threads for the 16 slots

The last forms measure another checkout (an older commit, say) with this one's environment,
and another size of the task pool (by default one thread per slot). Besides CPU it reports
wall times: from the first task's start to the last one's end against the ideal
(``N x latency / 16``), a model call's mean, and the garbage collector's time from the call
to the first task (the library read, Prefect starting the flow run) and during the tasks.
Nothing is written to docs: the figures go to docs/benchmarks.md by hand, with the commit.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import gc
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

_local = threading.local()


def thread_cpu() -> dict[str, float]:
    """CPU seconds of each live thread of this process, by name and id."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for t in threading.enumerate():
        try:
            stat = Path(f"/proc/self/task/{t.native_id}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        out[f"{t.name}#{t.native_id}"] = (int(fields[11]) + int(fields[12])) / tick
    return out


class Timer:
    """Thread CPU (and wall time) spent inside wrapped functions, by label."""

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.wall: defaultdict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self.spans: defaultdict[str, list[tuple[float, float]]] = defaultdict(list)

    def wrap(self, owner: Any, name: str, label: str) -> None:
        inner: Callable[..., Any] = getattr(owner, name)

        @functools.wraps(inner)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start, began = time.thread_time(), time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                ended = time.perf_counter()
                self.seconds[label] += time.thread_time() - start
                self.wall[label] += ended - began
                self.spans[label].append((began, ended))
                self.calls[label] += 1

        setattr(owner, name, timed)

    def clear(self) -> None:
        self.seconds.clear()
        self.wall.clear()
        self.calls.clear()
        self.spans.clear()


class GcClock:
    """Wall time inside the garbage collector (``gc.callbacks``), read at any moment."""

    def __init__(self) -> None:
        self.total = 0.0
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.total += time.perf_counter() - self._started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patterns", type=int, default=1000)
    parser.add_argument("--code-from-path", action="store_true",
                        help="import gardener and flows from PYTHONPATH, not this checkout")
    parser.add_argument("--threads", type=int, default=None,
                        help="task threads for the 16 slots (default: the code's own)")
    parser.add_argument("--latency", type=float, default=0.2,
                        help="seconds the stand-in model takes per answer")
    args = parser.parse_args(argv)
    here = Path(__file__).resolve().parents[1]
    if not args.code_from_path:
        sys.path.insert(0, str(here))
    sys.path.insert(1, str(here / "bench"))
    from concurrency import FakeServer, generate

    import gardener
    import gardener.endpoint.client as gl
    import gardener.pipeline.garden as fg
    import gardener.propose.propose as gp
    from gardener.pipeline.prefect import runtime

    fake = FakeServer(args.latency)
    os.environ.update(OPENAI_BASE_URL=fake.url, OPENAI_API_KEY="bench")
    runtime.configure()
    import prefect.task_engine as te

    timer = Timer()
    timer.wrap(fg, "check", "skip decision and candidate shortlist (check)")
    timer.wrap(gp, "build_response_model", "propose: build the response model")
    timer.wrap(gp, "render_messages", "propose: render the prompt")
    timer.wrap(gl.LLM, "structured", "propose: instructor + HTTP (LLM.structured)")
    timer.wrap(fg, "garden_entry", "merge, prune, splice, verify (garden_entry)")
    timer.wrap(fg, "apply", "atomic write (apply)")
    timer.wrap(fg, "garden_one", "task body (garden_one)")
    timer.wrap(te, "run_task_sync", "Prefect run_task_sync, task body included")
    if args.threads is not None:
        threads = fg.pattern_threads
        fg.pattern_threads = lambda _concurrency=None: threads(args.threads)
    gc_clock = GcClock()
    n = args.patterns
    base = Path(tempfile.mkdtemp(prefix="task-cpu-"))
    try:
        generate(base / "library", n)
        generate(base / "warm", 3)
        options = fg.GardenOptions(concurrency=16, model="fake-model",
                                   today=dt.date(2026, 1, 1))
        fg.run_garden(base / "warm", options)
        timer.clear()
        threads_before = thread_cpu()
        before = resource.getrusage(resource.RUSAGE_SELF)
        gc_before = gc_clock.total
        gc_at_first: list[float] = []
        wall = time.perf_counter()
        started = wall
        fg.run_garden(base / "library", options,
                      on_start=lambda _n: gc_at_first.append(gc_clock.total))
        gc_after = gc_clock.total
        wall = time.perf_counter() - wall
        after = resource.getrusage(resource.RUSAGE_SELF)
        threads_after = thread_cpu()
    finally:
        fake.close()
        shutil.rmtree(base, ignore_errors=True)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    print(f"code: {Path(gardener.__file__).parent.parent}")
    print(f"{n} patterns, wall {wall:.1f} s; process CPU {1000 * cpu / n:.2f} ms / pattern")
    for name, seconds in sorted(threads_after.items(), key=lambda kv: -kv[1]):
        spent = seconds - threads_before.get(name, 0.0)
        if spent > 0.01:
            print(f"  thread {name}: {1000 * spent / n:.2f} ms / pattern")
    for label, seconds in timer.seconds.items():
        print(f"  {1000 * seconds / n:6.2f} ms / pattern  {label} ({timer.calls[label]} calls)")
    engine = timer.seconds["Prefect run_task_sync, task body included"] - timer.seconds[
        "task body (garden_one)"]
    print(f"  {1000 * engine / n:6.2f} ms / pattern  Prefect's task engine besides the body")
    tasks = timer.spans["task body (garden_one)"]
    ideal = n * args.latency / 16
    first, last = min(b for b, _ in tasks), max(e for _, e in tasks)
    calls = timer.calls["propose: instructor + HTTP (LLM.structured)"]
    call_ms = 1000 * timer.wall["propose: instructor + HTTP (LLM.structured)"] / max(calls, 1)
    print(f"wall: first task {first - started:.2f} s after the call; first task to last "
          f"{last - first:.2f} s = {(last - first) / ideal:.2f} x the ideal {ideal:.2f} s")
    print(f"  a model call takes {call_ms:.1f} ms (mean of {calls}; the stand-in answers in "
          f"{args.latency * 1000:g} ms)")
    at_first = gc_at_first[0] if gc_at_first else gc_before
    print(f"  garbage collection: {at_first - gc_before:.2f} s before the flow's first pattern "
          f"(reading, Prefect starting the run), {gc_after - at_first:.2f} s after")


if __name__ == "__main__":
    main()
