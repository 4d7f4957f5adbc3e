"""Prompt size per pattern, in tokens, against libraries of different sizes.

The acceptance criterion is that a prompt does not grow with the library: what the model is
sent for one pattern is that pattern (every field clipped, ``PromptLimits``) plus at most ``k``
candidates (each clipped) plus the response schema, whose link-target enum also holds at most
``k`` slugs. This script measures it for every pattern of a 50-pattern and of the 330-file
shared library, for one pattern against synthetic libraries of 50 to 3,000 patterns, and for
that pattern with ``k`` from 0 to 80 (the one thing the size should follow).

    /work/localmodel-venv/bin/python bench/prompt_size.py --out docs/prompt-size.md
    .venv/bin/python bench/prompt_size.py --out docs/prompt-size.md   # estimate: chars / 4

Tokens come from the bundled SmolLM2-135M's own tokenizer (llama_cpp, vocabulary only) where
llama_cpp and the model are installed, otherwise from a labelled estimate of characters / 4.
Each tokenizer writes its own section of ``--out``, so an estimate never overwrites a count.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import CORPUS, commit, machine, replace_section  # noqa: E402
from gardener.endpoint.settings import LOCAL_MODE, LOCAL_MODEL, LLMSettings  # noqa: E402
from gardener.library import load as library  # noqa: E402
from gardener.library.document import ReadError  # noqa: E402
from gardener.local.server import CONTEXT_TOKENS, LocalModelError, bundled_model_path  # noqa: E402
from gardener.model import Pattern  # noqa: E402
from gardener.propose.prompts import render_messages  # noqa: E402
from gardener.propose.response import build_response_model  # noqa: E402
from gardener.shortlist.candidates import CandidateIndex  # noqa: E402

K = 40
SUBSET = 50
SCALES: tuple[int, ...] = (50, 330, 1_000, 3_000)
K_SWEEP: tuple[int, ...] = (0, 10, 20, 40, 80)
SCHEMA_MODES: tuple[str, ...] = ("tools", "json_schema")
TITLE = "# Prompt size"
CHARS_PER_TOKEN = 4


# --- token counting ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Tokenizer:
    """A way to count tokens, and the words that say in the docs which one it was."""

    name: str
    exact: bool
    count: Callable[[str], int]
    frame: int = 0
    """Tokens the model's chat template adds around a system and a user message and the
    assistant turn; 0 when unknown."""


def char_estimate() -> Tokenizer:
    """The fallback: about four characters per token for English prose (an estimate)."""
    return Tokenizer(name=f"estimate: characters / {CHARS_PER_TOKEN}, no tokenizer",
                     exact=False, count=lambda text: math.ceil(len(text) / CHARS_PER_TOKEN))


def smollm2_tokenizer() -> Tokenizer | None:
    """The bundled model's tokenizer through llama_cpp; None when either is not installed.

    Imported by name so that this script also runs (with the estimate) in the project's venv,
    where llama_cpp is not installed.
    """
    try:
        llama_cpp = importlib.import_module("llama_cpp")
        path = bundled_model_path()
    except (ImportError, LocalModelError):
        return None
    model = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)

    def count(text: str) -> int:
        return len(model.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    template = str(model.metadata.get("tokenizer.chat_template", ""))
    empty = [{"role": "system", "content": ""}, {"role": "user", "content": ""}]
    frame = count(jinja2.Environment().from_string(template).render(
        messages=empty, add_generation_prompt=True)) if template else 0
    return Tokenizer(name=f"SmolLM2-135M-Instruct ({path.name}) via llama_cpp "
                          f"{llama_cpp.__version__}", exact=True, count=count, frame=frame)


# --- one prompt -------------------------------------------------------------------------------


def schema_payloads(response_model: type[Any]) -> dict[str, str]:
    """The request fields carrying the response schema, as instructor builds them per mode.

    ``tools`` sends ``tools`` and ``tool_choice``; ``json_schema`` sends ``response_format``.
    Built by instructor itself, so the count follows whatever instructor actually sends.
    """
    instructor = importlib.import_module("instructor")
    response = importlib.import_module("instructor.processing.response")
    out: dict[str, str] = {}
    for mode in SCHEMA_MODES:
        member = instructor.Mode.TOOLS if mode == "tools" else instructor.Mode.JSON_SCHEMA
        _, kwargs = response.handle_response_model(response_model, mode=member, messages=[])
        out[mode] = json.dumps({k: v for k, v in kwargs.items() if k != "messages"})
    return out


@dataclass(frozen=True)
class Size:
    """One pattern's prompt: candidates shown, tokens of its messages and of its schema."""

    slug: str
    candidates: int
    messages: int
    schema: dict[str, int]

    @property
    def total(self) -> int:
        """What one request costs: messages plus the larger of the two schema payloads."""
        return self.messages + max(self.schema.values())


