"""The ``gardener`` command line: thin wrappers that call the core and the flows.

Every command reads a library folder (searched recursively for ``*.md`` files with front
matter) and shows progress on stderr. Errors go to the one handler (`gardener.cli.errors`),
and every pass command ends through `gardener.cli.errors.conclude`: exit 0 done, 1 a pattern
or file asked for failed, 2 usage or set-up, 3 stopped by a budget or deadline, 130
interrupted, so CI and cron jobs can tell them apart (README.md, "Exit codes").
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gardener import __version__
from gardener.cli import evaluate as cli_evaluate
from gardener.cli import flows as cli_flows
from gardener.cli import graph as cli_graph
from gardener.cli import init as cli_init
from gardener.cli import review as cli_review
from gardener.cli.errors import HELP_OPTIONS, HandledGroup, cell, conclude, plain, shown, write_out
from gardener.config import Config, load_config
from gardener.errors import Failed, UsageError
from gardener.library import load as library_mod
from gardener.library.load import Library
from gardener.model import MAX_COMMUNITIES, MAX_ENTITIES, MAX_LINKS, MIN_CONFIDENCE, Outcome
from gardener.pipeline import report

app = typer.Typer(
    name="gardener",
    cls=HandledGroup,
    help="Tend the machine-written graph_garden of a Markdown pattern library.\n\n"
    "Only the graph_garden block of each file is ever rewritten; every other byte stays as "
    "it was, and each write is verified before it lands.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": HELP_OPTIONS},
)
out = Console()
err = Console(stderr=True)

LibraryArg = Annotated[Path, typer.Argument(
    help="Library folder, searched recursively for *.md files with front matter.",
    show_default=False)]
ReportOpt = Annotated[Path | None, typer.Option(
    "--report", help="Write a JSON report (every pattern, its status and changes) here.",
    dir_okay=False, writable=True)]
DryRunOpt = Annotated[bool, typer.Option(
    "--dry-run", help="Print unified diffs; write nothing.")]


def _version(value: bool) -> None:
    if value:
        out.print(f"gardener {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Tend the machine-written graph_garden of a Markdown pattern library."""


@contextmanager
def progress(total: int, label: str) -> Iterator[Callable[[], None]]:
    """A progress bar on stderr when it is a terminal.

    Elsewhere rich draws nothing but still ends a bar with a blank line, so none is made.
    """
    if not err.is_terminal:
        yield lambda: None
        return
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=err, transient=True)
    with bar:
        task = bar.add_task(label, total=total)
        yield lambda: bar.advance(task)


def load_library(root: Path, config: Config | None = None) -> Library:
    """The library as ``gardener.toml`` scopes it (``config``: read here when not given)."""
    scope = (config or load_config(root)).scope(root)
    paths = cli_flows.library_folder(root, scope)
    with progress(len(paths), "reading") as tick:
        return library_mod.load(root, on_file=lambda _p: tick(), scope=scope)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def prune_table(outcomes: list[Outcome], title: str) -> Table:
    """Totals of a pruning pass, one per row so that no narrow terminal cuts a name (a
    gardening pass's are ``cli.flows.summary_table``)."""
    totals = report.totals(outcomes)
    rows = [*cli_flows.status_rows(outcomes),
            ("removed", totals["removals"]), ("renamed", totals["renames"]),
            ("human conflicts", totals["conflicts"])]
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("count", justify="right")
    for name, value in rows:
        table.add_row(name, str(value))
    return table


@app.command()
def check(library: LibraryArg,
          warnings: Annotated[bool, typer.Option(
              "--warnings/--no-warnings", help="List per-item warnings (legacy shapes...).")
          ] = True) -> None:
    """Parse every pattern and list problems; exit 1 if any file is unreadable, 2 when the
    folder is no library."""
    lib = load_library(library)
    for e in lib.errors:
        out.print(f"[red]error:[/] {shown(str(e))}", highlight=False, soft_wrap=True)
    for problem in lib.problems:
        out.print(f"[yellow]problem:[/] {shown(problem)}", highlight=False, soft_wrap=True)
    n_warn = 0
    for entry in lib.entries:
        for w in entry.pattern.warnings:
            n_warn += 1
            if warnings:
                out.print(f"[yellow]warning:[/] {shown(str(w))}", highlight=False,
                          soft_wrap=True)
        for rel in entry.pattern.relationships:
            if not rel.resolved:
                n_warn += 1
                if warnings:
                    out.print("[yellow]warning:[/] " + shown(
                        f"{entry.pattern.path}: human relationship {rel.type} -> "
                        f"'{rel.target}' names no pattern in the library"),
                              highlight=False, soft_wrap=True)
    out.print(f"{len(lib.entries)} patterns read, {len(lib.errors)} unreadable, "
              f"{len(lib.problems)} library problems, {n_warn} warnings"
              + (f", {_count(len(lib.no_front_matter), 'file')} without front matter skipped"
                 if lib.no_front_matter else ""))
    if lib.errors:
        raise Failed(f"{_count(len(lib.errors), 'file')} could not be read; each is listed "
                     "above")


