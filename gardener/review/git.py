"""The ``git`` command line, at the edge: the only module that runs git.

``gardener review`` works beside a person's checkout, never in it: it reads history, adds a
separate worktree for the pass, commits there and moves only its own branch ref. Everything
goes through the ``git`` program (no library), with prompts and pagers off, so the user's own
configuration (hooks, signing) does not leak into the gardener's commits.

git runs with no hooks and no fsmonitor (``SAFE``), and without the model key or any token in
its environment (``_env``): a hook or helper from the repository's configuration would
otherwise run with them. Only ``push`` is given the push credentials. File names come from
``ls-tree -z`` and blobs are asked for by object id, so no name can inject a request.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from gardener.errors import GardenerError

log = logging.getLogger("gardener.git")

ZERO = "0" * 40
DEFAULT_NAME = "graph-gardener"
DEFAULT_EMAIL = "gardener@localhost"
SAFE = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false",
        "-c", "core.sshCommand=ssh", "-c", "credential.helper=")
"""Options before every git command: nothing from the repository's config runs as a program."""
_SECRET_SUFFIXES = ("_API_KEY", "_TOKEN", "_SECRET", "_PASSWORD")
_SECRET_NAMES = frozenset({"OPENAI_API_KEY", "GITHUB_TOKEN", "GH_TOKEN", "OPENAI_BASE_URL"})


class GitError(GardenerError):
    """A git command failed; the message names the command, the folder and git's own words."""


@dataclass(frozen=True)
class Identity:
    name: str
    email: str

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


@dataclass(frozen=True)
class Commit:
    sha: str
    author: str
    message: str


def is_secret(name: str) -> bool:
    """Variables git never needs and a hook must never see: keys, tokens, the endpoint."""
    upper = name.upper()
    return upper in _SECRET_NAMES or upper.endswith(_SECRET_SUFFIXES)


def _env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if (not k.startswith("GIT_") or k in ("GIT_SSH", "GIT_SSH_COMMAND", "GIT_ASKPASS",
                                                 "GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM"))
           and not is_secret(k)}
    env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat", "LC_ALL": "C"})
    if extra:
        env.update(extra)
    return env


