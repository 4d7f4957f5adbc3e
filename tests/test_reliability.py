"""Never lose a byte: ``bench/reliability.py``'s scenarios, small, and the guards they rely on.

The passes run the real ``gardener run`` command in this process (Typer's runner, so every
test shares one Prefect server), except the crash test, which must SIGKILL a process of its
own. The 300-pattern versions and the table in docs/reliability.md come from the benchmark.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from gardener.cli.main import app
from gardener.endpoint.client import LLM, scrub
from gardener.endpoint.settings import LLMSettings
from gardener.library.document import ReadError, parse_front_matter, read
from gardener.library.load import Entry, escape_of, load, max_file_bytes, read_entry
from gardener.library.state import load_state
from gardener.library.write import ConflictError, leftovers, remove_leftovers, write_atomic
from gardener.model import Garden, Link, Status
from gardener.pipeline.options import GardenOptions
from gardener.pipeline.prefect import runtime
from gardener.pipeline.prefect.flows import run_garden
from gardener.steps.passes import Change, apply, garden_entry
from gardener.testing import reliability as rel
from gardener.testing.fake_openai import FAULT_KINDS, FakeOpenAI, Faults, invented_links, raw
from gardener.testing.libraries import generate
from gardener.testing.responders import grounded_responder

runner = CliRunner()


def in_process(args: list[str], env: Mapping[str, str | None]) -> tuple[int, str]:
    """``gardener`` in this process: the same command, without a new Prefect each time."""
    result = runner.invoke(app, args, env=dict(env), catch_exceptions=False)
    return result.exit_code, result.stdout + result.stderr


@pytest.fixture
def work(tmp_path: Path) -> Path:
    return tmp_path


def _pattern(slug: str, extra: str = "", body: str = "Body.\n") -> str:
    return f"---\nslug: {slug}\ntitle: {slug.title()}\n{extra}---\n{body}"


# ---------------------------------------------------------------------------------------------
# The fault server


def test_faults_are_seeded_counted_and_every_kind_misbehaves() -> None:
    first, second = Faults(rate=0.5, seed=3), Faults(rate=0.5, seed=3)
    drawn = [first.draw() for _ in range(200)]
    assert drawn == [second.draw() for _ in range(200)]
    assert set(drawn) == {None, *FAULT_KINDS}
    assert sum(first.snapshot().values()) == 200
    assert first.snapshot()["ok"] == drawn.count(None)
    with pytest.raises(ValueError, match="unknown fault kinds"):
        Faults(rate=0.1, kinds=("teapot",))

    with FakeOpenAI(responder=grounded_responder,
                    faults=Faults(rate=1.0, kinds=("invented",))) as fake:
        reply = httpx.post(f"{fake.url}/chat/completions", json={
            "model": "m", "messages": [{"role": "user", "content": "hi"}]}, timeout=5)
        assert fake.fault_counts() == {"invented": 1}
        assert httpx.get(f"{fake.url[:-3]}/_fake/faults", timeout=5).json() == {"invented": 1}
    content = json.loads(reply.json()["choices"][0]["message"]["content"].strip("`json\n"))
    assert [link["target"] for link in content["inferred_links"]] == ["invented-pattern-0"]
    assert invented_links({"inferred_links": []})["inferred_links"][0]["target"].startswith(
        "invented-")


def test_a_server_that_echoes_credentials_does_it_in_errors_too() -> None:
    with FakeOpenAI(echo_auth=True, faults=Faults(rate=1.0, kinds=("503",))) as fake:
        reply = httpx.post(f"{fake.url}/chat/completions", json={"model": "m", "messages": []},
                           headers={"Authorization": "Bearer sk-echo-me-0123456789"}, timeout=5)
    assert reply.status_code == 503 and "sk-echo-me-0123456789" in reply.text


# ---------------------------------------------------------------------------------------------
# Faults, retries, deadlines


def test_a_pass_at_20_percent_faults_gardens_or_explains_every_pattern(work: Path) -> None:
    result = rel.fault_pass(in_process, work, patterns=40, rate=0.2, seed=2,
                            spec=rel.RunSpec(concurrency=8), slow_s=2.0)
    assert sum(v for k, v in result.faults.items() if k != "ok") >= 5
    for run in result.runs:
        assert run.unexplained == []
        assert run.check.sound, (run.check.corrupt, run.check.ungrounded)
        assert run.check.leftovers == []
        assert run.check.original + run.check.gardened == 40
    assert result.done, result.runs[-1]


def test_a_dead_endpoint_fails_every_pattern_after_a_bounded_number_of_requests(
        work: Path) -> None:
    spec = rel.RunSpec(concurrency=2, max_attempts=2, retries=0, give_up_after=3)
    result = rel.dead_endpoint(in_process, work, patterns=20, spec=spec)
    assert result.totals["failed"] == 20 and result.check.original == 20
    # At most give_up_after + concurrency patterns are asked, each request tried twice.
    assert result.requests <= (3 + 2) * 2
    assert result.reasons["not asked (run halted)"] >= 20 - (3 + 2)


def test_after_the_deadline_nothing_is_asked_and_the_next_run_finishes(work: Path) -> None:
    result = rel.deadline(in_process, work, patterns=10, latency=0.4,
                          spec=rel.RunSpec(concurrency=2, deadline_s=1))
    assert 0 < result.totals["changed"] < 10
    assert result.reasons == {"not asked (run halted)": result.totals["failed"]}
    assert result.totals["changed"] + result.totals["failed"] == 10
    assert result.second is not None
    assert result.second["changed"] == result.totals["failed"]
    assert result.second["skipped"] == result.totals["changed"]
    assert result.check.gardened == 10 and result.check.sound


def test_a_pattern_past_its_time_budget_gets_no_more_retries(work: Path) -> None:
    library = work / "lib"
    slug = generate(library, 2)[0].stem
    with FakeOpenAI(faults=Faults(rate=1.0, kinds=("503",))) as fake:
        settings = LLMSettings(base_url=fake.url, api_key="k", model="fake-model",
                               mode="json_schema", max_attempts=1)
        options = GardenOptions(only=(slug,), retries=5, retry_delay_s=0.0,
                                pattern_budget_s=0.001)
        with LLM(settings) as llm:
            (outcome,) = run_garden(library, options, llm=llm)
        assert len(fake.chat_requests) == 1  # five Prefect retries allowed, none started
    assert outcome.status is Status.FAILED and outcome.requests == 1
    assert "HTTP 503" in (outcome.error or "") and "its budget is 0.001 s" in (outcome.error or "")


def test_an_answer_whose_every_item_is_refused_is_an_answer_not_a_failure(work: Path) -> None:
    """A tiny model's junk (an id from the prompt's instructions, digit runs, a task field)
    is refused item by item; what is left is "nothing to add", and the pattern is done."""
    library = work / "lib"
    generate(library, 2)
    junk = raw(json.dumps({
        "entities": [{"id": "kebab-case", "type": "concept", "label": "kebab-case",
                      "relevance_pct": 90},
                     {"id": "distribution-style-system-123456789012345", "type": "concept",
                      "label": "Distribution style", "relevance_pct": 80}],
        "communities": [{"id": "domain", "label": "domain", "confidence_pct": 70}],
        "inferred_links": [],
    }))
    with FakeOpenAI(responder=grounded_responder) as fake:
        fake.script(junk, junk, junk)  # the first pattern's answer and its re-asks
        settings = LLMSettings(base_url=fake.url, api_key="k", model="fake-model",
                               mode="json_schema")
        options = GardenOptions(concurrency=1, retries=0)
        with LLM(settings) as llm:
            outcomes = sorted(run_garden(library, options, llm=llm), key=lambda o: o.path)
    assert [o.status for o in outcomes if o.status is Status.FAILED] == []
    refused = next(o for o in outcomes if o.detail.salvaged)
    assert refused.added == [] and any("kebab-case" in d for d in refused.detail.dropped)
    assert len(load_state(library)) == 2


def test_a_proposal_salvaged_to_nothing_fails_and_is_asked_again(work: Path) -> None:
    library = work / "lib"
    generate(library, 3)
    bad = raw('{"entities": "several"}')
    with FakeOpenAI(responder=grounded_responder) as fake:
        fake.script(bad, bad, bad)  # the first pattern's answer and both re-asks
        settings = LLMSettings(base_url=fake.url, api_key="k", model="fake-model",
                               mode="json_schema")
        options = GardenOptions(concurrency=1, retries=0)
        with LLM(settings) as llm:
            outcomes = sorted(run_garden(library, options, llm=llm), key=lambda o: o.path)
    failed = [o for o in outcomes if o.status is Status.FAILED]
    assert len(failed) == 1 and "no usable answer" in (failed[0].error or "")
    assert failed[0].requests == 3
    state = load_state(library)
    assert failed[0].slug not in state and len(state) == 2


# ---------------------------------------------------------------------------------------------
# Crashes


def test_write_atomic_killed_at_random_leaves_the_old_or_the_new_file(work: Path) -> None:
    result = rel.kill_writes(work, kills=12, seed=5, sizes=(200_000, 500_000))
    assert result.torn == 0
    assert result.cleaned >= result.temp_left


def test_a_killed_run_leaves_whole_files_and_the_next_run_finishes(work: Path) -> None:
    result = rel.crash_pass(in_process, work, patterns=40, kills=1, seed=4,
                            prefect_home=work / "prefect-home",
                            spec=rel.RunSpec(concurrency=4),
                            latency=0.1)
    kill = result.kills[0]
    assert kill.requests > 0 and kill.state_ok
    assert not kill.orphans  # Prefect's temporary server ended with it
    assert kill.check.sound and kill.check.original + kill.check.gardened == 40
    assert result.final.sound and result.final.gardened == 40 and result.final.leftovers == []
    assert result.resumed["failed"] == 0 and result.recorded == 40


SERVER_STARTER = """
import subprocess, sys, time
from gardener.pipeline.prefect.reaper import end_with_this_process
server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
end_with_this_process(server.pid)
print(server.pid, flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"  # not a zombie


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to see zombies")
def test_a_server_ends_with_the_process_that_started_it_even_after_sigkill() -> None:
    starter = subprocess.Popen([sys.executable, "-c", SERVER_STARTER], stdout=subprocess.PIPE,
                               text=True, env={**os.environ, "PYTHONPATH": str(rel.ROOT)})
    assert starter.stdout is not None
    server = int(starter.stdout.readline())
    assert _alive(server)
    starter.send_signal(signal.SIGKILL)
    starter.wait()
    starter.stdout.close()
    for _ in range(50):
        if not _alive(server):
            break
        time.sleep(0.1)
    assert not _alive(server)


def test_a_cut_state_file_is_reported_kept_and_the_run_goes_on(work: Path) -> None:
    result = rel.corrupt_state(in_process, work, patterns=4, spec=rel.RunSpec())
    assert result.problems and "not valid JSON" in result.problems[0]
    assert result.problems[0].split(":")[0].endswith("state.json")
    assert result.backup
    assert result.totals["failed"] == 0 and result.recorded == 4


def test_leftovers_are_only_our_temporary_files(tmp_path: Path) -> None:
    mine = [tmp_path / ".a.md.k2j4h5g6.tmp", tmp_path / ".gardener" / ".state.json.abcd_123.tmp"]
    theirs = [tmp_path / "notes.tmp", tmp_path / ".draft.md.tmp", tmp_path / ".a.md.short.tmp",
              tmp_path / "a.md"]
    for path in mine + theirs:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x", encoding="utf-8")
    assert leftovers(tmp_path) == sorted(mine)
    assert remove_leftovers(tmp_path) == sorted(mine)
    assert all(p.exists() for p in theirs) and not any(p.exists() for p in mine)


# ---------------------------------------------------------------------------------------------
# Concurrent edits


def test_a_file_edited_during_the_pass_is_a_conflict_and_gardened_next_time(work: Path) -> None:
    result = rel.concurrent_edits(in_process, work, patterns=10, edits=3, seed=1,
                                  spec=rel.RunSpec(concurrency=4))
    assert len(result.edited) == 3
    assert set(result.first.values()) == {"conflict"} and result.untouched == 3
    assert result.recorded_after_first == []
    assert set(result.others_first) == {"changed"}
    assert set(result.second.values()) == {"changed"} and result.kept == 3
    assert result.check.sound and result.check.gardened == 10


def test_write_atomic_refuses_to_overwrite_an_edit(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_text("as read\n", encoding="utf-8")
    path.write_text("edited by a person\n", encoding="utf-8")
    with pytest.raises(ConflictError, match="changed on disk since the pass read it"):
        write_atomic(path, "gardened\n", expected="as read\n")
    assert path.read_text(encoding="utf-8") == "edited by a person\n"
    assert leftovers(tmp_path) == []
    write_atomic(path, "gardened\n", expected="edited by a person\n")
    assert path.read_text(encoding="utf-8") == "gardened\n"


def _entry(path: Path) -> Entry:
    entry = read_entry(path)
    assert entry is not None
    return entry


def test_apply_reports_a_conflict_and_refuses_a_path_outside_the_root(tmp_path: Path) -> None:
    path = tmp_path / "lib" / "a.md"
    path.parent.mkdir()
    path.write_text(_pattern("a"), encoding="utf-8")
    entry = _entry(path)
    proposed = Garden(inferred_links=(Link(target="b", type="enables", confidence=0.9,
                                           reason="Both are about b"),))
    change = garden_entry(entry, proposed, slugs={"a", "b"}, today=dt.date(2026, 2, 19))
    assert change.new_text is not None
    path.write_text(_pattern("a", body="Edited.\n"), encoding="utf-8")
    conflict = apply(change, dry_run=False, root=path.parent)
    assert conflict.status is Status.CONFLICT and "changed on disk" in (conflict.error or "")
    other = tmp_path / "elsewhere"
    other.mkdir()
    outside = apply(Change(change.outcome, change.old_text, change.new_text), dry_run=False,
                    root=other)
    assert outside.status is Status.FAILED and "outside the library" in (outside.error or "")
    assert path.read_text(encoding="utf-8") == _pattern("a", body="Edited.\n")


# ---------------------------------------------------------------------------------------------
# Hostile input


def test_hostile_inputs_are_refused_or_contained(work: Path) -> None:
    result = rel.hostile(in_process, work, patterns=45, spec=rel.RunSpec())
    assert [row.name for row in result.rows if not row.ok] == []
    assert result.outside_untouched
    assert result.check.sound and result.check.leftovers == []
    assert result.offered_to_injected < result.library_slugs


@pytest.mark.parametrize(("yaml_text", "tag"), [
    ("x: !!python/object:os.system {}\n", "!!python/object:os.system"),
    ("x: !!python/name:os.system\n", "!!python/name:os.system"),
    ("x: !!binary aGVsbG8=\n", "!!binary"),
    ("x: !!set {a, b}\n", "!!set"),
    ("x: !!omap [a: 1]\n", "!!omap"),
    ("x: !local thing\n", "!local"),
    ("list:\n  - ok\n  - !!python/tuple [1, 2]\n", "!!python/tuple"),
])
def test_front_matter_with_a_foreign_tag_is_refused_by_line(yaml_text: str, tag: str) -> None:
    with pytest.raises(ReadError, match=f"YAML tag '{tag}'") as caught:
        parse_front_matter(f"slug: s\n{yaml_text}", "p.md", line_offset=1)
    assert caught.value.line == 2 + yaml_text.count("\n")


def test_plain_tags_still_read() -> None:
    data, _ = parse_front_matter("base: &b {a: 1}\nmore: *b\nc: !!str 2\n"
                                 "when: 2026-01-01\nn: !!int '3'\nf: !!float 1\n")
    assert data["more"] == {"a": 1} and data["c"] == "2" and data["n"] == 3
    assert data["when"] == dt.date(2026, 1, 1) and data["f"] == 1.0


def test_binary_oversized_and_symlinked_files_are_refused_by_name(tmp_path: Path) -> None:
    library = tmp_path / "lib"
    library.mkdir()
    (library / "ok.md").write_text(_pattern("ok"), encoding="utf-8")
    (library / "zeros.md").write_bytes(b"\x00" * 64)
    (library / "big.md").write_text(_pattern("big", body="x" * 5000), encoding="utf-8")
    outside = tmp_path / "outside.md"
    outside.write_text(_pattern("outside"), encoding="utf-8")
    (library / "link.md").symlink_to(outside)
    (library / "inside.md").symlink_to(library / "ok.md")
    (library / "dir").symlink_to(tmp_path, target_is_directory=True)
    lib = load(library, max_bytes=4096)
    errors = {e.path.name: str(e) for e in lib.errors}
    assert errors == {
        "big.md": f"{library / 'big.md'}: the file is larger than 4,096 bytes, too large for a "
                  "pattern (GARDENER_MAX_FILE_BYTES raises the limit); refusing to read it",
        "link.md": f"{library / 'link.md'}: a symlink to {outside}, outside the library "
                   f"{library}; refusing to read or write it",
        "zeros.md": f"{library / 'zeros.md'}:1: a binary file, not Markdown text: NUL byte at "
                    "offset 0",
    }
    assert sorted(e.pattern.path.name for e in lib.entries) == ["inside.md", "ok.md"]
    with pytest.raises(ReadError, match="larger than 4,096 bytes"):
        read(library / "big.md", max_bytes=4096)


def test_escape_of_finds_every_way_out_of_the_library(tmp_path: Path) -> None:
    library = tmp_path / "lib"
    (library / "sub").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.md").write_text("x", encoding="utf-8")
    (library / "ok.md").write_text("ok", encoding="utf-8")
    (library / "sub" / "deep.md").write_text("deep", encoding="utf-8")
    (library / "out").symlink_to(outside, target_is_directory=True)
    (library / "sub" / "link.md").symlink_to(outside / "x.md")
    (library / "alias.md").symlink_to(library / "ok.md")
    assert escape_of(library, library / "ok.md") is None
    assert escape_of(library, library / "sub" / "deep.md") is None
    assert escape_of(library, library / "alias.md") is None  # a link that stays inside
    assert escape_of(library, library / "new.md") is None  # not there yet, inside
    assert escape_of(library, library / "out" / "x.md") == outside / "x.md"
    assert escape_of(library, library / "out" / "new.md") == outside / "new.md"
    assert escape_of(library, library / "sub" / "link.md") == outside / "x.md"
    assert escape_of(library, library / ".." / "outside" / "x.md") == outside / "x.md"
    assert escape_of(library / "sub" / "link.md", library / "sub" / "link.md") == outside / "x.md"


def test_the_size_limit_comes_from_the_environment() -> None:
    assert max_file_bytes({}) == 2 * 1024 * 1024
    assert max_file_bytes({"GARDENER_MAX_FILE_BYTES": "1000"}) == 1000
    for bad in ("ten", "0", "-5"):
        with pytest.raises(ValueError, match="GARDENER_MAX_FILE_BYTES"):
            max_file_bytes({"GARDENER_MAX_FILE_BYTES": bad})


def test_retry_bounds_come_from_the_environment() -> None:
    settings = LLMSettings.from_env(environ={
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "GARDENER_TIMEOUT_S": "2.5",
        "GARDENER_MAX_ATTEMPTS": "3", "GARDENER_MAX_WAIT_S": "30"})
    assert (settings.timeout_s, settings.max_attempts, settings.max_wait_s) == (2.5, 3, 30.0)
    with pytest.raises(ValueError, match="GARDENER_MAX_ATTEMPTS='two' is not a whole number"):
        LLMSettings.from_env(environ={"GARDENER_MAX_ATTEMPTS": "two"})
    with pytest.raises(ValueError, match="GARDENER_TIMEOUT_S must be positive"):
        LLMSettings.from_env(environ={"GARDENER_TIMEOUT_S": "0"})


# ---------------------------------------------------------------------------------------------
# Secrets


def test_no_secret_reaches_any_artifact(work: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    home = runtime.ensure().home

    def logged() -> Iterator[tuple[str, str]]:
        yield "log records", caplog.text
        yield "log records with arguments", "\n".join(
            f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)

    result = rel.secret_pass(in_process, work, patterns=6, spec=rel.RunSpec(concurrency=4),
                             prefect_home=home, extra_texts=logged)
    assert result.hits == []
    assert result.runs == [0, 1]  # the second run's key is refused: every pattern fails
    assert sum(v for k, v in result.faults.items() if k != "ok") > 0
    assert result.artifacts > 20
    assert any((work / "secret-fixtures").rglob("*.json"))


def test_scrub_masks_github_tokens() -> None:
    token = rel.FAKE_GITHUB_TOKEN
    assert scrub(f"token {token} and github_pat_{'A' * 30}") == "token ghp_*** and github_pat_***"
