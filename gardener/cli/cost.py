"""``gardener run``'s cost options: ``--estimate`` (count, send nothing) and ``--budget-tokens``.

A module of its own so that ``gardener.cli.flows`` stays the shell of the flow: these are the
options' help, how ``gardener.toml`` fills them in, the estimate's printing, and what the
summary and the exit status say about tokens and money.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gardener.cli.errors import fail, plain, shown
from gardener.config import Config
from gardener.endpoint.prices import Price, Rate, dollars, price_for
from gardener.model import Outcome
from gardener.pipeline import report

if TYPE_CHECKING:
    from gardener.endpoint.settings import LLMSettings
    from gardener.pipeline.options import GardenOptions

out = Console()
err = Console(stderr=True)


EstimateOpt = Annotated[bool, typer.Option(
    "--estimate", help="Print the calls, tokens (counted offline) and estimated price the "
    "pass would spend, then stop: no model call, no file written.")]
BudgetOpt = Annotated[int | None, typer.Option(
    "--budget-tokens", min=1, help="Start no model call once the pass used this many tokens "
    "(prompt + completion); the patterns left are not asked, and the next run asks them "
    "(default: [model] budget_tokens of gardener.toml, else none).", show_default=False)]


MaxPatternsOpt = Annotated[int | None, typer.Option(
    "--max-patterns", min=1, help="Ask the model about at most this many stale patterns; the "
    "others are not asked, and the next run asks them (default: no limit).",
    show_default=False)]


def cost_options(config: Config, budget_tokens: int | None,
                 max_patterns: int | None = None) -> dict[str, Any]:
    """GardenOptions fields from the options and ``gardener.toml``: the option wins."""
    return {"budget_tokens": budget_tokens or config.model.budget_tokens,
            "max_patterns": max_patterns,
            "prices": {family: Rate(p.input_per_mtok, p.output_per_mtok)
                       for family, p in config.prices.items()}}


def prices_from(config: Config) -> str:
    return str(config.path) if config.path is not None else "gardener.toml"


def print_estimate(library: Path, options: GardenOptions, config: Config,
                   report_path: Path | None) -> None:
    """``gardener run --estimate``: the estimate on stdout, and as JSON with ``--report``."""
    from gardener.pipeline.estimate import estimate, lines

    try:
        with counting() as progress:
            found = estimate(library, options, prices=options.prices,
                             prices_from=prices_from(config), progress=progress)
    except ValueError as exc:  # --only naming no pattern
        raise fail(str(exc)) from None
    for line in lines(found):
        out.print(shown(line), highlight=False, soft_wrap=True)
    if report_path is not None:
        report.write(report_path, {"command": "estimate", "library": str(library),
                                   **found.as_dict()})
        err.print(f"estimate written to {plain(report_path)}", highlight=False, markup=False,
                  soft_wrap=True)


@contextmanager
def counting() -> Iterator[Callable[[int, int], None]]:
    """Progress of an estimate on stderr: a bar on a terminal, else (for 200 requests or
    more) a line every 10%."""
    if err.is_terminal:
        bar = Progress(TextColumn("[bold]counting requests"), BarColumn(),
                       MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=True)
        task = bar.add_task("counting", total=None)
        with bar:
            yield lambda done, total: bar.update(task, completed=done, total=total)
        return
    shown_at = -1

    def line(done: int, total: int) -> None:
        nonlocal shown_at
        tenth = done * 10 // max(total, 1)
        if total >= 200 and tenth != shown_at:  # a small library's estimate takes seconds
            shown_at = tenth
            err.print(f"counting requests: {done:,} of {total:,}", highlight=False,
                      markup=False)

    yield line


def run_price(settings: LLMSettings, options: GardenOptions, config: Config) -> Price | None:
    """The price of the pass's tokens: the config's, else the built-in table's."""
    return price_for(settings.model, options.prices, local=settings.loopback,
                     overrides_from=prices_from(config))


def not_asked(outcomes: list[Outcome]) -> int:
    """Patterns the token budget left for the next run (a deadline's are failed outcomes, and
    ``--max-patterns``' a planned batch: ``cli.flows.status_rows`` counts those)."""
    return sum(1 for o in outcomes if o.detail.not_asked == "budget")


def cost_rows(outcomes: list[Outcome], price: Price | None) -> list[tuple[str, object]]:
    """Summary rows: the patterns not asked (when any) and the estimated cost."""
    usage = report.totals(outcomes)["usage"]
    rows: list[tuple[str, object]] = []
    left = not_asked(outcomes)
    if left:
        rows.append(("not asked (budget)", left))
    if price is not None:
        rows.append(("estimated cost", dollars(price.cost(usage.get("prompt_tokens", 0),
                                                          usage.get("completion_tokens", 0)))))
    return rows
