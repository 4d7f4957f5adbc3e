"""Entity resolution: one id per concept across the library, and in every merged proposal."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from graph_library import Spec, load

from gardener import folding as spelling
from gardener.graph import entities as en
from gardener.library.tables import TableError
from gardener.model import Entity, Garden
from gardener.steps.passes import garden_entry

ALIASES = Path("lib/.gardener/entities.yaml")


@pytest.mark.parametrize(("a", "b"), [
    ("feedback-loops", "feedback-loop"),
    ("Feedback_Loop", "feedback-loop"),
    ("Feedback Loops", "feedback-loop"),
    ("theory-of-change", "theory-change"),
    ("communities-of-practice", "community-practice"),
    ("systems-thinking", "system-thinking"),
])
def test_spelling_variants_share_a_key(a: str, b: str) -> None:
    assert spelling.key(a) == spelling.key(b)


@pytest.mark.parametrize(("a", "b"), [
    ("feedback-loop", "feedforward-loop"),
    ("process", "progress"),
    ("status", "state"),  # "status" is not a plural
])
def test_different_concepts_keep_their_keys(a: str, b: str) -> None:
    assert spelling.key(a) != spelling.key(b)


def library(tmp_path: Path) -> list[Spec]:
    return [
        Spec("p1", entities=[("feedback-loops", 0.9), ("elinor-ostrom", 0.8)]),
        Spec("p2", entities=[("feedback-loops", 0.7), ("systemic-thinking", 0.6)]),
        Spec("p3", entities=[("Feedback_Loop", 0.5), ("ostrom-elinor", 0.9)]),
        Spec("p4", summary="Feedback loops keep the commons going.",
             entities=[("systems-thinking", 0.9), ("commons", 0.9)]),
    ]


def test_library_resolution_picks_the_most_used_spelling(tmp_path: Path) -> None:
    lib = load(tmp_path / "lib", library(tmp_path))
    res = en.resolve_library(lib.patterns)
    assert res.distinct == 7
    assert res.resolve("Feedback_Loop") == "feedback-loops"
    assert res.resolve("feedback-loop") == "feedback-loops"  # never seen, same concept
    assert res.resolve("elinor-ostrom") == "elinor-ostrom"
    assert res.resolve("brand-new") == "brand-new"
    assert [(m.canonical, m.variants, m.patterns, m.rule) for m in res.merges] == [
        ("feedback-loops", ("Feedback_Loop",), 3, "spelling")]
    assert res.merged == 1


def test_alias_table_joins_concepts_and_names_the_canonical_id(tmp_path: Path) -> None:
    lib = load(tmp_path / "lib", library(tmp_path))
    table = en.parse_aliases(
        "version: 1\naliases:\n  ostrom-elinor: [elinor-ostrom]\n"
        "  systems-thinking: [systemic-thinking]\n", ALIASES)
    res = en.resolve_library(lib.patterns, table)
    assert res.resolve("elinor-ostrom") == "ostrom-elinor"
    assert res.resolve("Systemic Thinking") == "systems-thinking"
    merges = {m.canonical: (m.variants, m.rule) for m in res.merges}
    assert merges["ostrom-elinor"] == (("elinor-ostrom",), "alias")
    assert merges["systems-thinking"] == (("systemic-thinking",), "alias")


@pytest.mark.parametrize(("text", "expected"), [
    ("aliases:\n  Bad Id: [x]\n", f"{ALIASES}:2: canonical id 'Bad Id' is not kebab-case"),
    ("aliases:\n  a-b: [c]\n  d-e: [c]\n", f"{ALIASES}:3: 'c' is already an alias of 'a-b'"),
    ("aliases:\n  a-b: c\n", f"{ALIASES}:2: aliases of 'a-b' must be a list"),
    ("aliases: [a]\n", f"{ALIASES}:1: an alias table is a mapping"),
    ("aliases: {}\nextra: 1\n", f"{ALIASES}:1: unknown key(s) extra"),
    ("aliases:\n  a: [\n", f"{ALIASES}:3:1: not valid YAML"),
])
def test_a_bad_alias_table_names_its_line(text: str, expected: str) -> None:
    with pytest.raises(TableError) as caught:
        en.parse_aliases(text, ALIASES)
    assert any(p.startswith(expected) for p in caught.value.problems), caught.value.problems


def test_an_empty_or_absent_table_is_no_table(tmp_path: Path) -> None:
    assert en.parse_aliases("", ALIASES).canonical == {}
    assert en.load_aliases(tmp_path).canonical == {}


def test_canonical_entities_merges_duplicates_and_keeps_untouched_text() -> None:
    res = en.Resolution(by_key={"feedback-loop": "feedback-loops"})
    kept = Entity(id="commons", relevance=0.5, text="    - id: commons\n")
    garden = Garden(entities=(
        Entity(id="Feedback_Loop", relevance=0.6), kept,
        Entity(id="feedback-loop", relevance=0.9, label="Loops")))
    out = en.canonical_entities(garden, res)
    assert [(e.id, e.relevance) for e in out.entities] == [("feedback-loops", 0.9),
                                                            ("commons", 0.5)]
    assert out.entities[1].text == "    - id: commons\n"
    same = Garden(entities=(kept,))
    assert en.canonical_entities(same, res) is same


def test_merging_a_proposal_uses_the_library_ids(tmp_path: Path) -> None:
    lib = load(tmp_path / "lib", library(tmp_path))
    res = en.resolve_library(lib.patterns)
    entry = next(e for e in lib.entries if e.pattern.slug == "p4")
    proposed = Garden(entities=(Entity(id="feedback-loop", type="concept", label="Loops",
                                       relevance=0.8),))
    change = garden_entry(entry, proposed, slugs=lib.slugs, today=dt.date(2026, 5, 1),
                          entities=res)
    assert change.new_text is not None
    assert "id: feedback-loops\n" in change.new_text
    assert "id: feedback-loop\n" not in change.new_text
