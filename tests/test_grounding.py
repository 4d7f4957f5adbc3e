"""Grounding: entities found in the pattern's text, evidence quoted from it, junk refused.

Adversarial answers are the ones the bundled SmolLM2-135M wrote (``kebab-case``,
``distribution-style-system-123456789012345``, ``title``, ``domain``): each is refused with a
reason, re-asked, then dropped by salvage while the good items stay.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gardener.endpoint.client import LLM
from gardener.endpoint.settings import LLMSettings
from gardener.library.load import read_entry
from gardener.model import Pattern
from gardener.propose.grounding import (
    PatternText,
    fold_quote,
    fold_words,
    pattern_text,
    phrase,
    stem,
    task_phrases,
)
from gardener.propose.prompts import default_prompts, render_messages
from gardener.propose.propose import grounding_text, propose
from gardener.propose.response import ResponseModel, build_response_model, salvage
from gardener.testing.fake_openai import FakeOpenAI, answer, status

REPO = Path(__file__).resolve().parents[1]
SEED = "distributed-leadership-design.md"
SHARED_SEED = REPO.parent / "shared" / "seed" / SEED


@dataclass(frozen=True)
class Cand:
    slug: str
    title: str
    summary: str = ""


CANDIDATES = [
    Cand("adaptive-facilitation", "Adaptive Facilitation",
         "Facilitators read the room and change the process while it runs."),
    Cand("accountability-partnership", "Accountability Partnership",
         "Two people check in weekly on their commitments."),
    Cand("active-listening-depth", "Active Listening Depth", "Listening beneath the words."),
]
REASONING = ("A sustaining pattern: it renews leadership capacity while roles rotate with "
             "teaching, and decays into shadow authority when they stop.")
EVIDENCE = "Leadership capacity is scattered across the commons"
"""Verbatim from the seed's Context section."""


def load(path: Path) -> Pattern:
    entry = read_entry(path, root=path.parent)
    assert entry is not None
    return entry.pattern


@pytest.fixture(scope="module")
def seed() -> Pattern:
    return load(REPO / "patterns" / SEED)


@pytest.fixture(scope="module")
def text(seed: Pattern) -> PatternText:
    system = render_messages(seed, CANDIDATES)[0]["content"]
    return grounding_text(seed, CANDIDATES, default_prompts(), system)


@pytest.fixture(scope="module")
def model(seed: Pattern, text: PatternText) -> type[ResponseModel]:
    return build_response_model(seed.slug, [c.slug for c in CANDIDATES], seed.vitality,
                                text=text)


def good_answer(**kw: Any) -> dict[str, Any]:
    return {
        "entities": [
            {"id": "distributed-leadership", "type": "concept",
             "label": "Distributed Leadership", "relevance_pct": 98},
            {"id": "decision-rights", "type": "practice", "label": "decision rights",
             "relevance_pct": 80}],
        "communities": [{"id": "commons-governance", "label": "Commons & Governance",
                         "confidence_pct": 90}],
        "inferred_links": [
            {"target": "adaptive-facilitation", "type": "complementary", "confidence_pct": 85,
             "evidence": "a rotating  facilitation role here",
             "reason": "Rotating facilitation is one of the nodes the pattern distributes."}],
        "vitality_band": "sustaining",
        "vitality_reasoning": REASONING,
    } | kw


JUNK_ENTITIES = [
    {"id": "kebab-case", "type": "concept", "label": "kebab-case", "relevance_pct": 90},
    {"id": "distribution-style-system-123456789012345", "type": "concept",
     "label": "Distribution Style System", "relevance_pct": 80},
    {"id": "title", "type": "concept", "label": "title", "relevance_pct": 70},
    {"id": "shared-leadership", "type": "concept", "label": "domain", "relevance_pct": 60},
]
JUNK_LINKS = [
    {"target": "accountability-partnership", "type": "enables", "confidence_pct": 80,
     "evidence": "Two people check in weekly on their commitments.",
     "reason": "Partners hold each other to account."},
    {"target": "active-listening-depth", "type": "requires", "confidence_pct": 70,
     "evidence": "Both patterns address accountability practice",
     "reason": "Listening is needed."},
]


