"""The domain's plain data: what a pattern is, what its garden holds, what a pass did.

Everything here is a value: no I/O, no YAML layout. Items read from a file carry the exact
text they had there (``text``), so that a garden which changes in one place keeps every
other item byte-for-byte; ``text`` never takes part in equality.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

# --- limits: the one place each is defined ------------------------------------------------
MIN_CONFIDENCE = 0.5
"""Pruning's default threshold: inferred links below it are weak."""
MAX_LINKS = 12
"""Most inferred links a garden keeps (pruning's default cap, the proposal's bound)."""
MAX_ENTITIES = 12
"""Most entities a garden keeps."""
MAX_COMMUNITIES = 5
"""Most communities a garden keeps."""
MAX_ID = 64
"""Longest entity or community id."""
MAX_LABEL = 80
"""Longest entity or community label."""
MAX_REASON = 199
"""A link reason is one sentence under 200 characters."""
MAX_EVIDENCE = 160
"""A link's evidence is a short quote of the pattern's own text."""
MIN_VITALITY_REASONING = 40
MAX_VITALITY_REASONING = 600
KEBAB = r"^[a-z0-9]+(-[a-z0-9]+)*$"
"""The id rule: lower-case words of letters and digits joined by hyphens."""

LINK_TYPES: tuple[str, ...] = (
    "generalizes_from",
    "specializes_to",
    "enables",
    "requires",
    "alternatives",
    "complementary",
    "tools",
)
"""The relationship vocabulary of group 5, shared by human relationships and inferred links."""

ENTITY_TYPES: tuple[str, ...] = (
    "concept",
    "practice",
    "framework",
    "person",
    "organization",
    "tool",
    "role",
)

TYPE_RENAMES: dict[str, str] = {
    "enabler": "enables",
    "enablers": "enables",
    "enablement": "enables",
    "specializes": "specializes_to",
    "complements": "complementary",
}
"""Off-vocabulary link types whose intent is clear enough to rename rather than remove."""

HUMAN_ONLY_TYPES: tuple[str, ...] = ("related", "manifests_as", "governed_by")
"""Human relationship kinds found in real libraries that are not in the link vocabulary."""



def vocabulary_type(kind: str) -> str | None:
    """A human relationship key in the link vocabulary (renames applied), or None for the
    human-only kinds (related, manifests_as, governed_by) no link type stands for."""
    kind = TYPE_RENAMES.get(kind, kind)
    return kind if kind in LINK_TYPES else None

