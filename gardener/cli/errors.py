"""The command line's one error handler, as pre-commit has ``error_handler``.

Any `GardenerError` a command lets through becomes ``error: <message>`` on stderr and the
error's exit status (1: patterns or files failed; 2: usage or set-up); Ctrl-C becomes exit
130. Commands raise; they do not print errors themselves.

Everything a command prints from a file or a model goes through one filter here (``shown``,
``plain``, ``cell``, ``write_out``, and logging's last-resort handler): a terminal obeys the
escape sequences a ``state.json`` slug or a model's label may carry.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text
from typer.core import TyperGroup

from gardener.config import announcing
from gardener.errors import GardenerError
from gardener.text import one_line, without_controls

err = Console(stderr=True)

EXIT_FAILED = 1
"""Some pattern or file could not be processed."""
EXIT_USAGE = 2
"""Bad usage or set-up: nothing was processed."""
EXIT_INTERRUPTED = 130
"""Ctrl-C, as a shell reports SIGINT."""


def shown(text: str) -> str:
    """Any text from a file or a model, ready for ``Console.print``: control characters
    (terminal escape sequences) removed, and rich's markup escaped."""
    return escape(without_controls(text))


def plain(text: object) -> str:
    """Text from a file or a model for a ``markup=False`` print: control characters removed
    (rich itself strips only BEL, BS, VT, FF and CR, and keeps ESC)."""
    return without_controls(str(text))


def cell(value: object) -> Text:
    """A table cell from a file or a model: one line, no control characters."""
    return Text(one_line(str(value)))


def write_out(text: str) -> None:
    """File text (a diff) on stdout: as it is when piped, so that a patch still applies;
    without control characters on a terminal, which would obey them."""
    sys.stdout.write(without_controls(text) if sys.stdout.isatty() else text)


class _ShownHandler(logging.Handler):
    """Python's last-resort handler (warnings while logging is not configured), printing
    through the same filter: a slug logged from ``state.json`` must not reach the terminal
    raw."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(without_controls(self.format(record)) + "\n")  # the current stderr
        except Exception:  # as logging's own handlers: a broken stream never stops a command
            self.handleError(record)


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print ``message`` as an error and return the Exit to raise."""
    err.print(f"[red]error:[/] {shown(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


class HandledGroup(TyperGroup):
    """The root command group: runs every command inside the one handler."""

    def invoke(self, ctx: Any) -> Any:  # a click Context (Typer vendors click)
        if not isinstance(logging.lastResort, _ShownHandler):
            logging.lastResort = _ShownHandler()  # documented as replaceable
        said: set[Path] = set()

        def say_config(path: Path) -> None:  # once a command: which file's settings apply
            if path not in said:
                said.add(path)
                err.print(f"config: {plain(path)}", markup=False, highlight=False,
                          soft_wrap=True)

        try:
            with announcing(say_config):
                return super().invoke(ctx)
        except GardenerError as exc:
            raise fail(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted", highlight=False)
            raise typer.Exit(EXIT_INTERRUPTED) from None
