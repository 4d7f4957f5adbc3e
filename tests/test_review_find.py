"""``gardener.library.find``: the file of a slug without loading the library, as loading finds
it; and ``reject`` and ``promote`` built on it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gardener.cli.main import app
from gardener.library import load as library
from gardener.library.find import declared_slug, find
from gardener.library.scope import Scope

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "patterns"
CORPUS = ROOT.parent / "shared" / "corpus"
runner = CliRunner()

BODY = "\n# A pattern\n\nSome text.\n"
ODD = {
    # file name: front matter (slug it has, by loading)
    "plain.md": "slug: plain-one  # a comment\ntitle: P\n",
    "double.md": 'title: D\nslug: "double-one"\n',
    "single.md": "slug: 'single-one'  # quoted\n",
    "stem-only.md": "title: no slug here\nrelationships:\n  requires:\n  - slug: plain-one\n",
    "number.md": "slug: 2024\n",
    "truthy.md": "slug: yes\n",
    "empty-string.md": 'slug: ""\n',
    "folded.md": "slug: >-\n  folded-one\n",
    "escaped.md": 'slug: "esc\\u0061ped-one"\n',
    "indented.md": "  title: I\n  slug: indented-one\n",
    "merged.md": "base: &b {slug: merged-one}\n<<: *b\n",  # refused: no merge keys
    "tagged.md": "slug: !!str tagged-one\n",
    "anchored.md": "slug: &s anchored-one\nalias: *s\n",
    "crlf.md": "slug: crlf-one\r\ntitle: C\r\n",
    "nested/deep.md": "slug: deep-one\n",
    "named-like-it.md": "slug: another-name\n",
    "no-front-matter.md": None,
    "excluded/hidden.md": "slug: excluded-one\n",
    "dup-a.md": "slug: twice\n",
    "dup-b.md": "slug: twice\n",
    "broken.md": "slug: broken\ntitle: [unclosed\n",
}


def odd_library(root: Path) -> Path:
    lib = root / "lib"
    for name, front in ODD.items():
        path = lib / name
        path.parent.mkdir(parents=True, exist_ok=True)
        text = BODY if front is None else f"---\n{front}---\n{BODY}"
        if name == "crlf.md":
            text = text.replace("\n", "\r\n").replace("\r\r\n", "\r\n")
        path.write_bytes(("\ufeff" if name == "double.md" else "").encode() + text.encode())
    (lib / "gardener.toml").write_text('[library]\nexclude = ["excluded/**"]\n',
                                       encoding="utf-8")
    return lib


def agrees_with_loading(lib: Path, scope: Scope | None, slugs: list[str]) -> None:
    loaded = library.load(lib, scope=scope)
    by_slug = loaded.by_slug()
    for slug in slugs:
        found = find(lib, [slug], scope=scope)
        want = by_slug.get(slug)
        got = found.first(slug)
        assert (got.pattern.path if got else None) == (want.pattern.path if want else None), slug
        if got is not None and want is not None:
            assert got.doc.text == want.doc.text
            assert len(found.entries[slug]) == sum(
                1 for e in loaded.entries if e.pattern.slug == slug)


def test_every_odd_front_matter_is_found_as_loading_finds_it(tmp_path: Path) -> None:
    lib = odd_library(tmp_path)
    scope = Scope(exclude=("excluded/**",))
    loaded = library.load(lib, scope=scope)
    slugs = sorted(loaded.slugs)
    assert {"plain-one", "double-one", "single-one", "stem-only", "number", "truthy",
            "empty-string", "folded-one", "escaped-one", "indented-one",
            "tagged-one", "anchored-one", "crlf-one", "deep-one",
            "another-name", "twice"} == set(slugs)
    agrees_with_loading(lib, scope, [*slugs, "excluded-one", "named-like-it", "broken",
                                     "merged-one",
                                     "no-front-matter", "nowhere"])
    assert find(lib, ["excluded-one"], scope=scope).first("excluded-one") is None
    assert find(lib, ["excluded-one"]).first("excluded-one") is not None  # no scope: found
    twice = find(lib, ["twice"], scope=scope)
    assert [e.pattern.path.name for e in twice.entries["twice"]] == ["dup-a.md", "dup-b.md"]
    broken = find(lib, ["broken"], scope=scope)
    assert broken.first("broken") is None
    # broken.md is named like the slug; merged.md's merge key only parsing reads, and refuses
    assert [path.name for path, _ in broken.errors] == ["broken.md", "merged.md"]


def test_a_file_loading_cannot_edit_is_read_not_the_find_s_end(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "flow.md").write_text("---\n{slug: flow-one, title: F}\n---\nx\n", encoding="utf-8")
    (lib / "plain.md").write_text("---\nslug: plain-one\n---\nx\n", encoding="utf-8")
    found = find(lib, ["plain-one", "flow-one"])  # the scan cannot rule the flow mapping out
    assert found.first("plain-one") is not None
    flow = found.first("flow-one")  # read, with a warning that its garden cannot be written
    assert flow is not None and any("one flow mapping" in w for w in flow.pattern.warnings)
    assert not found.errors


def test_the_scan_parses_only_the_files_that_may_hold_the_slug(tmp_path: Path) -> None:
    lib = odd_library(tmp_path)
    found = find(lib, ["plain-one"], scope=Scope(exclude=("excluded/**",)))
    # plain.md, and those whose front matter only parsing can read
    parsed = {"plain.md", "folded.md", "escaped.md", "indented.md", "merged.md",
              "tagged.md", "anchored.md"}
    assert found.parsed == len(parsed) and found.scanned == len(ODD) - 1


@pytest.mark.parametrize("text, slug", [
    ("slug: a-b\n", "a-b"), ("slug:   a-b   \n", "a-b"), ("slug: a#b\n", "a#b"),
    ('"slug": x\n', "x"), ("slug: 1.5\n", ""), ("slug: null\n", ""), ("slug: ~\n", ""),
    ("slug: 2025-01-02\n", ""), ("title: t\n", ""), ("slug: |\n  x\n", None),
    ("slug: x\nslug: y\n", None), ("? slug\n: x\n", None), ("slug: 'a'b'\n", None),
    ("slug: x\rtitle: y\r", None), ("slug: 'it''s'\n", "it's"),
])
def test_declared_slug(text: str, slug: str | None) -> None:
    assert declared_slug(text) == slug


def test_the_samples_and_the_corpus_agree_with_loading() -> None:
    agrees_with_loading(SAMPLES, None, sorted(library.load(SAMPLES).slugs))
    if not CORPUS.is_dir():
        pytest.skip(f"{CORPUS} is not here")
    loaded = library.load(CORPUS)
    slugs = sorted(loaded.slugs)
    agrees_with_loading(CORPUS, None, slugs[:: max(1, len(slugs) // 40)])


def test_promote_resolves_a_human_reference_by_pat_id(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    shutil.copytree(SAMPLES, lib)
    entries = library.load(lib).by_slug()
    source = entries["accountability-partnership"]
    garden = source.pattern.garden
    assert garden is not None
    target = garden.inferred_links[0].target
    ident = entries[target].pattern.id
    assert ident is not None and ident.startswith("pat_")
    path = source.pattern.path
    text = path.read_text(encoding="utf-8")
    head, sep, rest = text.partition("\nrelationships:\n")
    assert sep, "the sample has a relationships mapping"
    path.write_text(f"{head}{sep}  uses:\n  - {ident}\n{rest}", encoding="utf-8")
    done = runner.invoke(app, ["promote", "accountability-partnership", target,
                               "--library", str(lib), "--dry-run"])
    assert done.exit_code == 2
    assert f"'{target}' is already a human relationship (uses)" in done.output


def test_reject_names_an_unreadable_file_of_the_slug(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    shutil.copytree(SAMPLES, lib)
    (lib / "adversarial-growth.md").write_text("---\nslug: [unclosed\n---\n", encoding="utf-8")
    done = runner.invoke(app, ["reject", "adversarial-growth", "x", "--library", str(lib)])
    assert done.exit_code == 2
    assert "no pattern has slug 'adversarial-growth'" in done.output
    assert "adversarial-growth.md" in done.output
