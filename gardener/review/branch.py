"""A gardening pass as one commit on the gardener's own branch, beside the user's checkout.

``gardener review`` must never touch the checked-out branch, the index or uncommitted work:
the pass runs in a separate worktree (a temporary folder) checked out at the base commit,
is committed there by the gardener's identity, and only the gardener's branch ref moves,
with a compare-and-swap so a concurrent change is never lost. Each run replaces the
branch's single commit over the base, so re-running updates the same branch.

Before the pass, history says what people rejected: links present in the gardener's last
commit on the base and absent now were deleted by hand. They are added to the library's
decisions ledger in the new commit (so the memory survives the next gardener commit) and
filtered out of the pass.

A commit is the gardener's when its author and its committer are both exactly the gardener's
identity (`git.identity`, the one `git.Repo.commit_all` commits with) and it carries the
``Gardener-Pass`` trailer. The trailer alone is text anyone types: a person's commit that copies
it (or amends, rebases or cherry-picks the gardener's, which makes the person its committer)
is a person's, and is never replaced without ``--force``.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from gardener.errors import GardenerError
from gardener.library import decisions
from gardener.library import load as library_mod
from gardener.library import pattern as pattern_mod
from gardener.library.calibration import calibration_for
from gardener.library.document import ReadError, decode, read_text
from gardener.library.garden import read_garden
from gardener.library.write import write_atomic
from gardener.model import HumanLink, Outcome, Pattern, Status
from gardener.review import git, learned
from gardener.review.body import (
    MAX_BODY,
    REPORT_PATH,
    PassInfo,
    PatternChange,
    ReportLink,
    body,
    full_report,
    report_url,
    title,
    totals,
)
from gardener.steps.diff import unified_diff
from gardener.steps.outliers import in_degrees
from gardener.steps.rejections import Rejections, without_rejected

DEFAULT_BRANCH = "gardener/garden"
TRAILER = "Gardener-Pass"
LIBRARY_TRAILER = "Gardener-Library"


class ReviewError(GardenerError):
    """The review cannot go on safely; the message says why and what to do."""


@dataclass(frozen=True)
class PassRun:
    """What running the pass in the worktree gave back."""

    outcomes: list[Outcome]
    model: str
    prompt_version: str


RunPass = Callable[[Path, Path | None], PassRun]
"""Runs the gardening pass on a library folder, honouring an extra decisions ledger."""


@dataclass(frozen=True)
class ReviewResult:
    branch: str
    base: str
    base_sha: str
    commit: str | None
    """The new commit of the branch; None when the pass changed nothing (branch untouched)."""
    previous: str | None
    """What the branch pointed at before; None when it is new."""
    title: str
    body: str
    outcomes: list[Outcome]
    learned: list[decisions.Decision]
    library: PurePosixPath


def working_tree_pass(user_library: Path) -> RunPass:
    """The last pass's results instead of a new pass: the gardens a ``gardener run`` wrote in
    the user's working files, spliced into the clean checkout (nothing else of those files
    travels), with the state that run recorded. No model is asked.
    """
    from gardener.library.state import load_state, state_path
    from gardener.library.write import write_atomic
    from gardener.steps.passes import render

    def run(folder: Path, ledger: Path | None) -> PassRun:
        rejections = Rejections.of(decisions.load(decisions.ledger_path(folder)).union(
            decisions.load(ledger) if ledger is not None else decisions.Ledger()))
        mine = {e.pattern.path.relative_to(user_library): e
                for e in library_mod.load(user_library).entries}
        outcomes: list[Outcome] = []
        for entry in library_mod.load(folder).entries:
            p = entry.pattern
            theirs = mine.get(p.path.relative_to(folder))
            garden = theirs.pattern.garden if theirs is not None else None
            outcome = Outcome(path=str(p.path), slug=p.slug, status=Status.UNCHANGED)
            if garden is not None:
                garden, removed = without_rejected(p.slug, garden, rejections)
                outcome.removals = removed
            if garden is None or (p.garden is not None and garden == p.garden):
                outcomes.append(outcome)
                continue
            try:
                text = render(entry, garden)
            except Exception as exc:  # one pattern never stops the others
                outcomes.append(outcome.model_copy(update={
                    "status": Status.FAILED, "error": f"{p.path}: {exc}"}))
                continue
            write_atomic(p.path, text)
            known = {lk.target for lk in p.garden.inferred_links} if p.garden else set()
            outcome.status = Status.CHANGED
            outcome.added = [lk.target for lk in garden.inferred_links if lk.target not in known]
            outcomes.append(outcome)
        recorded = state_path(user_library)
        if recorded.is_file() and not recorded.is_symlink():
            state_path(folder).parent.mkdir(parents=True, exist_ok=True)
            # Not copyfile: a committed state.json link in the worktree would be followed.
            write_atomic(state_path(folder), recorded.read_text(encoding="utf-8"),
                         within=folder)
        seen = load_state(user_library).snapshot().values()
        models = sorted({s.model for s in seen}) or ["unknown"]
        prompts = sorted({s.prompt_version for s in seen}) or ["unknown"]
        return PassRun(outcomes, ", ".join(models), ", ".join(prompts))

    return run


def trailers(message: str) -> dict[str, str]:
    """The trailers of a commit message: ``Key: value`` lines of its last paragraph."""
    paragraphs = [p for p in message.strip().split("\n\n") if p.strip()]
    if len(paragraphs) < 2:
        return {}
    found: dict[str, str] = {}
    for line in paragraphs[-1].splitlines():
        key, sep, value = line.partition(": ")
        if not sep or not key or " " in key:
            return {}  # not a trailer block
        found[key] = value.strip()
    return found


def is_gardener_commit(commit: git.Commit, who: git.Identity) -> bool:
    """Made by the gardener: authored and committed by ``who``, with its trailer."""
    return commit.made_by(who) and TRAILER in trailers(commit.message)


def _gardener_commit_for(repo: git.Repo, rev: str, rel: PurePosixPath) -> str | None:
    """The newest gardener commit of library ``rel`` reachable from ``rev``; trailers are
    compared whole (``Gardener-Library: lib`` is not ``lib2``)."""
    for sha in repo.grep_commits(rev, f"{LIBRARY_TRAILER}: {rel}"):
        found = trailers(repo.message(sha))
        if TRAILER in found and found.get(LIBRARY_TRAILER) == str(rel):
            return sha
    return None


def remote_lease(repo: git.Repo, remote: str, result: ReviewResult, *,
                 auth: git.HttpAuth | None = None) -> str | None:
    """Where the branch is on ``remote``, checked to hold only the gardener's commits.

    As Renovate does, a bot's branch that people pushed to is theirs: the push stops with a
    message instead of replacing their commits. The push then leases this value.
    """
    there = repo.remote_sha(remote, result.branch, auth=auth)
    if there is None or there == result.previous:
        return there
    repo.fetch(remote, there, auth=auth)
    who = git.identity(repo)
    foreign = [c for c in repo.commits(f"{result.base_sha}..{there}")
               if not is_gardener_commit(c, who)]
    if foreign:
        shown = ", ".join(f"{c.sha[:10]} by {c.author}" for c in foreign[:3])
        raise ReviewError(f"{remote}/{result.branch} has commits people pushed ({shown}); the "
                          "gardener does not replace them: merge or close the pull request, "
                          "or delete the remote branch, and run the review again")
    return there


def _pattern_files(paths: Iterable[str], rel: PurePosixPath) -> list[str]:
    """The Markdown files of library ``rel`` that may be patterns: none in a folder whose
    name starts with a dot (``.gardener/reports/pass.md``, the pass report), as
    `gardener.library.load.discover` skips them."""
    depth = len(rel.parts)
    return [p for p in paths if p.endswith(".md")
            and not any(part.startswith(".") for part in PurePosixPath(p).parts[depth:-1])]


def _links_from_blobs(blobs: Mapping[str, bytes | None]) -> dict[str, learned.Links]:
    out: dict[str, learned.Links] = {}
    for path, raw in blobs.items():
        if raw is None or not path.endswith(".md"):
            continue
        try:
            doc = read_text(decode(raw, path), path)
        except ReadError:
            continue
        if doc is None:
            continue
        garden, warnings = read_garden(doc)
        p = pattern_mod.build(doc, garden, warnings)
        out[p.slug] = learned.links_of(garden, (h.target for h in p.relationships))
    return out


def learn_from_history(repo: git.Repo, rel: PurePosixPath, since: str, later: str,
                       today: dt.date) -> list[decisions.Decision]:
    """Links in gardener commit ``since`` that a person deleted by commit ``later``."""
    paths = _pattern_files(repo.changed_paths(since, later, rel), rel)
    if not paths:
        return []
    before = _links_from_blobs(repo.read_blobs(since, paths))
    # whether a target still exists is a question about the whole library at ``later``
    listed = repo.files(later, rel)
    everything = _pattern_files(listed, rel)
    after = _links_from_blobs(repo.read_blobs(later, everything, ids=listed))
    return learned.deleted_by_hand(before, after, set(after), commit=since, today=today)


def learn_from_closed(repo: git.Repo, rel: PurePosixPath, number: int, sha: str,
                      today: dt.date) -> list[decisions.Decision]:
    """The links the gardener's pull request ``number`` added (its head ``sha``, already
    fetched, against that commit's parent): it was closed without merging, so each is a "no".

    The head commit is read rather than the pull request's diff from the API: it is exactly
    what was proposed (GitHub keeps it as ``refs/pull/N/head`` after the branch moves or is
    deleted), its files are whole (the API truncates patches of large files) and it is read
    with the same code as every other garden. A head that is not the gardener's commit for
    this library (people pushed to the branch) teaches nothing: who added what is unclear.
    """
    if repo.resolve(sha) is None:
        return []
    head = repo.commit(sha)
    if (not is_gardener_commit(head, git.identity(repo))
            or trailers(head.message).get(LIBRARY_TRAILER) != str(rel)):
        return []
    parent = f"{sha}^"
    paths = _pattern_files(repo.changed_paths(parent, sha, rel), rel)
    if not paths:
        return []
    before = _links_from_blobs(repo.read_blobs(parent, paths))
    after = _links_from_blobs(repo.read_blobs(sha, paths))
    return learned.closed_unmerged(before, after, number=number, commit=sha, today=today)


def _base(repo: git.Repo, base: str | None) -> tuple[str, str]:
    name = base or repo.current_branch() or repo.default_branch()
    if name is None:
        raise ReviewError("HEAD is detached and the remote has no default branch: say which "
                          "branch the proposals are for with --base")
    sha = repo.resolve(name)
    if sha is None:
        raise ReviewError(f"--base {name}: no such branch or commit in {repo.root}")
    return name, sha


def _check_branch(repo: git.Repo, branch: str, base_name: str, base_sha: str,
                  force: bool) -> tuple[str | None, list[git.Commit]]:
    if not repo.valid_branch_name(branch):
        raise ReviewError(f"--branch {branch!r} is not a valid git branch name")
    if branch == base_name:
        raise ReviewError(f"--branch {branch} is the base branch; the gardener never commits "
                          "to the branch it proposes to")
    where = repo.checked_out().get(branch)
    if where is not None:
        raise ReviewError(f"branch {branch} is checked out in {where}; the gardener never "
                          "commits to a checked-out branch: switch away or pick another "
                          "--branch")
    old = repo.branch_sha(branch)
    if old is None:
        return None, []
    who = git.identity(repo)
    foreign = [c for c in repo.commits(f"{base_sha}..{old}") if not is_gardener_commit(c, who)]
    if foreign and not force:
        shown = ", ".join(f"{c.sha[:10]} by {c.author}" for c in foreign[:3])
        raise ReviewError(f"branch {branch} has commits the gardener did not make ({shown}); "
                          "merge or delete the branch, or pass --force to replace it (links "
                          "those commits deleted are remembered as rejected)")
    return old, foreign


@contextmanager
def worktree(repo: git.Repo, commit: str) -> Iterator[Path]:
    """A detached worktree at ``commit`` in a temporary folder, removed afterwards."""
    holder = Path(tempfile.mkdtemp(prefix="gardener-review-"))
    path = holder / "tree"
    try:
        repo.add_worktree(path, commit)
        yield path
    finally:
        repo.remove_worktree(path)
        shutil.rmtree(holder, ignore_errors=True)


@dataclass(frozen=True)
class _Before:
    """What a review keeps of a pattern from before its pass: the little its section shows.
    Not the whole entry: the pass reads the library again, and two whole libraries held at
    once were most of a 3,600-pattern review's memory; the old text comes back from git."""

    slug: str
    title: str
    human: tuple[HumanLink, ...]
    vitality: float | None


