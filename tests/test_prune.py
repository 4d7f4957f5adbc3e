"""Pruning: one test per rule, idempotence, minimal diffs, and the real corpus."""

from __future__ import annotations

import math
import re
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from gardener.model import (
    HUMAN_ONLY_TYPES,
    LINK_TYPES,
    Community,
    Entity,
    Garden,
    HumanLink,
    Link,
    Reason,
    Removal,
    Rename,
)
from gardener.propose.grounding import PatternText, pattern_text
from gardener.steps.prune import PruneResult, PruneSettings, canonical_type, prune

SLUG = "distributed-leadership-design"
LIBRARY = frozenset({SLUG, *(f"p{i:02d}" for i in range(30)), "adaptive-facilitation"})
TODAY = date(2026, 3, 1)
LATER = date(2026, 4, 1)
DEFAULTS = PruneSettings()


def link(target: str, type_: str | None = "enables", confidence: float | None = 0.8,
         text: str | None = None) -> Link:
    return Link(target=target, type=type_, confidence=confidence, reason="why", text=text)


def run(*links: Link, human: tuple[HumanLink, ...] = (), entities: tuple[Entity, ...] = (),
        communities: tuple[Community, ...] = (), settings: PruneSettings = DEFAULTS,
        ) -> PruneResult:
    garden = Garden(last_pruned=date(2026, 1, 1), inferred_links=links, entities=entities,
                    communities=communities)
    return prune(garden, slug=SLUG, library=LIBRARY, human=human, today=TODAY,
                 settings=settings)


def targets(result: PruneResult) -> list[str]:
    return [item.target for item in result.garden.inferred_links]


def only_removal(result: PruneResult) -> Removal:
    assert len(result.removals) == 1, result.removals
    return result.removals[0]


# --- links, rule by rule ---------------------------------------------------------------------

def test_self_link_is_removed() -> None:
    result = run(link(SLUG), link("p01"))
    assert targets(result) == ["p01"]
    removal = only_removal(result)
    assert (removal.kind, removal.item, removal.reason) == ("link", SLUG, Reason.SELF)
    assert result.changed and result.garden.last_pruned == TODAY


def test_link_to_a_slug_outside_the_library_is_dangling() -> None:
    result = run(link("p01"), link("no-such-pattern"))
    assert targets(result) == ["p01"]
    removal = only_removal(result)
    assert (removal.item, removal.reason) == ("no-such-pattern", Reason.DANGLING)
    assert "no-such-pattern" in removal.detail


@pytest.mark.parametrize(("old", "new"), [
    ("enabler", "enables"),
    ("enablers", "enables"),
    ("enablement", "enables"),
    ("specializes", "specializes_to"),
    ("complements", "complementary"),
    ("Enables", "enables"),
    ("  requires ", "requires"),
    ("specializes-to", "specializes_to"),
    ("Generalizes From", "generalizes_from"),
    ("COMPLEMENTS", "complementary"),
    ("Enabler", "enables"),
])
def test_off_vocabulary_type_with_clear_intent_is_renamed_and_loses_its_text(
        old: str, new: str) -> None:
    result = run(link("p01", old, text="    - target: p01\n"), link("p02", text="kept\n"))
    renamed, untouched = result.garden.inferred_links
    assert (renamed.target, renamed.type, renamed.confidence) == ("p01", new, 0.8)
    assert renamed.text is None
    assert untouched.text == "kept\n"
    assert result.renames == (Rename(target="p01", old_type=old, new_type=new),)
    assert result.removals == ()
    assert result.changed and result.garden.last_pruned == TODAY


@pytest.mark.parametrize(("type_", "detail"), [
    ("analogous", "type 'analogous' is not in the vocabulary"),
    ("analogy", "type 'analogy' is not in the vocabulary"),
    ("", "type '' is not in the vocabulary"),
    ("enables_strongly", "type 'enables_strongly' is not in the vocabulary"),
    (None, "no type"),
])
def test_type_without_clear_intent_is_bad_type(type_: str | None, detail: str) -> None:
    # a missing type gets the library's default unless it has none (tests/test_legacy_links)
    result = run(link("p01", type_), link("p02"), settings=PruneSettings(untyped=None))
    assert targets(result) == ["p02"]
    removal = only_removal(result)
    assert (removal.item, removal.reason, removal.detail) == ("p01", Reason.BAD_TYPE, detail)
    assert result.renames == ()


