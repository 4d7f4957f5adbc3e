"""Merge policy: a proposal adds and refines, never degrades; re-runs are no-ops (but for
confidence convergence); the seed's curated garden survives a junk proposal."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from gardener.library.load import Entry, read_entry
from gardener.model import Community, Entity, Garden, Link, Reason, Removal
from gardener.steps.merge import (
    close,
    describe,
    merge,
    merge_links,
    merge_pass,
    toward,
    unchanged,
)
from gardener.steps.passes import own_text
from gardener.steps.prune import PruneResult, PruneSettings, prune

SEED_NAME = "distributed-leadership-design.md"
TODAY = dt.date(2026, 3, 1)


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


@pytest.mark.parametrize("proposed", [0.78, 0.99, 0.5])  # moved by 0.1 exactly, or more
def test_big_confidence_move_goes_halfway_and_keeps_type_and_reason(proposed: float) -> None:
    merged = merge(EXISTING, Garden(inferred_links=(
        new_link("adaptive-facilitation", "complementary", proposed),)))
    links = [link for link in merged.inferred_links if link.target == "adaptive-facilitation"]
    assert len(links) == 1
    assert links[0].confidence == toward(0.88, proposed)
    assert abs(links[0].confidence - (0.88 + proposed) / 2) <= 0.005
    assert (links[0].type, links[0].reason, links[0].text) == ("complementary", "old reason", None)


def test_toward_takes_the_new_value_when_the_old_vouches_for_nothing() -> None:
    assert toward(None, 0.7) == 0.7
    assert toward(float("nan"), 0.7) == 0.7
    assert toward(0.5, 0.8) == 0.65


def test_another_type_without_evidence_leaves_the_link_as_it_is() -> None:
    proposal = Garden(inferred_links=(new_link("adaptive-facilitation", "enables", 0.6),))
    for evidence in (None, {}, {"adaptive-facilitation": "   "}):
        result = merge_pass(EXISTING, proposal, evidence=evidence)
        assert result.garden.inferred_links == EXISTING.inferred_links
        assert [x.text for x in result.garden.inferred_links] == [
            x.text for x in EXISTING.inferred_links]
        assert result.retyped == ()


def test_another_type_with_evidence_retypes_the_link_in_place() -> None:
    proposal = new_link("adaptive-facilitation", "enables", 0.7)
    result = merge_pass(EXISTING, Garden(inferred_links=(proposal,)),
                        evidence={"adaptive-facilitation": "facilitation enables the shift"})
    assert result.garden.inferred_links[0] == proposal  # the new claim, in the old place
    assert result.garden.inferred_links[0].text is None
    assert result.garden.inferred_links[1:] == EXISTING.inferred_links[1:]
    assert result.retyped == (Removal(
        kind="link", item="adaptive-facilitation", reason=Reason.RETYPED,
        detail="was 'complementary', now 'enables' with evidence: "
               "\"facilitation enables the shift\""),)


def test_a_legacy_type_name_is_the_same_type() -> None:
    existing = (old_link("x", "enabler", 0.8),)
    merged, retyped = merge_links(existing, [new_link("x", "enables", 0.75)],
                                  {"x": "quoted from the pattern"})
    assert merged == existing and merged[0].text == existing[0].text and retyped == ()


def test_new_links_follow_the_existing_ones_which_stay_as_they_are() -> None:
    proposed = Garden(inferred_links=(new_link("b-new", "enables", 0.75),
                                      new_link("a-new", "tools", 0.75),
                                      new_link("c-new", "tools", 0.9)))
    merged = merge(EXISTING, proposed)
    assert [x.target for x in merged.inferred_links] == [
        "adaptive-facilitation", "active-listening-depth", "achievement-celebration",
        "c-new", "a-new", "b-new"]
    assert merged.inferred_links[:3] == EXISTING.inferred_links
    assert [x.text for x in merged.inferred_links[:3]] == [
        x.text for x in EXISTING.inferred_links]


def test_a_proposal_speaks_to_the_closest_existing_link_of_its_type() -> None:
    existing = (old_link("x", "requires", 0.9), old_link("x", "enables", 0.5),
                old_link("x", "enables", 0.62), old_link("y", "tools", 0.6))
    merged, _ = merge_links(existing, [new_link("x", "enables", 0.95)])
    assert [(x.type, x.confidence, x.text is not None) for x in merged] == [
        ("requires", 0.9, True), ("enables", 0.5, True), ("enables", 0.78, False),
        ("tools", 0.6, True)]  # the duplicates are pruning's to remove, with a reason


def test_repeated_target_in_proposal_keeps_its_strongest() -> None:
    merged, _ = merge_links([], [new_link("x", "enables", 0.6), new_link("x", "requires", 0.8),
                                 new_link("x", "tools", 0.8)])
    assert [(link.type, link.confidence) for link in merged] == [("requires", 0.8)]


def test_re_proposed_entities_keep_label_type_strength_and_text() -> None:
    proposed = Garden(entities=(
        Entity(id="distributed-leadership", type="framework", label="Shared Leadership",
               relevance=0.5),                                     # another answer, same id
        Entity(id="consent-decision", type="practice", label="Consent", relevance=0.8),  # new
    ))
    merged = merge(EXISTING, proposed)
    assert merged.entities[:3] == EXISTING.entities  # nothing replaced, nothing dropped
    assert [e.text for e in merged.entities[:3]] == [e.text for e in EXISTING.entities]
    assert merged.entities[3] == proposed.entities[1]


def test_a_re_proposal_fills_only_the_fields_an_item_lacks() -> None:
    bare = Entity(id="sociocracy", label="Sociocracy", text="    - id: sociocracy\n")
    merged = merge(Garden(entities=(bare,)), Garden(entities=(
        Entity(id="sociocracy", type="framework", label="Other", relevance=0.7),)))
    assert merged.entities == (Entity(id="sociocracy", type="framework", label="Sociocracy",
                                      relevance=0.7),)
    assert merged.entities[0].text is None


def test_legacy_string_entity_is_upgraded_even_when_equal() -> None:
    legacy = Entity(id="sociocracy", legacy=True, text="    - sociocracy\n")
    proposal = Entity(id="sociocracy")
    merged = merge(Garden(entities=(legacy,)), Garden(entities=(proposal,)))
    assert merged.entities[0].text is None
    assert merged.entities[0].legacy is False


def test_re_proposed_communities_keep_source_and_text() -> None:
    moved = Community(id="organizational-design", label="Org Design", source="taxonomy",
                      confidence=0.5)
    merged = merge(EXISTING, Garden(communities=(moved,)))
    assert merged.communities == EXISTING.communities
    assert merged.communities[0].text == EXISTING.communities[0].text


def test_new_items_come_strongest_first_then_by_key() -> None:
    proposed = Garden(
        entities=(Entity(id="b", relevance=0.5), Entity(id="a", relevance=0.5),
                  Entity(id="c", relevance=0.9), Entity(id="d")),
        inferred_links=(new_link("zeta", "enables", 0.9), new_link("alpha", "enables", 0.6),
                        new_link("beta", "tools", 0.6)),
    )
    merged = merge(None, proposed)
    assert [e.id for e in merged.entities] == ["c", "a", "b", "d"]
    assert [link.target for link in merged.inferred_links] == ["zeta", "alpha", "beta"]


def test_existing_items_keep_their_places() -> None:
    existing = Garden(inferred_links=(old_link("a", "enables", 0.75),
                                      old_link("b", "enables", 0.8)))
    proposed = Garden(inferred_links=(new_link("a", "enables", 0.84),
                                      new_link("b", "enables", 0.78)))
    merged = merge(existing, proposed)
    assert merged.inferred_links == existing.inferred_links


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
        "added": ["x"], "updated": [],
        "kept": ["adaptive-facilitation", "active-listening-depth", "achievement-celebration"],
        "replaced": []}
    assert changes["entities"] == {
        "added": ["consent"], "updated": [],
        "kept": ["distributed-leadership", "sociocracy", "holacracy"], "replaced": []}
    assert changes["communities"] == {
        "added": [], "updated": [], "kept": ["organizational-design"], "replaced": []}
    assert changes["vitality_reasoning"] == "updated"
    moved = merge(EXISTING, Garden(inferred_links=(
        new_link("achievement-celebration", "enables", 0.9),)))
    assert describe(EXISTING, moved)["links"]["updated"] == ["achievement-celebration"]


def test_describe_counts_a_dropped_duplicate_as_replaced() -> None:
    existing = Garden(inferred_links=(old_link("x", "enables", 0.8), old_link("x", "tools", 0.5)))
    merged = Garden(inferred_links=existing.inferred_links[:1])  # as pruning leaves it
    changes = describe(existing, merged)
    assert changes["links"] == {"added": [], "updated": [], "kept": ["x"], "replaced": ["x"]}
    assert describe(None, merged)["vitality_reasoning"] == "absent"


def test_unchanged_counts_the_items_left_exactly_as_they_were() -> None:
    proposed = Garden(
        entities=(Entity(id="consent", label="Consent", relevance=0.8),),
        inferred_links=(new_link("adaptive-facilitation", "complementary", 0.5),  # moves
                        new_link("active-listening-depth", "requires", 0.72)))   # stays
    merged = merge(EXISTING, proposed)
    assert unchanged(EXISTING, merged) == {"links": 2, "entities": 3, "communities": 1}
    assert unchanged(None, merged) == {"links": 0, "entities": 0, "communities": 0}
    assert unchanged(EXISTING, EXISTING) == {"links": 3, "entities": 3, "communities": 1}


def test_repeated_merges_converge_on_the_proposed_confidence() -> None:
    proposal = Garden(inferred_links=(new_link("adaptive-facilitation", "complementary", 0.0),))
    garden: Garden = EXISTING
    seen = []
    for _ in range(6):
        garden = merge(garden, proposal)
        seen.append(by_target(garden)["adaptive-facilitation"].confidence)
    assert seen == [0.44, 0.22, 0.11, 0.06, 0.06, 0.06]  # halving until within TOLERANCE
    assert merge(garden, proposal) == garden


# --- the seed pattern: a weak model over a good garden, a strong one over an empty garden -----

SEED = Path(__file__).resolve().parents[1].parent / "shared" / "seed" / SEED_NAME
REPO_SEED = Path(__file__).resolve().parents[1] / "patterns" / SEED_NAME
JUNK = Garden(
    entities=(Entity(id="kebab-case", type="concept", label="kebab-case", relevance=0.7),
              Entity(id="distribution-style-system-123456789012345", type="concept",
                     label="Distribution Style System", relevance=0.6)),
    communities=(Community(id="domain", label="domain", source="inferred", confidence=0.6),),
)
"""What the bundled SmolLM2-135M wrote over the seed in issue 19's demo."""


