"""The health report as one static HTML page: the graph and the charts, drawn in SVG.

Self-contained on purpose: no CDN, no fetch, no font download. It opens from a file or any
static server, offline, years later. The graph layout is computed here, deterministically:
each community is a disc (area proportional to its size) packed in rows, largest first, its
patterns spread over the disc on a sunflower spiral (most linked at the centre). With
thousands of patterns a force layout would need numpy or seconds of script; this one is
linear, and it shows the thing a health report is about: how the library falls into
communities, and which links cross them. A short inline script only highlights.
"""

from __future__ import annotations

import html
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gardener.graph.health import Health, Skew
from gardener.graph.library_graph import LibraryGraph

PALETTE: tuple[str, ...] = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
    "#b07aa1", "#ff9da7", "#9c755f", "#86bcb6", "#d37295", "#8cd17d",
)
NO_COMMUNITY = "(none)"
NONE_COLOUR = "#b8b8b8"
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


# --- layout -------------------------------------------------------------------------------


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
    groups: dict[str, list[str]] = {}
    for slug in graph.slugs:
        groups.setdefault(graph.group_of(slug) or NO_COMMUNITY, []).append(slug)
    degree: Counter[str] = Counter()
    for e in graph.internal():
        degree[e.source] += 1
        degree[e.target] += 1
    order = sorted(groups, key=lambda g: (g == NO_COMMUNITY, -len(groups[g]), g))
    radius = {g: NODE_SPACING * math.sqrt(len(groups[g])) * 0.62 + NODE_SPACING / 2
              for g in order}
    area = sum((2 * radius[g] + GAP) ** 2 for g in order)
    width = max(math.sqrt(area * 1.6), 2 * max(radius.values(), default=10.0) + GAP, MIN_WIDTH)
    discs: list[Disc] = []
    x = y = GAP
    row = 0.0
    for g in order:
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
    out: dict[str, str] = {}
    for i, disc in enumerate(d for d in discs if d.name != NO_COMMUNITY):
        out[disc.name] = PALETTE[i % len(PALETTE)]
    out[NO_COMMUNITY] = NONE_COLOUR
    return out


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


# --- charts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    name: str
    values: Mapping[str, float]
    colour: str


def bar_chart(chart_id: str, title: str, categories: Sequence[str], series: Sequence[Series],
              *, percent: bool = True, width: int = 900, height: int = 260) -> str:
    """Grouped vertical bars, one group per category; the y axis starts at zero."""
    left, bottom, top = 44, 34, 26
    plot_w, plot_h = width - left - 10, height - bottom - top
    peak = max((v for s in series for v in s.values.values()), default=0.0) or 1.0
    group_w = plot_w / max(len(categories), 1)
    bar_w = max(group_w * 0.8 / max(len(series), 1), 1.0)
    out = [f'<svg id="{chart_id}" class="chart" xmlns="http://www.w3.org/2000/svg" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e(title)}">',
           f'<text class="title" x="{left}" y="16">{_e(title)}</text>']
    for frac in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - frac)
        shown = f"{100 * peak * frac:.0f}%" if percent else f"{peak * frac:.0f}"
        out.append(f'<line class="grid" x1="{left}" x2="{width - 10}" y1="{y:.1f}" '
                   f'y2="{y:.1f}"/><text class="axis" x="{left - 4}" y="{y + 4:.1f}" '
                   f'text-anchor="end">{shown}</text>')
    for i, cat in enumerate(categories):
        gx = left + i * group_w + group_w * 0.1
        for j, s in enumerate(series):
            v = s.values.get(cat, 0.0)
            h = plot_h * v / peak
            shown = f"{100 * v:.1f}%" if percent else f"{v:g}"
            out.append(f'<rect class="bar" data-series="{_e(s.name)}" x="{gx + j * bar_w:.1f}" '
                       f'y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                       f'fill="{s.colour}"><title>{_e(s.name)}, {_e(cat)}: {shown}</title>'
                       '</rect>')
        out.append(f'<text class="axis" x="{left + (i + 0.5) * group_w:.1f}" '
                   f'y="{height - bottom + 14}" text-anchor="middle">{_e(cat)}</text>')
    for j, s in enumerate(series):
        lx = left + 8 + j * 190
        out.append(f'<rect x="{lx}" y="{height - 13}" width="10" height="10" '
                   f'fill="{s.colour}"/><text class="axis" x="{lx + 14}" '
                   f'y="{height - 4}">{_e(s.name)}</text>')
    out.append("</svg>")
    return "".join(out)