def _before(patterns: Sequence[Pattern]) -> dict[str, _Before]:
    return {str(p.path): _Before(p.slug, p.title, tuple(p.relationships), p.vitality)
            for p in patterns}


def _changes(before: Mapping[str, _Before], outcomes: Sequence[Outcome],
             repo_rel: Callable[[Path], str],
             old_bytes: Callable[[Sequence[str]], Mapping[str, bytes | None]],
             ) -> list[PatternChange]:
    """Each changed pattern as the body shows it: its garden before (from ``old_bytes``, the
    base commit's blobs, read in one git process) and after (the file the pass wrote)."""
    changed = [o for o in outcomes if o.status is Status.CHANGED and o.path in before]
    olds = old_bytes([repo_rel(Path(o.path)) for o in changed])
    out: list[PatternChange] = []
    for o in changed:
        p = before[o.path]
        rel = repo_rel(Path(o.path))
        raw = olds.get(rel)
        old_doc = read_text(decode(raw, o.path), o.path) if raw is not None else None
        if old_doc is None:
            continue
        new_text = decode(Path(o.path).read_bytes(), o.path)
        new_doc = read_text(new_text, o.path)
        # the pass's own diff names the temporary worktree; reviewers want the repository path
        o = o.model_copy(update={"diff": unified_diff(rel, old_doc.text, new_text)})
        new_garden = read_garden(new_doc)[0] if new_doc is not None else None
        assessment = old_doc.data.get("ontology")
        assessment = assessment.get("commons_assessment") if isinstance(assessment, dict) else None
        reasoning = assessment.get("vitality_reasoning") if isinstance(assessment, dict) else None
        out.append(PatternChange(
            slug=p.slug, path=rel, title=p.title, outcome=o, old=read_garden(old_doc)[0],
            new=new_garden, human=p.human, vitality=p.vitality,
            human_reasoning=reasoning if isinstance(reasoning, str) else None))
    return out


