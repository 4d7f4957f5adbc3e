"""Regenerate docs/review-example.md: a real ``gardener review`` of a copy of ``patterns/``.

Run from the repository root (no network, no model: the answers come from ``fixtures/``)::

    PYTHONPATH=. .venv/bin/python scripts/review_example.py

It copies the sample library into a fresh git repository (folder ``patterns/``), reviews it
once, rejects the first link that review proposed with ``gardener reject``, and reviews
again: the second pull-request body, which shows the rejection at work, becomes the doc.

With ``--scale LIBRARY`` it measures instead: ``gardener review LIBRARY --max-patterns N``
(default 150) as its own process, against the model stand-in of ``bench/scale.py``, on a
library that scale benchmark built (``bench/scale.py --out DIR --keep``: ``DIR/lib``, a git
repository); it prints the body's and the full report's sizes, and the wall time and peak
memory of ``reject`` and ``promote`` of two links the review added (which it then undoes)::

    PYTHONPATH=. .venv/bin/python scripts/review_example.py --scale /tmp/scale3600/lib
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from typer.testing import CliRunner

from gardener.cli.main import app
from gardener.library.document import read_text
from gardener.library.garden import read_garden

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "review-example.md"
TODAY = "2026-02-19"
BRANCH = "gardener/garden"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, check=True,
                          text=True).stdout


def links(repo: Path, rev: str, name: str) -> list[str]:
    doc = read_text(git(repo, "show", f"{rev}:patterns/{name}"), name)
    garden = read_garden(doc)[0] if doc is not None else None
    return [lk.target for lk in garden.inferred_links] if garden is not None else []


def review(repo: Path, body: Path) -> None:
    result = CliRunner().invoke(app, [
        "review", str(repo / "patterns"), "--fixtures", str(ROOT / "fixtures"), "--replay",
        "--today", TODAY, "--body-file", str(body)])
    if result.exit_code != 0:
        sys.exit(f"gardener review failed:\n{result.output}")


def timed(args: list[str], env: dict[str, str],
          cwd: Path) -> tuple[int, float, float, int, str]:
    """``gardener ARGS`` under /usr/bin/time: exit status, wall seconds, CPU seconds (user +
    system), peak RSS (KB), output."""
    from bench.common import gardener_command

    with tempfile.TemporaryDirectory() as tmp:
        timing = Path(tmp) / "time.txt"
        started = time.monotonic()
        done = subprocess.run(["/usr/bin/time", "-f", "%M %U %S", "-o", str(timing),
                               *gardener_command(), *args], env=env, cwd=cwd,
                              capture_output=True, text=True, check=False)
        wall = time.monotonic() - started
        parts = timing.read_text().split()[-3:] if timing.is_file() else ["0", "0", "0"]
    return (done.returncode, wall, float(parts[1]) + float(parts[2]), int(parts[0]),
            done.stdout + done.stderr)


def scale(lib: Path, max_patterns: int, keep: Path | None) -> None:
    """The body and report sizes of a review of ``lib``, and reject/promote timings."""
    from bench.scale import StandIn, child_env

    stand_in = StandIn()
    with tempfile.TemporaryDirectory(prefix="review-scale-") as tmp:
        try:
            env = child_env(os.environ, Path(tmp) / "state", stand_in)
            body_file = keep or Path(tmp) / "pr-body.md"
            rc, wall, cpu, peak, said = timed(["review", str(lib), "--max-patterns",
                                               str(max_patterns), "--body-file",
                                               str(body_file)], env, lib)
        finally:
            stand_in.close()
        if not body_file.is_file():
            sys.exit(f"gardener review failed (exit {rc}):\n{said[-3000:]}")
        text = body_file.read_text(encoding="utf-8")
        report = git(lib, "show", f"{BRANCH}:./.gardener/reports/pass.md")
        changed = re.search(r"^\| patterns changed \| (\d+) \|$", text, re.MULTILINE)
        count = changed.group(1) if changed else "?"
        print(f"review --max-patterns {max_patterns}: exit {rc}, {wall:.1f} s wall, "
              f"{cpu:.1f} s CPU, {peak / 1024:.0f} MB peak; {count} patterns changed; "
              f"body {len(text):,} characters (GitHub takes 65,536); full report "
              f"{len(report):,} characters in {BRANCH}:.gardener/reports/pass.md")
        links = re.findall(r"^\| `([^`]+)` \| `([^`]+)` \|", report, re.MULTILINE)
        if len(links) < 2:
            sys.exit("the review added fewer than two links: nothing to reject or promote")
        # reject and promote act on the working files: put two of the branch's files there
        (rslug, rtarget), (pslug, ptarget) = links[0], next(
            lk for lk in links if lk[0] != links[0][0])
        paths = [p for p in git(lib, "diff", "--name-only", "--relative", "HEAD",
                                BRANCH).split()
                 if p.endswith(".md") and not any(x.startswith(".") for x in Path(p).parts)]
        ledger = lib / ".gardener" / "decisions.yaml"
        kept = ledger.read_bytes() if ledger.is_file() else None
        git(lib, "checkout", BRANCH, "--", *paths)
        try:
            for args in (["reject", rslug, rtarget, "--reason", "measured"],
                         ["promote", pslug, ptarget]):
                rc, wall, cpu, peak, said = timed([*args, "--library", str(lib)], env, lib)
                print(f"{args[0]} {args[1]} {args[2]}: exit {rc}, {wall:.2f} s wall, "
                      f"{cpu:.2f} s CPU, {peak / 1024:.0f} MB peak")
            rc, wall, cpu, peak, said = timed(["--help"], env, lib)
            print(f"for comparison, gardener --help: {wall:.2f} s wall, {cpu:.2f} s CPU, "
                  f"{peak / 1024:.0f} MB peak")
        finally:
            git(lib, "checkout", "HEAD", "--", *paths)
            if kept is None:
                ledger.unlink(missing_ok=True)
            else:
                ledger.write_bytes(kept)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=Path, help="measure a review of this library instead")
    ap.add_argument("--max-patterns", type=int, default=150)
    ap.add_argument("--body", type=Path, help="with --scale: keep the body in this file")
    args = ap.parse_args()
    if args.scale is not None:
        scale(args.scale.resolve(), args.max_patterns,
              args.body.resolve() if args.body else None)
        return
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "GARDENER_MODEL", "GARDENER_MODE"):
        os.environ.pop(name, None)
    with tempfile.TemporaryDirectory(prefix="review-example-") as tmp:
        repo = Path(tmp) / "library"
        lib = repo / "patterns"
        lib.mkdir(parents=True)
        for path in sorted((ROOT / "patterns").iterdir()):
            if path.is_file():
                (lib / path.name).write_bytes(path.read_bytes())
        git(repo, "init", "-q", "-b", "main")
        git(repo, "-c", "user.name=A Maintainer", "-c", "user.email=maintainer@example.org",
            "add", "-A")
        git(repo, "-c", "user.name=A Maintainer", "-c", "user.email=maintainer@example.org",
            "commit", "-q", "-m", "the sample library")
        body = Path(tmp) / "body.md"
        review(repo, body)
        # The first pattern (by file name) to which the review added a link.
        slug, new = "", []
        for path in sorted(lib.glob("*.md")):
            new = [t for t in links(repo, BRANCH, path.name)
                   if t not in links(repo, "main", path.name)]
            if new:
                slug = path.stem
                break
        if new:
            result = CliRunner().invoke(app, [
                "reject", slug, new[0], "--library", str(lib),
                "--reason", "a maintainer sees no real connection", "--today", TODAY])
            if result.exit_code != 0:
                sys.exit(f"gardener reject failed:\n{result.output}")
            review(repo, body)
        text = body.read_text(encoding="utf-8")
    rejected = (f", after a maintainer had rejected one proposed link (`gardener reject {slug} "
                f"{new[0]}`)" if new else
                "; the recorded model proposed no link that passed the evidence check, so there "
                "was none to reject")
    DOC.write_text(
        "# Example: the pull request of a gardening pass\n\n"
        "What `gardener review` wrote for a copy of the sample library (`patterns/`), with the "
        f"model's answers replayed from `fixtures/`{rejected}. On GitHub "
        "the Mermaid blocks render as graphs and the diffs fold away. The full report the "
        "body links is committed on the review's branch; the link is relative to the pull "
        "request's page here, as the example's repository has no GitHub remote. Regenerate "
        "with "
        "`PYTHONPATH=. .venv/bin/python scripts/review_example.py`.\n\n---\n\n" + text,
        encoding="utf-8")
    print(f"wrote {DOC.relative_to(ROOT)} ({len(text):,} characters of body)")


if __name__ == "__main__":
    main()