# --- folding ---------------------------------------------------------------------------------


def test_folding_takes_case_punctuation_and_plurals_away() -> None:
    assert stem("leaderships") == "leadership" and stem("policies") == "policy"
    assert stem("process") == "process" and stem("analysis") == "analysis"
    assert phrase("Distributed Leadership") == phrase("distributed leadership")
    assert phrase("Leaderships!") == phrase("leadership")
    assert fold_words("Decision-Making") == ("decision", "making")
    assert fold_quote("**Distributed**  pull:\n spread ‘it’") == "distributed pull: spread 'it'"


def test_a_label_matches_case_and_plural_folded(text: PatternText) -> None:
    assert text.has_phrase("DISTRIBUTED LEADERSHIP")
    assert text.has_phrase("distributed leaderships")
    assert text.entity_problem("distributed-leadership", "distributed leaderships") is None


# --- the seed's curated garden passes --------------------------------------------------------


@pytest.mark.parametrize("source", ["repo", "shared"])
def test_the_seed_curated_entities_and_communities_are_grounded(source: str) -> None:
    if source == "shared" and not SHARED_SEED.is_file():
        pytest.skip(f"{SHARED_SEED} is absent (the shared data is not mounted here)")
    pattern = load(REPO / "patterns" / SEED if source == "repo" else SHARED_SEED)
    system = render_messages(pattern, CANDIDATES)[0]["content"]
    text = grounding_text(pattern, CANDIDATES, default_prompts(), system)
    assert pattern.garden is not None
    assert len(pattern.garden.entities) == 8 and len(pattern.garden.communities) == 4
    for e in pattern.garden.entities:
        assert text.entity_problem(e.id, e.label or "") is None, e
    for c in pattern.garden.communities:
        assert text.community_problem(c.id, c.label or "") is None, c


# --- adversarial items, one check each -------------------------------------------------------


def test_ids_copied_from_the_prompt_are_refused(text: PatternText) -> None:
    system = render_messages(load(REPO / "patterns" / SEED), CANDIDATES)[0]["content"]
    assert "kebab-case" in system and "shared-responsibility" in system
    copied = [p for p in text.prompt if text.share(p) < 1.0]
    assert "kebab case" in copied
    for p in copied:
        ident = p.replace(" ", "-")
        problem = text.entity_problem(ident, p)
        assert problem is not None and ("instructions" in problem or "field" in problem), p
    # An example the pattern's own words ground stays: the seed is about commons governance.
    assert text.community_problem("commons-governance", "Commons Governance") is None


def test_digit_junk_is_refused(text: PatternText) -> None:
    problem = text.entity_problem("distribution-style-system-123456789012345",
                                  "Distribution Style System")
    assert problem is not None and "'123456789012345'" in problem
    assert text.community_problem("adjuvinum-123456789012345", "Adjuvinum") is not None
    # Digits the pattern has are its own (a year, "80+ worker-owned cooperatives").
    assert text.entity_problem("occupy-wall-street-2011", "Occupy Wall Street") is None


@pytest.mark.parametrize("label", ["title", "Title", "domain", "slug", "kebab-case", "summary",
                                   "entities", "vitality_reasoning", "concept"])
def test_labels_naming_the_task_are_refused(text: PatternText, label: str) -> None:
    assert text.entity_problem("distributed-leadership", label) is not None
    assert text.community_problem("commons-governance", label) is not None


def test_a_candidate_slug_is_no_entity_or_community(text: PatternText) -> None:
    problem = text.community_problem("adaptive-facilitation", "Adaptive Facilitation")
    assert problem is not None and "another pattern's slug" in problem
    assert text.entity_problem("active-listening-depth", "Active Listening") is not None
    # A human relationship's target is shown too (the seed enables achievement-celebration).
    assert text.community_problem("achievement-celebration", "Achievement") is not None


