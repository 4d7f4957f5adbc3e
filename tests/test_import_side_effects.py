"""Importing the package, or asking ``gardener --version``, touches nothing: no file written,
no environment variable set, Prefect not even imported (only the commands that run a flow
prepare Prefect's settings, ``gardener.pipeline.prefect.runtime``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROBE = """
import json, os, sys
before = dict(os.environ)
import gardener.cli.main, gardener.pipeline, gardener.pipeline.garden
changed = sorted(k for k in set(os.environ) | set(before) if os.environ.get(k) != before.get(k))
print(json.dumps({"changed": changed, "prefect": "prefect" in sys.modules}))
"""


def _clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_", "GARDENER_")) and k not in ("XDG_STATE_HOME",)}
    env.update({"HOME": str(home), "XDG_STATE_HOME": str(home / "state")})
    return env


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_importing_the_command_line_sets_nothing_and_loads_no_prefect(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    done = subprocess.run([sys.executable, "-c", PROBE], env=_clean_env(home), cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=True)
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"changed": [], "prefect": False}
    assert _files(home) == []


def test_gardener_version_writes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    done = subprocess.run([sys.executable, "-m", "gardener", "--version"], env=_clean_env(home),
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.startswith("gardener ")
    assert _files(home) == [] and _files(tmp_path) == ["home"]
