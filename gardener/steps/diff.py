"""Show what a pass would change, as a unified diff a reviewer can read.

Lines are compared with their line endings, so a changed ending is a change; a carriage
return is shown as ``␍`` before the line break instead of being sent raw to a terminal,
and a last line without a line break is marked the way git marks it.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

CR_MARK = "␍"
NO_NEWLINE = "\\ No newline at end of file"
_LINE = re.compile(r"[^\n]*\n|[^\n]+")


def _shown(line: str) -> str:
    """One diff line with its ending made visible and normalized to a single LF."""
    if line.endswith("\r\n"):
        return line[:-2].replace("\r", CR_MARK) + CR_MARK + "\n"
    if line.endswith("\n"):
        return line[:-1].replace("\r", CR_MARK) + "\n"
    return line.replace("\r", CR_MARK) + "\n" + NO_NEWLINE + "\n"


def _lines(text: str) -> list[str]:
    """Lines split at LF only: a lone CR or a U+2028 inside a line is part of that line."""
    return _LINE.findall(text)


def unified_diff(path: Path | str, old: str, new: str, context: int = 3) -> str:
    """``a/path`` -> ``b/path`` unified diff of two texts; empty when they are equal."""
    if old == new:
        return ""
    name = Path(path).as_posix()
    lines = difflib.unified_diff(_lines(old), _lines(new), fromfile=f"a/{name}",
                                 tofile=f"b/{name}", n=context)
    out: list[str] = []
    for n, line in enumerate(lines):
        if n < 2 or line.startswith("@@"):  # the two file headers, then hunk headers
            out.append(line if line.endswith("\n") else line + "\n")
        else:
            out.append(line[0] + _shown(line[1:]))
    return "".join(out)
