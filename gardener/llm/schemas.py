"""What the model may propose for one pattern, and the rules that keep it grounded.

Two shapes live here. ``Proposal`` is the domain value (fractions 0..1) that the merge step
consumes. The *response model* built per pattern by :func:`build_response_model` is what the
model is asked to fill: its link targets are a closed set (that pattern's candidates, never
itself) and its numbers are whole percents, because llama.cpp's grammar enforces
minimum/maximum on integers but not on floats. Every check that cannot be expressed in a
JSON schema (no duplicate targets, unique ids, a vitality reasoning that agrees with the human
score) is a validator whose message tells the model how to fix its answer on a re-ask.

When re-asks are exhausted, :func:`salvage` keeps every item that is valid on its own, so one
bad link never costs the whole proposal.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeVar, cast

import pydantic_core
from instructor import OpenAISchema
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from gardener.model import ENTITY_TYPES, LINK_TYPES, Community, Entity, Garden, Link
from gardener.text import without_controls

log = logging.getLogger(__name__)

MAX_ENTITIES = 12
MAX_COMMUNITIES = 5
MAX_LINKS = 12
MAX_ID = 64
MAX_LABEL = 80
MAX_REASON = 199
"""A link reason is one sentence under 200 characters."""
MIN_VITALITY_REASONING = 40
MAX_VITALITY_REASONING = 600


KEBAB = r"^[a-z0-9]+(-[a-z0-9]+)*$"


@dataclass(frozen=True)
class Caps:
    """How much one answer may hold: the schema's bounds, which the prompt states too.

    A small model gets lower caps (``gardener.llm.profiles``): the grammar then ends its answer
    sooner, which is most of what one pattern costs on a CPU.
    """

    entities: int = MAX_ENTITIES
    communities: int = MAX_COMMUNITIES
    links: int = MAX_LINKS
    reasoning: int = MAX_VITALITY_REASONING
    """Most characters of ``vitality_reasoning``."""
    reason: int = MAX_REASON
    """Most characters of a link's ``reason``."""
    id_pattern: str = KEBAB
    """The schema's pattern for entity and community ids. A grammar enforces it and, given a
    pattern, ignores ``maxLength`` (llama.cpp does): a bounded pattern is what stops a small
    model writing one id until it runs out of tokens."""

    def __post_init__(self) -> None:
        for name, value, most in (("entities", self.entities, MAX_ENTITIES),
                                  ("communities", self.communities, MAX_COMMUNITIES),
                                  ("links", self.links, MAX_LINKS),
                                  ("reasoning", self.reasoning, MAX_VITALITY_REASONING),
                                  ("reason", self.reason, MAX_REASON)):
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


@dataclass(frozen=True)
class Band:
    """One band of the v7.1 vitality rubric; ``low`` inclusive, ``high`` as written there."""

    name: str
    low: float
    high: float


VITALITY_BANDS: tuple[Band, ...] = (
    Band("generative", 4.5, 5.0),
    Band("sustaining", 3.5, 4.4),
    Band("functional", 2.0, 3.4),
    Band("extractive", 0.0, 1.9),
)
BAND_NAMES: tuple[str, ...] = tuple(b.name for b in VITALITY_BANDS)


def vitality_band(score: float | None) -> Band | None:
    """The rubric band of a human vitality score; None when absent or off the 0-5 scale."""
    if score is None or not 0.0 <= score <= 5.0:
        return None
    return next(b for b in VITALITY_BANDS if score >= b.low)


def _literal(values: Iterable[str]) -> Any:
    """``Literal[...]`` of runtime values: the JSON schema gets an ``enum`` the grammar enforces."""
    return cast(Any, Literal)[tuple(values)]


if TYPE_CHECKING:
    EntityType = str
    LinkType = str
    BandName = str
else:
    EntityType = _literal(ENTITY_TYPES)
    LinkType = _literal(LINK_TYPES)
    BandName = _literal(BAND_NAMES)


# --- field rules shared by both shapes ------------------------------------------------------


def _kebab(value: str) -> str:
    if not _KEBAB.match(value):
        raise ValueError(
            f"id {value!r} is not kebab-case; use lowercase letters, digits and single "
            "hyphens, e.g. 'shared-responsibility'"
        )
    return value


