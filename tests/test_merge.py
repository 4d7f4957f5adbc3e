"""Merge policy: what a re-proposal keeps, replaces and adds, and that re-runs are no-ops."""

from __future__ import annotations

import datetime as dt

import pytest

from gardener.model import Community, Entity, Garden, Link
from gardener.steps.merge import close, describe, merge, merge_links


def old_link(target: str, type_: str, confidence: float, reason: str = "old reason") -> Link:
    """A link as read from a file: it carries its exact lines."""
    text = (f"    - target: {target}\n      type: {type_}\n"
            f"      confidence: {confidence}\n      reason: \"{reason}\"\n")
    return Link(target=target, type=type_, confidence=confidence, reason=reason, text=text)


def new_link(target: str, type_: str, confidence: float, reason: str = "new reason") -> Link:
    return Link(target=target, type=type_, confidence=confidence, reason=reason)


def old_entity(id_: str, type_: str, label: str, relevance: float) -> Entity:
    text = (f"    - id: {id_}\n      type: {type_}\n      label: \"{label}\"\n"
            f"      relevance: {relevance}\n")
    return Entity(id=id_, type=type_, label=label, relevance=relevance, text=text)


def old_community(id_: str, label: str, confidence: float, source: str = "inferred") -> Community:
    text = (f"    - id: {id_}\n      label: \"{label}\"\n      source: {source}\n"
            f"      confidence: {confidence}\n")
    return Community(id=id_, label=label, source=source, confidence=confidence, text=text)


EXISTING = Garden(
    last_pruned=dt.date(2026, 2, 19),
    entities=(
        old_entity("distributed-leadership", "concept", "Distributed Leadership", 1.0),
        old_entity("sociocracy", "framework", "Sociocracy", 0.7),
        old_entity("holacracy", "framework", "Holacracy", 0.6),
    ),
    communities=(old_community("organizational-design", "Organizational Design & Systems", 0.95),),
    inferred_links=(
        old_link("adaptive-facilitation", "complementary", 0.88),
        old_link("active-listening-depth", "requires", 0.7),
        old_link("achievement-celebration", "enables", 0.6),
    ),
    vitality_reasoning="Old reasoning.",
    extra=(("notes", "  notes: kept verbatim\n"),),
)


def by_target(garden: Garden) -> dict[str, Link]:
    return {link.target: link for link in garden.inferred_links}


def test_close_is_strict_at_the_tolerance_despite_float_noise() -> None:
    assert 0.9 - 0.8 < 0.1  # the float noise the tolerance has to see through
    assert not close(0.8, 0.9)
    assert not close(0.9, 0.8)
    assert close(0.8, 0.89)
    assert close(None, None)
    assert not close(None, 0.5)
    assert not close(float("nan"), 0.5)


def test_small_confidence_move_keeps_the_existing_link_and_its_text() -> None:
    proposed = Garden(inferred_links=(
        new_link("adaptive-facilitation", "complementary", 0.84, "rephrased by the model"),))
    merged = merge(EXISTING, proposed)
    kept = by_target(merged)["adaptive-facilitation"]
    assert kept.confidence == 0.88
    assert kept.reason == "old reason"
    assert kept.text == EXISTING.inferred_links[0].text


@pytest.mark.parametrize("proposal", [
    new_link("adaptive-facilitation", "enables", 0.88),       # type changed
    new_link("adaptive-facilitation", "complementary", 0.78),  # moved by exactly 0.1
    new_link("adaptive-facilitation", "complementary", 0.99),  # moved by more than 0.1
])
def test_type_change_or_big_move_replaces_the_link(proposal: Link) -> None:
    merged = merge(EXISTING, Garden(inferred_links=(proposal,)))
    links = [link for link in merged.inferred_links if link.target == "adaptive-facilitation"]
    assert links == [proposal]
    assert links[0].text is None
    assert links[0].reason == "new reason"


def test_new_links_are_added_and_unproposed_links_kept() -> None:
    proposed = Garden(inferred_links=(new_link("accountability-partnership", "enables", 0.75),))
    merged = merge(EXISTING, proposed)
    links = by_target(merged)
    assert set(links) == {"adaptive-facilitation", "active-listening-depth",
                          "achievement-celebration", "accountability-partnership"}
    for old in EXISTING.inferred_links:
        assert links[old.target].text == old.text