def _in_repository(outcomes: Sequence[Outcome], worktree: Path) -> list[Outcome]:
    """The outcomes with their errors naming files by their path in the repository, not in
    the temporary worktree the pass ran in (which is gone when a reviewer reads them)."""
    prefixes = sorted({f"{worktree}/", f"{worktree.resolve()}/"}, key=len, reverse=True)
    out: list[Outcome] = []
    for o in outcomes:
        if o.error and any(p in o.error for p in prefixes):
            error = o.error
            for p in prefixes:
                error = error.replace(p, "")
            o = o.model_copy(update={"error": error})
        out.append(o)
    return out


def commit_message(info: PassInfo, subject: str, summary: str) -> str:
    return (f"{subject}\n\n{summary}\n\n"
            f"{TRAILER}: {info.today.isoformat()} model={info.model} "
            f"prompt={info.prompt_version}\n"
            f"{LIBRARY_TRAILER}: {info.library}\n")


def write_report(library: Path, text: str) -> Path:
    """The full report at ``library``/`REPORT_PATH`, its folders made as real folders: a
    committed link among them (``.gardener -> ~``) is refused, never followed."""
    folder = library
    for part in REPORT_PATH.parent.parts:
        folder = folder / part
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            raise ReviewError(f"{folder} is a link or a file; the gardener writes its report "
                              "only into a real folder of the library (remove it)")
        folder.mkdir(exist_ok=True)
    target = library / REPORT_PATH
    write_atomic(target, text, within=library)
    return target


