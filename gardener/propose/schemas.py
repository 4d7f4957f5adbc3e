"""What the model may propose for one pattern, in the garden's units, and the rules it keeps.

``Proposal`` is the domain value (fractions 0..1) that the merge step consumes and
:func:`to_garden` turns into garden items. It shares with the response model the model is
asked to fill (``gardener.propose.response``, whole percents) what both shapes must agree on:
the bounds (``Caps``, which the prompt states and the schema enforces), the field rules
(kebab-case ids, one-line labels, a one-sentence link reason) and the grounding checks
(:func:`refuse_ungrounded`, on ``gardener.propose.grounding``): no duplicate ids or targets, no
link to the pattern itself or outside its candidates, a vitality band that agrees with the
human score. A proposal is checked for grounding when validated with a context (``slug``,
``candidates``, ``vitality``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    model_validator,
)

from gardener.model import (
    ENTITY_TYPES,
    KEBAB,
    LINK_TYPES,
    MAX_COMMUNITIES,
    MAX_ENTITIES,
    MAX_EVIDENCE,
    MAX_ID,
    MAX_LABEL,
    MAX_LINKS,
    MAX_REASON,
    MAX_VITALITY_REASONING,
    MIN_VITALITY_REASONING,
    Community,
    Entity,
    Garden,
    Link,
)
from gardener.propose.grounding import BAND_NAMES as BAND_NAMES
from gardener.propose.grounding import VITALITY_BANDS as VITALITY_BANDS
from gardener.propose.grounding import Band as Band
from gardener.propose.grounding import Grounding as Grounding
from gardener.propose.grounding import vitality_band as vitality_band
from gardener.text import without_controls

if TYPE_CHECKING:
    from gardener.propose.response import ResponseModel




@dataclass(frozen=True)
class Caps:
    """How much one answer may hold: the schema's bounds, which the prompt states too.

    A small model gets lower caps (``gardener.propose.profiles``): the grammar then ends its answer
    sooner, which is most of what one pattern costs on a CPU.
    """

    entities: int = MAX_ENTITIES
    communities: int = MAX_COMMUNITIES
    links: int = MAX_LINKS
    reasoning: int = MAX_VITALITY_REASONING
    """Most characters of ``vitality_reasoning``."""
    reason: int = MAX_REASON
    """Most characters of a link's ``reason``."""
    evidence: int = MAX_EVIDENCE
    """Most characters of a link's ``evidence`` (a small model's answer-token budget also
    has to hold the quotes)."""
    id_pattern: str = KEBAB
    """The schema's pattern for entity and community ids. A grammar enforces it and, given a
    pattern, ignores ``maxLength`` (llama.cpp does): a bounded pattern is what stops a small
    model writing one id until it runs out of tokens."""

    def __post_init__(self) -> None:
        for name, value, most in (("entities", self.entities, MAX_ENTITIES),
                                  ("communities", self.communities, MAX_COMMUNITIES),
                                  ("links", self.links, MAX_LINKS),
                                  ("reasoning", self.reasoning, MAX_VITALITY_REASONING),
                                  ("reason", self.reason, MAX_REASON),
                                  ("evidence", self.evidence, MAX_EVIDENCE)):
            if not 0 <= value <= most:
                raise ValueError(f"caps: {name} must be between 0 and {most}, got {value}")
        if not self.id_pattern.startswith("^") or not self.id_pattern.endswith("$"):
            raise ValueError(f"caps: id_pattern must be anchored (^...$), got {self.id_pattern!r}")
        if self.reasoning < MIN_VITALITY_REASONING:
            raise ValueError(f"caps: reasoning must allow at least {MIN_VITALITY_REASONING} "
                             f"characters, got {self.reasoning}")


DEFAULT_CAPS = Caps()

_KEBAB = re.compile(KEBAB)
_SENTENCE_BREAK = re.compile(r"[.!?][\"')\]]?\s+[A-Z]")


def literal(values: Iterable[str]) -> Any:
    """``Literal[...]`` of runtime values: the JSON schema gets an ``enum`` the grammar enforces."""
    return cast(Any, Literal)[tuple(values)]


if TYPE_CHECKING:
    EntityType = str
    LinkType = str
    BandName = str
else:
    EntityType = literal(ENTITY_TYPES)
    LinkType = literal(LINK_TYPES)
    BandName = literal(BAND_NAMES)


# --- field rules shared by both shapes ------------------------------------------------------


def kebab_case(value: str) -> str:
    if not _KEBAB.match(value):
        raise ValueError(
            f"id {value!r} is not kebab-case; use lowercase letters, digits and single "
            "hyphens, e.g. 'shared-responsibility'"
        )
    return value