def test_one_proposed_link_replaces_every_existing_link_to_its_target() -> None:
    existing = Garden(inferred_links=(
        old_link("x", "enables", 0.5), old_link("x", "requires", 0.9), old_link("y", "tools", 0.6),
        old_link("y", "tools", 0.55)))
    merged = merge_links(existing.inferred_links, [new_link("x", "requires", 0.95)])
    assert [(link.target, link.type, link.text is not None) for link in merged] == [
        ("x", "requires", True), ("y", "tools", True), ("y", "tools", True)]


def test_agreeing_existing_link_closest_in_confidence_is_kept() -> None:
    far, near = old_link("x", "enables", 0.62), old_link("x", "enables", 0.7)
    merged = merge_links([far, near], [new_link("x", "enables", 0.69)])
    assert merged == (near,)
    assert merged[0].text == near.text


def test_repeated_target_in_proposal_keeps_its_strongest() -> None:
    merged = merge_links([], [new_link("x", "enables", 0.6), new_link("x", "requires", 0.8),
                              new_link("x", "tools", 0.8)])
    assert [(link.type, link.confidence) for link in merged] == [("requires", 0.8)]


def test_entities_are_replaced_but_unchanged_ones_keep_their_text() -> None:
    proposed = Garden(entities=(
        Entity(id="distributed-leadership", type="concept", label="distributed  leadership",
               relevance=0.95),                                                # same meaning
        Entity(id="sociocracy", type="practice", label="Sociocracy", relevance=0.7),  # new type
        Entity(id="consent-decision", type="practice", label="Consent", relevance=0.8),  # new
    ))
    merged = merge(EXISTING, proposed)
    ents = {e.id: e for e in merged.entities}
    assert set(ents) == {"distributed-leadership", "sociocracy", "consent-decision"}
    assert ents["distributed-leadership"].text == EXISTING.entities[0].text
    assert ents["distributed-leadership"].label == "Distributed Leadership"
    assert ents["sociocracy"].type == "practice"
    assert ents["sociocracy"].text is None


def test_entity_with_changed_label_or_big_relevance_move_is_replaced() -> None:
    proposed = Garden(entities=(
        Entity(id="distributed-leadership", type="concept", label="Shared Leadership",
               relevance=1.0),
        Entity(id="holacracy", type="framework", label="Holacracy", relevance=0.5),
    ))
    merged = merge(EXISTING, proposed)
    assert all(e.text is None for e in merged.entities)
    assert {e.id: e.relevance for e in merged.entities} == {
        "distributed-leadership": 1.0, "holacracy": 0.5}


def test_legacy_string_entity_is_upgraded_even_when_equal() -> None:
    legacy = Entity(id="sociocracy", legacy=True, text="    - sociocracy\n")
    proposal = Entity(id="sociocracy")
    merged = merge(Garden(entities=(legacy,)), Garden(entities=(proposal,)))
    assert merged.entities[0].text is None
    assert merged.entities[0].legacy is False


def test_communities_keep_text_when_unchanged_and_change_with_source() -> None:
    same = Community(id="organizational-design", label="Organizational Design & Systems",
                     source="inferred", confidence=0.9)
    merged = merge(EXISTING, Garden(communities=(same,)))
    assert merged.communities[0].text == EXISTING.communities[0].text
    moved = same.model_copy(update={"source": "taxonomy"})
    merged = merge(EXISTING, Garden(communities=(moved,)))
    assert merged.communities == (moved,)
    assert merged.communities[0].text is None


def test_order_is_strongest_first_then_key() -> None:
    proposed = Garden(
        entities=(Entity(id="b", relevance=0.5), Entity(id="a", relevance=0.5),
                  Entity(id="c", relevance=0.9), Entity(id="d")),
        inferred_links=(new_link("zeta", "enables", 0.9), new_link("alpha", "enables", 0.6),
                        new_link("beta", "tools", 0.6)),
    )
    merged = merge(None, proposed)
    assert [e.id for e in merged.entities] == ["c", "a", "b", "d"]
    assert [link.target for link in merged.inferred_links] == ["zeta", "alpha", "beta"]


