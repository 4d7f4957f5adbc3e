"""``gardener review`` end to end on temporary git repositories, against the fake model.

Each test builds a repository holding a copy of the sample library in a subfolder, with the
user's own uncommitted, staged and untracked work in it, and checks that the review leaves
all of that alone while it creates or replaces the gardener's one commit on its branch.
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gardener.cli.main import app
from gardener.library import decisions
from gardener.library.document import read_text
from gardener.library.garden import read_garden
from gardener.model import Garden
from gardener.review import github
from gardener.testing.fake_github import FakeGitHub
from gardener.testing.fake_openai import FakeOpenAI, use_as_endpoint
from gardener.testing.responders import grounded_responder

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "patterns"
BRANCH = "gardener/garden"
TODAY = "2026-03-01"
GITHUB_VARIABLES = ("GITHUB_TOKEN", "GH_TOKEN", "GITHUB_API_URL", "GITHUB_REPOSITORY",
                    "GITHUB_SERVER_URL")

runner = CliRunner()


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, check=True)
    return done.stdout.decode()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(responder=grounded_responder) as server:
        yield server


@pytest.fixture
def endpoint(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    for name in GITHUB_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return use_as_endpoint(monkeypatch, fake)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository on branch main with the sample library committed under ``lib/``."""
    root = tmp_path / "repo"
    lib = root / "lib"
    lib.mkdir(parents=True)
    for path in sorted(SAMPLES.glob("*.md")):
        if path.name != "README.md":
            (lib / path.name).write_bytes(path.read_bytes())
    (lib / ".gitattributes").write_bytes((SAMPLES / ".gitattributes").read_bytes())
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "A Person")
    git(root, "config", "user.email", "person@example.org")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "the library")
    return root


def user_work(root: Path) -> None:
    """Uncommitted, staged and untracked work of the person whose checkout this is."""
    lib = root / "lib"
    edited = lib / "adversarial-growth.md"
    edited.write_bytes(edited.read_bytes() + b"\nAn unsaved thought of mine.\n")
    staged = lib / "consent-decision-making.md"
    staged.write_bytes(staged.read_bytes().replace(b"Consent", b"CONSENT", 1))
    git(root, "add", str(staged))
    (root / "notes.txt").write_text("untracked notes\n", encoding="utf-8")


def snapshot(root: Path) -> dict[str, str]:
    """Everything of the user's checkout a review must not touch."""
    files = {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(root.rglob("*")) if p.is_file() and ".git" not in p.parts}
    return {
        "head": git(root, "rev-parse", "HEAD"),
        "symbolic": git(root, "symbolic-ref", "HEAD"),
        "main": git(root, "rev-parse", "refs/heads/main"),
        "status": git(root, "status", "--porcelain", "--untracked-files=all"),
        "index": git(root, "ls-files", "--stage"),
        "staged": git(root, "diff", "--cached"),
        "unstaged": git(root, "diff"),
        "files": repr(files),
    }


def review(root: Path, *args: str, today: str = TODAY) -> str:
    result = runner.invoke(app, ["review", str(root / "lib"), "--today", today, *args])
    assert result.exit_code == 0, result.output
    return result.output


def garden_at(root: Path, rev: str, name: str) -> Garden:
    text = git(root, "show", f"{rev}:lib/{name}")
    doc = read_text(text, name)
    assert doc is not None
    garden = read_garden(doc)[0]
    assert garden is not None
    return garden


def targets(garden: Garden) -> set[str]:
    return {lk.target for lk in garden.inferred_links}


def over_main(root: Path) -> list[str]:
    return git(root, "rev-list", f"main..{BRANCH}").split()