def seed_entry() -> Entry:
    if not SEED.is_file():
        pytest.skip(f"the seed pattern is not there: {SEED} is not a file")
    assert SEED.read_bytes() == REPO_SEED.read_bytes(), "patterns/ holds another seed"
    entry = read_entry(SEED)
    assert entry is not None and entry.pattern.garden is not None
    return entry


def garden_seed(entry: Entry, proposed: Garden, settings: PruneSettings | None = None,
                evidence: dict[str, str] | None = None) -> tuple[Garden, PruneResult]:
    """Merge and prune as a pass does, against every seed target as the library."""
    p = entry.pattern
    settings = settings or PruneSettings()
    merging = merge_pass(p.garden, proposed, evidence=evidence)
    library = {p.slug, *(x.target for x in merging.garden.inferred_links)}
    result = prune(merging.garden, slug=p.slug, library=library, human=(), today=TODAY,
                   settings=settings, text=own_text(p))
    return merging.garden, result


def test_the_seed_keeps_its_curated_garden_under_a_junk_proposal() -> None:
    entry = seed_entry()
    old = entry.pattern.garden
    assert old is not None and (len(old.entities), len(old.communities)) == (8, 4)
    _, result = garden_seed(entry, JUNK)
    new = result.garden
    assert new.entities[:8] == old.entities and new.communities[:4] == old.communities
    assert [e.text for e in new.entities[:8]] == [e.text for e in old.entities]
    # Below the curated items, within the caps; "kebab-case" has no word in the text.
    assert [e.id for e in new.entities[8:]] == ["distribution-style-system-123456789012345"]
    assert [c.id for c in new.communities[4:]] == ["domain"]
    assert new.inferred_links == old.inferred_links
    assert [x.text for x in new.inferred_links] == [x.text for x in old.inferred_links]
    assert [(r.item, r.reason) for r in result.removals if r.kind != "link"] == [
        ("kebab-case", Reason.STALE)]
    assert unchanged(old, new) == {"links": len(old.inferred_links), "entities": 8,
                                   "communities": 4}


