"""``gardener evaluate``: how good the pass's links are on your own library.

A thin shell around ``gardener.pipeline.evaluate``: the options read as ``gardener run``
reads them (``gardener.toml``, the GARDENER_* variables, ``--fixtures``, ``--budget-tokens``),
the estimate printed before anything is asked, the pass run on held-out patterns in a
temporary copy (the library is only read), then a table on screen and, when asked, a JSON
and a Markdown report. ``gardener.cli.main`` registers it.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from gardener.cli import cost
from gardener.cli import flows as cli_flows
from gardener.cli.errors import cell, conclude, fail, plain, shown
from gardener.config import load_config
from gardener.library.calibration import Calibration, save_calibration
from gardener.library.write import write_atomic
from gardener.pipeline.holdout import DEFAULT_N, DEFAULT_SEED

if TYPE_CHECKING:
    from gardener.pipeline.evaluate import Evaluation

out = Console()
err = Console(stderr=True)

ReportOpt = Annotated[Path | None, typer.Option(
    "--report", help="Write the evaluation as JSON here (every held-out pattern: its hidden "
    "human targets, the links written, the ranker's, scores, tokens).", dir_okay=False,
    show_default=False)]
BudgetOpt = Annotated[int | None, typer.Option(
    "--budget-tokens", min=1, help="Start no model call once the evaluation used this many "
    "tokens (prompt + completion); the held-out patterns left are listed, not scored, and the "
    "command exits 3 (default: [model] budget_tokens of gardener.toml, else none).",
    show_default=False)]
MarkdownOpt = Annotated[Path | None, typer.Option(
    "--markdown", help="Write the evaluation as a Markdown report here.", dir_okay=False,
    show_default=False)]


def _say(text: str) -> None:
    err.print(plain(text), markup=False, highlight=False, soft_wrap=True)


def _command(library: Path, n: int, seed: int, only: list[str], budget: int | None,
             model: str | None) -> str:
    parts = ["gardener evaluate", str(library)]
    parts += [f"--only {s}" for s in only] if only else [f"--n {n}", f"--seed {seed}"]
    parts += [f"--budget-tokens {budget}"] if budget else []
    parts += [f"--model {model}"] if model else []
    return " ".join(parts)


def totals_table(ev: Evaluation) -> Table:
    """The totals beside the ranker alone and the shortlist shown."""
    from gardener.pipeline.evaluation_report import pct

    t, r, s = ev.model_totals, ev.ranker_totals, ev.shortlist_totals
    table = Table("", "links", "precision", "recall", "types agree", title_justify="left",
                  title=f"gardener evaluate: {len(ev.scored)} held-out patterns, "
                        f"{t.targets} hidden human links")
    table.add_row(cell(f"model {ev.model}"), str(t.proposed), f"{pct(t.precision)} ({t.hits})",
                  pct(t.recall), f"{t.agreeing}/{t.typed_hits}")
    table.add_row("ranker alone, top m", str(r.proposed), f"{pct(r.precision)} ({r.hits})",
                  pct(r.recall), f"{r.agreeing}/{r.typed_hits}")
    k, b = ev.picks_totals, ev.ranker_picks_totals
    table.add_row("picks before validation", str(k.proposed), f"{pct(k.precision)} ({k.hits})",
                  pct(k.recall), "-")
    table.add_row("ranker alone, top m'", str(b.proposed), f"{pct(b.precision)} ({b.hits})",
                  pct(b.recall), "-")
    table.add_row("shortlist shown", str(s.proposed), f"{pct(s.precision)} ({s.hits})",
                  pct(s.recall), "-")
    return table


def patterns_table(ev: Evaluation) -> Table:
    """Each held-out pattern: links written, hits, the ranker's hits at the same m."""
    table = Table("pattern", "status", "links", "hits", "ranker", "shown/hidden",
                  title="per pattern (ranker: hits of its top m, m = links written)",
                  title_justify="left")
    for row in ev.rows:
        table.add_row(cell(row.slug), row.status, str(row.model.proposed), str(row.model.hits),
                      str(row.ranker_score.hits), f"{row.in_shortlist}/{len(row.gold)}")
    return table


