"""Open or update the pull request for the gardener's branch on GitHub.

Two ways, tried in order: the ``gh`` command line when it is installed and logged in, else
the REST API with ``GITHUB_TOKEN`` (or ``GH_TOKEN``) when ``origin`` is a GitHub remote.
With neither, the caller prints what it would have done. The token never reaches a command
line or a message: git gets it through ``GIT_CONFIG_*`` environment variables, httpx
through a header.
"""

from __future__ import annotations

import base64
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx

from gardener.errors import GardenerError

API = "https://api.github.com"
_REMOTE = re.compile(
    r"^(?:https://(?:[^@/]+@)?github\.com/|(?:ssh://)?git@github\.com[:/])"
    r"(?P<owner>[A-Za-z0-9_.-]+)/(?P<repo>[A-Za-z0-9_.-]+?)(?:\.git)?/?$")


class GitHubError(GardenerError):
    """GitHub refused; the message says what GitHub said, never the token."""


@dataclass(frozen=True)
class PullRequest:
    owner: str
    repo: str
    head: str
    base: str
    title: str
    body: str


@dataclass(frozen=True)
class Route:
    """How the pull request can be opened: ``gh``, ``rest``, or ``none`` (and why)."""

    kind: Literal["gh", "rest", "none"]
    why: str
    token: str | None = None


def parse_remote(url: str | None) -> tuple[str, str] | None:
    """``(owner, repo)`` of a github.com remote URL (https or ssh), else None."""
    if not url:
        return None
    m = _REMOTE.match(url.strip())
    return (m.group("owner"), m.group("repo")) if m else None


def gh_logged_in(which: Callable[[str], str | None] = shutil.which,
                 run: Callable[..., subprocess.CompletedProcess[bytes]] = subprocess.run) -> bool:
    if which("gh") is None:
        return False
    done = run(["gh", "auth", "status"], capture_output=True, check=False)
    return done.returncode == 0


def choose(remote_url: str | None, env: Mapping[str, str], *, gh: bool) -> Route:
    """The way to open the pull request, given what this machine has."""
    if gh:
        return Route("gh", "the gh command line is installed and logged in")
    token = env.get("GITHUB_TOKEN") or env.get("GH_TOKEN")
    remote = parse_remote(remote_url)
    if token and remote:
        return Route("rest", "GITHUB_TOKEN is set and origin is on github.com", token)
    missing = []
    if not token:
        missing.append("gh is not installed or not logged in (gh auth login), and "
                       "GITHUB_TOKEN is not set")
    if not remote:
        missing.append(f"origin ({remote_url or 'no remote'}) is not a github.com repository")
    return Route("none", "; ".join(missing))


def push_env(token: str) -> dict[str, str]:
    """Environment for ``git push`` to github.com with ``token``, off the command line."""
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {"GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.https://github.com/.extraheader",
            "GIT_CONFIG_VALUE_0": f"AUTHORIZATION: basic {basic}"}


def _check(response: httpx.Response, what: str) -> Any:
    if response.status_code >= 400:
        try:
            said = response.json().get("message", "")
        except ValueError:
            said = response.text[:200]
        raise GitHubError(f"GitHub refused to {what}: HTTP {response.status_code} {said}")
    return response.json()


def rest_upsert(pr: PullRequest, token: str, *, transport: httpx.BaseTransport | None = None,
                api: str = API) -> str:
    """Create the pull request, or update the open one from the same head; its URL."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
               "X-GitHub-Api-Version": "2022-11-28", "User-Agent": "graph-gardener"}
    base = f"/repos/{pr.owner}/{pr.repo}/pulls"
    with httpx.Client(base_url=api, headers=headers, transport=transport,
                      timeout=30.0) as client:
        found = _check(client.get(base, params={"head": f"{pr.owner}:{pr.head}",
                                                "base": pr.base, "state": "open"}),
                       "list pull requests")
        if isinstance(found, list) and found:
            number = found[0]["number"]
            done = _check(client.patch(f"{base}/{number}",
                                       json={"title": pr.title, "body": pr.body}),
                          f"update pull request #{number}")
        else:
            done = _check(client.post(base, json={"title": pr.title, "head": pr.head,
                                                  "base": pr.base, "body": pr.body}),
                          "create the pull request")
    return str(done.get("html_url", ""))


def gh_upsert(pr: PullRequest, body_file: Path, cwd: Path,
              run: Callable[..., subprocess.CompletedProcess[bytes]] = subprocess.run) -> str:
    """The same through ``gh``: edit the open pull request of the branch, else create one."""
    view = run(["gh", "pr", "view", pr.head, "--json", "url,state", "--jq",
                "select(.state == \"OPEN\") | .url"], cwd=cwd, capture_output=True, check=False)
    url = view.stdout.decode().strip() if view.returncode == 0 else ""
    if url:
        args = ["gh", "pr", "edit", pr.head, "--title", pr.title, "--body-file", str(body_file)]
    else:
        args = ["gh", "pr", "create", "--base", pr.base, "--head", pr.head, "--title",
                pr.title, "--body-file", str(body_file)]
    done = run(args, cwd=cwd, capture_output=True, check=False)
    if done.returncode != 0:
        raise GitHubError(f"{' '.join(args[:3])} failed: "
                          + done.stderr.decode("utf-8", "replace").strip())
    return url or done.stdout.decode().strip()


def would_do(pr: PullRequest, body_file: Path, remote: str, why: str) -> str:
    """What --open would have done, for a machine that cannot: exact enough to do by hand."""
    where = f"{pr.owner}/{pr.repo}" if pr.owner else "the GitHub repository of origin"
    return (f"--open: cannot reach GitHub from here ({why}).\n"
            f"It would have: pushed branch {pr.head} to {remote} (replacing its commit), then "
            f"opened or updated the pull request on {where} from {pr.head} into {pr.base}, "
            f"titled {pr.title!r}, with the body in {body_file}.\n"
            f"By hand: git push --force-with-lease {_shell(remote)} {_shell(pr.head)} && "
            f"gh pr create --base {_shell(pr.base)} --head {_shell(pr.head)} "
            f"--title {_shell(pr.title)} --body-file {_shell(str(body_file))}")


def _shell(text: str) -> str:
    return shlex.quote(text)
