"""Open or update the pull request for the gardener's branch on GitHub, and read the closed ones.

Two ways: the REST API with ``GITHUB_TOKEN`` (or ``GH_TOKEN``), or the ``gh`` command line
when it is installed and logged in. Inside GitHub Actions (``GITHUB_API_URL`` set) REST is
used, at that URL and for ``GITHUB_REPOSITORY``: gh ignores both. Elsewhere gh goes first,
then REST for a github.com ``origin``. With neither, the caller prints what it would have
done. The token never reaches a command line or a message: git gets it through
``GIT_CONFIG_*`` environment variables, httpx through a header.

As Renovate does, there is one rolling pull request per branch: an open one is updated
(title, body, labels), never doubled; one closed without merging means "no" to the links it
added (``closed_unmerged``).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import httpx

from gardener.errors import GardenerError
from gardener.review import git
from gardener.text import one_line, redact_url

API = "https://api.github.com"
_REMOTE = re.compile(
    r"^(?:https://(?:[^@/]+@)?github\.com/|(?:ssh://)?git@github\.com[:/])"
    r"(?P<owner>[A-Za-z0-9_.-]+)/(?P<repo>[A-Za-z0-9_.-]+?)(?:\.git)?/?$")


class GitHubError(GardenerError):
    """GitHub refused; the message says what GitHub said, never the token."""

    exit_code = 1  # the review was made; publishing it failed


class GitHubUnreachable(GitHubError):
    """GitHub's API could not be reached (the network, DNS, TLS, a timeout, a bad
    ``GITHUB_API_URL``): httpx's error, as one line naming the address."""


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
    api: str = API
    repository: tuple[str, str] | None = None
    """``(owner, repo)``: from ``GITHUB_REPOSITORY``, else from origin's URL."""
    server: str = "https://github.com"


@dataclass(frozen=True)
class Published:
    """The pull request after an upsert: where it is and whether this run created it."""

    number: int
    url: str
    created: bool


@dataclass(frozen=True)
class ClosedPR:
    """A pull request of the gardener's branch closed without merging."""

    number: int
    sha: str
    """Its head commit when it was closed (GitHub keeps it as ``refs/pull/N/head``)."""
    url: str = ""

    @property
    def ref(self) -> str:
        return f"refs/pull/{self.number}/head"


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


def repository(remote_url: str | None, env: Mapping[str, str]) -> tuple[str, str] | None:
    """``(owner, repo)``: ``GITHUB_REPOSITORY`` (``owner/repo``, as Actions sets it), else
    origin's github.com URL."""
    owner, _, name = env.get("GITHUB_REPOSITORY", "").strip().partition("/")
    if owner and name and "/" not in name:
        return owner, name
    return parse_remote(remote_url)


def choose(remote_url: str | None, env: Mapping[str, str], *, gh: bool) -> Route:
    """The way to open the pull request, given what this machine has."""
    token = env.get("GITHUB_TOKEN") or env.get("GH_TOKEN")
    remote = repository(remote_url, env)
    api = (env.get("GITHUB_API_URL") or "").strip().rstrip("/")
    server = (env.get("GITHUB_SERVER_URL") or "").strip().rstrip("/") or "https://github.com"
    if api and token and remote:
        return Route("rest", "GITHUB_API_URL and a token are set (GitHub Actions)", token,
                     api, remote, server)
    if gh:
        return Route("gh", "the gh command line is installed and logged in",
                     repository=remote)
    if token and remote:
        return Route("rest", "GITHUB_TOKEN is set and origin is on github.com", token,
                     api or API, remote, server)
    missing = []
    if not token:
        missing.append("gh is not installed or not logged in (gh auth login), and "
                       "GITHUB_TOKEN is not set")
    if not remote:
        missing.append(f"origin ({remote_url or 'no remote'}) is not a github.com repository "
                       "and GITHUB_REPOSITORY is not set")
    return Route("none", "; ".join(missing))


