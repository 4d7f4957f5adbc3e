"""One root for every error the gardener raises on purpose, as httpx has ``HTTPError``.

Each carries a message that names the file (and line, where there is one) and says what to
do; the CLI's one handler (`gardener.cli.errors`) prints it and exits with ``exit_code``:
1 when patterns or files could not be processed, 2 for usage and set-up problems. A caller
of the library catches ``GardenerError`` to catch them all.
"""

from __future__ import annotations

import reprlib
from typing import Any, ClassVar


class GardenerError(Exception):
    """Something the gardener refused or could not do; the message says what and why."""

    exit_code: ClassVar[int] = 2
    """What the command line exits with when this error ends a command."""


_brief = reprlib.Repr()
_brief.maxstring = _brief.maxother = 60
_brief.maxlist = _brief.maxdict = 4
_brief.maxlevel = 2


def brief(value: Any) -> str:
    """A value as an error shows it: a short repr, never the whole of a hostile file."""
    return _brief.repr(value)
