"""The shipped calibration: fitted on ../shared/gold from the ranker's signals alone.

Every pattern of the gold library with three or more human relationships that resolve in it
(and a slug no other file uses: the rules of ``gardener evaluate``) loses its relationships,
one at a time, in an index of the rest; its ranker's top 12 are labelled by whether people
had linked them; ``gardener.pipeline.calibrate.fit`` fits the chance and measures it on
patterns held out of the fit (10 folds by pattern). Prints the measurement; with ``--write``
it replaces the shipped default (gardener/library/calibration.json); with ``--out`` it
writes its section of docs/quality.md.

    python bench/calibration.py [LIBRARY] [--write] [--out docs/quality.md]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, commit, machine, replace_section
from gardener.library import load as library
from gardener.library.calibration import Calibration
from gardener.pipeline.calibrate import (
    REGULARISATION,
    Sample,
    fingerprint,
    fit,
    ranker_samples,
)
from gardener.pipeline.evaluation_report import reliability_table
from gardener.pipeline.holdout import eligible, gold_of, unique_slugs

GOLD = ROOT.parent / "shared" / "gold" / "commons-engineering"
SHIPPED = ROOT / "gardener" / "library" / "calibration.json"
HEADING = "## Calibration: the shipped default (ranker signals, ../shared/gold)"


def regularisation(samples: list[Sample], golds_fp: str) -> str:
    """The same fit and measurement at other strengths of scikit-learn's ``C``."""
    rows = ["| C | expected calibration error | Brier | log loss | links at 0.5 | people's |",
            "|---:|---:|---:|---:|---:|---:|"]
    for c in (0.1, REGULARISATION, 10.0):
        m = fit(samples, library="gold", fingerprint=golds_fp, model=None, c=c).measured
        rows.append(f"| {c:g} | {m.ece:.3f} | {m.brier:.3f} | {m.log_loss:.3f} | {m.written} "
                    f"| {m.precision:.0%} |")
    return "\n".join(rows)


def section(cal: Calibration, seconds: float, command: str, strengths: str,
            counted: str) -> str:
    m = cal.measured
    return "\n".join([
        f"Measured {time.strftime('%Y-%m-%d')} at commit {commit()} on {machine()}: "
        f"`{command}` ({seconds:.0f} s).",
        "",
        f"{cal.patterns} patterns of Commons Engineering with three or more resolving human "
        f"relationships ({counted}), each hidden in turn; the ranker's top {cal.candidates} of "
        "each: "
        f"{cal.samples} candidates. Fit: {cal.method} on the features "
        f"{', '.join(cal.features)}; every number below is from patterns held out of the "
        f"fit ({m.folds} folds by pattern).",
        "",
        f"- expected calibration error (10 bins): **{m.ece:.3f}** (target at most 0.05)",
        f"- Brier score {m.brier:.3f}, log loss {m.log_loss:.3f}",
        f"- at confidence {m.threshold:g} or more: {m.written} links, "
        f"{m.written / cal.patterns:.1f} a pattern, {m.precision:.0%} of them people's own "
        f"({m.matched}); the ranker's own top m of each pattern (same m): "
        f"{m.ranker_matched / m.written:.0%} ({m.ranker_matched})" if m.written else
        f"- at confidence {m.threshold:g} or more: no link",
        "",
        "\n".join(reliability_table(cal.measured)),
        "",
        "Coefficients (a logistic regression; `log_rank` is the log of the ranker's rank): "
        + ", ".join(f"`{f}` {c:+.3f}" for f, c in zip(cal.features, cal.coefficients,
                                                      strict=True))
        + f", intercept {cal.intercept:+.3f}.",
        "",
        "The same fit at other strengths of regularisation (scikit-learn's `C`; the shipped "
        f"one uses {REGULARISATION:g}), each measured the same way:",
        "",
        strengths,
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("library", nargs="?", type=Path, default=GOLD)
    parser.add_argument("--write", action="store_true",
                        help=f"replace the shipped default ({SHIPPED.relative_to(ROOT)})")
    parser.add_argument("--out", type=Path, help="write the section into this Markdown file")
    args = parser.parse_args()
    if not args.library.is_dir():
        print(f"skipped: {args.library} is absent", file=sys.stderr)
        return 0
    started = time.monotonic()
    patterns = library.load(args.library).patterns
    slugs = frozenset(p.slug for p in patterns)
    unique = unique_slugs(patterns)
    golds = {p.slug: gold_of(p, slugs) for p in patterns if p.slug in unique}
    chosen = eligible({s: len(g) for s, g in golds.items()})
    golds = {s: golds[s] for s in chosen}
    many = sum(len(p.relationships) >= 3 for p in patterns)
    resolving = sum(len(gold_of(p, slugs)) >= 3 for p in patterns)
    counted = (f"of the {many} patterns with three or more relationships, {resolving} have three "
               f"that resolve to another pattern of the library, and {len(chosen)} of those a "
               "slug no other file uses; the gold README's 'about 71' counts more loosely")
    samples = ranker_samples(patterns, golds)
    cal = fit(samples, library="Commons Engineering (../shared/gold)",
              fingerprint=fingerprint(golds), model=None, shipped=True)
    seconds = time.monotonic() - started
    command = "python bench/calibration.py" + (" --write" if args.write else "")
    text = section(cal, seconds, command, regularisation(samples, fingerprint(golds)), counted)
    print(text)
    if args.write:
        SHIPPED.write_text(json.dumps(cal.model_dump(mode="json"), indent=2) + "\n",
                           encoding="utf-8")
        print(f"written: {SHIPPED}", file=sys.stderr)
    if args.out:
        replace_section(args.out, HEADING, text, title="# Link quality")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
