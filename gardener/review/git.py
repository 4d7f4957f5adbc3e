"""The ``git`` command line, at the edge: the only module that runs git.

``gardener review`` works beside a person's checkout, never in it: it reads history, adds a
separate worktree for the pass, commits there and moves only its own branch ref. Everything
goes through the ``git`` program (no library), with prompts and pagers off, so the user's own
configuration (hooks, signing) does not leak into the gardener's commits.

Whoever can write the repository's ``.git/config`` (another account on a shared machine) can
name programs for git to run. So nothing from the configuration runs as a program where git
lets the gardener say so (``SAFE``, `Repo.guards`): no hooks, fsmonitor, credential helper,
askpass, signing, external diff or textconv, no clean/smudge/process filter of any name the
configuration defines, only git's own upload-pack and receive-pack (``UPLOAD_PACK``), no
command in a URL (``TRANSPORTS``). What git must still run (the remote's own receive-pack and
hooks, ``ssh``) gets an environment built from an allow-list (`_env`), so no key of the
person's reaches it. The push token goes only to calls git resolves to the token's own http(s)
server, which may then use that transport alone (`HttpAuth`): over http(s) no upload-pack,
receive-pack or hook runs on this machine.
File names come from ``ls-tree -z`` and blobs are asked for by object id, so no name can inject
a request.
"""

from __future__ import annotations

import base64
import logging
import os
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath

from gardener.errors import GardenerError

log = logging.getLogger("gardener.git")

ZERO = "0" * 40
DEFAULT_NAME = "graph-gardener"
DEFAULT_EMAIL = "gardener@localhost"
SAFE = ("--no-pager",
        "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false",
        "-c", "core.sshCommand=ssh", "-c", "credential.helper=", "-c", "core.askPass=",
        "-c", "core.alternateRefsCommand=", "-c", "log.showSignature=false",
        "-c", "commit.gpgSign=false", "-c", "push.gpgSign=false",
        "-c", "submodule.recurse=false", "-c", "fetch.recurseSubmodules=false",
        "-c", "gc.auto=0", "-c", "maintenance.auto=false", "-c", "http.saveCookies=false")
"""Options before every git command: the programs the configuration may name do not run.

An empty ``credential.helper`` clears every helper (URL-specific ones too); an empty
``core.askPass`` also skips ``SSH_ASKPASS``; ``core.alternateRefsCommand`` would run during a
fetch when ``objects/info/alternates`` names another repository. Filters and transports
depend on the configuration's names: `Repo.guards`."""

UPLOAD_PACK = "--upload-pack=git-upload-pack"
RECEIVE_PACK = "--receive-pack=git-receive-pack"
"""git's own, on the command line: ``remote.NAME.uploadpack``/``receivepack`` cannot be
overridden by ``-c`` (git keeps the first value it reads, the repository's)."""

TRANSPORTS = frozenset({"file", "ssh", "http", "https"})
"""What the gardener's own calls may reach a remote by. Not ``ext::`` or ``fd::`` (commands
in a URL), not other remote helpers, not ``git://`` (its ``core.gitProxy`` is a program, whose
first match wins over ours, and nobody pushes over it)."""

_ENV = frozenset({"PATH", "HOME", "XDG_CONFIG_HOME", "TMPDIR", "TZ", "LANG", "LANGUAGE",
                  "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_NOSYSTEM",
                  "GIT_SSH", "GIT_SSH_COMMAND", "GIT_SSH_VARIANT"})
"""What git needs from the person's environment: where programs and their configuration are,
the locale, and the ssh command the person chose for an ssh remote (``GIT_SSH_COMMAND``, as a
deploy key in CI needs; the person set it, not the repository, and it runs with this same
allow-listed environment)."""
_NETWORK_ENV = frozenset({"SSH_AUTH_SOCK", "http_proxy", "https_proxy", "HTTPS_PROXY",
                          "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY",
                          "GIT_SSL_CAINFO", "GIT_SSL_CAPATH", "SSL_CERT_FILE", "SSL_CERT_DIR",
                          "CURL_CA_BUNDLE"})
"""Only for ``ls-remote``, ``fetch`` and ``push``: the ssh agent, proxies and certificate
authorities, which reaching a remote may need and nothing else does."""
_FIXED = {"GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat", "PAGER": "cat", "LC_ALL": "C"}
_NO_PROGRAM = {"clean": "", "smudge": "", "process": "", "required": "false"}
"""A filter with these values runs nothing, and its absence is no error."""


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
    committer: str = ""
    """``name <email>`` as `author`; who made the commit object (an amend or a cherry-pick
    keeps the author and changes this)."""

    def made_by(self, who: Identity) -> bool:
        """Authored and committed by exactly ``who``."""
        return self.author == str(who) and self.committer == str(who)


