"""What a proposal is checked against: the pattern's own text, its candidates, its score.

Why: a small model fills a schema with whatever is nearest, and what is nearest is the prompt
itself (the example id ``kebab-case``, the field name ``title``) or digit noise
(``distribution-style-system-123456789012345``). A schema cannot say "found in this text",
so the response model's validators ask these pure functions, and a bad item is re-asked, then
dropped by salvage with the reason given here.

The rules, all on folded text (case folded, punctuation dropped, plurals folded: "Distributed
Leadership" matches "distributed leadership" and "leaderships"):

- an **entity** is grounded when its label occurs as a phrase in the pattern's title,
  summary or body (and its id has a word of the text), or when every word of its id occurs
  there (a word also matches one that extends it by a suffix of up to four letters:
  "organizational" and "organizations"; the domain and keywords count as words of the
  pattern) and at least half of its label's words do;
- a **community** is broad by design: one word of its id and half of its label's words in
  the text ground it;
- refused always: an id that is another pattern's slug shown in the prompt (a candidate or
  a human relationship's target: a link target, not an entity);
- refused outright, whatever the text: an id or label that names the task's own fields
  (``title``, ``domain``, ``slug``, ``summary``, ``entities``...; derived from the response
  schema's field names, the front-matter keys and the type names);
- refused unless every word of the id occurs in the pattern's text: an id or label copied from
  the prompt's examples or instructions (derived from the rendered system prompt and the
  schema's descriptions: every kebab-case or snake_case token and every quoted phrase), and an
  id or label with a run of three or more digits;
- a link's **evidence** must be found in the pattern's own text, whitespace-folded and case
  folded, with Markdown emphasis marks (``*``, ``_``, backticks), its line markers standing
  alone (``>``, ``#``, ``-``, ``|``) and typographic quotes and dashes folded, less an
  ellipsis that opens or closes it (the quote was cut there); otherwise verbatim. A quote
  from a candidate's text is named as such.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gardener.folding import STOPWORDS
from gardener.folding import singular as stem

MIN_EVIDENCE_WORDS = 3
"""Fewer words than this are not a quote that supports anything ("the commons")."""
MIN_REASONING_WORDS = 6
"""A vitality reasoning is a sentence or two: fewer words than this say nothing."""
PROSE_SHARE = 0.7
"""Least share of a reasoning's tokens that are words (letters only, not numbers or slugs)."""
REPEATS = 3
"""A run of words said this many times over is a model looping, not a reasoning."""

_WORD = re.compile(r"[^\W_]+")
_TOKEN = re.compile(r"\b[a-z0-9]*[a-z][a-z0-9]*(?:[-_][a-z0-9]+)+\b")
_QUOTED = re.compile(r"\"([^\"\n]{2,60})\"|'([^'\n]{2,60})'|“([^”\n]{2,60})”")
_DIGITS = re.compile(r"[0-9]{3,}")
_PLAIN_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_MARKS = re.compile(r"[*_`]+")
_LINE_MARKER = re.compile(r"[>#|+-]+")
_TYPOGRAPHIC = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "—": "-", "–": "-",
                              "\u00a0": " ", "…": "..."})
_CUT = re.compile(r"^\.{3,}\s*|\s*\.{3,}$")
"""An ellipsis that opens or closes a quote: it was cut there (a grammar's length bound makes
a model end a long quote with one), and the rest is still a quote."""


# --- folding (pure) --------------------------------------------------------------------------


_KEY_PREFIX = re.compile(r"\s*([A-Za-z][A-Za-z _-]*?)\s*:")
_SLUG_LABEL = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)+$")
GLUE_PART = 3
"""Shortest part of a glued word ("citydata": "city" + "data") that is checked."""
"""A ``key:`` at the start of a value: "slug: adversarial-growth" echoes a line of the prompt."""


def fold_words(text: str) -> tuple[str, ...]:
    """The words of ``text``, case and plurals folded, punctuation (hyphens too) dropped."""
    return tuple(stem(w) for w in _WORD.findall(text.casefold()))


def content_words(text: str) -> tuple[str, ...]:
    """``fold_words`` less function words (the shortlist's stopword list)."""
    return tuple(stem(w) for w in _WORD.findall(text.casefold()) if w not in STOPWORDS)


def phrase(text: str) -> str:
    """``text`` as one folded phrase: its folded words joined by single spaces."""
    return " ".join(fold_words(text))


