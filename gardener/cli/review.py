"""The ``gardener review``, ``reject`` and ``promote`` commands: people decide on proposals.

``review`` gardens a clean checkout of the library and commits the result to the gardener's
own branch (``gardener.review.branch``), writes the pull-request body and, with ``--open``,
opens or updates the pull request. ``reject`` records a decision in the library's ledger;
``promote`` moves an inferred link into the human relationships. Registered by
``gardener.cli.main``.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from gardener.cli import cost as cli_cost
from gardener.cli import flows as cli_flows
from gardener.cli.errors import EXIT_FAILED, EXIT_USAGE, conclude, fail, plain, write_out
from gardener.library import decisions
from gardener.library.load import Entry
from gardener.library.write import WriteError, write_atomic
from gardener.review import branch as branch_mod
from gardener.review import git, github, learned
from gardener.review.body import GITHUB_LIMIT, MAX_BODY, MIN_BODY
from gardener.review.branch import PassRun, ReviewError, ReviewResult, RunPass
from gardener.steps.diff import unified_diff
from gardener.steps.rejections import Rejections, without_rejected
from gardener.text import one_line

out = Console()
err = Console(stderr=True)
REMOTE = "origin"

LibraryOpt = Annotated[Path, typer.Option(
    "--library", "-l", help="The library folder holding the pattern.", file_okay=False)]
TypeOpt = Annotated[str | None, typer.Option(
    "--type", help="Only the link of this type (default: any type).", show_default=False)]
BodyBudgetOpt = Annotated[int, typer.Option(
    "--body-budget", min=MIN_BODY, max=GITHUB_LIMIT,
    help="Most characters of the pull-request body (GitHub refuses more than "
    f"{GITHUB_LIMIT:,}): the summary and what to decide first, then each pattern's details "
    "and diff while they fit; the full report, committed on the branch in "
    "LIBRARY/.gardener/reports/pass.md, has everything, and the body links it.")]


def _say(message: str) -> None:
    """A line on stderr; its parts come from files, git and the model: controls removed."""
    err.print(plain(message), highlight=False, markup=False, soft_wrap=True)


def _entry(library: Path, slug: str, target: str) -> tuple[Entry, bool]:
    """The pattern of ``slug`` (parsed alone, `gardener.library.find`) and whether a pattern
    of the library has slug ``target``; the library's scope is its gardener.toml's."""
    from gardener.config import load_config
    from gardener.library.find import find

    scope = load_config(library).scope(library)
    paths = cli_flows.library_folder(library, scope)
    found = find(library, {slug, target}, scope=scope, paths=paths)
    entry = found.first(slug)
    if entry is None:
        unread = [e for path, e in found.errors if path.stem == slug]
        why = f" ({one_line(str(unread[0]))})" if unread else ""
        raise fail(f"{library}: no pattern has slug '{slug}'{why}")
    others = found.entries[slug][1:]
    if others:
        _say(f"note: slug '{slug}' is also used by "
             f"{', '.join(str(e.pattern.path) for e in others)}; using {entry.pattern.path}")
    return entry, found.first(target) is not None


def _link_type(value: str | None) -> str | None:
    from gardener.model import LINK_TYPES

    if value is not None and value not in LINK_TYPES:
        raise fail(f"--type {value!r} is not a link type ({', '.join(LINK_TYPES)})")
    return value


# ---------------------------------------------------------------------------------------------
# review


def review(
    library: cli_flows.LibraryArg,
    branch: Annotated[str | None, typer.Option(
        "--branch", help="The gardener's branch: created, or its one commit replaced "
        "(default: gardener.toml's review.branch, else gardener/garden).",
        show_default=False)] = None,
    base: Annotated[str | None, typer.Option(
        "--base", help="Branch the proposals are for (default: gardener.toml's review.base, "
        "else the checked-out branch).", show_default=False)] = None,
    body_file: Annotated[Path | None, typer.Option(
        "--body-file", help="Write the pull-request body here (default: inside .git, "
        "gardener/BRANCH.md).", dir_okay=False, show_default=False)] = None,
    open_pr: Annotated[bool, typer.Option(
        "--open", help="Push the branch and open or update its pull request on GitHub "
        "(GITHUB_TOKEN with GITHUB_API_URL, gh, or GITHUB_TOKEN); first, the links of its "
        "pull requests closed without merging are recorded as rejected. Says what it would "
        "do when it cannot reach GitHub.")] = False,
    labels: Annotated[list[str] | None, typer.Option(
        "--label", help="A label of the pull request (repeatable; default: gardener.toml's "
        "review.labels, else gardener).", show_default=False)] = None,
    schedule: Annotated[str | None, typer.Option(
        "--schedule", help="When the bot runs, for the body's footer: a cron line or words "
        "(default: gardener.toml's schedule.garden when the file sets one).",
        show_default=False)] = None,
    only: Annotated[list[str] | None, typer.Option(
        "--only", help="Garden only this slug (repeatable).", show_default=False)] = None,
    budget_tokens: cli_cost.BudgetOpt = None,
    max_patterns: cli_cost.MaxPatternsOpt = None,
    body_budget: BodyBudgetOpt = MAX_BODY,
    force: Annotated[bool, typer.Option(
        "--force", help="Replace the branch even when people added commits to it.")] = False,
    no_pass: Annotated[bool, typer.Option(
        "--no-pass", help="Take the last pass's results instead of running one: the gardens "
        "`gardener run` wrote in the working files (only their graph_garden travels); no "
        "model is asked.")] = False,
    concurrency: cli_flows.ConcurrencyOpt = None,
    model: cli_flows.ModelOpt = None,
    mode: cli_flows.ModeOpt = None,
    fixtures: cli_flows.FixturesOpt = None,
    replay: cli_flows.ReplayOpt = False,
    record: cli_flows.RecordOpt = False,
    auto: cli_flows.AutoOpt = False,
    today: Annotated[str | None, typer.Option(
        "--today", help="Date of this pass (YYYY-MM-DD); default: today.",
        show_default=False)] = None,
    vitality_target: cli_flows.VitalityOpt = "garden",
    strict: cli_flows.StrictOpt = False,
    verbose: cli_flows.VerboseOpt = False,
) -> None:
    """Garden LIBRARY into one commit on the gardener's branch, ready for a pull request.

    The pass runs in a separate worktree at the base commit: the checked-out branch, the
    index and uncommitted edits are never touched. Links rejected with `gardener reject`,
    deleted by hand after the gardener's last commit, or added by a gardener pull request
    closed without merging (with --open) are not proposed again. The body (the summary;
    the new links with reasons and evidence, conflicts and removals by reason; then per
    pattern the details, a Mermaid graph and the diff while --body-budget lasts; a footer on
    the schedule and how to say no) is printed and written to --body-file; the full report
    is committed on the branch (LIBRARY/.gardener/reports/pass.md) and the body links it.
    With --max-patterns, the stale patterns go in batches: never gardened first, then the
    longest since gardened, then by slug; once a pull request is merged, the next review
    takes the next batch. With --open, a pull request that cannot be opened or updated is
    an error (exit 1; 2 when nothing here can reach GitHub).
    """
    from gardener.config import load_config
    from gardener.pipeline.prefect import runtime  # Prefect only for the commands that run it

    runtime.configure(verbose=verbose)
    config = load_config(library)
    defaults = cli_flows.garden_defaults(config, library, model=model, mode=mode,
                                         concurrency=concurrency)
    cli_flows.library_folder(library, defaults["scope"])
    fixture_mode = cli_flows.parse_fixture_mode(fixtures, replay, record, auto)
    fixtures_dir = fixtures.resolve() if fixtures else None
    if fixture_mode is not None and fixtures_dir is None:
        fixtures_dir = Path("fixtures").resolve()
    day = cli_flows.parse_today(today) or dt.date.today()
    publish = Publish(
        branch=branch or config.review.branch,
        labels=tuple(labels if labels is not None else config.review.labels),
        schedule=(schedule if schedule is not None
                  else config.schedule.garden if config.path is not None else ""),
        body_file=body_file, open_pr=open_pr, strict=strict)
    base = base or config.review.base
    rejected = _closed_rejections(library, publish, day) if open_pr else []

    from gardener.pipeline.client import model_client
    from gardener.pipeline.options import GardenOptions
    from gardener.pipeline.prefect.flows import run_garden
    from gardener.propose.prompts import default_prompts
    from gardener.review.branch import review as review_library
    from gardener.review.branch import working_tree_pass

    repo, _ = git.open_repo(library)
    web = github.web_url(repo.remote_url(REMOTE), os.environ)

    def go(run_pass: RunPass) -> ReviewResult:
        return review_library(library, run_pass, branch=publish.branch, base=base,
                              force=force, today=day, rejected=rejected,
                              schedule=publish.schedule, body_budget=body_budget, web=web)

    if no_pass:
        try:
            result = go(working_tree_pass(library.resolve()))
        except (ReviewError, git.GitError, ValueError) as exc:
            raise fail(str(exc)) from None
        _publish(library, result, publish)
        return
    options = GardenOptions(
        **defaults, only=tuple(only or ()),
        **cli_cost.cost_options(config, budget_tokens, max_patterns),
        fixtures=str(fixtures_dir) if fixtures_dir else None, fixture_mode=fixture_mode,
        today=day, vitality_target=cli_flows.parse_vitality_target(vitality_target))
    try:
        with model_client(options, announce=cli_flows.announce) as llm:
            def run_pass(folder: Path, ledger: Path | None) -> PassRun:
                opts = options.model_copy(update={"decisions": str(ledger) if ledger else None})
                _say(f"gardening {folder} (a clean checkout of {library}) with model "
                     f"'{llm.settings.model}'")
                with cli_flows.quiet_refusals(verbose):
                    outcomes = run_garden(folder, opts, llm=llm)
                return PassRun(outcomes, llm.settings.model, default_prompts().version)

            result = go(run_pass)
    except ValueError as exc:  # a bad --only or option value; GardenerErrors go to the handler
        raise fail(str(exc)) from None
    _publish(library, result, publish)


@dataclass(frozen=True)
class Publish:
    """Where the review goes: the branch, the pull request's labels, the footer's schedule."""

    branch: str
    labels: tuple[str, ...]
    schedule: str
    body_file: Path | None
    open_pr: bool
    strict: bool = False
    """Unreadable files fail the review (exit 1), as ``run --strict``."""


def _route(repo: git.Repo) -> tuple[github.Route, str | None]:
    url = repo.remote_url(REMOTE)
    return github.choose(url, os.environ, gh=github.gh_logged_in()), url


def _auth(route: github.Route) -> git.HttpAuth | None:
    """The token for git, kept to calls whose URL is on the GitHub server (`git.HttpAuth`).
    gh's route has none for git: it reaches the remote as the person's setup allows (an ssh
    key, a header in their configuration)."""
    if route.kind != "rest" or not route.token:
        return None
    return git.HttpAuth(route.server, route.token)


def _closed_rejections(library: Path, publish: Publish, day: dt.date) -> list[decisions.Decision]:
    """Links of the gardener's pull requests closed without merging, as rejections.

    Each closed pull request is read once: one whose head commit a ledger already names
    (the base's, or the user's working copy) was recorded by an earlier run.
    """
    repo, rel = git.open_repo(library)
    route, url = _route(repo)
    if route.kind == "none" or url is None:
        return []
    try:
        if route.kind == "rest" and route.repository is not None and route.token:
            owner, name = route.repository
            closed = github.closed_unmerged(owner, name, publish.branch, route.token,
                                            api=route.api)
        elif route.kind == "gh":
            closed = github.gh_closed_unmerged(publish.branch, repo.root)
        else:
            return []
    except github.GitHubError as exc:
        raise fail(f"--open: {one_line(str(exc))}", EXIT_FAILED) from None
    known = learned.read_pull_requests(decisions.load(decisions.ledger_path(library)))
    auth = _auth(route)
    out: list[decisions.Decision] = []
    for pr in closed:
        if pr.sha in known:
            continue
        try:
            repo.fetch(REMOTE, pr.ref, auth=auth)
        except git.GitError as exc:
            _say(f"closed pull request #{pr.number}: its head {pr.ref} cannot be fetched "
                 f"({exc}); its links are not recorded as rejected")
            continue
        found = branch_mod.learn_from_closed(repo, rel, pr.number, pr.sha, day)
        for d in found:
            _say(f"rejected (pull request #{pr.number} closed without merging): "
                 f"{d.describe()}")
        out += found
    return out


def _publish(library: Path, result: ReviewResult, publish: Publish) -> None:
    """Write and print the body, say what happened, and open the pull request if asked."""
    repo, _ = git.open_repo(library)
    branch = publish.branch
    target = (publish.body_file
              or repo.git_dir() / "gardener" / f"{branch.replace('/', '-')}.md")
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, result.body)
    write_out(result.body)
    sys.stdout.flush()
    _report(result, target)
    if publish.open_pr and result.commit is not None:
        _open(repo, result, target, publish.labels)
    elif publish.open_pr:
        _say("--open: nothing new to propose, so no pull request was opened or updated")
    conclude(result.outcomes, strict=publish.strict)


def _report(result: ReviewResult, body_file: Path) -> None:
    if result.commit is None:
        _say(f"nothing to propose: the pass changed no pattern; branch {result.branch} "
             "left as it was")
    else:
        verb = "updated" if result.previous else "created"
        _say(f"branch {result.branch} {verb}: one commit {result.commit[:12]} on "
             f"{result.base} ({result.base_sha[:12]})")
    for d in result.learned:
        _say(f"rejected (deleted by hand): {d.describe()}")
    _say(f"pull-request body written to {body_file}")


def _open(repo: git.Repo, result: ReviewResult, body_file: Path,
          labels: tuple[str, ...]) -> None:
    route, url = _route(repo)
    owner, name = route.repository or github.repository(url, os.environ) or ("", "")
    pr = github.PullRequest(owner=owner, repo=name, head=result.branch, base=result.base,
                            title=result.title, body=result.body)
    if route.kind == "none" or url is None:
        why = route.why if route.kind == "none" else f"the repository has no remote {REMOTE}"
        _say(github.by_hand(pr, body_file, REMOTE))
        raise fail(f"--open: no pull request opened or updated: {why}", EXIT_USAGE)
    auth = _auth(route)
    try:
        expected = branch_mod.remote_lease(repo, REMOTE, result, auth=auth)
        repo.push(REMOTE, result.branch, expected=expected, auth=auth)
        if route.kind == "gh":
            link = github.gh_upsert(pr, body_file, repo.root, labels=labels)
            _say(f"pull request: {link}")
            return
        assert route.token is not None
        done = github.rest_open(pr, route.token, labels=labels, api=route.api)
    except (git.GitError, github.GitHubError, OSError) as exc:  # OSError: gh went away
        raise fail(f"--open: no pull request opened or updated: {one_line(str(exc))}",
                   EXIT_FAILED) from None
    _say(f"pull request #{done.number} {'created' if done.created else 'updated'}: {done.url}"
         + (f" (labels: {', '.join(labels)})" if labels else ""))


# ---------------------------------------------------------------------------------------------
# reject and promote


def reject(
    slug: Annotated[str, typer.Argument(help="The pattern whose link is rejected.")],
    target: Annotated[str, typer.Argument(help="The link's target slug.")],
    type_: TypeOpt = None,
    reason: Annotated[str, typer.Option("--reason", help="Why, for the ledger.")] = "",
    library: LibraryOpt = Path("."),
    today: Annotated[str | None, typer.Option(
        "--today", help="Date of the decision (YYYY-MM-DD); default: today.",
        show_default=False)] = None,
) -> None:
    """Never propose the link SLUG -> TARGET again (of --type, or of any type).

    Records the decision in LIBRARY/.gardener/decisions.yaml (commit it), and takes the link
    out of the pattern's graph_garden when it is there now.
    """
    kind = _link_type(type_)
    entry, target_known = _entry(library, slug, target)
    path = decisions.ledger_path(library)
    read = decisions.read(path)
    decision = decisions.Decision(slug=slug, target=target, type=kind, reason=reason.strip(),
                                  date=cli_flows.parse_today(today) or dt.date.today())
    ledger, added = read.ledger.add([decision])
    if added:
        try:
            decisions.save(path, ledger, since=read)
        except decisions.LedgerConflict as exc:  # their edit stays; ours is said, not lost
            raise fail(f"{exc}; the link stays in {entry.pattern.path} too", 1) from None
        _say(f"rejected {decision.describe()}: recorded in {path} (commit it)")
    else:
        _say(f"{decision.describe()} was already rejected in {path}")
    if not target_known:
        _say(f"note: no pattern of {library} has slug '{target}'")
    _drop_from_garden(entry, decision)


def _drop_from_garden(entry: Entry, decision: decisions.Decision) -> None:
    from gardener.steps.passes import render

    garden = entry.pattern.garden
    if garden is None:
        return
    kept, removed = without_rejected(
        decision.slug, garden, Rejections.of(decisions.Ledger((decision,))))
    if not removed:
        return
    try:
        text = render(entry, kept)
        write_atomic(entry.pattern.path, text, expected=entry.doc.text)
    except (WriteError, OSError, ValueError) as exc:
        raise fail(f"{entry.pattern.path}: the link stays in the garden: {exc}", 1) from None
    _say(f"removed the link from {entry.pattern.path}'s graph_garden")


def promote(
    slug: Annotated[str, typer.Argument(help="The pattern holding the inferred link.")],
    target: Annotated[str, typer.Argument(help="The link's target slug.")],
    type_: TypeOpt = None,
    library: LibraryOpt = Path("."),
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the diff; write nothing.")] = False,
) -> None:
    """Move the inferred link SLUG -> TARGET into the human relationships (group 5).

    Only on this explicit request: the gardener never writes group 5 by itself. The link's
    lines leave graph_garden.inferred_links and one item joins relationships.TYPE (or the
    top-level TYPE list in the older flat layout), weighted by the link's confidence; every
    other byte of the file stays as it was, verified before writing.
    """
    from gardener.library.yaml_text import SpliceError
    from gardener.review.promote import PromoteError
    from gardener.review.promote import promote as promote_link
    from gardener.steps.verify import VerifyError

    kind = _link_type(type_)
    entry, _ = _entry(library, slug, target)
    try:
        done = promote_link(entry.doc, entry.pattern, target, kind)
    except (PromoteError, SpliceError, VerifyError) as exc:
        raise fail(str(exc)) from None
    write_out(unified_diff(entry.pattern.path, entry.doc.text, done.new_text))
    sys.stdout.flush()
    if dry_run:
        return
    try:
        write_atomic(entry.pattern.path, done.new_text, expected=entry.doc.text)
    except (WriteError, OSError) as exc:
        raise fail(f"{entry.pattern.path}: cannot write: {exc}", 1) from None
    _say(f"promoted {slug} -> {target} to {'.'.join(done.keys)} in {entry.pattern.path}")
