"""bench/grounding.py's check (``gardener.testing.grounding_check``): what a pass added,
judged against the pattern's own text."""

from __future__ import annotations

from pathlib import Path

from gardener.model import Community, Entity, Garden, Pattern, Section
from gardener.testing.grounding_check import Tally, check, existing, label_grounded, own_text

EMPTY = Garden()


def pattern(garden: Garden = EMPTY) -> Pattern:
    return Pattern(path=Path("consent.md"), slug="consent-decision-making",
                   title="Consent Decision-Making",
                   summary="Groups decide by consent: a proposal passes unless someone objects.",
                   sections=(Section(heading="Solution", level=2,
                                     text="Rounds of reaction let every voice shape it."),),
                   garden=garden)


def test_a_label_in_the_text_or_an_id_made_of_its_words_is_grounded() -> None:
    text = own_text(pattern())
    assert label_grounded(text, "consent", "Consent")
    assert label_grounded(text, "reaction-rounds", "")  # every id word occurs ("rounds")
    assert not label_grounded(text, "kebab-case", "kebab-case")
    assert not label_grounded(text, "distribution-style-system-123", "Distribution style")


def test_only_what_the_pass_added_is_counted_and_ungrounded_items_are_named() -> None:
    old = Garden(entities=(Entity(id="legacy-thing", label="Legacy Thing"),))
    new = Garden(entities=(Entity(id="legacy-thing", label="Legacy Thing"),
                           Entity(id="consent", label="Consent"),
                           Entity(id="kebab-case", label="kebab-case")),
                 communities=(Community(id="domain", label="domain"),))
    tally = Tally()
    outcome = {"added": ["a", "b", "c"],
               "evidence": {"a": "a proposal passes unless someone objects",
                            "b": "words from another pattern entirely"}}
    check(pattern(old), pattern(new), outcome, tally)
    assert (tally.entities, tally.bad_entities) == (2, 1)
    assert (tally.communities, tally.bad_communities) == (1, 1)
    assert (tally.links, tally.links_without_evidence, tally.evidence_not_found) == (3, 1, 1)
    assert any("kebab-case" in line for line in tally.bad)


def test_existing_counts_what_the_gardens_hold_with_the_same_check() -> None:
    held = Garden(entities=(Entity(id="consent", label="Consent"),
                            Entity(id="kebab-case", label="kebab-case")),
                  communities=(Community(id="group-dynamics", label="Group Dynamics"),
                               Community(id="voice-rounds", label="Rounds of reaction")))
    seen = existing([pattern(held), pattern(), pattern(EMPTY)])
    assert seen.patterns == 3 and (seen.entities, seen.bad_entities) == (2, 1)
    assert (seen.communities, seen.bad_communities) == (2, 1)
    assert seen.bad == ["consent-decision-making: community 'group-dynamics' ('Group Dynamics')"]
