"""Servers this process starts end when it ends, even when it is killed with SIGKILL.

Prefect's temporary API server (started by Prefect's client) and ``gardener serve``'s
``prefect server start`` are child processes stopped by an exit handler; SIGKILL runs none,
and the server would keep running, holding a port and polling its database, until someone
stops it by hand. A watchdog process (a few lines of Python, in its own session so a signal
to our process group does not reach it) notices that its parent is gone and terminates the
server. A normal exit stops the watchdog
first, and the exit handler stops the server as before.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
from pathlib import Path

WATCHDOG = """
import os, signal, sys, time
parent, server = int(sys.argv[1]), int(sys.argv[2])

def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

while os.getppid() == parent and alive(server):
    time.sleep(0.5)
if os.getppid() != parent and alive(server):
    os.kill(server, signal.SIGTERM)
"""
"""Polls every 0.5 s whether its parent (our process) is gone; a parent that died leaves it
to another one, so ``getppid`` changes, whatever state (zombie or not) the dead one is in."""

_watched: dict[int, subprocess.Popen[bytes]] = {}


def end_with_this_process(pid: int) -> None:
    """Have the server ``pid`` (a child of this process) terminated once this process dies."""
    if pid in _watched:
        return
    watchdog = subprocess.Popen([sys.executable, "-c", WATCHDOG, str(os.getpid()), str(pid)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    _watched[pid] = watchdog
    atexit.register(_stop, watchdog)


def _stop(watchdog: subprocess.Popen[bytes]) -> None:
    """At a normal exit the server is stopped by whoever started it; the watchdog goes."""
    if watchdog.poll() is None:
        watchdog.kill()
        watchdog.wait()


def children_running(marker: str) -> list[int]:
    """This process's children whose command line holds ``marker``, from Linux's ``/proc``
    (none elsewhere): how a server that Prefect started for us is found."""
    me = str(os.getpid())
    found: list[int] = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text(encoding="ascii", errors="replace")
            if text[text.rindex(")") + 2:].split()[1] != me:
                continue
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, ValueError, IndexError):
            continue
        if marker.encode() in command:
            found.append(int(stat.parent.name))
    return found
