"""Link quality: what a model proposes against the human links it was not shown, beside the
candidate ranker alone.

For patterns with three or more human relationships that resolve in the library, N of them
(chosen with the seed) lose those relationships and their garden in a temporary copy of the
library; ``gardener run COPY --only SLUG ...`` gardens them (the bundled model, or the GGUF
file GARDENER_LOCAL_MODEL names; with ``--endpoint``, that OpenAI-compatible server); the
links it writes are scored against the hidden ones. The baseline is the ranker's own top m
on the same copy, m = the links the model wrote for that pattern: a model that does not beat
it adds nothing.

    python bench/quality.py LIBRARY [--n N] [--seed S] [--endpoint URL --model M]
                            [--budget-s SECONDS] [--heading TEXT] [--out docs/quality.md]

``--budget-s``: a model too slow for N patterns on this machine is measured one pattern per
run (one local server for all of them), and no pattern starts once the budget is spent; the
table says how many were measured.

The table goes to stdout and, with ``--out``, into its own section of that file.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    ROOT,
    commit,
    gardener_command,
    machine,
    replace_section,
    writable_copy,
)
from gardener.endpoint.settings import LOCAL_MODE
from gardener.library import load as library
from gardener.local.server import start_local_model
from gardener.model import Pattern
from gardener.pipeline.holdout import (
    Gold,
    Totals,
    choose,
    dropped_targets,
    gold_of,
    most_common_type,
    score,
    total,
    unique_slugs,
    written_links,
)
from gardener.propose.profiles import profile_for
from gardener.shortlist.candidates import CandidateIndex
from gardener.testing.holdout import check_hidden, hide, merged

DOC = ROOT / "docs" / "quality.md"
ENDPOINT_VARIABLES = ("OPENAI_BASE_URL", "OPENAI_API_KEY", "GARDENER_MODEL", "GARDENER_MODE")

def garden_copy(copy: Path, slugs: Sequence[str], folder: Path, endpoint: str | None,
                model: str | None, *, key: str | None = None,
                name: str = "report.json", served: Mapping[str, str] | None = None
                ) -> dict[str, Any]:
    """Run ``gardener run COPY --only ...`` and return its JSON report. ``served``: what
    the gardener's own local-model path would know of the server the bench started (its
    context and mode), as the settings a user of such a server gives."""
    report = folder / name
    env = {k: v for k, v in os.environ.items() if k not in ENDPOINT_VARIABLES}
    env.update(served or {})
    env["PREFECT_HOME"] = str(folder / "prefect-home")
    # A fresh Prefect home migrates its database at the first start: on a busy machine that
    # outlasts Prefect's default wait of 20 s (its documented setting raises it).
    env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "300")
    if endpoint:
        env["OPENAI_BASE_URL"] = endpoint
        env["OPENAI_API_KEY"] = key or os.environ.get("OPENAI_API_KEY", "none")
    command = [*gardener_command(), "run", str(copy), "--report", str(report),
               *(arg for slug in slugs for arg in ("--only", slug)),
               *(("--model", model) if model else ())]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if not report.is_file():
        raise SystemExit(f"the run wrote no report (exit {done.returncode}):\n{done.stderr}")
    data: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    return data


def garden_one_by_one(copy: Path, slugs: Sequence[str], folder: Path, endpoint: str | None,
                      model: str | None, budget_s: float) -> tuple[dict[str, Any], list[str]]:
    """Garden one pattern per run until the budget is spent; the merged report and the slugs
    measured. With no endpoint the local model is started once, here, and every run is
    pointed at it (so its prompt cache and start-up are shared, as in one pass)."""
    started = time.monotonic()
    reports: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        key = None
        served: dict[str, str] = {}
        if endpoint is None:
            local = stack.enter_context(start_local_model(
                announce=lambda line: print(line, file=sys.stderr, flush=True)))
            endpoint, key = local.endpoint.base_url, local.endpoint.api_key
            model = model or local.endpoint.model
            # llama-cpp-python's server says neither its context nor its grammar mode: the
            # run is told both, as `gardener run` knows them for the model it starts itself.
            served = {"GARDENER_MODE": LOCAL_MODE}
            if local.endpoint.context is not None:
                served["GARDENER_CONTEXT"] = str(local.endpoint.context)
        for i, slug in enumerate(slugs):
            if reports and time.monotonic() - started > budget_s:
                break
            reports.append(garden_copy(copy, [slug], folder, endpoint, model, key=key,
                                       name=f"report-{i}.json", served=served))
            print(f"{slug}: {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return merged(reports), list(slugs[:len(reports)])


@dataclass(frozen=True)
class Measured:
    model: Totals
    ranker: Totals
    ranker_typed: int
    """Ranker hits whose guessed type (the library's most common) agrees."""
    guess: str
    shortlist: Totals
    """The hidden targets among the candidates the model was shown (its ceiling)."""
    picks: Totals
    """The model's link targets before validation: written plus dropped (salvage's log)."""
    ranker_picks: Totals
    """The ranker's top m', m' = the model's distinct picks before validation."""
    candidates: int
    rows: list[dict[str, Any]]


def measure(copy_patterns: Sequence[Pattern], golds: Mapping[str, Gold], slugs: Sequence[str],
            report: Mapping[str, Any], guess: str) -> Measured:
    """Score the model's written links, the ranker's top m and the shortlist shown."""
    by_slug = {p.slug: p for p in copy_patterns}
    index = CandidateIndex(copy_patterns)
    size = profile_for(str(report.get("model", ""))).candidates
    outcomes = {o.get("slug"): o for o in report.get("patterns", [])}
    mine, theirs, shown, picked, baseline, rows = [], [], [], [], [], []
    sizes: list[int] = []
    typed_guess = 0
    for slug in slugs:
        pattern, gold = by_slug[slug], golds[slug]
        links = written_links(pattern)
        m = len({t for t, _ in links})
        ranked = index.ranked(pattern, m)
        ours, base = score(links, gold), score([(t, guess) for t in ranked], gold)
        mine.append(ours)
        theirs.append(base)
        typed_guess += base.agreeing
        outcome = outcomes.get(slug, {})
        # A request cut to the model's context showed fewer candidates (the report says so).
        fitted = (outcome.get("detail") or {}).get("fitted") or {}
        shown_size = int(fitted.get("candidates", size))
        sizes.append(shown_size)
        shown.append(score([(t, None) for t in index.ranked(pattern, shown_size)], gold))
        picks = [t for t, _ in links] + dropped_targets(outcome.get("detail") or {})
        picked.append(score([(t, None) for t in picks], gold))
        baseline.append(score([(t, None) for t in index.ranked(pattern, picked[-1].proposed)],
                              gold))
        rows.append({"slug": slug, "status": outcome.get("status"), "links": m,
                     "hits": ours.hits, "ranker_hits": base.hits, "targets": len(gold),
                     "in_shortlist": shown[-1].hits,
                     "picks": picked[-1].proposed, "pick_hits": picked[-1].hits,
                     "usage": outcome.get("usage", {}),
                     "error": outcome.get("error")})
    return Measured(total(mine), total(theirs), typed_guess, guess, total(shown),
                    total(picked), total(baseline),
                    int(statistics.median(sizes)) if sizes else size, rows)


def pct(x: float) -> str:
    return f"{x:.0%}"


def section(result: Measured, report: Mapping[str, Any], *, library_name: str, n: int,
            seed: int, shown_command: str, model_file: str, chosen: int) -> str:
    t, r, s, k = result.model, result.ranker, result.shortlist, result.picks
    b = result.ranker_picks
    usage = report.get("totals", {}).get("usage", {})
    failed = sum(1 for row in result.rows if row["status"] == "failed")
    per = max(1, len(result.rows))
    seconds = float(report.get("seconds") or 0.0)
    budget = f"; the first {n} of {chosen} chosen, within the budget" if n < chosen else ""
    lines = [
        f"`{shown_command}` on {dt.date.today().isoformat()}, commit {commit()}; model "
        f"`{report.get('model')}` ({model_file}); {library_name}, n={n} held-out patterns "
        f"(seed {seed}{budget}), "
        f"{t.targets} hidden human targets; {failed} of {len(result.rows)} "
        f"patterns failed. Machine: {machine()}.",
        "",
        "| | links | links/pattern | precision | recall | type agreement on hits "
        "| s/pattern | prompt tok/pattern | completion tok/pattern |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| model | {t.proposed} | {t.proposed / per:.1f} | {pct(t.precision)} ({t.hits}) "
        f"| {pct(t.recall)} | {pct(t.agreement)} ({t.agreeing}/{t.typed_hits}) "
        f"| {seconds / per:.1f} | {usage.get('prompt_tokens', 0) / per:,.0f} "
        f"| {usage.get('completion_tokens', 0) / per:,.0f} |",
        f"| ranker alone, top m | {r.proposed} | {r.proposed / per:.1f} | "
        f"{pct(r.precision)} ({r.hits}) | {pct(r.recall)} | {pct(r.agreement)} "
        f"({r.agreeing}/{r.typed_hits}, all `{result.guess}`) | 0 | 0 | 0 |",
        f"| model's picks before validation (distinct targets) | {k.proposed} | "
        f"{k.proposed / per:.1f} | {pct(k.precision)} ({k.hits}) | {pct(k.recall)} | "
        "- | - | - | - |",
        f"| ranker alone, top m' (m' = picks) | {b.proposed} | {b.proposed / per:.1f} | "
        f"{pct(b.precision)} ({b.hits}) | {pct(b.recall)} | - | - | - | - |",
        f"| shortlist shown ({result.candidates} candidates, median) | {s.proposed} | "
        f"{s.proposed / per:.1f} | {pct(s.precision)} ({s.hits}) | {pct(s.recall)} | "
        "- | - | - | - |",
        "",
        "Per pattern (links written, hits, ranker hits at the same m, the model's picks before "
        "validation and their hits, hidden targets among the candidates shown / hidden "
        "targets):",
        "",
        "| pattern | status | links | hits | ranker hits | picks (hits) "
        "| in shortlist / targets | tokens |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result.rows:
        u = row["usage"]
        lines.append(f"| {row['slug']} | {row['status']} | {row['links']} | {row['hits']} "
                     f"| {row['ranker_hits']} | {row['picks']} ({row['pick_hits']}) "
                     f"| {row['in_shortlist']} / {row['targets']} "
                     f"| {u.get('prompt_tokens', 0):,} + {u.get('completion_tokens', 0):,} |")
    errors = [f"- {row['slug']}: {str(row['error'])[:300]}" for row in result.rows
              if row["error"]]
    if errors:
        lines += ["", "Failures:", "", *errors]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("library", type=Path)
    parser.add_argument("--n", type=int, default=10, help="held-out patterns")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--endpoint", help="OpenAI-compatible base URL (default: local model)")
    parser.add_argument("--model", help="model name at --endpoint")
    parser.add_argument("--heading", help="section heading (default: from the model)")
    parser.add_argument("--out", type=Path, help=f"Markdown file to write into ({DOC})")
    parser.add_argument("--budget-s", type=float,
                        help="one pattern per run; start none after this many seconds")
    parser.add_argument("--keep", type=Path,
                        help="folder to keep the copy and the run's report in, to look into")
    args = parser.parse_args(argv)
    if not args.library.is_dir():
        print(f"skipped: {args.library} is not there (see ../shared/gold/README.md)")
        return 0
    original = library.load(args.library).patterns
    slugs_all = frozenset(p.slug for p in original)
    golds = {p.slug: gold_of(p, slugs_all) for p in original}
    unique = unique_slugs(original)
    chosen = choose({s: len(g) for s, g in golds.items() if s in unique}, args.n, args.seed)
    before = {p.slug: p for p in original}
    guess = most_common_type(original)
    with tempfile.TemporaryDirectory(prefix="gardener-quality-") as tmp:
        folder = args.keep or Path(tmp)
        copy = writable_copy(args.library, folder / "library")
        for slug in chosen:
            hide(copy / before[slug].path.relative_to(args.library))
        check_hidden(before, {p.slug: p for p in library.load(copy).patterns}, chosen)
        if args.budget_s is None:
            report, measured = garden_copy(copy, chosen, folder, args.endpoint, args.model), chosen
        else:
            report, measured = garden_one_by_one(copy, chosen, folder, args.endpoint,
                                                 args.model, args.budget_s)
        copy_patterns = library.load(copy).patterns
        result = measure(copy_patterns, golds, measured, report, guess)
    local_file = os.environ.get("GARDENER_LOCAL_MODEL")
    model_file = (args.endpoint and f"at {args.endpoint}") or (
        f"GARDENER_LOCAL_MODEL={Path(local_file).name}" if local_file else "bundled GGUF")
    shown = " ".join(["python bench/quality.py", str(args.library), "--n", str(args.n),
                      "--seed", str(args.seed),
                      *(("--budget-s", f"{args.budget_s:g}") if args.budget_s else ()),
                      *(("--endpoint", args.endpoint) if args.endpoint else ()),
                      *(("--model", args.model) if args.model else ())])
    if local_file:
        shown = f"GARDENER_LOCAL_MODEL={local_file} {shown}"
    body = section(result, report, library_name=args.library.name, n=len(measured),
                   seed=args.seed, shown_command=shown, model_file=model_file,
                   chosen=len(chosen))
    heading = args.heading or f"## {report.get('model')}"
    print(heading, body, sep="\n\n")
    if args.out:
        replace_section(args.out, heading, body, title="# Link quality")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