def test_a_community_needs_a_word_of_the_text_in_its_id_and_its_label(
        text: PatternText) -> None:
    assert text.community_problem("commons-governance", "Civic Cuisine") is not None
    assert text.community_problem("commons-governance",
                                  "Sustainability Leaders Advocacy Inclusive Proposal") is not None
    assert text.community_problem("commons-governance", "Commons & Governance") is None


def test_an_entity_absent_from_the_text_is_refused(text: PatternText) -> None:
    problem = text.entity_problem("blockchain-tokenomics", "Blockchain Tokenomics")
    assert problem is not None and "not in the pattern's text" in problem
    assert text.community_problem("marine-biology", "Marine Biology") is not None


def test_evidence_absent_from_the_text_is_refused(text: PatternText) -> None:
    problem = text.evidence_problem("Both patterns address accountability practice")
    assert problem is not None and "not in this pattern's text" in problem
    assert text.evidence_problem("the commons") is not None  # too short to support anything


def test_evidence_quoted_from_a_candidate_is_refused(text: PatternText) -> None:
    problem = text.evidence_problem("Two people check in weekly on their commitments.")
    assert problem is not None and "'accountability-partnership'" in problem


def test_evidence_is_whitespace_case_and_emphasis_folded(text: PatternText) -> None:
    assert text.evidence_problem(EVIDENCE) is None
    assert text.evidence_problem("leadership   CAPACITY is scattered\nacross the commons") is None
    assert text.evidence_problem("The core conflict is Distributed vs. Design.") is None


def test_evidence_copied_across_a_blockquote_s_lines_is_found() -> None:
    # As in a real answer: the quote keeps the `>` that began the next line of the blockquote.
    text = pattern_text(("Timeslice", "> A blueprint without a timeslice is philosophy. The "
                         "timeslice is the specification for the next 12–24 months.\n>\n> "
                         "Its design draws on the nine-layer architecture.\n\n"
                         "- one\n- two\n- three"))
    assert text.evidence_problem("> The timeslice is the specification for the next 12-24 "
                                 "months. > Its design draws on") is None
    assert text.evidence_problem("one - two - three") is None  # list items: markers folded
    # Folding markers joins nothing the text does not have, in that order.
    problem = text.evidence_problem("> Its design draws on the blueprint > ")
    assert problem is not None and "not in this pattern's text" in problem


def test_a_quote_cut_short_with_an_ellipsis_is_still_a_quote() -> None:
    # As a real answer ended one, at the grammar's length bound: mid-word, then "…".
    text = pattern_text(("Subsidiarity", "Subsidiarity is a discipline of judgment, not a mere "
                         "preference for the local. Where does the knowledge reside?"))
    assert text.evidence_problem("Subsidiarity is a discipline of judgment, not a mere "
                                 "preference for the local. Where does the knowl…") is None
    assert text.evidence_problem("... not a mere preference for the local") is None
    # Only at its ends: an ellipsis inside a quote joins what the text does not join.
    assert text.evidence_problem("Subsidiarity is … the local") is not None
    assert text.evidence_problem("a discipline … of judgment…") is not None


# --- in the response model: untouched when good, salvaged item by item when not ---------------


def test_a_good_answer_passes_untouched(model: type[ResponseModel]) -> None:
    proposal = model.model_validate(good_answer()).to_proposal()
    assert [e.id for e in proposal.entities] == ["distributed-leadership", "decision-rights"]
    assert [c.id for c in proposal.communities] == ["commons-governance"]
    (link,) = proposal.inferred_links
    assert link.evidence == "a rotating  facilitation role here"
    assert link.reason.startswith("Rotating facilitation")


