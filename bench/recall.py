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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import between_markers  # noqa: E402
from gardener.library import load as library  # noqa: E402
from gardener.model import HumanLink, Pattern  # noqa: E402
from gardener.shortlist.candidates import CandidateIndex, Weights, resolved_targets  # noqa: E402

KS: tuple[int, ...] = (10, 20, 40, 80)
CORPUS = ROOT.parent / "shared" / "corpus"
DEFAULT_LIBRARIES = (CORPUS / "commons-engineering", CORPUS / "commons-os-patterns")
BEGIN = "<!-- recall:begin -->"
END = "<!-- recall:end -->"
PLAIN_FIELDS = {"title": 1, "summary": 1, "keywords": 1, "headings": 1}
TITLE_HEAVY_FIELDS = {"title": 3, "keywords": 2, "domain": 2, "summary": 1, "headings": 1}
"""The weights before 2026-12-03 (title words 3, no title phrase): kept to show the change."""

Ranker = Callable[[Pattern, int], list[str]]


def alphabetical(patterns: Sequence[Pattern]) -> Ranker:
    """What the old tool showed: the library's first slugs, whatever the pattern."""
    slugs = sorted({p.slug for p in patterns})

    def rank(p: Pattern, k: int) -> list[str]:
        return [s for s in slugs if s != p.slug][:k]

    return rank


def indexed(**options: object) -> Callable[[Sequence[Pattern]], Ranker]:
    def build(patterns: Sequence[Pattern]) -> Ranker:
        index = CandidateIndex(patterns, **options)  # type: ignore[arg-type]

        def rank(p: Pattern, k: int) -> list[str]:
            return index.ranked(p, k, hide_relationships=True)

        return rank

    return build


METHODS: dict[str, Callable[[Sequence[Pattern]], Ranker]] = {
    "alphabetical prefix (old tool)": alphabetical,
    "BM25 plain: title+summary+keywords+headings": indexed(
        field_weights=PLAIN_FIELDS, weights=Weights(1.0, 0.0, 0.0), max_query_terms=10**6),
    "BM25 fielded, title words x3 (before 2026-12-03)": indexed(
        field_weights=TITLE_HEAVY_FIELDS, weights=Weights(1.0, 0.0, 0.0)),
    "combined, title words x3 (before 2026-12-03)": indexed(field_weights=TITLE_HEAVY_FIELDS),
    "BM25 fielded (+aliases, domain, title pairs)": indexed(
        weights=Weights(1.0, 0.0, 0.0)),
    "fielded + in-links": indexed(weights=Weights(two_hop=0.0)),
    "fielded + 2-hop": indexed(weights=Weights(in_link=0.0)),
    "graph only (in-links + 2-hop)": indexed(weights=Weights(lexical=0.0)),
    "**combined (default)**": indexed(),
}


@dataclass(frozen=True)
class Recall:
    micro: dict[int, float]
    macro: dict[int, float]
    queries: int
    targets: int


def hidden_targets(p: Pattern, slugs: frozenset[str]) -> set[str]:
    return {t for t in resolved_targets(p) if t in slugs}


def recall(patterns: Sequence[Pattern], rank: Ranker, ks: Sequence[int] = KS,
           queries_from: Sequence[Pattern] | None = None) -> Recall:
    """Leave-one-out recall of ``rank`` over a library, querying all or only some patterns."""
    slugs = frozenset(p.slug for p in patterns)
    hits = {k: 0 for k in ks}
    fractions: dict[int, list[float]] = {k: [] for k in ks}
    total = queries = 0
    for p in patterns if queries_from is None else queries_from:
        targets = hidden_targets(p, slugs)
        if not targets:
            continue
        queries += 1
        total += len(targets)
        for k in ks:
            found = len(targets & set(rank(p, k)))
            hits[k] += found
            fractions[k].append(found / len(targets))
    return Recall(
        micro={k: hits[k] / total if total else 0.0 for k in ks},
        macro={k: statistics.fmean(fractions[k]) if fractions[k] else 0.0 for k in ks},
        queries=queries, targets=total)


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