def test_two_reviews_give_one_branch_with_an_updated_commit(
        repo: Path, endpoint: FakeOpenAI, tmp_path: Path) -> None:
    user_work(repo)
    before = snapshot(repo)
    body_file = tmp_path / "body.md"
    printed = review(repo, "--body-file", str(body_file))
    first = over_main(repo)
    assert len(first) == 1
    assert git(repo, "rev-parse", f"{BRANCH}^").strip() == before["main"].strip()
    assert snapshot(repo) == before
    message = git(repo, "log", "-1", "--format=%an <%ae>%n%B", BRANCH)
    assert message.startswith("graph-gardener <gardener@localhost>\n")
    assert "Gardener-Pass: 2026-03-01 model=" in message
    assert "Gardener-Library: lib" in message
    body = body_file.read_text(encoding="utf-8")
    assert body in printed
    assert "| patterns changed | 13 |" in body
    assert "```mermaid" in body and "<summary>Diff</summary>" in body
    assert "a/lib/accountability-partnership.md" in body  # repository paths, not the worktree
    assert "gardener-review-" not in body
    # only garden blocks (and the gardener's own state) changed on the branch
    changed = git(repo, "diff", "--name-only", "main", BRANCH).split()
    assert "lib/.gardener/state.json" in changed
    assert all(p.endswith(".md") or p.startswith("lib/.gardener/") for p in changed)

    review(repo, "--body-file", str(body_file), today="2026-03-02")
    second = over_main(repo)
    assert len(second) == 1 and second != first
    assert "Gardener-Pass: 2026-03-02" in git(repo, "log", "-1", "--format=%B", BRANCH)
    assert git(repo, "rev-parse", f"{BRANCH}^").strip() == before["main"].strip()
    assert git(repo, "branch", "--list", "gardener/*").split() == [BRANCH]
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert snapshot(repo) == before


def test_a_rejected_link_is_not_proposed_on_the_next_replayed_pass(
        repo: Path, endpoint: FakeOpenAI, tmp_path: Path) -> None:
    fixtures = tmp_path / "fixtures"
    review(repo, "--fixtures", str(fixtures), "--record")
    first = over_main(repo)[0]
    name = "accountability-partnership.md"
    proposed = garden_at(repo, BRANCH, name)
    added = sorted(targets(proposed) - targets(garden_at(repo, "main", name)))
    assert added, "the fake model proposes new links for the pattern"
    rejected = added[0]
    working = (repo / "lib" / name).read_bytes()
    result = runner.invoke(app, ["reject", "accountability-partnership", rejected,
                                 "--library", str(repo / "lib"), "--reason", "not related"])
    assert result.exit_code == 0, result.output
    assert (repo / "lib" / name).read_bytes() == working  # the link was only on the branch
    ledger = decisions.load(repo / "lib" / ".gardener" / "decisions.yaml")
    assert [(d.slug, d.target, d.type) for d in ledger.decisions] == [
        ("accountability-partnership", rejected, None)]

    before = snapshot(repo)
    asked = len(endpoint.chat_requests)
    body = review(repo, "--fixtures", str(fixtures), "--replay", today="2026-03-02")
    assert len(endpoint.chat_requests) == asked  # replayed: no model call
    assert over_main(repo) != [first] and len(over_main(repo)) == 1
    again = garden_at(repo, BRANCH, name)
    assert rejected not in targets(again)
    assert set(added[1:]) <= targets(again)
    assert f"**Not proposed again** (rejected earlier): `{rejected}`" in body
    assert snapshot(repo) == before