@app.command("prune")
def prune_cmd(
    library: LibraryArg,
    dry_run: DryRunOpt = False,
    report_path: ReportOpt = None,
    min_confidence: Annotated[float | None, typer.Option(
        "--min-confidence", min=0.0, max=1.0, help="Links below this confidence are 'weak' "
        f"(default: gardener.toml's prune.min_confidence, else {MIN_CONFIDENCE}).",
        show_default=False)
    ] = None,
    max_links: Annotated[int | None, typer.Option(
        min=0, help="Keep at most this many links (default: gardener.toml's prune.max_links, "
        f"else {MAX_LINKS}).", show_default=False)] = None,
    max_entities: Annotated[int | None, typer.Option(
        min=0, help="Keep at most this many entities (default: prune.max_entities, else "
        f"{MAX_ENTITIES}).",
        show_default=False)] = None,
    max_communities: Annotated[int | None, typer.Option(
        min=0, help="Keep at most this many communities (default: prune.max_communities, "
        f"else {MAX_COMMUNITIES}).", show_default=False)] = None,
    today: Annotated[str | None, typer.Option(
        "--today", help="Date written to last_pruned (YYYY-MM-DD); default: today.")
    ] = None,
    strict: cli_flows.StrictOpt = False,
) -> None:
    """Prune stale, weak, dangling and duplicated garden items (no LLM).

    Exit status: 0 done (files that cannot be read are skipped and listed, unless --strict);
    1 a pattern failed; 2 usage or set-up, nothing done; 130 interrupted.
    """
    from gardener.pipeline.prune import PruneOptions, prune_library

    day = cli_flows.parse_today(today) or dt.date.today()
    config = load_config(library)
    own = config.prune_settings()  # the options beat gardener.toml
    settings = dataclasses.replace(
        own, min_confidence=own.min_confidence if min_confidence is None else min_confidence,
        max_links=own.max_links if max_links is None else max_links,
        max_entities=own.max_entities if max_entities is None else max_entities,
        max_communities=own.max_communities if max_communities is None else max_communities)
    scope = config.scope(library)
    cli_flows.library_folder(library, scope)  # a usage error before anything is taken
    options = PruneOptions.of(settings, dry_run=dry_run, today=day, scope=scope)
    with cli_flows.pass_progress(True, "pruning") as (start, advance):

        def each(outcome: Outcome) -> None:
            if dry_run and outcome.diff:
                write_out(outcome.diff)
            advance(outcome)

        done = prune_library(library, options, on_start=start, on_outcome=each)
    finish(list(done.outcomes), "prune", library, report_path, dry_run, done.meta,
           strict=strict)


def finish(outcomes: list[Outcome], command: str, library: Path, report_path: Path | None,
           dry_run: bool, meta: dict[str, Any], *, strict: bool = False) -> None:
    """Report, summary table, then `conclude`: failures listed, the exit status decided."""
    if report_path is not None:
        report.write(report_path, report.build(outcomes, command=command, library=library,
                                               meta={"dry_run": dry_run, **meta}))
    err.print(prune_table(outcomes, f"gardener {command}" + (" (dry run)" if dry_run else "")))
    if report_path is not None:
        err.print(f"report written to {plain(report_path)}", markup=False, highlight=False)
    conclude(outcomes, strict=strict)


