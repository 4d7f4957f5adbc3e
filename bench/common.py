"""What every benchmark script shares: where the corpus is, the machine it ran on, and
writing its own section of a results file without touching the sections others write.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"


def writable_copy(source: Path, dest: Path) -> Path:
    """A fresh copy of ``source`` at ``dest`` that the gardener may write (the shared corpus
    itself is read-only): files and folders get the owner's write bit."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest)
    for path in dest.rglob("*"):
        path.chmod(stat.S_IMODE(path.stat().st_mode) | stat.S_IWUSR)
    return dest


def between_markers(doc: str, block: str, begin: str, end: str) -> str:
    """``doc`` with ``block`` between the ``begin`` and ``end`` markers (appended with them
    when absent), the rest of the document kept."""
    if begin in doc and end in doc:
        head, rest = doc.split(begin, 1)
        _, tail = rest.split(end, 1)
        return f"{head}{begin}\n{block}\n{end}{tail}"
    return f"{doc.rstrip()}\n\n{begin}\n{block}\n{end}\n"


def gardener_command() -> list[str]:
    """The ``gardener`` console script beside this interpreter, as a user would run it."""
    script = Path(sys.executable).parent / "gardener"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "gardener"]


def machine() -> str:
    """One line naming the CPU, cores, Python and the load when the run started."""
    cpu = platform.processor() or platform.machine()
    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        found = re.search(r"^model name\s*:\s*(.+)$", info, re.MULTILINE)
        if found:
            cpu = found.group(1).strip()
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"load average {load:.1f} at the start")


def commit() -> str:
    """The commit the code under test is at (with ``+dirty`` for uncommitted changes)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "gardener"], cwd=ROOT,
                               text=True, capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def replace_section(path: Path, heading: str, body: str, title: str = "# Benchmarks") -> None:
    """Put ``heading`` + ``body`` into ``path``, replacing only that section if it is there.

    A section runs from its ``## `` heading to the next ``## `` heading (or the end), so
    scripts that each own one section of the same file never overwrite each other.
    """
    section = f"{heading}\n\n{body.strip()}\n"
    old = path.read_text(encoding="utf-8") if path.exists() else f"{title}\n"
    lines = old.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        new = old.rstrip("\n") + "\n\n" + section
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
                   len(lines))
        after = "".join(lines[end:])
        new = "".join(lines[:start]) + section + ("\n" + after if after else "")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new, encoding="utf-8")