def test_canonical_type_keeps_vocabulary_and_refuses_the_unknown() -> None:
    assert [canonical_type(t) for t in LINK_TYPES] == list(LINK_TYPES)
    assert canonical_type("related") is None
    assert canonical_type(None) is None


def test_link_agreeing_with_a_human_relationship_is_human_confirmed() -> None:
    human = (HumanLink(target="p01", type="enables", weight=0.9),)
    result = run(link("p01", "enables"), link("p02"), human=human)
    assert targets(result) == ["p02"]
    removal = only_removal(result)
    assert (removal.item, removal.reason) == ("p01", Reason.HUMAN_CONFIRMED)
    assert result.conflicts == ()


def test_link_disagreeing_with_a_human_relationship_is_a_conflict_the_human_wins() -> None:
    human = (HumanLink(target="p01", type="requires"),)
    result = run(link("p01", "enables"), link("p02"), human=human)
    assert targets(result) == ["p02"]
    removal = only_removal(result)
    assert (removal.item, removal.reason) == ("p01", Reason.HUMAN_CONFLICT)
    assert result.conflicts == ("inferred enables -> p01 conflicts with human requires -> p01",)


def test_any_agreeing_human_type_confirms_rather_than_conflicts() -> None:
    human = (HumanLink(target="p01", type="requires"), HumanLink(target="p01", type="enables"))
    result = run(link("p01", "enables"), human=human)
    assert only_removal(result).reason == Reason.HUMAN_CONFIRMED
    assert result.conflicts == ()


@pytest.mark.parametrize("human_type", HUMAN_ONLY_TYPES)
def test_untyped_human_relation_agrees_with_any_link_type(human_type: str) -> None:
    human = (HumanLink(target="p01", type=human_type),)
    result = run(link("p01", "requires"), link("p02", "tools"), human=human)
    assert targets(result) == ["p02"]
    removal = only_removal(result)
    assert (removal.item, removal.reason) == ("p01", Reason.HUMAN_CONFIRMED)
    assert human_type in removal.detail
    assert result.conflicts == ()


def test_unresolved_human_references_are_ignored() -> None:
    human = (HumanLink(target="p01", type="requires", resolved=False),
             HumanLink(target="p02", type="enables", resolved=False))
    result = run(link("p01", "enables"), link("p02", "enables"), human=human)
    assert targets(result) == ["p01", "p02"]
    assert result.removals == () and result.conflicts == ()
    assert not result.changed


def test_renamed_link_meets_humans_under_its_new_type_and_is_not_reported_as_renamed() -> None:
    human = (HumanLink(target="p01", type="enables"),)
    result = run(link("p01", "enabler"), human=human)
    assert only_removal(result).reason == Reason.HUMAN_CONFIRMED
    assert result.renames == ()


def test_duplicate_target_keeps_the_strongest_in_place() -> None:
    result = run(link("p01", confidence=0.7, text="a"), link("p02", text="b"),
                 link("p01", "requires", confidence=0.9, text="c"))
    assert [(x.target, x.confidence, x.text) for x in result.garden.inferred_links] == [
        ("p02", 0.8, "b"), ("p01", 0.9, "c")]
    removal = only_removal(result)
    assert (removal.item, removal.reason, removal.detail) == (
        "p01", Reason.DUPLICATE, "kept the 0.9 link")


def test_duplicate_tie_keeps_the_first() -> None:
    result = run(link("p01", "enables", 0.8), link("p01", "requires", 0.8))
    assert [(x.target, x.type) for x in result.garden.inferred_links] == [("p01", "enables")]
    assert only_removal(result).reason == Reason.DUPLICATE


def test_same_link_object_twice_is_still_a_duplicate() -> None:
    twice = link("p01")
    result = run(twice, twice)
    assert targets(result) == ["p01"]
    assert only_removal(result).reason == Reason.DUPLICATE