@app.command()
def propose(
    file: Annotated[Path, typer.Argument(help="The pattern file to ask about.",
                                         exists=True, dir_okay=False, show_default=False)],
    library: Annotated[Path | None, typer.Option(
        "--library", help="Library the pattern belongs to (default: the file's folder); its "
        "other patterns are the link candidates.", file_okay=False, show_default=False)] = None,
    model: cli_flows.ModelOpt = None,
    mode: cli_flows.ModeOpt = None,
    fixtures: cli_flows.FixturesOpt = None,
    replay: cli_flows.ReplayOpt = False,
    record: cli_flows.RecordOpt = False,
    auto: cli_flows.AutoOpt = False,
    candidates: Annotated[int | None, typer.Option(
        "--candidates", min=0, help="Shortlist size: link targets the model may choose "
        "(default: the model's profile, 40; 8 for a small model).", show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the proposal as JSON.")] = False,
) -> None:
    """Ask the model for one pattern's proposal and print it, validated; writes nothing."""
    from gardener.pipeline.prefect import runtime

    runtime.configure(verbose=False)
    from gardener.pipeline.client import model_client
    from gardener.pipeline.options import GardenOptions
    from gardener.propose.profiles import profile_for
    from gardener.propose.prompts import default_prompts
    from gardener.propose.propose import fitted_profile
    from gardener.propose.propose import propose as ask
    from gardener.shortlist.candidates import CandidateIndex

    root = library or file.parent
    config = load_config(root)
    lib = load_library(root, config)
    target = file.resolve()
    entry = next((e for e in lib.entries if e.pattern.path.resolve() == target), None)
    if entry is None:
        problem = next((e for e in lib.errors if e.path.resolve() == target), None)
        if problem is not None:
            raise problem  # a ReadError: the file cannot be read (exit 1)
        raise UsageError(f"{file}: not a pattern of {root}")
    given = cli_flows.garden_defaults(config, root, model=model, mode=mode, concurrency=None)
    options = GardenOptions(model=given["model"], mode=given["mode"],
                            timeout_s=given["timeout_s"], context=given["context"],
                            fixtures=str(fixtures) if fixtures else None,
                            fixture_mode=cli_flows.parse_fixture_mode(fixtures, replay, record,
                                                                      auto))
    # A refused request (LLMError, exit 1) or no model to serve (LocalModelError, exit 2)
    # goes to the handler.
    with model_client(options, announce=cli_flows.announce) as llm:
        profile = profile_for(llm.settings.model)
        size = profile.candidates if candidates is None else candidates
        shortlist = CandidateIndex(lib.patterns).shortlist(entry.pattern, size)
        chosen = fitted_profile(entry.pattern, shortlist,
                                dataclasses.replace(profile, candidates=size),
                                llm.settings, prompts=default_prompts())
        reasks = None
        if chosen is not None:
            profile, shortlist = chosen.profile, shortlist[:chosen.profile.candidates]
            reasks = chosen.reasks
        result = ask(entry.pattern, shortlist, llm, limits=profile.limits, caps=profile.caps,
                     max_retries=reasks)
    data = {"pattern": entry.pattern.slug, "prompt_version": result.prompt_version,
            "model": llm.settings.model, "candidates": [c.slug for c in shortlist],
            "proposal": result.proposal.model_dump(mode="json"), "dropped": result.dropped,
            "salvaged": result.salvaged, "usage": result.usage.as_dict()}
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return
    p = result.proposal
    out.print(f"[bold]{shown(entry.pattern.slug)}[/]  model {shown(llm.settings.model)}, "
              f"prompt {result.prompt_version}, {len(shortlist)} candidates, "
              f"{_count(result.usage.requests, 'request')}, {result.usage.prompt_tokens}+"
              f"{result.usage.completion_tokens} tokens", highlight=False)
    links = Table("target", "type", "confidence", "reason", title="inferred links")
    for link in p.inferred_links:
        links.add_row(cell(link.target), cell(link.type), f"{link.confidence:.2f}",
                      cell(link.reason))
    entities = Table("id", "type", "label", "relevance", title="entities")
    for e in p.entities:
        entities.add_row(cell(e.id), cell(e.type), cell(e.label), f"{e.relevance:.2f}")
    communities = Table("id", "label", "confidence", title="communities")
    for c in p.communities:
        communities.add_row(cell(c.id), cell(c.label), f"{c.confidence:.2f}")
    out.print(links, entities, communities)
    if p.vitality_reasoning:
        out.print(f"[bold]vitality[/] ({shown(str(p.vitality_band))}): "
                  f"{shown(p.vitality_reasoning)}")
    for reason in result.dropped:
        err.print(f"[yellow]dropped:[/] {shown(reason)}", highlight=False, soft_wrap=True)


@app.command()
def state(library: LibraryArg,
          as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Show what each pattern was last gardened with (the incremental state)."""
    from gardener.library.state import load_state, summarize

    cli_flows.library_folder(library)
    rows = summarize(load_state(library))
    if as_json:
        out.print_json(json.dumps(rows))
        return
    if not rows:
        out.print(f"no gardening state in {plain(library)} yet", markup=False, highlight=False)
        return
    # A value shared by every row (usually model, prompt version, date) is said once above the
    # table, so the columns that differ get the width, even at 80 columns.
    keys = list(rows[0])
    shared = {k: rows[0][k] for k in keys if k != "slug" and all(r[k] == rows[0][k] for r in rows)}
    if shared:
        out.print("all " + _count(len(rows), "pattern") + ": "
                  + ", ".join(f"{k} {plain(v)}" for k, v in shared.items()), markup=False,
                  highlight=False)
    table = Table(show_header=True, header_style="bold")
    for key in keys:
        if key not in shared:
            table.add_column(str(key), no_wrap=key != "slug", overflow="fold")
    for row in rows:
        table.add_row(*(cell(row[k]) for k in keys if k not in shared))  # file text: no ESC
    out.print(table)


app.command("init")(cli_init.init)
app.command("run")(cli_flows.run)
app.command("serve")(cli_flows.serve)
app.command("review")(cli_review.review)
app.command("reject")(cli_review.reject)
app.command("promote")(cli_review.promote)
app.command("health")(cli_graph.health)
app.command("evaluate")(cli_evaluate.evaluate)
app.add_typer(cli_graph.communities_app, name="communities")


if __name__ == "__main__":  # pragma: no cover
    app()
