"""The pull-request body for a gardening pass, made to fit; and the pass's full report.

Maintainers decide on the gardener's proposals in a pull request, whose body GitHub refuses
past 65,536 characters (code points: a body of 65,537 ASCII or emoji characters is refused
alike, github-limits pull request 13). A first pass over a large library says far more than
that, so the body is built to a budget (`MAX_BODY`, ``gardener review --body-budget``), in
the order people need it: the summary; then what to decide (the prompt-injection warning,
every new link with its reason and evidence, the clashes with human relationships, the
removals grouped by reason code with counts); then, per pattern, the details
(`gardener.review.sections.pattern_section`) and their diffs, while the budget lasts. Every
list that is cut says how much was left out and where it is: the full report
(`full_report`), the same Markdown with nothing left out, which the review commits on its
branch as ``LIBRARY/.gardener/reports/pass.md`` (`REPORT_PATH`) and the body links.
Pure: data in, Markdown out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import quote

from gardener.endpoint.prices import Price, dollars, price_for
from gardener.model import Outcome, Status
from gardener.review.changes import (
    ItemDelta,
    LinkDelta,
    PassInfo,
    PatternChange,
    Totals,
    existing_links,
    item_delta,
    link_delta,
    totals,
)
from gardener.review.markdown import cell, code, mermaid_label, size
from gardener.review.sections import (
    NEW_LINKS_HEADER,
    conflict_items,
    neighbourhood,
    new_link_rows,
    pattern_section,
    removal_table,
    warning,
)
from gardener.steps.outliers import gained, outliers
from gardener.text import one_line

__all__ = ["MARKER", "MAX_BODY", "REPORT_PATH", "ItemDelta", "LinkDelta", "PassInfo",
           "PatternChange", "ReportLink", "Totals", "body", "cell", "code", "configuration",
           "existing_links", "full_report", "item_delta", "link_delta", "neighbourhood",
           "report_url", "title", "totals"]

GITHUB_LIMIT = 65_536
"""The most characters GitHub takes in a pull-request body."""
MAX_BODY = 60_000
"""The body's default budget: under `GITHUB_LIMIT`, with room to spare."""
MIN_BODY = 10_000
"""The smallest budget: the summary, the how-to and the footer always fit."""
REPORT_PATH = PurePosixPath(".gardener/reports/pass.md")
"""Where the full report lies in the library, on the gardener's branch."""
REPORT_DIFFS = 1_000_000
"""The full report takes diffs while it is under this many characters: GitHub renders
Markdown files "generally less than 2 MB" (docs.github.com, Repository limits); past it,
the diffs are in the commit."""

MARKER = "<!-- graph-gardener review -->"
"""First line of every body: how a later run (or a person) knows who wrote it."""
_mermaid_label = mermaid_label  # the name tests and older callers know


@dataclass(frozen=True)
class ReportLink:
    """Where the body's readers find the full report."""

    path: str
    """Its path in the repository, as shown."""
    url: str
    """The link: ``https://github.com/OWNER/REPO/blob/COMMIT/PATH``, or relative to the
    pull request's page (``../blob/COMMIT/PATH``) when the repository's address is unknown."""


def report_url(web: str | None, commit: str, path: str) -> str:
    """The report's address at ``commit``, which stays when the branch moves or is deleted:
    on ``web`` (the repository's page), else relative to the pull request's page
    (``/OWNER/REPO/pull/N`` -> ``/OWNER/REPO/blob/...``)."""
    where = f"blob/{quote(commit, safe='')}/{quote(path, safe='/')}"
    return f"{web}/{where}" if web else f"../{where}"


