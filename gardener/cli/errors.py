"""The command line's one error handler, as pre-commit has ``error_handler``.

Any `GardenerError` a command lets through becomes ``error: <message>`` on stderr and the
error's exit status (1: patterns or files failed; 2: usage or set-up); Ctrl-C becomes exit
130. Commands raise; they do not print errors themselves.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from gardener.errors import GardenerError
from gardener.text import without_controls

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


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print ``message`` as an error and return the Exit to raise."""
    err.print(f"[red]error:[/] {shown(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


class HandledGroup(TyperGroup):
    """The root command group: runs every command inside the one handler."""

    def invoke(self, ctx: Any) -> Any:  # a click Context (Typer vendors click)
        try:
            return super().invoke(ctx)
        except GardenerError as exc:
            raise fail(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted", highlight=False)
            raise typer.Exit(EXIT_INTERRUPTED) from None