def _one_line(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError("must be a single line; remove the line breaks")
    return value


def _one_sentence(value: str) -> str:
    _one_line(value)
    if _SENTENCE_BREAK.search(value):
        raise ValueError("reason must be one sentence; merge or drop the others")
    return value


KebabId = Annotated[
    str,
    Field(min_length=1, max_length=MAX_ID, json_schema_extra={"pattern": KEBAB}),
    AfterValidator(_kebab),
]
Clean = BeforeValidator(lambda v: without_controls(v) if isinstance(v, str) else v)
"""Model-written text loses control characters (terminal escapes) before anything else."""
Label = Annotated[
    str,
    Field(min_length=1, max_length=MAX_LABEL),
    Clean,
    AfterValidator(_one_line),
]
LinkReason = Annotated[
    str,
    Field(min_length=1, max_length=MAX_REASON,
          description="One sentence, under 200 characters: why the link holds."),
    Clean,
    AfterValidator(_one_sentence),
]
VitalityReasoning = Annotated[
    str,
    Field(min_length=MIN_VITALITY_REASONING, max_length=MAX_VITALITY_REASONING),
    Clean,
]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Percent = Annotated[int, Field(ge=0, le=100)]


# --- grounding: what a proposal is checked against -------------------------------------------


@dataclass(frozen=True)
class Grounding:
    """The facts of one pattern that its proposal must agree with."""

    slug: str | None = None
    candidates: tuple[str, ...] | None = None
    vitality: float | None = None

    @classmethod
    def of(cls, slug: str, candidates: Iterable[str], vitality: float | None = None) -> Grounding:
        """Candidates in order, without the pattern itself and without repeats."""
        return cls(slug, _targets(slug, candidates), vitality)

    def overlaid(self, context: Mapping[str, Any] | None) -> Grounding:
        """This grounding with whatever the validation context supplies taking precedence."""
        if not context:
            return self
        candidates = context.get("candidates", self.candidates)
        return Grounding(
            slug=context.get("slug", self.slug),
            candidates=None if candidates is None else tuple(candidates),
            vitality=context.get("vitality", self.vitality),
        )

    def target_problem(self, target: str) -> str | None:
        if self.slug is not None and target == self.slug:
            return (f"target {target!r} is the pattern itself; link only to other patterns "
                    "from the candidate list")
        if self.candidates is not None and target not in self.candidates:
            return (f"target {target!r} is not one of the candidate slugs; choose from the "
                    "list or leave the link out")
        return None

    def band_problem(self, reasoning: str) -> str | None:
        """The reasoning names rubric bands, none of them the band of the human score."""
        band = vitality_band(self.vitality)
        if band is None:
            return None
        named = {name for name in BAND_NAMES
                 if re.search(rf"\b{name}\b", reasoning, re.IGNORECASE)}
        if named and band.name not in named:
            return (f"vitality_reasoning calls the pattern {' / '.join(sorted(named))}, but its "
                    f"human vitality score {self.vitality:g} is in the {band.name} band "
                    f"({band.low:g}-{band.high:g}); reason within the {band.name} band")
        return None

    def band_mismatch(self, claimed: str | None) -> str | None:
        band = vitality_band(self.vitality)
        if band is None or claimed is None or claimed == band.name:
            return None
        return (f"vitality_band {claimed!r} contradicts the human vitality score "
                f"{self.vitality:g}, which is in the {band.name} band; use {band.name!r}")


def _targets(slug: str, candidates: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c for c in candidates if c != slug))


def _duplicates(values: Sequence[str]) -> list[tuple[int, str]]:
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
                for i, v in _duplicates(entity_ids)]
    problems += [f"communities[{i}]: id {v!r} appears twice; keep one community per id"
                 for i, v in _duplicates(community_ids)]
    problems += [f"inferred_links[{i}]: target {v!r} appears twice; keep one link per target"
                 for i, v in _duplicates(targets)]
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
        _refuse_ungrounded(self, Grounding().overlaid(info.context))
        return self

    @property
    def empty(self) -> bool:
        return not (self.entities or self.communities or self.inferred_links
                    or self.vitality_reasoning)


def _refuse_ungrounded(answer: Proposal | ResponseModel, grounding: Grounding) -> None:
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
        problems += [p for p in (grounding.band_problem(reasoning),) if p]
    return problems


# --- the per-pattern response model -------------------------------------------------------