class _Room:
    """What is left of a budget, in characters; None: no limit."""

    def __init__(self, left: int | None) -> None:
        self.left = left

    def fits(self, n: int) -> bool:
        return self.left is None or n <= self.left

    def take(self, lines: list[str]) -> list[str]:
        if self.left is not None:
            self.left -= size(lines)
        return lines

    def bounded(self, head: list[str], items: Sequence[str], note: Callable[[int], str], *,
                cap: int | None = None, tail: Sequence[str] = ("",)) -> list[str]:
        """``head``, then as many ``items`` as fit (within ``cap`` characters too), then
        ``note(n)`` for the ``n`` left out, then ``tail``; nothing when there are no items
        or not even the head and the note fit."""
        if not items:
            return []
        limit = self.left if cap is None else cap if self.left is None else min(cap,
                                                                                 self.left)
        reserve = len(note(len(items))) + 1
        used = size([*head, *tail])
        taken = 0
        for i, item in enumerate(items):
            last = i == len(items) - 1
            if limit is not None and used + len(item) + 1 + (0 if last else reserve) > limit:
                break
            used += len(item) + 1
            taken += 1
        lines = [*head, *items[:taken]]
        if taken < len(items):
            lines.append(note(len(items) - taken))
        lines += tail
        return self.take(lines) if self.fits(size(lines)) else []


def title(info: PassInfo, t: Totals) -> str:
    n = t.changed
    return (f"graph-gardener: {n} pattern{'s' if n != 1 else ''} gardened in {info.library}"
            f" ({info.today.isoformat()})")


def _summary(t: Totals, price: Price | None) -> list[str]:
    return [
        "| | |", "|---|---:|",
        f"| patterns changed | {t.changed} |",
        *([f"| patterns failed | {t.failed} |"] if t.failed else []),
        *([f"| stale patterns left for the next runs (--max-patterns) | {t.later} |"]
          if t.later else []),
        f"| links added | {t.links_added} |",
        f"| links removed | {t.links_removed} |",
        f"| links retyped | {t.links_retyped} |",
        f"| entities added / removed | {len(t.entities.added)} / {len(t.entities.removed)} |",
        f"| communities added / removed | {len(t.communities.added)} / "
        f"{len(t.communities.removed)} |",
        f"| tokens used (prompt + completion) | {t.prompt_tokens + t.completion_tokens:,} "
        f"({t.prompt_tokens:,} + {t.completion_tokens:,}, {t.requests} requests) |",
        *([f"| estimated cost | {dollars(price.cost(t.prompt_tokens, t.completion_tokens))} "
           f"({cell(price.family)}, {cell(price.source)}) |"] if price is not None else []),
    ]


def _how(info: PassInfo) -> list[str]:
    lib = info.library
    return [
        "<details><summary>How to review this pull request</summary>", "",
        "- **Accept**: merge it. Only `graph_garden` blocks change (and the gardener's state, "
        "decisions and report files under `.gardener/`); every other byte of each file is "
        "verified unchanged.",
        "- **Reject a link**: run "
        f"`gardener reject SLUG TARGET --library {lib} --reason \"...\"` and commit "
        f"`{lib}/.gardener/decisions.yaml`; or delete the link's lines, here or after merging. "
        "A link deleted by hand after the gardener's commit counts as rejected too: it is "
        "never proposed again.",
        "- **Make a link human**: `gardener promote SLUG TARGET --library "
        f"{lib}` moves it into the `relationships` group (group 5), which only people write.",
        "- **Refresh**: `gardener review` again replaces this branch's single commit.", "",
        "</details>",
    ]


def _when(schedule: str) -> str:
    text = one_line(schedule).strip()
    if not text:
        return "when someone runs `gardener review --open` (no schedule is set)."
    if len(text.split()) == 5 and not any(ch.isalpha() and ch not in "LW" for ch in text):
        return f"cron {code(text)} (UTC), and whenever someone runs the workflow by hand."
    return cell(text, 200) + "."


def configuration(info: PassInfo) -> list[str]:
    """The footer, in Renovate's manner: when the bot runs, how to say no, how to stop it."""
    lib = info.library
    return [
        "---", "", "### Configuration", "",
        f"📅 **Schedule**: {_when(info.schedule)}", "",
        f"♻ **Updating**: each run replaces the one commit on {code(info.branch)} with a "
        f"fresh pass over {code(info.base)} and updates this pull request; there is never a "
        "second one. Once people push to the branch, the gardener leaves it alone.", "",
        "🚫 **Reject a link**: run "
        f"`gardener reject SLUG TARGET --library {lib}` and commit "
        f"`{lib}/.gardener/decisions.yaml`, or delete the link's lines in this branch and "
        "merge: either way it is never proposed again.", "",
        "🔕 **Ignore**: close this pull request without merging, and every link it adds is "
        "recorded as rejected on the next run and never proposed again.", "",
        "⏹ **Stop**: disable the workflow that runs the gardener (Actions → its workflow → "
        "Disable workflow) or delete its file under `.github/workflows/`.", "",
    ]


