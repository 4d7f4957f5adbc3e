"""Library-level vocabulary files (``.gardener/*.yaml``), read with line numbers for errors.

People edit these files by hand, so a problem must name the file and the line. PyYAML's
composed node tree carries the marks; the data is read from the same text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gardener.errors import GardenerError
from gardener.library.bounded import MAX_YAML_BYTES, check_yaml_depth, read_capped
from gardener.library.document import ReadError, load_plain


class TableError(GardenerError):
    """A vocabulary file that cannot be used; ``problems`` are ``file:line: what`` lines."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Table:
    path: Path
    data: Any
    node: yaml.Node | None

    def where(self, node: yaml.Node | None) -> str:
        """``path:line`` of a node (1-based), or the path alone."""
        if node is None:
            return str(self.path)
        return f"{self.path}:{node.start_mark.line + 1}"

    def child(self, node: yaml.Node | None, key: str) -> yaml.Node | None:
        """The value node of ``key`` in a mapping node."""
        if not isinstance(node, yaml.MappingNode):
            return None
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key and isinstance(v, yaml.Node):
                return v
        return None

    def items(self, node: yaml.Node | None) -> list[yaml.Node | None]:
        return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def parse(text: str, path: Path) -> Table:
    """The file's data and node tree; an error names the file, line and column."""
    try:
        check_yaml_depth(text, path)
        data, node = load_plain(text, path)
    except ReadError as err:
        raise TableError([str(err)]) from None
    return Table(path, data, node)


def read_text(path: Path) -> str:
    """The file's text, at most ``MAX_YAML_BYTES`` of it, never through a link; a file that
    cannot be read is a ``TableError`` naming it. ``FileNotFoundError`` when it is absent."""
    try:
        return read_capped(path, MAX_YAML_BYTES)
    except ReadError as err:
        raise TableError([str(err)]) from None
