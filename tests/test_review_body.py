"""The pull-request body (pure) and the GitHub requests behind ``--open`` (no network)."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import pkgutil
import re
from pathlib import Path

import httpx
import pytest

from gardener.errors import GardenerError
from gardener.library.decisions import Decision
from gardener.model import (
    Community,
    Entity,
    Garden,
    HumanLink,
    Link,
    Outcome,
    Reason,
    Removal,
    Status,
)
from gardener.review import github
from gardener.review.body import (
    MAX_BODY,
    PassInfo,
    PatternChange,
    ReportLink,
    _mermaid_label,
    body,
    cell,
    full_report,
    link_delta,
    neighbourhood,
    report_url,
    totals,
)

INFO = PassInfo(library="lib", base="main", branch="gardener/garden", model="m-1",
                prompt_version="propose-v3", today=dt.date(2026, 3, 1), base_sha="a" * 40,
                learned=(Decision("p", "q", reason="deleted", source="history"),), honoured=2)


def change(slug: str = "end", *, diff: str = "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n",
           reason: str = "Both @maintainers <b>agree</b> | really") -> PatternChange:
    old = Garden(inferred_links=(
        Link(target="kept", type="tools", confidence=0.9),
        Link(target="retyped", type="enables", confidence=0.7),
        Link(target="pruned", type="enables", confidence=0.3),
    ), vitality_reasoning="old words")
    new = Garden(inferred_links=(
        Link(target="kept", type="tools", confidence=0.9),
        Link(target="retyped", type="requires", confidence=0.8),
        Link(target='odd "slug" [x]', type="complementary", confidence=0.66, reason=reason),
    ), vitality_reasoning="It renews itself.")
    outcome = Outcome(path=f"/tmp/wt/lib/{slug}.md", slug=slug, status=Status.CHANGED,
                      removals=[Removal(kind="link", item="pruned", reason=Reason.WEAK,
                                        detail="confidence 0.3 < 0.5")],
                      conflicts=["inferred enables -> h conflicts with human requires -> h"],
                      usage={"prompt_tokens": 1000, "completion_tokens": 200}, requests=1,
                      detail={"rejected": ["nope"]})
    outcome.diff = diff
    return PatternChange(slug=slug, path=f"lib/{slug}.md", title="The End", outcome=outcome,
                         old=old, new=new,
                         human=(HumanLink(target="h", type="requires"),
                                HumanLink(target="pat_missing", type="enables", resolved=False)),
                         vitality=3.9, human_reasoning="Human words.")


def test_summary_counts_links_by_what_happened() -> None:
    c = change()
    t = totals([c], [c.outcome, Outcome(path="x", status=Status.SKIPPED)])
    assert (t.changed, t.links_added, t.links_removed, t.links_retyped) == (1, 1, 1, 1)
    assert (t.prompt_tokens, t.completion_tokens, t.requests) == (1000, 200, 1)


def test_body_has_every_part_a_reviewer_needs() -> None:
    c = change()
    text = body(INFO, [c], [c.outcome])
    assert text.startswith("<!-- graph-gardener review -->\n")
    for row in ("| patterns changed | 1 |", "| links added | 1 |", "| links removed | 1 |",
                "| links retyped | 1 |", "| tokens used (prompt + completion) | 1,200"):
        assert row in text
    assert "| `pruned` | enables | weak: confidence 0.3 &lt; 0.5 |" in text
    assert "| `retyped` | enables | requires | 0.80 |" in text
    assert "conflicts with human requires" in text
    assert "| human score | 3.9 |" in text and "| proposed reasoning | It renews itself. |" in text
    assert "**Not proposed again** (rejected earlier): `nope`" in text
    assert "`p -> q`" in text  # learned from history
    assert "gardener reject SLUG TARGET --library lib" in text
    assert "gardener promote SLUG TARGET --library lib" in text
    assert "model `m-1`, prompt version `propose-v3`" in text
    assert "<details><summary>Diff</summary>" in text and "```diff\n--- a/x" in text


def test_model_text_cannot_ping_or_inject_html() -> None:
    text = body(INFO, [change()], [change().outcome])
    # a mention shows in a code span, which GitHub never links (issue 25, item 7)
    assert "`@maintainers`" in text and "@maintainers" not in text.replace("`@maintainers`", "")
    assert "<b>" not in text
    assert "agree&lt;/b&gt; \\| really" in text
    assert cell("a\nb\tc|d") == "a b c\\|d"


def test_mermaid_uses_generated_ids_and_escaped_labels() -> None:
    c = change()
    graph = neighbourhood(c, link_delta(c.old, c.new, c.outcome))
    lines = graph.splitlines()
    assert lines[0] == "flowchart LR"
    assert '  n0["end"]' in lines  # 'end' is a Mermaid keyword: never an id
    assert '  n4["odd #quot;slug#quot; [x]"]' in lines
    assert _mermaid_label('a<b> & "c" #1') == "a#lt;b#gt; #amp; #quot;c#quot; #35;1"
    ids = set(re.findall(r"\bn\d+\b", graph))
    assert ids == {f"n{i}" for i in range(len(ids))}
    assert "pat_missing" not in graph  # unresolved human references point at nothing
    assert any('== "complementary (new)" ==>' in line for line in lines)
    assert any('-. "enables (removed)" .->' in line for line in lines)
    edges = [line for line in lines if "--" in line or "==" in line or "-." in line]
    for n, line in enumerate(edges):
        if "(new)" in line:
            assert f"  linkStyle {n} stroke:#2da44e,stroke-width:3px" in lines


def test_diffs_are_left_out_past_the_size_budget() -> None:
    big = "--- a/x\n+++ b/x\n" + "+line\n" * 3000
    changes = [change(f"p{i}", diff=big) for i in range(5)]
    text = body(INFO, changes, [c.outcome for c in changes], limit=40_000)
    assert len(text) <= 40_000
    assert "diffs left out to keep this body under GitHub's size limit" in text
    assert text.count("### The End") == 5  # every pattern keeps its section


def test_a_fence_inside_the_diff_does_not_close_the_block() -> None:
    c = change(diff="--- a/x\n+++ b/x\n+```\n+text\n")
    text = body(INFO, [c], [c.outcome])
    assert "````diff\n--- a/x" in text


# ---------------------------------------------------------------------------------------------
# --open


@pytest.mark.parametrize(("url", "expected"), [
    ("https://github.com/commons/library.git", ("commons", "library")),
    ("https://user@github.com/commons/library", ("commons", "library")),
    ("git@github.com:commons/library.git", ("commons", "library")),
    ("ssh://git@github.com/commons/lib.v2.git", ("commons", "lib.v2")),
    ("https://gitlab.com/commons/library.git", None),
    (None, None),
])
def test_github_remotes(url: str | None, expected: tuple[str, str] | None) -> None:
    assert github.parse_remote(url) == expected


def test_route_prefers_gh_then_token_else_says_why() -> None:
    url = "git@github.com:o/r.git"
    assert github.choose(url, {"GITHUB_TOKEN": "t"}, gh=True).kind == "gh"
    route = github.choose(url, {"GITHUB_TOKEN": "t"}, gh=False)
    assert (route.kind, route.token) == ("rest", "t")
    none = github.choose("https://gitlab.com/o/r", {}, gh=False)
    assert none.kind == "none"
    assert "GITHUB_TOKEN is not set" in none.why and "not a github.com repository" in none.why


def pr() -> github.PullRequest:
    return github.PullRequest(owner="o", repo="r", head="gardener/garden", base="main",
                              title="graph-gardener: 2 patterns", body="the body")


def test_rest_creates_a_pull_request_when_none_is_open() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "GET":
            return httpx.Response(200, json=[])
        return httpx.Response(201, json={"html_url": "https://github.com/o/r/pull/7"})

    url = github.rest_upsert(pr(), "secret", transport=httpx.MockTransport(handler))
    assert url == "https://github.com/o/r/pull/7"
    get, post = seen
    assert get.url.path == "/repos/o/r/pulls"
    assert dict(get.url.params) == {"head": "o:gardener/garden", "base": "main",
                                    "state": "open"}
    assert get.headers["authorization"] == "Bearer secret"
    assert get.headers["x-github-api-version"] == "2022-11-28"
    assert (post.method, post.url.path) == ("POST", "/repos/o/r/pulls")
    assert json.loads(post.content) == {"title": "graph-gardener: 2 patterns",
                                        "head": "gardener/garden", "base": "main",
                                        "body": "the body"}


def test_rest_updates_the_open_pull_request() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "GET":
            return httpx.Response(200, json=[{"number": 12}])
        return httpx.Response(200, json={"html_url": "https://github.com/o/r/pull/12"})

    assert github.rest_upsert(pr(), "t", transport=httpx.MockTransport(handler)).endswith("/12")
    assert (seen[1].method, seen[1].url.path) == ("PATCH", "/repos/o/r/pulls/12")
    assert json.loads(seen[1].content) == {"title": "graph-gardener: 2 patterns",
                                           "body": "the body"}


def test_rest_refusal_names_what_failed_without_the_token() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"message": "Resource not accessible"})

    with pytest.raises(github.GitHubError) as info:
        github.rest_upsert(pr(), "secret-token", transport=httpx.MockTransport(handler))
    assert "HTTP 403 Resource not accessible" in str(info.value)
    assert "secret-token" not in str(info.value)


def test_push_env_keeps_the_token_off_the_command_line() -> None:
    env = github.push_env("tok")
    assert env["GIT_CONFIG_KEY_0"] == "http.https://github.com/.extraheader"
    assert "tok" not in json.dumps(env)  # base64 inside the header, not the raw token


def test_by_hand_is_one_command_line() -> None:
    said = github.by_hand(pr(), Path("/x/pr body.md"), "origin")
    assert said == ("by hand: git push --force-with-lease origin gardener/garden && gh pr create "
                    "--base main --head gardener/garden --title 'graph-gardener: 2 patterns' "
                    "--body-file '/x/pr body.md'")


@pytest.mark.parametrize("error", [
    httpx.ConnectError("[Errno 111] Connection refused"),
    httpx.ConnectTimeout("timed out"),
    httpx.RemoteProtocolError("Server disconnected\nwithout sending a response."),
])
def test_network_errors_are_gardener_errors_of_one_line(error: httpx.HTTPError) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    transport = httpx.MockTransport(handler)
    with pytest.raises(github.GitHubUnreachable) as info:
        github.rest_open(pr(), "secret-token", transport=transport,
                         api="https://user:pw@ghe.example/api/v3")
    said = str(info.value)
    assert isinstance(info.value, GardenerError) and info.value.exit_code == 1
    assert said.startswith("cannot reach GitHub's API at https://***@ghe.example/api/v3 to "
                           "open the pull request: ")
    assert "\n" not in said and "secret-token" not in said and "pw" not in said
    with pytest.raises(github.GitHubUnreachable, match="to list the closed pull requests"):
        github.closed_unmerged("o", "r", "b", "t", transport=transport)


def test_an_answer_that_is_not_json_is_a_gardener_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>proxy login</html>",
                              headers={"content-type": "text/html"})

    with pytest.raises(github.GitHubError, match=r"not JSON \(HTTP 200, text/html\)"):
        github.rest_open(pr(), "t", transport=httpx.MockTransport(handler))


def test_every_error_of_the_review_package_is_a_gardener_error() -> None:
    import gardener.review as package

    found = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"gardener.review.{info.name}")
        found += [obj for obj in vars(module).values()
                  if isinstance(obj, type) and issubclass(obj, BaseException)
                  and obj.__module__ == module.__name__]
    assert {c.__name__ for c in found} >= {"GitError", "GitHubError", "GitHubUnreachable",
                                           "PromoteError", "ReviewError"}
    assert all(issubclass(c, GardenerError) for c in found), found


@pytest.mark.parametrize(("remote", "env", "expected"), [
    ("git@github.com:commons/library.git", {}, "https://github.com/commons/library"),
    ("/srv/origin.git", {"GITHUB_REPOSITORY": "o/r",
                         "GITHUB_SERVER_URL": "https://ghe.example/"}, "https://ghe.example/o/r"),
    ("/srv/origin.git", {}, None),
    ("git@github.com:o/r.git", {"GITHUB_SERVER_URL": "javascript:alert(1)"}, None),
])
def test_web_url(remote: str, env: dict[str, str], expected: str | None) -> None:
    assert github.web_url(remote, env) == expected


def test_report_url_is_by_commit_and_quoted() -> None:
    sha = "b" * 40
    assert report_url("https://github.com/o/r", sha, "my lib/.gardener/reports/pass.md") == (
        f"https://github.com/o/r/blob/{sha}/my%20lib/.gardener/reports/pass.md")
    assert report_url(None, sha, "lib/x.md") == f"../blob/{sha}/lib/x.md"


def test_body_names_each_removal_code_and_the_unchanged_count() -> None:
    c = change()
    assert c.old is not None and c.new is not None
    old = c.old.model_copy(update={
        "entities": (Entity(id="kept-e"), Entity(id="gone-e", label="Gone")),
        "communities": (Community(id="gone-c", label="Gone"),)})
    new = c.new.model_copy(update={"entities": (Entity(id="kept-e"),)})
    c.outcome.removals += [
        Removal(kind="entity", item="gone-e", reason=Reason.STALE, detail="no word left"),
        Removal(kind="community", item="gone-c", reason=Reason.CAP, detail="over the cap"),
        Removal(kind="link", item="retyped", reason=Reason.RETYPED,
                detail="was 'enables', now 'requires' with evidence: \"a quote\"")]
    c.outcome.unchanged = {"links": 1, "entities": 1, "communities": 0}
    moved = PatternChange(slug=c.slug, path=c.path, title=c.title, outcome=c.outcome,
                          old=old, new=new)
    text = body(INFO, [moved], [c.outcome])
    assert "2 unchanged: 1 links, 1 entities, 0 communities" in text
    assert "**Entities**: −`gone-e` (stale)" in text
    assert "**Communities**: −`gone-c` (cap)" in text
    assert ("| `retyped` | enables | requires | 0.80 | retyped: was 'enables', now 'requires' "
            "with evidence: \"a quote\" |") in text


# ---------------------------------------------------------------------------------------------
# A body to a budget, and the full report


def many(n: int) -> tuple[list[PatternChange], list[Outcome]]:
    changes = [change(f"p{i:03}", diff="--- a/x\n+++ b/x\n" + "+line\n" * 200)
               for i in range(n)]
    failed = [Outcome(path=f"lib/f{i}.md", status=Status.FAILED, error=f"lib/f{i}.md: boom "
                      + "x" * 300) for i in range(200)]
    return changes, [*(c.outcome for c in changes), *failed]


def test_a_large_pass_fits_the_budget_in_the_order_people_decide() -> None:
    changes, outcomes = many(300)
    learned = tuple(Decision(f"s{i}", f"t{i}", reason="deleted by hand", source="history")
                    for i in range(400))
    info = PassInfo(library="lib", base="main", branch="gardener/garden", model="m-1",
                    prompt_version="v", today=dt.date(2026, 3, 1), learned=learned)
    link = ReportLink("lib/.gardener/reports/pass.md", "https://github.com/o/r/blob/c/x.md")
    where = ", in the [full report](https://github.com/o/r/blob/c/x.md)"
    text = body(info, changes, outcomes, report=link)
    assert len(text) <= MAX_BODY
    assert "📄 **Full report**: [`lib/.gardener/reports/pass.md`](https://github.com/o/r/blob/" \
           "c/x.md)" in text
    order = [text.index(part) for part in (
        "| patterns changed | 300 |", "📄 **Full report**", "**Rejections learned",
        "**Failed or conflicting patterns**", "## To decide", "### New links (300)",
        "### Conflicts with human relationships", "### Removed, by reason", "## Patterns",
        "### Configuration")]
    assert order == sorted(order)
    # every cut list says how much it left out and where it is
    for pattern in (r"^- and (\d+) more" + re.escape(where) + "$",
                    r"^_(\d+) more new links" + re.escape(where) + r"\._$",
                    r"^_The details of (\d+) of 300 changed patterns \(from `p\d+` on, by "
                    r"file path\) are left out"):
        assert re.search(pattern, text, re.MULTILINE), pattern
    assert "| `weak` | 300 | 0 | 0 | `p000 → pruned`, `p001 → pruned`, `p002 → pruned` and " \
           "297 more |" in text
    # the report has it all, and no cut
    report = full_report(info, changes, outcomes)
    assert report.count("### The End (`p") == 300 and report.count("<summary>Diff</summary>") \
        == 300
    assert len(re.findall(r"^\| `p\d{3}` \| ", report, re.MULTILINE)) == 300
    assert " more, in " not in report and "left out" not in report
    assert not report.startswith("<!-- graph-gardener review -->")


def test_a_body_whose_new_links_all_fit_lists_each_once() -> None:
    changes, outcomes = many(3)
    text = body(INFO, changes, outcomes[:3])
    assert text.count('| `odd "slug" [x]` |') == 3  # in the New links table only
    assert text.count("**Links added**: 1 (in *New links* above)") == 3


@pytest.mark.parametrize("limit", [10_000, 20_000, 40_000, 65_536])
def test_the_body_never_exceeds_its_budget(limit: int) -> None:
    changes, outcomes = many(120)
    assert len(body(INFO, changes, outcomes, limit=limit)) <= limit
