"""Attacks through the repository's git configuration and the review branch (issue 25).

Whoever can write ``.git/config`` (another account on a shared machine) names programs for
git to run: filters, textconv, an external diff, upload-pack and receive-pack, askpass, a
command in a URL. Each test performs the attack on a temporary repository with a local bare
``origin``, runs the real ``gardener review`` (or the git calls it makes) and shows that none
of those programs ran, and that what git must run (the remote's own hook) saw no secret.
"""

from __future__ import annotations

import base64
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

from gardener.cli.main import app
from gardener.review import git as gitmod
from gardener.testing.fake_github import FakeGitHub
from gardener.testing.fake_openai import FakeOpenAI, use_as_endpoint
from gardener.testing.responders import grounded_responder

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "patterns"
BRANCH = "gardener/garden"
REPOSITORY = "commons/library"
TOKEN = "ghs_push-token-0123456789abcdef"
SECRETS = {"AWS_SECRET_ACCESS_KEY": "aws-secret-0123456789abcdef",
           "AZURE_OPENAI_KEY": "azure-secret-0123456789abcdef",
           "ANTHROPIC_KEY": "anthropic-secret-0123456789abcdef",
           "OPENAI_API_KEY": "sk-model-secret-0123456789abcdef",
           "GITHUB_TOKEN": TOKEN}
HEADER = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
"""The token as git would send it (``http.extraheader``)."""

runner = CliRunner()


def git(where: Path, *args: str) -> str:
    """The test's own git, with no secret in its environment (it runs the planted filters
    too once they are configured, and must not be mistaken for the gardener)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(where), "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run(["git", *args], cwd=where, capture_output=True, check=True, env=env)
    return done.stdout.decode()


def secrets_in(text: str) -> list[str]:
    return [name for name, value in {**SECRETS, "header": HEADER}.items() if value in text]


def spy(folder: Path, kind: str, seen: Path, then: str) -> str:
    """A program that writes its kind, arguments and environment to ``seen``, then ``then``
    (passing the data through, so the attack goes unnoticed where it works)."""
    path = folder / f"spy-{kind}"
    path.write_text(f'#!/bin/sh\n{{ echo "== {kind} $*"; env; }} >> {seen}\n{then}\n',
                    encoding="utf-8")
    path.chmod(0o755)
    return str(path)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(responder=grounded_responder) as server:
        yield server


@pytest.fixture
def world(tmp_path: Path, fake: FakeOpenAI,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Path, FakeGitHub]]:
    """A checkout with the sample library under ``lib/``, its bare ``origin`` (the remote's
    own pre-receive hook records its environment in ``remote-seen``), fake GitHub with the
    push token, the fake model, and the secrets of a person's shell in the environment."""
    root = tmp_path / "repo"
    lib = root / "lib"
    lib.mkdir(parents=True)
    for path in sorted(SAMPLES.glob("*.md")):
        if path.name != "README.md":
            (lib / path.name).write_bytes(path.read_bytes())
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "A Person")
    git(root, "config", "user.email", "person@example.org")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "the library")
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(root, "remote", "add", "origin", str(bare))
    git(root, "push", "-q", "origin", "main")
    spy(bare / "hooks", "pre-receive", tmp_path / "remote-seen", "exit 0")
    (bare / "hooks" / "spy-pre-receive").rename(bare / "hooks" / "pre-receive")
    use_as_endpoint(monkeypatch, fake, key=SECRETS["OPENAI_API_KEY"])
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GH_TOKEN", raising=False)
    with FakeGitHub(bare, token=TOKEN, repository=REPOSITORY) as github:
        monkeypatch.setenv("GITHUB_API_URL", github.url)
        monkeypatch.setenv("GITHUB_REPOSITORY", REPOSITORY)
        yield root, bare, github


