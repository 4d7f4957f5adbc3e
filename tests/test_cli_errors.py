"""The command line's one error handler: a GardenerError becomes a message and an exit status;
every error class has the one root; a pass's exit status is decided once; help as asked."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from gardener.cli.errors import EXIT_INTERRUPTED, HandledGroup, conclude, fail, verdict
from gardener.cli.main import app
from gardener.errors import EXIT_STOPPED, Failed, GardenerError, Stopped, UsageError
from gardener.library.document import ReadError
from gardener.model import Outcome, Status

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


# --- one root, drawn --------------------------------------------------------------------------

TREE_LINE = re.compile(r"(?P<indent>(?:│   |    )*)(?P<branch>├── |└── )?(?P<name>\w+) "
                       r"\((?P<code>\d+)\)(?:, (?P<also>\w+))? ?\.* +(?P<module>gardener[\w.]*)")

CLASSES = """
import importlib, json, pkgutil
import gardener
found = {}
for info in pkgutil.walk_packages(gardener.__path__, "gardener."):
    if info.name == "gardener.__main__":
        continue
    module = importlib.import_module(info.name)
    for value in vars(module).values():
        if (isinstance(value, type) and issubclass(value, BaseException)
                and value.__module__ == module.__name__):
            found[value.__name__] = {
                "module": value.__module__, "bases": [b.__name__ for b in value.__bases__],
                "mro": [c.__name__ for c in value.__mro__],
                "exit_code": getattr(value, "exit_code", None)}
print(json.dumps(found))
"""

NOT_ERRORS = {"NotAsked"}
"""Exceptions that never leave the pass: signals, not errors (named in the docstring)."""


def drawn_tree() -> dict[str, tuple[str | None, int, str, str | None]]:
    """``gardener.errors``' drawing: each class's parent, exit status, module, other base."""
    import gardener.errors as errors_mod

    doc = errors_mod.__doc__ or ""
    block = doc.split("::\n\n", 1)[1].split("\n\n", 1)[0]
    parents: list[str] = []
    tree: dict[str, tuple[str | None, int, str, str | None]] = {}
    for raw in block.splitlines():
        found = TREE_LINE.fullmatch(raw[4:])
        assert found is not None, raw
        depth = len(found["indent"]) // 4 + 1 if found["branch"] else 0
        del parents[depth:]
        tree[found["name"]] = (parents[-1] if parents else None, int(found["code"]),
                               found["module"], found["also"])
        parents.append(found["name"])
    return tree


def test_every_error_class_has_the_one_root_and_the_exit_status_drawn_for_it() -> None:
    done = subprocess.run([sys.executable, "-c", CLASSES], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    classes = {name: info for name, info in json.loads(done.stdout).items()
               if name not in NOT_ERRORS}
    tree = drawn_tree()
    assert sorted(classes) == sorted(tree)
    for name, (parent, code, module, also) in tree.items():
        info = classes[name]
        assert info["module"] == module, name
        assert info["exit_code"] == code, name
        assert "GardenerError" in info["mro"], name
        if parent is not None:
            assert parent in info["bases"], name
        if also is not None:
            assert also in info["mro"], name
    assert tree["GardenerError"][0] is None


# --- a pass's exit status ---------------------------------------------------------------------


def outcome(slug: str | None, status: Status, **detail: str) -> Outcome:
    path = f"{slug or 'broken'}.md"
    return Outcome(path=path, slug=slug, status=status, detail=detail,
                   error=f"{path}: it went wrong" if status is Status.FAILED else None)


DONE = [outcome("a", Status.CHANGED), outcome("b", Status.SKIPPED),
        outcome("c", Status.SKIPPED, not_asked="batch")]
UNREADABLE = outcome(None, Status.FAILED)


def _app_ending(outcomes: list[Outcome], strict: bool = False) -> typer.Typer:
    demo = typer.Typer(cls=HandledGroup)

    @demo.command()
    def garden() -> None:
        conclude(outcomes, strict=strict)

    @demo.command()
    def other() -> None:
        pass

    return demo


def ends(outcomes: list[Outcome], strict: bool = False) -> tuple[int, str]:
    result = runner.invoke(_app_ending(outcomes, strict), ["garden"])
    return result.exit_code, result.stderr


def test_a_planned_batch_and_an_unreadable_file_not_asked_for_end_in_exit_0() -> None:
    code, said = ends(DONE)
    assert code == 0
    assert said == ("pattern limit reached: 1 stale pattern left for a later batch "
                    "(--max-patterns); run again to garden them\n")
    assert "budget" not in said
    code, said = ends([*DONE, UNREADABLE])
    assert code == 0
    assert "unreadable: broken.md: it went wrong\n" in said and "error" not in said


def test_strict_makes_an_unreadable_file_fail() -> None:
    code, said = ends([*DONE, UNREADABLE], strict=True)
    assert code == 1
    assert said.endswith("error: 1 file unreadable (--strict); each is listed above\n")


def test_a_pattern_asked_for_that_failed_is_exit_1_whatever_else() -> None:
    code, said = ends([*DONE, outcome("d", Status.FAILED), UNREADABLE,
                       outcome("e", Status.SKIPPED, not_asked="budget")])
    assert code == 1
    assert "failed: d.md: it went wrong" in said
    assert said.endswith("error: 1 pattern failed; each is listed above\n")


@pytest.mark.parametrize(("kind", "why"), [("budget", "the token budget was spent"),
                                            ("deadline", "the deadline was reached")])
def test_a_budget_or_deadline_that_stopped_the_pass_is_exit_3(kind: str, why: str) -> None:
    status = Status.SKIPPED if kind == "budget" else Status.FAILED
    left = [outcome(s, status, not_asked=kind) for s in ("f", "g")]
    code, said = ends([*DONE, *left])
    assert code == EXIT_STOPPED == 3
    assert said.endswith(f"stopped: {why}: 2 patterns not asked; run again to garden them\n")
    assert isinstance(verdict(left), Stopped)


def test_fail_gives_the_handler_an_error_of_its_status() -> None:
    assert isinstance(fail("no such folder"), UsageError)
    assert fail("no such folder").exit_code == 2
    assert isinstance(fail("could not write", 1), Failed) and fail("x", 1).exit_code == 1


# --- help ------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [[], ["run"], ["prune"], ["init"], ["review"],
                                     ["communities", "build"]])
def test_h_is_help_everywhere(command: list[str]) -> None:
    short = runner.invoke(app, [*command, "-h"])
    assert short.exit_code == 0, short.output
    assert short.stdout == runner.invoke(app, [*command, "--help"]).stdout
    assert "Usage:" in short.stdout


def test_piped_help_is_whole() -> None:
    done = subprocess.run([sys.executable, "-m", "gardener", "run", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != "COLUMNS"})
    assert done.returncode == 0, done.stderr
    assert "…" not in done.stdout
    for option in ("--vitality-target", "--budget-tokens", "--max-patterns", "--strict",
                   "-h, --help"):
        assert option in done.stdout, option
    said = " ".join(done.stdout.split())
    assert ("Exit status: 0 done (files that cannot be read are skipped and listed, unless "
            "--strict); 1 a pattern asked for failed; 2 usage or set-up, nothing done; 3 "
            "stopped by --budget-tokens or --deadline (run again to carry on); 130 "
            "interrupted.") in said
