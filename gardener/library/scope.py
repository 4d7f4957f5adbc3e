"""Which Markdown files of a library are patterns: include and exclude globs.

A library keeps other Markdown beside its patterns (READMEs, docs, specs); ``gardener.toml``
says which files are patterns with globs relative to its folder (``gardener.config``). Globs
match whole relative paths, ``/``-separated: ``*`` and ``?`` stay within one folder name,
``[...]`` is a character class, and a ``**`` part matches any number of folders, none
included (``extensions/**/patterns/**/*.md``). Pure: paths in, yes or no out.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import PurePosixPath

from pydantic import BaseModel, ConfigDict

ALL_MARKDOWN = "**/*.md"


@lru_cache(maxsize=256)
def _compiled(glob: str) -> re.Pattern[str]:
    parts = [p for p in glob.strip("/").split("/") if p]
    regex = ""
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "**":
            regex += ".*" if last else "(?:[^/]+/)*"
            continue
        regex += _segment(part) + ("" if last else "/")
    return re.compile(regex + r"\Z", re.DOTALL)


def _segment(part: str) -> str:
    """One folder or file name of a glob as a regex that never crosses a ``/``."""
    out, i = "", 0
    while i < len(part):
        c = part[i]
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[" and (end := part.find("]", i + 2)) != -1:
            body = part[i + 1:end]
            negate = body[:1] in ("!", "^")
            body = body[1:] if negate else body
            out += "[" + ("^/" if negate else "") + body.replace("\\", "\\\\") + "]"
            i = end
        else:
            out += re.escape(c)
        i += 1
    return out


def glob_match(glob: str, path: str) -> bool:
    """Whether the relative ``/``-separated ``path`` matches ``glob`` (see the module)."""
    return _compiled(glob).match(path) is not None


class Scope(BaseModel):
    """The pattern files of a library: plain values, so a deployment can carry them.

    ``prefix`` is where the library folder lies below the globs' folder (the folder of the
    ``gardener.toml`` they came from), ``""`` when it is that folder. ``human_types`` are the
    extra top-level front-matter keys that hold human relationships
    (``relationships.types`` of the config).
    """

    model_config = ConfigDict(frozen=True)

    include: tuple[str, ...] = (ALL_MARKDOWN,)
    exclude: tuple[str, ...] = ()
    prefix: str = ""
    human_types: tuple[str, ...] = ()

    def relative(self, rel: PurePosixPath | str) -> str:
        """A path relative to the library as the globs see it."""
        rel = str(PurePosixPath(rel))
        return f"{self.prefix.strip('/')}/{rel}" if self.prefix.strip("/") else rel

    def admits(self, rel: PurePosixPath | str) -> bool:
        """Whether the file at ``rel`` (relative to the library) is a pattern file."""
        path = self.relative(rel)
        return (any(glob_match(g, path) for g in self.include)
                and not any(glob_match(g, path) for g in self.exclude))

    @property
    def everything(self) -> bool:
        """Every Markdown file is a pattern candidate: the default."""
        return self.include == (ALL_MARKDOWN,) and not self.exclude
