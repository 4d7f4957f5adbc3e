"""Could ruamel.yaml's round trip locate and render the garden better than ``splice.py`` does?

Over every readable file of the shared corpus, per file, the best of ``--repeat`` runs:

- time: ``splice.locate`` + ``detect_style`` (what every read of a file pays) and a whole
  ``splice.splice`` of a changed garden, against ruamel's round-trip load of the front
  matter (the least that locating through ``.lc`` positions costs), of the garden block's
  text alone, and a ruamel dump of the new garden in the file's indentation against
  ``render_garden``;
- correctness: where ruamel's ``.lc`` positions put the garden and its items against the
  block and item texts the splice uses, whether a ruamel-rendered garden reads back (through
  PyYAML, the reader every later pass uses) as the garden meant, whether an unchanged garden
  survives a ruamel load and dump byte for byte, and a few values the seed's vocabulary
  allows (``yes``, ``on``, ``1:20``, ``1e16``) rendered through ruamel and read back.

    python bench/splice.py [--repeat 3] [--out docs/yaml.md]

ruamel.yaml is no dependency of the gardener (the figures are why): install it to run this.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml

try:
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.representer import RoundTripRepresenter
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString
except ImportError:  # the gardener does not depend on it (docs/yaml.md)
    sys.exit("bench/splice.py measures ruamel.yaml, which the gardener does not install: "
             ".venv/bin/pip install 'ruamel.yaml>=0.18,<0.20' to run it")

from bench.common import CORPUS, ROOT, commit, machine, replace_section
from gardener.library import block as block_mod
from gardener.library import yaml_text
from gardener.library.document import Document, ReadError, read, read_text
from gardener.library.garden import read_garden
from gardener.model import Entity, Garden, Link
from gardener.steps import splice, verify

HEADING = "## Measurement"
TODAY = dt.date(2026, 11, 25)
PROJECTED_FILES = 3641
PROJECTED_CHANGED = 1496
"""The scaled library of bench/prune.py (the corpus copied 11 times) and the files its first
pass changes (docs/benchmarks.md)."""


def _best(repeat: int, fn: Callable[..., Any], *args: Any) -> float:
    """The best of ``repeat`` runs of ``fn(*args)``, in milliseconds."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t)
    return best * 1000.0


def _changed(garden: Garden | None) -> Garden:
    """The garden a pruning pass would write: a new date and the first link gone."""
    if garden is None:
        return Garden(last_pruned=TODAY)
    return garden.model_copy(update={"last_pruned": TODAY,
                                     "inferred_links": garden.inferred_links[1:]})


class _NullRepresenter(RoundTripRepresenter):
    """ruamel's round-trip representer, writing ``None`` as ``null`` (a class of its own:
    ``add_representer`` changes the class it is called on, for every later dump)."""


_NullRepresenter.add_representer(
    type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))


def _rt(style: yaml_text.Style, null: bool = True) -> YAML:
    y = YAML(typ="rt")
    # ruamel counts the sequence indent to the item's content and the offset to its dash
    y.indent(mapping=style.indent, sequence=style.seq_indent + 2, offset=style.seq_indent)
    y.width = 1 << 30
    y.preserve_quotes = True
    if null:  # the seed writes ``last_pruned: null``; ruamel's round trip leaves it empty
        y.Representer = _NullRepresenter
    return y


_FIELDS: dict[str, tuple[str, ...]] = block_mod.ITEM_FIELDS


def _ruamel_tree(garden: Garden) -> CommentedMap:
    body = CommentedMap()
    body["last_pruned"] = garden.last_pruned
    for key in splice.LIST_KEYS:
        seq = CommentedSeq()
        for item in getattr(garden, key):
            m = CommentedMap()
            for name in _FIELDS[key]:
                value = getattr(item, name)
                if value is None:
                    continue
                m[name] = (DoubleQuotedScalarString(value)
                           if name in splice.QUOTED_FIELDS else value)
            seq.append(m)
        body[key] = seq
    if garden.vitality_reasoning is not None:
        body["vitality_reasoning"] = DoubleQuotedScalarString(garden.vitality_reasoning)
    top = CommentedMap()
    top[yaml_text.GARDEN_KEY] = body
    return top


def ruamel_render(garden: Garden, style: yaml_text.Style) -> str:
    out = io.StringIO()
    _rt(style).dump(_ruamel_tree(garden), out)
    return out.getvalue().replace("\n", style.newline)


