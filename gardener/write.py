"""Put a verified text on disk so that a crash leaves either the old file or the new, never half.

The text is encoded exactly (no newline translation, so CRLF files stay CRLF), written to a
temporary file beside the target, flushed to disk and renamed over it; the file keeps its
mode, and a failure leaves no temporary file behind.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path


class WriteError(OSError):
    """A file that could not be replaced; the old file is still there, untouched."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: cannot write: {problem}")
        self.path = path

    def __str__(self) -> str:
        return str(self.args[0])


def _mode_for(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _sync_dir(folder: Path) -> None:
    """Make the rename itself durable where the platform allows opening a folder."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8, bytes exactly as given), atomically."""
    target = path.resolve() if path.is_symlink() else path
    data = text.encode("utf-8")
    mode = _mode_for(target)
    if target.exists() and not mode & stat.S_IWUSR:
        # A rename would replace it anyway; a read-only file says "do not touch".
        raise WriteError(path, "the file is read-only (mode "
                         f"{mode:o}); make it writable to let the gardener update it")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                        dir=target.parent)
    except OSError as exc:
        raise WriteError(path, exc.strerror or str(exc)) from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise WriteError(path, exc.strerror or str(exc)) from None
        raise
    _sync_dir(target.parent)
