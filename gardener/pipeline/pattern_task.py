"""One pattern's gardening: the skip check, the request, and what its answer settles.

``garden_one`` is what a Prefect task runs: propose (``gardener.propose.propose``), then merge,
prune, render, verify and write (``gardener.steps.passes``), and the outcome the report
shows. Only a transient model failure is raised, for Prefect to retry; everything else,
a bug included, becomes the pattern's outcome so that one pattern never stops the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

from gardener.endpoint.client import LLMError, Usage
from gardener.endpoint.settings import LLMSettings
from gardener.library.state import (
    StaleReason,
    content_fingerprint,
    needs_gardening,
)
from gardener.model import Detail, Garden, Outcome, Status
from gardener.pipeline.client import is_transient
from gardener.pipeline.run import NOT_ASKED, Check, InFlight, NotAsked, Run, is_fatal
from gardener.propose.propose import ProposalResult, StructuredLLM, fitted_profile, propose
from gardener.shortlist.candidates import CandidateInfo
from gardener.shortlist.signals import signals
from gardener.steps.link import Linked, decide
from gardener.steps.passes import apply, garden_entry, own_text

log = logging.getLogger("gardener.flows")


@dataclass(frozen=True)
class Record:
    """What the state should remember of a pattern whose file now holds its gardening."""

    fingerprint: str
    prompt_version: str
    model: str
    candidates_fp: str
    garden: Garden | None


@dataclass(frozen=True)
class Gardened:
    """A task's result: the outcome, and the state record when there is one to keep."""

    outcome: Outcome
    record: Record | None = None


def usage_of(run: Run, i: int, used: Usage) -> Usage:
    with run.lock:
        return run.spent.pop(i, Usage()) + used


def tokens_of(used: Usage) -> dict[str, int]:
    return {"prompt_tokens": used.prompt_tokens, "completion_tokens": used.completion_tokens}


def check(run: Run, i: int) -> Check:
    """The skip decision for pattern ``i``: content, prompt, model and candidates as before?

    The candidates are ranked only when everything else is as before: a new or changed
    pattern is stale whatever its shortlist, which is then made when it is asked (a first
    pass over 3,600 patterns with ``--max-patterns 10`` ranks 10, not 3,600)."""
    entry = run.entries[i]
    p = entry.pattern
    fingerprint = content_fingerprint(
        entry.doc.data, entry.doc.body,
        vitality_in_assessment=run.options.vitality_target == "assessment")
    known = run.state.get(p.slug)
    stale, reason = needs_gardening(known, fingerprint=fingerprint,
                                    prompt_version=run.prompt_version, model=run.model,
                                    candidates_fp=known.candidates if known else "")
    if stale:
        return Check(stale, str(reason), None, None, fingerprint)
    return _ranked(run, i, Check(stale, str(reason), None, None, fingerprint), decide=True)


def shortlisted(run: Run, i: int, c: Check) -> tuple[list[CandidateInfo], str]:
    """Pattern ``i``'s shortlist and its fingerprint: ``c``'s, or made now."""
    if c.shortlist is not None and c.candidates_fp is not None:
        return c.shortlist, c.candidates_fp
    ranked = _ranked(run, i, c, decide=False)
    return ranked.shortlist or [], ranked.candidates_fp or ""


def _ranked(run: Run, i: int, c: Check, *, decide: bool) -> Check:
    p = run.entries[i].pattern
    size = run.options.candidates
    shortlist = run.index.shortlist(p, run.profile.candidates if size is None else size)
    # The registry's communities are choices the model is offered, like the candidates: a
    # changed registry makes the pattern stale. Without a registry nothing is added.
    offered = [f"community:{cid}" for cid in run.registry.ids] if run.registry else []
    candidates_fp = run.index.fingerprint([c.slug for c in shortlist] + offered)
    if not decide:
        return replace(c, shortlist=shortlist, candidates_fp=candidates_fp)
    stale, reason = needs_gardening(run.state.get(p.slug), fingerprint=c.fingerprint,
                                    prompt_version=run.prompt_version, model=run.model,
                                    candidates_fp=candidates_fp)
    return Check(stale, str(reason), shortlist, candidates_fp, c.fingerprint)


def skipped(run: Run, i: int, reason: str) -> Gardened:
    p = run.entries[i].pattern
    return Gardened(Outcome(path=str(p.path), slug=p.slug, status=Status.SKIPPED,
                            warnings=list(p.warnings), detail=Detail(reason=reason)))