@pytest.mark.parametrize(("confidence", "detail"), [
    (0.42, "confidence 0.42 < 0.5"),
    (0.0, "confidence 0 < 0.5"),
    (-0.3, "confidence -0.3 < 0.5"),
    (None, "no confidence"),
    (math.nan, "confidence is not a number"),
])
def test_weak_or_missing_confidence_is_weak(confidence: float | None, detail: str) -> None:
    result = run(link("p01", confidence=confidence), link("p02", confidence=0.5))
    assert targets(result) == ["p02"]
    removal = only_removal(result)
    assert (removal.item, removal.reason, removal.detail) == ("p01", Reason.WEAK, detail)


def test_min_confidence_is_a_setting() -> None:
    result = run(link("p01", confidence=0.6), link("p02", confidence=0.75),
                 settings=PruneSettings(min_confidence=0.7))
    assert targets(result) == ["p02"]
    assert only_removal(result).detail == "confidence 0.6 < 0.7"


def test_links_over_the_cap_lose_the_weakest_and_keep_their_order() -> None:
    confidences = [0.6, 0.9, 0.55, 0.8, 0.7, 0.95]
    links = [link(f"p{i:02d}", confidence=c, text=f"t{i}") for i, c in enumerate(confidences)]
    result = run(*links, settings=PruneSettings(max_links=4))
    assert targets(result) == ["p01", "p03", "p04", "p05"]
    assert [x.text for x in result.garden.inferred_links] == ["t1", "t3", "t4", "t5"]
    assert [(r.item, r.reason) for r in result.removals] == [
        ("p00", Reason.CAP), ("p02", Reason.CAP)]
    assert result.removals[0].detail == (
        "6 links exceed the cap of 4; this one has 0.6, the weakest kept has 0.7")


def test_link_cap_ties_keep_the_earlier() -> None:
    links = [link(f"p{i:02d}", confidence=0.8) for i in range(5)]
    result = run(*links, settings=PruneSettings(max_links=3))
    assert targets(result) == ["p00", "p01", "p02"]
    assert [r.item for r in result.removals] == ["p03", "p04"]


def test_default_link_cap_is_twelve() -> None:
    links = [link(f"p{i:02d}", confidence=0.5 + i / 100) for i in range(15)]
    result = run(*links)
    assert targets(result) == [f"p{i:02d}" for i in range(3, 15)]
    assert {r.reason for r in result.removals} == {Reason.CAP}


def test_rules_apply_in_order_and_each_item_is_removed_once() -> None:
    result = run(
        link(SLUG, "analogous", 0.1),           # self beats bad_type and weak
        link("nowhere", "analogous", 0.1),      # dangling beats bad_type and weak
        link("p01", "analogous", 0.1),          # bad_type beats weak
        link("p02", "requires", 0.1),           # human beats weak
        link("p03", "enables", 0.1),            # duplicate (of the next) beats weak
        link("p03", "enables", 0.3),            # weak
        human=(HumanLink(target="p02", type="requires"),),
    )
    assert targets(result) == []
    assert [(r.item, r.reason) for r in result.removals] == [
        (SLUG, Reason.SELF), ("nowhere", Reason.DANGLING), ("p01", Reason.BAD_TYPE),
        ("p02", Reason.HUMAN_CONFIRMED), ("p03", Reason.DUPLICATE), ("p03", Reason.WEAK)]


def test_removed_links_do_not_count_as_duplicates_or_towards_the_cap() -> None:
    result = run(link("p01", "analogous", 0.99), link("p01", "enables", 0.6),
                 link("nowhere", confidence=0.99), link("p02", confidence=0.7),
                 settings=PruneSettings(max_links=2))
    assert [(x.target, x.type) for x in result.garden.inferred_links] == [
        ("p01", "enables"), ("p02", "enables")]
    assert [r.reason for r in result.removals] == [Reason.BAD_TYPE, Reason.DANGLING]


# --- entities and communities ----------------------------------------------------------------

