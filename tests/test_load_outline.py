"""`library.load.outline`: the review's light read before its pass agrees with a whole load."""

from __future__ import annotations

from pathlib import Path

from gardener.library import load as library_mod
from gardener.steps.outliers import in_degrees
from gardener.testing.libraries import copy_samples


def test_outline_names_and_links_each_pattern_as_a_whole_load_does(tmp_path: Path) -> None:
    lib = copy_samples(tmp_path / "lib")
    (lib / "by-id.md").write_text(
        "---\nslug: by-id\ntitle: By id\nrelated:\n  - " + _an_id(lib) + "\n---\n\nText.\n",
        encoding="utf-8")
    whole = library_mod.load(lib).patterns
    light = library_mod.outline(lib)
    assert [(p.path, p.slug, p.id, p.title, p.vitality, p.relationships) for p in light] == [
        (p.path, p.slug, p.id, p.title, p.vitality, p.relationships) for p in whole]
    assert [p.garden.inferred_links if p.garden else None for p in light] == [
        p.garden.inferred_links if p.garden else None for p in whole]
    assert in_degrees(light) == in_degrees(whole)
    assert all(not p.sections and not p.summary for p in light)


def _an_id(lib: Path) -> str:
    found = next(p.id for p in library_mod.load(lib).patterns if p.id)
    assert found is not None
    return found