def _not_asked(run: Run, i: int, halted: str, reason: str, *, used: Usage | None = None,
               what: str = "not asked") -> Gardened:
    """A pattern the halted run did not garden: FAILED with why. One the deadline stopped is
    marked (``not_asked: deadline``): the run was stopped as planned (exit 3), and the next
    run gardens it."""
    p = run.entries[i].pattern
    used = usage_of(run, i, used or Usage())
    late = run.fatal is None and run.stopped is None and run.past_deadline()
    detail = Detail(reason=str(reason), not_asked="deadline" if late else None)
    return Gardened(Outcome(
        path=str(p.path), slug=p.slug, status=Status.FAILED,
        error=f"{p.path}: {what}: {halted}", warnings=list(p.warnings),
        usage=tokens_of(used), requests=used.requests, detail=detail))


def over_budget(run: Run, i: int, why: str, reason: str) -> Gardened:
    """A pattern the token budget left unasked: SKIPPED, its state untouched, so the next
    run asks it (the summary and the report count it as not asked)."""
    p = run.entries[i].pattern
    used = usage_of(run, i, Usage())
    return Gardened(Outcome(path=str(p.path), slug=p.slug, status=Status.SKIPPED,
                            warnings=list(p.warnings), usage=tokens_of(used),
                            requests=used.requests,
                            detail=Detail(reason=f"{NOT_ASKED}: {why}", not_asked="budget",
                                    stale=str(reason))))


def ask(run: Run, i: int, shortlist: list[CandidateInfo], llm: StructuredLLM, *,
        grounded: bool = True) -> ProposalResult:
    """Pattern ``i``'s proposal from ``llm``, asked as every pass asks it (``--estimate``
    builds its requests through this too, ``grounded=False``: it validates no answer), its
    prompt cut to the context the client's settings know of (``fitted_profile``)."""
    settings = getattr(llm, "settings", None)
    chosen = fitted_profile(run.entries[i].pattern, shortlist, run.profile, settings,
                            prompts=run.prompts, registry=run.registry
                            ) if isinstance(settings, LLMSettings) else None
    profile = run.profile if chosen is None else chosen.profile
    result = propose(run.entries[i].pattern, shortlist[:profile.candidates], llm,
                     today=run.today, prompts=run.prompts, limits=profile.limits,
                     caps=profile.caps, registry=run.registry,
                     max_retries=None if chosen is None else chosen.reasks, grounded=grounded)
    if chosen is None or (chosen.profile == run.profile and isinstance(settings, LLMSettings)
                          and chosen.reasks == settings.max_retries):
        return result
    return replace(result, asked_with={
        "profile": chosen.profile.name, "candidates": chosen.profile.candidates,
        "reasks": chosen.reasks, "prompt_tokens": chosen.tokens, "budget": chosen.budget,
        "context": settings.context if isinstance(settings, LLMSettings) else None})


