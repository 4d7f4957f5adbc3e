"""How much to ask of a model: shortlist, prompt and answer sizes, chosen by the model's name.

Why: a 135M model on a CPU pays for every prompt token (about 120 a second on one busy core
of the 2-core machine measured in docs/local-model.md) and every answer token (about 27 a
second), and it does not get better answers from more text. The bounds that suit a hosted
model made it take minutes per pattern. A profile keeps the one prompt template and the one
code path, and only asks for less: fewer candidates, shorter quotes, fewer items in the
answer (the JSON schema's ``maxItems``/``maxLength``, which the grammar enforces), a bound on
answer tokens and fewer re-asks.

The profile follows the model's name, wherever it is served, so a replay of recorded
exchanges builds exactly the requests that were recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from gardener.endpoint.settings import LLMSettings
from gardener.propose.prompts import DEFAULT_LIMITS, PromptLimits
from gardener.propose.schemas import DEFAULT_CAPS, Caps


@dataclass(frozen=True)
class Profile:
    """The sizes one model is asked with."""

    name: str
    candidates: int
    """Shortlist size: how many link targets the model may choose from."""
    limits: PromptLimits
    """Bounds on what the prompt quotes of the pattern and its candidates."""
    caps: Caps
    """Bounds on the answer: list lengths and the vitality reasoning's length."""
    max_tokens: int | None = None
    """Answer tokens per request; None keeps the client's setting."""
    max_retries: int | None = None
    """Re-asks after an invalid answer; None keeps the client's setting."""

    def tune(self, settings: LLMSettings) -> LLMSettings:
        """``settings`` with this profile's bounds on answer tokens and re-asks."""
        if self.max_tokens is not None:
            settings = replace(settings, max_tokens=self.max_tokens)
        if self.max_retries is not None:
            settings = replace(settings, max_retries=self.max_retries)
        return settings


DEFAULT = Profile("default", candidates=40, limits=DEFAULT_LIMITS, caps=DEFAULT_CAPS)

SMALL = Profile(
    "small",
    candidates=6,
    limits=PromptLimits(summary=240, keywords=5, sections=3, section=300, body=700,
                        vitality_section=300, relationships=6, candidate_title=60,
                        candidate_summary=60),
    caps=Caps(entities=2, communities=1, links=3, reasoning=160, reason=120, evidence=80,
              id_pattern=r"^[a-z0-9]{1,15}(-[a-z0-9]{1,15}){0,3}$"),  # at most 63 characters
    max_tokens=400,
    max_retries=0,
)
"""For models of a few hundred million parameters, such as the bundled SmolLM2-135M."""

SMALL_MODELS = ("smollm",)
"""Fragments of model names (lower case) that get the small profile."""


def profile_for(model: str) -> Profile:
    """The profile of the model called ``model`` (by any endpoint's naming: 'SmolLM2-135M-
    Instruct', 'smollm2:135m', 'HuggingFaceTB/SmolLM2-360M-Instruct' all match)."""
    name = model.lower()
    return SMALL if any(fragment in name for fragment in SMALL_MODELS) else DEFAULT
