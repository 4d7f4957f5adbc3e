"""The health page at any size: the community map, the explorer's data, and the drawing of
every pattern only while that stays readable.

Large libraries are built in memory (``LibraryGraph`` of the same shape ``library_graph.build``
gives: communities of many sizes, a long tail used by one pattern, patterns with none);
the small one goes through ``gardener health --html`` as a user runs it.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from graph_library import Spec, load
from typer.testing import CliRunner

from gardener.cli.main import app
from gardener.graph import health, page, page_map
from gardener.graph.library_graph import Edge, LibraryGraph, Node

runner = CliRunner()


def large_graph(communities: int = 60, tail: int = 120, none: int = 80) -> LibraryGraph:
    """Communities of 60, 59, ... down to 1 pattern (sizes shrinking), ``tail`` ids used by
    one pattern, ``none`` patterns with no community; each pattern links to the next two in
    its community, and every fifth to the first pattern of the next community."""
    nodes: dict[str, Node] = {}
    edges: list[Edge] = []
    firsts: list[str] = []
    for c in range(communities):
        size = max(communities - c, 1)
        slugs = [f"c{c:02d}-p{i:03d}" for i in range(size)]
        firsts.append(slugs[0])
        for i, s in enumerate(slugs):
            nodes[s] = Node(s, f"Pattern {i} of community {c}", f"{s}.md",
                            communities=(f"topic-{c:02d}",), community_labels=(f"Topic {c}",))
            for step in (1, 2):
                if size > step:
                    edges.append(Edge(s, slugs[(i + step) % size], "complementary", "inferred"))
    for c in range(communities):
        size = max(communities - c, 1)
        for i in range(0, size, 5):
            edges.append(Edge(f"c{c:02d}-p{i:03d}", firsts[(c + 1) % communities], "enables",
                              "human"))
    for t in range(tail):
        s = f"tail-{t:03d}"
        nodes[s] = Node(s, f"Tail {t}", f"{s}.md", communities=(f"lonely-{t:03d}",))
        edges.append(Edge(s, firsts[t % communities], "tools", "inferred"))
    for n in range(none):
        s = f"none-{n:03d}"
        nodes[s] = Node(s, f"Bare {n}", f"{s}.md")
    return LibraryGraph(nodes=nodes, edges=tuple(edges))


def data_of(html_text: str) -> dict[str, object]:
    found = re.search(r'<script type="application/json" id="graph-data">(.*?)</script>',
                      html_text, re.S)
    assert found is not None
    data = json.loads(found.group(1))
    assert isinstance(data, dict)
    return data


def test_a_large_library_is_drawn_as_communities_not_as_every_pattern() -> None:
    g = large_graph()
    assert len(g.nodes) > page.DETAIL_LIMIT
    text = page.render(g, health.assess(g), title="big")
    assert 'class="node"' not in text and 'id="graph"' not in text  # no hairball
    assert "too many to draw one by one" in text
    cmap = page_map.community_map(g)
    names = [n.name for n in cmap.nodes]
    # the 40 largest communities of more than one pattern, the rest together, then none
    assert names[:page_map.MAP_LIMIT] == [f"topic-{c:02d}" for c in range(page_map.MAP_LIMIT)]
    assert names[page_map.MAP_LIMIT:] == [page_map.OTHER, page_map.NO_COMMUNITY]
    other = cmap.nodes[page_map.MAP_LIMIT]
    assert len(other.communities) == 60 - page_map.MAP_LIMIT + 120
    assert other.size == sum(range(1, 21)) + 120
    assert cmap.nodes[-1].size == 80
    assert sum(n.size for n in cmap.nodes) == len(g.nodes)
    assert text.count('class="cnode"') == len(cmap.nodes)
    # the largest community's links inside, and the strongest line between two
    assert cmap.nodes[0].internal == 120
    assert cmap.links[0][2] == max(n for _, _, n in cmap.links)
    assert text.count('class="clink"') == min(len(cmap.links), page_map.MAP_LINKS)


def test_the_discs_do_not_overlap_and_are_sized_by_their_patterns() -> None:
    cmap = page_map.community_map(large_graph())
    nodes = cmap.nodes
    for i, a in enumerate(nodes):
        assert a.r > 0 and a.x - a.r >= 0 and a.y - a.r >= 0
        assert a.x + a.r <= cmap.width + 0.1 and a.y + a.r <= cmap.height + 0.1
        for b in nodes[i + 1:]:
            assert math.hypot(a.x - b.x, a.y - b.y) >= a.r + b.r - 0.2, (a.name, b.name)
    by_size = sorted(nodes, key=lambda n: n.size)
    assert [n.r for n in by_size] == sorted(n.r for n in by_size)
    assert page_map.community_map(large_graph()) == cmap  # deterministic


def test_the_explorer_data_holds_every_pattern_and_link_by_index() -> None:
    g = large_graph()
    data = data_of(page.render(g, health.assess(g), title="big"))
    patterns = data["patterns"]
    communities = data["communities"]
    nodes = data["nodes"]
    links = data["links"]
    types = data["types"]
    assert isinstance(patterns, list) and isinstance(communities, list)
    assert isinstance(nodes, list) and isinstance(links, list) and isinstance(types, list)
    assert [p[0] for p in patterns] == g.slugs
    assert len(links) == 3 * len(g.internal())
    slug = "c03-p005"
    i = g.slugs.index(slug)
    name, node = communities[patterns[i][2]]
    assert name == "topic-03" and nodes[node][0] == "topic-03"
    out = {(patterns[links[k + 1]][0], types[links[k + 2] >> 1], links[k + 2] & 1)
           for k in range(0, len(links), 3) if links[k] == i}
    assert out == {("c03-p006", "complementary", 1), ("c03-p007", "complementary", 1),
                   ("c04-p000", "enables", 0)}
    tail = g.slugs.index("tail-007")
    assert nodes[communities[patterns[tail][2]][1]][0] == page_map.OTHER


def test_text_from_the_library_cannot_end_the_pages_script(tmp_path: Path) -> None:
    nasty = "</script><script>alert(1)</script> & <b>"
    g = LibraryGraph(nodes={"a": Node("a", nasty, "a.md", communities=("x",)),
                            "b": Node("b", "B", "b.md", communities=("x",))},
                     edges=(Edge("a", "b", "enables", "human"),))
    text = page.render(g, health.assess(g), title="t")
    assert "<script>alert(1)" not in text
    assert text.count("</script>") == 2  # the data's and the page script's own
    assert data_of(text)["patterns"] == [["a", nasty, 0], ["b", "B", 0]]


def test_a_small_library_keeps_every_pattern_drawn_and_gets_the_map(tmp_path: Path) -> None:
    specs = [Spec(f"{theme}-{i}", communities=[(theme, theme.title(), 0.9)],
                  links=[(f"{theme}-{(i + 1) % 3}", "enables", 0.8)])
             for theme in ("water", "code") for i in range(3)]
    lib = tmp_path / "lib"
    load(lib, specs)
    out = tmp_path / "h.html"
    result = runner.invoke(app, ["health", str(lib), "--html", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert text.count('class="node"') == 6 and text.count('class="edge ') == 6
    assert text.count('class="cnode"') == 2  # water and code, no "other", no "(none)"
    assert text.count('<line class="clink"') == 0  # no link between the two
    assert '<button data-community="water">' in text
    assert re.search(r'(?:src|href)\s*=\s*"(?!data:|#)', text) is None
    assert "url(" not in text and "@import" not in text
