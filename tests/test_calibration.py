"""A link's confidence: the calibration file, the decision of which links a pass writes, and
the fit (``gardener.library.calibration``, ``gardener.steps.link``,
``gardener.pipeline.calibrate``), on the sample library's real patterns."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from gardener.errors import UsageError
from gardener.library import load as library_mod
from gardener.library.calibration import (
    RANKER_FEATURES,
    Calibration,
    calibration_for,
    calibration_path,
    load_calibration,
    save_calibration,
    shipped,
)
from gardener.library.document import ReadError
from gardener.model import Garden, Link, Pattern
from gardener.pipeline.calibrate import Sample, fit
from gardener.shortlist.candidates import CandidateIndex
from gardener.shortlist.signals import Signal, signals
from gardener.steps.link import Linked, decide, sentences, usual_type
from gardener.steps.passes import own_text

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "patterns"


@pytest.fixture(scope="module")
def sample() -> list[Pattern]:
    return library_mod.load(SAMPLE).patterns


def test_the_shipped_default_is_valid_ranker_only_and_says_it_is_not_this_librarys() -> None:
    cal = shipped()
    assert cal.shipped and not cal.uses_model and cal.model is None
    assert cal.features == RANKER_FEATURES
    assert cal.fits("any-model")
    assert cal.measured.ece <= 0.05  # as bench/calibration.py measured it, held out
    line = cal.line()
    assert line.startswith("Confidence is not yet calibrated for this library")
    assert "gardener evaluate LIBRARY --calibrate" in line
    # more evidence never lowers the chance: an in-link, a better rank
    base = {"log_rank": 1.0, "lexical": 0.5, "in_link": 0.0, "two_hop": 0.0}
    assert cal.probability({**base, "in_link": 1.0}) > cal.probability(base)
    assert cal.probability({**base, "log_rank": 0.0}) > cal.probability(base)


def _own(**update: object) -> Calibration:
    return shipped().model_copy(update={"shipped": False, "library": "lib", **update})


def test_a_librarys_own_calibration_is_used_only_for_the_model_it_was_fitted_on(
        tmp_path: Path) -> None:
    assert calibration_for(tmp_path, "m") == (shipped(), None)
    ranker = _own()
    save_calibration(tmp_path, ranker)
    assert load_calibration(tmp_path) == ranker
    assert calibration_for(tmp_path, "any")[0] == ranker
    with_model = Calibration.model_validate({
        **ranker.model_dump(), "features": [*RANKER_FEATURES, "model_link"],
        "coefficients": [*ranker.coefficients, 2.0], "model": "qwen"})
    save_calibration(tmp_path, with_model)
    assert calibration_for(tmp_path, "qwen") == (with_model, None)
    used, note = calibration_for(tmp_path, "other")
    assert used == shipped() and note is not None and "qwen" in note
    assert with_model.line().startswith("Confidence calibrated on lib:")
    assert "model qwen" in with_model.line()


@pytest.mark.parametrize(("text", "said"), [
    ('{"format": 1,\n  "method": ', "calibration.json:2:"),
    ('{"format": 1}', "not a calibration"),
    ("[" * 200, "nest"),
])
def test_a_broken_calibration_file_is_one_message_naming_it(tmp_path: Path, text: str,
                                                            said: str) -> None:
    path = calibration_path(tmp_path)
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    with pytest.raises((UsageError, ReadError)) as caught:
        load_calibration(tmp_path)
    assert str(path) in str(caught.value) and said in str(caught.value)


def test_coefficients_must_match_the_features_and_be_finite(tmp_path: Path) -> None:
    data = shipped().model_dump(mode="json")
    for bad in ({"coefficients": [1.0]}, {"coefficients": [1e308, 0, 0, 0]},
                {"features": ["log_rank", "log_rank", "lexical", "in_link"]},
                {"features": [*RANKER_FEATURES[:3], "model_link"]}):
        path = calibration_path(tmp_path)
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps({**data, **bad}), encoding="utf-8")
        with pytest.raises(UsageError, match="not a calibration"):
            load_calibration(tmp_path)


def test_a_linked_calibration_file_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps(shipped().model_dump(mode="json")), encoding="utf-8")
    lib = tmp_path / "lib"
    calibration_path(lib).parent.mkdir(parents=True)
    calibration_path(lib).symlink_to(secret)
    with pytest.raises(ReadError, match="symbolic link"):
        load_calibration(lib)


def _decide(pattern: Pattern, patterns: list[Pattern], proposed: Garden,
            evidence: dict[str, str], cal: Calibration | None = None
            ) -> tuple[list[Signal], Linked]:
    index = CandidateIndex(patterns)
    found = signals(index, pattern, 12)
    return found, decide(pattern, proposed, evidence, found, cal or shipped(), threshold=0.5,
                         default_type=usual_type(patterns), text=own_text(pattern))


def test_the_ranker_alone_writes_its_likely_links_each_with_a_sentence_of_the_pattern(
        sample: list[Pattern]) -> None:
    written = 0
    for pattern in sample:
        found, linked = _decide(pattern, sample, Garden(), {})
        text = own_text(pattern)
        by_slug = {s.slug: s for s in found}
        for link in linked.garden.inferred_links:
            written += 1
            chance = shipped().probability(by_slug[link.target].features())
            assert chance >= 0.5 and link.confidence == round(chance, 2)
            assert link.type == usual_type(sample)
            quote = linked.evidence[link.target]
            assert text.evidence_problem(quote) is None  # a real quote of this pattern
            assert quote in sentences(pattern)
            assert link.reason is not None and link.reason.startswith(
                f"ranked {by_slug[link.target].rank} of ")
            target = by_slug[link.target]
            for word in target.shared:  # words of the target, which the pattern has too
                assert word in f"{target.title} {target.summary}".lower()
        weighed = {w.target: w for w in linked.weighed}
        for s in found:  # every candidate within reach was weighed; the likely ones written
            assert (weighed[s.slug].probability >= 0.5) == weighed[s.slug].written or (
                weighed[s.slug].written is False and s.slug not in linked.evidence)
        assert linked.refused == []  # the model proposed nothing to refuse
    assert written >= len(sample)  # the sample grows: on average a link a pattern or more


def test_the_models_link_keeps_its_words_or_is_refused_with_its_chance(
        sample: list[Pattern]) -> None:
    pattern = next(p for p in sample if p.slug == "consent-decision-making")
    index = CandidateIndex(sample)
    found = signals(index, pattern, 12)
    best, worst = found[0], found[-1]
    quote = sentences(pattern)[0]
    proposed = Garden(inferred_links=(
        Link(target=best.slug, type="requires", confidence=0.9, reason="The model's reason."),
        Link(target=worst.slug, type="enables", confidence=0.9, reason="Weak."),
        Link(target="not-a-candidate", type="enables", confidence=0.9, reason="Far.")))
    _, linked = _decide(pattern, sample, proposed, {best.slug: quote, worst.slug: quote})
    links = {lk.target: lk for lk in linked.garden.inferred_links}
    assert links[best.slug].type == "requires"
    assert links[best.slug].reason == "The model's reason."
    assert linked.evidence[best.slug] == quote
    assert worst.slug not in links
    refused = "\n".join(linked.refused)
    assert f"'{worst.slug}': calibrated confidence" in refused
    assert "'not-a-candidate': not among the ranker's candidates" in refused


def _synthetic(rng: random.Random, *, model_knows: bool) -> list[Sample]:
    """Twelve candidates for each of 40 patterns: people linked the better-ranked ones more
    often; the model's pick either follows people's links or is a coin toss."""
    out = []
    for p in range(40):
        for rank in range(1, 13):
            made = rng.random() < 0.8 / rank
            picked = made if model_knows and rng.random() < 0.9 else rng.random() < 0.3
            out.append(Sample(f"p{p}", f"t{rank}", {
                "log_rank": math.log(rank), "lexical": rng.random(),
                "in_link": 0.0, "two_hop": 0.0, "model_link": float(picked),
                "model_confidence": 0.8 if picked else 0.0}, made))
    return out


def test_a_model_that_adds_nothing_gets_no_weight_and_one_that_knows_gets_it() -> None:
    noise = fit(_synthetic(random.Random(1), model_knows=False), library="lib",
                fingerprint="x", model="m")
    assert noise.features == RANKER_FEATURES and noise.model is None
    assert noise.measured.tried["ranker"] <= noise.measured.tried["ranker+model"]
    assert noise.fits("another-model")
    knows = fit(_synthetic(random.Random(1), model_knows=True), library="lib",
                fingerprint="x", model="m")
    assert knows.uses_model and knows.model == "m" and not knows.fits("another-model")
    assert knows.measured.tried["ranker+model"] < knows.measured.tried["ranker"]
    weight = dict(zip(knows.features, knows.coefficients, strict=True))
    assert weight["model_link"] > 1.0
    m = knows.measured
    assert m.written and m.precision > noise.measured.precision
    assert sum(b.n for b in m.bins) == knows.samples == 480


def test_a_fit_with_one_kind_of_label_is_refused() -> None:
    same = [Sample(f"p{i}", "t", {"log_rank": 0.0}, False) for i in range(5)]
    with pytest.raises(UsageError, match="cannot calibrate"):
        fit(same, library="lib", fingerprint="x", model=None)
