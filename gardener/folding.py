"""How words are compared, in one place: ids, plurals, stems, filler and stop words.

Every stage that asks "is this the same word?" folds through here: the shortlist's BM25
(``stem``), grounding a model's answer in the pattern's text and vocabulary keys for
community and entity ids (``singular``, ``key``), the ids the gardener writes (``kebab``).
One fold, so a word the shortlist matched is a word grounding finds.
"""

from __future__ import annotations

import re
import unicodedata

_STOPWORD_TEXT = """
    a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers him his how i if in into is it its itself just
    may me might more most must my no nor not of off on once only or other our ours out over own
    same shall she should so some such than that the their theirs them then there these they this
    those through to too under until up upon very via was we were what when where which while who
    whom why will with within without would yet you your yours
"""
STOPWORDS: frozenset[str] = frozenset(_STOPWORD_TEXT.split())
"""Function words: they match everywhere, so they only add cost and noise to a comparison."""

FILLER = frozenset({"and", "the", "of", "for", "a", "an", "in", "to", "with", "on"})
"""Words that never tell two ids apart ("Leadership and Facilitation")."""


def kebab(text: str) -> str:
    """A kebab-case id for a name: ``"Elinor Ostrom"`` -> ``elinor-ostrom``."""
    folded = "".join(c for c in unicodedata.normalize("NFKD", text)
                     if not unicodedata.combining(c)).lower()
    out = re.sub(r"[^a-z0-9]+", "-", folded).strip("-")
    if not out:  # names in scripts without ASCII letters keep their own letters
        out = re.sub(r"[\W_]+", "-", text.lower()).strip("-")
    return out


def singular(word: str) -> str:
    """A word with its plural folded: "leaderships" -> "leadership", "policies" -> "policy"."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("sses", "shes", "ches", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def stem(word: str) -> str:
    """``singular``, then the commonest verb inflections (-ing, -ed, final -e) folded too.

    Deliberately light: a wrong conflation joins unrelated patterns, a missed one only loses a
    little recall, so only suffixes that are almost always inflections are removed.
    """
    if len(word) <= 3 or not word.isalpha():
        return word
    word = singular(word)
    if word.endswith("ing") and len(word) >= 7:
        word = word[:-3]
    elif word.endswith("ed") and len(word) >= 6:
        word = word[:-2]
    if word.endswith("e") and len(word) >= 5:
        word = word[:-1]
    return word


def key(raw: str) -> str:
    """The key of an id or label: kebab-cased, ``&`` read as "and", filler words dropped,
    each word singular. ``"Feedback Loops"``, ``feedback_loop`` -> ``feedback-loop``."""
    folded = kebab(raw.strip().casefold().replace("&", " and "))
    return "-".join(singular(w) for w in folded.split("-") if w and w not in FILLER)
