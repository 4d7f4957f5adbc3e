"""Where the gardener keeps its own files on this machine, outside any library.

The place is ``$XDG_STATE_HOME/graph-gardener`` (``~/.local/state/...``). When HOME cannot
be written, the fallback lies in the shared temporary folder under a predictable name
(``graph-gardener-UID``), which another user can create first, as a symbolic link to a folder
of theirs or as a folder they can write: the gardener then uses it only when it is a real
folder of this user that nobody else can write, and otherwise refuses (locks, which every
pass must find at the same place) or makes a fresh private folder (``tempfile.mkdtemp``).
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

from gardener.errors import GardenerError


class UnsafeFolderError(GardenerError):
    """The fallback state folder's name is taken by something this user does not own alone."""


def private_problem(folder: Path) -> str | None:
    """Why ``folder`` is not a private folder of this user, or None: it must be a folder
    (not a link to one), owned by this user, and writable by nobody else."""
    try:
        found = os.lstat(folder)
    except OSError as exc:
        return f"cannot be examined ({exc.strerror or exc})"
    if stat.S_ISLNK(found.st_mode):
        return "is a symbolic link"
    if not stat.S_ISDIR(found.st_mode):
        return "is not a folder"
    if found.st_uid != os.getuid():
        return f"belongs to user id {found.st_uid}, not to this user ({os.getuid()})"
    if found.st_mode & 0o022:
        return f"can be written by others (mode {stat.S_IMODE(found.st_mode):o})"
    return None


def _temp_root(environ: Mapping[str, str]) -> Path:
    given = environ.get("TMPDIR", "").strip()
    return Path(given) if given and Path(given).is_dir() else Path(tempfile.gettempdir())


def state_folder(name: str, environ: Mapping[str, str], *, shared: bool = False) -> Path:
    """``$XDG_STATE_HOME/graph-gardener/NAME`` (``~/.local/state/...`` by default), made if
    needed; when HOME is not writable, ``graph-gardener-UID/NAME`` in the temp folder, made
    mode 700 and checked (`private_problem`).

    ``shared``: every process must find the same folder (the library locks), so an unsafe
    fallback is refused; otherwise (Prefect's home) a fresh private folder replaces it.
    """
    state = environ.get("XDG_STATE_HOME", "").strip()
    home = environ.get("HOME", "").strip()
    base = Path(state) if state else (Path(home) if home else Path.home()) / ".local" / "state"
    folder = base / "graph-gardener" / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    except OSError:
        pass
    temp = _temp_root(environ)
    fallback = temp / f"graph-gardener-{os.getuid()}"
    try:
        fallback.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise UnsafeFolderError(f"{folder} cannot be made and neither can {fallback} "
                                f"({exc.strerror or exc}); set XDG_STATE_HOME to a folder "
                                "of yours") from None
    problem = private_problem(fallback)
    if problem is None:
        own = fallback / name
        own.mkdir(mode=0o700, exist_ok=True)  # nobody else can write in ``fallback``
        return own
    if shared:
        raise UnsafeFolderError(
            f"{folder} cannot be made (HOME is not writable), and the fallback {fallback} "
            f"{problem}: another user may have put it there; refusing to keep the gardener's "
            "files in it. Remove it, or set XDG_STATE_HOME to a folder of yours")
    return Path(tempfile.mkdtemp(prefix=f"graph-gardener-{os.getuid()}-{name}-", dir=temp))