class EntityDraft(BaseModel):
    """A concept, practice, framework, person, organization, tool or role the pattern is about."""

    id: KebabId = Field(description="kebab-case id, e.g. 'shared-responsibility'")
    type: EntityType
    label: Label = Field(description="Human-readable name, at most 80 characters")
    relevance_pct: Percent = Field(description="How central to the pattern, 0-100")

    def value(self) -> ProposedEntity:
        return ProposedEntity(id=self.id, type=self.type, label=self.label,
                              relevance=self.relevance_pct / 100)


class CommunityDraft(BaseModel):
    """A broad, reusable thematic community the pattern belongs to."""

    id: KebabId = Field(description="kebab-case id, e.g. 'commons-governance'")
    label: Label
    confidence_pct: Percent = Field(description="Confidence of membership, 0-100")

    def value(self) -> ProposedCommunity:
        return ProposedCommunity(id=self.id, label=self.label,
                                 confidence=self.confidence_pct / 100)


class LinkDraft(BaseModel):
    """An inferred relationship to another pattern of the library."""

    grounding: ClassVar[Grounding] = Grounding()

    target: str
    type: LinkType
    confidence_pct: Percent = Field(description="Confidence in the relationship, 0-100")
    reason: LinkReason

    @field_validator("target", mode="before")
    @classmethod
    def _grounded_target(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            problem = cls.grounding.overlaid(info.context).target_problem(value)
            if problem:
                raise ValueError(problem)
        return value

    def value(self) -> ProposedLink:
        return ProposedLink(target=self.target, type=self.type,
                            confidence=self.confidence_pct / 100, reason=self.reason)


class ResponseModel(OpenAISchema):
    """Base of every per-pattern response model; see :func:`build_response_model`.

    Derived from instructor's schema base so instructor uses each model as it is, instead of
    deriving a subclass on every call (measured: about a fifth of a gardening pass's CPU).
    """

    grounding: ClassVar[Grounding] = Grounding()
    link_model: ClassVar[type[LinkDraft]] = LinkDraft
    caps: ClassVar[Caps] = DEFAULT_CAPS

    entities: list[EntityDraft] = Field(max_length=MAX_ENTITIES)
    communities: list[CommunityDraft] = Field(max_length=MAX_COMMUNITIES)
    inferred_links: list[LinkDraft] = Field(max_length=MAX_LINKS)
    vitality_band: BandName
    vitality_reasoning: VitalityReasoning

    @field_validator("vitality_band", mode="before")
    @classmethod
    def _band_of_score(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            problem = cls.grounding.overlaid(info.context).band_mismatch(value)
            if problem:
                raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _grounded(self, info: ValidationInfo) -> ResponseModel:
        _refuse_ungrounded(self, self.grounding.overlaid(info.context))
        return self

    @classmethod
    def salvage_communities(cls, data: Mapping[str, Any], context: Mapping[str, Any],
                            dropped: list[str]) -> tuple[ProposedCommunity, ...]:
        """The valid communities of a failed answer (registry models override this)."""
        kept = _salvage_items(data, "communities", CommunityDraft, cls.caps.communities,
                              lambda c: c.id, context, dropped)
        return tuple(c.value() for c in kept)

    def to_proposal(self) -> Proposal:
        return Proposal(
            entities=tuple(e.value() for e in self.entities),
            communities=tuple(c.value() for c in self.communities),
            inferred_links=tuple(lk.value() for lk in self.inferred_links),
            vitality_band=self.vitality_band,
            vitality_reasoning=self.vitality_reasoning,
        )


RESPONSE_MODEL_NAME = "GardenProposal"
"""One name for every pattern's model: it is the tool name in tools mode, stable for fixtures."""


CANDIDATE_TARGET = "A slug from the candidate list"


def _link_model(grounding: Grounding, caps: Caps) -> type[LinkDraft]:
    """The pattern's link draft: its target ``Literal[candidates]``, checked against
    ``grounding`` (which names the pattern itself when a model links to it)."""
    fields: dict[str, Any] = {}
    if grounding.candidates:
        fields["target"] = (_literal(grounding.candidates), Field(description=CANDIDATE_TARGET))
    if caps.reason != MAX_REASON:
        reason: Any = Annotated[str, Field(min_length=1, max_length=caps.reason), Clean,
                                AfterValidator(_one_sentence)]
        fields["reason"] = (reason, Field(description=f"One sentence, at most {caps.reason} "
                                                      "characters: why the link holds."))
    model = cast(type[LinkDraft],
                 create_model("LinkDraft", __base__=LinkDraft, __doc__=LinkDraft.__doc__,
                              **fields))
    model.grounding = grounding
    return model


@functools.cache
def _drafts(caps: Caps) -> tuple[type[EntityDraft], type[CommunityDraft]]:
    """The entity and community drafts, with ``caps.id_pattern`` as their ids' schema pattern."""
    if caps.id_pattern == KEBAB:
        return EntityDraft, CommunityDraft
    kebab_id: Any = Annotated[str, Field(min_length=1, max_length=MAX_ID,
                                         json_schema_extra={"pattern": caps.id_pattern}),
                              AfterValidator(_kebab)]
    described = "kebab-case id, e.g. '{}'"
    entities = create_model(
        "EntityDraft", __base__=EntityDraft, __doc__=EntityDraft.__doc__,
        id=(kebab_id, Field(description=described.format("shared-responsibility"))))
    communities = create_model(
        "CommunityDraft", __base__=CommunityDraft, __doc__=CommunityDraft.__doc__,
        id=(kebab_id, Field(description=described.format("commons-governance"))))
    return entities, communities


def _reasoning(most: int) -> Any:
    """``VitalityReasoning`` with its own upper bound (a field's bound would not override it)."""
    if most == MAX_VITALITY_REASONING:
        return VitalityReasoning
    return Annotated[str, Field(min_length=MIN_VITALITY_REASONING, max_length=most), Clean]


def build_response_model(
    slug: str, candidates: Sequence[str], vitality: float | None = None,
    caps: Caps = DEFAULT_CAPS,
) -> type[ResponseModel]:
    """The response model for one pattern: grounded by construction where a schema can say it.

    Link targets are ``Literal[candidates]`` (the pattern itself removed): an enum in the
    schema; with no candidate left, the link list must be empty. With a human vitality score
    on the rubric, the band is fixed to that score's band. ``caps`` bound the lists and the
    lengths. The model carries its grounding (``ResponseModel.grounding``), so its validators
    check it with no validation context; a context passed in takes precedence, key by key.
    """
    return _response_model(Grounding.of(slug, candidates, vitality), caps)


@functools.lru_cache(maxsize=256)
def _response_model(grounding: Grounding, caps: Caps) -> type[ResponseModel]:
    """The pydantic model for one grounding and caps; the same pattern asks for it again when
    its answer is salvaged, and a re-run of the same library asks for the same ones."""
    band = vitality_band(grounding.vitality)
    band_type = _literal([band.name]) if band else _literal(BAND_NAMES)
    link_model = _link_model(grounding, caps)
    entity_model, community_model = _drafts(caps)
    model: type[ResponseModel] = create_model(
        RESPONSE_MODEL_NAME,
        __base__=ResponseModel,
        __doc__="The graph-garden proposal for one pattern of the library.",
        entities=(list[entity_model],  # type: ignore[valid-type]  # built at runtime
                  Field(max_length=caps.entities)),
        communities=(list[community_model],  # type: ignore[valid-type]
                     Field(max_length=caps.communities)),
        inferred_links=(list[link_model],  # type: ignore[valid-type]  # built at runtime
                        Field(max_length=caps.links if grounding.candidates else 0)),
        vitality_band=(band_type, Field(description="The rubric band of the vitality score")),
        vitality_reasoning=(_reasoning(caps.reasoning), Field(
            description="A short paragraph grounded in the pattern's Vitality section")),
    )
    model.grounding = grounding
    model.link_model = link_model
    model.caps = caps
    return model


def grounding_context(slug: str, candidates: Sequence[str],
                      vitality: float | None = None) -> dict[str, Any]:
    """The validation context that instructor passes to the validators."""
    return {"slug": slug, "candidates": list(_targets(slug, candidates)), "vitality": vitality}


# --- salvage --------------------------------------------------------------------------------


_FENCED = re.compile(r"```[a-zA-Z]*\s*\n(.*?)```", re.DOTALL)


def _lenient_json(raw: str) -> Any:
    """The first JSON object in ``raw``, tolerating code fences, chatter and truncation."""
    fenced = _FENCED.search(raw)
    text = fenced.group(1) if fenced else raw
    start = text.find("{")
    if start < 0:
        raise ValueError("no JSON object in the model's last answer")
    return pydantic_core.from_json(text[start:], allow_partial=True)


def _error_text(err: ValidationError) -> str:
    parts = []
    for e in err.errors(include_url=False):
        loc = ".".join(str(p) for p in e["loc"])
        msg = str(e["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


_D = TypeVar("_D", bound=BaseModel)


def _label(item: Any, key: str) -> str:
    if isinstance(item, Mapping) and isinstance(item.get(key), str):
        return f" {item[key]!r}"
    return ""


def _salvage_items(
    data: Mapping[str, Any], key: str, draft: type[_D], limit: int, ident: Callable[[_D], str],
    context: Mapping[str, Any], dropped: list[str],
) -> list[_D]:
    raw = data.get(key, [])
    if not isinstance(raw, list):
        dropped.append(f"{key}: not a list ({type(raw).__name__}); dropped whole")
        return []
    kept: list[_D] = []
    seen: set[str] = set()
    id_key = "target" if key == "inferred_links" else "id"
    for i, item in enumerate(raw):
        where = f"{key}[{i}]{_label(item, id_key)}"
        try:
            value = draft.model_validate(item, context=dict(context))
        except ValidationError as err:
            dropped.append(f"{where}: {_error_text(err)}")
            continue
        if ident(value) in seen:
            dropped.append(f"{where}: duplicate of an earlier item")
            continue
        if len(kept) >= limit:
            dropped.append(f"{where}: beyond the limit of {limit}")
            continue
        seen.add(ident(value))
        kept.append(value)
    return kept


def salvage(
    raw_json: str | None, slug: str, candidates: Sequence[str], vitality: float | None = None,
    caps: Caps = DEFAULT_CAPS,
    *, model: type[ResponseModel] | None = None,
) -> tuple[Proposal, list[str]]:
    """Keep every item of a failed answer that is valid on its own; say why each other went.

    Used after instructor's re-asks are exhausted. The items are judged in the response
    model's shape (percent integers) against the same grounding and caps as a normal answer;
    ``model`` is the one the model was asked to fill, when it was not the default.
    """
    model = model or build_response_model(slug, candidates, vitality, caps)
    context = grounding_context(slug, candidates, vitality)
    dropped: list[str] = []
    if raw_json is None or not raw_json.strip():
        dropped.append("no answer to salvage")
        return _logged(slug, Proposal(), dropped)
    try:
        data = _lenient_json(raw_json)
    except ValueError as err:
        dropped.append(f"answer is not JSON: {err}")
        return _logged(slug, Proposal(), dropped)
    if not isinstance(data, dict):
        dropped.append(f"answer is a JSON {type(data).__name__}, not an object")
        return _logged(slug, Proposal(), dropped)

    entities = _salvage_items(data, "entities", EntityDraft, caps.entities,
                              lambda e: e.id, context, dropped)
    communities = model.salvage_communities(data, context, dropped)
    links = _salvage_items(data, "inferred_links", model.link_model,
                           caps.links if model.grounding.candidates else 0,
                           lambda lk: lk.target, context, dropped)
    band = _salvage_field(data, "vitality_band", model, context, dropped)
    reasoning = _salvage_field(data, "vitality_reasoning", model, context, dropped)
    if reasoning is not None:
        problem = model.grounding.band_problem(reasoning)
        if problem:
            dropped.append(f"vitality_reasoning: {problem}")
            reasoning = None
    proposal = Proposal(
        entities=tuple(e.value() for e in entities),
        communities=communities,
        inferred_links=tuple(lk.value() for lk in links),
        vitality_band=band,
        vitality_reasoning=reasoning,
    )
    return _logged(slug, proposal, dropped)


def _salvage_field(data: Mapping[str, Any], key: str, model: type[ResponseModel],
                   context: Mapping[str, Any], dropped: list[str]) -> str | None:
    if key not in data:
        dropped.append(f"{key}: missing")
        return None
    field = model.model_fields[key]
    adapter: TypeAdapter[Any] = TypeAdapter(cast(Any, Annotated)[field.annotation, field])
    try:
        value = adapter.validate_python(data[key], context=dict(context))
    except ValidationError as err:
        dropped.append(f"{key}: {_error_text(err)}")
        return None
    return value if isinstance(value, str) else None


def _logged(slug: str, proposal: Proposal, dropped: list[str]) -> tuple[Proposal, list[str]]:
    for reason in dropped:
        log.warning("salvage %s: dropped %s", slug, reason)
    return proposal, dropped


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
