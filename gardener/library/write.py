"""Put a verified text on disk so that a crash leaves either the old file or the new, never half.

The text is encoded exactly (no newline translation, so CRLF files stay CRLF), written to a
temporary file beside the target, flushed to disk and renamed over it; the file keeps its
mode, and a failure leaves no temporary file behind. A process killed between the two steps
(SIGKILL, power loss) can leave a temporary file; `remove_leftovers` clears them at the start
of the next pass. Given the text the file was read with, the write is refused when a person
changed the file in the meantime (`ConflictError`), so their edit is never overwritten.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from pathlib import Path

from gardener.errors import GardenerError

TEMP_SUFFIX = ".tmp"
_LEFTOVER = re.compile(r"^\..+\.[a-z0-9_]{8}" + re.escape(TEMP_SUFFIX) + "$")
"""``.NAME.XXXXXXXX.tmp``: what ``tempfile.mkstemp(prefix=".NAME.", suffix=".tmp")`` makes,
here and in ``gardener.library.state``."""
_NOT_SEARCHED = frozenset({".git", ".venv", "node_modules", "__pycache__"})


class WriteError(GardenerError, OSError):
    """A file that could not be replaced; the old file is still there, untouched."""

    exit_code = 1  # a file could not be processed

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: cannot write: {problem}")
        self.path = path

    def __str__(self) -> str:
        return str(self.args[0])


class ConflictError(WriteError):
    """The file changed on disk after it was read: someone edited it while the pass ran."""

    def __init__(self, path: Path) -> None:
        OSError.__init__(self, f"{path}: changed on disk since the pass read it; not written, "
                         "so the edit stays (the next pass gardens the new text)")
        self.path = path


def temp_name(target: Path) -> tuple[str, str]:
    """Prefix and suffix of a temporary file for ``target`` (see ``remove_leftovers``)."""
    return f".{target.name}.", TEMP_SUFFIX


def leftovers(root: Path) -> list[Path]:
    """Temporary files an interrupted write left under ``root`` (hidden tool folders too)."""
    if not root.is_dir():
        return []
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _NOT_SEARCHED)
        found.extend(Path(folder) / name for name in sorted(files) if _LEFTOVER.match(name))
    return found


def remove_leftovers(root: Path) -> list[Path]:
    """Delete what `leftovers` finds; the paths removed. Never touches another file name."""
    removed: list[Path] = []
    for path in leftovers(root):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


def default_mode() -> int:
    """The mode a new file gets from this process's umask: readable to share and commit."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _status(path: Path, *, follow: bool, shown: Path) -> os.stat_result | None:
    """``path``'s status (its link's own when not ``follow``), None when nothing is there."""
    try:
        return os.stat(path, follow_symlinks=follow)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise WriteError(shown, exc.strerror or str(exc)) from None


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


def _unchanged(target: Path, expected: bytes) -> bool:
    """Whether ``target`` holds exactly ``expected``; reads at most one byte more than that."""
    try:
        fd = os.open(target, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        got = b""
        while len(got) <= len(expected):
            chunk = os.read(fd, len(expected) + 1 - len(got))
            if not chunk:
                break
            got += chunk
    finally:
        os.close(fd)
    return got == expected


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _refuse_linked_folders(within: Path, path: Path) -> None:
    """Refuse when a folder between ``within`` and ``path`` is a link (``.gardener -> /etc``)."""
    try:
        below = path.parent.relative_to(within)
    except ValueError:
        raise WriteError(path, f"it is outside {within}; refusing to write it") from None
    folder = within
    for part in below.parts:
        folder = folder / part
        found = _status(folder, follow=False, shown=path)
        if found is not None and stat.S_ISLNK(found.st_mode):
            raise WriteError(path, f"{folder} is a symbolic link; the gardener never writes "
                             "through links")


def write_atomic(path: Path, text: str | bytes, *, expected: str | None = None,
                 within: Path | None = None) -> None:
    """Replace ``path`` with ``text`` (UTF-8, bytes exactly as given), atomically.

    ``bytes`` are written as they are: the backup of a file that is not UTF-8 keeps its bytes.

    The one writer of every file the tool writes. A symlinked ``path`` is refused, and with
    ``within`` (the library) so is a symlinked folder between it and ``path``; the temporary
    file is made with a unique name (``O_EXCL``, which never follows a link) beside the target.

    With ``expected`` (the text the file was read with), raise `ConflictError` instead when
    the file no longer holds exactly that. The check runs after the new text is on disk,
    just before the rename, so the window in which an edit can still be lost is as short
    as a rename.

    The steps use the operating system's calls directly, a dozen in all: each call lets go
    of Python's GIL and waits to get it back, a wait that grows with the threads of a pass
    writing at once (Python's file objects and ``Path`` helpers made it some thirty).
    """
    if within is not None:
        _refuse_linked_folders(within, path)
    found = _status(path, follow=False, shown=path)
    target = path
    if found is not None and stat.S_ISLNK(found.st_mode):
        # A link may lead anywhere (a committed `.gardener/x -> ~/.bashrc`): never through it.
        raise WriteError(path, "it is a symbolic link; the gardener never writes through "
                         "links (replace it with the file itself)")
    mode = stat.S_IMODE(found.st_mode) if found is not None else default_mode()
    if found is not None and not mode & stat.S_IWUSR:
        # A rename would replace it anyway; a read-only file says "do not touch".
        raise WriteError(path, "the file is read-only (mode "
                         f"{mode:o}); make it writable to let the gardener update it")
    data = text if isinstance(text, bytes) else text.encode("utf-8")
    try:
        prefix, suffix = temp_name(target)
        fd, tmp_name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=target.parent)
    except OSError as exc:
        raise WriteError(path, exc.strerror or str(exc)) from None
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
            if hasattr(os, "fchmod"):
                os.fchmod(fd, mode)
        finally:
            os.close(fd)
        if not hasattr(os, "fchmod"):  # pragma: no cover - Windows before Python 3.13
            os.chmod(tmp_name, mode)
        if expected is not None and not _unchanged(target, expected.encode("utf-8")):
            raise ConflictError(path)
        os.replace(tmp_name, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError) and not isinstance(exc, WriteError):
            raise WriteError(path, exc.strerror or str(exc)) from None
        raise
    _sync_dir(target.parent)
