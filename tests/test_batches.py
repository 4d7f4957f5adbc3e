"""A library gone through in bites: ``--max-patterns`` asks that many stale patterns, in a
stable order (never gardened, then the longest since, then by slug), and the next run takes
the next batch. Run through the plain pass (``gardener.pipeline.garden``), no Prefect."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from gardener.library.state import load_state
from gardener.model import Status
from gardener.pipeline.client import model_client
from gardener.pipeline.estimate import estimate
from gardener.pipeline.garden import garden_library
from gardener.pipeline.options import GardenOptions
from gardener.testing.fake_openai import FakeOpenAI, use_as_endpoint

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def library(tmp_path: Path) -> Path:
    lib = tmp_path / "lib"
    lib.mkdir()
    for path in sorted((ROOT / "patterns").glob("*.md")):
        if path.name != "README.md":
            shutil.copyfile(path, lib / path.name)
    return lib


def _pass(library: Path, fake: FakeOpenAI, day: dt.date, n: int | None) -> list[tuple[str, str]]:
    options = GardenOptions(max_patterns=n, today=day, concurrency=2)
    with model_client(options) as llm:
        done = garden_library(library, options, llm, llm.settings.model)
    return sorted((o.slug or "", o.status.value if not o.detail.not_asked
                   else f"later:{o.detail.not_asked}") for o in done.outcomes)


def test_successive_runs_take_consecutive_batches_in_a_stable_order(
        library: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slugs = sorted(p.stem for p in library.glob("*.md"))
    with FakeOpenAI() as fake:
        use_as_endpoint(monkeypatch, fake)
        first = _pass(library, fake, dt.date(2026, 12, 1), 4)
        asked_first = [s for s, status in first if not status.startswith("later")]
        # never gardened: by slug
        assert asked_first == slugs[:4]
        assert [s for s, status in first if status == "later:batch"] == slugs[4:]
        second = _pass(library, fake, dt.date(2026, 12, 8), 4)
        asked_second = [s for s, status in second if status not in ("skipped", "later:batch")]
        assert asked_second == slugs[4:8]
        # the first batch is up to date now: skipped without a request
        assert {s for s, status in second if status == "skipped"} == set(slugs[:4])
    state = load_state(library).snapshot()
    assert set(state) == set(slugs[:8])


def test_the_longest_since_gardened_comes_first_once_all_were_gardened(
        library: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slugs = sorted(p.stem for p in library.glob("*.md"))
    with FakeOpenAI() as fake:
        use_as_endpoint(monkeypatch, fake)
        _pass(library, fake, dt.date(2026, 11, 1), None)  # everything, recorded on Nov 1
        # a model change makes every pattern stale again; re-record two of them later
        monkeypatch.setenv("GARDENER_MODEL", "another-model")
        _pass(library, fake, dt.date(2026, 11, 20), 2)
        third = _pass(library, fake, dt.date(2026, 12, 1), 3)
    asked = [s for s, status in third if status not in ("skipped", "later:batch")]
    assert asked == slugs[2:5]  # Nov 1 before Nov 20, then by slug


def test_the_estimate_counts_the_batch_a_run_would_ask(
        library: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAI() as fake:
        use_as_endpoint(monkeypatch, fake)
        whole = estimate(library, GardenOptions())
        batch = estimate(library, GardenOptions(max_patterns=3))
        assert fake.chat_requests == []  # counted, never sent
    assert len(whole.calls) == len(list(library.glob("*.md")))
    assert [c.slug for c in batch.calls] == [c.slug for c in whole.calls][:3]
    assert batch.later == len(whole.calls) - 3
    assert batch.prompt_tokens < whole.prompt_tokens


def test_a_batch_leftover_is_not_a_failure(library: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAI() as fake:
        use_as_endpoint(monkeypatch, fake)
        options = GardenOptions(max_patterns=1)
        with model_client(options) as llm:
            done = garden_library(library, options, llm, llm.settings.model)
    statuses = {o.status for o in done.outcomes}
    assert Status.FAILED not in statuses
    left = [o for o in done.outcomes if o.detail.not_asked == "batch"]
    assert len(left) == len(done.outcomes) - 1
    assert all("left for a later batch (--max-patterns 1)" in o.detail.reason for o in left)


def test_an_estimate_s_first_calls_are_the_batch_s(library: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAI() as fake:
        use_as_endpoint(monkeypatch, fake)
        whole = estimate(library, GardenOptions())
        batch = estimate(library, GardenOptions(max_patterns=5))
    assert whole.first(5).calls == batch.calls
    assert whole.first(5).later == batch.later
