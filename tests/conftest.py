"""What every test process shares, set before any test module imports the gardener.

Under pytest-xdist (``scripts/test.sh`` runs ``-n 2 --dist loadfile``) each worker is a
process of its own that runs whole test files (a module's fixtures are made once), and each
starts its own Prefect temporary server for the flows it runs in-process. Two servers on one
SQLite database lock each other out, so every worker gets its own ``PREFECT_HOME`` beside the
configured one (or beside a folder in the temporary folder): ``<home>-gw0``, ``<home>-gw1``.
The commands the tests start inherit it. A worker also starts with variables the process
running pytest may not have had: ``COLUMNS=80`` and ``LINES=24`` (rich then wraps the command
line's output at 80 columns) and the checkout prepended to ``PYTHONPATH`` (which every
command a test starts would inherit): each worker gets the controller's values back. A run
without xdist keeps the environment as it is.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_worker = os.environ.get("PYTEST_XDIST_WORKER")
if _worker:
    _base = (os.environ.get("PREFECT_HOME")
             or str(Path(tempfile.gettempdir()) / "gardener-tests-prefect-home"))
    os.environ["PREFECT_HOME"] = f"{_base.rstrip('/')}-{_worker}"


RESTORED = ("COLUMNS", "LINES", "PYTHONPATH")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist, in the controller, for each worker: this process's values."""
    node.workerinput["gardener_environ"] = {name: os.environ.get(name) for name in RESTORED}


def pytest_configure(config: pytest.Config) -> None:
    """In a worker: the controller's values, before any test module is imported (the
    worker's own ``sys.path`` is set already)."""
    given = getattr(config, "workerinput", {}).get("gardener_environ")
    for name, value in (given or {}).items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def prefect_port_4200(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One test at a time, across xdist workers, may start ``gardener serve``'s Prefect
    server: it takes port 4200 when that is free, and two starting at once would both see it
    free. A lock file in the folder the workers' temporary folders share."""
    shared = tmp_path_factory.getbasetemp()
    if _worker:
        shared = shared.parent
    with (shared / "prefect-port-4200.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