def _comma(room: _Room, label: str, items: Sequence[str], cap: int | None,
           where: str) -> list[str]:
    """``label`` and ``items`` on one line, as many as fit in ``cap`` characters."""
    if not items:
        return []
    reserve = len(f" and {len(items)} more{where}")
    line = label
    for i, item in enumerate(items):
        piece = (", " if i else "") + item
        last = i == len(items) - 1
        if cap is not None and len(line) + len(piece) + (0 if last else reserve) > cap:
            line += f" and {len(items) - i} more{where}"
            break
        line += piece
    return room.take([line, ""]) if room.fits(len(line) + 2) else []


def _compose(info: PassInfo, changes: Sequence[PatternChange], outcomes: Sequence[Outcome],
             existing: Mapping[str, int] | None, *, limit: int | None,
             report: ReportLink | None) -> str:
    """The body (``limit``: its budget) or the full report (``limit`` None)."""
    full = limit is None
    t = totals(changes, outcomes)
    flagged = outliers(gained(outcomes), library=len(outcomes),
                       existing=existing if existing is not None else existing_links(changes))
    where = f", in the [full report]({report.url})" if report is not None else ""
    foot = [*configuration(info), "---",
            f"Made by graph-gardener with model {code(info.model)}, prompt version "
            f"{code(info.prompt_version)}, on {info.today.isoformat()}."]
    budget = None if limit is None else limit - size(foot)
    room = _Room(budget)

    def share(n: int) -> int | None:
        return None if budget is None else budget // n

    heading = (f"# Full report: {cell(title(info, t), 200)}" if full
               else f"## {cell(title(info, t), 200)}")
    out = room.take([*([] if full else [MARKER]), heading, ""])
    w_head, w_items = warning(flagged)
    out += room.bounded(w_head, w_items, lambda n: f"> - and {n} more targets{where}")
    out += room.take([
        "The gardener proposes, people decide. This branch holds one commit with a "
        f"gardening pass over {code(info.library)}, made on {code(info.base)}"
        + (f" ({code(info.base_sha[:12])})" if info.base_sha else "") + ". It never "
        "pushes to the main line: nothing lands until someone merges this pull request.",
        "", *_summary(t, info.price or price_for(info.model)), "",
        *([f"**Confidence.** {cell(info.calibration, 1000)} Each new link shows its "
           "calibrated confidence.", ""] if info.calibration else [])])
    if full:
        out += room.take(["This is the whole of the pass: the pull request's body shows what "
                          "fits in GitHub's limit of 65,536 characters, and links here.", ""])
    elif report is not None:
        out += room.take([f"📄 **Full report**: [{code(report.path)}]({report.url}) on this "
                          "branch: every new link, conflict and removal, and each pattern's "
                          "details, graph and diff. This body shows what fits in GitHub's "
                          "limit and says where it leaves something out.", ""])
    learned = [f"- {code(d.describe())}" + (f": {cell(d.reason)}" if d.reason else "")
               for d in info.learned]
    out += room.bounded(
        ["**Rejections learned from history** (links deleted by hand after the gardener's "
         "last commit, and links of its pull requests closed without merging; now in "
         "`.gardener/decisions.yaml`):", ""], learned,
        lambda n: f"- and {n} more{where}", cap=share(10))
    if info.honoured:
        out += room.take([f"{info.honoured} rejection{'s' if info.honoured != 1 else ''} in "
                          "force; rejected links are never proposed again.", ""])
    dropped = sorted(f"{o.slug} -> {target}" for o in outcomes
                     for target in o.detail.rejected or ())
    out += _comma(room, "**Proposed again and dropped** (rejected earlier): ",
                  [code(x) for x in dropped], share(20), where)
    failed = [o for o in outcomes if o.status in (Status.FAILED, Status.CONFLICT)]
    out += room.bounded(["**Failed or conflicting patterns** (left as they were):", ""],
                        [f"- {cell(o.error or o.path, 400)}" for o in failed],
                        lambda n: f"- and {n} more{where}", cap=share(10))
    out += room.take([*_how(info), ""])
    changed = sorted((c for c in changes if c.outcome.status is Status.CHANGED),
                     key=lambda c: c.path)
    if not changed:
        return "\n".join([*out, "No pattern changed.", "", *foot]) + "\n"
    decide, listed = _decide(room, changed, where, share)
    out += decide
    diffs = room if not full else _Room(REPORT_DIFFS - size([*out, *foot]))
    return "\n".join([*out, *_patterns(room, diffs, changed, report, listed=listed),
                      *foot]) + "\n"


