"""The command line's one error handler: a GardenerError becomes a message and an exit status."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import typer
from typer.testing import CliRunner

from gardener.cli.errors import EXIT_INTERRUPTED, HandledGroup
from gardener.cli.main import app
from gardener.errors import GardenerError
from gardener.library.document import ReadError

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_a_bad_ledger_reaches_the_user_as_file_and_line(tmp_path: Path) -> None:
    library = tmp_path / "lib"
    shutil.copytree(ROOT / "patterns", library)
    ledger = library / ".gardener" / "decisions.yaml"
    ledger.parent.mkdir()
    ledger.write_text("rejected:\n  - slug: [unclosed\n", encoding="utf-8")
    before = ledger.read_bytes()
    result = runner.invoke(app, ["reject", "accountability-partnership", "adaptive-facilitation",
                                 "-l", str(library)])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert re.search(r"\.gardener/decisions\.yaml:\d+: not valid YAML", result.stderr)
    assert "Traceback" not in result.output
    assert ledger.read_bytes() == before  # nothing lost


def _app_raising(exc: BaseException) -> typer.Typer:
    demo = typer.Typer(cls=HandledGroup)

    @demo.command()
    def boom() -> None:
        raise exc

    @demo.command()
    def fine() -> None:
        typer.echo("ok")

    return demo


def test_each_error_exits_with_its_own_status() -> None:
    usage = runner.invoke(_app_raising(GardenerError("no library at /nowhere")), ["boom"])
    assert (usage.exit_code, usage.stderr) == (2, "error: no library at /nowhere\n")
    failed = runner.invoke(_app_raising(ReadError("p.md", "not YAML", 3, 1)), ["boom"])
    assert failed.exit_code == 1
    assert "p.md:3" in failed.stderr


def test_ctrl_c_exits_130() -> None:
    result = runner.invoke(_app_raising(KeyboardInterrupt()), ["boom"])
    assert result.exit_code == EXIT_INTERRUPTED


def test_other_exceptions_are_not_swallowed() -> None:
    result = runner.invoke(_app_raising(RuntimeError("a bug")), ["boom"])
    assert isinstance(result.exception, RuntimeError)
