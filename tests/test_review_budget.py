"""``gardener review`` of a pass too large for one pull-request body, and reviews in batches.

A library of the sample patterns and copies of them (new slugs and ids), in a git repository,
reviewed end to end against the fake model: the body stays under GitHub's limit and links the
full report, which the branch's commit holds; ``--max-patterns`` takes the stale patterns in
batches, the next batch once the last one is merged.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gardener.cli.main import app
from gardener.testing.fake_openai import FakeOpenAI, use_as_endpoint
from gardener.testing.responders import grounded_responder

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "patterns"
BRANCH = "gardener/garden"
GITHUB_LIMIT = 65_536
REPORT = "lib/.gardener/reports/pass.md"

runner = CliRunner()


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, check=True)
    return done.stdout.decode()


def library(root: Path, copies: int) -> list[str]:
    """The sample patterns and ``copies`` copies of each (``SLUG-copy-K``, a new ``pat_``
    id), committed on ``main`` under ``lib/``; their slugs."""
    lib = root / "lib"
    lib.mkdir(parents=True)
    slugs = []
    for path in sorted(SAMPLES.glob("*.md")):
        if path.name == "README.md":
            continue
        text = path.read_text(encoding="utf-8")
        slug = re.search(r"^slug: (\S+)$", text, re.MULTILINE)
        ident = re.search(r"^id: (pat_\w+)$", text, re.MULTILINE)
        assert slug is not None and ident is not None
        (lib / path.name).write_text(text, encoding="utf-8")
        slugs.append(slug.group(1))
        for k in range(1, copies + 1):
            copy = (text.replace(f"slug: {slug.group(1)}\n", f"slug: {slug.group(1)}-copy-{k}\n")
                    .replace(f"id: {ident.group(1)}\n", f"id: {ident.group(1)}{k}\n"))
            (lib / f"{path.stem}-copy-{k}.md").write_text(copy, encoding="utf-8")
            slugs.append(f"{slug.group(1)}-copy-{k}")
    git(root, "init", "-q", "-b", "main")
    git(root, "-c", "user.name=A Person", "-c", "user.email=p@example.org", "add", "-A")
    git(root, "-c", "user.name=A Person", "-c", "user.email=p@example.org", "commit", "-q",
        "-m", "the library")
    return sorted(slugs)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(responder=grounded_responder) as server:
        yield server


@pytest.fixture
def endpoint(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    for name in ("GITHUB_TOKEN", "GH_TOKEN", "GITHUB_REPOSITORY", "GITHUB_API_URL",
                 "GITHUB_SERVER_URL"):
        monkeypatch.delenv(name, raising=False)
    return use_as_endpoint(monkeypatch, fake)


def review(root: Path, *args: str, today: str = "2026-03-01") -> str:
    result = runner.invoke(app, ["review", str(root / "lib"), "--today", today, *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_a_pass_too_large_for_one_body_fits_and_links_the_full_report(
        tmp_path: Path, endpoint: FakeOpenAI) -> None:
    root = tmp_path / "repo"
    slugs = library(root, copies=3)
    git(root, "remote", "add", "origin", "https://github.com/commons/library.git")
    body_file = tmp_path / "body.md"
    review(root, "--body-file", str(body_file))
    body = body_file.read_text(encoding="utf-8")
    commit = git(root, "rev-parse", BRANCH).strip()
    report = git(root, "show", f"{BRANCH}:{REPORT}")
    # the pass says more than GitHub takes; the body is cut to its budget, the report is not
    assert len(report) > GITHUB_LIMIT
    assert len(body) <= 60_000
    changed = re.search(r"^\| patterns changed \| (\d+) \|$", body, re.MULTILINE)
    assert changed is not None and int(changed.group(1)) == len(slugs)
    url = f"https://github.com/commons/library/blob/{commit}/{REPORT}"
    assert f"📄 **Full report**: [`{REPORT}`]({url})" in body
    # what is left out is said, with where to find it
    assert f"are left out to keep this body under GitHub's size limit; they are in the [full " \
           f"report]({url})._" in body
    # the report is the whole pass: every changed pattern's section and every new link
    for slug in slugs:
        assert f"(`{slug}`)\n" in report
    new_links = re.search(r"^### New links \((\d+)\)$", report, re.MULTILINE)
    assert new_links is not None
    rows = [ln for ln in report.splitlines() if re.match(r"^\| `[^`]+` \| `[^`]+` \|", ln)]
    assert len(rows) == int(new_links.group(1)) > 0
    # the report is in the branch's one commit, beside the pattern files
    files = git(root, "show", "--name-only", "--format=", BRANCH).split()
    assert REPORT in files
    assert git(root, "rev-list", f"main..{BRANCH}").split() == [commit]


def test_a_smaller_budget_cuts_the_new_links_and_says_how_many(
        tmp_path: Path, endpoint: FakeOpenAI) -> None:
    root = tmp_path / "repo"
    library(root, copies=0)
    body_file = tmp_path / "body.md"
    review(root, "--body-file", str(body_file), "--body-budget", "10000")
    body = body_file.read_text(encoding="utf-8")
    commit = git(root, "rev-parse", BRANCH).strip()
    assert len(body) <= 10_000
    link = f"../blob/{commit}/{REPORT}"  # no GitHub remote: relative to the pull request
    assert f"[full report]({link})" in body
    shown = re.search(r"^### New links \((\d+)\)$", body, re.MULTILINE)
    more = re.search(r"^_(\d+) more new links, in the \[full report\]", body, re.MULTILINE)
    assert shown is not None and more is not None
    rows = [ln for ln in body.splitlines() if re.match(r"^\| `[^`]+` \| `[^`]+` \|", ln)]
    assert len(rows) + int(more.group(1)) == int(shown.group(1))


def asked(root: Path, rev: str) -> set[str]:
    """The slugs a pass recorded in the state at ``rev``: the patterns it asked."""
    state = json.loads(git(root, "show", f"{rev}:lib/.gardener/state.json"))
    return set(state["patterns"])


def test_reviews_take_stale_patterns_in_consecutive_batches(
        tmp_path: Path, endpoint: FakeOpenAI) -> None:
    root = tmp_path / "repo"
    slugs = library(root, copies=0)  # none gardened yet: batches go by slug
    body = review(root, "--max-patterns", "5")
    first = asked(root, BRANCH)
    assert first == set(slugs[:5])
    assert f"| stale patterns left for the next runs (--max-patterns) | {len(slugs) - 5} |" \
        in body
    # not merged: the next run proposes the same batch again, on the same branch
    review(root, "--max-patterns", "5", today="2026-03-02")
    assert asked(root, BRANCH) == first
    # merged: the next run takes the next batch
    git(root, "merge", "-q", "--ff-only", BRANCH)
    review(root, "--max-patterns", "5", today="2026-03-08")
    second = asked(root, BRANCH) - first
    assert second == set(slugs[5:10])
    git(root, "merge", "-q", "--ff-only", BRANCH)
    review(root, "--max-patterns", "5", today="2026-03-15")
    assert asked(root, BRANCH) - first - second == set(slugs[10:])
