"""The pass as a Prefect markdown artifact: totals, then every pattern that changed or failed.

The JSON report (``gardener.pipeline.report``) is the complete record; the artifact is what the
Prefect UI shows of a flow run, so it is bounded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from prefect.artifacts import create_markdown_artifact

from gardener.model import Outcome, Status
from gardener.pipeline import report

ARTIFACT_ROWS = 200
"""Pattern rows in the markdown artifact; the JSON report always has all of them."""


def _cell(text: str, limit: int = 160) -> str:
    """Markdown table cell: one line, pipes escaped, bounded."""
    flat = " ".join(text.split()).replace("|", "\\|")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def summary_markdown(title: str, outcomes: Iterable[Outcome],
                     meta: Mapping[str, Any]) -> str:
    """The pass as markdown: totals, then every pattern that changed or failed."""
    ordered = sorted(outcomes, key=lambda o: o.path)
    totals = report.totals(ordered)
    lines = [f"# {title}", ""]
    lines += [f"- **{k}**: {_cell(str(v))}" for k, v in meta.items()]
    lines += ["", "| " + " | ".join(s.value for s in Status) + " | removed | added links "
              "| requests | prompt tokens | completion tokens |",
              "|" + "---:|" * (len(Status) + 5)]
    usage = totals["usage"]
    lines.append("| " + " | ".join(str(totals[s.value]) for s in Status)
                 + f" | {totals['removals']} | {totals['added_links']} | {totals['requests']}"
                 f" | {usage.get('prompt_tokens', 0)} | {usage.get('completion_tokens', 0)} |")
    shown = [o for o in ordered if o.status in (Status.CHANGED, Status.FAILED, Status.CONFLICT)]
    if shown:
        lines += ["", "| pattern | status | what happened |", "|---|---|---|"]
        for o in shown[:ARTIFACT_ROWS]:
            lines.append(f"| {_cell(o.slug or o.path, 80)} | {o.status.value} "
                         f"| {_cell(describe(o))} |")
        if len(shown) > ARTIFACT_ROWS:
            lines.append(f"| … | | {len(shown) - ARTIFACT_ROWS} more in the JSON report |")
    return "\n".join(lines) + "\n"


def describe(o: Outcome) -> str:
    """One line on what happened to a pattern, for tables."""
    if o.status in (Status.FAILED, Status.CONFLICT):
        return o.error or o.status.value
    parts = []
    if o.added:
        parts.append(f"+{len(o.added)} links ({', '.join(o.added[:5])}"
                     + (", …)" if len(o.added) > 5 else ")"))
    if o.removals:
        parts.append(f"-{len(o.removals)} removed")
    if o.renames:
        parts.append(f"{len(o.renames)} renamed")
    if o.conflicts:
        parts.append(f"{len(o.conflicts)} conflicts")
    reason = o.detail.reason
    if o.status is Status.SKIPPED and reason:
        parts.append(str(reason))
    return "; ".join(parts) or o.status.value


def publish(outcomes: list[Outcome], *, command: str, library: Path,
            meta: Mapping[str, Any]) -> None:
    """The flow run's markdown artifact, keyed by command."""
    create_markdown_artifact(
        key=f"gardener-{command}",
        markdown=summary_markdown(f"gardener {command}: {library}", outcomes, meta),
        description=f"gardener {command} of {library}",
    )
