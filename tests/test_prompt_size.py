"""A pattern's prompt is bounded by the number of candidates, never by the library's size.

Synthetic candidates all render to lines of one length (fixed-width words and numbers) but
with different words, so the two libraries shortlist different patterns and only a prompt
that grew with the library could differ in size. Counted in characters: no tokenizer needed
(bench/prompt_size.py measures tokens).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from gardener.model import HumanLink, Pattern, Section
from gardener.propose.prompts import render_messages
from gardener.propose.response import build_response_model
from gardener.shortlist.candidates import CandidateIndex

SAME_LENGTH = ("harvest", "council", "network", "balance", "pasture", "compost", "kitchen",
               "library", "orchard", "commons", "charter", "steward", "weaving")
"""Seven letters each: any mix of them renders to the same length."""


def gardened() -> Pattern:
    return Pattern(
        path=Path("library/commons-stewardship-council.md"),
        slug="commons-stewardship-council",
        title="Commons Stewardship Council",
        summary="A council of stewards tends the commons orchard and its harvest.",
        domain="commons",
        keywords=("steward", "council", "harvest"),
        vitality=3.5,
        sections=(
            Section(heading="Problem", level=2, text="Nobody tends the orchard. " * 30),
            Section(heading="Solution", level=2, text="Stewards meet in council. " * 30),
            Section(heading="Vitality", level=2, text="Signs of life: a weekly ritual."),
        ),
        relationships=(HumanLink(target="seasonal-harvest", type="requires"),),
    )


def synthetic(n: int, seed: int = 11) -> list[Pattern]:
    """``n`` patterns whose slugs, titles and summaries have one length each, words varied."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        title = " ".join(rng.choice(SAME_LENGTH) for _ in range(2))
        summary = " ".join(rng.choice(SAME_LENGTH) for _ in range(12))
        out.append(Pattern(
            path=Path(f"library/practice-{i:05d}.md"),
            slug=f"practice-{i:05d}",
            title=f"{title.capitalize()} {i:05d}",
            summary=f"{summary.capitalize()} {i:05d}.",
        ))
    return out


def request_size(library_size: int, k: int = 40) -> tuple[int, int, list[str]]:
    """Characters of the messages and of the response schema, and the slugs shown."""
    pattern = gardened()
    index = CandidateIndex([pattern, *synthetic(library_size)])
    shortlist = index.shortlist(pattern, k)
    messages = render_messages(pattern, shortlist)
    slugs = [c.slug for c in shortlist]
    schema = build_response_model(pattern.slug, slugs, pattern.vitality).model_json_schema()
    return sum(len(m["content"]) for m in messages), len(json.dumps(schema)), slugs


def test_prompt_size_is_the_same_for_50_and_2000_patterns() -> None:
    small_messages, small_schema, small_slugs = request_size(50)
    large_messages, large_schema, large_slugs = request_size(2000)
    assert len(small_slugs) == len(large_slugs) == 40
    assert set(small_slugs) != set(large_slugs), "the larger library must shortlist others"
    assert large_messages == small_messages
    assert large_schema == small_schema


def test_prompt_size_follows_k() -> None:
    messages_20, schema_20, slugs_20 = request_size(2000, k=20)
    messages_40, schema_40, slugs_40 = request_size(2000, k=40)
    assert (len(slugs_20), len(slugs_40)) == (20, 40)
    per_candidate = (messages_40 - messages_20) / 20
    assert per_candidate == len("practice-00000: Harvest council 00000 — ") + len(
        " ".join(["harvest"] * 12) + " 00000.") + 1
    assert schema_40 - schema_20 == 20 * len('"practice-00000", ')