def fold_quote(text: str) -> str:
    """Text as evidence is compared: whitespace, case, emphasis marks and typography folded,
    and Markdown's line markers (a blockquote's ``>``, a heading's ``#``, a list's ``-``, a
    table's ``|``) dropped where they stand alone: a quote copied across the lines of a
    blockquote carries them, and a one-line quote cannot keep the line breaks they mark."""
    words = _MARKS.sub("", text.translate(_TYPOGRAPHIC)).casefold().split()
    return " ".join(w for w in words if not _LINE_MARKER.fullmatch(w))


def prompt_phrases(*texts: str) -> frozenset[str]:
    """The examples and instruction tokens of a prompt: every kebab-case or snake_case token
    and every quoted phrase in ``texts``, folded. A model that copies one of them copies the
    prompt, not the pattern."""
    found: set[str] = set()
    for text in texts:
        found.update(phrase(m) for m in _TOKEN.findall(text))
        found.update(phrase(next(g for g in m.groups() if g)) for m in _QUOTED.finditer(text))
    found.discard("")
    return frozenset(found)


def task_phrases(names: Iterable[str]) -> frozenset[str]:
    """The task's own vocabulary (field names, front-matter keys, type names), folded:
    "relevance_pct" -> "relevance pct", "kebab-case" -> "kebab case"."""
    return frozenset(p for p in (phrase(n) for n in names) if p)


def _matches(word: str, known: str) -> bool:
    """``word`` is ``known``, or one extends the other by a short suffix ("organizational",
    "organization"); short words must be equal."""
    if word == known:
        return True
    short, long = (word, known) if len(word) <= len(known) else (known, word)
    return len(short) >= 5 and long.startswith(short) and len(long) - len(short) <= 4


# --- the pattern's text ----------------------------------------------------------------------


