"""``promote``: an inferred link moves into the human relationships, and no other line changes."""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gardener.cli.main import app
from gardener.library import load as library
from gardener.library.document import read_text
from gardener.library.garden import read_garden
from gardener.library.load import Entry
from gardener.library.pattern import build
from gardener.model import Garden, Link
from gardener.review.promote import PromoteError, promote
from gardener.steps.passes import render

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "patterns"
runner = CliRunner()


def entries() -> dict[str, Entry]:
    return library.load(SAMPLES).by_slug()


def with_link(entry: Entry, link: Link) -> Entry:
    """The entry as it would read with ``link`` added to its garden (a gardened file)."""
    garden = entry.pattern.garden or Garden()
    text = render(entry, garden.model_copy(update={
        "inferred_links": (*garden.inferred_links, link)}))
    doc = read_text(text, entry.doc.path)
    assert doc is not None
    return Entry(doc, build(doc, read_garden(doc)[0]).model_copy(
        update={"relationships": entry.pattern.relationships}))


def changed_lines(old: str, new: str) -> tuple[list[str], list[str]]:
    removed, added = [], []
    for line in difflib.ndiff(old.splitlines(keepends=True), new.splitlines(keepends=True)):
        if line.startswith("- "):
            removed.append(line[2:])
        elif line.startswith("+ "):
            added.append(line[2:])
    return removed, added


def test_v71_link_moves_to_relationships_and_only_its_lines_change() -> None:
    entry = entries()["accountability-partnership"]
    garden = entry.pattern.garden
    assert garden is not None
    link = garden.inferred_links[0]
    assert link.text is not None
    done = promote(entry.doc, entry.pattern, link.target)
    removed, added = changed_lines(entry.doc.text, done.new_text)
    assert "".join(removed) == link.text
    assert added == [f"    - slug: {link.target}\n", "      weight: 0.81\n"]
    data = yaml.safe_load(done.new_text.split("---")[1])
    assert data["relationships"]["complementary"][-1] == {"slug": link.target, "weight": 0.81}
    assert link.target not in [lk["target"] for lk in data["graph_garden"]["inferred_links"]]
    assert done.keys == ("relationships", "complementary")


def test_crlf_file_keeps_crlf() -> None:
    entry = entries()["accountability-without-shame"]
    garden = entry.pattern.garden
    assert garden is not None and garden.inferred_links
    target = garden.inferred_links[0].target
    done = promote(entry.doc, entry.pattern, target)
    assert done.new_text.count("\n") == done.new_text.count("\r\n")
    removed, added = changed_lines(entry.doc.text, done.new_text)
    assert "".join(removed) == garden.inferred_links[0].text
    assert all(line.endswith("\r\n") for line in added) and len(added) == 2


def test_empty_list_at_indent_zero_becomes_a_block_list() -> None:
    entry = with_link(entries()["active-listening-depth"],
                      Link(target="adversarial-growth", type="requires", confidence=0.8,
                           reason="r"))
    done = promote(entry.doc, entry.pattern, "adversarial-growth")
    removed, added = changed_lines(entry.doc.text, done.new_text)
    assert "  requires: []\n" in removed
    assert added[:3] == ["  requires:\n", "  - slug: adversarial-growth\n", "    weight: 0.8\n"]
    # the garden lost its only link: the list header is the only other line that changed
    assert added[3:] == ["  inferred_links: []\n"]


def test_flat_layout_appends_in_the_neighbours_style() -> None:
    base = entries()["adaptive-facilitation"]
    flow = with_link(base, Link(target="commons-resource-ledger", type="requires",
                                confidence=0.77, reason="r"))
    done = promote(flow.doc, flow.pattern, "commons-resource-ledger")
    _, added = changed_lines(flow.doc.text, done.new_text)
    assert added[0] == "- {id: commons-resource-ledger, weight: 0.77}\n"
    assert done.keys == ("requires",)
    new_key = with_link(base, Link(target="adversarial-growth", type="tools",
                                   confidence=0.7, reason="r"))
    done = promote(new_key.doc, new_key.pattern, "adversarial-growth")
    _, added = changed_lines(new_key.doc.text, done.new_text)
    assert added[:2] == ["tools:\n", "- adversarial-growth\n"]
    data = yaml.safe_load(done.new_text.split("---")[1])
    keys = list(data)
    assert keys.index("tools") == keys.index("related") + 1


def test_refusals_name_the_file() -> None:
    entry = entries()["distributed-leadership-design"]
    with pytest.raises(PromoteError, match=r"distributed-leadership-design\.md: .* no link to "
                                           r"'nowhere'"):
        promote(entry.doc, entry.pattern, "nowhere")
    garden = entry.pattern.garden
    assert garden is not None
    human = {h.target for h in entry.pattern.relationships}
    confirmed = next(lk.target for lk in garden.inferred_links if lk.target in human)
    with pytest.raises(PromoteError, match="already a human relationship"):
        promote(entry.doc, entry.pattern, confirmed)


def test_promote_command_writes_the_file(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    shutil.copytree(SAMPLES, lib)
    path = lib / "accountability-partnership.md"
    before = path.read_bytes()
    result = runner.invoke(app, ["promote", "accountability-partnership",
                                 "rotating-stewardship-roles", "--library", str(lib),
                                 "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "+    - slug: rotating-stewardship-roles" in result.output
    assert path.read_bytes() == before
    result = runner.invoke(app, ["promote", "accountability-partnership",
                                 "rotating-stewardship-roles", "--library", str(lib)])
    assert result.exit_code == 0, result.output
    assert path.read_bytes() != before
    again = runner.invoke(app, ["promote", "accountability-partnership",
                                "rotating-stewardship-roles", "--library", str(lib)])
    assert again.exit_code == 2
    assert "no link to 'rotating-stewardship-roles'" in again.output


def test_reject_command_records_and_takes_the_link_out(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    shutil.copytree(SAMPLES, lib)
    path = lib / "accountability-partnership.md"
    before = path.read_text(encoding="utf-8")
    result = runner.invoke(app, ["reject", "accountability-partnership", "consent-decision-making",
                                 "--type", "enables", "--library", str(lib),
                                 "--reason", "unrelated", "--today", "2026-03-01"])
    assert result.exit_code == 0, result.output
    ledger = (lib / ".gardener" / "decisions.yaml").read_text(encoding="utf-8")
    assert "  target: consent-decision-making\n  type: enables\n  reason: unrelated\n" in ledger
    removed, added = changed_lines(before, path.read_text(encoding="utf-8"))
    assert [x.strip() for x in removed] == ["- target: consent-decision-making",
                                           "type: enables", "confidence: 0.72",
                                           'reason: "Groups that keep small promises reliably '
                                           'can trust consent rounds to mean something"']
    assert added == []
    bad = runner.invoke(app, ["reject", "no-such-pattern", "x", "--library", str(lib)])
    assert bad.exit_code == 2 and "no pattern has slug 'no-such-pattern'" in bad.output
