"""Reading the existing garden: every shape real libraries hold, each oddity one warning."""

from __future__ import annotations

import datetime as dt

import pytest
from helpers_text import SEED, doc, need

from gardener.library.garden import (
    community_from_data,
    entity_from_data,
    kebab,
    link_from_data,
    read_detailed,
    read_garden,
)
from gardener.model import Community, Entity, Garden, Link


def _garden(block: str, path: str = "lib/p.md") -> tuple[Garden | None, list[str]]:
    return read_garden(doc("---\nslug: p\n" + block + "license: x\n---\nbody\n", path))


def test_no_key_is_none() -> None:
    assert read_garden(doc("---\nslug: p\n---\n")) == (None, [])
    assert read_garden(doc("---\n---\n")) == (None, [])


@pytest.mark.parametrize("value", ["", " null", " ~", " {}"])
def test_empty_values_are_an_empty_garden(value: str) -> None:
    assert _garden(f"graph_garden:{value}\n") == (Garden(), [])


def test_seed_garden_is_read_whole_with_exact_item_text() -> None:
    path = need(SEED)
    text = path.read_text(encoding="utf-8")
    g, warnings = read_garden(doc(text, str(path)))
    assert warnings == []
    assert g is not None and g.last_pruned == dt.date(2026, 2, 19)
    assert g.entities[4] == Entity(id="adaptive-leadership", type="framework",
                                   label="Adaptive Leadership (Heifetz)", relevance=0.88)
    assert g.communities[0] == Community(id="organizational-design",
                                         label="Organizational Design & Systems",
                                         source="inferred", confidence=0.95)
    assert g.inferred_links[-1] == Link(
        target="abundance-vs-scarcity-mindset", type="enables", confidence=0.76,
        reason="Distributed model assumes expandable leadership capacity not zero-sum")
    for item in (*g.entities, *g.communities, *g.inferred_links):
        assert item.text is not None and item.text in text
        assert item.text.startswith("    - ") and item.text.endswith("\n")
    assert g.inferred_links[-1].text == (
        "    - target: abundance-vs-scarcity-mindset\n      type: enables\n"
        "      confidence: 0.76\n      reason: \"Distributed model assumes expandable "
        "leadership capacity not zero-sum\"\n")


def test_legacy_strings_become_items_with_a_warning_each() -> None:
    g, warnings = _garden(
        "graph_garden:\n  last_pruned: 2026-02-23\n  entities:\n    - Elinor Ostrom\n"
        "    - Café Culture\n  communities:\n    - commons-engineering\n")
    assert g is not None
    assert g.entities == (Entity(id="elinor-ostrom", label="Elinor Ostrom"),
                          Entity(id="cafe-culture", label="Café Culture"))
    assert all(e.legacy for e in g.entities) and g.communities[0].legacy
    assert g.communities == (Community(id="commons-engineering", label="commons-engineering"),)
    assert g.entities[0].text == "    - Elinor Ostrom\n"
    assert len(warnings) == 3
    assert warnings[0].startswith("lib/p.md:6: graph_garden.entities[0]: entity 'Elinor Ostrom'"
                                  " is a plain string")
    assert warnings[2].startswith("lib/p.md:9: graph_garden.communities[0]")


def test_links_with_odd_types_and_keys_are_read_as_they_are() -> None:
    g, warnings = _garden(
        "graph_garden:\n  inferred_links:\n"
        "    - target: a-one\n      type: enabler\n      confidence: 0.8\n"
        "    - target: a-two\n      reason: \"no type\"\n      strength: 5\n"
        "    - target: a-three\n      type: analogous\n      confidence: '0.7'\n")
    assert g is not None
    assert g.inferred_links == (
        Link(target="a-one", type="enabler", confidence=0.8),
        Link(target="a-two", reason="no type", confidence=1.0),  # an older tool's 1-5 strength
        Link(target="a-three", type="analogous", confidence=0.7),
    )
    assert g.inferred_links[1].migrated == "strength 5 read as confidence 1; no type"
    assert warnings == [
        "lib/p.md:8: graph_garden.inferred_links[1]: strength 5 read as confidence 1",
        "lib/p.md:11: graph_garden.inferred_links[2]: confidence '0.7' is quoted; "
        "read as the number 0.7",
    ]