@dataclass(frozen=True)
class PatternText:
    """One pattern's text, folded once, and what its proposal must not copy."""

    words: str
    """The pattern's folded words joined by spaces, with a space at either end."""
    vocabulary: frozenset[str]
    quote: str
    """The pattern's text as evidence is compared (:func:`fold_quote`)."""
    others: tuple[tuple[str, str], ...] = ()
    """(slug, folded text) of each candidate, to name a quote taken from one of them."""
    prompt: frozenset[str] = frozenset()
    """Folded examples and tokens of the prompt (:func:`prompt_phrases`)."""
    task: frozenset[str] = frozenset()
    """Folded names of the task's fields (:func:`task_phrases`)."""
    slugs: frozenset[str] = frozenset()
    """The slugs the prompt shows (candidates, human relationships' targets): link targets,
    never entities or communities."""

    def has_phrase(self, text: str) -> bool:
        folded = phrase(text)
        return bool(folded) and f" {folded} " in self.words

    def has_word(self, word: str) -> bool:
        return word in self.vocabulary or any(_matches(word, v) for v in self.vocabulary)

    def share(self, text: str) -> float:
        """The fraction of ``text``'s content words found in the pattern's text (0 when it has
        none). Function words do not count: "Fisherman-Mariage-In-Themselves" shares "in" and
        "themselves" with any English text, which is not half of it grounded."""
        words = content_words(text)
        return sum(self.has_word(w) for w in words) / len(words) if words else 0.0

    def glued(self, word: str) -> bool:
        """Whether ``word``, absent from the text, is two of its words run together (a small
        model writes "citydata", "themarket")."""
        if word in self.vocabulary or len(word) < 2 * GLUE_PART:
            return False
        known = self.vocabulary | STOPWORDS
        return any(word[:i] in known and word[i:] in known
                   for i in range(GLUE_PART - 1, len(word) - GLUE_PART + 1))

    def malformed(self, ident: str, label: str) -> str | None:
        """Why ``label`` or ``ident`` is not a name, or None: a label written as an id
        ("distributed-ledger"), or words of the text run together."""
        if _SLUG_LABEL.match(label.strip()):
            return (f"label {label!r} is written as an id; give the name in words, as the "
                    "pattern writes it")
        for what, value in (("id", ident), ("label", label)):
            joined = next((w for w in fold_words(value) if self.glued(w)), None)
            if joined is not None:
                return (f"{what} {value!r} runs words together ({joined!r}); use the pattern's "
                        "own words, separated")
        return None

    def copied(self, ident: str, label: str) -> str | None:
        """Why ``ident``/``label`` are refused, or None: a field name of the task always; a
        prompt example or a run of digits unless the pattern's own words have it too; a
        slug of another pattern always (the prompt lists them as link targets); a label
        written as an id or words run together (`malformed`)."""
        if ident in self.slugs:
            return (f"id {ident!r} is another pattern's slug, a link target; name what the "
                    "pattern itself is about")
        for what, value in (("id", ident), ("label", label)):
            folded = phrase(value)
            key = _KEY_PREFIX.match(value)
            if key and phrase(key.group(1)) in self.task:
                return (f"{what} {value!r} repeats the prompt's {key.group(1).strip()!r} line, "
                        "not something the pattern is about; leave it out")
            if folded in self.task:
                return (f"{what} {value!r} names a field of this task, not something the "
                        "pattern is about; leave it out")
            if folded in self.prompt and self.share(value) < 1.0:
                return (f"{what} {value!r} is copied from the instructions, not found in the "
                        "pattern's text; name what the pattern itself is about")
            digits = _DIGITS.search(value)
            if digits and digits.group() not in self.vocabulary:
                return (f"{what} {value!r} has the digits {digits.group()!r}, which the "
                        "pattern's text does not have; use the pattern's own words")
        return self.malformed(ident, label)

    def entity_problem(self, ident: str, label: str) -> str | None:
        """Why an entity is not grounded in the pattern's text, or None when it is."""
        problem = self.copied(ident, label)
        if problem:
            return problem
        if self.has_phrase(label) and self.share(ident) > 0:
            return None
        if self.share(ident) == 1.0 and self.share(label) >= 0.5:
            return None
        return (f"entity {ident!r} ({label!r}) is not in the pattern's text; an entity's "
                "label, or every word of its id, must occur in the title, summary or body")

    def community_problem(self, ident: str, label: str) -> str | None:
        """Why a community is not grounded: copied, its id without a word of the pattern's
        text, or its label with less than half."""
        problem = self.copied(ident, label)
        if problem or (self.share(ident) > 0 and self.share(label) >= 0.5):
            return problem
        return (f"community {ident!r} ({label!r}) is not grounded in the pattern's text; its "
                "id needs a word of the pattern and its label mostly the pattern's words")

    def reasoning_problem(self, reasoning: str) -> str | None:
        """Why a vitality reasoning is not prose about this pattern, or None: too few words,
        mostly numbers or slugs, a run of words repeated, or another pattern's slug."""
        tokens = [t.strip(".,;:!?()[]\"'") for t in reasoning.split()]
        tokens = [t for t in tokens if t]
        words = [t for t in tokens if _PLAIN_WORD.fullmatch(t)]
        if len(words) < MIN_REASONING_WORDS or len(words) < PROSE_SHARE * len(tokens):
            return (f"vitality_reasoning {reasoning[:80]!r} is not prose; say in a sentence or "
                    "two, in words, why the pattern is in its vitality band")
        folded = [t.lower() for t in tokens]
        for size in (1, 2, 3, 4):
            grams = [tuple(folded[i:i + size]) for i in range(len(folded) - size + 1)]
            for i in range(len(grams) - size * (REPEATS - 1)):
                if all(grams[i] == grams[i + size * k] for k in range(1, REPEATS)) and (
                        size > 1 or len(grams[i][0]) > 1):
                    return (f"vitality_reasoning repeats {' '.join(grams[i])!r}; say once, in "
                            "a sentence or two, why the pattern is in its vitality band")
        named = sorted(s for s in self.slugs if re.search(rf"(?<![\w-]){re.escape(s)}(?![\w-])",
                                                          reasoning.lower()))
        if named:
            return (f"vitality_reasoning names other patterns ({', '.join(named)}); reason "
                    "about this pattern's own vitality")
        return None

    def evidence_problem(self, evidence: str) -> str | None:
        """Why ``evidence`` is not a quote of this pattern's text, or None when it is."""
        quoted = _CUT.sub("", fold_quote(evidence))
        if len(quoted.split()) < MIN_EVIDENCE_WORDS:
            return (f"evidence {evidence!r} is too short; quote at least {MIN_EVIDENCE_WORDS} "
                    "words of this pattern's text that support the link")
        if quoted in self.quote:
            return None
        source = next((slug for slug, text in self.others if quoted in text), None)
        if source is not None:
            return (f"evidence {evidence!r} quotes the candidate {source!r}, not this pattern; "
                    "quote this pattern's own text")
        return (f"evidence {evidence!r} is not in this pattern's text; copy a short span of "
                "the pattern word for word")


