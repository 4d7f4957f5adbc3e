"""Long-running schedules: prune weekly, garden monthly, served from this process.

``prefect.serve`` runs the deployments' scheduled flow runs in subprocesses of this one, so
no work pool or worker is needed. Schedules need a server with Prefect's scheduler, which the
temporary server of one-off runs lacks: with no ``PREFECT_API_URL`` set, ``gardener serve``
starts ``prefect server start`` for as long as it serves (``runtime.api_server``). The same
flows can be deployed to a Prefect server with a work pool instead (docs/scaling.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prefect import serve
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

from gardener.pipeline.garden import garden
from gardener.pipeline.options import GardenOptions
from gardener.pipeline.prune import PruneOptions, prune


class ScheduleError(ValueError):
    """A cron expression or time zone that Prefect cannot schedule; the message says which."""


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
