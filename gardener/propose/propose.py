"""Ask the model for one pattern's garden proposal: the only step that talks to a model.

Builds the pattern's grounded response model, renders the versioned prompt and makes one
structured call (instructor re-asks on validation errors). When the re-asks are spent, the
last answer is salvaged item by item instead of being thrown away. Transport failures
(``LLMError``) propagate: the flow records them on the pattern's outcome.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from gardener.endpoint.client import StructuredOutputError, Usage
from gardener.endpoint.settings import LLMSettings
from gardener.endpoint.tokens import Counter, counter_for
from gardener.library.registry import Registry
from gardener.model import ENTITY_TYPES, LINK_TYPES, Garden, Pattern
from gardener.propose.fit import GRAMMAR_MODES, Fitted, fit, window
from gardener.propose.grounding import (
    PatternText,
    pattern_text,
    prompt_phrases,
    targets,
    task_phrases,
    vitality_band,
)
from gardener.propose.profiles import Profile
from gardener.propose.prompts import (
    DEFAULT_LIMITS,
    Candidate,
    PromptLimits,
    PromptSet,
    default_prompts,
    render_messages,
)
from gardener.propose.registry_schema import build_registry_response_model
from gardener.propose.response import (
    ResponseModel,
    build_response_model,
    salvage,
    schema_text,
    task_names,
)
from gardener.propose.salvage import lenient_json
from gardener.propose.schemas import BAND_NAMES, DEFAULT_CAPS, Caps, Proposal, to_garden

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)


class StructuredLLM(Protocol):
    """What ``propose`` needs of a client: ``gardener.endpoint.client.LLM`` or a fixture store."""

    def structured(self, *, response_model: type[T], messages: list[dict[str, Any]],
                   context: dict[str, Any] | None = None, tag: str = "",
                   max_retries: int | None = None) -> tuple[T, Usage]: ...


ITEM_LISTS = ("entities", "communities", "inferred_links")


def has_object(raw_json: str | None) -> bool:
    """Whether a failed answer is an answer: a JSON object giving at least one of the item
    lists as a list (``salvage`` judges its items). ``{"entities": "several"}`` is not."""
    if not raw_json:
        return False
    try:
        data = lenient_json(raw_json)
    except ValueError:
        return False
    return isinstance(data, dict) and any(isinstance(data.get(key), list) for key in ITEM_LISTS)


@dataclass(frozen=True)
class ProposalResult:
    """One pattern's proposal, what it cost, and every item salvage had to drop (and why)."""

    proposal: Proposal
    usage: Usage
    dropped: list[str]
    prompt_version: str
    salvaged: bool = False
    """True when the re-asks were exhausted and the proposal is what salvage kept."""
    answered: bool = True
    """False when there was no JSON object to salvage at all. An answer whose every item was
    refused (ungrounded, no evidence) is an answer: nothing to add, not a failure."""
    garden: Garden = field(default_factory=Garden)
    """The proposal as garden items, dated with ``propose``'s ``today``; input to merge."""
    asked_with: dict[str, Any] | None = None
    """How the request was cut to the model's context (`fitted_profile`), for the report;
    None when it was not (no context known, or it fitted uncut)."""

    @property
    def evidence(self) -> dict[str, str]:
        """Each proposed link's quote of the pattern, by target: for the report and review."""
        return {lk.target: lk.evidence for lk in self.proposal.inferred_links if lk.evidence}


_KEY_LINE = re.compile(r"^(\w+): \{\{", re.MULTILINE)


def grounding_text(pattern: Pattern, candidates: Sequence[Candidate],
                   prompts: PromptSet, system: str) -> PatternText:
    """What ``pattern``'s answer is checked against: its title, summary and body (its domain
    and keywords as words); the text
    shown of each candidate; the rendered ``system`` prompt's examples; the task's own words
    (the schema's field names, the keys the prompt quotes, the pattern's fields, the types)."""
    keys = _KEY_LINE.findall(prompts.user)
    task = task_phrases((*task_names(), *keys, *Pattern.model_fields, *ENTITY_TYPES,
                         *LINK_TYPES, *BAND_NAMES))
    return pattern_text(
        (pattern.title, pattern.summary,
         *(f"{s.heading}\n{s.text}" for s in pattern.sections)),
        terms=(pattern.domain or "", *pattern.keywords),
        candidates={c.slug: f"{c.title} {c.summary}" for c in candidates if c.slug != pattern.slug},
        slugs=(r.target for r in pattern.relationships if r.target != pattern.slug),
        prompt=prompt_phrases(system, schema_text()), task=task)


def request_messages(pattern: Pattern, candidates: Sequence[Candidate], *, prompts: PromptSet,
                     limits: PromptLimits, caps: Caps,
                     registry: Registry | None) -> list[dict[str, Any]]:
    """The chat messages that ask for ``pattern``'s proposal."""
    return list(render_messages(pattern, candidates, prompts=prompts, limits=limits, caps=caps,
                                registry=registry.communities if registry is not None else ()))


def request_model(pattern: Pattern, candidates: Sequence[Candidate], prompts: PromptSet,
                  messages: list[dict[str, Any]], caps: Caps,
                  registry: Registry | None, *, grounded: bool = True) -> type[ResponseModel]:
    """The grounded response model the answer to ``messages`` is validated against.

    ``grounded=False`` leaves the pattern's text out of its validators, for a request that is
    only counted (``--estimate``): the schema sent is the same, and folding the text is the
    costliest part of building a request."""
    slugs = [c.slug for c in candidates]
    text = grounding_text(pattern, candidates, prompts, messages[0]["content"]) \
        if grounded else None
    if registry is not None and registry.communities:
        return build_registry_response_model(
            pattern.slug, slugs, pattern.vitality, {c.id: c.label for c in registry.communities},
            caps, text=text)
    return build_response_model(pattern.slug, slugs, pattern.vitality, caps, text=text)