def entity(id_: str, relevance: float | None, text: str | None = None) -> Entity:
    return Entity(id=id_, type="concept", label=id_.title(), relevance=relevance, text=text)


def legacy_entity(id_: str) -> Entity:
    return Entity(id=id_, legacy=True, text=f"    - {id_}\n")


def community(id_: str, confidence: float | None, text: str | None = None) -> Community:
    return Community(id=id_, label=id_.title(), source="inferred", confidence=confidence,
                     text=text)


def test_duplicate_entities_keep_the_strongest_in_place() -> None:
    result = run(entities=(entity("a", 0.6, "a1"), entity("b", 0.9), entity("a", 0.8, "a2"),
                           entity("b", 0.9)))
    assert [(e.id, e.relevance, e.text) for e in result.garden.entities] == [
        ("b", 0.9, None), ("a", 0.8, "a2")]
    assert [(r.kind, r.item, r.reason, r.detail) for r in result.removals] == [
        ("entity", "a", Reason.DUPLICATE, "kept the 0.8 entity"),
        ("entity", "b", Reason.DUPLICATE, "kept the 0.9 entity")]


def test_entities_over_the_cap_keep_the_strongest_legacy_counting_as_zero() -> None:
    items = (legacy_entity("plain"), entity("a", 0.5), entity("b", 0.9), entity("c", 0.7),
             entity("d", None))
    result = run(entities=items, settings=PruneSettings(max_entities=3))
    assert [e.id for e in result.garden.entities] == ["a", "b", "c"]
    assert [(r.kind, r.item, r.reason) for r in result.removals] == [
        ("entity", "plain", Reason.CAP), ("entity", "d", Reason.CAP)]


def test_legacy_entities_are_kept_under_the_cap_with_their_text() -> None:
    items = (legacy_entity("mutual-aid"), entity("a", 0.5, "a\n"), legacy_entity("altruism"))
    result = run(link("p01"), entities=items)
    assert result.garden.entities == items
    assert [e.text for e in result.garden.entities] == [x.text for x in items]
    assert not result.changed


def test_legacy_duplicate_loses_to_a_scored_entity() -> None:
    result = run(entities=(legacy_entity("a"), entity("a", 0.4)))
    assert [(e.id, e.legacy) for e in result.garden.entities] == [("a", False)]
    assert only_removal(result).detail == "kept the 0.4 entity"


def test_default_entity_cap_is_twelve() -> None:
    items = tuple(entity(f"e{i:02d}", i / 20) for i in range(14))
    result = run(entities=items)
    assert [e.id for e in result.garden.entities] == [f"e{i:02d}" for i in range(2, 14)]


def test_duplicate_communities_keep_the_strongest() -> None:
    result = run(communities=(community("x", 0.9), community("x", 0.95), community("y", 0.5)))
    assert [(c.id, c.confidence) for c in result.garden.communities] == [
        ("x", 0.95), ("y", 0.5)]
    removal = only_removal(result)
    assert (removal.kind, removal.item, removal.reason) == ("community", "x", Reason.DUPLICATE)


def test_communities_over_the_cap_keep_the_strongest() -> None:
    items = (community("a", 0.7), Community(id="plain", legacy=True), community("b", 0.9),
             community("c", 0.8), community("d", 0.6), community("e", 0.95), community("f", 0.85))
    result = run(communities=items)
    assert [c.id for c in result.garden.communities] == ["a", "b", "c", "e", "f"]
    assert [(r.item, r.reason) for r in result.removals] == [
        ("plain", Reason.CAP), ("d", Reason.CAP)]


# --- stale: entities and communities the pattern's text has no word of left -----------------

BEFORE = pattern_text(["Distributed Leadership Design",
                       "Leadership spread across roles, as in Sociocracy's consent rounds.",
                       "Stewardship of the commons needs shared responsibility."])
AFTER = pattern_text(["Distributed Leadership Design",
                      "Leadership spread across roles, decided by consent rounds.",
                      "Stewardship of the commons needs shared responsibility."])
"""The same pattern before and after a person took Sociocracy out of its text."""