NOTES = 1_000
"""Room kept for the Patterns heading and the notes of what was left out."""


def _decide(room: _Room, changed: Sequence[PatternChange], where: str,
            share: Callable[[int], int | None]) -> tuple[list[str], bool]:
    """What people need to decide: new links, conflicts, removals by reason code; and
    whether the new links' table holds every one."""
    removals = removal_table(changed)
    removed = room.bounded(["### Removed, by reason", "", *removals[:2]], removals[2:],
                           lambda n: f"\n_{n} more reasons{where}._")
    conflicts = room.bounded(
        ["### Conflicts with human relationships (the human one wins)", ""],
        conflict_items(changed), lambda n: f"- and {n} more{where}", cap=share(6))
    rows = new_link_rows(changed)
    links = room.bounded(
        [f"### New links ({len(rows)})", "", *NEW_LINKS_HEADER], [row for _, row in rows],
        lambda n: f"\n_{n} more new links{where}._",
        cap=None if room.left is None else max(room.left - NOTES, 0))
    listed = len(links) == len(NEW_LINKS_HEADER) + 2 + len(rows) + 1  # heading, blank, tail
    if not (removed or conflicts or links):
        return [], listed
    return ["## To decide", "", *links, *conflicts, *removed], listed


def _patterns(room: _Room, diffs: _Room, changed: Sequence[PatternChange],
              report: ReportLink | None, *, listed: bool) -> list[str]:
    """Each changed pattern's details while they fit, then their diffs while those fit."""
    link = f"the [full report]({report.url})" if report is not None else ""
    sections = [pattern_section(c, listed=listed) for c in changed]
    out = room.take(["## Patterns", ""])
    shown = 0
    for lines, _ in sections:
        if not room.fits(size(lines) + NOTES):
            break
        room.take(lines)
        shown += 1
    omitted = 0
    for lines, block in sections[:shown]:
        out += lines
        if block is not None:
            if diffs.fits(len(block) + 1 + NOTES):
                out += diffs.take([block])
            else:
                omitted += 1
    if shown < len(changed):
        out += [f"_The details of {len(changed) - shown} of {len(changed)} changed patterns "
                f"(from {code(changed[shown].slug)} on, by file path) are left out to keep "
                f"this body under GitHub's size limit" + (f"; they are in {link}" if link else "")
                + "._", ""]
    if omitted:
        out += [f"_{omitted} diff{'s' if omitted != 1 else ''} left out to keep this "
                + ("report readable on GitHub; see the commit._" if diffs is not room else
                   "body under GitHub's size limit; they are in the commit"
                   + (f" and {link}" if link else "") + "._"), ""]
    return out


def body(info: PassInfo, changes: Sequence[PatternChange],
         outcomes: Sequence[Outcome], *, limit: int = MAX_BODY,
         existing: Mapping[str, int] | None = None, report: ReportLink | None = None) -> str:
    """The pull-request body, in Markdown that reads well on GitHub, at most ``limit``
    characters (from `MIN_BODY` up).

    ``existing``: the library's in-degrees before the pass
    (`gardener.steps.outliers.in_degrees`); without them, those of the changed patterns
    judge the outliers listed first. ``report``: where the full report is, which every cut
    points to (without it: the commit)."""
    return _compose(info, changes, outcomes, existing, limit=max(limit, MIN_BODY),
                    report=report)


def full_report(info: PassInfo, changes: Sequence[PatternChange], outcomes: Sequence[Outcome],
                *, existing: Mapping[str, int] | None = None) -> str:
    """The whole pass in the body's Markdown with nothing left out (diffs while the report
    stays under `REPORT_DIFFS`): the file the review commits at `REPORT_PATH`."""
    return _compose(info, changes, outcomes, existing, limit=None, report=None)
