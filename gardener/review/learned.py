"""Rejections learned from history: links a person deleted after the gardener's commit, and
the links of a gardener pull request closed without merging (Renovate's "no").

Pure comparisons of two snapshots of a library's links; ``gardener.review.branch`` reads the
snapshots from git and records what is learned in the ledger (``gardener.library.decisions``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from gardener.library.decisions import Decision, Ledger
from gardener.model import Garden


@dataclass(frozen=True)
class Links:
    """What history comparison needs of one pattern: its inferred and human link targets."""

    inferred: frozenset[tuple[str, str | None]]
    human: frozenset[str]


def links_of(garden: Garden | None, human_targets: Iterable[str]) -> Links:
    links = garden.inferred_links if garden is not None else ()
    return Links(frozenset((lk.target, lk.type) for lk in links), frozenset(human_targets))


def deleted_by_hand(before: Mapping[str, Links], after: Mapping[str, Links],
                    library: Collection[str], *, commit: str,
                    today: dt.date) -> list[Decision]:
    """Links in the gardener's commit (``before``) that a person took out since (``after``).

    Not a rejection: a pattern that is gone, a target that is gone (pruning's business), a
    link a person moved into the human relationships (a promotion). A link whose target is
    still linked with another type rejects only the old type; otherwise the whole target.
    """
    out: list[Decision] = []
    for slug in sorted(before):
        now = after.get(slug)
        if now is None:
            continue
        now_targets = {t for t, _ in now.inferred}
        for target, type_ in sorted(before[slug].inferred - now.inferred,
                                    key=lambda x: (x[0], x[1] or "")):
            if target in now.human or target not in library or target == slug:
                continue
            out.append(Decision(
                slug=slug, target=target, type=type_ if target in now_targets else None,
                reason=f"deleted by hand after gardener commit {commit[:12]}",
                date=today, source="history", commit=commit))
    return out


def closed_unmerged(before: Mapping[str, Links], after: Mapping[str, Links], *, number: int,
                    commit: str, today: dt.date) -> list[Decision]:
    """The links pull request ``number`` added (in its head ``after``, not in its parent
    ``before``): closed without merging, each is a "no". A link it retyped rejects only the
    new type, so the link people had stays."""
    out: list[Decision] = []
    for slug in sorted(after):
        old = before.get(slug, Links(frozenset(), frozenset()))
        old_targets = {t for t, _ in old.inferred}
        for target, type_ in sorted(after[slug].inferred - old.inferred,
                                    key=lambda x: (x[0], x[1] or "")):
            if target == slug:
                continue
            out.append(Decision(
                slug=slug, target=target, type=type_ if target in old_targets else None,
                reason=f"pull request #{number} was closed without merging",
                date=today, source="pull-request", commit=commit))
    return out


def read_pull_requests(ledger: Ledger) -> frozenset[str]:
    """Head commits of the closed pull requests already recorded in ``ledger``."""
    return frozenset(d.commit for d in ledger.decisions
                     if d.source == "pull-request" and d.commit)