def plant(root: Path, tmp_path: Path, seen: Path) -> None:
    """What another account writes into ``.git``: every program git lets a configuration
    name on the review's path, each a spy."""
    tools = tmp_path / "tools"
    tools.mkdir()
    config = {
        "filter.spy.clean": spy(tools, "clean", seen, "exec cat"),
        "filter.spy.smudge": spy(tools, "smudge", seen, "exec cat"),
        "filter.proc.process": spy(tools, "process", seen, "exit 1"),
        "diff.spy.textconv": spy(tools, "textconv", seen, 'exec cat "$1"'),
        "diff.external": spy(tools, "external-diff", seen, "exit 0"),
        "core.pager": spy(tools, "pager", seen, "exec cat"),
        "core.askPass": spy(tools, "askpass", seen, "exit 1"),
        "credential.helper": spy(tools, "credential", seen, "exit 0"),
        "log.showSignature": "true",
        "gpg.program": spy(tools, "gpg", seen, "exit 1"),
        "remote.origin.uploadpack": spy(tools, "upload-pack", seen,
                                        'exec git upload-pack "$@"'),
        "remote.origin.receivepack": spy(tools, "receive-pack", seen,
                                         'exec git receive-pack "$@"'),
    }
    for key, value in config.items():
        git(root, "config", key, value)
    (root / ".git" / "info").mkdir(exist_ok=True)
    (root / ".git" / "info" / "attributes").write_text(
        "* filter=spy diff=spy\n*.json filter=proc\n", encoding="utf-8")


def invoke(root: Path, *args: str) -> Any:
    return runner.invoke(app, ["review", str(root / "lib"), "--open", *args])


def test_programs_from_the_repository_s_config_never_run_and_see_no_secret(
        world: tuple[Path, Path, FakeGitHub], tmp_path: Path) -> None:
    root, bare, github = world
    seen = tmp_path / "seen"
    plant(root, tmp_path, seen)
    first = invoke(root, "--today", "2026-03-01")
    assert first.exit_code == 0, first.output
    assert "pull request #1 created" in first.output
    github.close(1)  # closed unmerged: the next run fetches its head (upload-pack)
    second = invoke(root, "--today", "2026-03-02")
    assert second.exit_code == 0, second.output
    assert "rejected (pull request #1 closed without merging)" in second.output
    assert git(bare, "rev-parse", BRANCH) == git(root, "rev-parse", BRANCH)  # pushed twice
    assert not seen.exists(), seen.read_text(encoding="utf-8")[:2000]
    # What git must run: the remote's own receive-pack and its hook; nothing secret reaches it.
    remote = (tmp_path / "remote-seen").read_text(encoding="utf-8")
    assert remote.count("== pre-receive") == 2
    assert secrets_in(remote) == []


def test_a_command_in_a_rewritten_url_never_runs(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "-c", "user.name=A", "-c", "user.email=a@example.org", "commit", "-q",
        "--allow-empty", "-m", "x")
    seen = tmp_path / "seen"
    command = spy(tmp_path, "ext", seen, "exit 1")
    git(root, "remote", "add", "origin", str(tmp_path / "origin.git"))
    git(root, "config", "protocol.ext.allow", "always")
    git(root, "config", "protocol.evil.allow", "always")
    git(root, "config", f"url.ext::{command} %S.insteadOf", str(tmp_path / "origin.git"))
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    repo = gitmod.Repo(root)
    with pytest.raises(gitmod.GitError, match="transport 'ext' not allowed"):
        repo.remote_sha("origin", BRANCH)
    git(root, "config", "--unset", f"url.ext::{command} %S.insteadOf")
    git(root, "config", "remote.origin.vcs", "evil")  # a remote helper git-remote-evil
    with pytest.raises(gitmod.GitError, match="transport 'evil' not allowed"):
        repo.remote_sha("origin", BRANCH)
    assert not seen.exists()