def test_a_link_deleted_by_hand_counts_as_rejected(
        repo: Path, endpoint: FakeOpenAI) -> None:
    review(repo)
    git(repo, "merge", "-q", "--ff-only", BRANCH)  # a maintainer merges the proposals
    name = "accountability-partnership.md"
    path = repo / "lib" / name
    doc = read_text(path.read_text(encoding="utf-8"), path)
    assert doc is not None
    garden = read_garden(doc)[0]
    assert garden is not None
    link = garden.inferred_links[0]
    assert link.text is not None
    # then deletes one link by hand, and edits the body so the pattern is gardened again
    text = doc.text.replace(link.text, "", 1) + "\nA note added later.\n"
    path.write_text(text, encoding="utf-8")
    git(repo, "commit", "-q", "-am", "drop a link that makes no sense")

    output = review(repo)
    ledger_text = git(repo, "show", f"{BRANCH}:lib/.gardener/decisions.yaml")
    ledger = decisions.parse(ledger_text, "decisions.yaml")
    assert [(d.slug, d.target, d.source) for d in ledger.decisions] == [
        ("accountability-partnership", link.target, "history")]
    assert "Rejections learned from history" in output
    # the pattern was gardened again; the model's proposal of the link was dropped
    assert f"`accountability-partnership -> {link.target}`" in output
    assert link.target not in targets(garden_at(repo, BRANCH, name))
    assert f"lib/{name}" not in git(repo, "diff", "--name-only", "main", BRANCH).split()


