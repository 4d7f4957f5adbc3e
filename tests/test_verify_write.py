"""Verify refuses any text that changed more than the garden; the writer is atomic and exact."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from helpers_text import (
    CORPUS,
    FILE,
    HEAD,
    KEYS,
    ONTOLOGY,
    TAIL,
    doc,
    garden_of,
    need,
    sample_garden,
)

from gardener.library.block import locate
from gardener.library.document import ReadError, read
from gardener.library.garden import read_garden
from gardener.library.write import ConflictError, WriteError, write_atomic
from gardener.model import Entity, Garden, Link
from gardener.steps.diff import CR_MARK, NO_NEWLINE, unified_diff
from gardener.steps.edit import splice_scalar
from gardener.steps.splice import splice
from gardener.steps.verify import VerifyError, verify, verify_scalar

# ---- verify --------------------------------------------------------------------------------


def test_verify_accepts_a_proper_splice() -> None:
    d = doc(FILE)
    verify(d, splice(d, sample_garden()), sample_garden())


def test_verify_refuses_a_changed_byte_before_the_garden() -> None:
    d = doc(FILE)
    new = splice(d, sample_garden()).replace("GROUP 1", "GROUP one")
    with pytest.raises(VerifyError, match=r"pattern\.md: .*bytes before the garden changed "
                                          r"\(first at line 3\)"):
        verify(d, new, sample_garden())


def test_verify_refuses_a_changed_body_or_banner_after_the_garden() -> None:
    d = doc(FILE)
    good = splice(d, sample_garden())
    for bad in (good.replace("Body text.", "Body text!"),
                good.replace("# GROUP 7: PROVENANCE", "# GROUP 7"),
                good.replace("\n# ═══════════════\n# GROUP 7", "# ═══════════════\n# GROUP 7")):
        with pytest.raises(VerifyError, match="bytes after the garden changed"):
            verify(d, bad, sample_garden())


def test_verify_refuses_text_that_does_not_parse() -> None:
    d = doc(FILE)
    block = locate(d)
    bad = FILE[:block.start] + "graph_garden: {broken\n" + FILE[block.end:]
    with pytest.raises(VerifyError, match="does not parse"):
        verify(d, bad, sample_garden())


def test_verify_refuses_a_tag_or_an_alias_written_into_the_garden() -> None:
    """The re-parse skips the reading guards (the old text passed them): what they would
    catch in the gardener's own writing must still be refused."""
    d = doc(HEAD.replace("slug: demo", "slug: &s demo") + "graph_garden:\n  last_pruned: null\n"
            + TAIL)
    block = locate(d)
    meant = Garden()
    for middle in ("graph_garden:\n  last_pruned: *s\n",
                   "graph_garden:\n  last_pruned: !!binary aGVsbG8=\n",
                   "graph_garden:\n  last_pruned: !!python/name:os.system\n"):
        bad = d.text[:block.start] + middle + d.text[block.end:]
        with pytest.raises(VerifyError):
            verify(d, bad, meant)
    verify(d, d.text[:block.start] + "graph_garden:\n  last_pruned: null\n" + d.text[block.end:],
           meant)


def test_verify_refuses_a_garden_that_swallows_the_next_key() -> None:
    d = doc(HEAD + "graph_garden:\n  last_pruned: null\n" + TAIL)
    block = locate(d)
    bad = d.text[:block.start] + "graph_garden:\n  last_pruned: null\n  note: |\n" + \
        d.text[block.end:]
    with pytest.raises(VerifyError):
        verify(d, bad, Garden())


def test_verify_refuses_other_front_matter_changes_inside_the_block() -> None:
    d = doc("---\ngraph_garden:\n  last_pruned: null\nlicense: x\n---\n")
    bad = "---\ngraph_garden:\n  last_pruned: null\nextra_key: 1\nlicense: x\n---\n"
    with pytest.raises(VerifyError, match="outside graph_garden changed: key 'extra_key' "
                                          "was added"):
        verify(d, bad, Garden())


def test_verify_refuses_a_garden_other_than_meant() -> None:
    d = doc(FILE)
    new = splice(d, sample_garden())
    meant = sample_garden().model_copy(update={"entities": (Entity(id="other"),)})
    with pytest.raises(VerifyError, match=r"garden read back differs.*entities"):
        verify(d, new, meant)


def test_verify_scalar() -> None:
    d = doc(ONTOLOGY)
    new = splice_scalar(d, KEYS, "Fresh reasoning")
    verify_scalar(d, new, KEYS, "Fresh reasoning")
    with pytest.raises(VerifyError, match="changed more than that value"):
        verify_scalar(d, new, KEYS, "Other reasoning")
    with pytest.raises(VerifyError, match="bytes after"):
        verify_scalar(d, new.replace("status: draft", "status: final"), KEYS, "Fresh reasoning")


# ---- every real file -----------------------------------------------------------------------


def _corpus() -> list[Path]:
    files = sorted(p for p in need(CORPUS).rglob("*.md") if p.name != "README.md")
    if not files:
        pytest.skip(f"../shared/corpus has no pattern files: {CORPUS}")
    return files


