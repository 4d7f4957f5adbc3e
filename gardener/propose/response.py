"""The response model: what the model is asked to fill for one pattern, built per pattern.

Why: a schema is the one rule a grammar-constrained model cannot break, so the model of each
pattern says as much as a schema can. Its link targets are a closed set (that pattern's
candidates, never itself) and its numbers are whole percents, because llama.cpp's grammar
enforces minimum/maximum on integers but not on floats. Every check that cannot be expressed
in a JSON schema (no duplicate targets, unique ids, a vitality reasoning that agrees with the
human score) is a validator whose message tells the model how to fix its answer on a re-ask.
An answer becomes the domain value, ``gardener.propose.schemas.Proposal``, through
``ResponseModel.to_proposal``.

Built with the pattern's text (``gardener.propose.grounding``), the drafts also check what no
schema can: an entity or community is found in that text and copies nothing from the prompt,
and every link quotes that text as its ``evidence``.

When re-asks are exhausted, :func:`salvage` keeps every item that is valid on its own, so one
bad link never costs the whole proposal (helpers in ``gardener.propose.salvage``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, ClassVar, cast

from instructor import OpenAISchema
from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from gardener.model import (
    KEBAB,
    MAX_COMMUNITIES,
    MAX_ENTITIES,
    MAX_EVIDENCE,
    MAX_ID,
    MAX_LINKS,
    MAX_REASON,
    MAX_VITALITY_REASONING,
    MIN_VITALITY_REASONING,
)
from gardener.propose.grounding import BAND_NAMES, Grounding, PatternText, targets, vitality_band
from gardener.propose.salvage import lenient_json, logged, salvage_field
from gardener.propose.salvage import salvage_items as _salvage_items
from gardener.propose.schemas import (
    DEFAULT_CAPS,
    BandName,
    Caps,
    Clean,
    EntityType,
    KebabId,
    Label,
    LinkReason,
    LinkType,
    Proposal,
    ProposedCommunity,
    ProposedEntity,
    ProposedLink,
    VitalityReasoning,
    kebab_case,
    literal,
    one_line,
    one_sentence,
    refuse_ungrounded,
)

# --- fields only the response model has ----------------------------------------------------

Percent = Annotated[int, Field(ge=0, le=100)]
EVIDENCE_DESCRIPTION = (f"A short quote, at most {MAX_EVIDENCE} characters, copied word for word "
                        "from this pattern's text, that supports the link")
Evidence = Annotated[
    str,
    Field(min_length=1, max_length=MAX_EVIDENCE, description=EVIDENCE_DESCRIPTION),
    Clean,
    AfterValidator(one_line),
]


# --- the per-pattern response model -------------------------------------------------------


def _text_of(cls: type[Any], info: ValidationInfo) -> PatternText | None:
    grounding: Grounding = cls.grounding
    return grounding.overlaid(info.context).text


class EntityDraft(BaseModel):
    """A concept, practice, framework, person, organization, tool or role the pattern is about."""

    grounding: ClassVar[Grounding] = Grounding()
    """Set on each pattern's subclass: its label or id must be found in the pattern's text."""

    id: KebabId = Field(description="kebab-case id, e.g. 'shared-responsibility'")
    type: EntityType
    label: Label = Field(description="Human-readable name, at most 80 characters")
    relevance_pct: Percent = Field(description="How central to the pattern, 0-100")

    @model_validator(mode="after")
    def _in_text(self, info: ValidationInfo) -> EntityDraft:
        text = _text_of(type(self), info)
        problem = text.entity_problem(self.id, self.label) if text else None
        if problem:
            raise ValueError(problem)
        return self

    def value(self) -> ProposedEntity:
        return ProposedEntity(id=self.id, type=self.type, label=self.label,
                              relevance=self.relevance_pct / 100)


class CommunityDraft(BaseModel):
    """A broad, reusable thematic community the pattern belongs to."""

    grounding: ClassVar[Grounding] = Grounding()

    id: KebabId = Field(description="kebab-case id, e.g. 'commons-governance'")
    label: Label
    confidence_pct: Percent = Field(description="Confidence of membership, 0-100")

    @model_validator(mode="after")
    def _in_text(self, info: ValidationInfo) -> CommunityDraft:
        text = _text_of(type(self), info)
        problem = text.community_problem(self.id, self.label) if text else None
        if problem:
            raise ValueError(problem)
        return self

    def value(self) -> ProposedCommunity:
        return ProposedCommunity(id=self.id, label=self.label,
                                 confidence=self.confidence_pct / 100)


class LinkDraft(BaseModel):
    """An inferred relationship to another pattern of the library."""

    grounding: ClassVar[Grounding] = Grounding()

    target: str
    type: LinkType
    confidence_pct: Percent = Field(description="Confidence in the relationship, 0-100")
    evidence: Evidence
    reason: LinkReason

    @field_validator("evidence")
    @classmethod
    def _quoted(cls, value: str, info: ValidationInfo) -> str:
        text = _text_of(cls, info)
        problem = text.evidence_problem(value) if text else None
        if problem:
            raise ValueError(problem)
        return value

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
                            confidence=self.confidence_pct / 100, reason=self.reason,
                            evidence=self.evidence)


class ResponseModel(OpenAISchema):
    """Base of every per-pattern response model; see :func:`build_response_model`.

    Derived from instructor's schema base so instructor uses each model as it is, instead of
    deriving a subclass on every call (measured: about a fifth of a gardening pass's CPU).
    """

    grounding: ClassVar[Grounding] = Grounding()
    link_model: ClassVar[type[LinkDraft]] = LinkDraft
    entity_model: ClassVar[type[EntityDraft]] = EntityDraft
    community_model: ClassVar[type[CommunityDraft]] = CommunityDraft
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
        refuse_ungrounded(self, self.grounding.overlaid(info.context))
        return self

    @classmethod
    def salvage_communities(cls, data: Mapping[str, Any], context: Mapping[str, Any],
                            dropped: list[str]) -> tuple[ProposedCommunity, ...]:
        """The valid communities of a failed answer (registry models override this)."""
        kept = _salvage_items(data, "communities", cls.community_model, cls.caps.communities,
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


def task_names() -> tuple[str, ...]:
    """Every field name of the response models, the words a label must not be: a small model
    that answers ``title`` or ``entities`` names the task, not the pattern."""
    models: tuple[type[BaseModel], ...] = (ResponseModel, EntityDraft, CommunityDraft,
                                           LinkDraft, ProposedCommunity)
    return tuple(dict.fromkeys(name for m in models for name in m.model_fields))


def schema_text() -> str:
    """The descriptions the schema carries, where examples such as 'shared-responsibility'
    reach the model besides the prompt."""
    models: tuple[type[BaseModel], ...] = (EntityDraft, CommunityDraft, LinkDraft)
    return "\n".join(f.description or "" for m in models for f in m.model_fields.values())


RESPONSE_MODEL_NAME = "GardenProposal"
"""One name for every pattern's model: it is the tool name in tools mode, stable for fixtures."""


CANDIDATE_TARGET = "A slug from the candidate list"


def _link_model(grounding: Grounding, caps: Caps) -> type[LinkDraft]:
    """The pattern's link draft: its target ``Literal[candidates]``, checked against
    ``grounding`` (which names the pattern itself when a model links to it)."""
    fields: dict[str, Any] = {}
    if grounding.candidates:
        fields["target"] = (literal(grounding.candidates), Field(description=CANDIDATE_TARGET))
    if caps.reason != MAX_REASON:
        reason: Any = Annotated[str, Field(min_length=1, max_length=caps.reason), Clean,
                                AfterValidator(one_sentence)]
        fields["reason"] = (reason, Field(description=f"One sentence, at most {caps.reason} "
                                                      "characters: why the link holds."))
    if caps.evidence != MAX_EVIDENCE:
        evidence: Any = Annotated[str, Field(min_length=1, max_length=caps.evidence), Clean,
                                  AfterValidator(one_line)]
        fields["evidence"] = (evidence, Field(description=EVIDENCE_DESCRIPTION.replace(
            str(MAX_EVIDENCE), str(caps.evidence))))
    model = cast(type[LinkDraft],
                 create_model("LinkDraft", __base__=LinkDraft, __doc__=LinkDraft.__doc__,
                              **fields))
    model.grounding = grounding
    return model


def _drafts(grounding: Grounding,
            caps: Caps) -> tuple[type[EntityDraft], type[CommunityDraft]]:
    """The entity and community drafts of one pattern: checked against its text, with
    ``caps.id_pattern`` as their ids' schema pattern (the plain classes when neither applies)."""
    if caps.id_pattern == KEBAB and grounding.text is None:
        return EntityDraft, CommunityDraft
    fields: dict[str, Any] = {}
    if caps.id_pattern != KEBAB:
        kebab_id: Any = Annotated[str, Field(min_length=1, max_length=MAX_ID,
                                             json_schema_extra={"pattern": caps.id_pattern}),
                                  AfterValidator(kebab_case)]
        fields["entity"] = {"id": (kebab_id, Field(
            description="kebab-case id, e.g. 'shared-responsibility'"))}
        fields["community"] = {"id": (kebab_id, Field(
            description="kebab-case id, e.g. 'commons-governance'"))}
    entities = create_model("EntityDraft", __base__=EntityDraft, __doc__=EntityDraft.__doc__,
                            **fields.get("entity", {}))
    communities = create_model("CommunityDraft", __base__=CommunityDraft,
                               __doc__=CommunityDraft.__doc__, **fields.get("community", {}))
    entities.grounding = communities.grounding = grounding
    return entities, communities


def _reasoning(most: int) -> Any:
    """``VitalityReasoning`` with its own upper bound (a field's bound would not override it)."""
    if most == MAX_VITALITY_REASONING:
        return VitalityReasoning
    return Annotated[str, Field(min_length=MIN_VITALITY_REASONING, max_length=most), Clean]


def build_response_model(
    slug: str, candidates: Sequence[str], vitality: float | None = None,
    caps: Caps = DEFAULT_CAPS, *, text: PatternText | None = None,
) -> type[ResponseModel]:
    """The response model for one pattern: grounded by construction where a schema can say it.

    Link targets are ``Literal[candidates]`` (the pattern itself removed): an enum in the
    schema; with no candidate left, the link list must be empty. With a human vitality score
    on the rubric, the band is fixed to that score's band. ``caps`` bound the lists and the
    lengths. The model carries its grounding (``ResponseModel.grounding``), so its validators
    check it with no validation context; a context passed in takes precedence, key by key.
    With the pattern's ``text`` (``gardener.propose.grounding``), entities and communities must be
    found in it and every link must quote it as its evidence.
    """
    return _response_model(Grounding.of(slug, candidates, vitality, text), caps)


@functools.lru_cache(maxsize=256)
def _response_model(grounding: Grounding, caps: Caps) -> type[ResponseModel]:
    """The pydantic model for one grounding and caps; the same pattern asks for it again when
    its answer is salvaged, and a re-run of the same library asks for the same ones."""
    band = vitality_band(grounding.vitality)
    band_type = literal([band.name]) if band else literal(BAND_NAMES)
    link_model = _link_model(grounding, caps)
    entity_model, community_model = _drafts(grounding, caps)
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
    model.entity_model = entity_model
    model.community_model = community_model
    model.caps = caps
    return model


def grounding_context(slug: str, candidates: Sequence[str],
                      vitality: float | None = None) -> dict[str, Any]:
    """The validation context that instructor passes to the validators."""
    return {"slug": slug, "candidates": list(targets(slug, candidates)), "vitality": vitality}


# --- salvage --------------------------------------------------------------------------------


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
        return logged(slug, Proposal(), dropped)
    try:
        data = lenient_json(raw_json)
    except ValueError as err:
        dropped.append(f"answer is not JSON: {err}")
        return logged(slug, Proposal(), dropped)
    if not isinstance(data, dict):
        dropped.append(f"answer is a JSON {type(data).__name__}, not an object")
        return logged(slug, Proposal(), dropped)

    entities = _salvage_items(data, "entities", model.entity_model, caps.entities,
                              lambda e: e.id, context, dropped)
    communities = model.salvage_communities(data, context, dropped)
    links = _salvage_items(data, "inferred_links", model.link_model,
                           caps.links if model.grounding.candidates else 0,
                           lambda lk: lk.target, context, dropped)
    band = salvage_field(data, "vitality_band", model, context, dropped)
    reasoning = salvage_field(data, "vitality_reasoning", model, context, dropped)
    if reasoning is not None:
        text = model.grounding.text
        problem = model.grounding.band_problem(reasoning) or (
            text.reasoning_problem(reasoning) if text is not None else None)
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
    return logged(slug, proposal, dropped)