def stale_run(text: PatternText, entities: tuple[Entity, ...] = (),
              communities: tuple[Community, ...] = ()) -> PruneResult:
    garden = Garden(entities=entities, communities=communities)
    return prune(garden, slug=SLUG, library=LIBRARY, human=(), today=TODAY, text=text)


def test_an_entity_whose_label_left_the_text_is_stale() -> None:
    items = (Entity(id="sociocracy", type="framework", label="Sociocracy", relevance=0.9,
                    text="s\n"),
             Entity(id="shared-responsibility", label="Shared Responsibility", relevance=0.8))
    assert not stale_run(BEFORE, items).changed
    result = stale_run(AFTER, items)
    assert result.garden.entities == items[1:]
    assert [(r.kind, r.item, r.reason, r.detail) for r in result.removals] == [
        ("entity", "sociocracy", Reason.STALE,
         "no word of its label 'Sociocracy' or id 'sociocracy' is left in the pattern's "
         "title, summary or body")]


def test_one_word_left_in_the_text_keeps_an_item() -> None:
    # Curated abstractions say in one word what the text says in others; see prune's doc.
    items = (Entity(id="commons-governance", label="Commons Governance", relevance=0.9),
             Entity(id="resilience", label="Organizational Resilience (Walker)", relevance=0.6),
             Entity(id="stewards", label="Stewards", relevance=0.5))  # plural folded
    assert stale_run(AFTER, items).garden.entities == items[:1] + items[2:]
    assert not stale_run(AFTER, items[:1] + items[2:]).changed


def test_unlabelled_and_legacy_items_are_never_stale() -> None:
    items = (Entity(id="sociocracy", legacy=True, text="    - sociocracy\n"),
             Entity(id="holacracy", relevance=0.7))
    comms = (Community(id="holacracy-circles", confidence=0.8),)
    assert not stale_run(AFTER, items, comms).changed


def test_a_community_whose_words_left_the_text_is_stale_and_comes_before_the_cap() -> None:
    comms = (Community(id="commons", label="Commons & Governance", confidence=0.9),
             Community(id="sociocratic-circles", label="Sociocracy Circles", confidence=0.95))
    result = stale_run(AFTER, communities=comms)
    assert result.garden.communities == comms[:1]
    assert [(r.kind, r.item, r.reason) for r in result.removals] == [
        ("community", "sociocratic-circles", Reason.STALE)]


def test_without_a_text_nothing_is_stale() -> None:
    items = (Entity(id="kebab-case", label="kebab-case", relevance=0.9),)
    garden = Garden(entities=items)
    result = prune(garden, slug=SLUG, library=LIBRARY, human=(), today=TODAY)
    assert result.garden is garden and not result.changed


# --- the garden as a whole -------------------------------------------------------------------

def test_nothing_to_prune_returns_the_same_garden_unchanged() -> None:
    garden = Garden(last_pruned=None, inferred_links=(link("p01", text="x\n"),),
                    entities=(entity("a", 0.9, "e\n"),), communities=(community("c", 0.9),))
    result = prune(garden, slug=SLUG, library=LIBRARY, human=(), today=TODAY)
    assert result.garden is garden
    assert result.garden.last_pruned is None
    assert (result.changed, result.removals, result.renames, result.conflicts) == (
        False, (), (), ())


def test_untouched_items_keep_their_text_and_other_keys_survive() -> None:
    garden = Garden(
        last_pruned=date(2025, 12, 1),
        inferred_links=(link("p01", text="l1\n"), link("nowhere", text="l2\n"),
                        link("p02", text="l3\n")),
        entities=(entity("a", 0.9, "e1\n"), entity("a", 0.2, "e2\n")),
        communities=(community("c", 0.9, "c1\n"),),
        vitality_reasoning="Sustains the commons.",
        extra=(("note", "note: kept\n"),),
    )
    result = prune(garden, slug=SLUG, library=LIBRARY, human=(), today=TODAY)
    pruned = result.garden
    assert [x.text for x in pruned.inferred_links] == ["l1\n", "l3\n"]
    assert [x.text for x in pruned.entities] == ["e1\n"]
    assert pruned.communities[0] is garden.communities[0]
    assert pruned.vitality_reasoning == "Sustains the commons."
    assert pruned.extra == (("note", "note: kept\n"),)
    assert pruned.last_pruned == TODAY


