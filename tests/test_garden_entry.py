"""The gardening step's result carries what the state records, without reading the file again."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from gardener.library import load as library
from gardener.library.document import read_text
from gardener.library.garden import read_garden
from gardener.library.state import garden_hash
from gardener.model import Community, Entity, Garden, Link, Status
from gardener.steps.passes import garden_entry

SAMPLE_LIBRARY = Path(__file__).resolve().parents[1] / "patterns"
TODAY = dt.date(2026, 3, 1)


def proposal(targets: list[str], label: str = "Shared Practice") -> Garden:
    """A proposal whose entity is ``label`` (pruning takes an entity none of whose words is in
    the pattern's text as ``stale``)."""
    return Garden(
        last_pruned=TODAY,
        entities=(Entity(id="-".join(label.lower().split()), type="practice", label=label,
                         relevance=0.9),),
        communities=(Community(id="practice-patterns", label="Practice patterns",
                               source="inferred", confidence=0.7),),
        inferred_links=tuple(
            Link(target=t, type="complementary", confidence=0.8 - i / 100,
                 reason="Both address the same practice in overlapping situations.")
            for i, t in enumerate(targets)),
        vitality_reasoning="The practice stays alive while people keep it up together.",
    )


@pytest.mark.parametrize("vitality_target", ["garden", "assessment"])
def test_a_changed_file_comes_with_the_garden_it_holds(vitality_target: str) -> None:
    lib = library.load(SAMPLE_LIBRARY)
    assert len(lib.entries) >= 10, f"too few sample patterns in {SAMPLE_LIBRARY}"
    changed = 0
    for entry in lib.entries:
        others = sorted(lib.slugs - {entry.pattern.slug})[:3]
        change = garden_entry(entry, proposal(others, entry.pattern.title), slugs=lib.slugs,
                              today=TODAY,
                              vitality_target=vitality_target)  # type: ignore[arg-type]
        assert change.outcome.status is Status.CHANGED, change.outcome.error
        assert change.new_text is not None and change.garden is not None
        doc = read_text(change.new_text, entry.doc.path)
        assert doc is not None
        written, _ = read_garden(doc)
        assert written == change.garden
        assert garden_hash(written) == garden_hash(change.garden)
        assert entry.pattern.title in {e.label for e in change.garden.entities}
        changed += 1
    assert changed == len(lib.entries)


def test_the_diff_is_made_only_when_asked() -> None:
    entry = library.load(SAMPLE_LIBRARY).entries[0]
    garden = proposal([])
    shown = garden_entry(entry, garden, slugs={entry.pattern.slug}, today=TODAY)
    quiet = garden_entry(entry, garden, slugs={entry.pattern.slug}, today=TODAY, diff=False)
    assert shown.outcome.status is quiet.outcome.status is Status.CHANGED
    assert shown.outcome.diff and shown.outcome.diff.startswith("---")
    assert quiet.outcome.diff is None
    assert quiet.new_text == shown.new_text and quiet.garden == shown.garden


def test_an_unchanged_garden_carries_none(tmp_path: Path) -> None:
    entry = library.load(SAMPLE_LIBRARY).entries[0]
    slugs = {entry.pattern.slug}
    first = garden_entry(entry, proposal([]), slugs=slugs, today=TODAY)
    assert first.new_text is not None
    path = tmp_path / entry.doc.path.name
    path.write_text(first.new_text, encoding="utf-8")
    written = library.read_entry(path)
    assert written is not None
    again = garden_entry(written, proposal([]), slugs=slugs, today=TODAY)
    assert again.outcome.status is Status.UNCHANGED
    assert again.new_text is None and again.garden is None
