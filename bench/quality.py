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
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
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
from gardener.library import load as library
from gardener.library.document import read as read_document
from gardener.library.pattern import HUMAN_KEYS
from gardener.llm.candidates import CandidateIndex
from gardener.llm.local_model import start_local_model
from gardener.llm.profiles import profile_for
from gardener.model import LINK_TYPES, TYPE_RENAMES, Pattern

DOC = ROOT / "docs" / "quality.md"
HIDDEN_KEYS = frozenset(("relationships", "graph_garden", *HUMAN_KEYS))
"""Top-level keys a held-out pattern loses in the copy: its human links and its garden."""
ENDPOINT_VARIABLES = ("OPENAI_BASE_URL", "OPENAI_API_KEY", "GARDENER_MODEL", "GARDENER_MODE")
MIN_LINKS = 3

Gold = dict[str, frozenset[str]]
"""A held-out pattern's human targets, each with the relationship kinds naming it."""
Proposed = list[tuple[str, str | None]]
"""Links as (target, type), in the order written."""


def gold_of(pattern: Pattern, slugs: frozenset[str]) -> Gold:
    """The pattern's human targets that resolve in the library, with their kinds."""
    kinds: dict[str, set[str]] = {}
    for r in pattern.relationships:
        if r.resolved and r.target != pattern.slug and r.target in slugs:
            kinds.setdefault(r.target, set()).add(r.type)
    return {target: frozenset(k) for target, k in kinds.items()}


def unique_slugs(patterns: Sequence[Pattern]) -> frozenset[str]:
    """Slugs of exactly one file: the gardener refuses to garden a slug two files use."""
    counts = Counter(p.slug for p in patterns)
    return frozenset(slug for slug, n in counts.items() if n == 1)


def choose(counts: Mapping[str, int], n: int, seed: int, least: int = MIN_LINKS) -> list[str]:
    """N slugs with at least ``least`` hidden targets (``counts``), the same for the same
    seed and library."""
    eligible = sorted(slug for slug, count in counts.items() if count >= least)
    return sorted(random.Random(seed).sample(eligible, min(n, len(eligible))))


def vocabulary_type(kind: str) -> str | None:
    """A human relationship key in the link vocabulary (renames applied), or None for the
    human-only kinds (related, manifests_as, governed_by) no link type stands for."""
    kind = TYPE_RENAMES.get(kind, kind)
    return kind if kind in LINK_TYPES else None


@dataclass(frozen=True)
class Score:
    """One pattern's links against its hidden human targets."""

    proposed: int
    hits: int
    targets: int
    typed_hits: int
    """Hits whose human kind has a link type (type agreement is counted over these)."""
    agreeing: int


def score(links: Sequence[tuple[str, str | None]], gold: Gold) -> Score:
    """Precision, recall and type-agreement counts of ``links`` (a target counted once)."""
    seen: set[str] = set()
    hits = typed = agreeing = 0
    for target, kind in links:
        if target in seen:
            continue
        seen.add(target)
        if target not in gold:
            continue
        hits += 1
        wanted = {t for t in (vocabulary_type(k) for k in gold[target]) if t is not None}
        if wanted:
            typed += 1
            agreeing += kind in wanted
    return Score(len(seen), hits, len(gold), typed, agreeing)


@dataclass(frozen=True)
class Totals:
    patterns: int
    proposed: int
    hits: int
    targets: int
    typed_hits: int
    agreeing: int

    @property
    def precision(self) -> float:
        return self.hits / self.proposed if self.proposed else 0.0

    @property
    def recall(self) -> float:
        return self.hits / self.targets if self.targets else 0.0

    @property
    def agreement(self) -> float:
        return self.agreeing / self.typed_hits if self.typed_hits else 0.0


def total(scores: Iterable[Score]) -> Totals:
    """Micro-averaged over links and targets: every link and every hidden target counts once."""
    s = list(scores)
    return Totals(len(s), sum(x.proposed for x in s), sum(x.hits for x in s),
                  sum(x.targets for x in s), sum(x.typed_hits for x in s),
                  sum(x.agreeing for x in s))


def most_common_type(patterns: Sequence[Pattern]) -> str:
    """The link type human relationships use most across the library: the typing a baseline
    with no model can guess for every link."""
    kinds = Counter(t for p in patterns for r in p.relationships
                    if (t := vocabulary_type(r.type)) is not None)
    return kinds.most_common(1)[0][0] if kinds else LINK_TYPES[0]


def without_keys(text: str, fm_start: int, spans: Sequence[tuple[int, int]]) -> str:
    """``text`` less the front-matter lines from each span's key to the next key.

    ``spans`` are (start, end) offsets within the front matter of top-level pairs to drop,
    from a key's line to the line of the key after it; the rest stays byte for byte.
    """
    out, at = [], 0
    for start, end in sorted(spans):
        out.append(text[at:fm_start + start])
        at = fm_start + end
    out.append(text[at:])
    return "".join(out)


