"""Attacks on the bot's edges, second round (issue 25, items 8 to 11), each performed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from gardener.cli.main import app
from gardener.testing.fake_openai import FakeOpenAI

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
CONTROLS = ("\x1b", "\x07", "\x9b")


@pytest.fixture
def library(tmp_path: Path) -> Path:
    lib = tmp_path / "lib"
    shutil.copytree(ROOT / "patterns", lib)
    return lib


def gardener(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real command line in a process of its own, as a terminal user runs it."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return subprocess.run([sys.executable, "-m", "gardener", *args], capture_output=True,
                          text=True, env={**base, **(env or {})}, cwd=ROOT, timeout=120)


# --- item 8: terminal escapes from the state file -------------------------------------------


def _entry(model: str, prompt: str) -> dict[str, str]:
    return {"fingerprint": "f" * 64, "prompt_version": prompt, "model": model,
            "candidates": "c" * 64, "date": "2026-03-01", "garden": "g" * 64}


def test_a_state_file_s_escapes_never_reach_the_terminal(library: Path) -> None:
    title, clear = "\x1b]0;you have been pwned\x07", "\x1b[2J\x1b[H"
    state = {"format": 1, "patterns": {
        f"{title}adaptive-facilitation": _entry(f"gpt{clear}", f"propose@1{clear}"),
        f"consent{clear}": _entry(f"gpt{clear}", "propose@2\x9b31m"),
        f"broken{title}": {"model": 3},  # a bad entry: its warning names the slug
    }}
    (library / ".gardener").mkdir()
    (library / ".gardener" / "state.json").write_text(json.dumps(state), encoding="utf-8")

    result = runner.invoke(app, ["state", str(library)])
    assert result.exit_code == 0, result.output
    assert "adaptive-facilitation" in result.stdout and "propose@1" in result.stdout
    assert not any(c in result.output for c in CONTROLS), repr(result.output)

    done = gardener("state", str(library))  # the logged warning too, on a real stderr
    assert done.returncode == 0, done.stderr
    assert "entry 'broken" in done.stderr  # the warning is printed, its escapes are not
    assert not any(c in done.stdout + done.stderr for c in CONTROLS), repr(done.stderr)


def test_the_printers_filter_what_they_print() -> None:
    from gardener.cli.errors import cell, plain

    assert plain("wrote \x1b[2J/x\x07") == "wrote [2J/x"
    assert cell("a\x1b]0;t\x07\nb").plain == "a ]0;t b"


# --- item 9: a served run's other parameters ----------------------------------------------------


def test_a_served_run_refuses_paths_outside_the_library_and_other_models(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.exceptions import ParameterTypeError

    from gardener.pipeline.prefect.flows import garden
    from gardener.pipeline.prefect.serve import pins
    from gardener.pipeline.served import SERVED

    lib = tmp_path / "lib"
    (lib / ".gardener").mkdir(parents=True)
    (lib / ".gardener" / "escape").symlink_to(tmp_path, target_is_directory=True)
    env = pins(lib, lib / ".gardener" / "reports", ["gpt-4.1-mini", None])
    monkeypatch.setenv(SERVED, env[SERVED])

    def start(options: dict[str, Any]) -> None:
        """What a served flow run does first: Prefect validates its parameters."""
        garden.validate_parameters({"library": str(lib), "options": options})

    refused = {
        "refusing fixtures /tmp/elsewhere outside it": {
            "fixtures": "/tmp/elsewhere", "fixture_mode": "record"},
        "refusing fixtures in the working folder": {"fixture_mode": "auto"},
        "refusing decisions /etc/passwd outside it": {"decisions": "/etc/passwd"},
        "refusing decisions .* outside it": {
            "decisions": str(lib / ".gardener" / "escape" / "d.yaml")},  # a link out
        "names \\('gpt-4.1-mini'\\); refusing model 'gpt-5'": {"model": "gpt-5"},
    }
    for message, options in refused.items():
        with pytest.raises(ParameterTypeError, match=message):
            start(options)
    start({"model": "gpt-4.1-mini", "decisions": str(lib / ".gardener" / "mine.yaml"),
           "fixtures": str(lib / "fixtures"), "fixture_mode": "replay"})
    start({})  # the deployment's own parameters
    monkeypatch.delenv(SERVED)
    start({"model": "gpt-5", "decisions": "/etc/passwd"})  # a run by hand goes anywhere


def test_serve_refuses_a_reports_folder_linked_out_of_the_library(
        library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (library / ".gardener").mkdir()
    (library / ".gardener" / "reports").symlink_to(elsewhere, target_is_directory=True)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    result = runner.invoke(app, ["serve", str(library)])
    assert result.exit_code == 2, result.output
    assert ".gardener/reports is a symbolic link" in result.stderr
    assert list(elsewhere.iterdir()) == []


# --- item 10: the configuration -------------------------------------------------------------


def test_a_parent_folder_s_gardener_toml_is_not_applied(tmp_path: Path) -> None:
    from gardener.config import find_config

    lib = tmp_path / "shared" / "lib"
    shutil.copytree(ROOT / "patterns", lib)
    # Another user's file in a shared parent folder: it would hide every pattern.
    (tmp_path / "shared" / "gardener.toml").write_text(
        "[library]\ninclude = ['nothing/*.md']\n", encoding="utf-8")
    assert find_config(lib) is None
    result = runner.invoke(app, ["check", str(lib)])
    assert result.exit_code == 0, result.output
    assert "config:" not in result.stderr

    (lib / "gardener.toml").write_text("[prune]\nmax_links = 6\n", encoding="utf-8")
    result = runner.invoke(app, ["check", str(lib)])
    assert result.exit_code == 0, result.output
    assert result.stderr.count(f"config: {(lib / 'gardener.toml').resolve()}") == 1

    (lib / "gardener.toml").unlink()  # within a repository: up to its top, as before
    (tmp_path / "shared" / ".git").mkdir()
    assert find_config(lib) == (tmp_path / "shared" / "gardener.toml").resolve()


@pytest.mark.parametrize(("text", "line", "message"), [
    ("[model]\nconcurrency = 100000000\n", 2, "model.concurrency: must be at most 256"),
    ("[model]\ntimeout_s = 1e300\n", 2, "model.timeout_s: must be more than 0 and at most 86400"),
    ("[model]\ntimeout_s = inf\n", 2, "model.timeout_s: must be more than 0"),
    ("[model]\ncontext = 1000000000000\n", 2, "model.context: must be 256 to 16777216 tokens"),
    ("[model]\nbudget_tokens = 100000000000000\n", 2, "model.budget_tokens: must be at most"),
    ('[model]\nname = "gpt-4.1\\nGardener-Pass: forged"\n', 2,
     "model.name: 'gpt-4.1\\nGardener-Pass: forged' holds U+000A"),
    ('[model]\nname = "gpt\\u001b[2J"\n', 2, "model.name: 'gpt\\x1b[2J' holds U+001B"),
    ("[prune]\nmax_links = 100000\n", 2, "prune.max_links: must be at most 1000"),
    ('[prices."gpt-4.1"]\ninput_per_mtok = 0\noutput_per_mtok = 1\n', 2,
     'prices."gpt-4.1".input_per_mtok: must be more than 0'),
    ('[prices."gpt-4.1"]\ninput_per_mtok = 1\noutput_per_mtok = -1\n', 3,
     'prices."gpt-4.1".output_per_mtok: Input should be greater than or equal to 0'),
])
def test_out_of_bound_numbers_are_refused_with_file_line_and_key(
        library: Path, text: str, line: int, message: str) -> None:
    (library / "gardener.toml").write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["check", str(library)])
    assert result.exit_code == 2, result.output
    assert f"gardener.toml:{line}: {message}" in " ".join(result.stderr.split()), result.stderr
    assert "\x1b" not in result.stderr


def test_a_deeply_nested_gardener_toml_is_refused_in_one_line(library: Path) -> None:
    (library / "gardener.toml").write_text("x = " + "[" * 50_000 + "]" * 50_000 + "\n",
                                           encoding="utf-8")
    result = runner.invoke(app, ["check", str(library)])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {(library / 'gardener.toml').resolve()}:1: nested more than 64 "
                      "levels deep; no file of the gardener nests like that, so it is refused"]
    assert "Traceback" not in result.output and len(result.stderr) < 1000


# --- item 11: a key in the server's text, the lock folder, invisible slugs --------------------


class Pet(BaseModel):
    name: str


def test_a_server_quoting_the_url_s_key_in_its_404_is_scrubbed() -> None:
    from gardener.endpoint.client import LLM, LLMError
    from gardener.endpoint.settings import LLMSettings

    secret = "azure-0123456789-secret"  # not shaped like sk-..., so only the URL gives it away
    with FakeOpenAI() as fake:  # answers "Unknown path /v1?api-key=<secret>/chat/completions"
        settings = LLMSettings(base_url=f"{fake.url}?api-key={secret}", api_key="test-key",
                               model="fake-model", mode="json_schema", max_attempts=1)
        with LLM(settings) as llm, pytest.raises(LLMError) as caught:
            llm.structured(response_model=Pet, messages=[{"role": "user", "content": "Rex"}])
        assert any(secret in r.path for r in fake.requests)  # the server did see it
    said = str(caught.value)
    assert "HTTP 404: Unknown path /v1?api-key=***" in said, said
    assert secret not in said and secret not in (caught.value.server_said or "")


def test_url_credentials_in_free_text_are_masked() -> None:
    from gardener.endpoint.exchange import scrub

    assert scrub("Unknown path /v1?region=eu&api-key=k3y-0123/chat, see "
                 "https://bob:hunter2@llm.example/v1?token=abc&page=2") == (
        "Unknown path /v1?region=eu&api-key=***, see https://***@llm.example/v1?token=***&page=2")


def _planted(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """HOME unwritable (a file, which even root cannot make folders in); TMPDIR our own."""
    home = tmp_path / "home"
    home.write_text("not a folder\n", encoding="utf-8")
    temp = tmp_path / "tmp"
    temp.mkdir()
    return {"HOME": str(home), "TMPDIR": str(temp)}, temp / f"graph-gardener-{os.getuid()}"


def test_a_planted_fallback_lock_folder_is_refused_or_avoided(library: Path,
                                                               tmp_path: Path) -> None:
    from gardener.library.lock import lock_path
    from gardener.paths import UnsafeFolderError, state_folder

    environ, fallback = _planted(tmp_path)
    attacker = tmp_path / "attacker"
    attacker.mkdir()
    fallback.symlink_to(attacker, target_is_directory=True)
    with pytest.raises(UnsafeFolderError, match=r"graph-gardener-\d+ is a symbolic link"):
        lock_path(library, environ)
    prefect = state_folder("prefect", environ)  # not shared: a fresh private folder instead
    assert not prefect.is_relative_to(attacker) and prefect.stat().st_mode & 0o777 == 0o700

    env = {**environ, "XDG_STATE_HOME": ""}
    done = gardener("prune", str(library), "--today", "2026-03-01", env=env)
    assert done.returncode == 2, done.stderr
    assert "is a symbolic link: another user may have put it there" in done.stderr
    assert list(attacker.iterdir()) == []  # no lock file, no Prefect home planted there

    fallback.unlink()
    fallback.mkdir(mode=0o777)
    fallback.chmod(0o777)  # a folder others can write: they could swap the lock file
    with pytest.raises(UnsafeFolderError, match="can be written by others"):
        lock_path(library, environ)
    if os.getuid() == 0:  # only root can give a folder away
        fallback.chmod(0o700)
        os.chown(fallback, 12345, 12345)
        with pytest.raises(UnsafeFolderError, match="belongs to user id 12345"):
            lock_path(library, environ)
    shutil.rmtree(fallback)
    path = lock_path(library, environ)  # nothing planted: made mode 700 and used
    assert path.parent == fallback / "locks" and fallback.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize(("slug", "named"), [
    ("adaptive\\u202Efacilitation", "U+202E (right-to-left override)"),
    ("adaptive\\u200Bfacilitation", "U+200B (zero width space)"),
    ("adaptive\\u200Dfacilitation", "U+200D (zero width joiner)"),
    ("adaptive\\u2060facilitation", "U+2060 (word joiner)"),
    ("\\uFEFFadaptive-facilitation", "U+FEFF (zero width no-break space)"),
    ("@security-team", "starts with '@'"),
])
def test_invisible_and_mention_slugs_are_refused_by_name(tmp_path: Path, slug: str,
                                                         named: str) -> None:
    from gardener.library.load import load

    lib = tmp_path / "lib"
    lib.mkdir()
    text = (ROOT / "patterns" / "adaptive-facilitation.md").read_text(encoding="utf-8")
    hostile = text.replace("slug: adaptive-facilitation", f'slug: "{slug}"', 1)
    assert hostile != text
    (lib / "p.md").write_text(hostile, encoding="utf-8")
    loaded = load(lib)
    assert loaded.entries == []
    (error,) = loaded.errors
    assert str(error).startswith(f"{lib / 'p.md'}:")
    assert named in str(error) and "refusing the pattern" in str(error), str(error)
    result = runner.invoke(app, ["check", str(lib)])
    assert result.exit_code == 1 and named in " ".join(result.stdout.split())
