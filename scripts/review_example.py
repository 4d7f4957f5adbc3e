"""Regenerate docs/review-example.md: a real ``gardener review`` of a copy of ``patterns/``.

Run from the repository root (no network, no model: the answers come from ``fixtures/``)::

    PYTHONPATH=. .venv/bin/python scripts/review_example.py

It copies the sample library into a fresh git repository (folder ``patterns/``), reviews it
once, rejects the first link that review proposed with ``gardener reject``, and reviews
again: the second pull-request body, which shows the rejection at work, becomes the doc.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
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


def main() -> None:
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
    rejected = (f"after a maintainer had rejected one proposed link (`gardener reject {slug} "
                f"{new[0]}`)" if new else
                "(the recorded model proposed no link that passed the evidence check, so there "
                "was none to reject)")
    DOC.write_text(
        "# Example: the pull request of a gardening pass\n\n"
        "What `gardener review` wrote for a copy of the sample library (`patterns/`), with the "
        f"model's answers replayed from `fixtures/`, {rejected}. On GitHub "
        "the Mermaid blocks render as graphs and the diffs fold away. Regenerate with "
        "`PYTHONPATH=. .venv/bin/python scripts/review_example.py`.\n\n---\n\n" + text,
        encoding="utf-8")
    print(f"wrote {DOC.relative_to(ROOT)} ({len(text):,} characters of body)")


if __name__ == "__main__":
    main()
