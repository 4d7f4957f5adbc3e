"""The Markdown report of ``gardener evaluate``: what was run, the totals beside the ranker,
each pattern, and the calibration fitted from it. Pure: an `Evaluation` in, text out."""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Mapping
from pathlib import Path

from gardener.endpoint.prices import dollars
from gardener.library.calibration import Calibration, Measured
from gardener.pipeline.evaluate import Evaluation
from gardener.pipeline.holdout import MIN_LINKS
from gardener.text import one_line


def pct(x: float) -> str:
    return f"{x:.0%}"


def _cell(text: object) -> str:
    """Text from files or models as one inert table cell."""
    return one_line(str(text)).replace("|", "\\|").replace("`", "'")


def markdown(ev: Evaluation, *, command: str | None = None,
             fitted: Calibration | None = None) -> str:
    """The Markdown report: what was run, the totals beside the ranker, each pattern, and
    the calibration ``fitted`` from it when there is one."""
    t, r, s = ev.model_totals, ev.ranker_totals, ev.shortlist_totals
    k, b = ev.picks_totals, ev.ranker_picks_totals
    h = ev.held
    per = max(1, len(ev.scored))
    used = ev.usage
    cost = ev.meta.get("cost") or {}
    usd = cost.get("usd") if isinstance(cost, Mapping) else None
    left = [row for row in ev.rows if not row.scored]
    lines = [
        f"# Link quality of {_cell(Path(ev.library).name)}",
        "",
        *([f"`{_cell(command)}`", ""] if command else []),
        f"Model `{_cell(ev.model)}`, {dt.date.today().isoformat()}; {len(h.chosen)} held-out "
        f"patterns of {h.eligible} with {MIN_LINKS} or more human relationships "
        + ("(chosen with --only)" if h.only else f"(seed {h.seed})")
        + f", {t.targets} hidden human targets; {len(ev.scored)} answered"
        + (f", {len(left)} not scored (failed or not asked)" if left else "") + ". "
        f"Tokens: {used.get('prompt_tokens', 0):,} prompt + "
        f"{used.get('completion_tokens', 0):,} completion"
        + (f", {dollars(usd)}" if isinstance(usd, int | float) else "") + ".",
        "",
        "| | links | links/pattern | precision | recall | type agreement on hits |",
        "|---|---:|---:|---:|---:|---:|",
        f"| model | {t.proposed} | {t.proposed / per:.1f} | {pct(t.precision)} ({t.hits}) "
        f"| {pct(t.recall)} | {pct(t.agreement)} ({t.agreeing}/{t.typed_hits}) |",
        f"| ranker alone, top m | {r.proposed} | {r.proposed / per:.1f} | "
        f"{pct(r.precision)} ({r.hits}) | {pct(r.recall)} | {pct(r.agreement)} "
        f"({r.agreeing}/{r.typed_hits}, all `{_cell(h.guess)}`) |",
        f"| model's picks before validation | {k.proposed} | {k.proposed / per:.1f} | "
        f"{pct(k.precision)} ({k.hits}) | {pct(k.recall)} | - |",
        f"| ranker alone, top m' (m' = picks) | {b.proposed} | {b.proposed / per:.1f} | "
        f"{pct(b.precision)} ({b.hits}) | {pct(b.recall)} | - |",
        f"| shortlist shown ({_median_shown(ev)} candidates, median) | {s.proposed} | "
        f"{s.proposed / per:.1f} | {pct(s.precision)} ({s.hits}) | {pct(s.recall)} | - |",
        "",
        "m = the links the model wrote for that pattern; its picks are the targets it chose "
        "before the grounding checks dropped the links it could not back with the pattern's "
        "own words. A model that does not beat the ranker alone adds nothing to the links; "
        "the shortlist row is the most any model choosing from it could find.",
        "",
        "| pattern | status | links | hits | ranker hits | types agreeing | picks (hits) "
        "| in shortlist / hidden | tokens |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in ev.rows:
        u = row.usage
        lines.append(
            f"| {_cell(row.slug)} | {row.status} | {row.model.proposed} | {row.model.hits} "
            f"| {row.ranker_score.hits} | {row.model.agreeing}/{row.model.typed_hits} "
            f"| {row.picks.proposed} ({row.picks.hits}) "
            f"| {row.in_shortlist} / {len(row.gold)} "
            f"| {u.get('prompt_tokens', 0):,} + {u.get('completion_tokens', 0):,} |")
    errors = [f"- {_cell(row.slug)}: {_cell(row.error)[:300]}" for row in ev.rows if row.error]
    if errors:
        lines += ["", "Failures:", "", *errors]
    used = ev.meta.get("calibration") or {}
    if used.get("line"):
        lines += ["", f"The pass's links: {_cell(used['line'])}"]
    if fitted is not None:
        lines += ["", "## Calibration fitted from this evaluation", "",
                  _cell(fitted.line()), "",
                  f"Features: {', '.join(fitted.features)}; {fitted.samples} candidates; "
                  f"expected calibration error {fitted.measured.ece:.3f}, Brier score "
                  f"{fitted.measured.brier:.3f}, log loss {fitted.measured.log_loss:.3f} on "
                  "patterns held out of the fit; held-out log loss by the features tried: "
                  + ", ".join(f"{k} {v:.4f}" for k, v in fitted.measured.tried.items())
                  + ".", "",
                  *reliability_table(fitted.measured)]
    return "\n".join(lines) + "\n"


def _median_shown(ev: Evaluation) -> int:
    sizes = [r.shown for r in ev.scored]
    return int(statistics.median(sizes)) if sizes else 0


def reliability_table(m: Measured) -> list[str]:
    """A calibration's reliability table as Markdown lines: per bin of predicted chance, the
    links in it, their mean predicted chance and the share people made."""
    return ["| predicted | links | mean predicted | share people made |", "|---|---:|---:|---:|",
            *(f"| {b.low:.1f}-{b.high:.1f} | {b.n} | "
              + (f"{b.predicted:.3f} | {b.observed:.3f} |" if b.n else "- | - |")
              for b in m.bins)]
