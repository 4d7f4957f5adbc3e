"""The health report as one static HTML page: the graph and the charts, drawn in SVG.

Self-contained on purpose: no CDN, no fetch, no font download. It opens from a file or any
static server, offline, years later. It stays readable at any size:

- the **community map** (``page_map``) draws each community as one disc and the links
  between two communities as one line, whatever the number of patterns;
- the **explorer** finds a pattern by name, or lists a community's members, and draws one
  pattern's neighbourhood on demand, from the library's patterns and links embedded as JSON;
- **every pattern** is drawn as well while the library is small (``DETAIL_LIMIT``): each
  community a disc packed in rows, largest first, its patterns on a sunflower spiral (most
  linked at the centre). Past that, thousands of dots and lines are a hairball, and the map
  and explorer say more.

All layouts are computed here, deterministically; the inline script only reacts.
"""

from __future__ import annotations

import html
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from gardener.graph.charts import Series, bar_chart, rank_chart
from gardener.graph.health import Health
from gardener.graph.library_graph import LibraryGraph
from gardener.graph.page_assets import SCRIPT, STYLE
from gardener.graph.page_map import (
    PALETTE,
    community_map,
    explorer_data,
    groups_of,
    map_svg,
    script_json,
)
from gardener.graph.page_map import colours as community_colours

DETAIL_LIMIT = 400
"""Libraries of at most this many patterns also get the drawing of every pattern."""
NODE_SPACING = 14.0
"""Distance between neighbouring patterns on a disc, in SVG units."""
GAP = 18.0
MIN_WIDTH = 900.0
"""A small library keeps its drawing at about its natural size instead of being blown up."""
LABELLED = 40
"""Communities with a name drawn on the graph (the largest); the rest are in tooltips."""
MIN_LABELLED_SIZE = 3
LABEL_CHAR_WIDTH = 7.0
"""Average width of a label character at the graph's font size, to cut labels to their disc."""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


# --- every pattern: the layout of the small library's drawing -----------------------------


@dataclass(frozen=True)
class Disc:
    name: str
    x: float
    y: float
    r: float
    members: tuple[str, ...]


def _sunflower(n: int, r: float) -> list[tuple[float, float]]:
    """``n`` points spread evenly over a disc of radius ``r`` (Vogel's spiral)."""
    golden = math.pi * (3 - math.sqrt(5))
    return [(r * math.sqrt((i + 0.5) / n) * math.cos(i * golden),
             r * math.sqrt((i + 0.5) / n) * math.sin(i * golden)) for i in range(n)]


def layout(graph: LibraryGraph) -> tuple[dict[str, tuple[float, float]], list[Disc], float,
                                          float]:
    """Positions of every pattern, the community discs, and the drawing's width and height."""
    groups = groups_of(graph)
    degree: Counter[str] = Counter()
    for e in graph.internal():
        degree[e.source] += 1
        degree[e.target] += 1
    radius = {g: NODE_SPACING * math.sqrt(len(groups[g])) * 0.62 + NODE_SPACING / 2
              for g in groups}
    area = sum((2 * radius[g] + GAP) ** 2 for g in groups)
    width = max(math.sqrt(area * 1.6), 2 * max(radius.values(), default=10.0) + GAP, MIN_WIDTH)
    discs: list[Disc] = []
    x = y = GAP
    row = 0.0
    for g in groups:
        d = 2 * radius[g]
        if x + d > width and x > GAP:
            x = GAP
            y += row + GAP
            row = 0.0
        members = tuple(sorted(groups[g], key=lambda s: (-degree[s], s)))
        discs.append(Disc(g, x + radius[g], y + radius[g], radius[g], members))
        x += d + GAP
        row = max(row, d)
    height = y + row + GAP
    positions: dict[str, tuple[float, float]] = {}
    for disc in discs:
        spots = _sunflower(len(disc.members), max(disc.r - NODE_SPACING / 2, 1.0))
        for slug, (dx, dy) in zip(disc.members, spots, strict=True):
            positions[slug] = (disc.x + dx, disc.y + dy)
    return positions, discs, max(width, x), height


def colours(discs: Sequence[Disc]) -> dict[str, str]:
    return community_colours([d.name for d in discs])