def test_salvage_keeps_the_good_items_and_says_why_each_other_went(
        model: type[ResponseModel], seed: Pattern) -> None:
    data = good_answer()
    data["entities"] = [*data["entities"], *JUNK_ENTITIES]
    data["communities"] = [*data["communities"],
                           {"id": "domain", "label": "domain", "confidence_pct": 50}]
    data["inferred_links"] = [*data["inferred_links"], *JUNK_LINKS]
    with pytest.raises(ValueError, match="copied from the instructions"):
        model.model_validate(data)
    proposal, dropped = salvage(json.dumps(data), seed.slug, [c.slug for c in CANDIDATES],
                                seed.vitality, model=model)
    assert [e.id for e in proposal.entities] == ["distributed-leadership", "decision-rights"]
    assert [c.id for c in proposal.communities] == ["commons-governance"]
    assert [lk.target for lk in proposal.inferred_links] == ["adaptive-facilitation"]
    assert proposal.vitality_reasoning == REASONING
    assert len(dropped) == 7, dropped
    assert any("'kebab-case'" in d and "instructions" in d for d in dropped)
    assert any("123456789012345" in d for d in dropped)
    assert any("'title'" in d and "field of this task" in d for d in dropped)
    assert any("'domain'" in d and "field of this task" in d for d in dropped)
    assert any("quotes the candidate 'accountability-partnership'" in d for d in dropped)
    assert any("inferred_links[2]" in d and "not in this pattern's text" in d for d in dropped)


def test_a_link_without_evidence_is_dropped(model: type[ResponseModel], seed: Pattern) -> None:
    link = dict(good_answer()["inferred_links"][0])
    del link["evidence"]
    proposal, dropped = salvage(json.dumps(good_answer(inferred_links=[link])), seed.slug,
                                [c.slug for c in CANDIDATES], seed.vitality, model=model)
    assert proposal.inferred_links == ()
    assert dropped == ["inferred_links[0] 'adaptive-facilitation': evidence: Field required"]


# --- end to end: re-ask, salvage, and a re-ask the endpoint refuses ---------------------------


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    try:
        yield server
    finally:
        server.stop()


def client(fake: FakeOpenAI, retries: int) -> LLM:
    return LLM(LLMSettings(base_url=fake.url, api_key="test-key", model="fake-model",
                           mode="json_schema", max_attempts=1, max_retries=retries),
               sleep=lambda _: None)


def junk_answer() -> dict[str, Any]:
    data = good_answer()
    data["entities"] = [*data["entities"], *JUNK_ENTITIES]
    data["inferred_links"] = [*data["inferred_links"], *JUNK_LINKS]
    return data


def test_junk_is_reasked_with_the_reasons_then_salvaged(fake: FakeOpenAI, seed: Pattern) -> None:
    fake.script(answer(junk_answer()), answer(junk_answer()))
    with client(fake, retries=1) as llm:
        result = propose(seed, CANDIDATES, llm)
    assert len(fake.chat_requests) == 2
    reask = json.dumps(fake.chat_requests[1].body)
    assert "copied from the instructions" in reask and "quotes the candidate" in reask
    assert result.salvaged
    assert [e.id for e in result.proposal.entities] == ["distributed-leadership",
                                                        "decision-rights"]
    assert result.evidence == {"adaptive-facilitation": "a rotating  facilitation role here"}
    assert len(result.dropped) == 6
    assert [lk.target for lk in result.garden.inferred_links] == ["adaptive-facilitation"]


def test_a_reask_refused_for_context_salvages_the_first_answer(
        fake: FakeOpenAI, seed: Pattern) -> None:
    fake.script(answer(junk_answer()),
                status(400, "Requested tokens (8603) exceed context window of 8192",
                       error_code="context_length_exceeded"))
    with client(fake, retries=2) as llm:
        result = propose(seed, CANDIDATES, llm)
    assert len(fake.chat_requests) == 2
    assert result.salvaged
    assert [e.id for e in result.proposal.entities] == ["distributed-leadership",
                                                        "decision-rights"]
    assert [lk.target for lk in result.proposal.inferred_links] == ["adaptive-facilitation"]
    assert result.usage.requests == 2