def test_at_the_caps_the_junk_is_what_leaves() -> None:
    entry = seed_entry()
    old = entry.pattern.garden
    assert old is not None
    _, result = garden_seed(entry, JUNK, PruneSettings(max_entities=8, max_communities=4))
    assert result.garden.entities == old.entities
    assert result.garden.communities == old.communities
    gone = [(r.kind, r.item, r.reason) for r in result.removals if r.kind != "link"]
    assert gone == [("entity", "kebab-case", Reason.STALE),
                    ("entity", "distribution-style-system-123456789012345", Reason.CAP),
                    ("community", "domain", Reason.CAP)]


def test_a_tie_at_the_cap_keeps_the_existing_item() -> None:
    entry = seed_entry()
    old = entry.pattern.garden
    assert old is not None
    weakest = min(old.entities, key=lambda e: e.strength)
    rival = Entity(id="leadership-rival", type="concept", label="Leadership",
                   relevance=weakest.relevance)
    _, result = garden_seed(entry, Garden(entities=(rival,)), PruneSettings(max_entities=8))
    assert result.garden.entities == old.entities
    assert [(r.item, r.reason) for r in result.removals if r.kind == "entity"] == [
        ("leadership-rival", Reason.CAP)]


def test_an_empty_garden_is_filled_up_to_the_caps() -> None:
    entry = seed_entry()
    empty = entry.pattern.model_copy(update={"garden": Garden()})
    words = ["leadership", "responsibility", "resilience", "stewardship", "facilitation",
             "decision", "systems", "commons", "governance", "coordination", "trust",
             "accountability", "autonomy", "power"]
    proposal = Garden(
        entities=tuple(Entity(id=w, type="concept", label=w.title(), relevance=0.99 - i / 100)
                       for i, w in enumerate(words)),
        communities=tuple(Community(id=w, label=w.title(), source="inferred",
                                    confidence=0.9 - i / 100) for i, w in enumerate(words[:7])),
        inferred_links=tuple(new_link(f"target-{i:02d}", "enables", 0.95 - i / 100)
                             for i in range(15)))
    _, result = garden_seed(Entry(doc=entry.doc, pattern=empty), proposal)
    new = result.garden
    assert [e.id for e in new.entities] == words[:12]
    assert [c.id for c in new.communities] == words[:5]
    assert [x.target for x in new.inferred_links] == [f"target-{i:02d}" for i in range(12)]
    assert {r.reason for r in result.removals} == {Reason.CAP}
    assert len(result.removals) == 2 + 2 + 3


