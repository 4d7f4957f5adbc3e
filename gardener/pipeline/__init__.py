"""Prefect flows around the gardener's core: the gardening pass, the pruning pass, schedules.

Importing this package prepares Prefect's environment first
(``gardener.pipeline.prefect.runtime``): Prefect reads it once, at import. What both
passes share lives here: how a pass ends (the JSON report and the Prefect markdown
artifact) and the registry through which a caller hands live objects (a model client,
progress callbacks) to a flow run without making them parameters that Prefect would have
to serialize.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gardener.errors import GardenerError
from gardener.model import Outcome, Status
from gardener.pipeline import report
from gardener.pipeline.prefect import runtime

runtime.ensure()  # before any module of this package imports prefect

DEFAULT_CONCURRENCY = 8
"""Patterns in flight at once: a polite default for a hosted API's rate limit."""

ARTIFACT_ROWS = 200
"""Pattern rows in the markdown artifact; the JSON report always has all of them."""


@dataclass
class Hooks:
    """What a caller in the same process attaches to a flow run; every part is optional."""

    llm: Any = None
    """A ``gardener.endpoint.client.LLM`` (or anything with its ``structured`` method), as is."""
    model: str | None = None
    """The model name ``llm`` asks for, recorded in the state."""
    on_start: Callable[[int], None] | None = None
    """Called once with the number of patterns the run will go through."""
    on_outcome: Callable[[Outcome], None] | None = None
    """Called from the flow's thread as each pattern finishes."""
    extra: dict[str, Any] = field(default_factory=dict)


_hooks: dict[str, Hooks] = {}
_lock = threading.Lock()


@contextmanager
def attached(hooks: Hooks) -> Iterator[str]:
    """Register ``hooks`` for a flow run; pass the key as the flow's ``session`` parameter."""
    key = uuid.uuid4().hex
    with _lock:
        _hooks[key] = hooks
    try:
        yield key
    finally:
        with _lock:
            _hooks.pop(key, None)


@contextmanager
def in_process_run() -> Iterator[None]:
    """Around a flow called in this process (not by a scheduler or a worker): Prefect's API
    is up first (``gardener.pipeline.prefect.runtime.connect``), so a server that cannot start, or a
    configured one that does not answer, stops the run with its reason before any pattern."""
    runtime.connect()
    yield


def hooks_for(session: str | None) -> Hooks:
    """The hooks attached under ``session``; empty hooks for a run started by a scheduler."""
    if session is None:
        return Hooks()
    with _lock:
        found = _hooks.get(session)
    if found is None:
        raise LookupError(f"no hooks attached under session {session!r}: a session key only "
                          "works in the process that attached it")
    return found


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
    reason = o.detail.get("reason")
    if o.status is Status.SKIPPED and reason:
        parts.append(str(reason))
    return "; ".join(parts) or o.status.value


def finish(outcomes: list[Outcome], *, command: str, library: Path,
           report_path: str | None, meta: Mapping[str, Any],
           existing: Mapping[str, int] | None = None) -> dict[str, Any]:
    """End a pass: the JSON report (written when a path is given) and the markdown artifact.
    ``existing``: the library's in-degrees before the pass, for its outliers."""
    from prefect.artifacts import create_markdown_artifact

    built = report.build(outcomes, command=command, library=library, meta=meta,
                         existing=existing)
    if report_path:
        report.write(Path(report_path), built)
    create_markdown_artifact(
        key=f"gardener-{command}",
        markdown=summary_markdown(f"gardener {command}: {library}", outcomes, meta),
        description=f"gardener {command} of {library}",
    )
    return built


SERVED = "GARDENER_SERVED"
"""Set by ``gardener serve`` for its flow runs: the one library, and the one reports folder,
that runs may touch."""


class UnservedError(GardenerError):
    """A served flow run asked for a library or report the deployment was not made for."""


def served(library: Path, reports: Path) -> dict[str, str]:
    """The environment entry ``gardener serve`` sets for its flow runs."""
    return {SERVED: json.dumps({"library": str(library.resolve()),
                                "reports": str(reports.resolve())})}


def refuse_unserved(library: str, report: str | None,
                    environ: Mapping[str, str] | None = None) -> None:
    """In a served run, refuse parameters that point elsewhere: whoever can start a run on
    the server could otherwise send any folder to the model, or overwrite any file."""
    raw = (os.environ if environ is None else environ).get(SERVED)
    if not raw:
        return
    fixed = json.loads(raw)
    if Path(library).resolve() != Path(fixed["library"]):
        raise UnservedError(f"this server gardens {fixed['library']} only; refusing a run "
                            f"for {library}")
    if report is not None and Path(report).resolve().parent != Path(fixed["reports"]):
        raise UnservedError(f"reports of this server go to {fixed['reports']}; refusing to "
                            f"write {report}")
