"""Sizing requests to the endpoint's context window: answer, re-asks, then the prompt.

Why: a local server with a 4k or 8k context refuses a request whose prompt and answer do not
fit, and instructor's re-ask resends the whole prompt with the first answer and its
validation errors appended. Measured on a llama.cpp server with 8,192 tokens (issue 19), the
default profile's ~5,900-token prompt plus 2,048 answer tokens fitted once but not a re-ask
(~8,600 tokens plus the answer), so half the patterns failed. When the context is known
(a setting, the bundled server's own, or what the server says: `gardener.endpoint.window`), the
answer bound, the re-asks and then each pattern's prompt are chosen so that every request,
re-asks included, fits. Pure functions on plain data; counting is passed in.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from gardener.endpoint.settings import MAX_TOKENS, LLMSettings
from gardener.propose.profiles import Profile
from gardener.propose.prompts import PromptLimits
from gardener.propose.schemas import Caps

ANSWER_SHARE = 8
"""The answer may take at most 1/8 of the context (never more than ``max_tokens`` asks)."""
MIN_ANSWER = 256
REASK_COST = 2
"""A re-ask appends the previous answer and its validation errors, each about an answer long."""
MARGIN = 0.05
"""Share of the context kept free for the chat template and for counting's error."""
SCALES = (1.0, 0.75, 0.5, 0.35, 0.25, 0.15)
"""How far a profile's prompt bounds are cut, largest first, until the request fits."""
REASK_SCALE = 0.35
"""Re-asks are given up before the prompt is cut below this share of the profile's."""
MIN_CANDIDATES = 6
"""Fewest link targets a cut prompt still offers (the small profile's shortlist)."""
GRAMMAR_MODES = ("json_schema", "json_object_schema")
"""Modes whose schema the server turns into a decoding grammar (vLLM, llama.cpp, Ollama), not
prompt text: it costs no context there."""
NOMINAL_ANSWER = MAX_TOKENS
"""The answer tokens a profile's caps are set for when it names none (the client's default)."""


@dataclass(frozen=True)
class Window:
    """How one endpoint's context is shared out between a request's parts."""

    context: int
    answer: int
    """Answer tokens per request (``max_tokens``)."""
    reasks: int
    """Most re-asks after an invalid answer (the client's ``max_retries``)."""

    def prompt(self, reasks: int | None = None) -> int:
        """Most prompt tokens a first request may have so that it and ``reasks`` re-asks
        (default: all of them), each adding an answer and its errors, fit."""
        count = self.reasks if reasks is None else reasks
        free = self.context - math.ceil(self.context * MARGIN)
        return free - self.answer - count * REASK_COST * self.answer


def window(context: int, max_tokens: int, max_retries: int) -> Window:
    """The answer bound for a ``context``-token endpoint: the client's ``max_tokens``, capped
    at 1/8 of the context."""
    if context < 1:
        raise ValueError(f"context must be a positive number of tokens, got {context}")
    return Window(context, min(max_tokens, max(MIN_ANSWER, context // ANSWER_SHARE)),
                  max_retries)


def sized(settings: LLMSettings, context: int) -> LLMSettings:
    """``settings`` knowing their ``context``, with the answer bound of `window`."""
    return replace(settings, context=context,
                   max_tokens=window(context, settings.max_tokens, settings.max_retries).answer)


def _cut(value: int, scale: float, least: int = 1) -> int:
    return max(least, math.floor(value * scale)) if value > 0 else value


def scaled_limits(limits: PromptLimits, scale: float) -> PromptLimits:
    """``limits`` with every quoted text and count of the pattern cut to ``scale``."""
    if scale >= 1:
        return limits
    return PromptLimits(
        title=limits.title, summary=_cut(limits.summary, scale, 120),
        domain=limits.domain, keywords=_cut(limits.keywords, scale, 3), keyword=limits.keyword,
        sections=_cut(limits.sections, scale, 2), heading=limits.heading,
        section=_cut(limits.section, scale, 200), body=_cut(limits.body, scale, 600),
        vitality_section=_cut(limits.vitality_section, scale, 200),
        relationships=_cut(limits.relationships, scale, 4), relationship=limits.relationship,
        candidate_title=limits.candidate_title,
        candidate_summary=_cut(limits.candidate_summary, scale, 60))


def answer_caps(caps: Caps, answer: int, nominal: int = NOMINAL_ANSWER) -> Caps:
    """``caps``, set for ``nominal`` answer tokens, with as many items as ``answer`` tokens
    hold: the lists shrink in proportion (one item each at least), so that the grammar or the
    model ends the answer before ``max_tokens`` cuts it."""
    if answer >= nominal:
        return caps
    share = answer / nominal
    return replace(caps, entities=_cut(caps.entities, share),
                   communities=_cut(caps.communities, share), links=_cut(caps.links, share))


def scaled(profile: Profile, scale: float, answer: int | None = None) -> Profile:
    """``profile`` asking for less: its shortlist and prompt bounds cut to ``scale``, its
    answer caps to what ``answer`` tokens hold."""
    caps = profile.caps if answer is None else answer_caps(
        profile.caps, answer, profile.max_tokens or NOMINAL_ANSWER)
    if scale >= 1:
        return replace(profile, caps=caps)
    return replace(profile, name=f"{profile.name}@{scale:g}", caps=caps,
                   candidates=max(min(MIN_CANDIDATES, profile.candidates),
                                  math.floor(profile.candidates * scale)),
                   limits=scaled_limits(profile.limits, scale))


@dataclass(frozen=True)
class Fitted:
    """The profile one pattern is asked with, its re-asks, its prompt's counted size and the
    budget that size had to keep within."""

    profile: Profile
    reasks: int
    tokens: int
    budget: int

    @property
    def fits(self) -> bool:
        return self.tokens <= self.budget


def fit(profile: Profile, fitted: Window, size: Callable[[Profile], int]) -> Fitted:
    """The largest cut of ``profile`` whose request (counted by ``size``) fits ``fitted``,
    with as many re-asks as fit while the cut keeps `REASK_SCALE` of the prompt; the
    smallest cut with no re-ask when nothing fits (the endpoint may still refuse it)."""
    sizes: dict[float, tuple[Profile, int]] = {}

    def measured(scale: float) -> tuple[Profile, int]:
        if scale not in sizes:
            cut = scaled(profile, scale, fitted.answer)
            sizes[scale] = (cut, size(cut))
        return sizes[scale]

    for reasks in range(fitted.reasks, -1, -1):
        budget = fitted.prompt(reasks)
        for scale in SCALES:
            if reasks and scale < REASK_SCALE:
                break
            cut, tokens = measured(scale)
            if tokens <= budget:
                return Fitted(cut, reasks, tokens, budget)
    cut, tokens = measured(SCALES[-1])
    return Fitted(cut, 0, tokens, fitted.prompt(0))