def test_the_seed_retypes_a_link_only_with_evidence() -> None:
    entry = seed_entry()
    old = entry.pattern.garden
    assert old is not None
    first = old.inferred_links[0]
    other = "requires" if first.type != "requires" else "enables"
    proposal = Garden(inferred_links=(new_link(first.target, other, 0.8),))
    merged, _ = garden_seed(entry, proposal)
    assert merged.inferred_links == old.inferred_links
    quote = "distributed leadership"
    result = merge_pass(old, proposal, evidence={first.target: quote})
    assert result.garden.inferred_links[0].type == other
    assert [r.reason for r in result.retyped] == [Reason.RETYPED]


def test_a_good_proposal_merged_twice_changes_nothing_the_second_time() -> None:
    entry = seed_entry()
    old = entry.pattern.garden
    assert old is not None
    proposal = Garden(
        entities=(Entity(id="distributed-leadership", type="concept",
                         label="Distributed Leadership", relevance=0.9),
                  Entity(id="leadership-pipeline", type="practice",
                         label="Leadership Pipeline", relevance=0.7)),
        inferred_links=(*(new_link(x.target, x.type or "enables", 0.85)
                          for x in old.inferred_links[:3]),
                        new_link("new-target", "tools", 0.7)))
    _, first = garden_seed(entry, proposal)
    again = merge(first.garden, proposal)
    assert again == first.garden
    assert [i.text for i in again.entities] == [i.text for i in first.garden.entities]