def ruamel_edit(d: Document, block: block_mod.Block, new: Garden, style: yaml_text.Style) -> str:
    """The garden block edited the way ``_changed`` changes it, through ruamel's round trip:
    load the block, set the date, delete the first link, dump in the file's indentation."""
    rt = _rt(style)
    tree = rt.load(d.text[block.start:block.end].replace("\r\n", "\n"))
    garden = tree[yaml_text.GARDEN_KEY]
    if not isinstance(garden, CommentedMap) or garden.fa.flow_style():
        return ruamel_render(new, style)
    if "last_pruned" in garden:
        garden["last_pruned"] = new.last_pruned
    else:
        garden.insert(0, "last_pruned", new.last_pruned)
    links = garden.get("inferred_links")
    if isinstance(links, CommentedSeq) and links:
        del links[0]
    out = io.StringIO()
    rt.dump(tree, out)
    return out.getvalue().replace("\n", d.newline)


_SCALAR = YAML(typ="rt")
_SCALAR.width = 1 << 30


def ruamel_quote(value: str) -> str:
    """One double-quoted scalar through ruamel's emitter, as ``yaml_text.quote`` writes it."""
    out = io.StringIO()
    _SCALAR.dump(DoubleQuotedScalarString(value), out)
    return out.getvalue().removesuffix("\n")


def _labels(garden: Garden) -> list[str]:
    return [*(x.label for x in garden.entities if x.label),
            *(x.label for x in garden.communities if x.label),
            *(x.reason for x in garden.inferred_links if x.reason)]


def _each(fn: Callable[[str], str], values: Sequence[str]) -> list[str]:
    return [fn(v) for v in values]


def _locate_and_style(d: Document) -> tuple[block_mod.Block, yaml_text.Style]:
    return block_mod.locate(d), yaml_text.detect_style(d)


def _rt_load(text: str) -> Any:
    return YAML(typ="rt").load(text)


def _known(garden: Garden) -> Garden:
    return garden.model_copy(update={"extra": ()})


def _reads_back(text: str, garden: Garden) -> bool:
    try:
        d = read_text("---\n" + text + "---\n")
    except ReadError:
        return False
    if d is None:
        return False
    got, _ = read_garden(d)
    return got == _known(garden)


def _line(d: Document, offset: int) -> int:
    """0-based line within the front matter of a file offset."""
    return d.text.count("\n", d.fm_start, offset)


@dataclass
class Figures:
    files: int = 0
    gardens: int = 0
    locate_ms: list[float] = field(default_factory=list)
    splice_ms: list[float] = field(default_factory=list)
    render_ms: list[float] = field(default_factory=list)
    rt_fm_ms: list[float] = field(default_factory=list)
    rt_block_ms: list[float] = field(default_factory=list)
    rt_render_ms: list[float] = field(default_factory=list)
    rt_edit_ms: list[float] = field(default_factory=list)
    garden_splice_ms: list[float] = field(default_factory=list)
    """``splice_ms`` of the files with a garden, which ``rt_edit_ms`` times."""
    quote_ms: list[float] = field(default_factory=list)
    rt_quote_ms: list[float] = field(default_factory=list)
    quoted: int = 0
    quoted_same: int = 0
    edit_same_bytes: int = 0
    edit_verified: int = 0
    rt_load_errors: int = 0
    key_line_same: int = 0
    naive_end_same: int = 0
    items: int = 0
    item_line_same: int = 0
    rendered_reads_back: int = 0
    unchanged_same_bytes: int = 0
    unchanged_same_bytes_plain: int = 0
    """The same without the ``null`` representer: ruamel's round trip as it comes."""
    failures: list[str] = field(default_factory=list)


