"""The library as one graph: every pattern, every human and inferred link, every community.

Per-pattern gardening sees one file at a time; the health of a library (skewed targets,
dangling links, orphans, contradictory pairs, a fragmented community vocabulary) only shows
on the whole. ``LibraryGraph`` is that whole as plain data, built once from the patterns;
networkx, GraphML and JSON are views of it for analysis and export.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import networkx as nx

from gardener.library.write import write_atomic
from gardener.model import Pattern

Origin = Literal["human", "inferred"]


@dataclass(frozen=True)
class Edge:
    """One link as written: from a pattern to a target that may or may not exist."""

    source: str
    target: str
    type: str
    origin: Origin
    confidence: float | None = None


@dataclass(frozen=True)
class Node:
    slug: str
    title: str
    path: str
    communities: tuple[str, ...] = ()
    """The community ids of the pattern's garden, strongest first."""
    community_labels: tuple[str, ...] = ()
    entities: tuple[str, ...] = ()


@dataclass(frozen=True)
class LibraryGraph:
    """All patterns (first file wins on a shared slug) and every link they hold."""

    nodes: Mapping[str, Node]
    edges: tuple[Edge, ...]
    registry: Mapping[str, str] = field(default_factory=dict)
    """Registry community per slug, when the library has a community registry."""

    @property
    def slugs(self) -> list[str]:
        return sorted(self.nodes)

    def internal(self, origin: Origin | None = None) -> list[Edge]:
        """Edges whose target is a pattern of the library, other than the source itself."""
        return [e for e in self.edges if e.target in self.nodes and e.target != e.source
                and (origin is None or e.origin == origin)]

    def dangling(self, origin: Origin | None = None) -> list[Edge]:
        return [e for e in self.edges if e.target not in self.nodes
                and (origin is None or e.origin == origin)]

    def group_of(self, slug: str) -> str | None:
        """The community a pattern is drawn in: its registry one, else its strongest own."""
        if slug in self.registry:
            return self.registry[slug]
        node = self.nodes[slug]
        return node.communities[0] if node.communities else None


def build(patterns: Iterable[Pattern], registry: Mapping[str, str] | None = None
          ) -> LibraryGraph:
    """The graph of a library's patterns; unresolved human references keep their raw text."""
    nodes: dict[str, Node] = {}
    edges: list[Edge] = []
    for p in patterns:
        if p.slug in nodes:
            continue
        garden = p.garden
        communities = garden.communities if garden else ()
        ordered = sorted(communities, key=lambda c: -(c.confidence or 0.0))
        nodes[p.slug] = Node(
            slug=p.slug, title=p.title, path=str(p.path),
            communities=tuple(dict.fromkeys(c.id for c in ordered)),
            community_labels=tuple(c.label or c.id for c in ordered),
            entities=tuple(dict.fromkeys(e.id for e in garden.entities)) if garden else (),
        )
        edges.extend(Edge(p.slug, r.target, r.type, "human", r.weight) for r in p.relationships)
        if garden is not None:
            edges.extend(Edge(p.slug, lk.target, lk.type or "", "inferred", lk.confidence)
                         for lk in garden.inferred_links)
    return LibraryGraph(nodes=nodes, edges=tuple(edges), registry=dict(registry or {}))


def to_networkx(graph: LibraryGraph) -> nx.MultiDiGraph[str]:
    """Patterns as nodes, internal links as typed edges; dangling targets are left out."""
    g: nx.MultiDiGraph[str] = nx.MultiDiGraph()
    for slug in graph.slugs:
        node = graph.nodes[slug]
        g.add_node(slug, title=node.title, path=node.path,
                   community=graph.group_of(slug) or "",
                   communities=",".join(node.communities),
                   entities=",".join(node.entities))
    for e in graph.internal():
        attrs: dict[str, Any] = {"type": e.type, "origin": e.origin}
        if e.confidence is not None:
            attrs["confidence"] = float(e.confidence)
        g.add_edge(e.source, e.target, **attrs)
    return g


def undirected(graph: LibraryGraph, origins: Sequence[Origin] = ("human", "inferred")
               ) -> nx.Graph[str]:
    """One weighted edge per linked pair (weight: number of links between them)."""
    g: nx.Graph[str] = nx.Graph()
    g.add_nodes_from(graph.slugs)
    for e in graph.internal():
        if e.origin not in origins:
            continue
        a, b = sorted((e.source, e.target))
        w = g.edges[a, b]["weight"] + 1.0 if g.has_edge(a, b) else 1.0
        g.add_edge(a, b, weight=w)
    return g


def write_graphml(graph: LibraryGraph, path: Path) -> None:
    write_atomic(path, "\n".join(nx.generate_graphml(to_networkx(graph))) + "\n")


def graph_json(graph: LibraryGraph) -> dict[str, Any]:
    """Node-link JSON: every pattern, every internal link, and the dangling ones apart."""
    return {
        "nodes": [{"id": s, "title": graph.nodes[s].title, "path": graph.nodes[s].path,
                   "community": graph.group_of(s),
                   "communities": list(graph.nodes[s].communities)} for s in graph.slugs],
        "links": [{"source": e.source, "target": e.target, "type": e.type,
                   "origin": e.origin, "confidence": e.confidence}
                  for e in graph.internal()],
        "dangling": [{"source": e.source, "target": e.target, "type": e.type,
                      "origin": e.origin} for e in graph.dangling()],
    }


def write_graph_json(graph: LibraryGraph, path: Path) -> None:
    write_atomic(path, json.dumps(graph_json(graph), indent=1, ensure_ascii=False) + "\n")
