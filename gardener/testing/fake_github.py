"""A local stand-in for the part of GitHub's REST API the gardener's pull requests use.

``gardener review --open`` lists, creates and updates pull requests, labels them and lists
the closed ones; tests need all of that on 127.0.0.1, recorded, against a real git remote.
The fake is tied to a bare repository (the test's ``origin``) as GitHub is to its own: an
open pull request's head follows its branch there, and ``refs/pull/N/head`` is written in it,
so a closed pull request's head can still be fetched after the branch moved on.

    with FakeGitHub(bare, token="t") as gh:
        env["GITHUB_API_URL"] = gh.url
        ...
        gh.close(1)           # closed without merging
        gh.merge(2)           # base branch fast-forwarded to the head

Only what the gardener sends is understood; anything else is a 404, a missing or wrong token
a 401, a second open pull request for one head a 422 (as on GitHub).
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class Pull:
    number: int
    head: str
    base: str
    title: str
    body: str
    sha: str
    state: str = "open"
    merged_at: str | None = None
    labels: list[str] = field(default_factory=list)

    def json(self, url: str, repository: str) -> dict[str, Any]:
        owner = repository.split("/")[0]
        return {"number": self.number, "state": self.state, "title": self.title,
                "body": self.body, "merged_at": self.merged_at,
                "html_url": f"{url}/{repository}/pull/{self.number}",
                "head": {"ref": self.head, "sha": self.sha, "label": f"{owner}:{self.head}"},
                "base": {"ref": self.base},
                "labels": [{"name": n} for n in self.labels]}


_PULLS = re.compile(r"^/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/pulls(?:/(?P<number>\d+))?$")
_LABELS = re.compile(r"^/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/issues/(?P<number>\d+)/labels$")


class FakeGitHub:
    """The server, its pull requests and every call it received, in order."""

    def __init__(self, bare: Path, *, token: str, repository: str = "commons/library") -> None:
        self.bare = bare
        self.token = token
        self.repository = repository
        self.pulls: dict[int, Pull] = {}
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeGitHub:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- what tests do on "github.com" ---------------------------------------------------------

    def writes(self) -> list[Call]:
        """The calls that changed something (everything but GET)."""
        return [c for c in self.calls if c.method != "GET"]

    def close(self, number: int) -> None:
        with self._lock:
            self._follow()
            self.pulls[number].state = "closed"

    def merge(self, number: int) -> None:
        """Merge by fast-forwarding the base branch to the head (the head is one commit on
        the base, as the gardener makes it)."""
        with self._lock:
            self._follow()
            pr = self.pulls[number]
            self._git("update-ref", f"refs/heads/{pr.base}", pr.sha)
            pr.state, pr.merged_at = "closed", "2026-03-09T10:00:00Z"

    # -- GitHub's side of git -----------------------------------------------------------------

    def _git(self, *args: str) -> str:
        done = subprocess.run(["git", *args], cwd=self.bare, capture_output=True, check=True)
        return done.stdout.decode().strip()

    def _branch_sha(self, name: str) -> str | None:
        done = subprocess.run(["git", "rev-parse", "--verify", "--quiet",
                               f"refs/heads/{name}"], cwd=self.bare, capture_output=True,
                              check=False)
        return done.stdout.decode().strip() or None

    def _follow(self) -> None:
        """Open pull requests follow their branch; their refs/pull/N/head with them."""
        for pr in self.pulls.values():
            if pr.state == "open":
                sha = self._branch_sha(pr.head)
                if sha is not None and sha != pr.sha:
                    pr.sha = sha
                    self._git("update-ref", f"refs/pull/{pr.number}/head", sha)

    # -- HTTP -----------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, code: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null") if length else None
                with fake._lock:
                    fake.calls.append(Call(method, parts.path, query, body))
                    if self.headers.get("Authorization") != f"Bearer {fake.token}":
                        self._send(401, {"message": "Bad credentials"})
                        return
                    fake._follow()
                    code, payload = fake._route(method, parts.path, query, body)
                self._send(code, payload)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PATCH(self) -> None:
                self._handle("PATCH")

        return Handler

    def _route(self, method: str, path: str, query: dict[str, str],
               body: Any) -> tuple[int, Any]:
        owner = self.repository.split("/")[0]
        m = _PULLS.match(path)
        if m and f"{m['owner']}/{m['repo']}" == self.repository:
            if m["number"] is None and method == "GET":
                return 200, self._list(query, owner)
            if m["number"] is None and method == "POST":
                return self._create(body, owner)
            if m["number"] is not None and method == "PATCH":
                pr = self.pulls.get(int(m["number"]))
                if pr is None:
                    return 404, {"message": "Not Found"}
                pr.title = body.get("title", pr.title)
                pr.body = body.get("body", pr.body)
                return 200, pr.json(self.url, self.repository)
        m = _LABELS.match(path)
        if m and method == "POST" and int(m["number"]) in self.pulls:
            pr = self.pulls[int(m["number"])]
            pr.labels += [x for x in body.get("labels", []) if x not in pr.labels]
            return 200, [{"name": n} for n in pr.labels]
        return 404, {"message": "Not Found"}

    def _list(self, query: dict[str, str], owner: str) -> list[dict[str, Any]]:
        state = query.get("state", "open")
        head = query.get("head")
        found = [pr for pr in sorted(self.pulls.values(), key=lambda p: -p.number)
                 if (state == "all" or pr.state == state)
                 and (head is None or head == f"{owner}:{pr.head}")
                 and ("base" not in query or query["base"] == pr.base)]
        return [pr.json(self.url, self.repository) for pr in found]

    def _create(self, body: Any, owner: str) -> tuple[int, Any]:
        head, base = body.get("head"), body.get("base")
        sha = self._branch_sha(head) if isinstance(head, str) else None
        if sha is None or self._branch_sha(base) is None:
            return 422, {"message": "Validation Failed: head or base branch does not exist"}
        if any(p.state == "open" and p.head == head for p in self.pulls.values()):
            return 422, {"message": f"A pull request already exists for {owner}:{head}."}
        number = len(self.pulls) + 1
        pr = Pull(number, head, base, body.get("title", ""), body.get("body", ""), sha)
        self.pulls[number] = pr
        self._git("update-ref", f"refs/pull/{number}/head", sha)
        return 201, pr.json(self.url, self.repository)