def measure(paths: Sequence[Path], repeat: int) -> Figures:
    f = Figures()
    for path in paths:
        try:
            d = read(path)
        except ReadError:
            continue
        if d is None:
            continue
        f.files += 1
        garden, _ = read_garden(d)
        new = _changed(garden)
        style = yaml_text.detect_style(d)
        fm = d.front_matter
        f.locate_ms.append(_best(repeat, _locate_and_style, d))
        splice_ms = _best(repeat, splice.splice, d, new)
        f.splice_ms.append(splice_ms)
        f.render_ms.append(_best(repeat, splice.render_garden, new, style))
        f.rt_render_ms.append(_best(repeat, ruamel_render, new, style))
        labels = _labels(new)
        f.quote_ms.append(_best(repeat, _each, yaml_text.quote, labels))
        f.rt_quote_ms.append(_best(repeat, _each, ruamel_quote, labels))
        f.quoted += len(labels)
        f.quoted_same += sum(yaml_text.quote(x) == ruamel_quote(x) for x in labels)
        try:
            f.rt_fm_ms.append(_best(repeat, _rt_load, fm))
            tree = _rt_load(fm)
        except Exception as exc:  # ruamel's own errors share no base class with PyYAML's
            f.rt_load_errors += 1
            f.failures.append(f"{path.name}: ruamel cannot load it: {type(exc).__name__}")
            continue
        if _reads_back(ruamel_render(new, style), new):
            f.rendered_reads_back += 1
        else:
            f.failures.append(f"{path.name}: the ruamel-rendered garden reads back different")
        block = block_mod.locate(d)
        if not block.present:
            continue
        f.gardens += 1
        f.garden_splice_ms.append(splice_ms)
        text = d.text[block.start:block.end]
        f.rt_block_ms.append(_best(repeat, _rt_load, text))
        keys = list(tree)
        at = keys.index(yaml_text.GARDEN_KEY)
        key_line = tree.lc.key(yaml_text.GARDEN_KEY)[0]
        if key_line == _line(d, block.start):
            f.key_line_same += 1
        # ruamel has start positions only: the block's end is the next key's line
        end_line = (tree.lc.key(keys[at + 1])[0] if at + 1 < len(keys)
                    else fm.count("\n"))
        if end_line == _line(d, block.end):
            f.naive_end_same += 1
        value = tree[yaml_text.GARDEN_KEY]
        for sec in block.sections:
            seq = value.get(sec.key) if isinstance(value, CommentedMap) else None
            if sec.key not in splice.LIST_KEYS or not isinstance(seq, CommentedSeq):
                continue
            for i, item_text in enumerate(block_mod.item_texts(d, sec)):
                if item_text is None:  # flow lists and aliases have no lines of their own
                    continue
                f.items += 1
                start = d.text.find(item_text, sec.start)
                if seq.lc.item(i)[0] == _line(d, start):
                    f.item_line_same += 1
        f.rt_edit_ms.append(_best(repeat, ruamel_edit, d, block, new, style))
        edited = ruamel_edit(d, block, new, style)
        spliced = splice.splice(d, new)
        tail = len(d.text) - block.end
        if edited == spliced[block.start:len(spliced) - tail]:
            f.edit_same_bytes += 1
        try:
            verify.verify(d, d.text[:block.start] + edited + d.text[block.end:], new)
            f.edit_verified += 1
        except verify.VerifyError as exc:
            f.failures.append(f"ruamel edit refused: {exc}")
        out = io.StringIO()
        rt = _rt(style)
        rt.dump(rt.load(text.replace("\r\n", "\n")), out)
        if out.getvalue().replace("\n", d.newline) == text:
            f.unchanged_same_bytes += 1
        out = io.StringIO()
        rt = _rt(style, null=False)
        rt.dump(rt.load(text.replace("\r\n", "\n")), out)
        if out.getvalue().replace("\n", d.newline) == text:
            f.unchanged_same_bytes_plain += 1
    return f


VOCABULARY: list[tuple[str, str, Any]] = [
    ("entities", "id", "yes"), ("entities", "id", "no"), ("entities", "id", "on"),
    ("inferred_links", "type", "1:20"), ("entities", "relevance", 1e-05),
    ("entities", "id", "1_000"), ("entities", "id", "0o17"),
]
"""(list, field, value): values the model allows that YAML 1.1 and 1.2 read differently."""


def vocabulary() -> list[tuple[str, bool]]:
    """(the line ruamel wrote, whether PyYAML reads the very value back, of the same type)."""
    out = []
    for kind, name, value in VOCABULARY:
        fields: dict[str, Any] = {"id": "e"} if kind == "entities" else {"target": "t"}
        fields[name] = value
        item = Entity(**fields) if kind == "entities" else Link(**fields)
        text = ruamel_render(Garden(**{kind: (item,)}), yaml_text.SEED_STYLE)
        got = yaml.safe_load(text)[yaml_text.GARDEN_KEY][kind][0].get(name)
        shown = next(ln.strip() for ln in text.splitlines() if f"{name}:" in ln)
        out.append((shown, type(got) is type(value) and got == value))
    return out


def _ms(xs: Sequence[float]) -> str:
    return f"{statistics.median(xs):.3f} | {statistics.mean(xs):.3f}" if xs else "- | -"