def rank_chart(skews: Sequence[Skew], width: int = 420, height: int = 300) -> str:
    """The empirical distribution of target positions in the alphabet, against the diagonal
    a library-wide spread would follow: the skew detector, as a picture."""
    pad = 40
    size_w, size_h = width - pad - 12, height - pad - 28
    out = [f'<svg id="rank-chart" class="chart" xmlns="http://www.w3.org/2000/svg" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="rank distribution">',
           f'<text class="title" x="{pad}" y="16">Where link targets sit in the sorted slugs'
           '</text>',
           f'<rect class="frame" x="{pad}" y="28" width="{size_w}" height="{size_h}"/>',
           f'<line class="uniform" x1="{pad}" y1="{28 + size_h}" x2="{pad + size_w}" y2="28"/>']
    colour = {"inferred": PALETTE[2], "human": PALETTE[0]}
    for s in skews:
        pos = s.rank_positions
        if not pos:
            continue
        step = max(1, len(pos) // 400)
        points = [f"{pad:.1f},{28 + size_h:.1f}"]
        for i in range(0, len(pos), step):
            y = 28 + size_h * (1 - (i + 1) / len(pos))
            points.append(f"{pad + size_w * pos[i]:.1f},{y:.1f}")
        points.append(f"{pad + size_w:.1f},28.0")
        out.append(f'<polyline class="ecdf" data-origin="{s.origin}" fill="none" '
                   f'stroke="{colour.get(s.origin, "#333")}" stroke-width="2" '
                   f'points="{" ".join(points)}"><title>{s.origin}: KS distance {s.ks:.2f}'
                   '</title></polyline>')
    out.append(f'<text class="axis" x="{pad}" y="{height - 8}">a … z (position among the '
               'slugs)</text>')
    legend_y = 44
    for origin, c in colour.items():
        out.append(f'<text class="axis" x="{pad + 8}" y="{legend_y}" fill="{c}">{origin}</text>')
        legend_y += 14
    out.append(f'<text class="axis" x="{pad + size_w - 4}" y="{28 + size_h - 6}" '
               'text-anchor="end">uniform</text></svg>')
    return "".join(out)


# --- the page -----------------------------------------------------------------------------


STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#222;
background:#fafafa}
header{padding:16px 24px;background:#23313f;color:#fff}header h1{margin:0;font-size:20px}
main{padding:8px 24px 40px;max-width:1300px}
section{background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:12px 16px;margin:14px 0}
h2{font-size:16px;margin:4px 0 10px}
.tiles{display:flex;flex-wrap:wrap;gap:10px}
.tile{border:1px solid #e3e3e3;border-radius:6px;padding:8px 12px;min-width:120px;
background:#fdfdfd}
.tile b{display:block;font-size:20px}
.flag{border-left:4px solid #e15759;padding:4px 10px;margin:6px 0;background:#fff5f5}
.ok{border-left:4px solid #59a14f;padding:4px 10px;background:#f4fbf3}
#graph{width:100%;height:auto;border:1px solid #eee;background:#fff}
#graph .edge{stroke-opacity:.25;stroke-width:.7}#graph .edge.human{stroke:#4e79a7}
#graph .edge.inferred{stroke:#e15759}
#graph .node{stroke:#fff;stroke-width:.8}#graph .labels text{font-size:11px;fill:#333}
#graph.focus .node{opacity:.12}#graph.focus .node.on{opacity:1}
.chart{width:100%;max-width:900px;height:auto}.chart .title{font-weight:600;font-size:13px}
.chart .axis{font-size:11px;fill:#555}.chart .grid{stroke:#eee}
.chart .frame{fill:none;stroke:#ccc}.chart .uniform{stroke:#999;stroke-dasharray:4 3}
.charts{display:grid;grid-template-columns:minmax(0,2fr) minmax(0,1fr);gap:12px}
.legend{display:flex;flex-wrap:wrap;gap:6px;margin:8px 0}
.legend button{border:1px solid #ddd;background:#fff;border-radius:12px;padding:2px 8px;
cursor:pointer;font:inherit;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:4px}
table{border-collapse:collapse;font-size:13px}td,th{padding:2px 10px 2px 0;text-align:left}
ul.examples{font-size:13px;margin:4px 0;padding-left:18px}
"""

SCRIPT = """
(function () {
  var svg = document.getElementById('graph');
  var nodes = svg.querySelectorAll('circle.node');
  var status = document.getElementById('graph-status');
  status.textContent = nodes.length + ' patterns, ' +
    svg.querySelectorAll('line.edge').length + ' links drawn';
  var current = null;
  document.querySelectorAll('.legend button').forEach(function (b) {
    b.addEventListener('click', function () {
      var name = b.getAttribute('data-community');
      current = current === name ? null : name;
      svg.classList.toggle('focus', current !== null);
      nodes.forEach(function (n) {
        n.classList.toggle('on', n.getAttribute('data-community') === current);
      });
    });
  });
})();
"""


def _tile(label: str, value: object) -> str:
    return f'<div class="tile">{_e(label)}<b>{_e(value)}</b></div>'


def _examples(title: str, items: Sequence[str]) -> str:
    if not items:
        return ""
    lis = "".join(f"<li>{_e(i)}</li>" for i in items)
    return f"<h3>{_e(title)}</h3><ul class=\"examples\">{lis}</ul>"


def render(graph: LibraryGraph, health: Health, *, title: str) -> str:
    """The whole page."""
    lk, cm = health.links, health.communities
    _, discs, _, _ = layout(graph)
    colour = colours(discs)
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
    legend = "".join(
        f'<button data-community="{_e(d.name)}"><i style="background:{colour[d.name]}"></i>'
        f'{_e(d.name)} ({len(d.members)})</button>'
        for d in sorted(discs, key=lambda d: -len(d.members))[:LABELLED])
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
<section><h2>Graph</h2><p id="graph-status"></p>
<div class="legend">{legend}</div>{graph_svg(graph)}
<p>Each disc is a community ({_e('registry' if graph.registry else 'strongest garden id')}),
its area proportional to its patterns; blue lines are human links, red inferred ones.
Click a community to highlight it.</p></section>
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