def pattern_text(
    texts: Iterable[str], *, terms: Iterable[str] = (),
    candidates: Mapping[str, str] | None = None, slugs: Iterable[str] = (),
    prompt: frozenset[str] = frozenset(), task: frozenset[str] = frozenset(),
) -> PatternText:
    """The :class:`PatternText` of a pattern whose title, summary and body are ``texts``.

    ``terms`` (the pattern's domain and keywords) count as its words, never as a quote: the
    curated entity "collective-decision-making" takes "collective" from the domain
    "collective-intelligence". ``candidates`` maps each candidate's slug to the text the prompt
    shows of it; ``slugs`` are other slugs the prompt shows (human relationships)."""
    parts = [t for t in texts if t]
    words = fold_words("\n".join(parts))
    vocabulary = frozenset(words) | frozenset(w for t in terms for w in fold_words(t))
    return PatternText(
        words=f" {' '.join(words)} ", vocabulary=vocabulary,
        quote=fold_quote(" \n ".join(parts)),
        others=tuple((slug, fold_quote(text)) for slug, text in (candidates or {}).items()),
        prompt=prompt, task=task,
        slugs=frozenset((*(candidates or {}), *slugs)))


# --- the grounding of one proposal -----------------------------------------------------------


@dataclass(frozen=True)
class Band:
    """One band of the v7.1 vitality rubric; ``low`` inclusive, ``high`` as written there."""

    name: str
    low: float
    high: float


VITALITY_BANDS: tuple[Band, ...] = (
    Band("generative", 4.5, 5.0),
    Band("sustaining", 3.5, 4.4),
    Band("functional", 2.0, 3.4),
    Band("extractive", 0.0, 1.9),
)
BAND_NAMES: tuple[str, ...] = tuple(b.name for b in VITALITY_BANDS)


def vitality_band(score: float | None) -> Band | None:
    """The rubric band of a human vitality score; None when absent or off the 0-5 scale."""
    if score is None or not 0.0 <= score <= 5.0:
        return None
    return next(b for b in VITALITY_BANDS if score >= b.low)


def targets(slug: str, candidates: Iterable[str]) -> tuple[str, ...]:
    """Candidates in order, without the pattern itself and without repeats."""
    return tuple(dict.fromkeys(c for c in candidates if c != slug))


@dataclass(frozen=True)
class Grounding:
    """The facts of one pattern that its proposal must agree with; ``text`` None checks no
    item against a text (a model built without one, as in schema tests)."""

    slug: str | None = None
    candidates: tuple[str, ...] | None = None
    vitality: float | None = None
    text: PatternText | None = None

    @classmethod
    def of(cls, slug: str, candidates: Iterable[str], vitality: float | None = None,
           text: PatternText | None = None) -> Grounding:
        """Candidates in order, without the pattern itself and without repeats."""
        return cls(slug, targets(slug, candidates), vitality, text)

    def overlaid(self, context: Mapping[str, Any] | None) -> Grounding:
        """This grounding with whatever the validation context supplies taking precedence."""
        if not context:
            return self
        candidates = context.get("candidates", self.candidates)
        return Grounding(
            slug=context.get("slug", self.slug),
            candidates=None if candidates is None else tuple(candidates),
            vitality=context.get("vitality", self.vitality),
            text=context.get("text", self.text),
        )

    def target_problem(self, target: str) -> str | None:
        if self.slug is not None and target == self.slug:
            return (f"target {target!r} is the pattern itself; link only to other patterns "
                    "from the candidate list")
        if self.candidates is not None and target not in self.candidates:
            return (f"target {target!r} is not one of the candidate slugs; choose from the "
                    "list or leave the link out")
        return None

    def band_problem(self, reasoning: str) -> str | None:
        """The reasoning names rubric bands, none of them the band of the human score."""
        band = vitality_band(self.vitality)
        if band is None:
            return None
        named = {name for name in BAND_NAMES
                 if re.search(rf"\b{name}\b", reasoning, re.IGNORECASE)}
        if named and band.name not in named:
            return (f"vitality_reasoning calls the pattern {' / '.join(sorted(named))}, but its "
                    f"human vitality score {self.vitality:g} is in the {band.name} band "
                    f"({band.low:g}-{band.high:g}); reason within the {band.name} band")
        return None

    def band_mismatch(self, claimed: str | None) -> str | None:
        band = vitality_band(self.vitality)
        if band is None or claimed is None or claimed == band.name:
            return None
        return (f"vitality_band {claimed!r} contradicts the human vitality score "
                f"{self.vitality:g}, which is in the {band.name} band; use {band.name!r}")
