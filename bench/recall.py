"""Recall@k of candidate shortlists, leave-one-out against the human-curated relationships.

For every pattern with human relationships into its library, those relationships are hidden
(not excluded, not in the graph as its outgoing edges; what other patterns say about it stays)
and the shortlist is checked for the hidden targets. Also times index building and queries,
on the libraries given and on a synthetic library of ``--scale`` patterns made of copies.

    python bench/recall.py [LIBRARY ...] [--out docs/candidates.md]

The table goes to stdout and, with ``--out``, between the recall markers of that file (the
rest of the file, the hand-written method, is kept).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import between_markers  # noqa: E402
from gardener.library import load as library  # noqa: E402
from gardener.model import HumanLink, Pattern  # noqa: E402
from gardener.shortlist.candidates import CandidateIndex  # noqa: E402
from gardener.testing.recall import KS, METHODS, Recall, recall  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"
DEFAULT_LIBRARIES = (CORPUS / "commons-engineering", CORPUS / "commons-os-patterns")
BEGIN = "<!-- recall:begin -->"
END = "<!-- recall:end -->"
def synthetic(patterns: Sequence[Pattern], size: int) -> list[Pattern]:
    """Copies of real patterns under new slugs (links remapped) until there are ``size``."""
    out: list[Pattern] = []
    copy = 0
    while len(out) < size:
        suffix = f"-copy{copy}"
        for p in patterns:
            if len(out) >= size:
                break
            rels = tuple(HumanLink(target=r.target + suffix, type=r.type, resolved=r.resolved)
                         for r in p.relationships)
            out.append(p.model_copy(update={"slug": p.slug + suffix, "relationships": rels}))
        copy += 1
    return out


def timing(patterns: Sequence[Pattern], queries: int = 200) -> tuple[float, float, float]:
    """Index build seconds, and mean and max shortlist milliseconds over some queries."""
    start = time.perf_counter()
    index = CandidateIndex(patterns)
    build = time.perf_counter() - start
    step = max(1, len(patterns) // queries)
    times: list[float] = []
    for p in list(patterns)[::step][:queries]:
        t0 = time.perf_counter()
        index.shortlist(p, 40)
        times.append((time.perf_counter() - t0) * 1000.0)
    return build, statistics.fmean(times), max(times)


def table(title: str, results: dict[str, Recall], ks: Sequence[int] = KS) -> str:
    first = next(iter(results.values()))
    lines = [
        f"### {title}: {first.queries} patterns with relationships, "
        f"{first.targets} hidden targets",
        "",
        "recall@k, micro-averaged over hidden targets (macro over patterns in brackets)",
        "",
        "| method | " + " | ".join(f"k={k}" for k in ks) + " |",
        "|---|" + "---:|" * len(ks),
    ]
    for method, r in results.items():
        cells = " | ".join(f"{r.micro[k]:.1%} ({r.macro[k]:.1%})" for k in ks)
        lines.append(f"| {method} | {cells} |")
    return "\n".join(lines)


def splice(doc: str, block: str) -> str:
    """Put the block between this benchmark's markers, keeping the rest of the document."""
    return between_markers(doc, block, BEGIN, END)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("libraries", nargs="*", type=Path, default=list(DEFAULT_LIBRARIES))
    parser.add_argument("--out", type=Path, help="Markdown file to write the table into")
    parser.add_argument("--scale", type=int, default=3600,
                        help="size of the synthetic library for timing (0: skip)")
    args = parser.parse_args(argv)
    blocks: list[str] = []
    loaded = {root: library.load(root).patterns for root in args.libraries}
    everything = [p for patterns in loaded.values() for p in patterns]
    for root, patterns in loaded.items():
        results = {name: recall(patterns, build(patterns)) for name, build in METHODS.items()}
        blocks.append(table(f"{root.name} ({len(patterns)} patterns)", results))
        build_s, mean_ms, max_ms = timing(patterns)
        blocks.append(f"Index build {build_s * 1000:.0f} ms; shortlist(k=40) "
                      f"{mean_ms:.2f} ms mean, {max_ms:.2f} ms max.")
        print(blocks[-2], blocks[-1], sep="\n\n", end="\n\n", flush=True)
    if len(loaded) > 1:
        # The same queries against an index of every library given: more distractors.
        rankers = {name: build(everything) for name, build in METHODS.items()}
        for root, patterns in loaded.items():
            results = {name: recall(everything, rank, queries_from=patterns)
                       for name, rank in rankers.items()}
            blocks.append(table(f"{root.name} queries, index of all {len(everything)} patterns "
                                "given", results))
            print(blocks[-1], end="\n\n", flush=True)
    if args.scale and everything:
        build_s, mean_ms, max_ms = timing(synthetic(everything, args.scale))
        blocks.append(f"### Speed on a synthetic library of {args.scale} patterns\n\n"
                      f"(copies of the patterns above under new slugs, links remapped)\n\n"
                      f"Index build {build_s:.2f} s; shortlist(k=40) {mean_ms:.2f} ms mean, "
                      f"{max_ms:.2f} ms max (single core, pure Python).")
        print(blocks[-1])
    if args.out:
        old = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        args.out.write_text(splice(old, "\n\n".join(blocks)), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