def graph_svg(graph: LibraryGraph) -> str:
    positions, discs, width, height = layout(graph)
    colour = colours(discs)
    parts = [f'<svg id="graph" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} '
             f'{height:.0f}" role="img" aria-label="library graph: patterns grouped by '
             f'community">']
    parts.append('<g class="discs">')
    for d in discs:
        parts.append(f'<circle class="disc" cx="{d.x:.1f}" cy="{d.y:.1f}" r="{d.r:.1f}" '
                     f'fill="{colour[d.name]}" fill-opacity="0.08" stroke="{colour[d.name]}" '
                     f'stroke-opacity="0.4"><title>{_e(d.name)}: {len(d.members)} '
                     'patterns</title></circle>')
    parts.append('</g><g class="edges">')
    for e in graph.internal():
        (x1, y1), (x2, y2) = positions[e.source], positions[e.target]
        parts.append(f'<line class="edge {e.origin}" x1="{x1:.1f}" y1="{y1:.1f}" '
                     f'x2="{x2:.1f}" y2="{y2:.1f}"/>')
    parts.append('</g><g class="nodes">')
    for d in discs:
        for slug in d.members:
            x, y = positions[slug]
            node = graph.nodes[slug]
            parts.append(f'<circle class="node" data-slug="{_e(slug)}" '
                         f'data-community="{_e(d.name)}" cx="{x:.1f}" cy="{y:.1f}" r="4" '
                         f'fill="{colour[d.name]}"><title>{_e(slug)}: {_e(node.title)} '
                         f'({_e(d.name)})</title></circle>')
    parts.append('</g><g class="labels">')
    for d in sorted(discs, key=lambda d: -len(d.members))[:LABELLED]:
        if len(d.members) < MIN_LABELLED_SIZE:
            continue
        text = f"{d.name} ({len(d.members)})"
        room = max(6, int((2 * d.r + GAP) / LABEL_CHAR_WIDTH))
        if len(text) > room:
            text = text[:room - 1] + "…"
        parts.append(f'<text x="{d.x:.1f}" y="{d.y - d.r - 4:.1f}" text-anchor="middle">'
                     f'{_e(text)}</text>')
    parts.append("</g></svg>")
    return "".join(parts)


# --- the page -----------------------------------------------------------------------------


def _tile(label: str, value: object) -> str:
    return f'<div class="tile">{_e(label)}<b>{_e(value)}</b></div>'


def _examples(title: str, items: Sequence[str]) -> str:
    if not items:
        return ""
    lis = "".join(f"<li>{_e(i)}</li>" for i in items)
    return f"<h3>{_e(title)}</h3><ul class=\"examples\">{lis}</ul>"


def _every_pattern(graph: LibraryGraph) -> str:
    """The drawing of every pattern, or why there is none."""
    n = len(graph.nodes)
    if n > DETAIL_LIMIT:
        return (f'<section><h2>Every pattern</h2><p class="muted">{n:,} patterns are too many '
                f'to draw one by one (more than {DETAIL_LIMIT:,}): the community map and the '
                'explorer above show them by community and by neighbourhood.</p></section>')
    _, discs, _, _ = layout(graph)
    colour = colours(discs)
    legend = "".join(
        f'<button data-community="{_e(d.name)}"><i style="background:{colour[d.name]}"></i>'
        f'{_e(d.name)} ({len(d.members)})</button>'
        for d in sorted(discs, key=lambda d: -len(d.members))[:LABELLED])
    return (f'<section><h2>Every pattern</h2><p id="graph-status"></p>'
            f'<div class="legend">{legend}</div>{graph_svg(graph)}'
            "<p>Each disc is a community, its area proportional to its patterns; blue lines "
            "are human links, red inferred ones. Click a community to highlight it, a pattern "
            "to draw its neighbourhood above.</p></section>")


def _explorer(graph: LibraryGraph) -> str:
    cmap = community_map(graph)
    basis = "registry" if graph.registry else "strongest garden id"
    return f"""<section><h2>Communities and their links</h2><p id="map-status"></p>
{map_svg(cmap)}
<p>Each disc is a community ({_e(basis)}), its area proportional to its patterns; a line
between two discs stands for the links between their patterns, wider for more.
{'The largest communities have a disc of their own, the others share one. ' if any(
    len(n.communities) > 1 for n in cmap.nodes) else ''}Choose a disc to list its
patterns.</p></section>
<section><h2>Explore a pattern's neighbourhood</h2><div class="explorer"><div>
<label for="pattern-search">Find a pattern (slug or title)</label>
<input id="pattern-search" type="search" autocomplete="off" placeholder="e.g. commons">
<p id="search-status" class="muted"></p><ul id="search-results" class="pick"></ul>
<div id="community"><p class="muted">Choose a community on the map to list its patterns.</p>
</div></div><div><p id="pattern-status" class="muted">Choose a pattern: its links out
(solid) and in (dashed), human in blue and inferred in red, are drawn here with its
neighbours' links among them (grey).</p>
<svg id="neighbourhood" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 900 720"
role="img" aria-label="the chosen pattern's neighbourhood"></svg>
<div class="lists"><div><h3>links out</h3><ul id="links-out" class="pick"></ul></div>
<div><h3>links in</h3><ul id="links-in" class="pick"></ul></div></div></div></div>
</section>
<script type="application/json" id="graph-data">{script_json(explorer_data(graph, cmap))}
</script>"""


