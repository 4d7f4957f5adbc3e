"""One pattern through the pure pipeline: (merge ->) prune -> render -> verify.

Both the pruning pass and the gardening flow call these; they return a ``Change`` (the
outcome plus the new text) and never raise for one bad pattern, so a pass always reaches
the others. Writing is a separate edge step (``apply``) so dry runs share every check.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from gardener.graph.entities import Resolution, canonical_entities
from gardener.library.document import read_text
from gardener.library.load import Entry, escape_of
from gardener.library.write import ConflictError, WriteError, write_atomic
from gardener.model import Garden, Outcome, Pattern, Status
from gardener.propose.grounding import PatternText, pattern_text
from gardener.steps.diff import unified_diff
from gardener.steps.edit import splice_scalar
from gardener.steps.merge import VitalityTarget, merge_pass, unchanged
from gardener.steps.prune import PruneResult, PruneSettings, prune
from gardener.steps.rejections import Rejections, without_rejected
from gardener.steps.splice import splice
from gardener.steps.verify import verify, verify_scalar

ASSESSMENT_KEYS = ("ontology", "commons_assessment", "vitality_reasoning")


@dataclass(frozen=True)
class Change:
    """What a pass would do to one file: the outcome and, when it changed, the new text."""

    outcome: Outcome
    old_text: str
    new_text: str | None = None
    garden: Garden | None = None
    """The garden ``new_text`` holds (verified by reading it back), when it changed."""


def _failed(entry: Entry, error: BaseException | str) -> Change:
    return Change(Outcome(path=str(entry.pattern.path), slug=entry.pattern.slug,
                          status=Status.FAILED, error=str(error),
                          warnings=list(entry.pattern.warnings)),
                  entry.doc.text)


def _outcome(entry: Entry, result: PruneResult | None, status: Status) -> Outcome:
    return Outcome(
        path=str(entry.pattern.path),
        slug=entry.pattern.slug,
        status=status,
        removals=list(result.removals) if result else [],
        renames=list(result.renames) if result else [],
        conflicts=list(result.conflicts) if result else [],
        warnings=list(entry.pattern.warnings),
    )


def own_text(pattern: Pattern) -> PatternText:
    """The pattern's own words, as pruning's ``stale`` rule reads them: title, summary and
    sections (domain and keywords as words), folded as the response model's grounding
    folds them (``gardener.propose.propose.grounding_text`` adds the prompt's words to these)."""
    return pattern_text((pattern.title, pattern.summary,
                         *(f"{s.heading}\n{s.text}" for s in pattern.sections)),
                        terms=(pattern.domain or "", *pattern.keywords))


def render(entry: Entry, garden: Garden, *, vitality: str | None = None) -> str:
    """The file's new text with ``garden`` spliced in, verified byte for byte outside it.

    ``vitality`` (the opt-in assessment target) goes to ontology.commons_assessment.
    Raises on any verification failure: the caller turns that into a failed outcome.
    """
    doc = entry.doc
    text = splice(doc, garden)
    verify(doc, text, garden)
    if vitality is not None:
        spliced = read_text(text, doc.path)
        assert spliced is not None  # the splice kept the front matter
        final = splice_scalar(spliced, ASSESSMENT_KEYS, vitality)
        verify_scalar(spliced, final, ASSESSMENT_KEYS, vitality)
        return final
    return text


def prune_entry(entry: Entry, *, slugs: Collection[str], today: dt.date,
                settings: PruneSettings | None = None, diff: bool = True) -> Change:
    """The pruning pass for one pattern; no LLM. Nothing is judged ``stale`` here: this
    pass knows no edit of the text, and an unedited text cannot have lost a curated item."""
    p = entry.pattern
    if p.garden is None:
        return Change(_outcome(entry, None, Status.UNCHANGED), entry.doc.text)
    try:
        result = prune(p.garden, slug=p.slug, library=slugs, human=p.relationships,
                       today=today, settings=settings or PruneSettings())
        if not result.changed:
            return Change(_outcome(entry, result, Status.UNCHANGED), entry.doc.text)
        new_text = render(entry, result.garden)
    except Exception as exc:  # one bad pattern never stops the pass
        return _failed(entry, exc)
    outcome = _outcome(entry, result, Status.CHANGED)
    outcome.unchanged = unchanged(p.garden, result.garden)
    if diff:  # only dry runs and reviews read it; a pass over thousands of files need not pay
        outcome.diff = unified_diff(p.path, entry.doc.text, new_text)
    return Change(outcome, entry.doc.text, new_text)


def garden_entry(entry: Entry, proposed: Garden, *, slugs: Collection[str], today: dt.date,
                 settings: PruneSettings | None = None,
                 vitality_target: VitalityTarget = "garden",
                 rejections: Rejections | None = None,
                 entities: Resolution | None = None, diff: bool = True,
                 evidence: Mapping[str, str] | None = None, edited: bool = True) -> Change:
    """The gardening step for one pattern once its proposal is in: merge, prune, render.

    Links people rejected (``rejections``) never get in: proposed ones are dropped before
    the merge (listed in the outcome's ``detail["rejected"]``), existing ones after it (as
    removals with reason ``rejected``). With the library's entity ``entities`` resolution,
    proposed entities take the library's id for their concept first (one id per concept).
    ``evidence`` (a proposed link's quote of the pattern, by target) lets a proposed type
    replace an existing link's (reason ``retyped``); pruning gets the pattern's own text, so
    an entity or community none of whose words is left in it goes as ``stale``: a proposed
    one always, one already there only when the text was ``edited`` since the last pass.
    ``diff`` as in :func:`prune_entry`: only a dry run shows it.
    """
    p = entry.pattern
    rejections = rejections or Rejections()
    try:
        proposed, refused = without_rejected(p.slug, proposed, rejections)
        if entities is not None:
            proposed = canonical_entities(proposed, entities)
        merging = merge_pass(p.garden, proposed, evidence=evidence,
                             vitality_target=vitality_target)
        merged, rejected = without_rejected(p.slug, merging.garden, rejections)
        old = p.garden
        settled = () if edited or old is None else (
            {e.id for e in old.entities} | {c.id for c in old.communities})
        result = prune(merged, slug=p.slug, library=slugs, human=p.relationships,
                       today=today, settings=settings or PruneSettings(), text=own_text(p),
                       settled=settled)
        kept = {link.target for link in result.garden.inferred_links}
        retyped = tuple(r for r in merging.retyped if r.item in kept)  # else pruning says why
        if rejected or retyped:
            result = replace(result, removals=(*retyped, *rejected, *result.removals))
        garden = result.garden
        vitality = None
        if vitality_target == "assessment" and proposed.vitality_reasoning:
            current = entry.doc.data.get("ontology", {})
            current = current.get("commons_assessment", {}) if isinstance(current, dict) else {}
            old = current.get("vitality_reasoning") if isinstance(current, dict) else None
            if old != proposed.vitality_reasoning:
                vitality = proposed.vitality_reasoning
        outcome = _outcome(entry, result, Status.UNCHANGED)
        outcome.unchanged = unchanged(p.garden, garden)
        if refused:
            outcome.detail = outcome.detail.model_copy(
                update={"rejected": [r.item for r in refused]})
        known = {x.target for x in p.garden.inferred_links} if p.garden else set()
        outcome.added = [link.target for link in garden.inferred_links
                         if link.target not in known]
        if p.garden is not None and garden == p.garden and vitality is None:
            return Change(outcome, entry.doc.text)
        new_text = render(entry, garden, vitality=vitality)
    except Exception as exc:
        return _failed(entry, exc)
    if new_text == entry.doc.text:
        return Change(outcome, entry.doc.text)
    outcome.status = Status.CHANGED
    if diff:
        outcome.diff = unified_diff(p.path, entry.doc.text, new_text)
    return Change(outcome, entry.doc.text, new_text, garden)


def apply(change: Change, *, dry_run: bool, root: Path | None = None) -> Outcome:
    """Write a changed file (unless dry-run); a failed write becomes a failed outcome.

    The file is written only if it still holds the text the pass read (otherwise the
    outcome is a CONFLICT and the person's edit stays) and, given the library ``root``,
    only if it lies inside it.
    """
    if change.new_text is None or dry_run:
        return change.outcome
    path = Path(change.outcome.path)
    if root is not None and (outside := escape_of(root, path)) is not None:
        return change.outcome.model_copy(update={
            "status": Status.FAILED,
            "error": f"{path}: leads to {outside}, outside the library {root}; not written"})
    try:
        write_atomic(path, change.new_text, expected=change.old_text)
    except ConflictError as exc:
        return change.outcome.model_copy(update={"status": Status.CONFLICT, "error": str(exc)})
    except WriteError as exc:
        return change.outcome.model_copy(update={"status": Status.FAILED, "error": str(exc)})
    except OSError as exc:
        return change.outcome.model_copy(update={
            "status": Status.FAILED, "error": f"{change.outcome.path}: cannot write: {exc}"})
    return change.outcome