def prompt_size(pattern: Pattern, index: CandidateIndex, k: int, tokens: Tokenizer) -> Size:
    """Shortlist, render and count one pattern's request as ``gardener.propose.propose`` does."""
    shortlist = index.shortlist(pattern, k)
    messages = render_messages(pattern, shortlist)
    model = build_response_model(pattern.slug, [c.slug for c in shortlist], pattern.vitality)
    return Size(
        slug=pattern.slug,
        candidates=len(shortlist),
        messages=sum(tokens.count(m["content"]) for m in messages),
        schema={mode: tokens.count(text) for mode, text in schema_payloads(model).items()},
    )


# --- libraries --------------------------------------------------------------------------------


def read_library(paths: Sequence[Path]) -> list[Pattern]:
    """The readable patterns of exactly these files, human references resolved among them."""
    entries: list[library.Entry] = []
    for _, result in library.iter_read(list(paths)):
        if result is not None and not isinstance(result, ReadError):
            entries.append(result)
    resolved, _ = library.resolve(entries)
    return [e.pattern for e in resolved]


def evenly_spaced(items: Sequence[Path], n: int) -> list[Path]:
    """``n`` items spread evenly over ``items`` (every len/n-th), first one included."""
    if n >= len(items):
        return list(items)
    return [items[i * len(items) // n] for i in range(n)]


def vocabulary(patterns: Sequence[Pattern]) -> list[str]:
    """Real words of a library's titles and summaries, for synthetic patterns that read alike."""
    words = {w.strip(".,;:()'\"").lower() for p in patterns
             for w in f"{p.title} {p.summary}".split()}
    return sorted(w for w in words if len(w) >= 4 and w.isalpha())


def synthetic_library(n: int, words: Sequence[str], anchor: Sequence[str],
                      seed: int = 20240) -> list[Pattern]:
    """``n`` generated patterns with titles of 2-9 and summaries of 8-90 words.

    Pattern ``i`` depends on ``i`` only, so a larger library contains every smaller one. Each
    pattern takes two words from ``anchor`` (the measured pattern's title): every one of them
    is a plausible candidate, so the shortlist is always full, the worst case for size.
    """
    out = []
    for i in range(n):
        rng = random.Random(seed * 1_000_003 + i)
        title_words = [rng.choice(words) for _ in range(rng.randint(2, 9))]
        title_words[rng.randrange(len(title_words))] = rng.choice(anchor)
        summary = " ".join([rng.choice(anchor),
                            *(rng.choice(words) for _ in range(rng.randint(7, 89)))])
        slug = "-".join([f"synthetic-{i:05d}", *title_words[:4]])
        out.append(Pattern(
            path=Path(f"synthetic/{slug}.md"),
            slug=slug,
            title=" ".join(title_words).capitalize(),
            summary=summary.capitalize() + ".",
            keywords=tuple(rng.choice(words) for _ in range(rng.randint(0, 6))),
            domain=rng.choice(("commons", "governance", "facilitation", "economics", None)),
        ))
    return out


# --- measuring --------------------------------------------------------------------------------


def nearest_rank(values: Sequence[int], q: float) -> int:
    """The ``q`` quantile by nearest rank: always a measured value, never an interpolation."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass(frozen=True)
class LibraryRun:
    name: str
    sizes: list[Size]
    seconds: float

    def stats(self, pick: Callable[[Size], int]) -> tuple[int, int, int]:
        values = [pick(s) for s in self.sizes]
        return int(statistics.median(values)), nearest_rank(values, 0.95), max(values)


def measure_library(name: str, patterns: Sequence[Pattern], k: int,
                    tokens: Tokenizer) -> LibraryRun:
    start = time.perf_counter()
    index = CandidateIndex(patterns)
    sizes = [prompt_size(p, index, k, tokens) for p in patterns]
    return LibraryRun(name, sizes, time.perf_counter() - start)


def _triple(values: tuple[int, int, int]) -> str:
    return " / ".join(f"{v:,}" for v in values)


def library_table(runs: Sequence[LibraryRun]) -> str:
    rows = [
        "| library | patterns | candidates shown (median / min) | messages (median / p95 / max)"
        " | schema, tools | schema, json_schema | total (median / p95 / max) "
        f"| over {CONTEXT_TOKENS:,} (bundled model context) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        shown = [s.candidates for s in run.sizes]
        over = sum(s.total > CONTEXT_TOKENS for s in run.sizes)
        rows.append(
            f"| {run.name} | {len(run.sizes)} | {int(statistics.median(shown))} / {min(shown)} "
            f"| {_triple(run.stats(lambda s: s.messages))} "
            f"| {_triple(run.stats(lambda s: s.schema['tools']))} "
            f"| {_triple(run.stats(lambda s: s.schema['json_schema']))} "
            f"| {_triple(run.stats(lambda s: s.total))} | {over} |")
    return "\n".join(rows)


def same_patterns(small: LibraryRun, large: LibraryRun) -> str:
    """The patterns of the small library measured again inside the large one."""
    big = {s.slug: s for s in large.sizes}
    pairs = [(s, big[s.slug]) for s in small.sizes if s.slug in big]
    diffs = [b.total - a.total for a, b in pairs]
    extra = [b.candidates - a.candidates for a, b in pairs]
    if any(extra):
        shown = (f"are shown {min(extra):+} to {max(extra):+} candidates more (median "
                 f"{statistics.median(extra):+.0f}), as the larger library has more patterns "
                 f"with evidence to fill a shortlist of at most {K}")
    else:
        median = statistics.median([a.candidates for a, _ in pairs])
        shown = f"are shown as many candidates in both (median {median:.0f})"
    return (f"The {len(pairs)} patterns of the {small.name} measured again in the "
            f"{large.name} {shown}; their total changes by {min(diffs):+,} to "
            f"{max(diffs):+,} tokens (median {statistics.median(diffs):+,.0f}), because "
            "other candidates, with shorter or longer titles and summaries, fill the list.")


TOLERANCE = 0.05
"""How much larger the large library's median, p95 and max may be and still count as flat:
which candidates fill the list changes one pattern's total by hundreds of tokens either way
(see the same-pattern comparison), a few percent of a total near 6,000."""


def verdict(small: LibraryRun, large: LibraryRun) -> str:
    """Flat when no summary statistic of the large library exceeds the small one's by more
    than ``TOLERANCE``."""
    ratios = [b / a for a, b in zip(small.stats(lambda s: s.total),
                                    large.stats(lambda s: s.total), strict=True)]
    flat = all(r <= 1 + TOLERANCE for r in ratios)
    shown = ", ".join(f"{name} {r:.3f}" for name, r in zip(("median", "p95", "max"), ratios,
                                                           strict=True))
    return (f"**{'Flat' if flat else 'GROWS'}:** total tokens, {large.name} / {small.name}: "
            f"{shown} ({'all' if flat else 'not all'} within the {TOLERANCE:.0%} tolerance "
            "for which candidates are shown).")


def completion_budget() -> int:
    """The answer's token budget: ``max_tokens`` of the bundled model's default settings."""
    return LLMSettings(base_url=None, api_key=None, model=LOCAL_MODEL,
                       mode=LOCAL_MODE).max_tokens


def headroom(runs: Sequence[LibraryRun], tokens: Tokenizer) -> str:
    """Whether the largest request and a full answer fit the bundled model's context."""
    completion = completion_budget()
    messages = max(s.messages for run in runs for s in run.sizes)
    total = max(s.total for run in runs for s in run.sizes)
    frame = (f" + {tokens.frame} for its chat template" if tokens.frame
             else " (chat template not counted)")
    alone = messages + tokens.frame + completion
    both = total + tokens.frame + completion
    return (
        f"Context: the longest messages, {messages:,}{frame} + {completion:,} for the answer "
        f"(`max_tokens`) = {alone:,} of the bundled model's {CONTEXT_TOKENS:,} "
        f"({'fits' if alone <= CONTEXT_TOKENS else 'does NOT fit'}; its server keeps the "
        f"schema out of the prompt). With the schema in the prompt too (servers that render "
        f"tools): {both:,} ({'fits' if both <= CONTEXT_TOKENS else 'would not fit'} a context "
        f"of {CONTEXT_TOKENS:,}).")


def scale_rows(pattern: Pattern, words: Sequence[str], anchor: Sequence[str], k: int,
               tokens: Tokenizer) -> list[str]:
    rows = ["| synthetic library | candidates shown | messages | schema, tools "
            "| schema, json_schema | total | index + shortlist (s) |",
            "|---:|---:|---:|---:|---:|---:|---:|"]
    for n in SCALES:
        patterns = [*synthetic_library(n - 1, words, anchor), pattern]
        start = time.perf_counter()
        index = CandidateIndex(patterns)
        index.shortlist(pattern, k)
        elapsed = time.perf_counter() - start
        size = prompt_size(pattern, index, k, tokens)
        rows.append(f"| {n:,} | {size.candidates} | {size.messages:,} "
                    f"| {size.schema['tools']:,} | {size.schema['json_schema']:,} "
                    f"| {size.total:,} | {elapsed:.2f} |")
    return rows


def k_sweep(pattern: Pattern, words: Sequence[str], anchor: Sequence[str],
            tokens: Tokenizer) -> tuple[list[str], float]:
    """The measured pattern against the largest synthetic library for several ``k``."""
    patterns = [*synthetic_library(max(SCALES) - 1, words, anchor), pattern]
    index = CandidateIndex(patterns)
    rows = ["| k | candidates shown | messages | schema, tools | total |",
            "|---:|---:|---:|---:|---:|"]
    sizes = [prompt_size(pattern, index, k, tokens) for k in K_SWEEP]
    for k, size in zip(K_SWEEP, sizes, strict=True):
        rows.append(f"| {k} | {size.candidates} | {size.messages:,} "
                    f"| {size.schema['tools']:,} | {size.total:,} |")
    first, last = sizes[0], sizes[-1]
    per_candidate = (last.total - first.total) / max(1, last.candidates - first.candidates)
    return rows, per_candidate


def shown_path(path: Path) -> str:
    """``../shared/corpus`` style when the corpus sits beside the repository, else absolute."""
    try:
        return str(Path("..") / path.relative_to(ROOT.parent))
    except ValueError:
        return str(path)


def report(corpus: Path, k: int, tokens: Tokenizer) -> str:
    paths = library.discover(corpus)
    full = read_library(paths)
    readable = sorted(p.path for p in full)
    subset_paths = evenly_spaced(readable, SUBSET)
    small = measure_library(f"{SUBSET}-pattern subset", read_library(subset_paths), k, tokens)
    large = measure_library(f"shared library ({len(full)} patterns)", full, k, tokens)

    worst = max(large.sizes, key=lambda s: s.messages)
    pattern = next(p for p in full if p.slug == worst.slug)
    anchor = sorted({w.lower() for w in pattern.title.split() if w.isalpha() and len(w) >= 4}
                    or {"commons"})
    words = vocabulary(full)
    sweep, per_candidate = k_sweep(pattern, words, anchor, tokens)
    scale = scale_rows(pattern, words, anchor, k, tokens)
    unit = "tokens" if tokens.exact else "estimated tokens (characters / 4)"
    return "\n".join([
        f"Tokenizer: **{tokens.name}**. Unit: {unit}. k = {k}. "
        f"Commit {commit()}; {machine()}.",
        "",
        f"Libraries: the shared corpus `{shown_path(corpus)}` "
        f"({len(paths)} Markdown files, {len(full)} readable patterns) and a subset of "
        f"{SUBSET} of its readable patterns, evenly spaced in sorted path order (every "
        f"{len(readable) / SUBSET:.2f}th file), read from their paths in place, with human "
        f"references resolved within the subset only. Measured in {small.seconds:.1f} s and "
        f"{large.seconds:.1f} s (index, shortlists, rendering, schemas, counting).",
        "",
        library_table([small, large]),
        "",
        same_patterns(small, large),
        "",
        verdict(small, large),
        "",
        headroom([small, large], tokens),
        "",
        f"### One pattern against synthetic libraries (k = {k})",
        "",
        f"The pattern with the longest messages in the shared library, `{pattern.slug}`, "
        f"against libraries of generated patterns (titles of 2-9 words, summaries of 8-90 "
        "words, drawn from the corpus's own vocabulary, each sharing a word with the "
        "pattern's title so that every shortlist is full):",
        "",
        *scale,
        "",
        f"### The same pattern for several k ({max(SCALES):,} synthetic patterns)",
        "",
        *sweep,
        "",
        f"One candidate costs {per_candidate:,.1f} tokens on average (its line in the "
        "messages and its slug in the schema's enum).",
    ])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--corpus", type=Path, default=CORPUS,
                        help="the shared library (default: ../shared/corpus)")
    parser.add_argument("-k", type=int, default=K, help="candidates per shortlist")
    parser.add_argument("--out", type=Path, help="write the section into this Markdown file")
    parser.add_argument("--estimate", action="store_true",
                        help="count characters / 4 even when the tokenizer is installed")
    args = parser.parse_args(argv)
    if not args.corpus.is_dir():
        print(f"{args.corpus}: corpus folder not found", file=sys.stderr)
        return 2
    tokens = (None if args.estimate else smollm2_tokenizer()) or char_estimate()
    body = report(args.corpus.resolve(), args.k, tokens)
    print(body)
    if args.out:
        heading = ("## Measured with the SmolLM2 tokenizer" if tokens.exact
                   else "## Estimated (characters / 4)")
        replace_section(args.out, heading, body, title=TITLE)
        print(f"\nwrote {heading!r} to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
