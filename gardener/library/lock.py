"""One pass over a library at a time: a lock file that says who holds it.

Two passes over one library would interleave their writes, and each one's clean-up of
temporary files (`write.remove_leftovers`) would delete the other's. The lock is an advisory
``flock`` (released by the kernel when the holder dies, so a killed pass never leaves it
stuck) on a file of the user's state folder named by the library's real path, so taking it
writes nothing into the library; the file holds the holder's pid, command and start time,
which a second pass names in its refusal.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import socket
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path

from gardener.errors import GardenerError
from gardener.paths import state_folder


class LockedError(GardenerError):
    """Another pass holds the library; the message names it."""


def lock_path(library: Path, environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/graph-gardener/locks/<sha of the library's real path>.lock``; an
    `UnsafeFolderError` when that folder could be another user's (``gardener.paths``)."""
    folder = state_folder("locks", os.environ if environ is None else environ, shared=True)
    key = hashlib.sha256(str(library.resolve()).encode("utf-8", "surrogateescape")).hexdigest()
    return folder / f"{key[:32]}.lock"


def _holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = json.loads(os.read(fd, 4096) or b"{}")
    except (OSError, ValueError):
        return "another gardener pass"
    if not isinstance(data, dict):
        return "another gardener pass"
    return (f"pid {data.get('pid', '?')} on {data.get('host', '?')} "
            f"({data.get('command', 'a pass')}, since {data.get('since', '?')})")


@contextlib.contextmanager
def holding(library: Path, command: str) -> Iterator[None]:
    """Hold the library's lock for the body, or raise `LockedError` at once."""
    path = lock_path(library)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise LockedError(f"{path}: cannot open the lock file: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise LockedError(f"{path}: not a regular file; remove it")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockedError(f"{library} is being gardened by {_holder(fd)}; wait for it to "
                              "finish or stop it, then run again") from None
        me = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
              "library": str(library.resolve()),
              "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