def test_junk_items_are_skipped_with_a_warning_and_marked_dropped() -> None:
    d = doc("---\ngraph_garden:\n  entities:\n    - [a, b]\n    - id: ok\n    -\n"
            "  inferred_links:\n    - just-a-string\n    - reason: no target\n"
            "  communities: {a: 1}\n---\n", "x.md")
    reading = read_detailed(d)
    assert reading.garden == Garden(entities=(Entity(id="ok"),),
                                    inferred_links=(Link(target="just-a-string"),))
    assert reading.garden.inferred_links[0].migrated == "a plain slug"
    assert reading.dropped == frozenset({"entities", "inferred_links", "communities"})
    assert [w.split(": ", 1)[0] for w in reading.warnings] == [
        "x.md:4", "x.md:6", "x.md:8", "x.md:9", "x.md:10"]
    assert "not a mapping; skipped" in reading.warnings[0]
    assert "is a plain slug" in reading.warnings[2]
    assert "has no target; skipped" in reading.warnings[3]
    assert "graph_garden.communities is a mapping, not a list" in reading.warnings[4]


@pytest.mark.parametrize(("value", "expected", "warns"), [
    ("2026-02-19", dt.date(2026, 2, 19), False),
    ("'2026-02-16'", dt.date(2026, 2, 16), False),
    ('"2026-02-16"', dt.date(2026, 2, 16), False),
    ("2026-02-19 10:00:00", dt.date(2026, 2, 19), False),
    ("null", None, False),
    ("yesterday", None, True),
    ("20260219", None, True),
])
def test_last_pruned_shapes(value: str, expected: dt.date | None, warns: bool) -> None:
    g, warnings = _garden(f"graph_garden:\n  last_pruned: {value}\n")
    assert g is not None and g.last_pruned == expected
    assert bool(warnings) == warns
    if warns:
        assert warnings[0].startswith("lib/p.md:4: last_pruned ")


def test_unknown_keys_go_to_extra_with_their_text() -> None:
    g, warnings = _garden("graph_garden:\n  entities: []\n  score: 3   # kept\n"
                          "  notes:\n    a: 1\n")
    assert warnings == []
    assert g is not None
    assert g.extra == (("score", "score: 3   # kept"), ("notes", "notes:\n  a: 1"))


def test_non_mapping_garden_is_empty_with_a_warning() -> None:
    g, warnings = _garden("graph_garden:\n  - a\n")
    assert g == Garden()
    assert warnings == ["lib/p.md:4: graph_garden is a list, not a mapping; "
                        "read as an empty garden"]


def test_flow_items_have_no_text() -> None:
    g, _ = _garden("graph_garden: {entities: [{id: a, label: A}], inferred_links: []}\n")
    assert g is not None and g.entities == (Entity(id="a", label="A"),)
    assert g.entities[0].text is None


def test_item_converters() -> None:
    assert entity_from_data({"label": "Systems Thinking"}) == (
        Entity(id="systems-thinking", label="Systems Thinking"),
        ["entity has no id; read as 'systems-thinking' from its label"])
    assert entity_from_data({"id": 7, "relevance": True})[0] == Entity(id="7")
    assert entity_from_data(None) == (None, ["entity item None is not a mapping; skipped"])
    assert community_from_data({"id": "c", "confidence": "high"})[1] == [
        "confidence 'high' is not a number; ignored"]
    assert link_from_data({"target": "t", "type": None}) == (Link(target="t"), [])


def test_kebab() -> None:
    assert kebab("Adaptive Leadership (Heifetz)") == "adaptive-leadership-heifetz"
    assert kebab("7Cs Framework") == "7cs-framework"
    assert kebab("Ça marche — déjà") == "ca-marche-deja"
    assert kebab("漢字 テスト") == "漢字-テスト"
