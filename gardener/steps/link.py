"""Which links a pass writes: each candidate weighed by the calibration, the model's picks too.

Between the proposal and the merge. Every candidate the ranker ranks within the
calibration's reach, and every link the model proposed, gets the chance that people would
have made that link (``Calibration.probability`` of the ranker's signals and the model's
decision); a link is written when that chance reaches the threshold (pruning's
``min_confidence``), with the chance as its ``confidence``. So a link's confidence means what
pruning takes it to mean, and a model whose decisions were never measured on the library
(the shipped calibration knows the ranker alone) neither adds nor blocks a link.

Every written link still says why, in words found in the files: the model's reason and
quote when it proposed the link; else what the ranker saw, and the pattern's sentence that
shares most words with the target. A candidate no sentence of the pattern supports is not
written. Pure: plain data in and out.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from gardener.folding import STOPWORDS, stem
from gardener.library.calibration import Calibration
from gardener.model import Garden, Link, Pattern, vocabulary_type
from gardener.propose.grounding import MIN_EVIDENCE_WORDS, PatternText
from gardener.shortlist.signals import Signal

MAX_EVIDENCE_CHARS = 300
"""A supporting sentence longer than this is not shown (a paragraph with no full stop)."""

_SENTENCE_END = re.compile(r"(?<!\bvs\.)(?<!\be\.g\.)(?<!\bi\.e\.)(?<!\bcf\.)(?<=[.!?])\s+"
                           r"|\n\s*\n|\n(?=\s*(?:[-*+>#|]|\d+\.)\s)")
_LINE_MARKS = re.compile(r"^(?:[>#|+*-]+\s+|\d+\.\s+)+")
_WORD = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)*")


@dataclass(frozen=True)
class Weighed:
    """One candidate as the calibration saw it."""

    target: str
    features: dict[str, float]
    probability: float
    by_model: bool
    """The model proposed this link."""
    written: bool


@dataclass(frozen=True)
class Linked:
    """The proposal with its links decided: what to merge, and what was refused."""

    garden: Garden
    evidence: dict[str, str]
    """Each written link's supporting sentence, by target."""
    refused: list[str] = field(default_factory=list)
    """Each link the model proposed that was not written, with why."""
    weighed: list[Weighed] = field(default_factory=list)


def usual_type(patterns: Sequence[Pattern], default: str = "complementary") -> str:
    """The link type human relationships use most across the library (renames applied):
    the type of a link the ranker found and no model typed; ``default`` when none has one."""
    kinds = Counter(t for p in patterns for r in p.relationships
                    if (t := vocabulary_type(r.type)) is not None)
    return kinds.most_common(1)[0][0] if kinds else default


def sentences(pattern: Pattern) -> list[str]:
    """The pattern's sentences (summary, then each section), in order, stripped."""
    out = []
    for text in (pattern.summary, *(s.text for s in pattern.sections)):
        for part in _SENTENCE_END.split(text or ""):
            part = _LINE_MARKS.sub("", part.strip()).strip()
            if part:
                out.append(part)
    return out


def _words(text: str) -> set[str]:
    return {stem(w) for w in _WORD.findall(text.casefold()) if w not in STOPWORDS
            and len(w) > 2}


def supporting_sentence(signal: Signal, pattern: Pattern, text: PatternText) -> str | None:
    """The pattern's sentence sharing most words with the target's title and summary (the
    first of equals), a quote the evidence check accepts; None when no sentence shares one."""
    wanted = _words(f"{signal.title} {signal.summary}")
    best, best_count = None, 0
    for sentence in sentences(pattern):
        if len(sentence) > MAX_EVIDENCE_CHARS or len(sentence.split()) < MIN_EVIDENCE_WORDS:
            continue
        count = len(_words(sentence) & wanted)
        if count > best_count and text.evidence_problem(sentence) is None:
            best, best_count = sentence, count
    return best


def ranker_reason(signal: Signal, shown: int) -> str:
    """What the ranker saw, said plainly: no sentence a model did not write."""
    parts = [f"ranked {signal.rank} of {shown} candidates by the gardener's ranker"]
    words = signal.shared
    if words:
        parts.append("its title and summary share " + ", ".join(f"'{w}'" for w in words)
                     + " with this pattern's description")
    if signal.in_link:
        parts.append("its own human relationships already point at this pattern")
    if signal.two_hop:
        parts.append("they share neighbours in the curated graph")
    return "; ".join(parts) + "."


def decide(pattern: Pattern, proposed: Garden, evidence: Mapping[str, str],
           signals: Sequence[Signal], calibration: Calibration, *, threshold: float,
           default_type: str, text: PatternText, reach: int | None = None) -> Linked:
    """The proposal with its links decided (see the module's docstring).

    ``signals``: the ranker's candidates with their evidence, best first; those within
    ``reach`` (default: the calibration's ``candidates``) are weighed even when the model
    did not propose them, the others only when it did. ``text``: the pattern's own words,
    to check each supporting sentence as the model's quotes are checked.
    """
    reach = calibration.candidates if reach is None else reach
    by_model = {link.target: link for link in proposed.inferred_links}
    by_slug = {s.slug: s for s in signals}
    refused = [f"inferred_links '{t}': not among the ranker's candidates, so its chance "
               "cannot be weighed; not written" for t in by_model if t not in by_slug]
    shown = min(len(signals), reach)
    found: list[tuple[float, Link, str]] = []
    weighed = []
    for signal in signals:
        model_link = by_model.get(signal.slug)
        if model_link is None and signal.rank > reach:
            continue
        values = signal.features()
        values["model_link"] = 1.0 if model_link is not None else 0.0
        values["model_confidence"] = (model_link.confidence or 0.0) if model_link else 0.0
        chance = calibration.probability(values)
        quote = evidence.get(signal.slug) if model_link is not None else None
        if quote is None and chance >= threshold:  # a sentence only for a link to write
            quote = supporting_sentence(signal, pattern, text)
        written = chance >= threshold and quote is not None
        weighed.append(Weighed(signal.slug, values, chance, model_link is not None, written))
        if written and quote is not None:
            link = Link(target=signal.slug,
                        type=(model_link.type if model_link and model_link.type
                              else default_type),
                        confidence=round(chance, 2),
                        reason=(model_link.reason if model_link and model_link.reason
                                else ranker_reason(signal, shown)))
            found.append((chance, link, quote))
        elif model_link is not None:
            why = (f"calibrated confidence {chance:.2f} is under {threshold:g}"
                   if chance < threshold else "no sentence of the pattern supports it")
            refused.append(f"inferred_links '{signal.slug}': {why}; not written")
    found.sort(key=lambda f: (-f[0], f[1].target))
    garden = proposed.model_copy(update={"inferred_links": tuple(f[1] for f in found)})
    return Linked(garden=garden, evidence={f[1].target: f[2] for f in found},
                  refused=refused, weighed=weighed)