@dataclass(frozen=True)
class HttpAuth:
    """The push token, for git's calls to one http(s) server (GitHub's) and no other.

    Given only where the remote's URL is on ``server``, and then that call may use the
    server's scheme alone, so no rewriting (``url.*.insteadOf``) can carry it over a local or
    ssh transport, where an upload-pack, receive-pack or hook would see it."""

    server: str
    token: str = field(repr=False)

    @property
    def key(self) -> str:
        return f"http.{self.server.rstrip('/')}/.extraheader"

    @property
    def header(self) -> str:
        basic = base64.b64encode(f"x-access-token:{self.token}".encode()).decode()
        return f"AUTHORIZATION: basic {basic}"

    def scheme(self) -> str:
        return self.server.partition("://")[0].lower()

    def covers(self, url: str) -> bool:
        """Whether ``url`` (as git resolved it) is on this server, over http(s)."""
        return (self.scheme() in ("http", "https")
                and url.startswith(self.server.rstrip("/") + "/"))


def _env(extra: Mapping[str, str] | None = None, *, network: bool = False) -> dict[str, str]:
    """git's environment: the allow-list from this one, what the gardener sets, ``extra``.

    An allow-list, not a deny-list: a key under a name nobody thought of (``AWS_SECRET_...``,
    ``ANTHROPIC_KEY``) stays out too, as do ``GIT_DIR``-like variables that would redirect git
    and ``GIT_CONFIG_*`` that would add configuration."""
    allowed = _ENV | _NETWORK_ENV if network else _ENV
    env = {k: v for k, v in os.environ.items() if k in allowed or k.startswith("LC_")}
    env.update(_FIXED)
    if extra:
        env.update(extra)
    return env


