"""The health page's community map, and the data its pattern explorer draws from.

Thousands of patterns drawn one by one are a hairball; the map draws each community as one
disc (area proportional to its patterns) and the links between two communities as one line
(width by how many). The ``MAP_LIMIT`` largest communities have a disc of their own, the rest
share one ("other communities"), and patterns with none have theirs. The layout is
networkx's seeded spring layout on the communities (linked ones end up near each other),
then discs pushed apart until none overlap: deterministic, and quick for fifty discs.

The explorer needs no drawing from here: ``explorer_data`` is every pattern (slug, title,
community) and every link within the library, as compact JSON the page's script reads to
list a community's members, find a pattern by name and draw its neighbourhood on demand.
"""

from __future__ import annotations

import html
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx

from gardener.graph.library_graph import LibraryGraph

PALETTE: tuple[str, ...] = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
    "#b07aa1", "#ff9da7", "#9c755f", "#86bcb6", "#d37295", "#8cd17d",
)
NO_COMMUNITY = "(none)"
NONE_COLOUR = "#b8b8b8"
OTHER = "other communities"
OTHER_COLOUR = "#8a96a3"
MAP_LIMIT = 40
"""Communities with a disc of their own on the map (the largest)."""
MAP_LINKS = 150
"""Lines drawn between communities (the strongest); the explorer lists them all."""
MAP_WIDTH = 1000.0
R_MIN, R_MAX = 8.0, 110.0
"""Radius of the smallest and the largest disc, in SVG units, before the drawing is fitted
to its width."""
R_SMALL, R_PER_ROOT = 24.0, 6.0
"""The largest disc's radius is this many units per square root of its patterns (between
R_SMALL and R_MAX): three communities of four patterns are not drawn as three moons."""
MAX_ZOOM = 2.0
"""A map of a few communities is enlarged at most this much to fill the width."""
HUB_WEIGHT = 0.15
GAP = 10.0
LABEL_MIN_R = 16.0
"""Discs at least this large carry their name inside; smaller ones in their tooltip."""
TITLE_LIMIT = 100
SEED = 7


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def groups_of(graph: LibraryGraph) -> dict[str, list[str]]:
    """Each community's patterns, largest community first, patterns without one last."""
    groups: dict[str, list[str]] = {}
    for slug in graph.slugs:
        groups.setdefault(graph.group_of(slug) or NO_COMMUNITY, []).append(slug)
    order = sorted(groups, key=lambda g: (g == NO_COMMUNITY, -len(groups[g]), g))
    return {g: groups[g] for g in order}


def colours(names: Sequence[str]) -> dict[str, str]:
    """A colour per community, in the order given (largest first); the same on every view."""
    out: dict[str, str] = {}
    for i, name in enumerate(n for n in names if n != NO_COMMUNITY):
        out[name] = PALETTE[i % len(PALETTE)]
    out[NO_COMMUNITY] = NONE_COLOUR
    return out


@dataclass(frozen=True)
class MapNode:
    name: str
    size: int
    """Patterns it stands for."""
    communities: tuple[str, ...]
    """The communities it draws: one, or many for ``OTHER``."""
    internal: int
    """Links with both ends inside."""
    colour: str
    x: float = 0.0
    y: float = 0.0
    r: float = 0.0


@dataclass(frozen=True)
class CommunityMap:
    nodes: tuple[MapNode, ...]
    links: tuple[tuple[int, int, int], ...]
    """(node, node, links between them), strongest first."""
    node_of: Mapping[str, int]
    """Each community's node."""
    width: float
    height: float


def _nodes(groups: Mapping[str, Sequence[str]]) -> tuple[list[MapNode], dict[str, int]]:
    names = [g for g in groups if g != NO_COMMUNITY]
    own = names if len(names) <= MAP_LIMIT else [g for g in names[:MAP_LIMIT]
                                                  if len(groups[g]) > 1]
    rest = [g for g in names if g not in set(own)]
    colour = colours(list(groups))
    nodes = [MapNode(g, len(groups[g]), (g,), 0, colour[g]) for g in own]
    if rest:
        nodes.append(MapNode(OTHER, sum(len(groups[g]) for g in rest), tuple(rest), 0,
                             OTHER_COLOUR))
    if NO_COMMUNITY in groups:
        nodes.append(MapNode(NO_COMMUNITY, len(groups[NO_COMMUNITY]), (NO_COMMUNITY,), 0,
                             NONE_COLOUR))
    node_of = {c: i for i, n in enumerate(nodes) for c in n.communities}
    return nodes, node_of


