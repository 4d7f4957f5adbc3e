"""The splice touches the garden block and nothing else, in every layout real files use."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml
from helpers_text import (
    FILE,
    GARDEN,
    HEAD,
    KEYS,
    ONTOLOGY,
    SEED,
    TAIL,
    doc,
    front_matter_data,
    garden_of,
    middle,
    need,
    sample_garden,
)

from gardener.library.block import item_texts, locate
from gardener.library.garden import read_garden
from gardener.library.yaml_text import (
    ESCAPES,
    SEED_STYLE,
    SpliceError,
    Style,
    detect_style,
    number,
    printable,
    quote,
    word,
)
from gardener.model import Community, Entity, Garden, Link
from gardener.steps.edit import splice_scalar
from gardener.steps.splice import render_garden, splice


def _one_link_less(text: str) -> tuple[Garden, str]:
    d = doc(text)
    g, _ = read_garden(d)
    assert g is not None and g.inferred_links
    new_garden = g.model_copy(update={"inferred_links": g.inferred_links[1:]})
    return new_garden, splice(d, new_garden)


def test_locate_stops_before_the_next_groups_banner() -> None:
    d = doc(FILE)
    block = locate(d)
    assert block.present
    assert d.text[block.start:block.end] == GARDEN


def test_unchanged_garden_writes_the_same_bytes() -> None:
    d = doc(FILE)
    g, warnings = read_garden(d)
    assert warnings == [] and g is not None
    assert splice(d, g) == FILE


def test_removing_a_link_keeps_every_other_byte_and_item() -> None:
    new_garden, new = _one_link_less(FILE)
    block = middle(new, HEAD, TAIL)
    assert "adaptive-facilitation" not in block
    kept = GARDEN[GARDEN.index("    - target: accountability-partnership"):]
    assert block.endswith(kept)
    assert block.startswith("graph_garden:\n  last_pruned: 2026-02-19\n  entities:\n"
                            "    - id: distributed-leadership\n")
    assert garden_of(new) == new_garden


def test_a_changed_item_is_rendered_fresh_even_though_it_carries_its_old_text() -> None:
    d = doc(FILE)
    g, _ = read_garden(d)
    assert g is not None
    changed = g.inferred_links[1].model_copy(update={"type": "requires"})
    assert changed.text is not None and "enables" in changed.text
    new_garden = g.model_copy(update={"inferred_links": (g.inferred_links[0], changed)})
    new = splice(d, new_garden)
    block = middle(new, HEAD, TAIL)
    assert "type: requires" in block and "type: enables" not in block
    assert garden_of(new) == new_garden


def test_render_garden_matches_the_seed_shape_exactly() -> None:
    g = sample_garden().model_copy(update={"vitality_reasoning": 'Sustains "life".'})
    assert render_garden(g) == (
        "graph_garden:\n"
        "  last_pruned: 2026-02-19\n"
        "  entities:\n"
        "    - id: distributed-leadership\n"
        "      type: concept\n"
        '      label: "Distributed Leadership"\n'
        "      relevance: 1.0\n"
        "  communities:\n"
        "    - id: organizational-design\n"
        '      label: "Organizational Design"\n'
        "      source: inferred\n"
        "      confidence: 0.95\n"
        "  inferred_links:\n"
        "    - target: adaptive-facilitation\n"
        "      type: complementary\n"
        "      confidence: 0.88\n"
        '      reason: "Real-time facilitation helps"\n'
        '  vitality_reasoning: "Sustains \\"life\\"."\n'
    )


def test_render_empty_garden_and_omitted_fields() -> None:
    assert render_garden(Garden()) == (
        "graph_garden:\n  last_pruned: null\n  entities: []\n  communities: []\n"
        "  inferred_links: []\n")
    g = Garden(inferred_links=(Link(target="x"),), entities=(Entity(id="e", label="E"),))
    text = render_garden(g, Style(seq_indent=0))
    assert "  inferred_links:\n  - target: x\n  communities" not in text
    assert "  entities:\n  - id: e\n    label: \"E\"\n" in text
    assert "  inferred_links:\n  - target: x\n" in text


@pytest.mark.parametrize("value", ["", " null", " ~", " {}", "   # nothing yet", " NULL"])
def test_empty_gardens_are_replaced_in_place(value: str) -> None:
    text = HEAD + f"graph_garden:{value}\n" + TAIL
    d = doc(text)
    g, warnings = read_garden(d)
    assert g == Garden() and warnings == []
    assert splice(d, Garden()) == text  # nothing to change: nothing written
    new = splice(d, sample_garden())
    assert middle(new, HEAD, TAIL) == render_garden(sample_garden())
    assert garden_of(new) == sample_garden()


def test_flow_style_garden_is_replaced_by_a_block() -> None:
    text = HEAD + "graph_garden: {last_pruned: null, entities: [], note: kept}\n" + TAIL
    d = doc(text)
    g, _ = read_garden(d)
    assert g == Garden(extra=(("note", "note: kept"),))
    new_garden = sample_garden().model_copy(update={"extra": g.extra})
    new = splice(d, new_garden)
    block = middle(new, HEAD, TAIL)
    assert block.endswith("      reason: \"Real-time facilitation helps\"\n  note: kept\n")
    assert front_matter_data(new)["graph_garden"]["note"] == "kept"
    assert garden_of(new) == new_garden


def test_garden_as_the_last_key_of_the_front_matter() -> None:
    head = "---\nslug: demo\ntitle: Demo\n"
    text = head + GARDEN + "# trailing comment\n---\nbody\n"
    d = doc(text)
    assert d.text[locate(d).start:locate(d).end] == GARDEN
    new_garden, new = _one_link_less(text)
    middle(new, head, "# trailing comment\n---\nbody\n")
    assert garden_of(new) == new_garden


def test_insert_under_the_group_6_banner_left_without_a_garden() -> None:
    # HEAD ends with the group-6 banner; the group-7 banner follows in TAIL.
    text = HEAD + TAIL
    new = splice(doc(text), sample_garden())
    assert middle(new, HEAD, TAIL) == render_garden(sample_garden())
    assert garden_of(new) == sample_garden()


def test_insert_after_relationships_before_the_next_groups_banner() -> None:
    rel_end = HEAD.index("# ═══════════════\n# GROUP 6")
    head = HEAD[:rel_end]
    text = head + TAIL
    new = splice(doc(text), sample_garden())
    assert middle(new, head, TAIL) == render_garden(sample_garden())
    assert garden_of(new) == sample_garden()


def test_insert_before_provenance_and_the_comments_above_it() -> None:
    head = "---\nslug: demo\ntitle: Demo\nclassification:\n  domain: x\n\n"
    tail = "# provenance\n# (people)\ncontributors:\n- a\nlicense: x\n---\nbody\n"
    new = splice(doc(head + tail), sample_garden())
    assert middle(new, head, tail) == render_garden(sample_garden(), Style(seq_indent=0))


def test_insert_at_the_end_of_the_front_matter() -> None:
    head = "---\nslug: demo\ntitle: Demo\ntags:\n    - a\n"
    tail = "---\nbody\n"
    new = splice(doc(head + tail), sample_garden())
    block = middle(new, head, tail)
    assert block == render_garden(sample_garden(), Style(seq_indent=4))
    assert garden_of(new) == sample_garden()


def test_insert_into_empty_front_matter() -> None:
    new = splice(doc("---\n---\nbody\n"), Garden())
    assert new == "---\n" + render_garden(Garden()) + "---\nbody\n"


def test_crlf_file_stays_crlf() -> None:
    text = FILE.replace("\n", "\r\n")
    d = doc(text)
    assert detect_style(d).newline == "\r\n"
    g, _ = read_garden(d)
    assert g is not None and splice(d, g) == text
    new_garden, new = _one_link_less(text)
    block = middle(new, HEAD.replace("\n", "\r\n"), TAIL.replace("\n", "\r\n"))
    assert block.count("\n") == block.count("\r\n")
    assert garden_of(new) == new_garden
    fresh = splice(d, sample_garden())
    block = middle(fresh, HEAD.replace("\n", "\r\n"), TAIL.replace("\n", "\r\n"))
    assert block == render_garden(sample_garden()).replace("\n", "\r\n")


def test_bom_is_kept() -> None:
    text = "\ufeff" + FILE
    new_garden, new = _one_link_less(text)
    assert new.startswith("\ufeff---\n")
    middle(new, "\ufeff" + HEAD, TAIL)
    assert garden_of(new) == new_garden


@pytest.mark.parametrize("indent", [0, 2, 4])
def test_sequence_indentation_of_the_garden_is_followed(indent: int) -> None:
    pad = " " * (2 + indent)
    garden = (f"graph_garden:\n  last_pruned: null\n  entities:\n{pad}- id: a\n"
              f"{pad}  label: \"A\"\n  communities: []\n  inferred_links: []\n")
    text = "---\nslug: demo\n" + garden + "license: x\n---\n"
    d = doc(text)
    assert detect_style(d).seq_indent == indent
    g, _ = read_garden(d)
    assert g is not None
    new_garden = g.model_copy(update={"entities": (*g.entities, Entity(id="b", label="B"))})
    new = splice(d, new_garden)
    block = middle(new, "---\nslug: demo\n", "license: x\n---\n")
    assert f"{pad}- id: a\n{pad}  label: \"A\"\n{pad}- id: b\n{pad}  label: \"B\"\n" in block
    assert garden_of(new) == new_garden


def test_empty_garden_takes_the_sequence_style_of_the_rest_of_the_file() -> None:
    head = ("---\nid: pat_5\nhubs:\n- hub_id: h\n  influence: 0.7\nontology:\n  domain: d\n"
            "relationships:\n  enables: []\n")
    garden = ("graph_garden:\n  last_pruned: null\n  entities: []\n  communities: []\n"
              "  inferred_links: []\n")
    tail = "contributors:\n- higgerix\nsources: []\n---\n"
    d = doc(head + garden + tail)
    assert detect_style(d) == Style(indent=2, seq_indent=0, newline="\n")
    new = splice(d, sample_garden())
    block = middle(new, head, tail)
    assert "  entities:\n  - id: distributed-leadership\n    type: concept\n" in block
    assert garden_of(new) == sample_garden()


def test_comments_and_block_scalars_inside_the_garden() -> None:
    garden = (
        "graph_garden:\n"
        "  # written by the gardener\n"
        "  last_pruned: 2026-01-01\n"
        "  entities: []\n"
        "\n"
        "  # a block scalar whose last line looks like a comment\n"
        "  vitality_reasoning: |\n"
        "    Alive.\n"
        "    # not a comment\n"
        "\n"
    )
    tail = "# GROUP 7\n  # indented comment\nlicense: x\n---\n"
    text = "---\nslug: s\n" + garden + tail
    d = doc(text)
    block = locate(d)
    assert d.text[block.start:block.end] == garden.rstrip("\n") + "\n"
    g, _ = read_garden(d)
    assert g is not None and g.vitality_reasoning == "Alive.\n# not a comment\n"
    new_garden = g.model_copy(update={"last_pruned": dt.date(2026, 3, 1)})
    new = splice(d, new_garden)
    body = middle(new, "---\nslug: s\n", "\n" + tail)
    assert "  vitality_reasoning: |\n    Alive.\n    # not a comment\n" in body
    assert garden_of(new) == new_garden


def test_an_alias_as_the_last_value_stays_inside_the_block() -> None:
    text = ("---\nname: &n \"Shared\"\ngraph_garden:\n  last_pruned: null\n"
            "  vitality_reasoning: *n\n# banner\nlicense: x\n---\n")
    d = doc(text)
    block = locate(d)
    assert d.text[block.start:block.end].endswith("  vitality_reasoning: *n\n")
    new = splice(d, Garden(vitality_reasoning="Other"))
    assert middle(new, "---\nname: &n \"Shared\"\n", "# banner\nlicense: x\n---\n")
    assert garden_of(new) == Garden(vitality_reasoning="Other")


def test_unknown_garden_keys_are_kept_verbatim() -> None:
    extra = "  notes:\n    - kept   # as written\n    - 'too'\n"
    text = HEAD + GARDEN + extra + TAIL
    d = doc(text)
    g, _ = read_garden(d)
    assert g is not None
    assert g.extra == (("notes", "notes:\n  - kept   # as written\n  - 'too'"),)
    new_garden, new = _one_link_less(text)
    assert middle(new, HEAD, TAIL).endswith(extra)
    assert garden_of(new) == new_garden


def test_unchanged_sections_keep_their_bytes_when_another_changes() -> None:
    garden = ("graph_garden:\n  last_pruned: '2026-02-16'\n  entities:\n    - Plain Name\n"
              "    - id: x   # note\n      relevance: 1\n  communities: []\n"
              "  inferred_links: []\n"
              "  vitality_reasoning: >-\n    Folded\n    reasoning.\n")
    text = "---\nslug: s\n" + garden + "---\n"
    d = doc(text)
    g, _ = read_garden(d)
    assert g is not None and g.last_pruned == dt.date(2026, 2, 16)
    new_garden = g.model_copy(update={"communities": (Community(id="c"),)})
    new = splice(d, new_garden)
    block = middle(new, "---\nslug: s\n", "---\n")
    assert block == ("graph_garden:\n  last_pruned: '2026-02-16'\n  entities:\n"
                     "    - Plain Name\n    - id: x   # note\n      relevance: 1\n"
                     "  communities:\n    - id: c\n  inferred_links: []\n"
                     "  vitality_reasoning: >-\n    Folded\n    reasoning.\n")
    assert garden_of(new) == new_garden


def test_legacy_items_keep_their_text_and_new_ones_are_mappings() -> None:
    garden = "graph_garden:\n  entities:\n  - Elinor Ostrom\n  - 7Cs Framework\n"
    text = "---\nslug: s\n" + garden + "---\n"
    d = doc(text)
    g, _ = read_garden(d)
    assert g is not None
    new_garden = g.model_copy(update={"entities": (g.entities[1], Entity(id="new"))})
    block = middle(splice(d, new_garden), "---\nslug: s\n", "---\n")
    assert "  entities:\n  - 7Cs Framework\n  - id: new\n" in block


def test_seed_file_round_trips_and_takes_a_change() -> None:
    text = need(SEED).read_text(encoding="utf-8")
    d = doc(text, str(SEED))
    g, warnings = read_garden(d)
    assert g is not None and warnings == []
    assert (len(g.entities), len(g.communities), len(g.inferred_links)) == (8, 4, 10)
    assert splice(d, g) == text
    new_garden = g.model_copy(update={"last_pruned": dt.date(2026, 3, 1),
                                      "inferred_links": g.inferred_links[:-1]})
    new = splice(d, new_garden)
    block = locate(d)
    middle(new, text[:block.start], text[block.end:])
    assert text[block.end:].startswith("# ═")
    assert garden_of(new) == new_garden


def test_flow_root_is_refused() -> None:
    with pytest.raises(SpliceError, match=r"pattern\.md:.*flow mapping"):
        splice(doc("---\n{slug: s, title: t}\n---\n"), Garden())


def test_item_texts_are_the_exact_lines() -> None:
    d = doc(FILE)
    section = locate(d).section("inferred_links")
    assert section is not None
    assert item_texts(d, section) == [
        "    - target: adaptive-facilitation\n      type: complementary\n"
        "      confidence: 0.88\n      reason: \"Real-time facilitation helps\"\n",
        "    - target: accountability-partnership\n      type: enables\n"
        "      confidence: 0.85\n      reason: \"Mutual accountability\"\n",
    ]


AWKWARD = [
    'He said "hi"', "key: value", "# not a comment", "a #b", "trailing #", "café ünïcode 漢字 😀",
    "back\\slash \\n", "- leading dash", "-", "? question", "@at `tick`", "'single'", "",
    " leading and trailing ", "tab\there", "line\nbreak", "crlf\r\nx", "nul\x00bel\x07",
    "nel\x85ls\u2028ps\u2029", "bom\ufeff", "del\x7f c1\x9f", "yes", "null", "~", "1.0",
    "2026-02-19", "0x1F", "*alias", "&anchor", "!tag", "%percent", "{flow}", "[list]",
    "x" * 5000, "long reason " * 300,
]


@pytest.mark.parametrize("value", AWKWARD)
def test_awkward_strings_read_back_as_written(value: str) -> None:
    word_value = value if value.strip() else "x"
    g = Garden(
        entities=(Entity(id=word_value, type=word_value, label=value, relevance=0.5),),
        communities=(Community(id=word_value, label=value, source=word_value),),
        inferred_links=(Link(target=word_value, type=word_value, reason=value),),
        vitality_reasoning=value,
    )
    text = render_garden(g)
    data = yaml.safe_load(text)["graph_garden"]
    assert data["entities"][0] == {"id": word_value, "type": word_value, "label": value,
                                   "relevance": 0.5}
    assert data["inferred_links"][0]["reason"] == value
    assert data["vitality_reasoning"] == value
    assert garden_of("---\n" + text + "---\n") == g


def test_plain_words_only_where_unambiguous() -> None:
    assert word("adaptive-facilitation") == "adaptive-facilitation"
    assert word("specializes_to") == "specializes_to"
    # as YAML 1.1 reads them (PyYAML reads the files), not 1.2: yes, no, on, 1:20 are not words
    for ambiguous in ["yes", "No", "no", "on", "off", "null", "~", "2026-02-19", "123",
                      "1.5", "0x1f", "1_000", "1:20", "a b", "-x", "a:b", ".inf", ""]:
        assert word(ambiguous).startswith('"'), ambiguous
        assert yaml.safe_load(word(ambiguous)) == ambiguous


@pytest.mark.parametrize("x", [0.95, 1.0, 0.0, 1e-05, 0.1 + 0.2, 123456789.0, 1e16, -2.5])
def test_numbers_are_short_and_read_back_as_floats(x: float) -> None:
    assert yaml.safe_load(number(x)) == x
    assert isinstance(yaml.safe_load(number(x)), float)
    assert number(0.95) == "0.95" and number(1) == "1.0"


def test_quote_escapes_only_what_it_must() -> None:
    assert quote('a "b" \\ c') == '"a \\"b\\" \\\\ c"'
    assert quote("é漢😀") == '"é漢😀"'
    assert quote("\x01") == '"\\x01"'


def test_quote_reads_back_every_code_point_and_leaves_printable_ones_as_they_are() -> None:
    """Every code point, alone and inside other text, reads back exactly; those that need no
    escape are written as themselves, the others escaped."""
    for start in range(0, 0x110000, 0x400):
        chunk = "".join(chr(c) for c in range(start, min(start + 0x400, 0x110000)))
        assert yaml.safe_load(quote(chunk)) == chunk, hex(start)
        assert yaml.safe_load(quote("ab" + chunk[::97] + "cd")) == "ab" + chunk[::97] + "cd"
    for c in map(chr, range(0x10000)):
        as_is = quote(c) == f'"{c}"'
        assert as_is == (printable(c) and c not in ESCAPES), hex(ord(c))


# ---- one nested scalar ---------------------------------------------------------------------



def test_splice_scalar_replaces_a_folded_scalar() -> None:
    new = splice_scalar(doc(ONTOLOGY), KEYS, 'New "reasoning": alive')
    head = ONTOLOGY[:ONTOLOGY.index(">-")]
    tail = ONTOLOGY[ONTOLOGY.index("\n    overall_score"):]
    assert middle(new, head, tail) == '"New \\"reasoning\\": alive"'
    assert front_matter_data(new)["ontology"]["commons_assessment"]["vitality_reasoning"] == (
        'New "reasoning": alive')


def test_splice_scalar_adds_a_missing_key_at_the_end_of_its_mapping() -> None:
    text = ONTOLOGY.replace("    overall_score: 3.9\n", "")
    text = text.replace("    vitality_reasoning: >-\n      This pattern sustains vitality by "
                        "maintaining and renewing the\n      system's existing health.\n", "")
    new = splice_scalar(doc(text), KEYS, "Added")
    at = text.index("    vitality: 3.5\n") + len("    vitality: 3.5\n")
    assert middle(new, text[:at], text[at:]) == '    vitality_reasoning: "Added"\n'


@pytest.mark.parametrize("empty", ["", " null", " {}"])
def test_splice_scalar_fills_an_empty_parent(empty: str) -> None:
    text = f"---\nontology:\n  domain: x\n  commons_assessment:{empty}\nlifecycle: {{}}\n---\n"
    new = splice_scalar(doc(text), KEYS, "v")
    assert new == ("---\nontology:\n  domain: x\n  commons_assessment:\n"
                   '    vitality_reasoning: "v"\nlifecycle: {}\n---\n')


def test_splice_scalar_creates_missing_parents() -> None:
    text = "---\nontology:\n    domain: x\nlicense: y\n---\n"
    new = splice_scalar(doc(text), KEYS, "v")
    assert new == ("---\nontology:\n    domain: x\n    commons_assessment:\n"
                   '        vitality_reasoning: "v"\nlicense: y\n---\n')
    new = splice_scalar(doc("---\nslug: s\r\n---\r\n".replace("---\n", "---\r\n")), KEYS, "v")
    assert new == ('---\r\nslug: s\r\nontology:\r\n  commons_assessment:\r\n'
                   '    vitality_reasoning: "v"\r\n---\r\n')


def test_splice_scalar_refuses_a_mapping_or_list() -> None:
    with pytest.raises(SpliceError, match=r"'ontology\.commons_assessment' holds a mapping"):
        splice_scalar(doc(ONTOLOGY), ("ontology", "commons_assessment"), "v")
    with pytest.raises(SpliceError, match="holds a list"):
        splice_scalar(doc("---\nontology: [a]\n---\n"), KEYS, "v")


def test_seed_style_is_the_default() -> None:
    assert Style(indent=2, seq_indent=2, newline="\n", column=0) == SEED_STYLE
    assert detect_style(doc("---\nslug: s\n---\n")) == SEED_STYLE


def test_aliased_items_have_no_text_of_their_own() -> None:
    text = ("---\ngraph_garden:\n  entities:\n    - &e\n      id: x\n    - *e\n"
            "    - id: y\n---\n")
    d = doc(text)
    section = locate(d).section("entities")
    assert section is not None
    texts = item_texts(d, section)
    assert texts[0] == "    - &e\n      id: x\n" and texts[1] is None
    assert texts[2] == "    - id: y\n"
    g, _ = read_garden(d)
    assert g is not None
    new_garden = g.model_copy(update={"entities": g.entities[1:]})
    new = splice(d, new_garden)
    assert middle(new, "---\n", "---\n") == (
        "graph_garden:\n  last_pruned: null\n  entities:\n    - id: x\n    - id: y\n"
        "  communities: []\n  inferred_links: []\n")


def test_splice_scalar_refuses_an_alias() -> None:
    text = "---\nbase: &r \"Shared\"\nontology:\n  commons_assessment:\n" \
           "    vitality_reasoning: *r\n---\n"
    with pytest.raises(SpliceError, match="is an alias"):
        splice_scalar(doc(text), KEYS, "v")


def test_items_moved_to_another_indentation_are_rendered_fresh() -> None:
    g, _ = read_garden(doc(FILE))
    assert g is not None
    text = render_garden(g, Style(seq_indent=0))
    assert "  inferred_links:\n  - target: adaptive-facilitation\n    type: complementary\n" in text
    assert "    - target" not in text
    assert garden_of("---\n" + text + "---\n") == g
