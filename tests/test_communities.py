"""The community registry: its validator, consolidation of ids, the seeded build, rewriting
gardens onto it, and the commands."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pytest
from graph_library import Spec, load, write
from typer.testing import CliRunner

from gardener.graph import communities as cm
from gardener.graph import naming
from gardener.library import registry as rg
from gardener.library.block import locate
from gardener.library.document import read_text
from gardener.library.tables import TableError
from gardener.model import Community, Garden

runner = CliRunner()
REG = Path("lib/.gardener/communities.yaml")

GOOD = """\
# a registry
version: 1
communities:
  - id: commons-governance
    label: Commons Governance
    description: How commons decide and enforce their rules.
    aliases: [governance, comm_commons-governance]
    members: [alpha, beta]
  - id: systems-thinking
    label: Systems Thinking
    members: [gamma]
"""


# --- the validator --------------------------------------------------------------------------


def test_a_good_registry_reads_with_its_lines() -> None:
    reg = rg.parse_registry(GOOD, REG)
    assert reg.ids == ("commons-governance", "systems-thinking")
    assert [c.line for c in reg.communities] == [4, 9]
    assert reg.get("systems-thinking") is not None
    assert reg.assignment() == {"alpha": "commons-governance", "beta": "commons-governance",
                                "gamma": "systems-thinking"}
    assert reg.resolve("governance") == "commons-governance"
    assert reg.resolve("Systems Thinking") == "systems-thinking"  # spelling does not count
    assert reg.resolve("comm_systems_thinking") == "systems-thinking"
    assert reg.resolve("care-work") is None
    assert rg.unknown_members(reg, ["alpha", "gamma"]) == [
        f"{REG}:4: member 'beta' of 'commons-governance' is not a pattern of the library"]


@pytest.mark.parametrize(("text", "expected"), [
    ("communities:\n  - id: Bad Id\n    label: X\n",
     f"{REG}:2: id 'Bad Id' is not kebab-case"),
    ("communities:\n  - id: a\n    description: no label\n", f"{REG}:2: label is missing"),
    ("communities:\n  - id: a\n    label: A\n    colour: red\n",
     f"{REG}:2: unknown key(s) colour"),
    ("communities:\n  - id: systems\n    label: A\n  - id: system\n    label: B\n",
     f"{REG}:4: id 'system' is the same community as 'systems' (line 2)"),
    ("communities:\n  - id: a\n    label: A\n  - id: b\n    label: B\n    aliases: [a]\n",
     f"{REG}:4: alias 'a' of 'b' names community 'a' (line 2)"),
    ("communities:\n  - id: a\n    label: A\n    members: [x, x]\n",
     f"{REG}:2: members repeats x"),
    ("communities:\n  - just-a-string\n", f"{REG}:2: a community is a mapping"),
    ("version: 2\ncommunities: []\n", f"{REG}:1: version 2 is not 1"),
    ("- a\n- b\n", f"{REG}:1: a registry is a mapping with a 'communities' list"),
    ("communities: [\n  - id: a\n", f"{REG}:2:3: not valid YAML"),
])
def test_a_bad_registry_names_file_line_and_problem(text: str, expected: str) -> None:
    with pytest.raises(TableError) as caught:
        rg.parse_registry(text, REG)
    assert any(p.startswith(expected) for p in caught.value.problems), caught.value.problems


def test_every_problem_is_listed_not_only_the_first() -> None:
    text = "communities:\n  - id: Bad\n  - id: good\n    label: Good\n  - label: no id\n"
    with pytest.raises(TableError) as caught:
        rg.parse_registry(text, REG)
    assert [p.split(" (")[0] for p in caught.value.problems] == [
        f"{REG}:2: id 'Bad' is not kebab-case", f"{REG}:2: label is missing",
        f"{REG}:5: id is missing"]


def test_dump_reads_back_the_same_registry() -> None:
    reg = rg.parse_registry(GOOD, REG)
    again = rg.parse_registry(rg.dump_registry(reg, "header line"), REG)
    assert [(c.id, c.label, c.description, c.aliases, c.members) for c in again.communities] == [
        (c.id, c.label, c.description, c.aliases, c.members) for c in reg.communities]


def test_garden_ids_are_checked_against_the_registry() -> None:
    reg = rg.parse_registry(GOOD, REG)
    found = rg.garden_problems([Community(id="governance"), Community(id="care-work")], reg)
    assert found == ["community 'care-work' is not in the registry"]


# --- consolidating ids ----------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "key"), [
    ("Systems Thinking", "system-thinking"),
    ("systems_thinking", "system-thinking"),
    ("comm_systems-thinking", "system-thinking"),
    ("Leadership & Facilitation", "leadership-facilitation"),
    ("leadership-and-facilitation", "leadership-facilitation"),
    ("Communities of Practice", "community-practice"),
    ("Process", "process"),
    ("community-building", "community-building"),
    ("community:care", "care"),
])
def test_normalise_id(raw: str, key: str) -> None:
    assert rg.normalise_id(raw) == key


def test_consolidate_merges_spelling_near_duplicates_and_labels_naming_an_id() -> None:
    found = [
        cm.Membership("p1", "systems-thinking", "Systems Thinking", 0.9),
        cm.Membership("p2", "Systems_Thinking", None, 0.8),
        cm.Membership("p3", "complex-systems-thinking", "Complex Systems", 0.7),
        cm.Membership("p4", "commons-care", "Community Building", 0.9),
        cm.Membership("p5", "community-building", "Community Building", 0.9),
        cm.Membership("p6", "personal-finance", "Money", 0.9),
        cm.Membership("p7", "personal-development", "Growth", 0.9),
    ]
    groups = cm.consolidate(found)
    by_id = {i: g for g in groups for i in g.ids}
    assert len(groups) == 4
    systems = by_id["systems-thinking"]
    assert set(systems.ids) == {"systems-thinking", "Systems_Thinking",
                                "complex-systems-thinking"}
    assert systems.members == ("p1", "p2", "p3")
    assert systems.labels[0] in {"Systems Thinking", "Complex Systems"}
    assert by_id["commons-care"] is by_id["community-building"]
    assert by_id["personal-finance"] is not by_id["personal-development"]


# --- building -------------------------------------------------------------------------------


def clusters(fragmented: bool = True) -> list[Spec]:
    """Three themes of five patterns, linked within; each pattern with its own community id
    spelling (fragmented), plus one pattern with no link and no community but the words."""
    themes = {"water": "Water commons irrigation", "code": "Software code review",
              "care": "Care work childcare"}
    specs: list[Spec] = []
    for theme, words in themes.items():
        slugs = [f"{theme}-{i}" for i in range(5)]
        for i, slug in enumerate(slugs):
            cid = f"{theme}-{'stewardship' if i % 2 else 'practice'}-{i}" if fragmented \
                else theme
            specs.append(Spec(slug, title=f"{words} {i}", summary=f"{words} pattern {i}",
                              human={"complementary": [slugs[(i + 1) % 5]]},
                              links=[(slugs[(i + 2) % 5], "enables", 0.8)],
                              communities=[(cid, f"{theme.title()} {i}", 0.8)]))
    specs.append(Spec("water-newcomer", title="Water commons irrigation canals",
                      summary="Irrigation of water commons", garden=False))
    return specs


def test_build_finds_the_themes_and_assigns_every_pattern(tmp_path: Path) -> None:
    lib = load(tmp_path / "lib", clusters())
    result = cm.build(lib.patterns, seed=3)
    members = sorted(sorted(c.members) for c in result.registry.communities)
    assert members == [[f"care-{i}" for i in range(5)], [f"code-{i}" for i in range(5)],
                       [*(f"water-{i}" for i in range(5)), "water-newcomer"]]
    assert result.ids_before == 15 and len(result.registry.communities) == 3
    assert result.assigned == result.patterns == 16
    for c in result.registry.communities:
        theme = c.members[0].split("-")[0]
        assert c.id.startswith(theme) and c.label
        assert all(a.startswith(theme) for a in c.aliases)
    assert 0.0 < result.strengths["water-newcomer"] <= 1.0


def test_same_seed_same_registry(tmp_path: Path) -> None:
    lib = load(tmp_path / "lib", clusters())
    first = rg.dump_registry(cm.build(lib.patterns, seed=11).registry)
    again = rg.dump_registry(cm.build(list(reversed(lib.patterns)), seed=11).registry)
    assert first == again


def test_small_communities_join_the_one_they_are_tied_to(tmp_path: Path) -> None:
    specs = clusters(fragmented=False)
    specs[0] = Spec(**{**specs[0].__dict__, "human": {"complementary": ["water-1", "code-0"]}})
    lib = load(tmp_path / "lib", specs)
    assert len(cm.build(lib.patterns, seed=3).registry.communities) == 3
    big = cm.build(lib.patterns, seed=3, min_size=7)
    # code (5) is tied to water by one link and joins it; care (5) is tied to nothing
    sizes = sorted(len(c.members) for c in big.registry.communities)
    assert sizes == [5, 11]


def test_a_community_is_named_by_what_most_members_share_not_by_one_members_id(
        tmp_path: Path) -> None:
    """The shape `communities build` met on the 3,600-pattern library: a large community
    whose members mostly carry no community id, a minority of them an id whose users mostly
    sit in another community, one pattern an id nobody else uses (the old rule, which
    preferred an id "at home" in the community whatever its support, named the large
    community after that one pattern's id); and a fragmented vocabulary whose ids share one
    word ("water-rights", "water-commons", ...)."""
    specs: list[Spec] = []
    large = [f"practice-{i:02d}" for i in range(40)]
    for i, slug in enumerate(large):
        ids = ([("systems-thinking", "Systems Thinking", 0.8)] if i < 15 else
               [("odd-one-out", "Odd One Out", 0.9)] if i == 15 else [])
        specs.append(Spec(slug, title=f"Practice pattern {i}", communities=ids,
                          domain="practice-design" if i % 8 < 5 else None))
    systems = [f"systems-{i:02d}" for i in range(22)]
    specs += [Spec(s, title=f"Feedback loops {i}",
                   communities=[("systems-thinking", "Systems Thinking", 0.9)] if i < 20 else [])
              for i, s in enumerate(systems)]
    water = [f"water-{i:02d}" for i in range(30)]
    spellings = ["water-rights", "water-commons", "clean-water", "water-law", "water-sharing",
                 "river-water"]
    specs += [Spec(s, title=f"River basin {i}",
                   communities=[(spellings[i % 6] if i < 12 else "odd-two", "W", 0.8)]
                   if i < 13 else [])
              for i, s in enumerate(water)]
    lib = load(tmp_path / "lib", specs)
    chosen = {p.slug: p for p in lib.patterns}
    groups = cm.consolidate(cm.memberships(chosen.values()))
    g: nx.Graph[str] = nx.Graph()
    g.add_nodes_from(chosen)
    # the old rule, for the record: the large community took "odd-one-out", at home there
    home_of_odd = [grp for grp in groups if grp.ids == ("odd-one-out",)]
    assert len(home_of_odd) == 1 and home_of_odd[0].members == ("practice-15",)
    drafts = naming.name_drafts([large, water, systems], groups, chosen, g)
    by_size = {len(d.members): d for d in drafts}
    assert by_size[40].id == "practice-design"
    assert by_size[40].basis == "domain 'practice-design': 25 of 40 members"
    assert by_size[22].id == "systems-thinking"  # 20 of its 22 members, against 15 of 40
    assert by_size[22].basis == "id 'systems-thinking': 20 of 22 members"
    assert by_size[30].id == "water"  # 12 members' ids share it; no one id has 3 users
    assert by_size[30].basis == "id word 'water': 12 of 30 members"
    assert all(d.id not in {"odd-one-out", "odd-two"} for d in drafts)
    assert naming.needed(40) == 4 and naming.needed(3) == 2 and naming.needed(1) == 1


def test_retarget_puts_the_registry_community_first_and_keeps_known_ones() -> None:
    reg = rg.parse_registry(GOOD, REG)
    garden = Garden(communities=(
        Community(id="systems-thinking", label="Systems Thinking", source="taxonomy",
                  confidence=0.7, text="    - id: systems-thinking\n"),
        Community(id="governance", label="Gov", source="inferred", confidence=0.9),
        Community(id="care-work", label="Care", source="inferred", confidence=0.95)))
    out = cm.retarget(garden, "alpha", reg, 0.66)
    assert [(c.id, c.source, c.confidence) for c in out.communities] == [
        ("commons-governance", "taxonomy", 0.9), ("systems-thinking", "taxonomy", 0.7)]
    assert out.communities[1].text == "    - id: systems-thinking\n"  # unchanged: text kept
    assert cm.retarget(out, "alpha", reg, 0.66) == out
    fresh = cm.retarget(None, "gamma", reg, 0.5)
    assert [(c.id, c.label, c.confidence) for c in fresh.communities] == [
        ("systems-thinking", "Systems Thinking", 0.5)]


# --- the commands ---------------------------------------------------------------------------


def outside_garden(text: str) -> str:
    doc = read_text(text, "x.md")
    assert doc is not None
    block = locate(doc)
    return text[:block.start] + text[block.end:]


def test_build_writes_the_registry_and_apply_rewrites_only_gardens(tmp_path: Path) -> None:
    from gardener.cli.main import app

    root = write(tmp_path / "lib", clusters())
    before = {p.name: p.read_text() for p in root.glob("*.md")}
    result = runner.invoke(app, ["communities", "build", str(root), "--no-llm", "--seed", "3",
                                 "--apply", "--report", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    reg = rg.load_registry(root)
    assert reg is not None and len(reg.communities) == 3
    assert "15 community ids before" in result.stderr
    assert "16 of 16 patterns assigned" in result.stderr
    lib = load(root, [])
    for entry in lib.entries:
        p = entry.pattern
        assert p.garden is not None and p.garden.communities
        assert p.garden.communities[0].id == reg.assignment()[p.slug]
        assert all(c.source == "taxonomy" for c in p.garden.communities)
        name = p.path.name
        if name != "water-newcomer.md":
            assert outside_garden(p.path.read_text()) == outside_garden(before[name])
    check = runner.invoke(app, ["communities", "check", str(root)])
    assert check.exit_code == 0, check.output
    assert "0 garden communities outside the registry" in check.stdout


def test_check_lists_ids_outside_the_registry(tmp_path: Path) -> None:
    from gardener.cli.main import app

    root = write(tmp_path / "lib", [Spec("alpha", communities=[("care-work", "Care", 0.8)])])
    (root / ".gardener").mkdir()
    (root / ".gardener" / "communities.yaml").write_text(GOOD)
    result = runner.invoke(app, ["communities", "check", str(root)])
    assert result.exit_code == 1
    assert "community 'care-work' is not in the registry" in result.stdout
    assert "member 'gamma' of 'systems-thinking' is not a pattern" in result.stdout


def test_a_bad_registry_stops_health_with_its_line(tmp_path: Path) -> None:
    from gardener.cli.main import app

    root = write(tmp_path / "lib", [Spec("alpha")])
    (root / ".gardener").mkdir()
    (root / ".gardener" / "communities.yaml").write_text("communities:\n  - id: X\n")
    result = runner.invoke(app, ["health", str(root)])
    assert result.exit_code == 2
    assert "communities.yaml:2: label is missing" in result.stderr


def test_an_unreadable_registry_is_named(tmp_path: Path) -> None:
    path = tmp_path / ".gardener" / "communities.yaml"
    path.parent.mkdir()
    path.write_bytes(b"communities:\n  - id: caf\xe9\n")
    with pytest.raises(TableError) as caught:
        rg.load_registry(tmp_path)
    assert caught.value.problems[0].startswith(f"{path}:2: not UTF-8 text")
    assert rg.load_registry(tmp_path / "elsewhere") is None