def _separate(pos: list[list[float]], radii: Sequence[float], rounds: int = 400) -> None:
    """Push overlapping discs apart along the line between their centres, until none
    overlap (or ``rounds`` passes); coincident centres part along a fixed direction."""
    n = len(pos)
    for _ in range(rounds):
        moved = False
        for i in range(n):
            for j in range(i + 1, n):
                dx, dy = pos[j][0] - pos[i][0], pos[j][1] - pos[i][1]
                d = math.hypot(dx, dy)
                need = radii[i] + radii[j] + GAP
                if d >= need:
                    continue
                if d < 1e-9:
                    angle = 2.399963 * (i + j)
                    dx, dy, d = math.cos(angle), math.sin(angle), 1.0
                push = (need - d) / 2 + 0.01
                ux, uy = dx / d, dy / d
                pos[i][0] -= ux * push
                pos[i][1] -= uy * push
                pos[j][0] += ux * push
                pos[j][1] += uy * push
                moved = True
        if not moved:
            return


def _spring(n: int, links: Sequence[tuple[int, int, int]],
            radii: Sequence[float]) -> list[list[float]]:
    """Seeded spring layout of the discs, linked ones drawn together (weight: the log of
    their links), every disc tied weakly to a hub so that unlinked ones stay near instead of
    being flung to the edges; scaled so that the discs' areas roughly fill the drawing."""
    if n < 2:
        return [[0.0, 0.0] for _ in range(n)]
    g: nx.Graph[int] = nx.Graph()
    g.add_nodes_from(range(n + 1))
    for a, b, count in links:
        g.add_edge(a, b, weight=math.log1p(count))
    for i in range(n):
        g.add_edge(i, n, weight=HUB_WEIGHT)
    raw = nx.spring_layout(g, weight="weight", seed=SEED, iterations=200)
    spread = math.sqrt(sum((2 * r + GAP) ** 2 for r in radii)) * 0.6
    cx, cy = float(raw[n][0]), float(raw[n][1])
    return [[(float(raw[i][0]) - cx) * spread, (float(raw[i][1]) - cy) * spread]
            for i in range(n)]


def community_map(graph: LibraryGraph) -> CommunityMap:
    """The communities as discs and the links between them as weighted pairs, laid out."""
    groups = groups_of(graph)
    nodes, node_of = _nodes(groups)
    group = {s: node_of[g] for g, members in groups.items() for s in members}
    internal: Counter[int] = Counter()
    between: Counter[tuple[int, int]] = Counter()
    for e in graph.internal():
        a, b = group[e.source], group[e.target]
        if a == b:
            internal[a] += 1
        else:
            between[(min(a, b), max(a, b))] += 1
    links = tuple(sorted(((a, b, n) for (a, b), n in between.items()),
                         key=lambda t: (-t[2], t[0], t[1])))
    largest = max((n.size for n in nodes), default=1)
    top_r = min(R_MAX, max(R_SMALL, R_PER_ROOT * math.sqrt(largest)))
    radii = [R_MIN + (top_r - R_MIN) * math.sqrt(n.size / largest) for n in nodes]
    pos = _spring(len(nodes), links, radii)
    _separate(pos, radii)
    margin = GAP
    left = min((p[0] - r for p, r in zip(pos, radii, strict=True)), default=0.0)
    top = min((p[1] - r for p, r in zip(pos, radii, strict=True)), default=0.0)
    right = max((p[0] + r for p, r in zip(pos, radii, strict=True)), default=0.0)
    bottom = max((p[1] + r for p, r in zip(pos, radii, strict=True)), default=0.0)
    scale = min(MAX_ZOOM, (MAP_WIDTH - 2 * margin) / max(right - left, 1.0))
    width = max(MAP_WIDTH, 2 * margin + (right - left) * scale)
    indent = margin + (width - 2 * margin - (right - left) * scale) / 2  # centred
    placed = tuple(
        MapNode(n.name, n.size, n.communities, internal[i], n.colour,
                round(indent + (p[0] - left) * scale, 1), round(margin + (p[1] - top) * scale, 1),
                round(r * scale, 1))
        for i, (n, p, r) in enumerate(zip(nodes, pos, radii, strict=True)))
    height = 2 * margin + (bottom - top) * scale
    return CommunityMap(placed, links, node_of, round(width, 1), round(height, 1))


