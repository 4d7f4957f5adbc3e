"""Small hand-made pattern libraries for the whole-library tests (graph, health, communities).

Each pattern is written as a real v7.1-style file, so the tests read it the way the
commands do; only what a test cares about needs saying.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gardener.library import load as library
from gardener.library.load import Library


@dataclass(frozen=True)
class Spec:
    slug: str
    title: str = ""
    summary: str = ""
    domain: str | None = None
    human: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Relationship type -> target slugs."""
    links: Sequence[tuple[str, str, float]] = ()
    """Inferred links: (target, type, confidence)."""
    communities: Sequence[tuple[str, str, float]] = ()
    """(id, label, confidence)."""
    entities: Sequence[tuple[str, float]] = ()
    """(id, relevance)."""
    garden: bool = True


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def text(spec: Spec) -> str:
    title = spec.title or spec.slug.replace("-", " ").title()
    lines = ["---", f"id: pat_{spec.slug.replace('-', '_')}", f"slug: {spec.slug}",
             f"title: {_q(title)}", f"summary: {_q(spec.summary or title)}"]
    if spec.domain:
        lines += ["ontology:", f"  domain: {spec.domain}"]
    lines.append("relationships:")
    if spec.human:
        for kind, targets in spec.human.items():
            lines.append(f"  {kind}:")
            lines += [f"    - slug: {t}\n      weight: 0.8" for t in targets]
    else:
        lines.append("  enables: []")
    if spec.garden:
        lines += ["graph_garden:", "  last_pruned: 2026-01-01"]
        if spec.entities:
            lines.append("  entities:")
            for eid, rel in spec.entities:
                lines += [f"    - id: {eid}", "      type: concept",
                          f"      label: {_q(eid.replace('-', ' '))}", f"      relevance: {rel}"]
        else:
            lines.append("  entities: []")
        if spec.communities:
            lines.append("  communities:")
            for cid, label, conf in spec.communities:
                lines += [f"    - id: {cid}", f"      label: {_q(label)}",
                          "      source: inferred", f"      confidence: {conf}"]
        else:
            lines.append("  communities: []")
        if spec.links:
            lines.append("  inferred_links:")
            for target, kind, conf in spec.links:
                lines += [f"    - target: {target}", f"      type: {kind}",
                          f"      confidence: {conf}", f"      reason: {_q('because')}"]
        else:
            lines.append("  inferred_links: []")
    lines += ["license: CC-BY-SA-4.0", "---", "", f"# {title}", "", "Body text.", ""]
    return "\n".join(lines)


def write(root: Path, specs: Sequence[Spec]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for spec in specs:
        (root / f"{spec.slug}.md").write_text(text(spec), encoding="utf-8")
    return root


def load(root: Path, specs: Sequence[Spec]) -> Library:
    lib = library.load(write(root, specs))
    assert not lib.errors, lib.errors
    return lib
