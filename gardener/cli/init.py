"""``gardener init LIBRARY``: look at a library and write a commented ``gardener.toml``.

Which folders hold pattern files is found, not assumed: every Markdown file is read with the
library's reader, and a file whose front matter has a pattern's keys (a slug, human
relationships, a garden, an ontology) is a pattern; a README or a docs page is not. The
include globs cover exactly the folders holding patterns (generalized over a folder name
when that selects the same files, ``extensions/*/patterns/*.md``), the excludes take out the
other Markdown they would catch. A template with a pattern's keys (in a ``templates/``
folder, or with a placeholder slug such as ``pattern-slug-here``) is no pattern: excluded,
and said so. Human relationship kinds in use outside the link vocabulary (``manifests_as``)
are listed under ``relationships.types``. ``plan`` is pure. Last, what gardening would
cost, counted offline as ``run --estimate`` counts it: the whole library, and the first
batch of ``FIRST_BATCH`` patterns.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from gardener.cli.errors import plain
from gardener.config import CONFIG_FILE, Config, parse_config
from gardener.errors import GardenerError, UsageError
from gardener.library.document import ReadError
from gardener.library.document import read as read_document
from gardener.library.load import discover
from gardener.library.pattern import HUMAN_KEYS
from gardener.library.scope import ALL_MARKDOWN, Scope, glob_match
from gardener.library.write import write_atomic
from gardener.model import LINK_TYPES

if TYPE_CHECKING:
    from gardener.pipeline.estimate import Estimate

err = Console(stderr=True)

FIRST_BATCH = 10
"""Patterns the first gardening asks about (``gardener run LIBRARY --max-patterns 10``), as
``init`` suggests it: a pull request a person can review in one sitting."""

TEMPLATE_FOLDERS = frozenset({"template", "templates", "_template", "_templates"})
"""Folder names whose Markdown files are templates to copy, not patterns."""
_TEMPLATE_NAME = re.compile(r"_?(pattern[-_])?template", re.IGNORECASE)
_PLACEHOLDER = re.compile(
    r".*(\{\{|\}\}|\$\{|%\().*"  # {{slug}}, ${slug}, %(slug)s
    r"|<.+>|\[.+\]"  # <slug>, [slug]
    r"|(.+[-_])?(slug|name|id|title|your|pattern|goes)([-_].+)?[-_]here"  # pattern-slug-here
    r"|(your|example|pattern|my)[-_]slug|slug|todo|tbd|x{3,}",
    re.IGNORECASE)

PATTERN_KEYS = frozenset({"slug", "graph_garden", "relationships", "ontology",
                          "classification", *HUMAN_KEYS})
"""Top-level front-matter keys only a pattern has; a docs page's title or layout is no sign."""


def is_pattern(data: Mapping[str, Any]) -> bool:
    """Whether a front matter is a pattern's (see ``PATTERN_KEYS``, or a ``pat_`` id)."""
    ident = data.get("id")
    return bool(PATTERN_KEYS & data.keys()) or (isinstance(ident, str)
                                                and ident.startswith("pat_"))


def template_reason(rel: str, data: Mapping[str, Any]) -> str | None:
    """Why a file with a pattern's front matter is a template rather than a pattern (None: it
    is a pattern): a ``templates/`` folder or a template's file name, or a placeholder slug
    (``pattern-slug-here``, ``{{slug}}``, ``<slug>``)."""
    path = PurePosixPath(rel)
    folder = next((p for p in path.parts[:-1] if p.lower() in TEMPLATE_FOLDERS), None)
    if folder is not None:
        return f"in a {folder}/ folder"
    if _TEMPLATE_NAME.fullmatch(path.stem):
        return "a template's file name"
    slug = data.get("slug")
    if isinstance(slug, str) and _PLACEHOLDER.fullmatch(slug.strip()):
        return f"placeholder slug {slug.strip()!r}"
    return None


def relationship_kinds(data: Mapping[str, Any]) -> set[str]:
    """Human relationship kinds of one front matter that are outside the link vocabulary."""
    kinds = {k for k in HUMAN_KEYS if k in data}
    rel = data.get("relationships")
    if isinstance(rel, Mapping):
        kinds |= {str(k) for k in rel}
    return {k for k in kinds if k not in LINK_TYPES}