def evaluate(
    library: cli_flows.LibraryArg,
    n: Annotated[int, typer.Option(
        "--n", min=1, help="Held-out patterns, drawn with --seed among those with 3 or more "
        "human relationships that resolve in the library.")] = DEFAULT_N,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the draw.")] = DEFAULT_SEED,
    only: Annotated[list[str] | None, typer.Option(
        "--only", help="Hold out this slug instead of drawing (repeatable).",
        show_default=False)] = None,
    report_path: ReportOpt = None,
    markdown_path: MarkdownOpt = None,
    budget_tokens: BudgetOpt = None,
    model: cli_flows.ModelOpt = None,
    mode: cli_flows.ModeOpt = None,
    concurrency: cli_flows.ConcurrencyOpt = None,
    fixtures: cli_flows.FixturesOpt = None,
    replay: cli_flows.ReplayOpt = False,
    record: cli_flows.RecordOpt = False,
    auto: cli_flows.AutoOpt = False,
    estimate: Annotated[bool, typer.Option(
        "--estimate", help="Print the calls, tokens (counted offline) and estimated price "
        "the evaluation would spend, then stop: no model call.")] = False,
    calibrate: Annotated[bool, typer.Option(
        "--calibrate", help="Fit the chance that a link is one people made from this "
        "evaluation (the ranker's signals and the model's picks, measured on patterns held "
        "out of the fit) and write it to LIBRARY/.gardener/calibration.json, which every "
        "later pass with this model uses for its links' confidence.")] = False,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Show the model's refused answers and the items dropped "
        "from them as they come (the JSON report keeps them either way).")] = False,
) -> None:
    """Measure the pass's links against your library's own human relationships.

    Patterns with three or more human relationships lose them (and their garden) in a
    temporary copy of the library; the same pass as `gardener run` gardens them there, and
    the links it writes are scored: precision, recall and type agreement, beside the
    candidate ranker alone at the same number of links. The library is only read.

    Exit status: 0 done; 1 a held-out pattern failed (the others are still scored);
    2 usage or set-up; 3 --budget-tokens left patterns unasked; 130 interrupted.
    """
    # The pass's modules (the model client's among them) only for this command.
    from gardener.pipeline.client import model_client
    from gardener.pipeline.estimate import estimate as count
    from gardener.pipeline.estimate import lines
    from gardener.pipeline.evaluate import garden_heldout, hidden_copy, hold_out
    from gardener.pipeline.evaluation_report import markdown
    from gardener.pipeline.options import GardenOptions

    config = load_config(library)
    defaults = cli_flows.garden_defaults(config, library, model=model, mode=mode,
                                         concurrency=concurrency)
    cli_flows.library_folder(library, defaults["scope"])
    fixture_mode = cli_flows.parse_fixture_mode(fixtures, replay, record, auto)
    options = GardenOptions(**defaults, fixtures=str(fixtures) if fixtures else None,
                            fixture_mode=fixture_mode,
                            **cost.cost_options(config, budget_tokens))
    held = hold_out(library, options.scope, n=n, seed=seed, only=only or ())
    how = "named with --only" if held.only else f"drawn with seed {seed}"
    _say(f"holding out {len(held.chosen)} of the {held.eligible} patterns of {library} with "
         f"3 or more human relationships ({how}), in a temporary copy; the library is not "
         "written")
    asked = options.model_copy(update={"only": held.chosen})
    with tempfile.TemporaryDirectory(prefix="gardener-evaluate-") as tmp:
        copy = Path(tmp) / "library"
        copied = hidden_copy(held, copy, options.scope)  # every held-out pattern hidden
        try:
            with cost.counting() as progress:
                found = count(copied.root, asked, prices=options.prices,
                              prices_from=cost.prices_from(config), progress=progress)
        except ValueError as exc:
            raise fail(str(exc)) from None
        for line in lines(found):
            out.print(shown(line), highlight=False, soft_wrap=True)
        if estimate:
            if report_path is not None:
                _write(report_path, json.dumps(
                    {"command": "evaluate --estimate", "library": str(library),
                     "chosen": list(held.chosen), **found.as_dict()}, indent=2,
                    ensure_ascii=False) + "\n", "estimate")
            return
        with model_client(options, announce=cli_flows.announce) as llm, \
                cli_flows.quiet_refusals(verbose), \
                cli_flows.pass_progress(True, "evaluating") as (start, advance):
            ev = garden_heldout(copied, held, asked, llm, llm.settings.model,
                                on_start=start, on_outcome=advance,
                                estimate=found.as_dict())
    out.print(totals_table(ev))
    out.print(patterns_table(ev))
    used = ev.meta.get("calibration") or {}
    if used.get("line"):
        _say(f"the pass's links: {used['line']}")
    fitted = _calibrate(library, ev) if calibrate else None
    if report_path is not None:
        result = ev.as_dict()
        if fitted is not None:
            result["fitted"] = fitted.model_dump(mode="json")
        _write(report_path, json.dumps(result, indent=2, ensure_ascii=False) + "\n",
               "JSON report")
    if markdown_path is not None:
        _write(markdown_path, markdown(ev, command=_command(library, n, seed, only or [],
                                                             budget_tokens, model),
                                       fitted=fitted),
               "Markdown report")
    conclude(ev.outcomes)


def _calibrate(library: Path, ev: Evaluation) -> Calibration:
    """Fit the library's calibration from ``ev`` and write it; say what it measured."""
    from gardener.pipeline.calibrate import fingerprint, fit

    fitted = fit(ev.samples, library=library.resolve().name,
                 fingerprint=fingerprint(ev.held.golds), model=ev.model,
                 prompt_version=ev.meta.get("prompt_version"))
    path = save_calibration(library, fitted)
    m = fitted.measured
    weighed = ("the ranker's signals and the model's picks" if fitted.uses_model else
               "the ranker's signals alone (the model's picks lowered no held-out loss)"
               if "ranker+model" in fitted.measured.tried else
               "the ranker's signals alone (the model proposed no link that passed the checks)")
    losses = ", ".join(f"{k} {v:.4f}" for k, v in m.tried.items())
    _say(f"calibration written to {path}: fitted on {weighed}, {fitted.samples} candidates "
         f"of {fitted.patterns} patterns; on patterns held out of the fit: expected "
         f"calibration error {m.ece:.3f}, Brier score {m.brier:.3f}, log loss by the "
         f"features tried: {losses}; {fitted.line()}")
    return fitted


def _write(path: Path, text: str, what: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)
    _say(f"{what} written to {path}")
