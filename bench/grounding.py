"""Are the gardens a model writes grounded? Garden N patterns of a copy of a library, then check
every item the pass added against the pattern's own text.

Issue 19's acceptance: no entity whose label (or every word of its id) is absent from its
pattern's title, summary or body, no link without evidence found in its pattern. The check
here is independent of the validators that should guarantee it: it reads what was written to
the files and the JSON report, folds text the way ``gardener.propose.grounding`` does, and counts.

    python bench/grounding.py LIBRARY [--n 100] [--seed 1] [--out docs/grounding.md]
        [--endpoint URL --model M]   # default: the bundled model (or GARDENER_LOCAL_MODEL)
    python bench/grounding.py LIBRARY --existing [--out docs/grounding.md]

``--existing`` runs no model: it applies the same check to the entities and communities the
library's gardens already hold (curated, or written by earlier passes), the yardstick for
how strict the check is against what people keep.

The library is copied to a temporary folder; nothing under LIBRARY is written.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import between_markers, writable_copy  # noqa: E402
from gardener.library import load as library  # noqa: E402
from gardener.testing.grounding_check import Tally, check, existing  # noqa: E402

BEGIN = "<!-- grounding:{name}:begin -->"
END = "<!-- grounding:{name}:end -->"
"""Markers around one library's table: each library keeps its own."""


def existing_table(seen: Tally, args: argparse.Namespace) -> str:
    examples = "\n".join(f"- {line}" for line in seen.bad[:5])
    return (f"### {Path(args.library).name}: the gardens already there ({seen.patterns} "
            f"patterns with a garden)\n\n`python bench/grounding.py {args.library} --existing`, "
            f"{dt.date.today().isoformat()}\n\n| | |\n|---|---:|\n"
            f"| entities / not in the text | {seen.entities} / {seen.bad_entities} |\n"
            f"| communities / not in the text | {seen.communities} / {seen.bad_communities} |"
            + (f"\n\nFor example:\n\n{examples}" if examples else ""))


def garden(copy: Path, slugs: Sequence[str], report: Path, args: argparse.Namespace) -> float:
    env = dict(os.environ)
    if args.endpoint:
        env["OPENAI_BASE_URL"] = args.endpoint
        env.setdefault("OPENAI_API_KEY", "none")
    command = [sys.executable, "-m", "gardener", "run", str(copy), "--report", str(report),
               "--concurrency", "1", *(f"--only={s}" for s in slugs)]
    if args.model:
        command += ["--model", args.model]
    started = time.monotonic()
    subprocess.run(command, env=env, check=False)
    return time.monotonic() - started


def table(tally: Tally, seconds: float, args: argparse.Namespace, model: str) -> str:
    rows = [
        ("patterns gardened (failed)", f"{tally.patterns} ({tally.failed})"),
        ("entities added / not in the text", f"{tally.entities} / {tally.bad_entities}"),
        ("communities added / not in the text",
         f"{tally.communities} / {tally.bad_communities}"),
        ("links added / without evidence / evidence not in the pattern",
         f"{tally.links} / {tally.links_without_evidence} / {tally.evidence_not_found}"),
        ("seconds per pattern", f"{seconds / max(1, tally.patterns):.1f}"),
    ]
    head = (f"### {Path(args.library).name}: {tally.patterns} patterns, model {model}\n\n"
            f"`python bench/grounding.py {args.library} --n {args.n} --seed {args.seed}"
            f"{' --endpoint ' + args.endpoint if args.endpoint else ''}`, "
            f"{dt.date.today().isoformat()}\n\n| | |\n|---|---:|\n")
    body = "\n".join(f"| {name} | {value} |" for name, value in rows)
    bad = "\n".join(f"- {line}" for line in tally.bad[:20])
    return head + body + (f"\n\nNot grounded:\n\n{bad}" if bad else "")


def splice(doc: str, block: str, name: str) -> str:
    """Put the block between the markers of library ``name``, keeping the rest of the
    document (other libraries' tables included)."""
    return between_markers(doc, block, BEGIN.format(name=name), END.format(name=name))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("library", type=Path)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--endpoint")
    parser.add_argument("--model")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--existing", action="store_true",
                        help="check the gardens already in LIBRARY; run no model")
    args = parser.parse_args(argv)
    originals = library.load(args.library).patterns
    if args.existing:
        block = existing_table(existing(originals), args)
        print(block)
        if args.out:
            old = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
            name = f"existing:{Path(args.library).name}"
            args.out.write_text(splice(old, block, name), encoding="utf-8")
        return 0
    chosen = sorted(random.Random(args.seed).sample(sorted(p.slug for p in originals),
                                                    min(args.n, len(originals))))
    with tempfile.TemporaryDirectory(prefix="gardener-grounding-") as scratch:
        copy = Path(scratch) / args.library.name
        writable_copy(args.library, copy)  # ../shared is read-only
        for kept in (".gardener", ".git"):  # no earlier state: every chosen pattern is asked
            shutil.rmtree(copy / kept, ignore_errors=True)
        report_path = Path(scratch) / "report.json"
        seconds = garden(copy, chosen, report_path, args)
        report = json.loads(report_path.read_text(encoding="utf-8"))
        before = {p.slug: p for p in originals}
        after = {p.slug: p for p in library.load(copy).patterns}
        tally = Tally()
        for outcome in report["patterns"]:
            slug = outcome.get("slug")
            if slug not in chosen:
                continue
            tally.patterns += 1
            if outcome["status"] == "failed":
                tally.failed += 1
                continue
            check(before[slug], after[slug], outcome, tally)
    model = str(report.get("model") or args.model or "bundled")
    block = table(tally, seconds, args, model)
    print(block)
    if args.out:
        old = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        args.out.write_text(splice(old, block, Path(args.library).name), encoding="utf-8")
    return 1 if tally.bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
