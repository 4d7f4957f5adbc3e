"""The proposal prompt: versioned templates in ``prompts/`` rendered into chat messages.

The version is derived from the templates' bytes, so a recorded answer can always be traced
to the exact prompt that produced it. Rendering is a pure function of the pattern, its
candidates and the templates. The pattern's text is quoted inside fences that its content
cannot close, and every field is truncated to a bound, so one prompt never grows with the
library: only with the number of candidates.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import jinja2

from gardener.errors import GardenerError
from gardener.model import ENTITY_TYPES, MAX_LABEL, MIN_VITALITY_REASONING, Pattern
from gardener.propose.registry_schema import MAX_NEW_COMMUNITIES
from gardener.propose.schemas import DEFAULT_CAPS, Caps, vitality_band


def _prompts_dir() -> Path:
    """Where the templates are: inside the installed package (the wheel ships the top-level
    ``prompts/`` as ``gardener/prompts/``), else the checkout's own ``prompts/``."""
    package = Path(__file__).resolve().parents[1]
    shipped = package / "prompts"
    return shipped if shipped.is_dir() else package.parent / "prompts"


PROMPTS_DIR = _prompts_dir()
PROPOSE = "propose"
ELLIPSIS = " […]"


class PromptError(GardenerError):
    """A template that is missing or does not compile; the message names the file."""


@dataclass(frozen=True)
class PromptSet:
    """The system and user templates of one prompt, and the version their content gives."""

    name: str
    system: str
    user: str
    system_path: Path
    user_path: Path

    @property
    def version(self) -> str:
        return _version(self.name, self.system, self.user)


@functools.lru_cache(maxsize=32)
def _version(name: str, system: str, user: str) -> str:
    """Content-derived, so any edit to a template is a new version; cached, as it is asked
    for twice per pattern."""
    digest = hashlib.sha256()
    for part in (system, user):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return f"{name}@{digest.hexdigest()[:10]}"


class Candidate(Protocol):
    """What the prompt shows of one candidate (``gardener.shortlist.candidates.CandidateInfo``)."""

    @property
    def slug(self) -> str: ...

    @property
    def title(self) -> str: ...

    @property
    def summary(self) -> str: ...


@dataclass(frozen=True)
class PromptLimits:
    """Character (or item) bounds per field; together they bound the prompt's size."""

    title: int = 200
    summary: int = 800
    domain: int = 80
    keywords: int = 12
    keyword: int = 40
    sections: int = 12
    heading: int = 120
    section: int = 1200
    body: int = 6000
    vitality_section: int = 1600
    relationships: int = 30
    relationship: int = 120
    candidate_title: int = 90
    candidate_summary: int = 150


DEFAULT_LIMITS = PromptLimits()


def load_prompts(name: str = PROPOSE, directory: Path = PROMPTS_DIR) -> PromptSet:
    """Read ``<name>.system.md`` and ``<name>.user.md`` from ``directory``."""
    system_path = directory / f"{name}.system.md"
    user_path = directory / f"{name}.user.md"
    texts = []
    for path in (system_path, user_path):
        try:
            texts.append(path.read_text(encoding="utf-8"))
        except OSError as err:
            raise PromptError(f"{path}: cannot read prompt template: {err.strerror}") from err
        except UnicodeDecodeError as err:
            raise PromptError(f"{path}: prompt template is not UTF-8: {err}") from err
    prompts = PromptSet(name, texts[0], texts[1], system_path, user_path)
    for source, path in ((prompts.system, system_path), (prompts.user, user_path)):
        _compiled(source, str(path))
    return prompts


@lru_cache(maxsize=1)
def default_prompts() -> PromptSet:
    """The shipped templates, read once per process."""
    return load_prompts()


_ENV = jinja2.Environment(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=False,
    trim_blocks=True,
    lstrip_blocks=True,
)


@lru_cache(maxsize=32)
def _compiled(source: str, origin: str) -> jinja2.Template:
    try:
        return _ENV.from_string(source)
    except jinja2.TemplateSyntaxError as err:
        raise PromptError(f"{origin}:{err.lineno}: template syntax error: {err.message}") from err


def _render(source: str, origin: str, values: dict[str, Any]) -> str:
    try:
        return _compiled(source, origin).render(values).strip() + "\n"
    except jinja2.UndefinedError as err:
        raise PromptError(f"{origin}: template uses an unknown value: {err.message}") from err


def render_pair(prompts: PromptSet, values: dict[str, Any]) -> list[dict[str, str]]:
    """The system and user messages of any prompt set, rendered with ``values``."""
    return [
        {"role": "system", "content": _render(prompts.system, str(prompts.system_path), values)},
        {"role": "user", "content": _render(prompts.user, str(prompts.user_path), values)},
    ]


# --- bounded text -------------------------------------------------------------------------


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, at a word boundary where one is near."""
    if len(text) <= limit:
        return text
    keep = max(limit - len(ELLIPSIS), 0)
    cut = text[:keep]
    space = cut.rfind(" ")
    if space >= keep * 0.8:
        cut = cut[:space]
    return cut.rstrip() + ELLIPSIS


def _line(text: str | None, limit: int) -> str:
    """One line: every run of whitespace (newlines included) becomes one space."""
    return clip(" ".join((text or "").split()), limit)


_BLANKS = re.compile(r"\n{3,}")


def _block(text: str, limit: int) -> str:
    """A multi-line block with uniform newlines and no long runs of blank lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return clip(_BLANKS.sub("\n\n", text).strip(), limit)


