"""Attacks through the files a library commit controls (issue 25, items 1-3): the state file
and its backup, a value PyYAML cannot make, and files too large or nested too deeply."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gardener.cli.main import app
from gardener.testing.fake_openai import FakeOpenAI, use_as_endpoint

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "patterns"
runner = CliRunner()
BAD_DATE = "adaptive-facilitation.md"


@pytest.fixture
def library(tmp_path: Path) -> Path:
    lib = tmp_path / "lib"
    shutil.copytree(SAMPLES, lib)
    return lib


def _run(library: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str, Path]:
    """``gardener run`` in its own process, as a user runs it, against a loopback model."""
    report = library.parent / "report.json"
    with FakeOpenAI() as fake:
        use_as_endpoint(monkeypatch, fake)
        done = subprocess.run([sys.executable, "-m", "gardener", "run", str(library),
                               "--report", str(report), *args], capture_output=True,
                              text=True, timeout=300, check=False)
    return done.returncode, done.stdout + done.stderr, report


def _outside_tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink()}


# --- item 1: the state file's backup -----------------------------------------------------------


def test_a_dangling_link_at_the_backup_name_leads_nowhere(library: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """A committed ``state.json.bak -> ~/.local/.../evil.pth`` beside a state.json that is not
    JSON: the attacker's bytes must not land at the link's target."""
    site = tmp_path / "site-packages"
    site.mkdir()
    target = site / "evil.pth"
    payload = "import os; os.system('touch /tmp/pwned')\n"
    folder = library / ".gardener"
    folder.mkdir()
    (folder / "state.json").write_text(payload, encoding="utf-8")
    (folder / "state.json.bak").symlink_to(target)
    code, output, _ = _run(library, monkeypatch)
    assert code == 0, output
    assert not target.exists() and list(site.iterdir()) == []
    assert (folder / "state.json.bak").is_symlink()  # left alone, never written through
    backup = folder / "state.json.1.bak"
    assert backup.read_text(encoding="utf-8") == payload and not backup.is_symlink()
    assert json.loads((folder / "state.json").read_text(encoding="utf-8"))["patterns"]


def test_a_state_file_that_is_a_link_is_refused_and_never_copied(
        library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``state.json -> ~/.ssh/id_rsa``: its text must never be copied into the library."""
    secret = tmp_path / "id_rsa"
    secret.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n", encoding="utf-8")
    folder = library / ".gardener"
    folder.mkdir()
    (folder / "state.json").symlink_to(secret)
    before = _outside_tree(library)
    code, output, _ = _run(library, monkeypatch)
    assert code == 2, output
    assert "state.json: a symbolic link; the gardener never reads or writes" in output
    assert "Traceback" not in output
    assert secret.read_text(encoding="utf-8").startswith("-----BEGIN")
    assert _outside_tree(library) == before  # no .bak, no pattern written
    result = runner.invoke(app, ["state", str(library)])
    assert result.exit_code == 2 and "a symbolic link" in result.stderr