def test_a_label_that_repeats_a_key_line_of_the_prompt_is_refused() -> None:
    """The bundled model answered ``label: "slug: adversarial-growth"`` and ``"title:
    challenge-session"``: the prompt's own lines, not what the pattern is about."""
    text = pattern_text(("Adversarial Growth", "Ask to be challenged in a challenge session."),
                        task=task_phrases(("slug", "title")))
    for label in ("slug: adversarial-growth", "Title: challenge-session"):
        problem = text.entity_problem("adversarial-growth", label)
        assert problem is not None and "repeats the prompt's" in problem
    assert text.entity_problem("challenge-session", "Challenge Session") is None


def test_function_words_do_not_ground_a_label() -> None:
    """From the bundled model over the sample library: half of this label's words ("in",
    "themselves") are in any English text; none of its content words is in the pattern's."""
    text = pattern_text(("Adaptive Facilitation",
                         "Facilitators adapt the process in the room to the group themselves."))
    problem = text.community_problem("fishermen-mariage-in-themselves",
                                     "Fisherman-Mariage-In-Themselves")
    assert problem is not None and "not grounded" in problem
    assert text.community_problem("adaptive-facilitation", "Adaptive Facilitation") is None


# --- vitality reasoning ----------------------------------------------------------------------

JUNK_REASONINGS = [
    # what the bundled SmolLM2 wrote, verbatim
    "4.6-5.0 generative (3) + 1.8+9.2 + 7.2 + 1.8 + 1.8 + 1.8 + 1.8 + 1.8 + 1.8 + 1.8",
    "adversarial-growth -consent-decision-making -adversative-leadership-under-uncertainty",
    "active-listening-depth - generative-band (4.5-5.0)",
    "It renews leadership and it renews leadership and it renews leadership and it grows.",
    "Adaptive facilitation shows it: adaptive-facilitation grows from the same roots here.",
]


@pytest.mark.parametrize("reasoning", JUNK_REASONINGS)
def test_a_reasoning_that_is_not_prose_about_the_pattern_is_refused_and_salvage_drops_it(
        model: type[ResponseModel], text: PatternText, reasoning: str) -> None:
    assert text.reasoning_problem(reasoning) is not None
    with pytest.raises(ValueError, match="vitality_reasoning"):
        model.model_validate(good_answer(vitality_reasoning=reasoning))
    proposal, dropped = salvage(json.dumps(good_answer(vitality_reasoning=reasoning)),
                                "distributed-leadership-design",
                                [c.slug for c in CANDIDATES], 4.0, model=model)
    assert proposal.vitality_reasoning is None
    assert any(d.startswith("vitality_reasoning:") for d in dropped)
    assert [e.id for e in proposal.entities] == ["distributed-leadership", "decision-rights"]


def test_a_reasoning_in_plain_words_passes(text: PatternText) -> None:
    assert text.reasoning_problem(REASONING) is None
    assert text.reasoning_problem("Groups that rotate roles keep producing new leaders, so "
                                  "the pattern stays alive where it is taught.") is None


@pytest.mark.parametrize(("ident", "label", "why"), [
    # what the bundled SmolLM2 wrote over ../shared/gold, verbatim
    ("distributed-leadership-design", "distributed-ledger", "written as an id"),
    ("living-your-values", "building-community-wealth-through-energy", "written as an id"),
    ("leadership-citycommons", "Leadership City Commons", "runs words together"),
    ("shared-leadership", "Leadership in thecommons", "runs words together"),
])
def test_labels_written_as_ids_and_words_run_together_are_refused(
        text: PatternText, ident: str, label: str, why: str) -> None:
    for problem in (text.entity_problem(ident, label), text.community_problem(ident, label)):
        assert problem is not None and why in problem


def test_a_name_in_the_patterns_words_is_not_malformed(text: PatternText) -> None:
    assert text.malformed("distributed-leadership", "Distributed Leadership") is None
    assert text.malformed("commons-governance", "Commons & Governance") is None
