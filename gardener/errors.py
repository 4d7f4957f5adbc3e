"""One root for every error the gardener raises on purpose, as httpx has ``HTTPError``.

Each carries a message that names the file (and line, where there is one) and says what to
do; the command line's one handler (`gardener.cli.errors.HandledGroup`) prints it as one
``error: <message>`` line and exits with the class's ``exit_code``. A caller of the library
catches ``GardenerError`` to catch them all; the other bases (``ValueError``, ``OSError``,
``RuntimeError``) stay where callers catch those.

The tree, with each class's exit status (``tests/test_cli_errors.py`` checks it against the
code)::

    GardenerError (2) ...................... gardener.errors
    ├── UsageError (2) ..................... gardener.errors
    ├── Failed (1) ......................... gardener.errors
    ├── Stopped (3) ........................ gardener.errors
    ├── ConfigError (2) .................... gardener.config
    ├── UnsafeFolderError (2) .............. gardener.paths
    ├── LockedError (2) .................... gardener.library.lock
    ├── TableError (2) ..................... gardener.library.tables
    ├── StateError (2) ..................... gardener.library.state
    ├── LedgerError (2), ValueError ........ gardener.library.decisions
    ├── ReadError (1) ...................... gardener.library.document
    ├── WriteError (1), OSError ............ gardener.library.write
    │   └── ConflictError (1) .............. gardener.library.write
    │       └── LedgerConflict (1) ......... gardener.library.decisions
    ├── SpliceError (1) .................... gardener.library.yaml_text
    ├── LLMError (1) ....................... gardener.endpoint.exchange
    │   └── FixtureMissing (1) ............. gardener.endpoint.fixtures
    ├── StructuredOutputError (1) .......... gardener.endpoint.exchange
    ├── GGUFError (2), ValueError .......... gardener.endpoint.gguf
    ├── LocalModelError (2), RuntimeError .. gardener.local.server
    ├── NoFreePort (2) ..................... gardener.local.process
    ├── PromptError (2) .................... gardener.propose.prompts
    ├── VerifyError (1) .................... gardener.steps.verify
    ├── UnservedError (2) .................. gardener.pipeline.served
    │   └── UnservedOptionError (2), ValueError  gardener.pipeline.options
    ├── ServerError (2), RuntimeError ...... gardener.pipeline.prefect.runtime
    ├── ScheduleError (2), ValueError ...... gardener.pipeline.prefect.serve
    ├── ReportsFolderError (2) ............. gardener.pipeline.prefect.serve
    ├── ReviewError (2) .................... gardener.review.branch
    ├── GitError (2) ....................... gardener.review.git
    ├── GitHubError (1) .................... gardener.review.github
    │   └── GitHubUnreachable (1) .......... gardener.review.github
    └── PromoteError (2), ValueError ....... gardener.review.promote

The exit statuses (README.md, "Exit codes"): 0 done, unreadable files that were not asked for
skipped and listed; 1 a pattern or file that was asked for failed (``--strict``: an
unreadable file too); 2 usage or set-up, nothing processed; 3 a token budget or deadline
stopped the pass, the next run carries on; 130 interrupted (Ctrl-C).

Not an error, so outside the tree: ``gardener.pipeline.run.NotAsked``, the signal that a
waiting pattern's model call never started, caught within the pass.
"""

from __future__ import annotations

import reprlib
from typing import Any, ClassVar

EXIT_DONE = 0
"""Done: every pattern asked for was gardened, or was up to date."""
EXIT_FAILED = 1
"""A pattern or file that was asked for could not be processed."""
EXIT_USAGE = 2
"""Bad usage or set-up: nothing was processed."""
EXIT_STOPPED = 3
"""A token budget or a deadline stopped the pass; running it again carries on."""
EXIT_INTERRUPTED = 130
"""Ctrl-C, as a shell reports SIGINT."""


class GardenerError(Exception):
    """Something the gardener refused or could not do; the message says what and why."""

    exit_code: ClassVar[int] = EXIT_USAGE
    """What the command line exits with when this error ends a command."""
    label: ClassVar[str] = "error"
    """The word the command line prints before the message."""


class UsageError(GardenerError):
    """A command line that cannot be run as given (an option's value, a missing folder)."""

    exit_code = EXIT_USAGE


class Failed(GardenerError):
    """A command did its work, but patterns or files that were asked for failed; they were
    listed as they failed, and the message counts them."""

    exit_code = EXIT_FAILED


class Stopped(GardenerError):
    """A token budget or a deadline stopped the pass before every stale pattern was asked;
    the next run asks the rest."""

    exit_code = EXIT_STOPPED
    label = "stopped"


_brief = reprlib.Repr()
_brief.maxstring = _brief.maxother = 60
_brief.maxlist = _brief.maxdict = 4
_brief.maxlevel = 2


def brief(value: Any) -> str:
    """A value as an error shows it: a short repr, never the whole of a hostile file."""
    return _brief.repr(value)