def request_targets(pattern: Pattern, candidates: Sequence[Candidate]) -> tuple[str, ...]:
    """The link targets ``pattern``'s response model offers: its candidates' slugs in order,
    without itself or repeats (the schema's ``enum``, or ``const`` for one)."""
    return targets(pattern.slug, (c.slug for c in candidates))


def schema_shape(pattern: Pattern, candidates: Sequence[Candidate],
                 caps: Caps) -> tuple[Any, ...]:
    """What decides ``pattern``'s response schema besides its link targets' slugs: the caps,
    the band a human vitality score fixes, and whether there are none, one (a ``const``) or
    more targets (an ``enum``). Two patterns of one shape (and one run: prompts, registry,
    mode) differ in their schema only where their targets are listed, which
    ``gardener.pipeline.estimate`` relies on and checks."""
    band = vitality_band(pattern.vitality)
    listed = len(request_targets(pattern, candidates))
    return caps, None if band is None else band.name, min(listed, 2)


def request_tokens(pattern: Pattern, candidates: Sequence[Candidate], count: Counter, *,
                   prompts: PromptSet, limits: PromptLimits, caps: Caps,
                   registry: Registry | None, schema_in_prompt: bool) -> int:
    """Prompt tokens of ``pattern``'s request as ``count`` counts them: the messages, and the
    response schema where the endpoint reads it as prompt text (tools, json modes)."""
    messages = request_messages(pattern, candidates, prompts=prompts, limits=limits, caps=caps,
                                registry=registry)
    body: dict[str, Any] = {"messages": messages}
    if schema_in_prompt:
        schema = request_model(pattern, candidates, prompts, messages, caps,
                               registry).model_json_schema()
        body["response_format"] = {"type": "json_schema", "json_schema": {"schema": schema}}
    return count.prompt_tokens(body)


def fitted_profile(pattern: Pattern, shortlist: Sequence[Candidate], profile: Profile,
                   settings: LLMSettings, *, prompts: PromptSet,
                   registry: Registry | None = None) -> Fitted | None:
    """``profile`` cut so that ``pattern``'s request, re-asks included, fits the context
    ``settings`` know of (`gardener.propose.fit`); None when no context is known. Counted with
    the model's offline tokenizer or the stated approximation (``counter_for``)."""
    if settings.context is None:
        return None
    counter = counter_for(settings.model)
    schema_in_prompt = settings.mode not in GRAMMAR_MODES

    def size(cut: Profile) -> int:
        return request_tokens(pattern, shortlist[:cut.candidates], counter, prompts=prompts,
                              limits=cut.limits, caps=cut.caps, registry=registry,
                              schema_in_prompt=schema_in_prompt)

    chosen = fit(profile, window(settings.context, settings.max_tokens, settings.max_retries),
                 size)
    if not chosen.fits:
        log.warning("%s: its request, about %d prompt tokens at the smallest cut, may not fit "
                    "the model's context of %d tokens", pattern.slug, chosen.tokens,
                    settings.context)
    elif chosen.profile != profile or chosen.reasks < settings.max_retries:
        log.info("%s: asked with %s (%d candidates, %d re-asks, about %d prompt tokens) to fit "
                 "a context of %d tokens", pattern.slug, chosen.profile.name,
                 chosen.profile.candidates, chosen.reasks, chosen.tokens, settings.context)
    return chosen


def propose(
    pattern: Pattern,
    candidates: Sequence[Candidate],
    llm: StructuredLLM,
    *,
    today: dt.date | None = None,
    prompts: PromptSet | None = None,
    limits: PromptLimits = DEFAULT_LIMITS,
    caps: Caps = DEFAULT_CAPS,
    registry: Registry | None = None,
    max_retries: int | None = None,
    grounded: bool = True,
) -> ProposalResult:
    """The model's grounded proposal for ``pattern``, choosing link targets from ``candidates``
    and, when the library has a community ``registry``, communities from it.

    ``limits`` bound the prompt and ``caps`` the answer (a model's ``gardener.propose.profiles``);
    ``max_retries`` (default: the client's) the re-asks (``fitted_profile`` says how many fit);
    ``grounded`` as in ``request_model``.
    """
    prompts = prompts or default_prompts()
    slugs = [c.slug for c in candidates]
    messages = request_messages(pattern, candidates, prompts=prompts, limits=limits, caps=caps,
                                registry=registry)
    response_model = request_model(pattern, candidates, prompts, messages, caps, registry,
                                   grounded=grounded)
    # The response model carries the pattern's grounding (slug, candidates, vitality, text) and its
    # validators check it with no validation context (see gardener.propose.response), so the
    # client binds none to the call.
    tag = f"pattern={pattern.slug} prompt={prompts.version}"
    try:
        answer, usage = llm.structured(response_model=response_model, messages=messages,
                                       tag=tag, max_retries=max_retries)
    except StructuredOutputError as err:
        log.warning("%s: %s; salvaging item by item", tag, err.message)
        proposal, dropped = salvage(err.last_json, pattern.slug, slugs, pattern.vitality, caps,
                                    model=response_model)
        return ProposalResult(proposal, err.usage, dropped, prompts.version, salvaged=True,
                              answered=has_object(err.last_json),
                              garden=to_garden(proposal, today))
    proposal = answer.to_proposal()
    return ProposalResult(proposal, usage, [], prompts.version, garden=to_garden(proposal, today))