def _line_start(fm: str, i: int) -> int:
    return fm.rfind("\n", 0, i) + 1


def hide(path: Path) -> None:
    """Remove the hidden keys from the pattern file at ``path`` (a file of the copy)."""
    doc = read_document(path)
    if doc is None or doc.root is None:
        raise SystemExit(f"{path}: no front matter to hide relationships in")
    fm = doc.front_matter
    pairs = doc.root.value
    spans = []
    for i, (key, _) in enumerate(pairs):
        if getattr(key, "value", None) not in HIDDEN_KEYS:
            continue
        if key.start_mark.column != 0:
            raise SystemExit(f"{path}: indented top-level key {key.value!r}; not hidden")
        end = (_line_start(fm, pairs[i + 1][0].start_mark.index) if i + 1 < len(pairs)
               else len(fm))
        spans.append((_line_start(fm, key.start_mark.index), end))
    path.write_text(without_keys(doc.text, doc.fm_start, spans), encoding="utf-8")


def check_hidden(before: Mapping[str, Pattern], after: Mapping[str, Pattern],
                 slugs: Sequence[str]) -> None:
    """The copy's held-out patterns have no relationships and no garden, and the same text."""
    for slug in slugs:
        old, new = before[slug], after.get(slug)
        if new is None:
            raise SystemExit(f"{slug}: lost from the copy while hiding its relationships")
        if new.relationships or new.garden is not None:
            raise SystemExit(f"{slug}: relationships or garden still in the copy")
        same = ("title", "summary", "keywords", "sections", "domain", "vitality", "id")
        changed = [name for name in same if getattr(old, name) != getattr(new, name)]
        if changed:
            raise SystemExit(f"{slug}: hiding changed {', '.join(changed)}")


def written_links(pattern: Pattern) -> Proposed:
    garden = pattern.garden
    return [(link.target, link.type) for link in garden.inferred_links] if garden else []


DROPPED_LINK = re.compile(r"^inferred_links\[\d+\] '([^']+)'")
"""How salvage names a link it dropped (``gardener.llm.schemas``): its index and target."""


def dropped_targets(detail: Mapping[str, Any]) -> list[str]:
    """Targets of the links the validators dropped from a pattern's answer (report detail)."""
    found = (DROPPED_LINK.match(str(line)) for line in detail.get("dropped") or ())
    return [m.group(1) for m in found if m]


def garden_copy(copy: Path, slugs: Sequence[str], folder: Path, endpoint: str | None,
                model: str | None, *, key: str | None = None,
                name: str = "report.json") -> dict[str, Any]:
    """Run ``gardener run COPY --only ...`` and return its JSON report."""
    report = folder / name
    env = {k: v for k, v in os.environ.items() if k not in ENDPOINT_VARIABLES}
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


def merged(reports: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One report from per-pattern runs: their patterns, and seconds and usage summed."""
    usage: Counter[str] = Counter()
    for r in reports:
        usage.update(r.get("totals", {}).get("usage", {}))
    return {"model": reports[0].get("model") if reports else None,
            "seconds": round(sum(float(r.get("seconds") or 0.0) for r in reports), 2),
            "totals": {"usage": dict(usage)},
            "patterns": [p for r in reports for p in r.get("patterns", [])]}


def garden_one_by_one(copy: Path, slugs: Sequence[str], folder: Path, endpoint: str | None,
                      model: str | None, budget_s: float) -> tuple[dict[str, Any], list[str]]:
    """Garden one pattern per run until the budget is spent; the merged report and the slugs
    measured. With no endpoint the local model is started once, here, and every run is
    pointed at it (so its prompt cache and start-up are shared, as in one pass)."""
    started = time.monotonic()
    reports: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        key = None
        if endpoint is None:
            local = stack.enter_context(start_local_model(
                announce=lambda line: print(line, file=sys.stderr, flush=True)))
            endpoint, key = local.endpoint.base_url, local.endpoint.api_key
            model = model or local.endpoint.model
        for i, slug in enumerate(slugs):
            if reports and time.monotonic() - started > budget_s:
                break
            reports.append(garden_copy(copy, [slug], folder, endpoint, model, key=key,
                                       name=f"report-{i}.json"))
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
        shown.append(score([(t, None) for t in index.ranked(pattern, size)], gold))
        outcome = outcomes.get(slug, {})
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
                    total(picked), total(baseline), size, rows)


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
        f"| shortlist shown ({result.candidates} candidates) | {s.proposed} | "
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
