"""The environment of a newcomer's shell, for tests that run the gardener as a command."""

from __future__ import annotations

import os
from pathlib import Path

from gardener.endpoint.settings import ENDPOINT_VARIABLES
from gardener.pipeline.prefect import runtime

ROOT = Path(__file__).resolve().parents[1]


def newcomer_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This process's environment without Prefect settings, an endpoint or what the gardener
    set for itself; Prefect's home under ``tmp_path``; ``extra`` on top."""
    env = {k: v for k, v in os.environ.items()
           if k not in ENDPOINT_VARIABLES and k != runtime.OURS and not k.startswith("PREFECT_")}
    env.update({"PREFECT_HOME": str(tmp_path / "prefect-home"), "PYTHONPATH": str(ROOT),
                "COLUMNS": "200", **extra})
    return env
