"""Spelling-free keys for vocabulary ids: one key per concept, whatever the case or plural.

Shared by community consolidation and entity resolution, so that both fold the same
variants: case, punctuation, ``&`` and filler words, light English plurals.
"""

from __future__ import annotations

from gardener.library.garden import kebab

FILLER = frozenset({"and", "the", "of", "for", "a", "an", "in", "to", "with", "on"})
"""Words that never tell two ids apart ("Leadership and Facilitation")."""


def singular(word: str) -> str:
    """A light plural fold, enough to make 'practices' and 'practice' one word."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def key(raw: str) -> str:
    """The key of an id or label: kebab-cased, ``&`` read as "and", filler words dropped,
    each word singular. ``"Feedback Loops"``, ``feedback_loop`` -> ``feedback-loop``."""
    folded = kebab(raw.strip().casefold().replace("&", " and "))
    return "-".join(singular(w) for w in folded.split("-") if w and w not in FILLER)