@dataclass(frozen=True)
class Layout:
    """What ``plan`` found: globs, how many patterns each include selects, other kinds."""

    include: tuple[str, ...]
    exclude: tuple[str, ...]
    counts: dict[str, int] = field(default_factory=dict)
    types: tuple[str, ...] = ()


def _parent(path: str) -> str:
    parent = str(PurePosixPath(path).parent)
    return "" if parent == "." else parent


def _under(folder: str, path: str) -> bool:
    return folder == "" or path.startswith(folder + "/")


def _matched(glob: str, paths: list[str]) -> set[str]:
    return {p for p in paths if glob_match(glob, p)}


def _generalized(globs: list[str], accept: Any) -> list[str]:
    """Globs that differ in one folder name merged into one with ``*`` there, while
    ``accept(merged, originals)`` says the merge selects what it should."""
    globs = sorted(set(globs))
    merged = True
    while merged:
        merged = False
        for i, a in enumerate(globs):
            for b in globs[i + 1:]:
                pa, pb = a.split("/"), b.split("/")
                diff = [k for k in range(len(pa)) if len(pa) == len(pb) and pa[k] != pb[k]]
                if len(diff) != 1 or diff[0] == len(pa) - 1:
                    continue
                pa[diff[0]] = "*"
                candidate = "/".join(pa)
                if candidate not in (a, b) and accept(candidate, (a, b)):
                    globs = sorted({*(g for g in globs if g not in (a, b)), candidate})
                    merged = True
                    break
            if merged:
                break
    return globs


def plan(files: Mapping[str, bool | None], kinds: Mapping[str, int] | None = None) -> Layout:
    """Include and exclude globs selecting exactly the pattern files of ``files``.

    ``files`` maps each Markdown file (relative, ``/``-separated) to whether it is a pattern
    (None: unreadable, left to the globs); ``kinds``: patterns per relationship kind in use
    outside the vocabulary.
    """
    paths = sorted(files)
    patterns = [p for p in paths if files[p]]
    others = [p for p in paths if files[p] is False]
    types = tuple(sorted(kinds or {}))
    if not others:
        return Layout((ALL_MARKDOWN,), (), {ALL_MARKDOWN: len(patterns)}, types)
    folders = {_parent(p) for p in patterns}
    roots = sorted(f for f in folders
                   if not any(g != f and _under(g, f + "/") for g in folders))
    include = []
    for root in roots:
        below = [p for p in paths if _under(root, p)]
        flat = all(_parent(p) == root for p in below)
        base = f"{root}/" if root else ""
        include.append(base + ("*.md" if flat else "**/*.md"))

    def same_files(candidate: str, originals: tuple[str, ...]) -> bool:
        return _matched(candidate, paths) == set().union(*(_matched(g, paths)
                                                           for g in originals))

    include = _generalized(include, same_files)
    caught = sorted({p for p in others if any(glob_match(g, p) for g in include)})
    exclude = []
    for path in caught:
        parts = PurePosixPath(path).parts[:-1]
        top = next(("/".join(parts[:k]) for k in range(1, len(parts) + 1)
                    if not any(_under("/".join(parts[:k]), p) for p in patterns)), None)
        exclude.append(f"{top}/**" if top is not None else path)

    def no_pattern(candidate: str, _originals: tuple[str, ...]) -> bool:
        return not _matched(candidate, patterns)

    exclude = _generalized(sorted(set(exclude)), no_pattern)
    scope = Scope(include=tuple(include), exclude=tuple(exclude))
    counts = {g: sum(1 for p in patterns if glob_match(g, p) and scope.admits(p))
              for g in include}
    return Layout(tuple(include), tuple(exclude), counts, types)


@dataclass(frozen=True)
class Survey:
    """Every Markdown file of a library: a pattern (True), not one (False) or unreadable
    (None); the templates among the files that are not, with why; kinds in use."""

    files: dict[str, bool | None]
    templates: dict[str, str]
    kinds: Counter[str]


