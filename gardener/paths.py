"""Where the gardener keeps its own files on this machine, outside any library."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path


def state_folder(name: str, environ: Mapping[str, str]) -> Path:
    """``$XDG_STATE_HOME/graph-gardener/NAME`` (``~/.local/state/...`` by default), made if
    needed; a folder of this user's under the temp folder when HOME is not writable."""
    state = environ.get("XDG_STATE_HOME", "").strip()
    base = Path(state) if state else Path.home() / ".local" / "state"
    folder = base / "graph-gardener" / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        folder = Path(tempfile.gettempdir()) / f"graph-gardener-{os.getuid()}" / name
        folder.mkdir(parents=True, exist_ok=True)
    return folder
