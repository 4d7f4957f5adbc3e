"""What a run started on ``gardener serve``'s server may touch: its one library and reports folder.

``gardener serve`` sets ``GARDENER_SERVED`` for its flow runs; whoever can start a run there
could otherwise send any folder to the model or overwrite any file, so a served run's
parameters are checked against it (``refuse_unserved`` here, the options' own paths and model
in ``gardener.pipeline.options``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from gardener.errors import GardenerError

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
