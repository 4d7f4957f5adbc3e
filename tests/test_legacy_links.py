"""Links older tools wrote are migrated, never deleted for their shape (issue 27, item 3).

The shapes: ``target``/``reason``/``strength`` with no type (141 links in 42 files of Commons
Engineering, as in ``../shared/corpus``), ``relevance`` on a link, and a bare slug string.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gardener.cli.main import app
from gardener.library.document import read_text
from gardener.library.garden import read_garden
from gardener.model import Link

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"
runner = CliRunner()
PATTERN = "accountability-partnership.md"

# The real shape, as commons-engineering's agent-seat-at-the-table.md has it.
STRENGTH = """  inferred_links:
    - target: rotating-stewardship-roles
      reason: "Shared entities: Agent as Partner, Dimensional Mandate"
      strength: 5
    - target: adversarial-growth
      reason: "Shared entities: Board Deliberation, Agent as Partner"
      strength: 4
"""
RELEVANCE = """  inferred_links:
    - target: rotating-stewardship-roles
      type: enables
      relevance: 0.8
      reason: "Shared entities: Feedback Loop"
"""
BARE = """  inferred_links:
    - rotating-stewardship-roles
    - adversarial-growth
"""


def _with_links(library: Path, links: str) -> Path:
    path = library / PATTERN
    text = path.read_text(encoding="utf-8")
    start = text.index("  inferred_links:\n")
    end = text.index("# ═", start)
    path.write_text(text[:start] + links + text[end:], encoding="utf-8")
    return path


@pytest.fixture
def library(tmp_path: Path) -> Path:
    lib = tmp_path / "lib"
    shutil.copytree(ROOT / "patterns", lib)
    return lib


def _links(path: Path) -> list[dict[str, object]]:
    text = path.read_text(encoding="utf-8")
    data = yaml.safe_load(text.split("---\n")[1])
    return list(data["graph_garden"]["inferred_links"])


def test_strength_and_no_type_read_as_confidence_and_left_for_the_default() -> None:
    text = (ROOT / "patterns" / PATTERN).read_text(encoding="utf-8")
    start = text.index("  inferred_links:\n")
    doc = read_text(text[:start] + STRENGTH + text[text.index("# ═", start):], PATTERN)
    assert doc is not None
    garden, warnings = read_garden(doc)
    assert garden is not None
    assert [(k.target, k.type, k.confidence) for k in garden.inferred_links] == [
        ("rotating-stewardship-roles", None, 1.0), ("adversarial-growth", None, 0.8)]
    assert all(k.migrated and k.text is None for k in garden.inferred_links)
    assert any("strength 5 read as confidence 1" in w for w in warnings)
    assert not any("unknown key" in w for w in warnings)


@pytest.mark.parametrize(("links", "expected"), [
    (STRENGTH, [{"target": "rotating-stewardship-roles", "type": "complementary",
                 "confidence": 1.0,
                 "reason": "Shared entities: Agent as Partner, Dimensional Mandate"},
                {"target": "adversarial-growth", "type": "complementary", "confidence": 0.8,
                 "reason": "Shared entities: Board Deliberation, Agent as Partner"}]),
    (RELEVANCE, [{"target": "rotating-stewardship-roles", "type": "enables",
                  "confidence": 0.8, "reason": "Shared entities: Feedback Loop"}]),
    (BARE, [{"target": "rotating-stewardship-roles", "type": "complementary",
             "confidence": 0.5},
            {"target": "adversarial-growth", "type": "complementary", "confidence": 0.5}]),
], ids=["strength-no-type", "relevance", "bare-slug"])
def test_prune_migrates_each_legacy_shape(library: Path, links: str,
                                          expected: list[dict[str, object]]) -> None:
    path = _with_links(library, links)
    before = path.read_text(encoding="utf-8")
    result = runner.invoke(app, ["prune", str(library)])
    assert result.exit_code == 0, result.output
    assert _links(path) == expected
    after = path.read_text(encoding="utf-8")
    # only the garden block changed
    head = before.index("graph_garden:")
    assert after[:head] == before[:head]
    again = runner.invoke(app, ["prune", str(library)])  # migrated once, then left alone
    assert again.exit_code == 0
    assert path.read_text(encoding="utf-8") == after


def test_check_counts_the_legacy_links(library: Path) -> None:
    _with_links(library, STRENGTH)
    result = runner.invoke(app, ["check", str(library)])
    assert "strength 5 read as confidence 1" in result.output
    assert "unknown key 'strength'" not in result.output


def test_a_library_can_say_untyped_links_are_removed_instead() -> None:
    from gardener.steps.prune import PruneSettings, prune

    link = Link(target="b", reason="r", confidence=0.9, migrated="no type")
    kept = prune(_garden(link), slug="a", library={"a", "b"}, human=(),
                 today=__import__("datetime").date(2026, 12, 7))
    assert [(k.target, k.type) for k in kept.garden.inferred_links] == [("b", "complementary")]
    assert [(r.old_type, r.new_type) for r in kept.renames] == [("", "complementary")]
    gone = prune(_garden(link), slug="a", library={"a", "b"}, human=(),
                 today=__import__("datetime").date(2026, 12, 7),
                 settings=PruneSettings(untyped=None))
    assert gone.garden.inferred_links == () and gone.removals[0].reason == "bad_type"


def _garden(link: Link) -> object:
    from gardener.model import Garden

    return Garden(inferred_links=(link,))


@pytest.mark.corpus
def test_every_legacy_link_of_the_corpus_survives_its_shape() -> None:
    """In ``../shared`` (corpus and gold), no link is removed as ``bad_type: no type`` now."""
    if not CORPUS.is_dir():
        pytest.skip(f"{CORPUS} is absent: the real files are not here")
    from gardener.steps.prune import PruneSettings, prune

    seen = 0
    for path in sorted([*CORPUS.rglob("*.md"), *(SHARED / "gold").rglob("*.md")]):
        try:
            doc = read_text(path.read_text(encoding="utf-8"), path)
        except Exception:  # the two files whose YAML does not parse
            continue
        if doc is None:
            continue
        garden, _ = read_garden(doc)
        if garden is None or not any(k.migrated for k in garden.inferred_links):
            continue
        seen += sum(1 for k in garden.inferred_links if k.migrated)
        targets = {k.target for k in garden.inferred_links}
        result = prune(garden, slug=path.stem, library=targets | {path.stem}, human=(),
                       today=__import__("datetime").date(2026, 12, 7),
                       settings=PruneSettings(max_links=100))
        assert not [r for r in result.removals if r.reason == "bad_type"], path
        assert all(k.type == "complementary" for k in result.garden.inferred_links
                   if k.migrated and "no type" in (k.migrated or ""))
    assert seen >= 100


def test_gardener_toml_says_what_untyped_links_become(library: Path) -> None:
    path = _with_links(library, STRENGTH)
    (library / "gardener.toml").write_text('[relationships]\nuntyped = "enables"\n',
                                           encoding="utf-8")
    assert runner.invoke(app, ["prune", str(library)]).exit_code == 0
    assert [k["type"] for k in _links(path)] == ["enables", "enables"]
    path = _with_links(library, STRENGTH)
    (library / "gardener.toml").write_text('[relationships]\nuntyped = ""\n', encoding="utf-8")
    result = runner.invoke(app, ["prune", str(library), "--report",
                                 str(library.parent / "r.json")])
    assert result.exit_code == 0
    assert _links(path) == []
    assert "bad_type" in (library.parent / "r.json").read_text(encoding="utf-8")
