"""Acceptance on the real corpus: the health report sees the alphabetical skew and the
fragmented communities, and ``communities build`` cuts the ids tenfold, every pattern kept."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gardener.cli.main import app
from gardener.graph import communities, health
from gardener.graph import library_graph as graph
from gardener.library import load as library
from gardener.library import registry

pytestmark = pytest.mark.corpus

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


@pytest.fixture(scope="module")
def corpus() -> library.Library:
    if not CORPUS.is_dir():
        pytest.skip(f"../shared/corpus not found: {CORPUS} is not a folder")
    return library.load(CORPUS)


def test_the_report_flags_the_alphabetical_skew_and_the_fragmentation(
        corpus: library.Library) -> None:
    h = health.assess(graph.build(corpus.patterns))
    inferred = h.skew[0]
    assert inferred.flagged and inferred.top_letter == "a"
    assert inferred.top_target_share > 0.9 and inferred.top_slug_share < 0.1
    assert inferred.ks > 0.8
    cm = h.communities
    assert cm.fragmented and cm.distinct_ids > 300 and cm.singleton_share > 0.5
    codes = {f.code for f in h.flags}
    assert {"target_skew", "fragmented_communities", "dangling", "isolated"} <= codes


def test_build_cuts_the_ids_tenfold_and_assigns_every_pattern(
        corpus: library.Library, tmp_path: Path) -> None:
    result = communities.build(corpus.patterns)
    assert result.ids_before >= 10 * len(result.registry.communities)
    assert result.assigned == result.patterns == len(corpus.slugs)
    assigned = result.registry.assignment()
    assert set(assigned) == set(corpus.slugs)
    again = communities.build(corpus.patterns)
    assert registry.dump_registry(again.registry) == registry.dump_registry(
        result.registry)

    root = tmp_path / "corpus"
    shutil.copytree(CORPUS, root)
    for path in root.rglob("*"):
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    built = CliRunner().invoke(app, ["communities", "build", str(root), "--no-llm",
                                     "--apply"])
    assert built.exit_code == 0, built.output
    after = library.load(root)
    cm = health.communities(graph.build(after.patterns))
    assert cm.distinct_ids == len(result.registry.communities)
    assert cm.without_community == 0
    assert not cm.fragmented
