"""`check` and `prune` over a copy of the shared real-world corpus, as a user runs them.

Writes docs/corpus.md: what check reports, what prune changes (by reason), whether every
changed file kept its bytes and data outside graph_garden, and whether a second prune is a
no-op. Usage: python bench/corpus.py [--corpus ../shared/corpus] [--out docs/corpus.md]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from common import writable_copy

from gardener.library.block import locate
from gardener.library.document import read_text

ROOT = Path(__file__).resolve().parents[1]
GARDENER = [sys.executable, "-m", "gardener"]


def gardener(*args: str) -> tuple[int, str, float]:
    start = time.perf_counter()
    done = subprocess.run([*GARDENER, *args], capture_output=True, text=True,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"}, check=False)
    return done.returncode, done.stdout + done.stderr, time.perf_counter() - start


def snapshot(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(root.rglob("*.md"))}


def outside_garden_intact(old: bytes, new: bytes, path: Path) -> tuple[bool, bool]:
    """(bytes outside the block identical, parsed front matter outside it equal)."""
    a, b = read_text(old.decode(), path), read_text(new.decode(), path)
    assert a is not None and b is not None
    ba, bb = locate(a), locate(b)
    same_bytes = (a.text[:ba.start] == b.text[:bb.start] and a.text[ba.end:] == b.text[bb.end:])
    da = {k: v for k, v in yaml.safe_load(a.front_matter).items() if k != "graph_garden"}
    db = {k: v for k, v in yaml.safe_load(b.front_matter).items() if k != "graph_garden"}
    return same_bytes, da == db


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if not args.corpus.is_dir():
        print(f"{args.corpus}: corpus not found", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        lib = Path(tmp) / "corpus"
        writable_copy(args.corpus, lib)
        before = snapshot(lib)
        check_rc, check_out, check_s = gardener("check", str(lib), "--no-warnings")
        report = Path(tmp) / "prune.json"
        prune_rc, _, prune_s = gardener("prune", str(lib), "--today", "2026-11-25",
                                        "--report", str(report))
        after = snapshot(lib)
        changed = [p for p in before if before[p] != after[p]]
        intact = [outside_garden_intact(before[p], after[p], p) for p in changed]
        second_rc, _, second_s = gardener("prune", str(lib), "--today", "2026-11-26")
        third = snapshot(lib)
        rep: dict[str, Any] = json.loads(report.read_text())
    errors = [line.replace(str(lib) + "/", "") for line in check_out.splitlines()
              if line.startswith("error:")]
    summary = next((line for line in check_out.splitlines() if "patterns read" in line), "")
    t = rep["totals"]
    lines = [
        "# The shared corpus: check and prune",
        "",
        f"Command: `.venv/bin/python bench/corpus.py --out docs/corpus.md` (a copy of "
        f"`../shared/corpus`, {len(before)} Markdown files; the corpus itself is never touched).",
        "",
        f"## check (exit {check_rc}, {check_s:.1f} s)",
        "",
        f"`{summary.strip()}`",
        "",
        *[f"- `{e}`" for e in errors],
        "",
        f"## prune (exit {prune_rc}, {prune_s:.1f} s)",
        "",
        "| patterns | changed | unchanged | failed | removals | renames | conflicts |",
        "|---|---|---|---|---|---|---|",
        f"| {t['patterns']} | {t['changed']} | {t['unchanged']} | {t['failed']} | "
        f"{t['removals']} | {t['renames']} | {t['conflicts']} |",
        "",
        "Removals by reason: " + ", ".join(f"`{k}` {v}" for k, v in
                                           t["removals_by_reason"].items()) + ".",
        "",
        f"Files whose bytes changed: {len(changed)} (the report says {t['changed']}). Of those, "
        f"bytes outside `graph_garden` identical: {sum(a for a, _ in intact)}/{len(changed)}; "
        f"parsed front matter outside `graph_garden` equal: {sum(b for _, b in intact)}/"
        f"{len(changed)}. Files not reported as changed: byte-identical.",
        "",
        f"## second prune (exit {second_rc}, {second_s:.1f} s)",
        "",
        f"Files changed by the second pass: {sum(after[p] != third[p] for p in after)} "
        "(a second run changes nothing: `last_pruned` moves only when something was pruned).",
        "",
        "Exit status 1 in both passes comes from the two files whose YAML does not parse; they "
        "are reported as failed and the pass goes on.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    ok = (len(changed) == t["changed"] and all(a and b for a, b in intact)
          and after == third)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