def survey(library: Path) -> Survey:
    """Every Markdown file of ``library``: pattern or not; relationship kinds in use."""
    files: dict[str, bool | None] = {}
    templates: dict[str, str] = {}
    kinds: Counter[str] = Counter()
    for path in discover(library):
        rel = path.relative_to(library).as_posix()
        try:
            doc = read_document(path)
        except ReadError as exc:
            err.print(f"warning: {plain(exc)}; left to the globs", markup=False, highlight=False,
                      soft_wrap=True)
            files[rel] = None
            continue
        files[rel] = doc is not None and is_pattern(doc.data)
        if doc is not None and files[rel]:
            why = template_reason(rel, doc.data)
            if why is not None:
                files[rel] = False
                templates[rel] = why
                continue
            kinds.update(relationship_kinds(doc.data))
    return Survey(files, templates, kinds)


def _toml_list(items: tuple[str, ...], notes: Mapping[str, str] | None = None) -> str:
    if not items:
        return "[]"
    lines = []
    for item in items:
        note = (notes or {}).get(item)
        lines.append(f"  {json.dumps(item)},{f'  # {note}' if note else ''}")
    return "[\n" + "\n".join(lines) + "\n]"


def _comment(text: str) -> str:
    return "\n".join(textwrap.wrap(text, 88, initial_indent="#   ", subsequent_indent="#   "))


def render(layout: Layout) -> str:
    """The commented ``gardener.toml`` of a layout; every value the built-in default but
    the detected ones."""
    d = Config()
    notes = {g: f"{n} pattern file{'s' if n != 1 else ''}" for g, n in layout.counts.items()}
    return f"""\
# graph-gardener's configuration of this library (written by `gardener init`; edit freely).
# Every key is optional; unknown keys are errors. Command-line options override this file.
# Keys, defaults and the JSON schema: docs/configuration.md of graph-gardener.

[library]
# Which Markdown files are patterns: globs relative to this file's folder; '*' stays within
# a folder name, '**' spans folders. Other Markdown (READMEs, docs) is never touched.
include = {_toml_list(layout.include, notes)}
exclude = {_toml_list(layout.exclude)}

[relationships]
# Human relationship kinds besides the link vocabulary, read under `relationships:` and as
# top-level keys; found in use here. The vocabulary:
{_comment(", ".join(LINK_TYPES))}
types = {json.dumps(list(layout.types))}
# Off-vocabulary link types that pruning renames instead of removing, e.g.
# renames = {{ "enabler_of" = "enables" }}
renames = {{}}
# The type of an inferred link an older tool wrote without one ("" removes such links).
untyped = "{d.relationships.untyped or ""}"

[prune]
min_confidence = {d.prune.min_confidence}  # inferred links below this confidence are removed
max_links = {d.prune.max_links}  # most inferred links a pattern keeps (the strongest)
max_entities = {d.prune.max_entities}
max_communities = {d.prune.max_communities}

[model]
# Unset: GARDENER_MODEL / _MODE / _TIMEOUT_S / _CONTEXT, else the endpoint's defaults.
# name = "gpt-4.1-mini"
# mode = "tools"  # or json_schema, json_object_schema, json, md_json
# concurrency = 8  # model calls in flight at once
# budget_tokens = 500000  # no new model call once a pass has spent this many tokens
# timeout_s = 120.0  # seconds one request may take
# context = 8192  # tokens of context the model has, where its server does not say

# Prices per million tokens, over the built-in table that --estimate uses:
# [prices."gpt-4.1-mini"]
# input_per_mtok = 0.40
# output_per_mtok = 1.60

[review]
branch = {json.dumps(d.review.branch)}  # the one rolling branch `gardener review` pushes
labels = {json.dumps(d.review.labels)}
# base = "main"  # default: the repository's default branch

[schedule]
# `gardener serve`: cron, five fields (minute hour day-of-month month day-of-week).
garden = {json.dumps(d.schedule.garden)}
prune = {json.dumps(d.schedule.prune)}
"""


