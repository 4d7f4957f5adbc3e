"""The decisions ledger: reading with file:line errors, writing, the filter, history rules."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from gardener.library import decisions
from gardener.library import load as library
from gardener.library.decisions import Decision, Ledger, LedgerError
from gardener.model import Garden, Link, Reason
from gardener.review import learned
from gardener.review.learned import Links
from gardener.steps.passes import garden_entry
from gardener.steps.rejections import Rejections, without_rejected

ROOT = Path(__file__).resolve().parents[1]
TODAY = dt.date(2026, 3, 1)


def test_ledger_round_trip_keeps_every_field(tmp_path: Path) -> None:
    ledger = Ledger((
        Decision("b-pattern", "x", "enables", "too vague: \"enables\" what?", TODAY),
        Decision("a-pattern", "y", None, "", None, "history", "0123456789abcdef"),
    ))
    path = tmp_path / ".gardener" / "decisions.yaml"
    decisions.save(path, ledger)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# graph-gardener decisions")
    back = decisions.load(path)
    assert sorted(back.decisions, key=lambda d: d.slug) == sorted(ledger.decisions,
                                                                   key=lambda d: d.slug)
    assert text.index("a-pattern") < text.index("b-pattern")  # sorted, stable diffs


def test_missing_or_empty_ledger_rejects_nothing(tmp_path: Path) -> None:
    assert decisions.load(tmp_path / "nope.yaml") == Ledger()
    assert decisions.parse("", "d.yaml") == Ledger()
    assert decisions.parse("rejected:\n", "d.yaml") == Ledger()


@pytest.mark.parametrize(("text", "message"), [
    ("rejected:\n  - slug: a\n    target: b\n  - slug: a\n", "d.yaml:4: 'target' is missing"),
    ("rejected:\n  - slug: a\n    target: b\n    type: enabler\n",
     "d.yaml:2: type 'enabler' is not a link type"),
    ("rejected:\n  - slug: a\n    target: b\n    colour: red\n", "d.yaml:2: unknown key(s) colour"),
    ("rejected:\n  - slug: a\n    target: b\n    date: soon\n", "d.yaml:2: date 'soon'"),
    ("rejected:\n  - just-a-slug\n", "d.yaml:2: a decision is a mapping"),
    ("rejected: {slug: a}\n", "d.yaml:1: 'rejected' must be a list"),
    ("rejections: []\n", "d.yaml:1: unknown key(s) rejections"),
    ("rejected:\n  - slug: [a\n", "d.yaml:"),
    ("rejected:\n  - slug: a\n    target: b\n    source: robot\n",
     "d.yaml:2: source must be person or history"),
])
def test_a_bad_ledger_names_file_and_line(text: str, message: str) -> None:
    with pytest.raises(LedgerError) as info:
        decisions.parse(text, "d.yaml")
    assert str(info.value).startswith(message)


def test_add_skips_what_is_already_covered() -> None:
    ledger = Ledger((Decision("a", "b"),))
    ledger, added = ledger.add([Decision("a", "b", "enables"), Decision("a", "c", "tools"),
                                Decision("a", "c", "tools")])
    assert [d.key for d in added] == [("a", "c", "tools")]
    assert len(ledger.decisions) == 2


def test_filter_by_target_and_optional_type() -> None:
    rejections = Rejections.of(Ledger((Decision("p", "any-type"),
                                       Decision("p", "one-type", "enables", "no"))))
    garden = Garden(inferred_links=(
        Link(target="any-type", type="tools", confidence=0.9),
        Link(target="one-type", type="enables", confidence=0.8),
        Link(target="one-type-other", type="enables", confidence=0.8),
    ))
    kept, removed = without_rejected("p", garden, rejections)
    assert [lk.target for lk in kept.inferred_links] == ["one-type-other"]
    assert [(r.item, r.reason) for r in removed] == [("any-type", Reason.REJECTED),
                                                      ("one-type", Reason.REJECTED)]
    assert removed[1].detail == "rejected by a person: no"
    same = Garden(inferred_links=(Link(target="one-type", type="requires", confidence=0.8),))
    assert without_rejected("p", same, rejections) == (same, [])
    assert without_rejected("other", garden, rejections) == (garden, [])


def test_deleted_by_hand_rules() -> None:
    before = {"p": Links(frozenset({("gone", "enables"), ("retyped", "tools"),
                                    ("promoted", "requires"), ("kept", "enables"),
                                    ("deleted-pattern", "enables")}), frozenset()),
              "renamed-away": Links(frozenset({("kept", "enables")}), frozenset())}
    after = {"p": Links(frozenset({("retyped", "enables"), ("kept", "enables")}),
                        frozenset({"promoted"}))}
    library_slugs = {"p", "gone", "retyped", "promoted", "kept"}
    found = learned.deleted_by_hand(before, after, library_slugs, commit="c" * 40,
                                      today=TODAY)
    assert [(d.slug, d.target, d.type, d.source) for d in found] == [
        ("p", "gone", None, "history"),         # the whole target
        ("p", "retyped", "tools", "history"),   # only the old type: the new one stays
    ]
    assert found[0].reason == f"deleted by hand after gardener commit {'c' * 12}"


def test_the_gardening_step_drops_rejected_links_proposed_or_existing() -> None:
    lib = library.load(ROOT / "patterns")
    entry = lib.by_slug()["accountability-partnership"]
    assert entry.pattern.garden is not None
    existing = entry.pattern.garden.inferred_links[0].target  # rotating-stewardship-roles
    proposed = Garden(inferred_links=(
        Link(target="adaptive-facilitation", type="enables", confidence=0.9, reason="r"),
        Link(target="commons-resource-ledger", type="tools", confidence=0.9, reason="r"),
    ))
    rejections = Rejections.of(Ledger((Decision("accountability-partnership", existing),
                                       Decision("accountability-partnership",
                                                "adaptive-facilitation"))))
    change = garden_entry(entry, proposed, slugs=lib.slugs, today=TODAY,
                          rejections=rejections)
    assert change.new_text is not None
    outcome = change.outcome
    assert outcome.detail.rejected == ["adaptive-facilitation"]
    assert [(r.item, r.reason) for r in outcome.removals] == [(existing, Reason.REJECTED)]
    assert outcome.added == ["commons-resource-ledger"]
    assert existing not in change.new_text.split("graph_garden:")[1]
    assert "adaptive-facilitation" not in change.new_text.split("graph_garden:")[1]
    plain = garden_entry(entry, proposed, slugs=lib.slugs, today=TODAY)
    assert "adaptive-facilitation" in plain.outcome.added


def test_saving_keeps_what_people_wrote_in_the_ledger(tmp_path: Path) -> None:
    """An existing ledger is extended through ruamel's round trip: comments, order and
    hand-written entries stay; new entries come last, quoted where YAML 1.1 needs it."""
    path = tmp_path / ".gardener" / "decisions.yaml"
    path.parent.mkdir()
    hand = ("# our team's rejections\nrejected:\n# the first two came from the March review\n"
            "- slug: zeta   # keep this one first\n  target: alpha\n  reason: unrelated\n")
    path.write_text(hand, encoding="utf-8")
    ledger, added = decisions.load(path).add([
        decisions.Decision("on", "1:20", None, "no", dt.date(2026, 3, 1)),
        decisions.Decision("beta", "gamma", "complementary", "it's off-topic: really")])
    assert len(added) == 2
    decisions.save(path, ledger)
    text = path.read_text(encoding="utf-8")
    assert text.startswith(hand)
    assert decisions.load(path) == ledger
    assert "slug: 'on'" in text and "target: '1:20'" in text and "reason: 'no'" in text
    decisions.save(path, ledger)  # nothing new: the file is left as it is
    assert path.read_text(encoding="utf-8") == text