def render(graph: LibraryGraph, health: Health, *, title: str) -> str:
    """The whole page."""
    lk, cm = health.links, health.communities
    flags = "".join(f'<div class="flag"><b>{_e(f.code)}</b>: {_e(f.message)}</div>'
                    for f in health.flags) or '<div class="ok">no problem flagged</div>'
    tiles = "".join([
        _tile("patterns", lk.patterns), _tile("human links", lk.human),
        _tile("inferred links", lk.inferred),
        _tile("dangling", lk.dangling_human + lk.dangling_inferred),
        _tile("orphans", lk.orphans), _tile("isolated", lk.isolated),
        _tile("no links", lk.no_links),
        _tile("inverse pairs wrong", f"{health.inverse.inconsistent}/{health.inverse.checked}"),
        _tile("conflicts with humans", health.conflicts.same_direction
              + health.conflicts.reverse),
        _tile("community ids", cm.distinct_ids),
    ])
    letters = sorted({*graph_letters(health)}, key=lambda c: (not c.isalpha(), c))
    inferred, human = health.skew[0], health.skew[1]
    letter_chart = bar_chart("letters-chart", "First letter: slugs against link targets",
                             letters, [Series("slugs", inferred.slug_letters, "#9aa5b1"),
                                       Series("inferred targets", inferred.target_letters,
                                              PALETTE[2]),
                                       Series("human targets", human.target_letters,
                                              PALETTE[0])])
    sizes = dict(cm.size_histogram)
    size_chart = bar_chart("sizes-chart", "Community ids by number of patterns using them",
                           list(sizes), [Series("community ids", sizes, PALETTE[4])],
                           percent=False, height=220)
    largest = "".join(f"<tr><td>{_e(cid)}</td><td>{n}</td></tr>" for cid, n in cm.largest)
    skew_rows = "".join(
        f"<tr><td>{s.origin}</td><td>{s.links}</td><td>{s.top_letter}: "
        f"{100 * s.top_target_share:.1f}% (slugs {100 * s.top_slug_share:.1f}%)</td>"
        f"<td>{s.tvd:.2f}</td><td>{s.ks:.2f}</td><td>{100 * s.coverage:.1f}%</td>"
        f"<td>{'yes' if s.flagged else 'no'}</td></tr>" for s in health.skew)
    entities = ""
    if health.entities is not None:
        en = health.entities
        entities = (f"<section><h2>Entities</h2><p>{en.distinct_ids} distinct entity ids; "
                    f"resolution folds {en.merged_ids} of them into {en.groups} others.</p>"
                    f"{_examples('merges', en.examples)}</section>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{_e(title)}</title><style>{STYLE}</style></head>
<body><header><h1>{_e(title)}</h1></header><main>
<section><h2>Flags</h2>{flags}</section>
<section><h2>Totals</h2><div class="tiles">{tiles}</div></section>
{_explorer(graph)}
{_every_pattern(graph)}
<section><h2>Link targets against the library</h2><div class="charts">
<div>{letter_chart}</div><div>{rank_chart(health.skew)}</div></div>
<table><tr><th>links</th><th>count</th><th>top letter</th><th>letter TVD</th>
<th>rank KS</th><th>patterns targeted</th><th>flagged</th></tr>{skew_rows}</table></section>
<section><h2>Communities</h2><p>{cm.distinct_ids} distinct ids, {cm.singletons} used by one
pattern; {cm.with_community} patterns have a community, {cm.without_community} none.</p>
{size_chart}<table><tr><th>largest</th><th>patterns</th></tr>{largest}</table></section>
{entities}
<section><h2>Examples</h2>
{_examples('dangling links', lk.dangling_examples)}
{_examples('inverse pairs that contradict', health.inverse.examples)}
{_examples('inferred links against human ones', health.conflicts.examples)}
{_examples('isolated patterns', lk.isolated_examples)}</section>
</main><script>{SCRIPT}</script></body></html>
"""


def graph_letters(health: Health) -> set[str]:
    out: set[str] = set()
    for s in health.skew:
        out.update(s.slug_letters)
        out.update(s.target_letters)
    return out