def test_pruning_twice_changes_nothing_the_second_time() -> None:
    garden = Garden(
        last_pruned=date(2025, 12, 1),
        inferred_links=tuple([link(SLUG), link("p01", "enabler"), link("p02", "analogous"),
                              link("p03", confidence=None), link("p04"), link("p04", "tools"),
                              link("p05", "requires")]
                             + [link(f"p{i:02d}", confidence=0.5 + i / 100)
                                for i in range(6, 25)]),
        entities=(*(entity(f"e{i}", i / 20) for i in range(15)), legacy_entity("e3")),
        communities=tuple(community(f"c{i}", 0.9) for i in range(7)),
    )
    human = (HumanLink(target="p05", type="enables"),)
    first = prune(garden, slug=SLUG, library=LIBRARY, human=human, today=TODAY)
    assert first.changed and first.renames and first.conflicts
    second = prune(first.garden, slug=SLUG, library=LIBRARY, human=human, today=LATER)
    assert second.garden is first.garden
    assert second.garden.last_pruned == TODAY
    assert (second.changed, second.removals, second.renames, second.conflicts) == (
        False, (), (), ())


@pytest.mark.parametrize("bad", [
    {"min_confidence": 1.5}, {"min_confidence": -0.1}, {"max_links": -1},
    {"max_entities": -2}, {"max_communities": -1},
])
def test_settings_refuse_impossible_values(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        PruneSettings(**bad)


def test_zero_cap_removes_every_item_of_its_kind() -> None:
    result = run(link("p01"), link("p02"), settings=PruneSettings(max_links=0))
    assert targets(result) == []
    assert [r.detail for r in result.removals] == [
        "2 links exceed the cap of 0; this one has 0.8"] * 2


# --- the real corpus -------------------------------------------------------------------------

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
_FRONT = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S)
_HUMAN_TYPES = (*LINK_TYPES, *HUMAN_ONLY_TYPES)
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""yaml.safe_load's loader, in C where libyaml is there (the corpus is 330 files)."""


def _front_matter(path: Path) -> dict[str, Any] | None:
    """The parsed front matter, or None for a file a library reader would refuse."""
    match = _FRONT.match(path.read_text(encoding="utf-8"))
    if match is None:
        return None
    try:
        data = yaml.load(match.group(1), Loader=_SAFE_LOADER)
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def _garden(raw: dict[str, Any]) -> Garden:
    entities = tuple(Entity(id=e, legacy=True) if isinstance(e, str) else Entity(
        id=str(e["id"]), type=e.get("type"), label=e.get("label"), relevance=e.get("relevance"))
        for e in raw.get("entities") or ())
    communities = tuple(Community(id=c, legacy=True) if isinstance(c, str) else Community(
        id=str(c["id"]), label=c.get("label"), source=c.get("source"),
        confidence=c.get("confidence"))
        for c in raw.get("communities") or ())
    links = tuple(Link(target=str(x["target"]), type=x.get("type"),
                       confidence=x.get("confidence"), reason=x.get("reason"))
                  for x in raw.get("inferred_links") or ())
    return Garden(last_pruned=raw.get("last_pruned"), entities=entities,
                  communities=communities, inferred_links=links)


def _human(data: dict[str, Any], slugs: set[str], ids: dict[str, str]) -> tuple[HumanLink, ...]:
    """Human relationships of both layouts (v7.1 ``relationships:`` and the flat one)."""
    groups: list[tuple[str, Any]] = []
    nested = data.get("relationships")
    if isinstance(nested, dict):
        groups += [(k, v) for k, v in nested.items() if k in _HUMAN_TYPES]
    groups += [(k, data[k]) for k in _HUMAN_TYPES if k in data]
    found: list[HumanLink] = []
    for type_, items in groups:
        for item in items or ():
            ref = str(item.get("slug") or item.get("id")) if isinstance(item, dict) else str(item)
            target = ref if ref in slugs else ids.get(ref)
            found.append(HumanLink(target=target or ref, type=type_, resolved=target is not None))
    return tuple(found)