@pytest.mark.corpus
def test_every_corpus_file_round_trips_and_takes_a_change() -> None:
    unreadable: list[str] = []
    same = inserted = changed = 0
    for path in _corpus():
        try:
            d = read(path)
        except ReadError as exc:
            unreadable.append(str(exc))
            continue
        assert d is not None, path
        g, _ = read_garden(d)
        if g is None:
            new_garden = sample_garden()
            new = splice(d, new_garden)
            verify(d, new, new_garden)
            inserted += 1
            continue
        if any(k.migrated for k in g.inferred_links):
            # an older tool's link shape is written anew (docs/configuration.md), all else kept
            migrated = splice(d, g)
            verify(d, migrated, g)
            assert migrated[:d.fm_start] == d.text[:d.fm_start]
        else:
            assert splice(d, g) == d.text, f"{path}: unchanged garden changed the file"
        same += 1
        if g.inferred_links:
            new_garden = g.model_copy(update={"inferred_links": g.inferred_links[1:]})
        else:
            new_garden = g.model_copy(update={"inferred_links": (
                Link(target="a-slug", type="enables", confidence=0.5, reason="added"),)})
        new = splice(d, new_garden)
        verify(d, new, new_garden)
        changed += 1
    # the corpus README names two files whose YAML does not parse
    assert len(unreadable) == 2, unreadable
    assert same == changed and same > 200 and inserted > 50


# ---- write ---------------------------------------------------------------------------------


def test_write_atomic_keeps_bytes_and_mode(tmp_path: Path) -> None:
    target = tmp_path / "p.md"
    target.write_bytes(b"old")
    target.chmod(0o640)
    text = "\ufeff---\r\nslug: é\r\n---\r\nbody\n"
    write_atomic(target, text)
    assert target.read_bytes() == text.encode("utf-8")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert os.listdir(tmp_path) == ["p.md"]


def test_write_atomic_creates_a_new_file(tmp_path: Path) -> None:
    write_atomic(tmp_path / "new.md", "x\n")
    assert (tmp_path / "new.md").read_text(encoding="utf-8") == "x\n"


def test_write_atomic_leaves_no_temp_file_on_error(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "p.md"
    target.write_text("old", encoding="utf-8")

    def fail(src: object, dst: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(WriteError, match=r"p\.md: cannot write: Permission denied"):
        write_atomic(target, "new")
    assert os.listdir(tmp_path) == ["p.md"]
    assert target.read_text(encoding="utf-8") == "old"


def test_write_atomic_refuses_to_write_through_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "bashrc"
    real.write_text("old", encoding="utf-8")
    link = tmp_path / "decisions.yaml"
    link.symlink_to(real)
    with pytest.raises(WriteError, match=r"decisions\.yaml: cannot write: it is a symbolic link"):
        write_atomic(link, "new")
    assert link.is_symlink() and real.read_text(encoding="utf-8") == "old"
    assert sorted(os.listdir(tmp_path)) == ["bashrc", "decisions.yaml"]


def test_write_atomic_refuses_a_symlinked_folder_inside_the_library(tmp_path: Path) -> None:
    library = tmp_path / "lib"
    library.mkdir()
    elsewhere = tmp_path / "home"
    elsewhere.mkdir()
    (library / ".gardener").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(WriteError, match=r"\.gardener is a symbolic link"):
        write_atomic(library / ".gardener" / "state.json", "{}", within=library)
    assert os.listdir(elsewhere) == []
    with pytest.raises(WriteError, match="outside"):
        write_atomic(tmp_path / "x.json", "{}", within=library)
    (library / "sub").mkdir()
    write_atomic(library / "sub" / "ok.json", "{}", within=library)
    assert (library / "sub" / "ok.json").read_text(encoding="utf-8") == "{}"


@pytest.mark.parametrize("edited", ["old text, and more", "old", "ol", "", "old texT"])
def test_write_atomic_refuses_any_edit_since_the_read(tmp_path: Path, edited: str) -> None:
    target = tmp_path / "p.md"
    target.write_text(edited, encoding="utf-8")
    with pytest.raises(ConflictError):
        write_atomic(target, "new", expected="old text")
    assert target.read_text(encoding="utf-8") == edited
    assert os.listdir(tmp_path) == ["p.md"]
    write_atomic(target, "new", expected=edited)
    assert target.read_text(encoding="utf-8") == "new"


def test_write_atomic_refuses_a_read_only_file(tmp_path: Path) -> None:
    target = tmp_path / "p.md"
    target.write_text("old", encoding="utf-8")
    target.chmod(0o444)
    with pytest.raises(WriteError, match="read-only"):
        write_atomic(target, "new")
    assert target.read_text(encoding="utf-8") == "old" and os.listdir(tmp_path) == ["p.md"]


def test_write_then_read_gives_the_garden(tmp_path: Path) -> None:
    target = tmp_path / "p.md"
    text = FILE.replace("\n", "\r\n")
    target.write_bytes(text.encode("utf-8"))
    d = read(target)
    assert d is not None
    new = splice(d, sample_garden())
    verify(d, new, sample_garden())
    write_atomic(target, new)
    assert target.read_bytes() == new.encode("utf-8")
    assert garden_of(target.read_text(encoding="utf-8")) == sample_garden()


# ---- diff ----------------------------------------------------------------------------------


def test_unified_diff_labels_and_content() -> None:
    d = doc(FILE)
    out = unified_diff("lib/p.md", FILE, splice(d, sample_garden()))
    lines = out.splitlines()
    assert lines[0] == "--- a/lib/p.md" and lines[1] == "+++ b/lib/p.md"
    assert lines[2].startswith("@@ ")
    assert "-    - target: accountability-partnership" in lines
    assert "+  communities:" in lines
    assert unified_diff("p.md", FILE, FILE) == ""


def test_unified_diff_shows_crlf_and_missing_final_newline() -> None:
    out = unified_diff("p.md", "a\r\nb\r\n", "a\r\nc")
    assert out.splitlines()[2:] == ["@@ -1,2 +1,2 @@", f" a{CR_MARK}", f"-b{CR_MARK}", "+c",
                                    NO_NEWLINE]
    assert "\r" not in out
    assert unified_diff("p.md", "x\n", "x\r\n").splitlines()[3:] == ["-x", f"+x{CR_MARK}"]