_BACKTICKS = re.compile(r"`+")


def fence_for(texts: Iterable[str]) -> str:
    """A backtick fence longer than any backtick run in ``texts``: the data cannot close it."""
    longest = max((len(m.group()) for t in texts for m in _BACKTICKS.finditer(t)), default=0)
    return "`" * max(3, longest + 1)


# --- rendering ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Section:
    heading: str
    level: int
    text: str


def _body_sections(pattern: Pattern, limits: PromptLimits) -> tuple[list[_Section], int]:
    """The body, section by section, within the per-section and whole-body budgets."""
    vitality = pattern.section("vitality")
    body = [s for s in pattern.sections if s is not vitality]
    kept: list[_Section] = []
    budget = limits.body
    for section in body[: limits.sections]:
        if budget <= len(ELLIPSIS):
            break
        text = _block(section.text, min(limits.section, budget))
        budget -= len(text)
        kept.append(_Section(_line(section.heading, limits.heading),
                             min(max(section.level, 1), 6), text))
    return kept, len(body) - len(kept)


def _relationships(pattern: Pattern, limits: PromptLimits) -> tuple[list[str], int]:
    lines = [
        _line(f"{rel.type}: {rel.target}", limits.relationship)
        for rel in pattern.relationships[: limits.relationships]
    ]
    return lines, len(pattern.relationships) - len(lines)


@dataclass(frozen=True)
class _Shown:
    slug: str
    title: str
    summary: str


def _candidates(pattern: Pattern, candidates: Sequence[Candidate],
                limits: PromptLimits) -> list[_Shown]:
    """Candidates in the given order, without the pattern itself or repeats, fields bounded."""
    seen = {pattern.slug}
    shown = []
    for c in candidates:
        if c.slug in seen:
            continue
        seen.add(c.slug)
        shown.append(_shown(c.slug, c.title, c.summary, limits.candidate_title,
                            limits.candidate_summary))
    return shown


@lru_cache(maxsize=4096)
def _shown(slug: str, title: str | None, summary: str | None, title_limit: int,
           summary_limit: int) -> _Shown:
    """One candidate as the prompt shows it; remembered, since a pass offers each pattern as
    a candidate to dozens of others."""
    return _Shown(slug=" ".join(slug.split()), title=_line(title, title_limit),
                  summary=_line(summary, summary_limit))


def _score(value: float | None) -> str | None:
    return None if value is None else f"{value:g}"


class RegistryEntry(Protocol):
    """What the prompt shows of one registry community (``registry.RegistryCommunity``)."""

    @property
    def id(self) -> str: ...

    @property
    def label(self) -> str: ...

    @property
    def description(self) -> str: ...


@dataclass(frozen=True)
class _Listed:
    id: str
    label: str
    description: str


def render_messages(
    pattern: Pattern,
    candidates: Sequence[Candidate],
    *,
    prompts: PromptSet | None = None,
    limits: PromptLimits = DEFAULT_LIMITS,
    caps: Caps = DEFAULT_CAPS,
    registry: Sequence[RegistryEntry] = (),
) -> list[dict[str, str]]:
    """The system and user messages asking for ``pattern``'s garden proposal; the caps the
    schema enforces are stated, so the model is not surprised by them; with a community
    ``registry``, the communities to choose from."""
    prompts = prompts or default_prompts()
    sections, omitted_sections = _body_sections(pattern, limits)
    relationships, omitted_relationships = _relationships(pattern, limits)
    shown = _candidates(pattern, candidates, limits)
    vitality = pattern.section("vitality")
    band = vitality_band(pattern.vitality)
    slug = _line(pattern.slug, limits.title)
    title = _line(pattern.title, limits.title)
    domain = _line(pattern.domain, limits.domain) or "(none)"
    keywords = [_line(k, limits.keyword) for k in pattern.keywords[: limits.keywords]]
    summary = _line(pattern.summary, limits.summary) or "(none)"
    vitality_text = _block(vitality.text, limits.vitality_section) if vitality else ""
    listed = [_Listed(" ".join(c.id.split()), _line(c.label, limits.candidate_title),
                      _line(c.description, limits.candidate_summary)) for c in registry]
    quoted = [
        *(t for c in listed for t in (c.id, c.label, c.description)),
        slug, title, domain, summary, vitality_text, *keywords, *relationships,
        *(t for s in sections for t in (s.heading, s.text)),
        *(t for c in shown for t in (c.slug, c.title, c.summary)),
    ]
    values: dict[str, Any] = {
        "slug": slug,
        "title": title,
        "domain": domain,
        "keywords": keywords,
        "summary": summary,
        "sections": sections,
        "omitted_sections": omitted_sections,
        "vitality_section": vitality_text,
        "relationships": relationships,
        "omitted_relationships": omitted_relationships,
        "candidates": shown,
        "registry": listed,
        "fence": fence_for(quoted),
        "score": _score(pattern.vitality),
        "band": band,
        "entity_types": ENTITY_TYPES,
        "max_entities": caps.entities,
        "max_communities": caps.communities,
        "max_new_communities": MAX_NEW_COMMUNITIES,
        "max_links": caps.links,
        "max_label": MAX_LABEL,
        "max_reason": caps.reason,
        "max_evidence": caps.evidence,
        "min_reasoning": MIN_VITALITY_REASONING,
        "max_reasoning": caps.reasoning,
    }
    return [
        {"role": "system", "content": _render(prompts.system, str(prompts.system_path), values)},
        {"role": "user", "content": _render(prompts.user, str(prompts.user_path), values)},
    ]