def report(f: Figures, repeat: int) -> str:
    mean_locate = statistics.mean(f.locate_ms)
    mean_fm = statistics.mean(f.rt_fm_ms)
    mean_splice = statistics.mean(f.garden_splice_ms)
    mean_edit = statistics.mean(f.rt_edit_ms)
    per_quote = sum(f.quote_ms) * 1000 / max(f.quoted, 1)
    per_rt_quote = sum(f.rt_quote_ms) * 1000 / max(f.quoted, 1)
    rows = [
        ("`splice.locate` + `detect_style` (every read)", f.locate_ms),
        ("`splice.splice` of a changed garden (locate, style, render, reuse)", f.splice_ms),
        ("`render_garden` in the file's style", f.render_ms),
        ("ruamel round-trip load of the front matter", f.rt_fm_ms),
        ("ruamel round-trip load of the garden block only", f.rt_block_ms),
        ("ruamel dump of the new garden in the file's indentation", f.rt_render_ms),
        ("ruamel edit of the garden block (load, change, dump)", f.rt_edit_ms),
    ]
    lines = [
        f"Command: `.venv/bin/python bench/splice.py --repeat {repeat} --out docs/yaml.md`",
        "",
        f"Corpus: {f.files} readable files of `../shared/corpus` ({f.gardens} with a "
        f"garden); commit {commit()}; {machine()}; {dt.date.today().isoformat()}. Each "
        f"figure is a file's best of {repeat} runs, in milliseconds.",
        "",
        "| per file | median ms | mean ms |",
        "|---|---|---|",
        *(f"| {name} | {_ms(xs)} |" for name, xs in rows),
        "",
        f"Locating through ruamel's positions needs its load first: {mean_fm / mean_locate:.0f}"
        f" times what locating costs now ({mean_fm:.2f} against {mean_locate:.3f} ms a "
        f"file). Every read locates the garden (`garden.read_detailed`), so over the "
        f"{PROJECTED_FILES:,} files of `bench/prune.py`'s library that is "
        f"{mean_fm * PROJECTED_FILES / 1000:.0f} s more per pass, against "
        f"{mean_locate * PROJECTED_FILES / 1000:.2f} s now; `verify` locates twice more "
        "for every changed file.",
        "",
        f"Editing the block through ruamel instead of rendering it: {mean_edit / mean_splice:.0f}"
        f" times the splice ({mean_edit:.2f} against {mean_splice:.3f} ms a file with a "
        f"garden), "
        f"{(mean_edit - mean_splice) * PROJECTED_CHANGED / 1000:.0f} s more for the "
        f"{PROJECTED_CHANGED:,} files the first pass of that library changes. Quoting "
        f"through ruamel's emitter: {per_rt_quote:.1f} µs a label or reason against "
        f"{per_quote:.1f} µs ({f.quoted:,} of them).",
        "",
        "| correctness over the corpus | count |",
        "|---|---|",
        f"| front matter ruamel cannot load | {f.rt_load_errors} of {f.files} |",
        f"| garden key on the line `locate` starts the block | {f.key_line_same} of "
        f"{f.gardens} |",
        f"| block end at the next top-level key's line (ruamel gives no end) equal to "
        f"`locate`'s | {f.naive_end_same} of {f.gardens} |",
        f"| list items whose `lc.item` line is their text's first line | {f.item_line_same}"
        f" of {f.items} |",
        f"| unchanged garden, ruamel load + dump, same bytes | {f.unchanged_same_bytes} of "
        f"{f.gardens} |",
        f"| the same without a representer writing `None` as `null` | "
        f"{f.unchanged_same_bytes_plain} of {f.gardens} |",
        f"| garden block edited through ruamel, same bytes as `splice.splice` | "
        f"{f.edit_same_bytes} of {f.gardens} |",
        f"| garden block edited through ruamel, passes `verify` | {f.edit_verified} of "
        f"{f.gardens} |",
        f"| labels and reasons quoted by ruamel as `splice.quote` quotes them | "
        f"{f.quoted_same} of {f.quoted} |",
        f"| changed garden rendered by ruamel, read back by PyYAML as meant | "
        f"{f.rendered_reads_back} of {f.files - f.rt_load_errors} |",
        "",
        "Values rendered by ruamel's dump, read back by PyYAML (the reader of every later "
        "pass):",
        "",
        "| ruamel wrote | reads back as meant |",
        "|---|---|",
        *(f"| `{shown}` | {'yes' if ok else '**no**'} |" for shown, ok in vocabulary()),
    ]
    if f.failures:
        lines += ["", "First differences: " + "; ".join(f.failures[:5]) + "."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--out", type=Path, help="write the figures into this Markdown file")
    args = parser.parse_args(argv)
    paths = sorted(args.corpus.rglob("*.md"))
    if not paths:
        print(f"no corpus at {args.corpus}", file=sys.stderr)
        return 2
    text = report(measure(paths, args.repeat), args.repeat)
    print(text)
    if args.out:
        out = args.out if args.out.is_absolute() else ROOT / args.out
        replace_section(out, HEADING, text, title="# ruamel.yaml and the splice")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