def review(library: Path, run_pass: RunPass, *, branch: str = DEFAULT_BRANCH,
           base: str | None = None, force: bool = False,
           today: dt.date | None = None, rejected: Sequence[decisions.Decision] = (),
           schedule: str = "", body_budget: int = MAX_BODY,
           web: str | None = None) -> ReviewResult:
    """Garden ``library`` on a clean checkout of ``base`` and commit it as ``branch``.

    ``rejected``: decisions learned elsewhere (pull requests closed without merging), kept
    in the new commit's ledger like those learned from history. ``schedule``: when the bot
    runs, for the body's footer. ``body_budget``: the most characters of the body; the full
    report, committed at `REPORT_PATH` in the library, has everything. ``web``: the
    repository's page on GitHub (`gardener.review.github.web_url`), for the body's link to
    the report; None: a link relative to the pull request's page."""
    day = today or dt.date.today()
    repo, rel = git.open_repo(library)
    base_name, base_sha = _base(repo, base)
    old, foreign = _check_branch(repo, branch, base_name, base_sha, force)
    learned: list[decisions.Decision] = list(rejected)
    gardener = _gardener_commit_for(repo, base_sha, rel)
    if gardener is not None:
        learned += learn_from_history(repo, rel, gardener, base_sha, day)
    if foreign and old is not None:
        who = git.identity(repo)
        mine = [c for c in repo.commits(f"{base_sha}..{old}") if is_gardener_commit(c, who)]
        if mine:
            learned += learn_from_history(repo, rel, mine[-1].sha, old, day)
    user_ledger = decisions.ledger_path(library)
    user = decisions.load(user_ledger)  # a broken ledger stops the review before any work
    with worktree(repo, base_sha) as wt:
        wt_lib = wt / rel
        if not wt_lib.is_dir():
            raise ReviewError(f"{rel} is not in {base_name} ({base_sha[:10]}): commit the "
                              "library first")
        ledger_file = decisions.ledger_path(wt_lib)
        read = decisions.read(ledger_file)
        ledger, added = read.ledger.add(learned)
        if added:
            decisions.save(ledger_file, ledger, since=read)
        # Before the pass writes: each pattern's names and links, read a file at a time
        # (`library.load.outline`); the whole library read here, beside the pass's own
        # read, was a 3,600-pattern review's 200 MB over `gardener run`'s peak.
        outline = library_mod.outline(wt_lib)
        existing = in_degrees(outline)
        before = _before(outline)
        del outline
        ran = run_pass(wt_lib, user_ledger if user_ledger.is_file() else None)
        info = PassInfo(library=str(rel), base=base_name, branch=branch, model=ran.model,
                        prompt_version=ran.prompt_version, today=day, base_sha=base_sha,
                        learned=tuple(added), honoured=len(ledger.union(user).decisions),
                        schedule=schedule,
                        calibration=calibration_for(wt_lib, ran.model)[0].line())

        def repo_rel(path: Path) -> str:
            return path.resolve().relative_to(wt.resolve()).as_posix()

        outcomes = _in_repository(ran.outcomes, wt)
        changes = _changes(before, outcomes, repo_rel,
                           lambda rels: repo.read_blobs(base_sha, list(rels)))
        t = totals(changes, outcomes)
        subject = title(info, t)
        commit = None
        if t.changed or added:
            write_report(wt_lib, full_report(info, changes, outcomes, existing=existing))
            summary = (f"{t.changed} patterns changed: {t.links_added} links added, "
                       f"{t.links_removed} removed, {t.links_retyped} retyped; "
                       f"{len(added)} rejections learned from history and closed pull requests.")
            commit = repo.commit_all(wt, rel, commit_message(info, subject, summary),
                                     git.identity(repo))
        report = None
        if commit is not None:
            shown = (rel / REPORT_PATH).as_posix()
            report = ReportLink(shown, report_url(web, commit, shown))
            repo.set_branch(branch, commit, old)
        text = body(info, changes, outcomes, existing=existing, limit=body_budget,
                    report=report)
    return ReviewResult(branch=branch, base=base_name, base_sha=base_sha, commit=commit,
                        previous=old, title=subject, body=text, outcomes=outcomes,
                        learned=added, library=rel)
