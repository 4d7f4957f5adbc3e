"""The command line's one error handler, as pre-commit has ``error_handler``, and the one
decision of a pass command's exit status.

Any `GardenerError` a command lets through becomes one ``error: <message>`` line on stderr
(``stopped:`` for a `Stopped` pass) and the error's exit status; Ctrl-C becomes exit 130.
Commands raise; they do not print errors themselves. The statuses (`gardener.errors`, and
README.md's "Exit codes"): 0 done, 1 a pattern or file asked for failed, 2 usage or set-up,
3 stopped by a token budget or deadline, 130 interrupted. Every pass command (``run``,
``prune``, ``review``) ends through `conclude`: its failures listed, then the status that
`verdict` decides.

Everything a command prints from a file or a model goes through one filter here (``shown``,
``plain``, ``cell``, ``write_out``, and logging's last-resort handler): a terminal obeys the
escape sequences a ``state.json`` slug or a model's label may carry.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text
from typer.core import TyperCommand, TyperGroup

from gardener.config import announcing
from gardener.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_STOPPED,
    EXIT_USAGE,
    Failed,
    GardenerError,
    Stopped,
    UsageError,
)
from gardener.model import Outcome, Status
from gardener.text import one_line, without_controls

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_STOPPED", "EXIT_USAGE", "HandledGroup",
           "cell", "conclude", "fail", "plain", "print_outcomes", "settle", "shown",
           "unreadable", "verdict", "write_out"]

err = Console(stderr=True)

HELP_OPTIONS = ["-h", "--help"]
"""Every command's help options (click's context setting, inherited by the subcommands)."""

STOPPING = ("budget", "deadline")
"""``Outcome.detail.not_asked`` of a pattern a token budget or deadline left unasked: the
pass was stopped (exit 3). ``"batch"``, left by ``--max-patterns``, is a planned batch."""


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


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def unreadable(outcome: Outcome) -> bool:
    """A file the pass could not take as a pattern (``Detail.problem``: unreadable, or its
    slug another file's): no pattern was asked for in it."""
    return outcome.status is Status.FAILED and (outcome.detail.problem is not None
                                                or outcome.slug is None)


def print_outcomes(outcomes: Iterable[Outcome]) -> None:
    """The pass's failures, conflicts and unreadable files, one line each, by path."""
    for o in sorted(outcomes, key=lambda o: o.path):
        if o.status is Status.CONFLICT:
            label = "[yellow]conflict:[/]"
        elif unreadable(o):
            label = ("[yellow]slug clash:[/]" if o.detail.problem == "duplicate_slug"
                     else "[yellow]unreadable:[/]")
        elif o.status is Status.FAILED:
            label = "[red]failed:[/]"
        else:
            continue
        err.print(f"{label} {shown(o.error or o.path)}", highlight=False, soft_wrap=True)


def verdict(outcomes: Sequence[Outcome], *, strict: bool = False) -> GardenerError | None:
    """How a pass ends, as the error that ends it (None: exit 0, done).

    `Failed` (exit 1) when a pattern it asked for failed; an unreadable file counts only with
    ``strict``, since no pattern in it was asked for (``--only`` names slugs), and is listed
    either way. Otherwise `Stopped` (exit 3) when a token budget or a deadline left patterns
    unasked. Patterns ``--max-patterns`` left for a later batch are neither: a planned batch.
    """
    stopped = [o for o in outcomes if o.detail.not_asked in STOPPING]
    failed = [o for o in outcomes if o.status is Status.FAILED
              and o.detail.not_asked not in STOPPING and (strict or not unreadable(o))]
    if failed:
        files = sum(1 for o in failed if unreadable(o))
        patterns = len(failed) - files
        said = [_count(patterns, "pattern") + " failed"] if patterns else []
        if files:
            said.append(_count(files, "file") + " unreadable (--strict)")
        return Failed(" and ".join(said) + "; each is listed above")
    if stopped:
        why = []
        budget = sum(1 for o in stopped if o.detail.not_asked == "budget")
        if budget:
            why.append(f"the token budget was spent: {_count(budget, 'pattern')} not asked")
        late = len(stopped) - budget
        if late:
            why.append(f"the deadline was reached: {_count(late, 'pattern')} not asked")
        return Stopped("; ".join(why) + "; run again to garden them")
    return None


def settle(outcomes: Sequence[Outcome], *, strict: bool = False) -> None:
    """A pass's last words: a batch ``--max-patterns`` left said as such (no error), then
    `verdict`'s error raised for the handler; exit 0 when there is none."""
    later = sum(1 for o in outcomes if o.detail.not_asked == "batch")
    if later:
        err.print(f"pattern limit reached: {_count(later, 'stale pattern')} left for a later "
                  "batch (--max-patterns); run again to garden them", markup=False,
                  highlight=False, soft_wrap=True)
    ending = verdict(outcomes, strict=strict)
    if ending is not None:
        raise ending


def conclude(outcomes: Sequence[Outcome], *, strict: bool = False) -> None:
    """End a pass command (after its summary): `print_outcomes`, then `settle`. ``review``
    calls it with its ``--strict``, as ``run`` and ``prune`` do."""
    print_outcomes(outcomes)
    settle(outcomes, strict=strict)


def fail(message: str, code: int = EXIT_USAGE) -> GardenerError:
    """The error to raise for ``message``: `Failed` (exit 1) or `UsageError` (exit 2); the
    handler prints it. For commands that do not raise an error class of their own."""
    return Failed(message) if code == EXIT_FAILED else UsageError(message)


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


def _plain_help(command: Any) -> None:
    """Click's own help (wrapped, never cut) for ``command`` and every command below it."""
    if isinstance(command, (TyperCommand, TyperGroup)):
        command.rich_markup_mode = None
    for sub in getattr(command, "commands", {}).values():
        _plain_help(sub)


class HandledGroup(TyperGroup):
    """The root command group: runs every command inside the one handler.

    Its help is rich's on a terminal; piped (``gardener run --help | cat``), rich would cut
    it to 80 columns with ellipses, so it is click's plain help, wrapped, instead.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stdout = sys.stdout
        if stdout is None or not stdout.isatty():
            _plain_help(self)

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
            err.print(f"[red]{exc.label}:[/] {shown(str(exc))}", highlight=False,
                      soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted", highlight=False)
            raise typer.Exit(EXIT_INTERRUPTED) from None