def one_line(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError("must be a single line; remove the line breaks")
    return value


def one_sentence(value: str) -> str:
    one_line(value)
    if _SENTENCE_BREAK.search(value):
        raise ValueError("reason must be one sentence; merge or drop the others")
    return value


KebabId = Annotated[
    str,
    Field(min_length=1, max_length=MAX_ID, json_schema_extra={"pattern": KEBAB}),
    AfterValidator(kebab_case),
]
Clean = BeforeValidator(lambda v: without_controls(v) if isinstance(v, str) else v)
"""Model-written text loses control characters (terminal escapes) before anything else."""
Label = Annotated[
    str,
    Field(min_length=1, max_length=MAX_LABEL),
    Clean,
    AfterValidator(one_line),
]
LinkReason = Annotated[
    str,
    Field(min_length=1, max_length=MAX_REASON,
          description="One sentence, under 200 characters: why the link holds."),
    Clean,
    AfterValidator(one_sentence),
]
VitalityReasoning = Annotated[
    str,
    Field(min_length=MIN_VITALITY_REASONING, max_length=MAX_VITALITY_REASONING),
    Clean,
]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


def duplicates(values: Sequence[str]) -> list[tuple[int, str]]:
    """The index and value of every repeat in ``values`` (the first occurrence is kept)."""
    seen: set[str] = set()
    out: list[tuple[int, str]] = []
    for i, v in enumerate(values):
        if v in seen:
            out.append((i, v))
        seen.add(v)
    return out


def _collection_problems(
    entity_ids: Sequence[str], community_ids: Sequence[str], targets: Sequence[str],
    grounding: Grounding,
) -> list[str]:
    problems = [f"entities[{i}]: id {v!r} appears twice; keep one entity per id"
                for i, v in duplicates(entity_ids)]
    problems += [f"communities[{i}]: id {v!r} appears twice; keep one community per id"
                 for i, v in duplicates(community_ids)]
    problems += [f"inferred_links[{i}]: target {v!r} appears twice; keep one link per target"
                 for i, v in duplicates(targets)]
    for i, t in enumerate(targets):
        problem = grounding.target_problem(t)
        if problem:
            problems.append(f"inferred_links[{i}]: {problem}")
    return problems


# --- the domain value -------------------------------------------------------------------------


class ProposedEntity(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: KebabId
    type: EntityType
    label: Label
    relevance: Fraction


class ProposedCommunity(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: KebabId
    label: Label
    confidence: Fraction
    source: Literal["taxonomy", "inferred"] = "inferred"
    """``taxonomy`` when drawn from the library's community registry."""
    justification: str | None = None
    """Why a community outside the registry is needed (registry libraries only)."""


class ProposedLink(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    target: str = Field(min_length=1)
    type: LinkType
    confidence: Fraction
    reason: LinkReason
    evidence: str | None = None
    """The model's quote of the pattern that supports the link: for the report and the review,
    never written into the pattern file (the spec's link has four fields)."""


class Proposal(BaseModel):
    """The model's proposal for one pattern, in the garden's units (fractions 0..1).

    Validating with a context (``slug``, ``candidates``, ``vitality``) also checks grounding.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    entities: tuple[ProposedEntity, ...] = Field(default=(), max_length=MAX_ENTITIES)
    communities: tuple[ProposedCommunity, ...] = Field(default=(), max_length=MAX_COMMUNITIES)
    inferred_links: tuple[ProposedLink, ...] = Field(default=(), max_length=MAX_LINKS)
    vitality_band: BandName | None = None
    vitality_reasoning: VitalityReasoning | None = None

    @model_validator(mode="after")
    def _grounded(self, info: ValidationInfo) -> Proposal:
        refuse_ungrounded(self, Grounding().overlaid(info.context))
        return self

    @property
    def empty(self) -> bool:
        return not (self.entities or self.communities or self.inferred_links
                    or self.vitality_reasoning)


def refuse_ungrounded(answer: Proposal | ResponseModel, grounding: Grounding) -> None:
    """Raise ValueError naming every grounding problem of ``answer``, if it has any."""
    problems = _collection_problems(
        [e.id for e in answer.entities], [c.id for c in answer.communities],
        [lk.target for lk in answer.inferred_links], grounding,
    )
    problems += _vitality_problems(answer.vitality_band, answer.vitality_reasoning, grounding)
    if problems:
        raise ValueError("; ".join(problems))


def _vitality_problems(band: str | None, reasoning: str | None,
                       grounding: Grounding) -> list[str]:
    problems = [p for p in (grounding.band_mismatch(band),) if p]
    if reasoning is not None:
        problems += [p for p in (grounding.band_problem(reasoning), grounding.text and
                                 grounding.text.reasoning_problem(reasoning)) if p]
    return problems


# --- into the garden ------------------------------------------------------------------------


def to_garden(proposal: Proposal, today: dt.date | None = None) -> Garden:
    """The proposal as garden items, dated ``today``; communities carry their source
    (``taxonomy`` from the registry, else ``inferred``)."""
    return Garden(
        last_pruned=today,
        entities=tuple(
            Entity(id=e.id, type=e.type, label=e.label, relevance=round(e.relevance, 2))
            for e in proposal.entities
        ),
        communities=tuple(
            Community(id=c.id, label=c.label, source=c.source,
                      confidence=round(c.confidence, 2))
            for c in proposal.communities
        ),
        inferred_links=tuple(
            Link(target=lk.target, type=lk.type, confidence=round(lk.confidence, 2),
                 reason=lk.reason)
            for lk in proposal.inferred_links
        ),
        vitality_reasoning=proposal.vitality_reasoning,
    )