def push_env(token: str, server: str = "https://github.com") -> dict[str, str]:
    """Environment giving git ``token`` for ``server``, off the command line; the gardener's
    own calls go through `git.HttpAuth`, which gives it only to calls to that server."""
    auth = git.HttpAuth(server, token)
    return {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": auth.key,
            "GIT_CONFIG_VALUE_0": auth.header}


def web_url(remote_url: str | None, env: Mapping[str, str]) -> str | None:
    """The repository's page (``https://github.com/OWNER/REPO``; ``GITHUB_SERVER_URL``'s
    server inside Actions), or None when the repository is not known to be on GitHub."""
    found = repository(remote_url, env)
    if found is None:
        return None
    server = (env.get("GITHUB_SERVER_URL") or "").strip().rstrip("/") or "https://github.com"
    if not re.fullmatch(r"https?://[A-Za-z0-9.-]+(?::\d+)?(?:/[\w.~-]+)*", server):
        return None
    owner, name = found
    return f"{server}/{quote(owner, safe='')}/{quote(name, safe='')}"


def _check(response: httpx.Response, what: str) -> Any:
    if response.status_code >= 400:
        try:
            said = response.json().get("message", "")
        except (ValueError, AttributeError):
            said = response.text[:200]
        raise GitHubError(f"GitHub refused to {what}: HTTP {response.status_code} "
                          f"{one_line(str(said))}")
    try:
        return response.json()
    except ValueError:
        kind = one_line(response.headers.get("content-type", "no content type"))
        raise GitHubError(f"GitHub's answer to {what} is not JSON (HTTP "
                          f"{response.status_code}, {kind})") from None


@contextmanager
def _reaching(api: str, what: str) -> Iterator[None]:
    """httpx's network errors as `GitHubUnreachable`, one line, without a traceback."""
    try:
        yield
    except httpx.HTTPError as exc:
        said = one_line(str(exc)) or type(exc).__name__
        raise GitHubUnreachable(f"cannot reach GitHub's API at {redact_url(api)} to {what}: "
                                f"{said}") from None
    except httpx.InvalidURL as exc:
        raise GitHubUnreachable(f"GitHub's API address {redact_url(api)!r} is not a URL "
                                f"({one_line(str(exc))}); check GITHUB_API_URL") from None


def _client(token: str, api: str, transport: httpx.BaseTransport | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
               "X-GitHub-Api-Version": "2022-11-28", "User-Agent": "graph-gardener"}
    return httpx.Client(base_url=api, headers=headers, transport=transport, timeout=30.0)


def rest_open(pr: PullRequest, token: str, *, labels: Sequence[str] = (),
              transport: httpx.BaseTransport | None = None, api: str = API) -> Published:
    """Create the pull request, or update the open one from the same head; then add
    ``labels`` (adding is idempotent, and labels people put on it stay)."""
    base = f"/repos/{pr.owner}/{pr.repo}/pulls"
    with _reaching(api, "open the pull request"), _client(token, api, transport) as client:
        found = _check(client.get(base, params={"head": f"{pr.owner}:{pr.head}",
                                                "base": pr.base, "state": "open"}),
                       "list pull requests")
        created = not (isinstance(found, list) and found)
        if not created:
            number = int(found[0]["number"])
            done = _check(client.patch(f"{base}/{number}",
                                       json={"title": pr.title, "body": pr.body}),
                          f"update pull request #{number}")
        else:
            done = _check(client.post(base, json={"title": pr.title, "head": pr.head,
                                                  "base": pr.base, "body": pr.body}),
                          "create the pull request")
            number = int(done.get("number", 0))
        if labels and number:
            _check(client.post(f"/repos/{pr.owner}/{pr.repo}/issues/{number}/labels",
                               json={"labels": list(labels)}),
                   f"label pull request #{number}")
    return Published(number, str(done.get("html_url", "")), created)


def rest_upsert(pr: PullRequest, token: str, *, transport: httpx.BaseTransport | None = None,
                api: str = API) -> str:
    """Create the pull request, or update the open one from the same head; its URL."""
    return rest_open(pr, token, transport=transport, api=api).url


