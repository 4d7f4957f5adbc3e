"""Attacks on the bot's edges (issue 17), each performed on a temporary library."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path, PurePosixPath
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from gardener.cli.main import app
from gardener.review import git as gitmod
from gardener.review.branch import ReviewError, remote_lease

BRANCH = "gardener/garden"

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture
def library(tmp_path: Path) -> Path:
    lib = tmp_path / "lib"
    shutil.copytree(ROOT / "patterns", lib)
    return lib


def _reject(library: Path) -> tuple[int, str]:
    result = runner.invoke(app, ["reject", "accountability-partnership",
                                 "adaptive-facilitation", "-l", str(library)])
    return result.exit_code, result.stderr


def test_a_committed_ledger_symlink_does_not_redirect_the_write(library: Path,
                                                                tmp_path: Path) -> None:
    victim = tmp_path / "bashrc"
    victim.write_text("export PATH=/usr/bin\n", encoding="utf-8")
    (library / ".gardener").mkdir()
    (library / ".gardener" / "decisions.yaml").symlink_to(victim)
    code, stderr = _reject(library)
    assert code == 2
    assert "decisions.yaml: a symbolic link; the gardener never reads or writes" in stderr
    assert victim.read_text(encoding="utf-8") == "export PATH=/usr/bin\n"


def test_a_symlinked_gardener_folder_is_refused(library: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (library / ".gardener").symlink_to(home, target_is_directory=True)
    code, stderr = _reject(library)
    assert code == 1  # a file could not be written
    assert ".gardener is a symbolic link" in stderr
    assert list(home.iterdir()) == []


def test_a_stale_temporary_name_cannot_be_planted(library: Path, tmp_path: Path) -> None:
    """The old writer used ``decisions.yaml.tmp``; a link there must not be followed."""
    victim = tmp_path / "profile"
    victim.write_text("safe\n", encoding="utf-8")
    (library / ".gardener").mkdir()
    (library / ".gardener" / "decisions.yaml.tmp").symlink_to(victim)
    code, _ = _reject(library)
    assert code == 0
    assert victim.read_text(encoding="utf-8") == "safe\n"
    assert "adaptive-facilitation" in (library / ".gardener" / "decisions.yaml").read_text(
        encoding="utf-8")


# --- git: hooks, fsmonitor, secrets, injected names, people's pushes --------------------------


def _git(where: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=where, capture_output=True, check=True)
    return done.stdout.decode()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "lib").mkdir(parents=True)
    (root / "lib" / "a.md").write_text("a\n", encoding="utf-8")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "config", "user.name", "A Person")
    _git(root, "config", "user.email", "person@example.org")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "the library")
    return root


def _spy(path: Path, seen: Path) -> None:
    path.write_text(f"#!/bin/sh\nenv >> {seen}\n", encoding="utf-8")
    path.chmod(0o755)


def test_hooks_and_fsmonitor_never_run_and_git_sees_no_secret(
        repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = tmp_path / "seen"
    hooks = repo / ".git" / "hooks"
    for name in ("post-checkout", "prepare-commit-msg", "post-commit",
                 "reference-transaction", "pre-commit", "commit-msg"):
        _spy(hooks / name, seen)
    _spy(tmp_path / "monitor", seen)
    _git(repo, "config", "core.fsmonitor", str(tmp_path / "monitor"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-model-key-0123456789")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_secretsecretsecretsecret0123")
    r = gitmod.Repo(repo)
    work = tmp_path / "wt"
    r.add_worktree(work, r.resolve("main") or "")
    (work / "lib" / "a.md").write_text("gardened\n", encoding="utf-8")
    sha = r.commit_all(work, PurePosixPath("lib"), "garden\n\nGardener-Pass: x\n",
                       gitmod.Identity("graph-gardener", "gardener@localhost"))
    assert sha is not None
    r.set_branch("gardener/garden", sha, None)
    r.remove_worktree(work)
    assert not seen.exists(), seen.read_text(encoding="utf-8")
    env = gitmod._env()
    assert "OPENAI_API_KEY" not in env and "GITHUB_TOKEN" not in env


def test_a_file_name_with_a_newline_cannot_fetch_another_file(repo: Path) -> None:
    lib = repo / "lib"
    (repo / "secret.md").write_text("not yours\n", encoding="utf-8")  # outside the library
    evil = "b.md\nHEAD:secret.md"  # the old request line "HEAD:lib/<name>" asked for it too
    (lib / evil).write_text("b\n", encoding="utf-8")
    (lib / "café.md").write_text("c\n", encoding="utf-8")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "names")
    r = gitmod.Repo(repo)
    names = r.files("HEAD", PurePosixPath("lib"))
    assert {"lib/a.md", "lib/café.md", f"lib/{evil}"} == set(names)  # -z: names verbatim
    blobs = r.read_blobs("HEAD", [f"lib/{evil}", "lib/café.md", "lib/gone.md"])
    assert blobs == {f"lib/{evil}": None, "lib/café.md": b"c\n", "lib/gone.md": None}


def test_people_s_commits_on_the_remote_branch_are_never_overwritten(
        repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "origin.git"
    _git(tmp_path, "init", "-q", "--bare", str(remote))
    _git(repo, "remote", "add", "origin", str(remote))
    r = gitmod.Repo(repo)
    base = r.resolve("main") or ""
    _git(repo, "push", "-q", "origin", "main")

    def gardener_commit(text: str, parent: str) -> str:
        work = tmp_path / f"wt-{text}"
        r.add_worktree(work, parent)
        (work / "lib" / "a.md").write_text(text, encoding="utf-8")
        sha = r.commit_all(work, PurePosixPath("lib"), f"garden\n\nGardener-Pass: {text}\n",
                           gitmod.Identity("graph-gardener", "gardener@localhost"))
        r.remove_worktree(work)
        assert sha is not None
        return sha

    first = gardener_commit("one\n", base)
    r.set_branch(BRANCH, first, None)
    result = SimpleNamespace(branch=BRANCH, previous=None, base_sha=base)
    r.push("origin", BRANCH, expected=remote_lease(r, "origin", result))  # type: ignore[arg-type]
    # A person adds a commit to the pull request's branch on the remote.
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "-q", "-b", BRANCH, str(remote), str(clone))
    (clone / "lib" / "a.md").write_text("fixed by hand\n", encoding="utf-8")
    _git(clone, "-c", "user.name=B", "-c", "user.email=b@example.org", "commit", "-qam", "fix")
    _git(clone, "push", "-q", "origin", BRANCH)
    theirs = _git(clone, "rev-parse", "HEAD").strip()
    second = gardener_commit("two\n", base)
    r.set_branch(BRANCH, second, first)
    result = SimpleNamespace(branch=BRANCH, previous=first, base_sha=base)
    with pytest.raises(ReviewError, match="has commits people pushed"):
        remote_lease(r, "origin", result)  # type: ignore[arg-type]
    with pytest.raises(gitmod.GitError):  # and a push leasing the old tip is refused by git
        r.push("origin", BRANCH, expected=first)
    assert _git(remote, "rev-parse", BRANCH).strip() == theirs


# --- alias bombs in the gardener's own files --------------------------------------------------

BOMB = "a: &a [x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [{', '.join(['*' + p] * 8)}]\n"
    for p, n in zip("abcdefgh", "bcdefghi", strict=True))


@pytest.mark.parametrize("file", ["decisions.yaml", "communities.yaml", "entities.yaml"])
def test_an_alias_bomb_in_a_gardener_file_is_refused_briefly(library: Path, file: str) -> None:
    (library / ".gardener").mkdir()
    (library / ".gardener" / file).write_text(BOMB + "rejected: *i\n", encoding="utf-8")
    command = {"decisions.yaml": ["reject", "accountability-partnership",
                                  "adaptive-facilitation", "-l", str(library)],
               "communities.yaml": ["communities", "check", str(library)],
               "entities.yaml": ["health", str(library)]}[file]
    result = runner.invoke(app, command)
    assert result.exit_code in (1, 2), result.output
    assert f".gardener/{file}:1: front matter expands to more than" in result.stderr
    assert len(result.stderr) < 2000  # the message never dumps the expanded value


# --- pull-request body and terminal injection -------------------------------------------------


def test_a_slug_that_would_escape_its_code_span_is_refused_on_reading(tmp_path: Path) -> None:
    from gardener.library.load import load

    lib = tmp_path / "lib"
    lib.mkdir()
    text = (ROOT / "patterns" / "adaptive-facilitation.md").read_text(encoding="utf-8")
    hostile = text.replace("slug: adaptive-facilitation",
                           'slug: "x\\n\\n@org/team [x](https://evil)"', 1)
    assert hostile != text
    (lib / "p.md").write_text(hostile, encoding="utf-8")
    loaded = load(lib)
    assert loaded.entries == []
    (error,) = loaded.errors
    assert str(error).startswith(f"{lib / 'p.md'}:")
    assert "which a slug may not; refusing the pattern" in str(error)


def test_code_spans_and_cells_stay_one_line_without_controls() -> None:
    from gardener.review.body import cell, code

    assert code("x\n\n@org/team [x](https://evil)") == "`x @org/team [x](https://evil)`"
    assert "\x1b" not in cell("label \x1b[2J\x9b31m") and "\n" not in cell("a\nb")


def test_printed_text_loses_terminal_escapes() -> None:
    from gardener.cli.errors import shown

    assert shown("model says \x1b[2J[bold]hi\x07") == "model says [2J\\[bold]hi"


# --- two passes over one library ---------------------------------------------------------------


def test_a_second_pass_over_a_library_says_who_holds_it(library: Path) -> None:
    from gardener.library.lock import holding

    (library / ".x.md.abcd1234.tmp").write_text("another pass's half-written file",
                                                encoding="utf-8")
    with holding(library, "gardener run"):
        result = runner.invoke(app, ["prune", str(library)])
        assert result.exit_code == 2
        assert f"{library} is being gardened by pid " in result.stderr
        assert "(gardener run, since " in result.stderr
        assert (library / ".x.md.abcd1234.tmp").exists()  # its temporary file is left alone
    after = runner.invoke(app, ["prune", str(library)])
    assert after.exit_code == 0, after.output
    assert not (library / ".x.md.abcd1234.tmp").exists()  # now a leftover: cleared


def test_a_gardening_pass_is_refused_while_another_holds_the_library(library: Path) -> None:
    from gardener.library.lock import holding

    before = {p.name: p.read_bytes() for p in library.glob("*.md")}
    with holding(library, "gardener prune"):
        result = runner.invoke(app, ["run", str(library), "--fixtures",
                                     str(ROOT / "fixtures"), "--replay"])
    assert result.exit_code == 2, result.output
    assert "is being gardened by pid" in result.stderr and "(gardener prune, since" in \
        result.stderr
    assert {p.name: p.read_bytes() for p in library.glob("*.md")} == before


# --- the Prefect server `gardener serve` starts -------------------------------------------------


def test_a_served_run_is_refused_for_another_library_or_report(tmp_path: Path) -> None:
    from gardener.pipeline.served import SERVED, UnservedError, refuse_unserved, served

    lib, reports = tmp_path / "lib", tmp_path / "lib" / ".gardener" / "reports"
    env = served(lib, reports)
    assert SERVED in env
    refuse_unserved(str(lib), str(reports / "garden-latest.json"), env)
    refuse_unserved(str(lib), None, env)
    with pytest.raises(UnservedError, match=r"gardens .* only; refusing a run for /etc"):
        refuse_unserved("/etc", None, env)
    with pytest.raises(UnservedError, match=r"refusing to write /home/someone/\.bashrc"):
        refuse_unserved(str(lib), "/home/someone/.bashrc", env)
    refuse_unserved("/anywhere", "/any/file", {})  # not served: a run by hand goes anywhere


@pytest.mark.usefixtures("prefect_port_4200")
def test_serve_s_server_wants_its_auth_string_and_closes_cors(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    import httpx

    from gardener.pipeline.prefect import runtime

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    with runtime.api_server(timeout_s=120) as address:
        assert address is not None
        auth = os.environ["PREFECT_API_AUTH_STRING"]
        user, _, password = auth.partition(":")
        version = f"{address}/api/admin/version"
        assert httpx.get(version, timeout=10).status_code == 401  # no auth string: refused
        assert httpx.get(version, auth=(user, password), timeout=10).status_code == 200
        api = f"{address}/api/deployments/filter"
        # Authenticated but without a CSRF token (a page posting with the browser's
        # credentials): refused.
        assert httpx.post(api, json={}, auth=(user, password), timeout=10).status_code == 403
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:  # Prefect's own client gets through
            assert client.read_deployments() == []
        preflight = httpx.options(api, timeout=10, headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        assert preflight.headers.get("access-control-allow-origin") not in (
            "*", "https://evil.example")
    assert "PREFECT_API_AUTH_STRING" not in os.environ


# --- a person's edit made while a command works -------------------------------------------------


def test_promote_keeps_a_person_s_edit_made_meanwhile(library: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from gardener.library.load import load
    from gardener.review import promote as promote_mod

    entry = next(e for e in load(library).entries
                 if e.pattern.garden is not None and e.pattern.garden.inferred_links)
    path, target = entry.pattern.path, entry.pattern.garden.inferred_links[0].target
    real = promote_mod.promote

    def slow_promote(*args: object, **kwargs: object) -> object:
        done = real(*args, **kwargs)  # type: ignore[arg-type]
        path.write_text(path.read_text(encoding="utf-8") + "\nA person's late edit.\n",
                        encoding="utf-8")
        return done

    monkeypatch.setattr(promote_mod, "promote", slow_promote)
    result = runner.invoke(app, ["promote", entry.pattern.slug, target, "-l", str(library)])
    assert result.exit_code == 1
    assert "changed on disk since the pass read it" in result.stderr
    assert path.read_text(encoding="utf-8").endswith("\nA person's late edit.\n")
