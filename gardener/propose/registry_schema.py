"""The proposal schema when the library has a community registry: communities drawn from it.

Where ``LIBRARY/.gardener/communities.yaml`` exists, a proposal's communities are chosen from
the registry the way link targets are chosen from the candidates: the id is an enum of the
registry's ids, so a grammar-constrained model cannot coin a new one there, and the label is
the registry's. A community the registry lacks goes in a separate, short list and needs a
justification; it is written with ``source: inferred`` and flagged for review, while
registry ones are written with ``source: taxonomy``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, ClassVar, cast

from pydantic import BaseModel, Field, ValidationInfo, create_model, field_validator
from pydantic import model_validator as after_model

from gardener.folding import key as spelling_key
from gardener.model import MAX_COMMUNITIES
from gardener.propose.grounding import PatternText
from gardener.propose.response import (
    RESPONSE_MODEL_NAME,
    Percent,
    ResponseModel,
    build_response_model,
)
from gardener.propose.salvage import salvage_items as _salvage_items
from gardener.propose.schemas import (
    DEFAULT_CAPS,
    Caps,
    KebabId,
    Label,
    ProposedCommunity,
    duplicates,
    literal,
)

MAX_NEW_COMMUNITIES = 2
MIN_JUSTIFICATION = 20
MAX_JUSTIFICATION = 300

Justification = Annotated[str, Field(
    min_length=MIN_JUSTIFICATION, max_length=MAX_JUSTIFICATION,
    description="Why no registry community fits, in one or two sentences")]


class RegistryPick(BaseModel):
    """A community of the library's registry that the pattern belongs to."""

    registry: ClassVar[Mapping[str, str]] = {}
    """Registry id -> label, set on each built subclass."""

    id: str = Field(description="An id from the community registry")
    confidence_pct: Percent = Field(description="Confidence of membership, 0-100")

    def value(self) -> ProposedCommunity:
        return ProposedCommunity(id=self.id, label=self.registry.get(self.id, self.id),
                                 confidence=self.confidence_pct / 100, source="taxonomy")


class NewCommunityDraft(BaseModel):
    """A community the registry lacks: only when no registry community fits the pattern."""

    registry: ClassVar[Mapping[str, str]] = {}

    id: KebabId = Field(description="kebab-case id of the new community")
    label: Label
    confidence_pct: Percent = Field(description="Confidence of membership, 0-100")
    justification: Justification

    @field_validator("id")
    @classmethod
    def _not_in_registry(cls, value: str) -> str:
        known = {spelling_key(k): k for k in cls.registry}
        same = known.get(spelling_key(value))
        if same is not None:
            raise ValueError(f"community {value!r} is the registry community {same!r}; list it "
                             "under communities instead of new_communities")
        return value

    @field_validator("justification")
    @classmethod
    def _said(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("justification is empty; say why no registry community fits")
        return value.strip()

    def value(self) -> ProposedCommunity:
        return ProposedCommunity(id=self.id, label=self.label,
                                 confidence=self.confidence_pct / 100, source="inferred",
                                 justification=self.justification)


class RegistryResponse(ResponseModel):
    """Behaviour of a registry-grounded response model; see ``build_registry_response_model``."""

    pick_model: ClassVar[type[RegistryPick]] = RegistryPick
    new_model: ClassVar[type[NewCommunityDraft]] = NewCommunityDraft

    new_communities: list[NewCommunityDraft] = Field(max_length=MAX_NEW_COMMUNITIES)

    @after_model(mode="after")
    def _community_count(self, info: ValidationInfo) -> RegistryResponse:
        ids = [c.id for c in self.communities] + [c.id for c in self.new_communities]
        problems = [f"new_communities: id {v!r} appears twice; keep one community per id"
                    for _, v in duplicates(ids)]
        if len(ids) > MAX_COMMUNITIES:
            problems.append(f"{len(ids)} communities in all; keep the {MAX_COMMUNITIES} "
                            "strongest across communities and new_communities")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @classmethod
    def salvage_communities(cls, data: Mapping[str, Any], context: Mapping[str, Any],
                            dropped: list[str]) -> tuple[ProposedCommunity, ...]:
        picks = _salvage_items(data, "communities", cls.pick_model, cls.caps.communities,
                               lambda c: c.id, context, dropped)
        new = _salvage_items(data, "new_communities", cls.new_model, MAX_NEW_COMMUNITIES,
                             lambda c: c.id, context, dropped)
        kept = [c.value() for c in picks]
        taken = {c.id for c in kept}
        for c in new:
            if c.id in taken or len(kept) >= MAX_COMMUNITIES:
                dropped.append(f"new_communities {c.id!r}: duplicate or beyond the limit of "
                               f"{MAX_COMMUNITIES}")
                continue
            kept.append(c.value())
            taken.add(c.id)
        return tuple(kept)

    def to_proposal(self) -> Any:
        proposal = super().to_proposal()
        communities = (*(c.value() for c in self.communities),
                       *(c.value() for c in self.new_communities))
        return proposal.model_copy(update={"communities": communities})


def build_registry_response_model(
    slug: str, candidates: Sequence[str], vitality: float | None,
    registry: Mapping[str, str], caps: Caps = DEFAULT_CAPS, *, text: PatternText | None = None,
) -> type[ResponseModel]:
    """The per-pattern response model with communities drawn from ``registry`` (id -> label).

    Everything else (entities, link targets, vitality, ``caps``, the pattern's ``text``) is as
    ``build_response_model`` builds it.
    """
    base = build_response_model(slug, candidates, vitality, caps, text=text)
    if not registry:
        return base
    picks: type[RegistryPick] = create_model(
        "RegistryPick", __base__=RegistryPick, __doc__=RegistryPick.__doc__,
        id=(literal(sorted(registry)), Field(description="An id from the community registry")))
    picks.registry = dict(registry)
    new: type[NewCommunityDraft] = create_model(
        "NewCommunityDraft", __base__=NewCommunityDraft, __doc__=NewCommunityDraft.__doc__)
    new.registry = dict(registry)
    bases: tuple[type[RegistryResponse], ...] = (RegistryResponse, cast(Any, base))
    model = cast(type[RegistryResponse], create_model(
        RESPONSE_MODEL_NAME,
        __base__=bases,
        __doc__=base.__doc__,
        communities=(list[picks], Field(max_length=caps.communities)),
        new_communities=(list[new], Field(max_length=MAX_NEW_COMMUNITIES, description=(
                             "Communities the registry lacks, each with a justification; "
                             "usually empty"))),
    ))
    model.pick_model = picks
    model.new_model = new
    model.grounding = base.grounding
    model.entity_model = base.entity_model
    model.caps = caps
    return model