def _label(node: MapNode) -> str:
    """The name and size inside a disc, cut to its width (about 6.5 units a character)."""
    room = max(int(2 * node.r / 6.5), 3)
    name = node.name if len(node.name) <= room else node.name[:room - 1] + "…"
    return (f'<text class="name" x="{node.x}" y="{node.y - 2:.1f}" text-anchor="middle">'
            f'{_e(name)}</text><text class="size" x="{node.x}" y="{node.y + 11:.1f}" '
            f'text-anchor="middle">{node.size:,}</text>')


def map_svg(cmap: CommunityMap) -> str:
    """The map as inline SVG: lines between communities under discs; every element titled."""
    parts = [f'<svg id="community-map" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 '
             f'{cmap.width:.0f} {cmap.height:.0f}" role="img" aria-label="community map: each '
             'disc a community, each line the links between two">', '<g class="clinks">']
    strongest = max((n for _, _, n in cmap.links), default=1)
    for a, b, n in cmap.links[:MAP_LINKS]:
        na, nb = cmap.nodes[a], cmap.nodes[b]
        width = 0.6 + 7.0 * math.sqrt(n / strongest)
        parts.append(f'<line class="clink" data-a="{a}" data-b="{b}" x1="{na.x}" y1="{na.y}" '
                     f'x2="{nb.x}" y2="{nb.y}" stroke-width="{width:.1f}"><title>{_e(na.name)}'
                     f' – {_e(nb.name)}: {n:,} link{"s" if n != 1 else ""}</title></line>')
    parts.append('</g><g class="cnodes">')
    for i, node in enumerate(cmap.nodes):
        many = (f", {len(node.communities):,} communities"
                if len(node.communities) > 1 else "")
        parts.append(f'<g class="cnode" data-node="{i}" tabindex="0" role="button">'
                     f'<circle cx="{node.x}" cy="{node.y}" r="{node.r}" fill="{node.colour}" '
                     f'stroke="{node.colour}"/><title>{_e(node.name)}: {node.size:,} '
                     f'pattern{"s" if node.size != 1 else ""}{many}, {node.internal:,} links '
                     'inside</title>')
        if node.r >= LABEL_MIN_R:
            parts.append(_label(node))
        parts.append("</g>")
    parts.append("</g></svg>")
    return "".join(parts)


def explorer_data(graph: LibraryGraph, cmap: CommunityMap) -> dict[str, Any]:
    """What the explorer draws from: map nodes, communities, patterns and links, by index.

    ``links`` is flat: source, target, code (type index times two, plus one when inferred).
    """
    groups = groups_of(graph)
    names = list(groups)
    community = {s: i for i, (g, members) in enumerate(groups.items()) for s in members}
    slugs = graph.slugs
    index = {s: i for i, s in enumerate(slugs)}
    types = sorted({e.type or "?" for e in graph.internal()})
    type_index = {t: i for i, t in enumerate(types)}
    flat: list[int] = []
    for e in graph.internal():
        flat += [index[e.source], index[e.target],
                 2 * type_index[e.type or "?"] + (e.origin == "inferred")]
    return {
        "nodes": [[n.name, n.size, n.colour] for n in cmap.nodes],
        "communities": [[g, cmap.node_of[g]] for g in names],
        "patterns": [[s, _clip(graph.nodes[s].title), community[s]] for s in slugs],
        "types": types,
        "links": flat,
    }


def _clip(text: str) -> str:
    one = " ".join(text.split())
    return one if len(one) <= TITLE_LIMIT else one[:TITLE_LIMIT - 1] + "…"


def script_json(data: Mapping[str, Any]) -> str:
    """JSON safe inside a ``<script>`` element: no ``<``, ``>`` or ``&`` left to end it."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
