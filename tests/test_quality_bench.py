"""bench/quality.py's pure parts (``gardener.testing.holdout``): held-out patterns, hiding,
scores."""

from __future__ import annotations

from pathlib import Path

import pytest

from gardener.library import load as library
from gardener.model import HumanLink, Pattern
from gardener.testing.holdout import (
    Score,
    check_hidden,
    choose,
    dropped_targets,
    hide,
    merged,
    most_common_type,
    score,
    total,
    vocabulary_type,
)

GOLD = {"a": frozenset({"enables"}), "b": frozenset({"requires", "related"}),
        "c": frozenset({"governed_by"}), "d": frozenset({"complements"})}


def test_precision_recall_and_type_agreement_from_lists() -> None:
    links = [("a", "enables"), ("b", "complementary"), ("x", "enables"), ("c", "requires"),
             ("a", "requires")]  # the second "a" does not count twice
    assert score(links, GOLD) == Score(proposed=4, hits=3, targets=4, typed_hits=2,
                                       agreeing=1)
    # governed_by has no link type: the hit counts, its type is not judged


def test_a_renamed_human_kind_agrees_with_its_vocabulary_type() -> None:
    assert vocabulary_type("complements") == "complementary"
    assert vocabulary_type("related") is None and vocabulary_type("manifests_as") is None
    assert score([("d", "complementary")], GOLD).agreeing == 1


def test_totals_are_micro_averaged() -> None:
    t = total([Score(4, 3, 4, 2, 1), Score(0, 0, 3, 0, 0)])
    assert (t.patterns, t.proposed, t.hits, t.targets) == (2, 4, 3, 7)
    assert (t.precision, t.recall, t.agreement) == (0.75, 3 / 7, 0.5)
    empty = total([Score(0, 0, 3, 0, 0)])
    assert (empty.precision, empty.agreement) == (0.0, 0.0)


def test_the_choice_is_deterministic_and_only_of_eligible_patterns() -> None:
    counts = {f"p{i:02}": i % 5 for i in range(40)}
    first = choose(counts, 6, seed=1)
    assert first == choose(dict(reversed(counts.items())), 6, seed=1)
    assert len(first) == 6 and all(counts[s] >= 3 for s in first)
    assert first != choose(counts, 6, seed=2)
    assert len(choose(counts, 1000, seed=1)) == sum(c >= 3 for c in counts.values())


def test_the_baseline_guesses_the_most_common_human_type() -> None:
    def pattern(slug: str, *kinds: str) -> Pattern:
        rels = tuple(HumanLink(target=f"t{i}", type=k) for i, k in enumerate(kinds))
        return Pattern(path=Path(f"{slug}.md"), slug=slug, title=slug, relationships=rels)

    patterns = [pattern("a", "requires", "related", "related"), pattern("b", "requires")]
    assert most_common_type(patterns) == "requires"


PATTERN = """---
id: pat_1
slug: {slug}
title: {title}
summary: One line.
relationships:
  enables:
  - {other}
  requires: []
# a comment above the next key
keywords: [x, y]
graph_garden:
  entities: []
  inferred_links:
  - target: {other}
    type: enables
---
# {title}

Body text with a relationships: line that is not front matter.
"""


def test_hiding_removes_relationships_and_garden_and_keeps_the_rest(tmp_path: Path) -> None:
    for slug, other in (("alpha", "beta"), ("beta", "alpha")):
        (tmp_path / f"{slug}.md").write_text(
            PATTERN.format(slug=slug, title=slug.title(), other=other), encoding="utf-8")
    before = {p.slug: p for p in library.load(tmp_path).patterns}
    assert before["alpha"].relationships and before["alpha"].garden is not None
    hide(tmp_path / "alpha.md")
    text = (tmp_path / "alpha.md").read_text(encoding="utf-8")
    assert "graph_garden" not in text and "  enables:" not in text
    assert text.endswith("Body text with a relationships: line that is not front matter.\n")
    after = {p.slug: p for p in library.load(tmp_path).patterns}
    check_hidden(before, after, ["alpha"])
    assert after["beta"] == before["beta"]  # only the held-out pattern changes
    with pytest.raises(SystemExit, match="still in the copy"):
        check_hidden(before, after, ["beta"])


def test_the_links_salvage_dropped_are_read_from_the_report() -> None:
    detail = {"dropped": ["inferred_links[0] 'a': evidence: evidence '1.5' is too short",
                          "inferred_links[2] 'b': reason: Field required",
                          "entities[0] 'kebab-case': id 'kebab-case' is copied",
                          "vitality_reasoning: missing"]}
    assert dropped_targets(detail) == ["a", "b"]
    assert dropped_targets({}) == []


def test_per_pattern_reports_merge_into_one() -> None:
    one = {"model": "m", "seconds": 10.5, "totals": {"usage": {"prompt_tokens": 100}},
           "patterns": [{"slug": "a"}]}
    two = {"model": "m", "seconds": 4, "totals": {"usage": {"prompt_tokens": 50,
                                                            "completion_tokens": 7}},
           "patterns": [{"slug": "b"}]}
    assert merged([one, two]) == {
        "model": "m", "seconds": 14.5,
        "totals": {"usage": {"prompt_tokens": 150, "completion_tokens": 7}},
        "patterns": [{"slug": "a"}, {"slug": "b"}]}
