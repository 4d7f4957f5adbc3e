"""Shared helpers for the writer's tests: build documents from text and check kept bytes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from gardener.document import Document, read_text
from gardener.garden import read_garden
from gardener.model import Community, Entity, Garden, Link

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPUS = SHARED / "corpus"
SEED = SHARED / "seed" / "distributed-leadership-design.md"


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
