"""The servers the gardener starts as child processes: the bundled model's
(``gardener.local.server``) and Prefect's (``gardener.pipeline.prefect.runtime``).

One supervisor for both: a free port on this machine, a session of its own (Ctrl-C in a
terminal reaches the gardener, which stops the server in order; stopping the session's group
ends whatever the server started), output to a log file whose tail explains a failure, and a
stop that asks politely first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from gardener.errors import GardenerError


class NoFreePort(GardenerError):
    """No port on this machine could be had for a server."""


def free_port(host: str = "127.0.0.1", preferred: int = 0) -> int:
    """``preferred`` when it is free now, else a port the OS says is free (a rare race for it
    is caught by the server's own key or auth string)."""
    for port in (preferred, 0) if preferred else (0,):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            found: int = probe.getsockname()[1]
            return found
    raise NoFreePort(f"no free port on {host} for a server")


def start(command: Sequence[str], log_path: Path,
          env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``command`` in a session of its own, its output appended to ``log_path``."""
    with log_path.open("ab") as log:
        return subprocess.Popen(list(command), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                env=dict(env) if env is not None else None)


def signal_group(process: subprocess.Popen[bytes], number: int) -> None:
    """Signal the server's process group (it leads its own session); gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, number)


def stop(process: subprocess.Popen[bytes], grace_s: float = 5.0, *, group: bool = False) -> None:
    """Terminate a server, killing it if it has not ended after ``grace_s``; with ``group``,
    its whole process group (whatever it started) goes too."""
    if process.poll() is None:
        if group:
            signal_group(process, signal.SIGTERM)
        else:
            process.terminate()
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            if group:
                signal_group(process, signal.SIGKILL)
            else:
                process.kill()
            process.wait()
    if group:
        signal_group(process, signal.SIGKILL)


def tail(path: Path, lines: int = 20) -> str:
    """The last lines a server wrote, for an error that shows why it did not come up."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        return f"(its log {path} could not be read: {error})"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"
