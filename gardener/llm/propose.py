"""Ask the model for one pattern's garden proposal: the only step that talks to a model.

Builds the pattern's grounded response model, renders the versioned prompt and makes one
structured call (instructor re-asks on validation errors). When the re-asks are spent, the
last answer is salvaged item by item instead of being thrown away. Transport failures
(``LLMError``) propagate: the flow records them on the pattern's outcome.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from gardener.graph.communities import Registry
from gardener.llm.client import StructuredOutputError, Usage
from gardener.llm.prompts import (
    DEFAULT_LIMITS,
    Candidate,
    PromptLimits,
    PromptSet,
    default_prompts,
    render_messages,
)
from gardener.llm.registry_schema import build_registry_response_model
from gardener.llm.schemas import (
    DEFAULT_CAPS,
    Caps,
    Proposal,
    build_response_model,
    salvage,
    to_garden,
)
from gardener.model import Garden, Pattern

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)


class StructuredLLM(Protocol):
    """What ``propose`` needs of a client: ``gardener.llm.client.LLM`` or a fixture store."""

    def structured(self, *, response_model: type[T], messages: list[dict[str, Any]],
                   context: dict[str, Any] | None = None, tag: str = "") -> tuple[T, Usage]: ...


@dataclass(frozen=True)
class ProposalResult:
    """One pattern's proposal, what it cost, and every item salvage had to drop (and why)."""

    proposal: Proposal
    usage: Usage
    dropped: list[str]
    prompt_version: str
    salvaged: bool = False
    """True when the re-asks were exhausted and the proposal is what salvage kept."""
    garden: Garden = field(default_factory=Garden)
    """The proposal as garden items, dated with ``propose``'s ``today``; input to merge."""


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
) -> ProposalResult:
    """The model's grounded proposal for ``pattern``, choosing link targets from ``candidates``
    and, when the library has a community ``registry``, communities from it.

    ``limits`` bound the prompt and ``caps`` the answer (a model's ``gardener.llm.profiles``).
    """
    prompts = prompts or default_prompts()
    slugs = [c.slug for c in candidates]
    response_model = build_response_model(pattern.slug, slugs, pattern.vitality, caps)
    if registry is not None and registry.communities:
        response_model = build_registry_response_model(
            pattern.slug, slugs, pattern.vitality, {c.id: c.label for c in registry.communities},
            caps)
    messages: list[dict[str, Any]] = list(
        render_messages(pattern, candidates, prompts=prompts, limits=limits, caps=caps,
                        registry=registry.communities if registry is not None else ()))
    # The response model carries the pattern's grounding (slug, candidates, vitality) and its
    # validators check it with no validation context (see gardener.llm.schemas), so the
    # client binds none to the call.
    tag = f"pattern={pattern.slug} prompt={prompts.version}"
    try:
        answer, usage = llm.structured(response_model=response_model, messages=messages,
                                       tag=tag)
    except StructuredOutputError as err:
        log.warning("%s: %s; salvaging item by item", tag, err.message)
        proposal, dropped = salvage(err.last_json, pattern.slug, slugs, pattern.vitality, caps,
                                    model=response_model)
        return ProposalResult(proposal, err.usage, dropped, prompts.version, salvaged=True,
                              garden=to_garden(proposal, today))
    proposal = answer.to_proposal()
    return ProposalResult(proposal, usage, [], prompts.version, garden=to_garden(proposal, today))