def init(
    library: Annotated[Path, typer.Argument(
        help="Library folder to write gardener.toml into.", show_default=False,
        file_okay=False)],
    force: Annotated[bool, typer.Option(
        "--force", help="Replace an existing gardener.toml.")] = False,
) -> None:
    """Detect the library's layout and write a commented default gardener.toml there.

    Then prints what gardening would cost, counted offline and sent nowhere: the whole
    library, and a first batch of 10 patterns (gardener run LIBRARY --max-patterns 10).
    """
    if not library.is_dir():
        raise UsageError(f"{library}: no such library folder")
    target = library / CONFIG_FILE
    if target.exists() and not force:
        raise UsageError(f"{target} already exists; edit it, or pass --force to replace it")
    found = survey(library)
    files, kinds = found.files, found.kinds
    if not any(files.values()):
        raise UsageError(f"{library}: no Markdown file with a pattern's front matter (slug, "
                         "relationships, graph_garden) in this folder or below; is it the "
                         "library?")
    layout = plan(files, kinds)
    text = render(layout)
    config = parse_config(text, target)  # what init writes, the gardener reads
    for glob in layout.include:
        n = layout.counts.get(glob, 0)
        err.print(f"include {plain(glob)}: {n} pattern file{'s' if n != 1 else ''}", markup=False,
                  highlight=False)
    for glob in layout.exclude:
        err.print(f"exclude {plain(glob)}", markup=False, highlight=False)
    for rel, why in sorted(found.templates.items()):
        err.print(f"template, no pattern: {plain(rel)} ({plain(why)}); excluded", markup=False,
                  highlight=False, soft_wrap=True)
    others = sum(1 for v in files.values() if v is False) - len(found.templates)
    if others:
        err.print(f"{others} other Markdown file{'s are' if others != 1 else ' is'} no "
                  "pattern", markup=False, highlight=False)
    if layout.types:
        err.print("relationship kinds outside the vocabulary: "
                  + ", ".join(f"{plain(k)} ({kinds[k]} patterns)" for k in layout.types),
                  markup=False, highlight=False)
    write_atomic(target, text, within=library)
    err.print(f"wrote {plain(target)}", markup=False, highlight=False)
    for line in estimate_lines(library, config):
        err.print(plain(line), markup=False, highlight=False, soft_wrap=True)


def _cost(found: Estimate) -> str:
    """One estimate's totals, on one line."""
    from gardener.endpoint.prices import dollars

    calls = len(found.calls)
    said = (f"{calls} model call{'s' if calls != 1 else ''}, {found.prompt_tokens:,} prompt "
            f"tokens, at most {found.completion_bound:,} completion tokens"
            + (f" ({found.skipped} up to date, skipped)" if found.skipped else ""))
    cost = found.cost()
    if cost is None:
        return f"{said}, price unknown"
    if cost[1] == 0:
        return f"{said}, $0"
    return f"{said}, {dollars(cost[0])} to {dollars(cost[1])}"


def estimate_lines(library: Path, config: Config, batch: int = FIRST_BATCH) -> list[str]:
    """What gardening the library would cost, as ``run --estimate`` counts it (offline,
    nothing sent): every stale pattern, and the first ``batch`` of them. An estimate that
    cannot be made (no model to count for) is said, not an error: the file is written."""
    from gardener.cli import cost
    from gardener.cli.flows import garden_defaults
    from gardener.pipeline.estimate import estimate
    from gardener.pipeline.options import GardenOptions

    try:
        defaults = garden_defaults(config, library, model=None, mode=None, concurrency=None)
        prices = cost.cost_options(config, None)["prices"]
        whole = estimate(library, GardenOptions(**defaults), prices=prices,
                         prices_from=cost.prices_from(config))
    except GardenerError as exc:
        return [f"estimate: not made: {exc}"]
    first = whole.first(batch)
    lines = [f"estimate for model '{whole.model}' at {whole.endpoint}, counted offline "
             f"({whole.method}); nothing was sent:",
             f"  whole library: {_cost(whole)}",
             f"  first batch (gardener run {library} --max-patterns {batch}): {_cost(first)}"]
    if whole.price is None:
        lines.append(f"  price unknown for '{whole.model}'; add it under [prices] in "
                     f"{CONFIG_FILE}")
    return lines
