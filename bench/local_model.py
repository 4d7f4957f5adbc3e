"""Seconds per pattern of a gardening pass over patterns/ on the bundled model (no endpoint).

Runs ``gardener run`` on a copy of the sample library in a fresh process with no endpoint
configured, so it starts SmolLM2-135M-Instruct itself, as a newcomer's demo does, and
writes its section of docs/local-model.md from the run's JSON report. ``--gardener`` times
another installation (an older checkout's venv, say) the same way.

    python bench/local_model.py [--gardener PATH] [--heading TEXT] [--out docs/local-model.md]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, commit, gardener_command, machine, replace_section

DOC = ROOT / "docs" / "local-model.md"
HEADING = "## Measured: a pass over patterns/ on the bundled model"
ENDPOINT_VARIABLES = ("OPENAI_BASE_URL", "OPENAI_API_KEY", "GARDENER_MODEL", "GARDENER_MODE")


def run_pass(command: list[str], folder: Path) -> tuple[dict[str, Any], float, str]:
    """Garden a copy of patterns/ in ``folder``: the report, the wall time, the stderr."""
    library = folder / "library"
    shutil.copytree(ROOT / "patterns", library)
    report = folder / "report.json"
    env = {k: v for k, v in os.environ.items() if k not in ENDPOINT_VARIABLES}
    env["PREFECT_HOME"] = str(folder / "prefect-home")
    started = time.monotonic()
    done = subprocess.run([*command, "run", str(library), "--report", str(report)], env=env,
                          capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    if not report.is_file():
        raise SystemExit(f"the run wrote no report (exit {done.returncode}):\n{done.stderr}")
    data: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    return data, wall, done.stderr


def section(data: dict[str, Any], wall: float, command: list[str]) -> str:
    totals = data["totals"]
    usage = totals["usage"]
    rows = data["patterns"]
    n = totals["patterns"]
    salvaged = sum(bool((r.get("detail") or {}).get("salvaged")) for r in rows)
    shown = " ".join(command)
    return "\n".join([
        f"Machine: {machine()}; commit {commit()}; `{shown} run COPY_OF_patterns --report R`",
        "(`python bench/local_model.py`).",
        "",
        "| patterns | pass (report) | wall, start-up included | per pattern | requests "
        "| prompt tokens | completion tokens | salvaged | failed |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {n} | {data.get('seconds')} s | {wall:.1f} s | {float(data['seconds']) / n:.1f} s "
        f"| {totals['requests']} | {usage.get('prompt_tokens', 0):,} "
        f"| {usage.get('completion_tokens', 0):,} | {salvaged} | {totals['failed']} |",
    ])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gardener", help="the gardener executable to time "
                        "(default: the one beside this Python)")
    parser.add_argument("--heading", default=HEADING, help="the doc section to write")
    parser.add_argument("--out", type=Path, default=DOC)
    args = parser.parse_args(argv)
    command = [args.gardener] if args.gardener else gardener_command()
    with tempfile.TemporaryDirectory(prefix="bench-local-model-") as tmp:
        data, wall, stderr = run_pass(command, Path(tmp))
    body = section(data, wall, command)
    print(stderr.strip().splitlines()[0] if stderr.strip() else "")
    print(body)
    replace_section(args.out, args.heading, body, title="# The bundled local model")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
