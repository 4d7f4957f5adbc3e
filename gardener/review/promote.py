"""Promote an inferred link into the human-curated relationships, when a person asks to.

The gardener never moves its own guesses into group 5: only a person can vouch for a link.
``gardener promote SLUG TARGET`` is that explicit request. The link leaves
``graph_garden.inferred_links`` and joins ``relationships.TYPE`` (or the top-level ``TYPE``
list of the older flat layout) with its confidence as the weight. Both edits are verified
like every write: apart from the link's own lines and the one new item, no byte changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from gardener.errors import GardenerError
from gardener.library.document import Document, read_text
from gardener.library.garden import read_garden
from gardener.model import LINK_TYPES, Link, Pattern
from gardener.steps.edit import relationship_append
from gardener.steps.prune import canonical_type
from gardener.steps.splice import splice
from gardener.steps.verify import verify, verify_append


class PromoteError(GardenerError, ValueError):
    """A promotion that cannot be made; the message names the file and why."""


@dataclass(frozen=True)
class Promotion:
    """The file's new text, and what moved where."""

    new_text: str
    link: Link
    type: str
    keys: tuple[str, ...]


def choose_link(pattern: Pattern, target: str, type_: str | None) -> Link:
    """The inferred link to promote: the only one to ``target``, or the one of ``type_``."""
    garden = pattern.garden
    links = [lk for lk in (garden.inferred_links if garden else ()) if lk.target == target]
    where = str(pattern.path)
    if type_ is not None:
        links = [lk for lk in links if canonical_type(lk.type) == type_]
    if not links:
        kind = f" of type {type_}" if type_ else ""
        raise PromoteError(f"{where}: graph_garden.inferred_links has no link to '{target}'"
                           f"{kind}; nothing to promote")
    types = sorted({canonical_type(lk.type) or str(lk.type) for lk in links})
    if len(types) > 1:
        raise PromoteError(f"{where}: the garden links to '{target}' as {', '.join(types)}; "
                           "say which with --type")
    return max(links, key=lambda lk: lk.strength)


def promote(doc: Document, pattern: Pattern, target: str, type_: str | None = None) -> Promotion:
    """``doc``'s text with the link to ``target`` moved into the human relationships."""
    link = choose_link(pattern, target, type_)
    kind = type_ or canonical_type(link.type)
    if kind is None or kind not in LINK_TYPES:
        raise PromoteError(f"{pattern.path}: the link to '{target}' has type {link.type!r}, "
                           f"not one of {', '.join(LINK_TYPES)}; give one with --type")
    human = [h for h in pattern.relationships if h.target == target]
    if human:
        raise PromoteError(f"{pattern.path}: '{target}' is already a human relationship "
                           f"({human[0].type}); delete the inferred link instead")
    garden, _ = read_garden(doc)
    assert garden is not None  # choose_link found a link in it
    kept = garden.model_copy(update={
        "inferred_links": tuple(lk for lk in garden.inferred_links if lk.target != target)})
    text = splice(doc, kept)
    verify(doc, text, kept)
    middle = read_text(text, doc.path)
    assert middle is not None  # verify re-read it
    weight = round(link.confidence, 2) if link.confidence is not None else None
    append = relationship_append(middle, kind, target, weight)
    final = middle.text[:append.edit.start] + append.edit.text + middle.text[append.edit.end:]
    verify_append(middle, final, append)
    return Promotion(final, link, kind, append.keys)
