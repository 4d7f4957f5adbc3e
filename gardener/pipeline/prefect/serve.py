"""Long-running schedules: prune weekly, garden monthly, served from this process.

``prefect.serve`` runs the deployments' scheduled flow runs in subprocesses of this one, so
no work pool or worker is needed. Schedules need a server with Prefect's scheduler, which the
temporary server of one-off runs lacks: with no ``PREFECT_API_URL`` set, ``gardener serve``
starts ``prefect server start`` for as long as it serves (``runtime.api_server``). The same
flows can be deployed to a Prefect server with a work pool instead (docs/scaling.md).

Whoever holds the server's auth string can start a flow run with other parameters; the runs
of ``gardener serve`` are pinned (``pins``): the library, its reports folder (never through
a link out of the library), paths inside the library, the deployment's models only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prefect import serve
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

from gardener.errors import GardenerError
from gardener.pipeline.options import GardenOptions
from gardener.pipeline.prefect.flows import garden, prune
from gardener.pipeline.prune import PruneOptions
from gardener.pipeline.served import SERVED, served


class ScheduleError(GardenerError, ValueError):
    """A cron expression or time zone that Prefect cannot schedule; the message says which."""

    exit_code = 2


class ReportsFolderError(GardenerError):
    """The default reports folder would lead the served runs' reports out of the library."""


def reports_folder(library: Path, given: Path | None) -> Path:
    """Where served runs write their reports: ``given`` (``--report-dir``, the operator's
    own choice), else ``LIBRARY/.gardener/reports``, refused when a link (a committed
    ``.gardener`` or ``reports`` symlink) makes it lead outside the library."""
    if given is not None:
        return given
    folder = library / ".gardener" / "reports"
    for part in (library / ".gardener", folder):
        if part.is_symlink():
            raise ReportsFolderError(f"{part} is a symbolic link (to {part.readlink()}); the "
                                     "served runs' reports would be written through it; "
                                     "remove it, or choose a folder with --report-dir")
    if not folder.resolve().is_relative_to(library.resolve()):
        raise ReportsFolderError(f"{folder} leads to {folder.resolve()}, outside the library; "
                                 "choose a folder with --report-dir")
    return folder


def pins(library: Path, reports: Path, models: Iterable[str | None]) -> dict[str, str]:
    """The environment ``gardener serve`` sets for its flow runs: ``served``'s library and
    reports folder, and the models the deployment names (``options.refuse_unserved_options``
    refuses any other)."""
    env = served(library, reports)
    fixed = json.loads(env[SERVED])
    fixed["models"] = sorted({m for m in models if m})
    return {SERVED: json.dumps(fixed)}


def schedule(expression: str, timezone: str, what: str) -> Any:
    """A Prefect cron schedule, or a ScheduleError naming the option that was wrong."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"--timezone {timezone!r} is not an IANA time zone name "
                            "(e.g. Europe/Berlin, UTC)") from None
    try:
        return Cron(expression, timezone=timezone)
    except Exception as exc:  # prefect raises ValueError or pydantic's ValidationError
        raise ScheduleError(f"--{what}-cron {expression!r} (time zone {timezone!r}) is not a "
                            f"valid schedule: {exc}") from None


def _ready(made: Any) -> RunnerDeployment:
    """``to_deployment`` is sync-or-async by caller; from sync code it returns the value."""
    if not isinstance(made, RunnerDeployment):
        raise TypeError(f"expected a RunnerDeployment, got {type(made).__name__}")
    return made


def deployments(library: Path, *, prune_cron: str, garden_cron: str, timezone: str,
                reports: Path, garden_options: GardenOptions | None = None,
                prune_options: PruneOptions | None = None) -> list[RunnerDeployment]:
    """The pruning and gardening deployments of one library, each writing its latest report."""
    name = library.name or "library"
    pruning = (prune_options or PruneOptions()).model_copy(
        update={"report": str(reports / "prune-latest.json")})
    gardening = (garden_options or GardenOptions()).model_copy(
        update={"report": str(reports / "garden-latest.json")})
    return [
        _ready(prune.to_deployment(
            name=f"prune-{name}", schedules=[schedule(prune_cron, timezone, "prune")],
            parameters={"library": str(library), "options": pruning.model_dump(mode="json")},
            description=f"Prune the graph gardens of {library} (no model calls).",
            tags=["graph-gardener", "prune"])),
        _ready(garden.to_deployment(
            name=f"garden-{name}", schedules=[schedule(garden_cron, timezone, "garden")],
            parameters={"library": str(library), "options": gardening.model_dump(mode="json")},
            description=f"Garden the stale patterns of {library} with the model.",
            tags=["graph-gardener", "garden"])),
    ]


def serve_deployments(planned: list[RunnerDeployment]) -> None:
    """Serve until interrupted; schedules are paused on shutdown, as Prefect does by default."""
    serve(*planned)
