"""Where a gardening pass spends the gardener's CPU, per pattern and per component.

The pass runs in this process (``flows.garden.run_garden``) against the stand-in model of
``bench/concurrency.py`` answering after 200 ms, at concurrency 16, after a warm-up pass of
three patterns. Each component is timed with ``time.thread_time`` around its function (in
whichever thread runs it), each thread's CPU is read from ``/proc``, and the whole
process's from ``getrusage``. CPU time, not wall time: on a shared machine it is the figure
that stays put from run to run.

    .venv/bin/python bench/task_cpu.py                      # 1,000 patterns
    .venv/bin/python bench/task_cpu.py --patterns 300
    PYTHONPATH=/path/to/other/checkout .venv/bin/python bench/task_cpu.py --code-from-path

The last form measures another checkout (an older commit, say) with this one's environment.
Nothing is written to docs: the figures go to docs/benchmarks.md by hand, with the commit.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
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
    """Thread CPU spent inside wrapped functions, by label."""

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()

    def wrap(self, owner: Any, name: str, label: str) -> None:
        inner: Callable[..., Any] = getattr(owner, name)

        @functools.wraps(inner)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.thread_time()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds[label] += time.thread_time() - start
                self.calls[label] += 1

        setattr(owner, name, timed)

    def clear(self) -> None:
        self.seconds.clear()
        self.calls.clear()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patterns", type=int, default=1000)
    parser.add_argument("--code-from-path", action="store_true",
                        help="import gardener and flows from PYTHONPATH, not this checkout")
    args = parser.parse_args(argv)
    here = Path(__file__).resolve().parents[1]
    if not args.code_from_path:
        sys.path.insert(0, str(here))
    sys.path.insert(1, str(here / "bench"))
    from concurrency import FakeServer, generate

    import flows.garden as fg
    import gardener
    import gardener.llm as gl
    import gardener.propose as gp
    from gardener import runtime

    fake = FakeServer(0.2)
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
    n = args.patterns
    base = Path(tempfile.mkdtemp(prefix="task-cpu-"))
    try:
        generate(base / "library", n)
        generate(base / "warm", 3)
        # workers=0: every component in this one process, where the timers are (worker
        # processes, flows.workers, would settle patterns out of their sight); older
        # checkouts, which have no such option, ignore it.
        options = fg.GardenOptions(concurrency=16, model="fake-model",
                                   today=dt.date(2026, 1, 1), workers=0)
        fg.run_garden(base / "warm", options)
        timer.clear()
        threads_before = thread_cpu()
        before = resource.getrusage(resource.RUSAGE_SELF)
        wall = time.perf_counter()
        fg.run_garden(base / "library", options)
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


if __name__ == "__main__":
    main()