@dataclass(frozen=True)
class Repo:
    """A git repository, run from ``root`` (the top of a working tree)."""

    root: Path

    def run(self, *args: str, cwd: Path | None = None, input: bytes | None = None,
            env: Mapping[str, str] | None = None,
            check: bool = True) -> subprocess.CompletedProcess[bytes]:
        where = cwd or self.root
        try:
            done = subprocess.run(["git", *SAFE, *args], cwd=where, input=input,
                                  capture_output=True, env=_env(env), check=False)
        except FileNotFoundError:
            raise GitError("git is not installed (or not on PATH)") from None
        if check and done.returncode != 0:
            said = done.stderr.decode("utf-8", "replace").strip() or f"exit {done.returncode}"
            raise GitError(f"git {' '.join(args[:3])} in {where}: {said}")
        return done

    def out(self, *args: str, cwd: Path | None = None,
            env: Mapping[str, str] | None = None) -> str:
        return self.run(*args, cwd=cwd, env=env).stdout.decode("utf-8", "replace").strip()

    # -- names -------------------------------------------------------------------------------

    def resolve(self, rev: str) -> str | None:
        done = self.run("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
        return done.stdout.decode().strip() if done.returncode == 0 else None

    def branch_sha(self, name: str) -> str | None:
        return self.resolve(f"refs/heads/{name}")

    def current_branch(self) -> str | None:
        done = self.run("symbolic-ref", "--quiet", "--short", "HEAD", check=False)
        return done.stdout.decode().strip() or None if done.returncode == 0 else None

    def default_branch(self, remote: str = "origin") -> str | None:
        done = self.run("symbolic-ref", "--quiet", "--short", f"refs/remotes/{remote}/HEAD",
                        check=False)
        name = done.stdout.decode().strip()
        return name.removeprefix(f"{remote}/") or None if done.returncode == 0 else None

    def valid_branch_name(self, name: str) -> bool:
        return self.run("check-ref-format", "--branch", name, check=False).returncode == 0

    def checked_out(self) -> dict[str, Path]:
        """Branches checked out in any worktree of the repository, and where."""
        text = self.out("worktree", "list", "--porcelain")
        found: dict[str, Path] = {}
        where: Path | None = None
        for line in text.splitlines():
            if line.startswith("worktree "):
                where = Path(line[len("worktree "):])
            elif line.startswith("branch refs/heads/") and where is not None:
                found[line[len("branch refs/heads/"):]] = where
        return found

    def config(self, key: str) -> str | None:
        done = self.run("config", "--get", key, check=False)
        return done.stdout.decode().strip() or None if done.returncode == 0 else None

    def remote_url(self, remote: str = "origin") -> str | None:
        return self.config(f"remote.{remote}.url")

    def git_dir(self) -> Path:
        return Path(self.out("rev-parse", "--path-format=absolute", "--git-common-dir"))

    # -- history -----------------------------------------------------------------------------

    def commits(self, spec: str) -> list[Commit]:
        """Commits of ``spec`` (``a..b``), newest first."""
        text = self.run("log", "--format=%H%x1f%an <%ae>%x1f%B%x1e", spec).stdout.decode(
            "utf-8", "replace")
        out = []
        for record in text.split("\x1e"):
            record = record.strip("\n")
            if record:
                sha, author, message = record.split("\x1f", 2)
                out.append(Commit(sha, author, message))
        return out

    def grep_commits(self, rev: str, text: str) -> list[str]:
        """Commits reachable from ``rev`` whose message holds ``text``, newest first."""
        return self.out("log", "--format=%H", "--fixed-strings", f"--grep={text}",
                        rev).split()

    def message(self, sha: str) -> str:
        return self.run("log", "-1", "--format=%B", sha).stdout.decode("utf-8", "replace")

    def changed_paths(self, a: str, b: str, under: PurePosixPath) -> list[str]:
        text = self.run("diff", "--name-only", "-z", "--no-renames", "--no-ext-diff",
                        "--no-textconv", a, b, "--",
                        str(under)).stdout.decode("utf-8", "surrogateescape")
        return [p for p in text.split("\0") if p]

    def files(self, rev: str, under: PurePosixPath) -> dict[str, str]:
        """Every file below ``under`` at ``rev`` and its blob id (``ls-tree -z``: names raw)."""
        text = self.run("ls-tree", "-r", "-z", "--full-tree", rev, "--",
                        str(under)).stdout.decode("utf-8", "surrogateescape")
        out: dict[str, str] = {}
        for record in text.split("\0"):
            meta, tab, name = record.partition("\t")
            parts = meta.split()
            if tab and len(parts) == 3 and parts[1] == "blob":
                out[name] = parts[2]
        return out

    def read_blobs(self, rev: str, paths: Sequence[str],
                   ids: Mapping[str, str] | None = None) -> dict[str, bytes | None]:
        """Each path's bytes at ``rev`` (None where it does not exist), in one git process.

        Blobs are requested by object id from ``ls-tree``, never by a name written into the
        request: a name holding a newline cannot ask for a second object.
        ``ids`` (from `files` at ``rev``) saves listing the tree again.
        """
        if not paths:
            return {}
        for path in paths:
            if has_control(path):
                log.warning("%r: a file name with control characters; not read", path)
        if ids is None:
            listed: dict[str, str] = {}
            for folder in sorted({str(PurePosixPath(p).parent) for p in paths}):
                listed.update(self.files(rev, PurePosixPath(folder)))
            ids = listed
        out: dict[str, bytes | None] = {p: None for p in paths}
        wanted = [p for p in paths if p in ids and not has_control(p)]
        if not wanted:
            return out
        request = "".join(f"{ids[p]}\n" for p in wanted).encode("ascii")
        data = self.run("cat-file", "--batch", input=request).stdout
        pos = 0
        for path in wanted:
            end = data.index(b"\n", pos)
            header = data[pos:end].split()
            pos = end + 1
            if len(header) < 3 or header[-1] == b"missing":
                out[path] = None
                continue
            size = int(header[2])
            out[path] = data[pos:pos + size]
            pos += size + 1
        return out

    # -- writing (never the user's checkout) --------------------------------------------------

    def add_worktree(self, path: Path, commit: str) -> None:
        self.run("worktree", "add", "--detach", "--quiet", str(path), commit)

    def remove_worktree(self, path: Path) -> None:
        self.run("worktree", "remove", "--force", str(path), check=False)
        self.run("worktree", "prune", check=False)

    def commit_all(self, worktree: Path, under: PurePosixPath, message: str,
                   who: Identity) -> str | None:
        """Commit every change below ``under`` in ``worktree``; None when nothing changed."""
        self.run("add", "--all", "--", str(under), cwd=worktree)
        if self.run("diff", "--cached", "--quiet", cwd=worktree, check=False).returncode == 0:
            return None
        env = {"GIT_AUTHOR_NAME": who.name, "GIT_AUTHOR_EMAIL": who.email,
               "GIT_COMMITTER_NAME": who.name, "GIT_COMMITTER_EMAIL": who.email}
        self.run("-c", "commit.gpgsign=false", "commit", "--quiet", "--no-verify",
                 "--file=-", cwd=worktree, input=message.encode("utf-8"), env=env)
        return self.out("rev-parse", "HEAD", cwd=worktree)

    def set_branch(self, name: str, new: str, old: str | None) -> None:
        """Point ``name`` at ``new``, only if it still points at ``old`` (None: did not exist)."""
        self.run("update-ref", "-m", "graph-gardener review", f"refs/heads/{name}", new,
                 old or ZERO)

    def remote_sha(self, remote: str, name: str, *,
                   env: Mapping[str, str] | None = None) -> str | None:
        """Where ``name`` is on ``remote`` now (None: not there)."""
        text = self.out("ls-remote", "--heads", remote, f"refs/heads/{name}", env=env)
        for line in text.splitlines():
            sha, _, ref = line.partition("\t")
            if ref == f"refs/heads/{name}":
                return sha
        return None

    def fetch(self, remote: str, sha: str, *, env: Mapping[str, str] | None = None) -> None:
        self.run("fetch", "--quiet", "--no-tags", remote, sha, env=env)

    def push(self, remote: str, name: str, *, expected: str | None,
             env: Mapping[str, str] | None = None) -> None:
        """Move ``name`` on ``remote`` only if it is still at ``expected`` (None: absent), so a
        commit someone pushed meanwhile is never overwritten."""
        lease = f"--force-with-lease=refs/heads/{name}:{expected or ''}"
        self.run("push", "--quiet", lease, remote, f"refs/heads/{name}:refs/heads/{name}",
                 env=env)


def has_control(text: str) -> bool:
    """Whether ``text`` holds a C0 or C1 control character (a newline or escape included)."""
    return any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text)


def open_repo(path: Path) -> tuple[Repo, PurePosixPath]:
    """The repository holding folder ``path``, and ``path`` relative to its top."""
    folder = path.resolve()
    try:
        done = subprocess.run(["git", *SAFE, "rev-parse", "--show-toplevel"], cwd=folder,
                              capture_output=True, env=_env(), check=False)
    except FileNotFoundError:
        raise GitError("git is not installed (or not on PATH)") from None
    except NotADirectoryError:
        raise GitError(f"{path}: not a folder") from None
    if done.returncode != 0:
        raise GitError(f"{path}: not inside a git repository (git init, or pass the library "
                       "of a checkout)")
    root = Path(done.stdout.decode().strip()).resolve()
    return Repo(root), PurePosixPath(folder.relative_to(root).as_posix())


def identity(repo: Repo) -> Identity:
    """Who the gardener's commits are by: ``gardener.name``/``gardener.email`` from git config,
    else graph-gardener <gardener@localhost>: never the person running it."""
    return Identity(repo.config("gardener.name") or DEFAULT_NAME,
                    repo.config("gardener.email") or DEFAULT_EMAIL)