def test_review_refuses_a_branch_people_committed_to(repo: Path, endpoint: FakeOpenAI) -> None:
    review(repo)
    git(repo, "checkout", "-q", BRANCH)
    (repo / "lib" / "extra.txt").write_text("mine\n", encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a person's commit")
    result = runner.invoke(app, ["review", str(repo / "lib"), "--base", "main"])
    assert result.exit_code == 2
    assert "is checked out" in result.output
    git(repo, "checkout", "-q", "main")
    tip = git(repo, "rev-parse", BRANCH)
    result = runner.invoke(app, ["review", str(repo / "lib")])
    assert result.exit_code == 2
    assert "commits the gardener did not make" in result.output
    assert git(repo, "rev-parse", BRANCH) == tip
    review(repo, "--force")
    assert len(over_main(repo)) == 1


def errors(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def test_open_without_gh_or_token_fails_with_one_line_and_the_way_by_hand(
        repo: Path, endpoint: FakeOpenAI, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    monkeypatch.setattr(github, "gh_logged_in", lambda: False)
    git(repo, "remote", "add", "origin", "https://github.com/commons/library.git")
    body_file = tmp_path / "pr.md"
    result = runner.invoke(app, ["review", str(repo / "lib"), "--today", TODAY, "--open",
                                 "--body-file", str(body_file)])
    assert result.exit_code == 2, result.output
    (line,) = errors(result.output)
    assert line.startswith("error: --open: no pull request opened or updated: gh is not "
                           "installed or not logged in")
    assert "GITHUB_TOKEN is not set" in line
    assert (f"by hand: git push --force-with-lease origin {BRANCH} && gh pr create --base main "
            f"--head {BRANCH}") in result.output
    assert f"--body-file {body_file}" in result.output
    assert git(repo, "ls-remote", "--heads", ".", BRANCH).strip()  # the local branch exists
    assert body_file.is_file()


def test_open_without_a_remote_fails(repo: Path, endpoint: FakeOpenAI,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "t")
    monkeypatch.setenv("GITHUB_API_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("GITHUB_REPOSITORY", "commons/library")
    result = runner.invoke(app, ["review", str(repo / "lib"), "--today", TODAY, "--open"])
    assert result.exit_code == 2, result.output
    assert errors(result.output) == [
        "error: --open: no pull request opened or updated: the repository has no remote origin"]


def test_an_unreachable_github_is_one_line_and_no_traceback(
        repo: Path, endpoint: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    git(repo, "remote", "add", "origin", "https://github.com/commons/library.git")
    monkeypatch.setenv("GITHUB_TOKEN", "secret-token")
    monkeypatch.setenv("GITHUB_API_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("GITHUB_REPOSITORY", "commons/library")
    asked = len(endpoint.chat_requests)
    result = runner.invoke(app, ["review", str(repo / "lib"), "--today", TODAY, "--open"])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # the handler's exit, not an exception
    assert "Traceback" not in result.output and "secret-token" not in result.output
    (line,) = errors(result.output)
    assert line.startswith(f"error: --open: cannot reach GitHub's API at http://127.0.0.1:{port}"
                           " to list the closed pull requests: ")
    assert len(endpoint.chat_requests) == asked  # it stopped before asking the model


def test_a_push_that_fails_is_one_line_and_exit_1(
        repo: Path, endpoint: FakeOpenAI, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(repo, "remote", "add", "origin", str(tmp_path / "nowhere.git"))
    monkeypatch.setenv("GITHUB_TOKEN", "t")
    monkeypatch.setenv("GITHUB_REPOSITORY", "commons/library")
    with FakeGitHub(bare, token="t") as fake_github:
        monkeypatch.setenv("GITHUB_API_URL", fake_github.url)
        result = runner.invoke(app, ["review", str(repo / "lib"), "--today", TODAY, "--open"])
        assert fake_github.pulls == {}
    assert result.exit_code == 1, result.output
    (line,) = errors(result.output)
    assert line.startswith("error: --open: no pull request opened or updated: git ls-remote")
    assert "nowhere.git" in line


def test_a_failed_pattern_is_named_by_its_path_in_the_repository(
        repo: Path, endpoint: FakeOpenAI, tmp_path: Path) -> None:
    (repo / "lib" / "broken.md").write_text("---\ntitle: [unclosed\n---\nText.\n",
                                            encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a broken pattern")
    body_file = tmp_path / "body.md"
    result = runner.invoke(app, ["review", str(repo / "lib"), "--today", TODAY,
                                 "--body-file", str(body_file)])
    # an unreadable file nobody asked for is listed, and the review is made: exit 0
    assert result.exit_code == 0, result.output
    body = body_file.read_text(encoding="utf-8")
    assert "\n- lib/broken.md:3:1: invalid YAML" in body
    assert "gardener-review-" not in body
    assert "unreadable: lib/broken.md:3:1: invalid YAML" in result.output
    report = git(repo, "show", f"{BRANCH}:lib/.gardener/reports/pass.md")
    assert "\n- lib/broken.md:3:1: invalid YAML" in report
    strict = runner.invoke(app, ["review", str(repo / "lib"), "--today", TODAY, "--strict",
                                 "--body-file", str(body_file)])
    assert strict.exit_code == 1, strict.output  # --strict: an unreadable file fails it


def test_review_outside_git_is_a_clear_error(tmp_path: Path, endpoint: FakeOpenAI) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "a.md").write_bytes((SAMPLES / "adversarial-growth.md").read_bytes())
    result = runner.invoke(app, ["review", str(lib)])
    assert result.exit_code == 2
    assert "not inside a git repository" in result.output


def test_no_pass_takes_the_last_runs_gardens_and_nothing_else(
        repo: Path, endpoint: FakeOpenAI) -> None:
    result = runner.invoke(app, ["run", str(repo / "lib"), "--today", TODAY])
    assert result.exit_code == 0, result.output
    user_work(repo)  # an unsaved body edit in one of the gardened files, among others
    before = snapshot(repo)
    asked = len(endpoint.chat_requests)
    output = review(repo, "--no-pass")
    assert len(endpoint.chat_requests) == asked
    assert snapshot(repo) == before
    assert len(over_main(repo)) == 1
    for name in ("accountability-partnership.md", "adversarial-growth.md"):
        working = read_text((repo / "lib" / name).read_text(encoding="utf-8"), name)
        assert working is not None
        assert garden_at(repo, BRANCH, name) == read_garden(working)[0]
    branch_text = git(repo, "show", f"{BRANCH}:lib/adversarial-growth.md")
    assert "An unsaved thought of mine." not in branch_text
    assert "CONSENT" not in git(repo, "show", f"{BRANCH}:lib/consent-decision-making.md")
    assert "| patterns changed | 13 |" in output
    assert git(repo, "show", f"{BRANCH}:lib/.gardener/state.json") == (
        repo / "lib" / ".gardener" / "state.json").read_text(encoding="utf-8")
