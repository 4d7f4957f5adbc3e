"""Health metrics of the library graph, each on a small library written for the purpose."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import networkx as nx
import pytest
from graph_library import Spec, load
from typer.testing import CliRunner

from gardener.cli.main import app
from gardener.graph import health
from gardener.graph import library_graph as graph

runner = CliRunner()
LETTERS = string.ascii_lowercase


def alphabet(n_per_letter: int = 1) -> list[str]:
    return [f"{c}{c}-pattern-{i}" for c in LETTERS for i in range(n_per_letter)]


def assess(tmp_path: Path, specs: list[Spec]) -> health.Health:
    return health.assess(graph.build(load(tmp_path, specs).patterns))


# --- skew -------------------------------------------------------------------------------------


def test_links_into_an_alphabetical_prefix_are_flagged(tmp_path: Path) -> None:
    slugs = alphabet(2)  # 52 patterns, 2 per letter
    prefix = [s for s in slugs if s.startswith(("a", "b"))]
    specs = [Spec(s, links=[(t, "complementary", 0.8) for t in prefix if t != s][:3])
             for s in slugs]
    h = assess(tmp_path, specs)
    inferred = h.skew[0]
    assert inferred.origin == "inferred" and inferred.links == 52 * 3 - 0
    assert inferred.top_letter == "a"
    assert inferred.top_slug_share == pytest.approx(2 / 52, abs=1e-3)
    assert inferred.ks > 0.8 and inferred.tvd > 0.8
    assert inferred.coverage == pytest.approx(4 / 52, abs=1e-3)
    assert inferred.flagged
    assert any(f.code == "target_skew" and "inferred" in f.message for f in h.flags)


def test_links_spread_like_the_slugs_are_not_flagged(tmp_path: Path) -> None:
    slugs = alphabet(2)
    # each pattern links to the pattern 13 and 26 places further on: every slug is hit alike
    specs = [Spec(s, links=[(slugs[(i + 13) % 52], "complementary", 0.8),
                            (slugs[(i + 26) % 52], "alternatives", 0.7)])
             for i, s in enumerate(slugs)]
    h = assess(tmp_path, specs)
    inferred = h.skew[0]
    assert inferred.ks < 0.05 and inferred.tvd < 0.05
    assert inferred.coverage == 1.0
    assert not inferred.flagged
    assert not any(f.code == "target_skew" for f in h.flags)


def test_few_links_are_never_flagged(tmp_path: Path) -> None:
    slugs = alphabet(1)
    specs = [Spec(s, links=[("aa-pattern-0", "enables", 0.8)] if s < "k" and s[0] != "a"
                  else []) for s in slugs]
    h = assess(tmp_path, specs)
    assert h.skew[0].links == 9 and h.skew[0].top_target_share == 1.0
    assert not h.skew[0].flagged


def test_ks_and_tvd_on_known_values() -> None:
    assert health.ks_uniform([0.5]) == pytest.approx(0.5)
    assert health.ks_uniform([0.125, 0.375, 0.625, 0.875]) == pytest.approx(0.125)
    assert health.ks_uniform([0.01, 0.02, 0.03]) == pytest.approx(0.97)
    assert health.total_variation({"a": 1.0}, {"a": 0.5, "b": 0.5}) == pytest.approx(0.5)
    assert health.rank_positions(["c", "a", "zz"], ["a", "b", "c", "d"]) == [0.125, 0.625]
    assert health.first_letter("Abc") == "a" and health.first_letter("5s") == "#"
    assert health.chi_square({"a": 10}, {"a": 0.5, "b": 0.5}) == pytest.approx(10.0)


# --- links ------------------------------------------------------------------------------------


def test_dangling_orphans_isolated_and_no_links(tmp_path: Path) -> None:
    specs = [
        Spec("hub", human={"enables": ["spoke", "ghost-human"]},
             links=[("ghost-inferred", "enables", 0.9)]),
        Spec("spoke", links=[("hub", "requires", 0.9)]),
        Spec("leaf", human={"requires": ["hub"]}),
        Spec("lonely"),
        Spec("dangler", links=[("nowhere", "tools", 0.7)]),
    ]
    lk = assess(tmp_path, specs).links
    assert (lk.human, lk.inferred) == (3, 3)
    assert (lk.dangling_human, lk.dangling_inferred) == (1, 2)
    assert lk.no_links == 1 and lk.no_links_examples == ["lonely"]
    assert lk.orphan_examples == ["dangler", "leaf", "lonely"]
    assert lk.isolated_examples == ["dangler", "lonely"]


# --- inverse pairs and conflicts ------------------------------------------------------------


def test_inverse_pairs(tmp_path: Path) -> None:
    specs = [
        Spec("general", human={"specializes_to": ["special"]}),
        Spec("special", links=[("general", "generalizes_from", 0.9)]),  # consistent
        Spec("maker", links=[("made", "enables", 0.8)]),
        Spec("made", human={"enables": ["maker"]}),  # both "enable" each other: wrong
        Spec("friend", links=[("pal", "requires", 0.8)]),
        Spec("pal", links=[("friend", "complementary", 0.8)]),  # other family: not judged
        Spec("solo", links=[("general", "enables", 0.8)]),  # no link back: one way
    ]
    inv = assess(tmp_path, specs).inverse
    assert (inv.checked, inv.consistent, inv.inconsistent) == (2, 1, 1)
    assert inv.examples == ["made enables maker, but maker enables made"]
    assert inv.one_way == 2  # friend requires pal, solo enables general


def test_conflicts_between_inferred_and_human_links(tmp_path: Path) -> None:
    specs = [
        Spec("a-one", human={"enables": ["b-two"], "related": ["c-three"]},
             links=[("b-two", "enables", 0.9),       # repeats the human link
                    ("c-three", "tools", 0.9)]),     # human says only "related": agrees
        Spec("b-two", human={"requires": ["c-three"]},
             links=[("c-three", "alternatives", 0.8)]),  # human says requires: conflict
        Spec("c-three", human={"specializes_to": ["d-four"]}),
        Spec("d-four", links=[("c-three", "specializes_to", 0.8)]),  # human reverse says no
    ]
    c = assess(tmp_path, specs).conflicts
    assert c.redundant == 2
    assert c.same_direction == 1 and c.reverse == 1
    assert "b-two: inferred alternatives -> c-three, human requires" in c.examples


# --- communities ----------------------------------------------------------------------------


def test_fragmented_vocabulary_is_flagged(tmp_path: Path) -> None:
    specs = [Spec(f"p{i:02d}", communities=[(f"topic-{i}", f"Topic {i}", 0.8),
                                              ("shared", "Shared", 0.9)])
             for i in range(12)] + [Spec("bare")]
    cm = assess(tmp_path, specs).communities
    assert (cm.distinct_ids, cm.singletons, cm.with_community) == (13, 12, 12)
    assert cm.without_community == 1
    assert cm.largest[0] == ("shared", 12)
    assert dict(cm.size_histogram)["1"] == 12 and dict(cm.size_histogram)["11-20"] == 1
    assert cm.fragmented


def test_a_shared_vocabulary_is_not_fragmented(tmp_path: Path) -> None:
    specs = [Spec(f"p{i:02d}", communities=[(f"topic-{i % 3}", f"Topic {i % 3}", 0.8)])
             for i in range(30)]
    g = graph.build(load(tmp_path, specs).patterns)
    cm = health.communities(g, registry_ids=["topic-0", "topic-1"])
    assert cm.distinct_ids == 3 and cm.singletons == 0 and not cm.fragmented
    assert cm.outside_registry == 10 and cm.registry_size == 2
    flags = health.flags(health.links(g), [], health.inverse_pairs(g), health.conflicts(g), cm)
    assert [f.code for f in flags if "communit" in f.code or "registry" in f.code] == [
        "outside_registry"]


# --- the command ----------------------------------------------------------------------------


def test_health_command_writes_every_export(tmp_path: Path) -> None:
    specs = [Spec("alpha", human={"enables": ["beta"]}, links=[("gamma", "requires", 0.8)],
                  communities=[("c-one", "One", 0.9)]),
             Spec("beta", links=[("alpha", "requires", 0.8), ("missing", "tools", 0.6)]),
             Spec("gamma")]
    lib = tmp_path / "lib"
    load(lib, specs)
    out = tmp_path / "out"
    out.mkdir()
    result = runner.invoke(app, ["health", str(lib), "--json", str(out / "h.json"),
                                 "--html", str(out / "h.html"),
                                 "--graphml", str(out / "g.graphml"),
                                 "--graph-json", str(out / "g.json")])
    assert result.exit_code == 0, result.output
    assert "dangling" in result.stdout
    data = json.loads((out / "h.json").read_text())
    assert data["links"]["dangling_inferred"] == 1
    assert data["inverse"]["consistent"] == 1
    assert data["skew"][0]["flagged"] is False
    g = nx.read_graphml(out / "g.graphml")
    assert sorted(g.nodes) == ["alpha", "beta", "gamma"]
    assert g.number_of_edges() == 3
    assert {d["origin"] for _, _, d in g.edges(data=True)} == {"human", "inferred"}
    exported = json.loads((out / "g.json").read_text())
    assert [n["id"] for n in exported["nodes"]] == ["alpha", "beta", "gamma"]
    assert exported["dangling"] == [{"source": "beta", "target": "missing", "type": "tools",
                                     "origin": "inferred"}]
    page = (out / "h.html").read_text()
    assert page.count('class="node"') == 3
    # self-contained: nothing is fetched (the only URL is the SVG namespace)
    assert re.search(r'(?:src|href)\s*=\s*"(?!data:|#)', page) is None
    assert "url(" not in page and "@import" not in page


def test_strict_exits_1_when_something_is_flagged(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    load(lib, [Spec("alpha", links=[("nowhere", "tools", 0.7)]), Spec("beta")])
    result = runner.invoke(app, ["health", str(lib), "--strict"])
    assert result.exit_code == 1
    assert "dangling" in result.stdout