class _Item(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str | None = Field(default=None, exclude=True, repr=False)
    """The item's exact lines in the file it was read from, when it was read from one."""

    def __eq__(self, other: object) -> bool:
        # Equal in meaning: excluded fields (text, legacy) never count.
        return type(self) is type(other) and self.model_dump() == other.model_dump()

    def __hash__(self) -> int:
        return hash((type(self).__name__, *sorted(self.model_dump().items())))


class Entity(_Item):
    id: str
    type: str | None = None
    label: str | None = None
    relevance: float | None = None
    legacy: bool = Field(default=False, exclude=True)
    """True when the file held a plain string instead of a mapping."""

    @property
    def strength(self) -> float:
        return self.relevance if self.relevance is not None else 0.0


class Community(_Item):
    id: str
    label: str | None = None
    source: str | None = None
    confidence: float | None = None
    legacy: bool = Field(default=False, exclude=True)

    @property
    def strength(self) -> float:
        return self.confidence if self.confidence is not None else 0.0


class Link(_Item):
    target: str
    type: str | None = None
    confidence: float | None = None
    reason: str | None = None
    migrated: str | None = Field(default=None, exclude=True)
    """How an older tool's shape of this link was read (``strength 5 read as confidence 1``);
    such a link is written back in the current shape (``gardener.library.garden``)."""

    @property
    def strength(self) -> float:
        return self.confidence if self.confidence is not None else 0.0


class Garden(BaseModel):
    """The machine-written group 6 of one pattern."""

    model_config = ConfigDict(frozen=True)

    last_pruned: dt.date | None = None
    entities: tuple[Entity, ...] = ()
    communities: tuple[Community, ...] = ()
    inferred_links: tuple[Link, ...] = ()
    vitality_reasoning: str | None = None
    extra: tuple[tuple[str, str], ...] = ()
    """Keys this tool does not know, as (key, exact text) pairs, kept verbatim."""

    def content_equal(self, other: Garden) -> bool:
        """Equal in meaning, ignoring the date of the last pruning."""
        return self.model_copy(update={"last_pruned": None}) == other.model_copy(
            update={"last_pruned": None}
        )


class HumanLink(BaseModel):
    """One human-curated relationship, normalized across the v7.1 and older flat layouts."""

    model_config = ConfigDict(frozen=True)

    target: str
    """A slug once resolved by the library; the raw reference (slug or ``pat_`` id) before."""
    type: str
    weight: float | None = None
    resolved: bool = True


class Section(BaseModel):
    model_config = ConfigDict(frozen=True)

    heading: str
    level: int
    text: str


class Pattern(BaseModel):
    """The typed view of one pattern file."""

    model_config = ConfigDict(frozen=True)

    path: Path
    slug: str
    id: str | None = None
    title: str
    summary: str = ""
    aliases: tuple[str, ...] = ()
    domain: str | None = None
    keywords: tuple[str, ...] = ()
    vitality: float | None = None
    sections: tuple[Section, ...] = ()
    relationships: tuple[HumanLink, ...] = ()
    garden: Garden | None = None
    """None when the file has no ``graph_garden`` key at all."""
    warnings: tuple[str, ...] = ()
    fingerprint: str = ""
    """Hash of the front matter outside the garden plus the body: what the LLM saw."""

    def section(self, name: str) -> Section | None:
        """The first section whose heading mentions ``name`` (case-insensitive)."""
        low = name.lower()
        return next((s for s in self.sections if low in s.heading.lower()), None)


class Reason(StrEnum):
    DANGLING = "dangling"
    SELF = "self"
    BAD_TYPE = "bad_type"
    DUPLICATE = "duplicate"
    HUMAN_CONFIRMED = "human_confirmed"
    HUMAN_CONFLICT = "human_conflict"
    WEAK = "weak"
    CAP = "cap"
    INVALID = "invalid"
    REJECTED = "rejected"
    """A person rejected the link (``gardener.review.decisions``)."""
    STALE = "stale"
    """An entity or community no word of whose label (or id) is left in the pattern's text."""
    RETYPED = "retyped"
    """The link's old type gave way to the type the model proposed with evidence."""


class Removal(BaseModel):
    """One item that pruning took out (or whose link type the merge replaced), and why."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["link", "entity", "community"]
    item: str
    reason: Reason
    detail: str = ""


class Rename(BaseModel):
    model_config = ConfigDict(frozen=True)

    target: str
    old_type: str
    new_type: str


class Status(StrEnum):
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    FAILED = "failed"
    CONFLICT = "conflict"
    """The file changed on disk while the pass worked on it; left as the person made it."""


NotAsked = Literal["budget", "deadline", "batch"]
"""Why a stale pattern was not asked: the token budget was spent, the deadline passed (both
stop a run: exit 3), or ``--max-patterns`` left it for a later batch (a planned bite)."""


FileProblem = Literal["unreadable", "duplicate_slug"]
"""A file that is no pattern of the pass: it could not be read, or its slug is another's."""


class Detail(BaseModel):
    """What else a pass knows of one pattern, for the report, the review and the exit code."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = None
    """Why the pattern was gardened or skipped (a ``StaleReason``, or why it was not asked)."""
    not_asked: NotAsked | None = None
    stale: str | None = None
    """The stale reason of a pattern that was not asked."""
    salvaged: bool | None = None
    """The answer was kept item by item after its re-asks ran out."""
    dropped: list[str] = Field(default_factory=list)
    """Items of the answer refused, each with its reason."""
    rejected: list[str] = Field(default_factory=list)
    """Proposed link targets people had rejected (``gardener.steps.rejections``)."""
    refused: list[str] = Field(default_factory=list)
    """Links the model proposed that the calibration did not write, each with why
    (``gardener.steps.link``)."""
    proposed: dict[str, float] = Field(default_factory=dict)
    """The links the model proposed and the checks kept, with its stated confidence, before
    the calibration weighed them: what ``gardener evaluate --calibrate`` fits on."""
    new_communities: list[dict[str, str | None]] = Field(default_factory=list)
    """Communities the model proposed beyond the registry, with their justification."""
    fitted: dict[str, Any] | None = None
    """How the request was cut to the model's context (``gardener.propose.fit``)."""
    problem: FileProblem | None = None
    """A file the pass could not take as a pattern at all: no pattern in it was asked for,
    so it is listed, and fails a pass only with ``--strict``."""


class Outcome(BaseModel):
    """What one pass did to one pattern file; errors are values here, never exceptions."""

    path: str
    slug: str | None = None
    status: Status
    error: str | None = None
    removals: list[Removal] = Field(default_factory=list)
    renames: list[Rename] = Field(default_factory=list)
    conflicts: list[str] = Field(default_factory=list)
    added: list[str] = Field(default_factory=list)
    evidence: dict[str, str] = Field(default_factory=dict)
    """Each added link's evidence by target: the model's quote of the pattern's own text,
    for the report and the review (pattern files keep the spec's four link fields)."""
    unchanged: dict[str, int] = Field(default_factory=dict)
    """Items the pass left exactly as they were, per kind (``links``, ``entities``,
    ``communities``): what a reviewer need not look at."""
    warnings: list[str] = Field(default_factory=list)
    diff: str | None = Field(default=None, exclude=True)
    usage: dict[str, int] = Field(default_factory=dict)
    requests: int = 0
    detail: Detail = Field(default_factory=Detail)

    @field_serializer("detail")
    def _detail(self, detail: Detail) -> dict[str, Any]:
        """Only what is known: the report stays as short as a pattern's story."""
        return detail.model_dump(mode="json", exclude_defaults=True)