class _Recorder(BaseHTTPRequestHandler):
    """A git server that refuses everyone and writes down the headers it was sent."""

    heard: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.heard.append(str(self.headers.get("Authorization", "")))
        self.send_response(404)
        self.end_headers()


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    _Recorder.heard = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_token_goes_to_the_server_alone_never_to_a_local_receive_pack(
        tmp_path: Path, recorder: str, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "-c", "user.name=A", "-c", "user.email=a@example.org", "commit", "-q",
        "--allow-empty", "-m", "x")
    git(root, "branch", BRANCH)
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    remote_seen, seen = tmp_path / "remote-seen", tmp_path / "seen"
    spy(bare / "hooks", "pre-receive", remote_seen, "exit 0")
    (bare / "hooks" / "spy-pre-receive").rename(bare / "hooks" / "pre-receive")
    url = f"{recorder}/{REPOSITORY}.git"
    git(root, "remote", "add", "origin", url)
    git(root, "config", "remote.origin.receivepack",
        spy(tmp_path, "receive-pack", seen, 'exec git receive-pack "$@"'))
    git(root, "config", "remote.origin.uploadpack",
        spy(tmp_path, "upload-pack", seen, 'exec git upload-pack "$@"'))
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    repo = gitmod.Repo(root)
    auth = gitmod.HttpAuth(recorder, TOKEN)
    # On the server: the token goes with the request (and only as the header).
    with pytest.raises(gitmod.GitError):
        repo.push("origin", BRANCH, expected=None, auth=auth)
    assert _Recorder.heard and all(h == f"basic {HEADER}" for h in _Recorder.heard)
    # Elsewhere, nothing: a push that a rewrite sends to a local repository goes without it.
    _Recorder.heard.clear()
    git(root, "config", f"url.{bare}.pushInsteadOf", url)
    repo.push("origin", BRANCH, expected=None, auth=auth)
    assert git(bare, "rev-parse", BRANCH) == git(root, "rev-parse", BRANCH)
    assert _Recorder.heard == []
    assert not seen.exists(), seen.read_text(encoding="utf-8")[:2000]
    heard = remote_seen.read_text(encoding="utf-8")
    assert "== pre-receive" in heard and secrets_in(heard) == []


# --- a person's commit that copies the gardener's trailer --------------------------------------

COPIED = ("fix a link by hand\n\nGardener-Pass: 2026-03-01 model=x prompt=y\n"
          "Gardener-Library: lib\n")


def test_a_pushed_commit_with_a_copied_trailer_is_never_overwritten(
        world: tuple[Path, Path, FakeGitHub], tmp_path: Path) -> None:
    root, bare, _ = world
    first = invoke(root, "--today", "2026-03-01")
    assert first.exit_code == 0, first.output
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "-b", BRANCH, str(bare), str(clone))
    page = clone / "lib" / "adversarial-growth.md"
    page.write_text(page.read_text(encoding="utf-8") + "\nFixed by hand.\n", encoding="utf-8")
    git(clone, "-c", "user.name=B", "-c", "user.email=b@example.org", "commit", "-qa",
        "-m", COPIED)
    git(clone, "push", "-q", "origin", BRANCH)
    theirs = git(bare, "rev-parse", BRANCH)
    second = invoke(root, "--today", "2026-03-02")
    assert second.exit_code != 0
    assert "has commits people pushed" in second.output and "by B <b@example.org>" in \
        second.output
    assert git(bare, "rev-parse", BRANCH) == theirs


def test_a_gardener_commit_a_person_amended_is_theirs(
        world: tuple[Path, Path, FakeGitHub]) -> None:
    """Amending keeps the gardener as author and the trailer; the committer is the person."""
    root, _, _ = world
    assert runner.invoke(app, ["review", str(root / "lib"), "--today", "2026-03-01"]
                         ).exit_code == 0
    mine = git(root, "rev-parse", BRANCH).strip()
    message = git(root, "log", "-1", "--format=%B", mine)
    amended = subprocess.run(
        ["git", "-c", "user.name=B", "-c", "user.email=b@example.org", "commit-tree",
         f"{mine}^{{tree}}", "-p", f"{mine}^", "-m", message.strip()], cwd=root, check=True,
        capture_output=True, env={"PATH": "/usr/bin:/bin", "HOME": str(root),
                                  "GIT_AUTHOR_NAME": "graph-gardener",
                                  "GIT_AUTHOR_EMAIL": "gardener@localhost"}
    ).stdout.decode().strip()
    git(root, "update-ref", f"refs/heads/{BRANCH}", amended, mine)
    again = runner.invoke(app, ["review", str(root / "lib"), "--today", "2026-03-02"])
    assert again.exit_code == 2
    assert "commits the gardener did not make" in again.output
    assert git(root, "rev-parse", BRANCH).strip() == amended
