"""Shared helpers for the writer's tests: build documents from text and check kept bytes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from gardener.library.document import Document, read_text
from gardener.library.garden import read_garden
from gardener.model import Community, Entity, Garden, Link

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPUS = SHARED / "corpus"
SEED = SHARED / "seed" / "distributed-leadership-design.md"


# A v7.1 file in three parts: everything before the garden, the garden, everything after.
HEAD = (
    "---\n"
    "# ═══════════════\n# GROUP 1: CORE IDENTITY\n# ═══════════════\n"
    "id: pat_01\n"
    "slug: demo\n"
    'title: "Demo: a pattern"\n'
    "summary: >-\n  Folded text that\n  wraps over lines.\n"
    "\n"
    "ontology:\n  domain: x\n  search_hints:\n"
    '    vector_keywords: ["a", "b"]\n'
    "relationships:\n  enables:\n    - slug: other\n      weight: 0.85\n  tools: []\n"
    "# ═══════════════\n# GROUP 6: GRAPH GARDEN (Machine-Written Graph)\n# ═══════════════\n"
)
GARDEN = (
    "graph_garden:\n"
    "  last_pruned: 2026-02-19\n"
    "  entities:\n"
    "    - id: distributed-leadership\n"
    "      type: concept\n"
    '      label: "Distributed Leadership"\n'
    "      relevance: 1.0\n"
    "  communities: []\n"
    "  inferred_links:\n"
    "    - target: adaptive-facilitation\n"
    "      type: complementary\n"
    "      confidence: 0.88\n"
    '      reason: "Real-time facilitation helps"\n'
    "    - target: accountability-partnership\n"
    "      type: enables\n"
    "      confidence: 0.85\n"
    '      reason: "Mutual accountability"\n'
)
TAIL = (
    "\n# ═══════════════\n# GROUP 7: PROVENANCE\n# ═══════════════\n"
    'contributors: ["higgerix", "cloudsters"]\n'
    "sources:\n  - \"Cooperative Design\"\n"
    "license: CC-BY-SA-4.0\n"
    "---\n\nBody text.\n\n---\n\n### Section 1\n"
)
FILE = HEAD + GARDEN + TAIL

# A folded vitality_reasoning between other keys, for the nested-scalar splice.
ONTOLOGY = (
    "---\n"
    "ontology:\n"
    "  domain: x\n"
    "  commons_assessment:\n"
    "    vitality: 3.5\n"
    "    vitality_reasoning: >-\n"
    "      This pattern sustains vitality by maintaining and renewing the\n"
    "      system's existing health.\n"
    "    overall_score: 3.9\n"
    "\n# banner\n"
    "lifecycle:\n  status: draft\n"
    "---\nbody\n"
)
KEYS = ("ontology", "commons_assessment", "vitality_reasoning")


def doc(text: str, path: str = "pattern.md") -> Document:
    """A Document from file text (which must have front matter)."""
    d = read_text(text, path)
    assert d is not None, "test text has no front matter"
    return d


def middle(new: str, head: str, tail: str) -> str:
    """The part of ``new`` between an unchanged ``head`` and ``tail``, asserting both kept."""
    assert new.startswith(head), "bytes before the garden changed"
    assert new.endswith(tail), "bytes after the garden changed"
    assert len(new) >= len(head) + len(tail)
    return new[len(head):len(new) - len(tail)]


def garden_of(text: str) -> Garden | None:
    """The garden a text reads back as (through the real reader)."""
    g, _ = read_garden(doc(text))
    return g


def front_matter_data(text: str) -> dict[str, Any]:
    """The front matter parsed by plain PyYAML, independent of the project's reader."""
    body = text.lstrip("\ufeff")
    assert body.startswith("---")
    fm = body.split("\n", 1)[1]
    end = fm.find("\n---")
    data = yaml.safe_load(fm[:end + 1])
    assert isinstance(data, dict)
    return data


def need(path: Path) -> Path:
    """Skip, saying why, when the shared test data is not next to the repository."""
    if not path.exists():
        pytest.skip(f"../shared/{path.relative_to(SHARED)} not found: {path}")
    return path


def sample_garden() -> Garden:
    """A small garden in the seed's shape, with one of each item."""
    return Garden(
        last_pruned=dt.date(2026, 2, 19),
        entities=(Entity(id="distributed-leadership", type="concept",
                         label="Distributed Leadership", relevance=1.0),),
        communities=(Community(id="organizational-design", label="Organizational Design",
                               source="inferred", confidence=0.95),),
        inferred_links=(Link(target="adaptive-facilitation", type="complementary",
                             confidence=0.88, reason="Real-time facilitation helps"),),
    )
