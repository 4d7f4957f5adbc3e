"""Links people rejected never come back: the ledger's filter over a garden, pure.

The ledger (``gardener.library.decisions``) says which links people turned down; a pass drops
them after validation, from the proposal and from the existing garden alike, each one a
removal that says who decided.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gardener.library.decisions import Decision, Ledger
from gardener.model import Garden, Link, Reason, Removal

_SAID: dict[str, str] = {"person": "a person", "history": "history",
                         "pull-request": "closing the pull request"}


@dataclass(frozen=True)
class Rejections:
    """The ledger indexed for the pass: one lookup per link."""

    by_pair: Mapping[tuple[str, str], tuple[Decision, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, ledger: Ledger) -> Rejections:
        index: dict[tuple[str, str], list[Decision]] = {}
        for d in ledger.decisions:
            index.setdefault((d.slug, d.target), []).append(d)
        return cls({k: tuple(v) for k, v in index.items()})

    def __bool__(self) -> bool:
        return bool(self.by_pair)

    def rejecting(self, slug: str, link: Link) -> Decision | None:
        found = self.by_pair.get((slug, link.target), ())
        return next((d for d in found if d.covers(slug, link.target, link.type)), None)


def without_rejected(slug: str, garden: Garden,
                     rejections: Rejections) -> tuple[Garden, list[Removal]]:
    """``garden`` less the links people rejected, each one a removal saying who decided."""
    if not rejections:
        return garden, []
    kept: list[Link] = []
    removals: list[Removal] = []
    for link in garden.inferred_links:
        d = rejections.rejecting(slug, link)
        if d is None:
            kept.append(link)
            continue
        said = f"rejected by {_SAID[d.source]}"
        removals.append(Removal(kind="link", item=link.target, reason=Reason.REJECTED,
                                detail=said + (f": {d.reason}" if d.reason else "")))
    if not removals:
        return garden, []
    return garden.model_copy(update={"inferred_links": tuple(kept)}), removals
