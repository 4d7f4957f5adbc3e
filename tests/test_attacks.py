"""Attacks on the bot's edges (issue 17), each performed on a temporary library."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gardener.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture
def library(tmp_path: Path) -> Path:
    lib = tmp_path / "lib"
    shutil.copytree(ROOT / "patterns", lib)
    return lib


def _reject(library: Path) -> tuple[int, str]:
    result = runner.invoke(app, ["reject", "accountability-partnership",
                                 "adaptive-facilitation", "-l", str(library)])
    return result.exit_code, result.stderr


def test_a_committed_ledger_symlink_does_not_redirect_the_write(library: Path,
                                                                tmp_path: Path) -> None:
    victim = tmp_path / "bashrc"
    victim.write_text("export PATH=/usr/bin\n", encoding="utf-8")
    (library / ".gardener").mkdir()
    (library / ".gardener" / "decisions.yaml").symlink_to(victim)
    code, stderr = _reject(library)
    assert code == 2
    assert "decisions.yaml: a symbolic link; the gardener never reads or writes" in stderr
    assert victim.read_text(encoding="utf-8") == "export PATH=/usr/bin\n"


def test_a_symlinked_gardener_folder_is_refused(library: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (library / ".gardener").symlink_to(home, target_is_directory=True)
    code, stderr = _reject(library)
    assert code == 1  # a file could not be written
    assert ".gardener is a symbolic link" in stderr
    assert list(home.iterdir()) == []


def test_a_stale_temporary_name_cannot_be_planted(library: Path, tmp_path: Path) -> None:
    """The old writer used ``decisions.yaml.tmp``; a link there must not be followed."""
    victim = tmp_path / "profile"
    victim.write_text("safe\n", encoding="utf-8")
    (library / ".gardener").mkdir()
    (library / ".gardener" / "decisions.yaml.tmp").symlink_to(victim)
    code, _ = _reject(library)
    assert code == 0
    assert victim.read_text(encoding="utf-8") == "safe\n"
    assert "adaptive-facilitation" in (library / ".gardener" / "decisions.yaml").read_text(
        encoding="utf-8")