def test_kept_item_sorts_by_its_own_strength() -> None:
    existing = Garden(inferred_links=(old_link("a", "enables", 0.75),
                                      old_link("b", "enables", 0.8)))
    proposed = Garden(inferred_links=(new_link("a", "enables", 0.84),
                                      new_link("b", "enables", 0.78)))
    merged = merge(existing, proposed)
    assert [(link.target, link.confidence) for link in merged.inferred_links] == [
        ("b", 0.8), ("a", 0.75)]


PROPOSALS = [
    Garden(
        entities=(Entity(id="distributed-leadership", type="concept",
                         label="Distributed Leadership", relevance=0.93),
                  Entity(id="consent", type="practice", label="Consent", relevance=0.8),
                  Entity(id="consent", type="practice", label="Consent", relevance=0.85)),
        communities=(Community(id="organizational-design", label="Organizational Design",
                               source="inferred", confidence=0.9),),
        inferred_links=(new_link("adaptive-facilitation", "complementary", 0.8),
                        new_link("active-listening-depth", "requires", 0.75),
                        new_link("achievement-celebration", "tools", 0.6),
                        new_link("x", "enables", 0.8), new_link("x", "enables", 0.87)),
        vitality_reasoning="New reasoning.",
    ),
    Garden(),
    Garden(inferred_links=(new_link("adaptive-facilitation", "complementary", float("nan")),)),
]


@pytest.mark.parametrize("proposed", PROPOSALS)
@pytest.mark.parametrize("existing", [EXISTING, None])
def test_merge_is_idempotent_texts_included(existing: Garden | None, proposed: Garden) -> None:
    once = merge(existing, proposed)
    twice = merge(once, proposed)
    assert twice == once
    for kind in ("entities", "communities", "inferred_links"):
        assert [i.text for i in getattr(twice, kind)] == [i.text for i in getattr(once, kind)]
    changes = describe(once, twice)
    for kind in ("links", "entities", "communities"):
        assert changes[kind]["added"] == changes[kind]["updated"] == []  # type: ignore[literal-required]
        assert changes[kind]["replaced"] == []  # type: ignore[literal-required]


def test_vitality_reasoning_follows_its_target() -> None:
    proposed = Garden(vitality_reasoning="New reasoning.")
    assert merge(EXISTING, proposed).vitality_reasoning == "New reasoning."
    assert merge(EXISTING, proposed, vitality_target="assessment").vitality_reasoning == (
        "Old reasoning.")
    assert merge(EXISTING, Garden()).vitality_reasoning == "Old reasoning."


def test_last_pruned_and_unknown_keys_are_kept() -> None:
    merged = merge(EXISTING, PROPOSALS[0])
    assert merged.last_pruned == dt.date(2026, 2, 19)
    assert merged.extra == EXISTING.extra
    assert merge(None, PROPOSALS[0]).last_pruned is None


def test_describe_reports_each_kind_of_change() -> None:
    merged = merge(EXISTING, PROPOSALS[0])
    changes = describe(EXISTING, merged)
    assert changes["links"] == {
        "added": ["x"], "updated": ["achievement-celebration"],
        "kept": ["adaptive-facilitation", "active-listening-depth"], "replaced": []}
    assert changes["entities"] == {
        "added": ["consent"], "updated": [], "kept": ["distributed-leadership"],
        "replaced": ["sociocracy", "holacracy"]}
    assert changes["communities"] == {
        "added": [], "updated": ["organizational-design"], "kept": [], "replaced": []}
    assert changes["vitality_reasoning"] == "updated"


def test_describe_counts_a_dropped_duplicate_as_replaced() -> None:
    existing = Garden(inferred_links=(old_link("x", "enables", 0.8), old_link("x", "tools", 0.5)))
    merged = merge(existing, Garden(inferred_links=(new_link("x", "enables", 0.8),)))
    changes = describe(existing, merged)
    assert changes["links"] == {"added": [], "updated": [], "kept": ["x"], "replaced": ["x"]}
    assert describe(None, merged)["vitality_reasoning"] == "absent"