def _library(folder: Path) -> dict[Path, dict[str, Any]]:
    files = {}
    for path in sorted(folder.rglob("*.md")):
        data = _front_matter(path)
        if data is not None and path.name != "README.md":
            files[path] = data
    return files


@pytest.mark.corpus
def test_corpus_gardens_prune_to_rule_abiding_fixed_points() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"../shared/corpus not found: {CORPUS} is not a directory")
    settings = PruneSettings()
    reasons: Counter[Reason] = Counter()
    renamed = gardens = 0
    for folder in sorted(p for p in CORPUS.iterdir() if p.is_dir()):
        files = _library(folder)
        slug_of = {path: str(data.get("slug") or path.stem) for path, data in files.items()}
        slugs = set(slug_of.values())
        ids = {str(d["id"]): slug_of[p] for p, d in files.items() if "id" in d}
        for path, data in files.items():
            raw = data.get("graph_garden")
            if not isinstance(raw, dict):
                continue
            gardens += 1
            slug = slug_of[path]
            garden = _garden(raw)
            human = _human(data, slugs, ids)
            first = prune(garden, slug=slug, library=slugs, human=human, today=TODAY)
            second = prune(first.garden, slug=slug, library=slugs, human=human, today=LATER)
            where = str(path.relative_to(CORPUS))
            assert second.garden is first.garden and not second.changed, where
            assert first.changed == bool(first.removals or first.renames), where
            assert first.garden.last_pruned == (TODAY if first.changed else garden.last_pruned)

            kept = first.garden.inferred_links
            confirmed = {h.target for h in human if h.resolved}
            for item in kept:
                assert item.target != slug and item.target in slugs, where
                assert item.type in LINK_TYPES, where
                assert item.target not in confirmed, where
                assert item.confidence is not None, where
                assert item.confidence >= settings.min_confidence, where
            assert len({x.target for x in kept}) == len(kept) <= settings.max_links, where
            ents, comms = first.garden.entities, first.garden.communities
            assert len({e.id for e in ents}) == len(ents) <= settings.max_entities, where
            assert len({c.id for c in comms}) == len(comms) <= settings.max_communities, where

            # Every item that went is accounted for once, and survivors keep their order.
            by_kind = Counter(r.kind for r in first.removals)
            assert len(garden.inferred_links) - len(kept) == by_kind["link"], where
            assert len(garden.entities) - len(ents) == by_kind["entity"], where
            assert len(garden.communities) - len(comms) == by_kind["community"], where
            assert _is_subsequence([x.target for x in kept],
                                   [x.target for x in garden.inferred_links]), where
            assert _is_subsequence(list(ents), list(garden.entities)), where
            reasons.update(r.reason for r in first.removals)
            renamed += len(first.renames)
    assert gardens > 100, f"only {gardens} gardens found under {CORPUS}"
    # The corpus README names these defects of the existing gardens; pruning must meet them.
    # Links with no type are no longer removed for it: they get the library's default type
    # (tests/test_legacy_links.py), so the corpus's bad types are all renamed or kept.
    assert reasons[Reason.DANGLING] and renamed, reasons


def _is_subsequence(short: list[Any], long: list[Any]) -> bool:
    rest = iter(long)
    return all(any(x == y for y in rest) for x in short)


def test_settled_items_are_not_judged_stale_only_new_ones() -> None:
    """A pass over a text nobody edited cannot have lost a curated item's words: the
    ``settled`` ids (there before the pass) stay, a new item without a word still goes."""
    items = (Entity(id="sociocracy", label="Sociocracy", relevance=0.9),
             Entity(id="kebab-case", label="kebab-case", relevance=0.9))
    garden = Garden(entities=items)
    result = prune(garden, slug=SLUG, library=LIBRARY, human=(), today=TODAY,
                   text=AFTER, settled={"sociocracy"})
    assert [e.id for e in result.garden.entities] == ["sociocracy"]
    assert [(r.item, r.reason) for r in result.removals] == [("kebab-case", Reason.STALE)]