def test_a_huge_value_in_the_state_file_is_not_echoed(library: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    folder = library / ".gardener"
    folder.mkdir()
    huge = "q" * 3_000_000
    state = {"format": 1, "patterns": {"consent-decision-making": {
        "fingerprint": "f", "prompt_version": "p", "model": "m", "candidates": "c",
        "date": huge, "garden": "g"}, huge: {"date": 1}}}
    (folder / "state.json").write_text(json.dumps(state), encoding="utf-8")
    code, output, _ = _run(library, monkeypatch)
    assert code == 0, output
    assert "is not YYYY-MM-DD" in output and "q" * 100 not in output


def test_a_deeply_nested_state_file_is_one_line(library: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    folder = library / ".gardener"
    folder.mkdir()
    (folder / "state.json").write_text('{"format": 1, "patterns": ' + "[" * 100_000,
                                       encoding="utf-8")
    code, output, _ = _run(library, monkeypatch)
    assert code == 0, output
    assert "Traceback" not in output and "RecursionError" not in output
    assert "state.json:1: nested more than 64 levels deep" in output
    assert (folder / "state.json.bak").read_text(encoding="utf-8").endswith("[" * 100)


# --- item 2: a value PyYAML cannot make --------------------------------------------------------


@pytest.fixture
def bad_date(library: Path) -> Path:
    path = library / BAD_DATE
    text = path.read_text(encoding="utf-8")
    assert "\ncreated: 2026-01-28 00:00:00+00:00\n" in text
    path.write_text(text.replace("\ncreated: 2026-01-28 00:00:00+00:00\n",
                                 "\ncreated: 2025-13-45\n"), encoding="utf-8")
    return library


WHERE = f"{BAD_DATE}:9:10: invalid YAML: '2025-13-45' cannot be read as !!timestamp"


@pytest.mark.parametrize("command", [["check"], ["prune", "--dry-run"], ["run", "--estimate"]])
def test_an_impossible_date_is_that_file_s_problem(bad_date: Path, command: list[str]) -> None:
    result = runner.invoke(app, [command[0], str(bad_date), *command[1:]])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert WHERE in result.output
    assert "month must be in 1..12" in result.output and "Traceback" not in result.output
    if command[0] != "check":  # the other files were read and handled
        assert "12" in result.output


def test_a_pass_beside_an_impossible_date_finishes_every_other_pattern(
        bad_date: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = (bad_date / BAD_DATE).read_bytes()
    _, output, report = _run(bad_date, monkeypatch)
    assert WHERE in output
    data = json.loads(report.read_text(encoding="utf-8"))
    by_status: dict[str, list[str]] = {}
    for p in data["patterns"]:
        by_status.setdefault(p["status"], []).append(Path(p["path"]).name)
    assert by_status["failed"] == [BAD_DATE]
    others = sum(len(v) for k, v in by_status.items() if k != "failed")
    assert others == len(list(bad_date.glob("*.md"))) - 2  # all but the README and that one
    assert (bad_date / BAD_DATE).read_bytes() == before


# --- item 3: tool files too large or nested too deeply -----------------------------------------


@pytest.mark.parametrize(("file", "command"), [
    ("communities.yaml", ["communities", "check"]),
    ("entities.yaml", ["health"]),
])
def test_deeply_nested_yaml_in_a_gardener_file_is_one_line(library: Path, file: str,
                                                           command: list[str]) -> None:
    (library / ".gardener").mkdir()
    deep = "communities:\n" + "".join("  " * i + "- \n" for i in range(1, 200))
    (library / ".gardener" / file).write_text(deep + "x: " + "[" * 50_000, encoding="utf-8")
    result = runner.invoke(app, [*command, str(library)])
    assert result.exit_code in (1, 2), result.output
    assert "Traceback" not in result.output and "RecursionError" not in result.output
    assert f".gardener/{file}:" in result.stderr and "nested more than 64 levels" in \
        result.stderr
    assert len(result.stderr) < 2_000


def test_a_huge_gardener_file_is_refused_unread(library: Path) -> None:
    (library / ".gardener").mkdir()
    item = "- {slug: a, target: b, reason: " + "y" * 200 + "}\n"
    path = library / ".gardener" / "communities.yaml"
    path.write_text("communities:\n" + item * 70_000, encoding="utf-8")  # about 15 MB
    start = time.monotonic()
    result = runner.invoke(app, ["communities", "check", str(library)])
    assert time.monotonic() - start < 10  # refused by size, never composed (88 s before)
    assert result.exit_code in (1, 2)
    assert "communities.yaml: larger than 4 MiB" in result.stderr
    assert len(result.stderr) < 2_000


def test_an_impossible_date_in_a_gardener_table_names_its_line(library: Path) -> None:
    (library / ".gardener").mkdir()
    (library / ".gardener" / "communities.yaml").write_text(
        "communities:\n  - id: c\n    label: C\n    since: 2025-13-45\n", encoding="utf-8")
    result = runner.invoke(app, ["communities", "check", str(library)])
    assert result.exit_code in (1, 2)
    assert "communities.yaml:4:12: not valid YAML: '2025-13-45' cannot be read" in \
        result.stderr


def test_a_flow_mapping_front_matter_is_read_and_named_not_fatal(library: Path) -> None:
    (library / "flowy.md").write_text('---\n{slug: flowy, title: "Flowy"}\n---\nBody.\n',
                                      encoding="utf-8")
    result = runner.invoke(app, ["check", str(library)])
    assert result.exit_code == 0, result.output
    assert "flowy.md:2: the front matter is one flow mapping" in result.output
    pruned = runner.invoke(app, ["prune", str(library)])
    assert pruned.exit_code == 0, pruned.output