def closed_unmerged(owner: str, repo: str, head: str, token: str, *,
                    transport: httpx.BaseTransport | None = None,
                    api: str = API) -> list[ClosedPR]:
    """Pull requests from branch ``head`` closed without merging, newest first (one page
    of 100: older ones were read by earlier runs)."""
    with (_reaching(api, "list the closed pull requests"),
          _client(token, api, transport) as client):
        found = _check(client.get(f"/repos/{owner}/{repo}/pulls", params={
            "head": f"{owner}:{head}", "state": "closed", "sort": "updated",
            "direction": "desc", "per_page": "100"}), "list closed pull requests")
    return _closed(found, head)


def _closed(found: Any, head: str) -> list[ClosedPR]:
    out: list[ClosedPR] = []
    for item in found if isinstance(found, list) else ():
        if not isinstance(item, dict) or item.get("merged_at") or item.get("state") != "closed":
            continue
        head_of = item.get("head")
        ref: dict[str, Any] = head_of if isinstance(head_of, dict) else {}
        sha = str(ref.get("sha") or "")
        if ref.get("ref") not in (None, head) or not re.fullmatch(r"[0-9a-f]{40}", sha):
            continue  # GitHub filters by head; a fake or a proxy might not
        out.append(ClosedPR(int(item["number"]), sha, str(item.get("html_url") or "")))
    return out


def gh_closed_unmerged(head: str, cwd: Path,
                       run: Callable[..., subprocess.CompletedProcess[bytes]] = subprocess.run
                       ) -> list[ClosedPR]:
    """The same through ``gh pr list``."""
    done = run(["gh", "pr", "list", "--head", head, "--state", "closed", "--limit", "100",
                "--json", "number,headRefOid,mergedAt,url,state,headRefName"], cwd=cwd,
               capture_output=True, check=False)
    if done.returncode != 0:
        raise GitHubError("gh pr list failed: "
                          + one_line(done.stderr.decode("utf-8", "replace")))
    try:
        items = json.loads(done.stdout.decode("utf-8", "replace") or "[]")
    except ValueError:
        raise GitHubError("gh pr list gave no JSON") from None
    return _closed([{"number": i.get("number"), "merged_at": i.get("mergedAt"),
                     "state": "closed", "html_url": i.get("url"),
                     "head": {"sha": i.get("headRefOid"), "ref": i.get("headRefName")}}
                    for i in items if isinstance(i, dict)], head)


def gh_upsert(pr: PullRequest, body_file: Path, cwd: Path,
              run: Callable[..., subprocess.CompletedProcess[bytes]] = subprocess.run, *,
              labels: Sequence[str] = ()) -> str:
    """The same through ``gh``: edit the open pull request of the branch, else create one."""
    view = run(["gh", "pr", "view", pr.head, "--json", "url,state", "--jq",
                "select(.state == \"OPEN\") | .url"], cwd=cwd, capture_output=True, check=False)
    url = view.stdout.decode().strip() if view.returncode == 0 else ""
    if url:
        args = ["gh", "pr", "edit", pr.head, "--title", pr.title, "--body-file", str(body_file)]
    else:
        args = ["gh", "pr", "create", "--base", pr.base, "--head", pr.head, "--title",
                pr.title, "--body-file", str(body_file)]
    for label in labels:
        args += ["--add-label" if url else "--label", label]
    done = run(args, cwd=cwd, capture_output=True, check=False)
    if done.returncode != 0:
        raise GitHubError(f"{' '.join(args[:3])} failed: "
                          + one_line(done.stderr.decode("utf-8", "replace")))
    return url or done.stdout.decode().strip()


def by_hand(pr: PullRequest, body_file: Path, remote: str) -> str:
    """What --open would have done, as one command line to run by hand."""
    return (f"by hand: git push --force-with-lease {_shell(remote)} {_shell(pr.head)} && "
            f"gh pr create --base {_shell(pr.base)} --head {_shell(pr.head)} "
            f"--title {_shell(pr.title)} --body-file {_shell(str(body_file))}")


def _shell(text: str) -> str:
    return shlex.quote(text)
