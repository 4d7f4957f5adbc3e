"""The whole-library commands: ``gardener health`` and ``gardener communities``.

Thin shells: they read the library, call the pure modules (``graph``, ``health``,
``communities``, ``entities``) and write what was asked for. ``gardener.cli.main`` registers them.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from gardener.cli import flows as cli_flows
from gardener.cli.errors import cell, fail, plain, shown, write_out
from gardener.errors import Failed
from gardener.graph import communities as communities_mod
from gardener.graph import entities as entities_mod
from gardener.graph import health as health_mod
from gardener.graph import library_graph as graph_mod
from gardener.library import load as library_mod
from gardener.library import registry as registry_mod
from gardener.library.calibration import load_calibration, shipped
from gardener.library.load import Library
from gardener.library.tables import TableError
from gardener.library.write import WriteError, write_atomic

out = Console()
err = Console(stderr=True)

LibraryArg = Annotated[Path, typer.Argument(
    help="Library folder, searched recursively for *.md files with front matter.",
    show_default=False)]

communities_app = typer.Typer(
    name="communities", no_args_is_help=True, rich_markup_mode="markdown",
    help="The library's shared community vocabulary (LIBRARY/.gardener/communities.yaml).")




def _load(library: Path) -> Library:
    """The library as its ``gardener.toml`` scopes it (which files are patterns)."""
    from gardener.cli.flows import library_folder
    from gardener.config import load_config

    scope = load_config(library).scope(library)
    library_folder(library, scope)
    return library_mod.load(library, scope=scope)


def _registry(library: Path) -> registry_mod.Registry | None:
    try:
        return registry_mod.load_registry(library)
    except TableError as exc:
        raise fail("the community registry cannot be used:\n" + "\n".join(exc.problems)) \
            from None


def _aliases(library: Path) -> entities_mod.AliasTable:
    try:
        return entities_mod.load_aliases(library)
    except TableError as exc:
        raise fail("the entity alias table cannot be used:\n" + "\n".join(exc.problems)) \
            from None


def entity_summary(resolution: entities_mod.Resolution) -> health_mod.EntitySummary:
    return health_mod.EntitySummary(
        distinct_ids=resolution.distinct, merged_ids=resolution.merged,
        groups=len(resolution.merges),
        examples=[f"{', '.join(m.variants)} -> {m.canonical} ({m.rule}, {m.patterns} "
                  f"pattern{'s' if m.patterns != 1 else ''})"
                  for m in resolution.merges[:health_mod.EXAMPLES]])


# --- gardener health ------------------------------------------------------------------------


def _summary(h: health_mod.Health) -> list[Table]:
    lk, cm = h.links, h.communities
    totals = Table(title="library graph", show_header=False, title_justify="left")
    totals.add_column("what")
    totals.add_column("count", justify="right")
    for name, value in [
        ("patterns", lk.patterns), ("human links", lk.human), ("inferred links", lk.inferred),
        ("dangling human", lk.dangling_human), ("dangling inferred", lk.dangling_inferred),
        ("patterns with no links", lk.no_links), ("orphans (no in-links)", lk.orphans),
        ("isolated", lk.isolated),
        ("inverse pairs checked", h.inverse.checked),
        ("inverse pairs contradicting", h.inverse.inconsistent),
        ("inferred = human (redundant)", h.conflicts.redundant),
        ("inferred against human", h.conflicts.same_direction + h.conflicts.reverse),
        ("community ids", cm.distinct_ids), ("community ids used once", cm.singletons),
        ("patterns without community", cm.without_community),
    ]:
        totals.add_row(name, str(value))
    if h.entities is not None:
        totals.add_row("entity ids", str(h.entities.distinct_ids))
        totals.add_row("entity ids resolution merges", str(h.entities.merged_ids))
    skew = Table("links", "count", "top letter", "slugs", "letter TVD", "rank KS",
                 "targeted", "flag", title="link targets against the slugs",
                 title_justify="left")
    for s in h.skew:
        skew.add_row(s.origin, str(s.links), f"{s.top_letter} {100 * s.top_target_share:.1f}%",
                     f"{100 * s.top_slug_share:.1f}%", f"{s.tvd:.2f}", f"{s.ks:.2f}",
                     f"{100 * s.coverage:.1f}%",
                     Text("SKEWED", style="bold red") if s.flagged else Text("ok"))
    return [totals, skew]


def health(
    library: LibraryArg,
    json_path: Annotated[Path | None, typer.Option(
        "--json", help="Write every metric as JSON here.", dir_okay=False,
        show_default=False)] = None,
    html_path: Annotated[Path | None, typer.Option(
        "--html", help="Write a self-contained HTML page (graph and charts) here.",
        dir_okay=False, show_default=False)] = None,
    graphml_path: Annotated[Path | None, typer.Option(
        "--graphml", help="Export the whole graph as GraphML here.", dir_okay=False,
        show_default=False)] = None,
    graph_json_path: Annotated[Path | None, typer.Option(
        "--graph-json", help="Export the whole graph as node-link JSON here.",
        dir_okay=False, show_default=False)] = None,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Exit 1 when any problem is flagged (for CI).")] = False,
) -> None:
    """Report the health of the library graph; reads only, writes only the files asked for.

    Flags link targets not spread like the slugs (alphabetical bias), dangling links, orphans
    and isolated patterns, contradictory inverse pairs, inferred links against human ones and
    a fragmented community vocabulary.
    """
    lib = _load(library)
    registry = _registry(library)
    resolution = entities_mod.resolve_library(lib.patterns, _aliases(library))
    assignment = registry.assignment() if registry is not None else None
    g = graph_mod.build(lib.patterns, assignment)
    h = health_mod.assess(g, registry_ids=registry.ids if registry is not None else None,
                          entities=entity_summary(resolution))
    for table in _summary(h):
        out.print(table)
    if h.flags:
        for f in h.flags:
            out.print(f"[bold red]{f.code}[/]: {shown(f.message)}", highlight=False,
                      soft_wrap=True)
    else:
        out.print("[green]no problem flagged[/]")
    calibration = load_calibration(library) or shipped()
    out.print(f"link confidence: {shown(calibration.line())}", highlight=False,
              markup=False, soft_wrap=True)
    if registry is not None:
        for problem in registry_mod.unknown_members(registry, lib.slugs):
            err.print(f"[yellow]warning:[/] {shown(problem)}", highlight=False,
                      soft_wrap=True)
    title = f"Health of {library.resolve().name}"
    written: list[Path] = []
    if json_path is not None:
        data = {"library": str(library), "date": dt.date.today().isoformat(), **h.as_dict()}
        write_atomic(json_path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        written.append(json_path)
    if html_path is not None:
        from gardener.graph.page import render

        write_atomic(html_path, render(g, h, title=title))
        written.append(html_path)
    if graphml_path is not None:
        graph_mod.write_graphml(g, graphml_path)
        written.append(graphml_path)
    if graph_json_path is not None:
        graph_mod.write_graph_json(g, graph_json_path)
        written.append(graph_json_path)
    for path in written:
        err.print(f"written: {plain(path)}", markup=False, highlight=False)
    if strict and h.flags:
        raise Failed(f"{len(h.flags)} problem{'s' if len(h.flags) != 1 else ''} flagged "
                     "(--strict)")


# --- gardener communities ---------------------------------------------------------------------


@communities_app.command("check")
def communities_check(library: LibraryArg) -> None:
    """Validate the registry (ids, labels, aliases, members) and the gardens against it."""
    lib = _load(library)
    registry = _registry(library)
    if registry is None:
        raise fail(f"{registry_mod.registry_path(library)}: no registry; build one with "
                    "'gardener communities build'")
    problems = registry_mod.unknown_members(registry, lib.slugs)
    outside = 0
    for p in lib.patterns:
        if p.garden is None:
            continue
        for problem in registry_mod.garden_problems(p.garden.communities, registry):
            outside += 1
            problems.append(f"{p.path}: {problem}")
    for problem in problems:
        out.print(f"[yellow]problem:[/] {shown(problem)}", highlight=False, soft_wrap=True)
    out.print(f"{len(registry.communities)} registry communities; {outside} garden "
              f"communities outside the registry", highlight=False)
    if problems:
        raise Failed(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found")


@communities_app.command("build")
def communities_build(
    library: LibraryArg,
    seed: Annotated[int, typer.Option(
        "--seed", help="Seed of community detection: the same seed gives the same registry.")
    ] = communities_mod.DEFAULT_SEED,
    resolution: Annotated[float, typer.Option(
        "--resolution", min=0.01, help="Louvain resolution: higher gives more, smaller "
        "communities.")] = communities_mod.DEFAULT_RESOLUTION,
    min_size: Annotated[int | None, typer.Option(
        "--min-size", min=1, help="Smallest community; smaller ones join their closest "
        "(default: 3, or one per hundred patterns in large libraries).",
        show_default=False)] = None,
    no_llm: Annotated[bool, typer.Option(
        "--no-llm", help="Name communities from their members' labels; no model call.")
    ] = False,
    model: Annotated[str | None, typer.Option("--model", help="Model that names communities.",
                                              show_default=False)] = None,
    mode: Annotated[str | None, typer.Option("--mode", help="Structured-output mode.",
                                             show_default=False)] = None,
    fixtures: cli_flows.FixturesOpt = None,
    replay: cli_flows.ReplayOpt = False,
    record: cli_flows.RecordOpt = False,
    auto: cli_flows.AutoOpt = False,
    output: Annotated[Path | None, typer.Option(
        "--output", help="Write the registry here instead of LIBRARY/.gardener/"
        "communities.yaml.", dir_okay=False, show_default=False)] = None,
    apply: Annotated[bool, typer.Option(
        "--apply", help="Also rewrite each garden's communities onto the registry "
        "(source: taxonomy), verified byte for byte outside the garden.")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the registry (and with --apply the diffs); write nothing.")
    ] = False,
    report_path: Annotated[Path | None, typer.Option(
        "--report", help="Write the build's numbers and merges as JSON here.",
        dir_okay=False, show_default=False)] = None,
) -> None:
    """Build the community registry from what the library already says.

    Normalises and merges the existing community ids, detects communities on the link graph
    (seeded Louvain), assigns every pattern to one and names each (the model, or --no-llm).
    """
    from gardener.cli.flows import parse_fixture_mode

    lib = _load(library)
    fixture_mode = None if no_llm else parse_fixture_mode(fixtures, replay, record, auto)
    result = communities_mod.build(lib.patterns, seed=seed, resolution=resolution,
                                   min_size=min_size)
    naming = "deterministic (--no-llm)"
    kept: tuple[str, ...] = ()
    if not no_llm:
        result, naming, kept = _named(result, model, mode, fixtures, fixture_mode)
    target = output or registry_mod.registry_path(library)
    header = (f"Community registry of {library.resolve().name}, built by gardener communities "
              f"build (seed {seed}, resolution {resolution:g}, names: {naming}).\n"
              "Proposals draw their communities from here; edit labels and descriptions "
              "freely, a rebuild replaces the file.")
    text = registry_mod.dump_registry(result.registry, header)
    basis = {d.id: d.basis for d in result.drafts}
    table = Table("id", "label", "patterns", "former ids", "deterministic name from",
                  title="community registry", title_justify="left")
    for c in result.registry.communities:
        table.add_row(cell(c.id), cell(c.label), str(len(c.members)), str(len(c.aliases)),
                      cell(basis.get(c.id, "")))
    err.print(table)
    for problem in kept:
        err.print(f"[yellow]kept the deterministic name:[/] {shown(problem)}",
                  highlight=False, soft_wrap=True)
    err.print(f"{result.ids_before} community ids before ({result.keys_after_normalising} "
              f"after normalising spelling, {result.groups_after_merging} after merging "
              f"near-duplicates); {result.detected} detected, "
              f"{len(result.registry.communities)} in the registry; {result.assigned} of "
              f"{result.patterns} patterns assigned", highlight=False, soft_wrap=True)
    if dry_run:
        sys.stdout.write(text)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, text, within=library if output is None else None)
        err.print(f"registry written to {plain(target)}", markup=False, highlight=False)
    failed = _apply(lib, result, dry_run) if apply else 0
    if report_path is not None:
        report = {
            "library": str(library), "seed": seed, "resolution": resolution,
            "naming": naming, "ids_before": result.ids_before,
            "keys_after_normalising": result.keys_after_normalising,
            "groups_after_merging": result.groups_after_merging,
            "detected": result.detected, "communities": len(result.registry.communities),
            "patterns": result.patterns, "assigned": result.assigned,
            "merges": {c.id: list(c.aliases) for c in result.registry.communities},
            "named_from": basis,
        }
        write_atomic(report_path, json.dumps(report, indent=2) + "\n")
    if failed:
        raise Failed(f"{failed} garden{'s' if failed != 1 else ''} could not be rewritten; "
                     "each is listed above")


def _named(result: communities_mod.BuildResult, model: str | None, mode: str | None,
           fixtures: Path | None, fixture_mode: str | None
           ) -> tuple[communities_mod.BuildResult, str, tuple[str, ...]]:
    from gardener.pipeline.prefect import runtime

    runtime.configure(verbose=False)
    from gardener.endpoint.client import LLMError
    from gardener.endpoint.fixtures import FixtureMode
    from gardener.graph.community_names import name_communities
    from gardener.local.server import LocalModelError
    from gardener.pipeline.client import model_client
    from gardener.pipeline.options import GardenOptions

    options = GardenOptions(model=model, mode=mode,
                            fixtures=str(fixtures) if fixtures else None,
                            fixture_mode=FixtureMode(fixture_mode) if fixture_mode else None)
    try:
        with model_client(options) as llm:
            named = name_communities(result.drafts, llm)
            who = llm.settings.model
    except (LLMError, LocalModelError) as exc:
        raise fail(f"{exc}\n(use --no-llm to name communities without a model)", 1) from None
    return (communities_mod.renamed(result, named.drafts),
            f"model {who}, prompt {named.prompt_version}", named.kept)


def _apply(lib: Library, result: communities_mod.BuildResult, dry_run: bool) -> int:
    """Rewrite gardens' communities onto the registry through the verified splice path."""
    from gardener.steps.diff import unified_diff
    from gardener.steps.passes import render

    registry = result.registry
    changed = failed = 0
    for entry in lib.entries:  # files sharing a slug share its community
        p = entry.pattern
        garden = communities_mod.retarget(p.garden, p.slug, registry,
                                          result.strengths.get(p.slug))
        if p.garden is not None and garden == p.garden:
            continue
        try:
            text = render(entry, garden)
        except Exception as exc:  # one file refused must not stop the others
            failed += 1
            err.print(f"[red]failed:[/] {shown(f'{p.path}: {exc}')}", highlight=False,
                      soft_wrap=True)
            continue
        if text == entry.doc.text:
            continue
        changed += 1
        if dry_run:
            write_out(unified_diff(p.path, entry.doc.text, text))
            continue
        try:
            # The same check as the pass: an edit made while the model named communities stays.
            write_atomic(p.path, text, expected=entry.doc.text)
        except (WriteError, OSError) as exc:
            failed += 1
            err.print(f"[red]failed:[/] {shown(str(exc))}", highlight=False, soft_wrap=True)
    verb = "would change" if dry_run else "changed"
    err.print(f"gardens {verb}: {changed}; failed: {failed}", highlight=False)
    return failed