def _config_env(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """``pairs`` as command-line configuration through ``GIT_CONFIG_*``: any name fits (a
    filter named ``a=b`` could not be written as ``-c``), and a value never shows in ``ps``."""
    env = {"GIT_CONFIG_COUNT": str(len(pairs))}
    for i, (key, value) in enumerate(pairs):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return env


def _transports(allowed: Iterable[str], named: Iterable[str]) -> list[tuple[str, str]]:
    """``protocol.*.allow`` for a call: ``allowed`` always, every other name (git's, and those
    the configuration names) never."""
    ok = set(allowed)
    names = sorted(TRANSPORTS | {"ext", "fd", "git"} | set(named))
    return [("protocol.allow", "never"),
            *((f"protocol.{n}.allow", "always" if n in ok else "never") for n in names)]


@dataclass(frozen=True)
class Reach:
    """How one call reaches a remote: the transports it may use, configuration for it."""

    transports: frozenset[str] = TRANSPORTS
    config: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Guards:
    """Configuration that makes the configuration's own names run nothing."""

    config: tuple[tuple[str, str], ...]
    protocols: tuple[str, ...]
    """The transports the configuration names (``protocol.NAME.allow``)."""


@dataclass(frozen=True)
class Repo:
    """A git repository, run from ``root`` (the top of a working tree)."""

    root: Path

    @cached_property
    def guards(self) -> Guards:
        """Every filter the configuration defines (all scopes) emptied, and the transports
        it names; read once."""
        done = self._git(["config", "--null", "--name-only", "--get-regexp",
                          r"^(filter|protocol)\."], None, _env(), check=False)
        found: dict[str, set[str]] = {"filter": set(), "protocol": set()}
        for key in done.stdout.decode("utf-8", "surrogateescape").split("\0"):
            section, _, rest = key.partition(".")
            sub, _, _ = rest.rpartition(".")
            if sub and section in found:
                found[section].add(sub)
        config = [(f"filter.{name}.{var}", value) for name in sorted(found["filter"])
                  for var, value in _NO_PROGRAM.items()]
        return Guards(tuple(config), tuple(sorted(found["protocol"])))

    def _git(self, args: Sequence[str], cwd: Path | None, env: Mapping[str, str], *,
             input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        where = cwd or self.root
        try:
            done = subprocess.run(["git", *SAFE, *args], cwd=where, input=input,
                                  capture_output=True, env=dict(env), check=False)
        except FileNotFoundError:
            raise GitError("git is not installed (or not on PATH)") from None
        if check and done.returncode != 0:
            said = done.stderr.decode("utf-8", "replace").strip() or f"exit {done.returncode}"
            raise GitError(f"git {' '.join(args[:3])} in {where}: {said}")
        return done

    def run(self, *args: str, cwd: Path | None = None, input: bytes | None = None,
            env: Mapping[str, str] | None = None, check: bool = True,
            reach: Reach | None = None) -> subprocess.CompletedProcess[bytes]:
        """git with `guards`; ``reach`` for a call to a remote (its transports, its token)."""
        guards = self.guards
        allowed = reach.transports if reach is not None else TRANSPORTS
        extra = reach.config if reach is not None else ()
        config = _config_env([*guards.config, *_transports(allowed, guards.protocols),
                              *extra])
        full = _env({**(env or {}), **config}, network=reach is not None)
        return self._git(args, cwd, full, input=input, check=check)

    def out(self, *args: str, cwd: Path | None = None,
            env: Mapping[str, str] | None = None, reach: Reach | None = None) -> str:
        return self.run(*args, cwd=cwd, env=env, reach=reach).stdout.decode(
            "utf-8", "replace").strip()

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
        text = self.run("log", "--format=%H%x1f%an <%ae>%x1f%cn <%ce>%x1f%B%x1e",
                        spec).stdout.decode("utf-8", "replace")
        out = []
        for record in text.split("\x1e"):
            record = record.strip("\n")
            if record:
                sha, author, committer, message = record.split("\x1f", 3)
                out.append(Commit(sha, author, message, committer))
        return out

    def commit(self, sha: str) -> Commit:
        """One commit, with its author and committer."""
        text = self.run("log", "-1", "--format=%H%x1f%an <%ae>%x1f%cn <%ce>%x1f%B",
                        sha).stdout.decode("utf-8", "replace")
        found, author, committer, message = text.split("\x1f", 3)
        return Commit(found, author, message, committer)

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
        if self.run("diff", "--cached", "--quiet", "--no-ext-diff", "--no-textconv",
                    cwd=worktree, check=False).returncode == 0:
            return None
        env = {"GIT_AUTHOR_NAME": who.name, "GIT_AUTHOR_EMAIL": who.email,
               "GIT_COMMITTER_NAME": who.name, "GIT_COMMITTER_EMAIL": who.email}
        self.run("commit", "--quiet", "--no-verify", "--no-gpg-sign",
                 "--file=-", cwd=worktree, input=message.encode("utf-8"), env=env)
        return self.out("rev-parse", "HEAD", cwd=worktree)

    def set_branch(self, name: str, new: str, old: str | None) -> None:
        """Point ``name`` at ``new``, only if it still points at ``old`` (None: did not exist)."""
        self.run("update-ref", "-m", "graph-gardener review", f"refs/heads/{name}", new,
                 old or ZERO)

    def _reach(self, remote: str, auth: HttpAuth | None, *, push: bool) -> Reach:
        """The transports and configuration of a call to ``remote``: ``auth`` only where git
        resolves the remote (``url``, ``pushurl``, ``insteadOf``) to its server."""
        if auth is None:
            return Reach()
        asked = ("remote", "get-url", *(("--push",) if push else ()), remote)
        done = self.run(*asked, check=False)
        url = done.stdout.decode("utf-8", "replace").strip() if done.returncode == 0 else remote
        if not auth.covers(url):
            return Reach()
        return Reach(frozenset({auth.scheme()}), ((auth.key, auth.header),))

    def remote_sha(self, remote: str, name: str, *,
                   auth: HttpAuth | None = None) -> str | None:
        """Where ``name`` is on ``remote`` now (None: not there)."""
        text = self.out("ls-remote", UPLOAD_PACK, "--heads", remote, f"refs/heads/{name}",
                        reach=self._reach(remote, auth, push=False))
        for line in text.splitlines():
            sha, _, ref = line.partition("\t")
            if ref == f"refs/heads/{name}":
                return sha
        return None

    def fetch(self, remote: str, sha: str, *, auth: HttpAuth | None = None) -> None:
        self.run("fetch", UPLOAD_PACK, "--quiet", "--no-tags", remote, sha,
                 reach=self._reach(remote, auth, push=False))

    def push(self, remote: str, name: str, *, expected: str | None,
             auth: HttpAuth | None = None) -> None:
        """Move ``name`` on ``remote`` only if it is still at ``expected`` (None: absent), so a
        commit someone pushed meanwhile is never overwritten."""
        lease = f"--force-with-lease=refs/heads/{name}:{expected or ''}"
        self.run("push", RECEIVE_PACK, "--quiet", "--no-signed", lease, remote,
                 f"refs/heads/{name}:refs/heads/{name}",
                 reach=self._reach(remote, auth, push=True))


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