def garden_one(run: Run, i: int) -> Gardened:
    """Garden pattern ``i`` of ``run``: propose, merge, prune, render, verify, write.

    The flow sends only stale patterns, so this one is asked whatever the state it finds
    (in another process, a state loaded later may already hold other patterns' records).
    Raises only a transient ``LLMError``, for Prefect to retry; everything else is an outcome.
    """
    entry = run.entries[i]
    p = entry.pattern
    options = run.options
    try:
        with run.lock:
            decided = run.checks.get(i)
        c = decided or check(run, i)
        shortlist, candidates_fp = shortlisted(run, i, c)
        fingerprint, reason = c.fingerprint, c.reason
        halted = run.halted()
        if halted is not None:
            return _not_asked(run, i, halted, reason)
        spent = run.over_budget()
        if spent is not None:
            return over_budget(run, i, spent, reason)
        with run.lock:
            run.first_try.setdefault(i, time.monotonic())
        try:
            result = ask(run, i, shortlist, InFlight(run))
        except NotAsked as exc:
            if exc.budget:
                return over_budget(run, i, str(exc), reason)
            return _not_asked(run, i, str(exc), reason)
        except LLMError as exc:
            if is_transient(exc):
                with run.lock:
                    run.spent[i] = run.spent.get(i, Usage()) + exc.usage
                stop = _give_up(run, i, exc)
                if stop is None:
                    raise
                used = usage_of(run, i, Usage())
                return Gardened(Outcome(
                    path=str(p.path), slug=p.slug, status=Status.FAILED,
                    error=f"{p.path}: {exc.message} ({stop})", warnings=list(p.warnings),
                    usage=tokens_of(used), requests=used.requests,
                    detail=Detail(reason=str(reason))))
            if is_fatal(exc):
                with run.lock:
                    run.fatal = run.fatal or exc.message
            used = usage_of(run, i, exc.usage)
            return Gardened(Outcome(
                path=str(p.path), slug=p.slug, status=Status.FAILED,
                error=f"{p.path}: {exc.message}",
                warnings=list(p.warnings), usage=tokens_of(used), requests=used.requests,
                detail=Detail(reason=str(reason))))
        with run.lock:
            run.failing = 0
        if result.salvaged and not result.answered:
            used = usage_of(run, i, result.usage)
            return Gardened(Outcome(
                path=str(p.path), slug=p.slug, status=Status.FAILED,
                error=f"{p.path}: the model gave no usable answer, even after re-asking "
                      f"({'; '.join(result.dropped[:3])}); not written, the next run asks "
                      "again", warnings=list(p.warnings), usage=tokens_of(used),
                requests=used.requests, detail=Detail(reason=str(reason), salvaged=True,
                                                dropped=result.dropped)))
        linked = weigh(run, i, result, len(shortlist))
        if not run.writes():
            return _not_asked(run, i, f"{run.stopped}", reason, used=result.usage,
                              what="answered but not written")
        try:
            outcome, new_garden = settle(run, i, linked.garden, linked.evidence,
                                         edited=reason == StaleReason.CONTENT)
        finally:
            run.wrote()
        used = usage_of(run, i, result.usage)
        outcome.usage = tokens_of(used)
        outcome.requests = used.requests
        new = [{"id": c.id, "label": c.label, "justification": c.justification}
               for c in result.proposal.communities if c.justification]
        outcome.detail = outcome.detail.model_copy(update={
            "reason": str(reason), "salvaged": result.salvaged, "dropped": list(result.dropped),
            "new_communities": new, "fitted": result.asked_with or None,
            "refused": linked.refused,
            "proposed": {lk.target: lk.confidence or 0.0
                         for lk in result.garden.inferred_links}})
        outcome.evidence = {t: linked.evidence[t] for t in outcome.added if t in linked.evidence}
        if outcome.status in (Status.FAILED, Status.CONFLICT) or options.dry_run:
            return Gardened(outcome)
        written = new_garden if outcome.status is Status.CHANGED else p.garden
        return Gardened(outcome, Record(
            fingerprint=fingerprint, prompt_version=result.prompt_version, model=run.model,
            candidates_fp=candidates_fp, garden=written))
    except LLMError:
        raise
    except Exception as exc:  # a bug must not stop the other patterns; it is shown, though
        log.exception("%s: unexpected error while gardening", p.path)
        return Gardened(Outcome(
            path=str(p.path), slug=p.slug, status=Status.FAILED,
            error=f"{p.path}: unexpected error: {type(exc).__name__}: {exc}",
            warnings=list(p.warnings)))


def weigh(run: Run, i: int, result: ProposalResult, shown: int) -> Linked:
    """Pattern ``i``'s proposal with its links decided by the run's calibration: the ranker's
    candidates within its reach and the model's picks, each written when its calibrated
    chance reaches ``min_confidence`` (``gardener.steps.link``)."""
    p = run.entries[i].pattern
    cal = run.calibration
    found = signals(run.index, p, max(cal.candidates, shown))
    return decide(p, result.garden, result.evidence, found, cal,
                  threshold=run.options.prune.min_confidence, default_type=run.usual_type,
                  text=own_text(p))


def settle(run: Run, i: int, proposed: Garden, evidence: Mapping[str, str] | None = None,
           *, edited: bool = False) -> tuple[Outcome, Garden | None]:
    """Merge pattern ``i``'s proposal with its garden, prune, render, verify and write it:
    the outcome, and the garden the file now holds when it changed. ``evidence`` (each
    proposed link's quote, by target) lets a proposed type retype an existing link;
    ``edited`` (the text changed since its last gardening) lets pruning judge the items
    already there as ``stale``."""
    options = run.options
    change = garden_entry(run.entries[i], proposed, slugs=run.slugs, today=run.today,
                          settings=options.prune, vitality_target=options.vitality_target,
                          rejections=run.rejections, entities=run.entities,
                          diff=options.dry_run, evidence=evidence, edited=edited)
    return apply(change, dry_run=options.dry_run, root=run.root), change.garden


def _give_up(run: Run, i: int, exc: LLMError) -> str | None:
    """Why a pattern whose model call failed transiently gets no Prefect retry, if it gets
    none: the endpoint looks down, the pattern's time budget or the run's deadline is spent."""
    options = run.options
    with run.lock:
        run.failing += 1
        if run.fatal is None and run.failing >= options.give_up_after:
            run.fatal = (f"{run.failing} model calls in a row failed with no success between "
                         f"them, the last with: {exc.message}; the endpoint looks down, so "
                         "this run asks nothing more")
            log.error("%s", run.fatal)
        spent = time.monotonic() - run.first_try.get(i, run.started)
    halted = run.halted()
    if halted is not None:
        return f"no retry: {halted}"
    if spent + options.retry_delay_s >= options.pattern_budget_s:
        return (f"no retry: {spent:.0f} s spent on this pattern, its budget is "
                f"{options.pattern_budget_s:g} s")
    return None
