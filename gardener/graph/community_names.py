"""The model names the communities that detection found: one structured call per community.

Detection knows who belongs together but not what to call it; the deterministic names
(``naming.name_drafts``) take the id or domain the most members carry, which is often
narrower than the group. The model sees the members' titles and their existing labels and
returns an id, a label and a description, validated (kebab-case id, not taken by another
community) and re-asked on a problem, through the same client, fixtures and prompt
versioning as proposals.
A community whose answer never validates keeps its deterministic name, and says so.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any

from instructor import OpenAISchema
from pydantic import Field, ValidationInfo, field_validator

from gardener.endpoint.client import StructuredOutputError, Usage
from gardener.graph.naming import Draft
from gardener.model import MAX_ID, MAX_LABEL
from gardener.propose.prompts import PromptSet, clip, fence_for, load_prompts, render_pair
from gardener.propose.propose import StructuredLLM
from gardener.propose.schemas import KebabId, Label

log = logging.getLogger(__name__)

NAME_COMMUNITIES = "name_communities"
MIN_DESCRIPTION = 20
MAX_DESCRIPTION = 300
SHOWN_TITLES = 25
SHOWN_LABELS = 8
TITLE_LIMIT = 100

Description = Annotated[str, Field(min_length=MIN_DESCRIPTION, max_length=MAX_DESCRIPTION)]


class CommunityName(OpenAISchema):
    """The name of one community of a pattern library."""

    id: KebabId = Field(description="kebab-case id, e.g. 'commons-governance'")
    label: Label = Field(description="Short human-readable name")
    description: Description = Field(
        description="One or two sentences on what the community's patterns share")

    @field_validator("id")
    @classmethod
    def _free(cls, value: str, info: ValidationInfo) -> str:
        taken = (info.context or {}).get("taken", ())
        if value in taken:
            raise ValueError(f"id {value!r} is already taken by another community; choose "
                             "another id")
        return value

    @field_validator("description")
    @classmethod
    def _one_paragraph(cls, value: str) -> str:
        if "\n" in value.strip():
            raise ValueError("description must be one paragraph; remove the line breaks")
        return value.strip()


@dataclass(frozen=True)
class Naming:
    drafts: tuple[Draft, ...]
    usage: Usage
    prompt_version: str
    kept: tuple[str, ...] = ()
    """Communities whose answer never validated: ``id: why`` (they keep the draft name)."""


def messages(draft: Draft, taken: Sequence[str], prompts: PromptSet) -> list[dict[str, str]]:
    titles = [clip(" ".join(t.split()), TITLE_LIMIT) for t in draft.titles[:SHOWN_TITLES]]
    labels = [clip(" ".join(lb.split()), TITLE_LIMIT) for lb in draft.labels[:SHOWN_LABELS]]
    values: dict[str, Any] = {
        "size": len(draft.members), "titles": titles,
        "omitted": max(len(draft.titles) - len(titles), 0), "labels": labels,
        "taken": list(taken), "fence": fence_for([*titles, *labels, *taken]),
        "max_id": MAX_ID, "max_label": MAX_LABEL,
        "min_description": MIN_DESCRIPTION, "max_description": MAX_DESCRIPTION,
    }
    return render_pair(prompts, values)


def name_communities(drafts: Sequence[Draft], llm: StructuredLLM, *,
                     prompts: PromptSet | None = None) -> Naming:
    """Ask for each community's name, largest first, each id unique among them.

    Transport failures (``LLMError``) propagate: a half-named registry is not written.
    """
    prompts = prompts or load_prompts(NAME_COMMUNITIES)
    total = Usage()
    named: dict[str, Draft] = {}
    kept: list[str] = []
    taken: list[str] = []
    for draft in sorted(drafts, key=lambda d: (-len(d.members), d.id)):
        tag = f"pattern=community.{draft.id} prompt={prompts.version}"
        try:
            answer, usage = llm.structured(
                response_model=CommunityName, messages=list(messages(draft, taken, prompts)),
                context={"taken": list(taken)}, tag=tag)
        except StructuredOutputError as err:
            log.warning("%s: no valid name after re-asks (%s); keeping %r", tag, err, draft.id)
            total = total + err.usage
            fallback = draft.id if draft.id not in taken else f"{draft.id}-{len(taken) + 1}"
            named[draft.id] = replace(draft, id=fallback)
            taken.append(fallback)
            kept.append(f"{draft.id}: {err.message}")
            continue
        total = total + usage
        named[draft.id] = replace(draft, id=answer.id, label=answer.label,
                                  description=answer.description)
        taken.append(answer.id)
    return Naming(tuple(named[d.id] for d in drafts), total, prompts.version, tuple(kept))
