"""The GitHub Action, run without GitHub: ``action.yml``'s own steps, in order, with bash.

The repository is a clone of a local bare repository (its ``origin``, as after
actions/checkout with fetch-depth 0), GitHub's REST API is
``gardener/testing/fake_github.py`` on 127.0.0.1 (``GITHUB_API_URL``, as Actions sets it) and
the model is ``gardener/testing/fake_openai.py``.
The ``uses:`` steps (setup-python, pip's and the answers' caches) are GitHub's own actions:
checked to be the expected ones and stood in for (the interpreter is this .venv's, the cache
folder simply stays between runs). The install step is not run with them: it would build and
install this checkout into the interpreter on PATH, which the shared .venv must not get; its
own test checks that its pins are the versions this .venv runs (examples/github/
constraints.txt) and installs it in a throwaway venv when GARDENER_TEST_INSTALL=1, saying it
skipped otherwise.

The example workflow (examples/github/gardener.yml) is run as written: its ``uses:`` is
resolved to this checkout (the ref is this version's tag), its ``with:`` evaluated as a
scheduled run evaluates it (no dispatch inputs), its library folder and concurrency group
used as they are; the job summary it writes is read back.

Each run is a fresh clone, as each workflow run is: the first opens one pull request with
the configured labels and the footer; after another change on main the second updates that
pull request (no second one); a pull request closed without merging turns into rejections in
``.gardener/decisions.yaml`` on the next run, never proposed again; and once that is merged, a
run with nothing to change opens nothing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from graph_library import Spec
from graph_library import write as write_library
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from gardener.endpoint.settings import DEFAULT_MODEL
from gardener.library import decisions
from gardener.library.document import read_text
from gardener.library.garden import read_garden
from gardener.review import learned
from gardener.testing.fake_github import FakeGitHub
from gardener.testing.fake_openai import FakeOpenAI
from gardener.testing.libraries import trust_the_model
from gardener.testing.responders import asked_slug, grounded_responder

ROOT = Path(__file__).resolve().parents[1]
ACTION = ROOT / "action.yml"
WORKFLOW = ROOT / "examples" / "github" / "gardener.yml"
CONSTRAINTS = ROOT / "examples" / "github" / "constraints.txt"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
    "version"]
SPECS = (
    Spec("shared-meals", summary="Commons stewards share meals so that practice of care "
         "in the commons becomes a weekly habit"),
    Spec("tool-library", summary="A commons of shared tools where stewards lend and mend "
         "tools as a practice of care"),
    Spec("repair-cafe", summary="Stewards of the commons meet to repair things together, a "
         "practice of care and of shared skill"),
    Spec("seed-exchange", summary="Gardeners of the commons exchange seeds each season, a "
         "practice of shared stewardship and care"),
)
"""Patterns with no human relationships: every link the model proposes is the gardener's."""
NAMES = tuple(f"{spec.slug}.md" for spec in SPECS)
TOKEN = "ghs_fake-token"
REPOSITORY = "commons/library"
BRANCH = "gardener/garden"
USES = {"actions/setup-python@v5", "actions/cache/restore@v4", "actions/cache/save@v4"}
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
CONFIG = """\
[review]
labels = ["gardener", "graph"]

[schedule]
garden = "0 6 * * 1"
"""


def git(where: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=where, capture_output=True, check=True)
    return done.stdout.decode()


def action() -> dict[str, Any]:
    data = yaml.safe_load(ACTION.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def substitute(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each ``${{ X }}`` replaced by ``values[X]``; an expression the test does
    not know fails it, so a new one in action.yml is never run unexamined."""
    def one(m: re.Match[str]) -> str:
        if m.group(1) not in values:
            pytest.fail(f"action.yml uses ${{{{ {m.group(1)} }}}}, unknown to this test")
        return values[m.group(1)]
    return EXPRESSION.sub(one, text)


def contexts(inputs: Mapping[str, str], temp: Path) -> dict[str, str]:
    """The expressions' values: every input (its default unless given), and the few
    ``github.*``/``runner.*`` values the steps read."""
    declared = action()["inputs"]
    unknown = set(inputs) - set(declared)
    assert not unknown, f"not inputs of action.yml: {unknown}"
    values = {"github.token": TOKEN, "github.action_path": str(ROOT),
              "github.event.schedule": "0 6 * * 1", "github.run_id": "1",
              "runner.temp": str(temp)}
    for name, spec in declared.items():
        default = str(spec.get("default", ""))
        values[f"inputs.{name}"] = inputs.get(name, substitute(default, values))
    return values


def steps() -> list[dict[str, Any]]:
    data = action()
    assert data["runs"]["using"] == "composite"
    found = data["runs"]["steps"]
    assert {s["uses"] for s in found if "uses" in s} == USES
    return [s for s in found if "run" in s]


def outputs(path: Path) -> dict[str, str]:
    """A step's ``$GITHUB_OUTPUT`` file (``name=value`` lines) as a mapping."""
    if not path.exists():
        return {}
    return dict(line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines()
                if "=" in line)


def run_steps(workdir: Path, env: Mapping[str, str], inputs: Mapping[str, str],
              temp: Path) -> subprocess.CompletedProcess[str]:
    """Every ``run:`` step of the action, as the runner runs them (``bash -e -o pipefail``),
    in ``workdir``, each step's outputs readable by the next as ``steps.ID.outputs.NAME``;
    the install step is skipped (see the module's docstring). The last result, or the
    first that failed."""
    values = contexts(inputs, temp)
    done: subprocess.CompletedProcess[str] | None = None
    for step in steps():
        assert step["shell"] == "bash"
        if step.get("id") == "install":  # the gardener under test is this .venv's
            continue
        assert "if" not in step, "a run step's condition would need evaluating here"
        output = temp / f"output-{step.get('id')}"
        output.unlink(missing_ok=True)
        step_env = {**env, "GITHUB_OUTPUT": str(output),
                    **{k: substitute(str(v), values) for k, v in (step.get("env") or {}).items()}}
        script = temp / f"step-{step.get('id')}.sh"
        script.write_text(substitute(step["run"], values), encoding="utf-8")
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail",
                               str(script)], cwd=workdir, env=step_env, capture_output=True,
                              text=True, timeout=600, check=False)
        if done.returncode != 0:
            return done
        values.update({f"steps.{step.get('id')}.outputs.{k}": v
                       for k, v in outputs(output).items()})
    assert done is not None
    return done


# ---------------------------------------------------------------------------------------------
# The world: origin, GitHub, the model


@pytest.fixture
def library_dir() -> str:
    """The library's folder in the repository (the example workflow's test says its own)."""
    return "lib"


@pytest.fixture
def origin(tmp_path: Path, library_dir: str) -> Path:
    """A bare repository holding a small library (under ``lib/``) with a gardener.toml."""
    seed = tmp_path / "seed"
    write_library(seed / library_dir, SPECS)
    (seed / "gardener.toml").write_text(CONFIG, encoding="utf-8")
    trust_the_model(seed / library_dir, DEFAULT_MODEL)  # the fake model's links, as it gives them
    git(seed, "init", "-q", "-b", "main")
    git(seed, "-c", "user.name=A Person", "-c", "user.email=person@example.org", "add", "-A")
    git(seed, "-c", "user.name=A Person", "-c", "user.email=person@example.org", "commit",
        "-q", "-m", "the library")
    bare = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(seed), str(bare))
    return bare


def responder(body: dict[str, Any]) -> dict[str, Any]:
    """The bench's grounded answer, each link quoting the pattern's summary as evidence."""
    answer = grounded_responder(body)
    summary = {spec.slug: spec.summary for spec in SPECS}.get(asked_slug(body) or "", "")
    for link in answer.get("inferred_links", []):
        link["evidence"] = " ".join(summary.split()[:6])
    return answer


@pytest.fixture
def model() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(responder=responder) as server:
        yield server


@pytest.fixture
def github(origin: Path) -> Iterator[FakeGitHub]:
    with FakeGitHub(origin, token=TOKEN, repository=REPOSITORY) as server:
        yield server


class Runner:
    """Workflow runs: a fresh clone of origin each time, the action's steps in it."""

    def __init__(self, tmp: Path, origin: Path, model: FakeOpenAI, github: FakeGitHub,
                 library: str = "lib") -> None:
        self.tmp, self.origin, self.runs, self.library = tmp, origin, 0, library
        self.summary = tmp / "summary-0.md"
        self.temp = tmp / "runner-temp"  # survives between runs, as the restored cache does
        self.temp.mkdir()
        home = tmp / "home"
        home.mkdir()
        keep = {k: v for k, v in os.environ.items()
                if k in ("LANG", "LC_ALL", "TMPDIR", "XDG_STATE_HOME")}
        self.env = {**keep, "HOME": str(home),
                    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                    "GIT_CONFIG_NOSYSTEM": "1",
                    "GITHUB_ACTIONS": "true", "GITHUB_API_URL": github.url,
                    "GITHUB_SERVER_URL": "http://127.0.0.1:9", "GITHUB_REPOSITORY": REPOSITORY,
                    "OPENAI_BASE_URL": model.url, "OPENAI_API_KEY": "test-key",
                    "NO_PROXY": "127.0.0.1,localhost", "COLUMNS": "200",
                    # two shared cores: Prefect's temporary server may take a while to start
                    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180"}
        if "XDG_STATE_HOME" not in keep:
            self.env["XDG_STATE_HOME"] = str(Path.home() / ".local" / "state")

    def clone(self) -> Path:
        self.runs += 1
        work = self.tmp / f"run-{self.runs}"
        git(self.tmp, "clone", "-q", str(self.origin), str(work))
        return work

    def __call__(self, **inputs: str) -> subprocess.CompletedProcess[str]:
        return self.run({"library": self.library, **inputs})

    def run(self, inputs: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        """One workflow run of the action with these inputs; its job summary is kept in
        ``self.summary``."""
        work = self.clone()
        self.summary = self.tmp / f"summary-{self.runs}.md"
        return run_steps(work, {**self.env, "GITHUB_STEP_SUMMARY": str(self.summary)}, inputs,
                         self.temp)

    def push_change(self) -> None:
        """A person's commit on main: one pattern gains a paragraph."""
        work = self.clone()
        path = work / self.library / NAMES[0]
        path.write_text(path.read_text(encoding="utf-8") + "\nA later thought.\n",
                        encoding="utf-8")
        git(work, "-c", "user.name=A Person", "-c", "user.email=person@example.org",
            "commit", "-q", "-am", "a person's edit")
        git(work, "push", "-q", "origin", "main")


@pytest.fixture
def runner(tmp_path: Path, origin: Path, model: FakeOpenAI, github: FakeGitHub,
           library_dir: str) -> Runner:
    return Runner(tmp_path, origin, model, github, library_dir)


def links_at(bare: Path, rev: str) -> set[tuple[str, str]]:
    """Every inferred link (slug, target) in the library at ``rev`` of origin."""
    out: set[tuple[str, str]] = set()
    for name in NAMES:
        doc = read_text(git(bare, "show", f"{rev}:lib/{name}"), name)
        assert doc is not None
        garden = read_garden(doc)[0]
        slug = name.removesuffix(".md")
        out |= {(slug, lk.target) for lk in (garden.inferred_links if garden else ())}
    return out


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


# ---------------------------------------------------------------------------------------------
# The action


def test_the_actions_steps_open_update_learn_from_a_closed_pr_and_stay_quiet(
        runner: Runner, github: FakeGitHub, origin: Path) -> None:
    # 1. the first run opens one pull request, labelled from gardener.toml, with the footer
    said = ok(runner())
    assert "pull request #1 created" in said
    (pr,) = github.pulls.values()
    assert (pr.head, pr.base, pr.state) == (BRANCH, "main", "open")
    assert pr.labels == ["gardener", "graph"]
    assert "### Configuration" in pr.body
    assert "cron `0 6 * * 1` (UTC)" in pr.body
    assert "gardener reject SLUG TARGET --library lib" in pr.body
    assert "close this pull request without merging" in pr.body
    assert "Disable workflow" in pr.body
    assert git(origin, "rev-parse", f"{BRANCH}^").strip() == git(origin, "rev-parse",
                                                                   "main").strip()
    first = links_at(origin, BRANCH)
    assert first

    # 2. after a person's change on main, the next run updates the same pull request
    runner.push_change()
    before = len(github.writes())
    said = ok(runner())
    assert "pull request #1 updated" in said
    assert list(github.pulls) == [1]
    new = github.writes()[before:]
    assert [(c.method, c.path) for c in new] == [
        ("PATCH", f"/repos/{REPOSITORY}/pulls/1"),
        ("POST", f"/repos/{REPOSITORY}/issues/1/labels")]
    assert git(origin, "rev-parse", f"{BRANCH}^").strip() == git(origin, "rev-parse",
                                                                   "main").strip()
    proposed = links_at(origin, BRANCH)
    closed_head = git(origin, "rev-parse", BRANCH).strip()

    # 3. closed without merging: its links become rejections and are not proposed again
    github.close(1)
    said = ok(runner())
    assert "rejected (pull request #1 closed without merging)" in said
    assert "pull request #2 created" in said
    ledger = decisions.parse(git(origin, "show", f"{BRANCH}:lib/.gardener/decisions.yaml"),
                             "decisions.yaml")
    from_pr = {(d.slug, d.target) for d in ledger.decisions if d.source == "pull-request"}
    assert from_pr == proposed
    assert {d.commit for d in ledger.decisions} == {closed_head}
    assert all("#1 was closed without merging" in d.reason for d in ledger.decisions)
    assert not links_at(origin, BRANCH) & proposed
    assert "Rejections learned" in github.pulls[2].body

    # 4. merged, the next run has nothing to change: no pull request opened or updated,
    #    and the closed one (already in the ledger) is not read again
    github.merge(2)
    before = len(github.writes())
    said = ok(runner())
    assert "nothing new to propose, so no pull request was opened or updated" in said
    assert github.writes()[before:] == []
    assert "rejected (pull request #1" not in said
    assert [p.state for p in github.pulls.values()] == ["closed", "closed"]


def test_max_patterns_asks_that_many_and_leaves_the_rest_for_the_next_run(
        runner: Runner, github: FakeGitHub) -> None:
    done = runner(**{"max-patterns": "1", "answers-cache": "false"})
    said = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr)
    assert done.returncode in (0, 3), said
    assert "--max-patterns 1" in said
    (pull,) = github.pulls.values()
    assert "1 pattern gardened" in pull.body and len(NAMES) > 1


def test_only_and_labels_inputs_reach_the_gardener(runner: Runner, github: FakeGitHub,
                                                   origin: Path) -> None:
    slug = NAMES[1].removesuffix(".md")
    said = ok(runner(only=f" {slug} ", labels="graph , weekly", **{"answers-cache": "false"}))
    assert f"--only {slug}" in said
    (pr,) = github.pulls.values()
    assert pr.labels == ["graph", "weekly"]
    changed = git(origin, "diff", "--name-only", "main", BRANCH).split()
    # the one pattern asked (the pass's report travels beside it, under .gardener/)
    assert [p for p in changed if p.endswith(".md") and "/.gardener/" not in p] == [
        f"lib/{NAMES[1]}"]
    assert not (runner.temp / "graph-gardener" / "answers").exists()


def runtime_pins() -> dict[str, str]:
    """graph-gardener's runtime dependencies, all the way down, at the versions installed
    here (markers evaluated for this interpreter, extras followed): what constraints.txt
    pins. The gardener itself is left out: the action installs it from its own checkout."""
    root = canonicalize_name("graph-gardener")
    pins: dict[str, str] = {}
    extras_seen: dict[str, set[str]] = {}
    todo: list[tuple[str, frozenset[str]]] = [("graph-gardener", frozenset())]
    while todo:
        name, extras = todo.pop()
        key = canonicalize_name(name)
        known = extras_seen.get(key)
        if known is not None and extras <= known:
            continue
        extras_seen[key] = (known or set()) | extras
        dist = metadata.distribution(name)
        if key != root:
            pins[key] = dist.version
        wanted = [{"extra": e} for e in sorted(extras_seen[key])] or [{"extra": ""}]
        for raw in dist.requires or []:
            req = Requirement(raw)
            if req.marker is None or any(req.marker.evaluate(env) for env in wanted):
                todo.append((req.name, frozenset(req.extras)))
    return dict(sorted(pins.items()))


CONSTRAINTS_HEADER = """\
# The dependency versions the GitHub Action (action.yml) installs graph-gardener with
# (pip --constraint): its runtime dependencies as this checkout tests them, Python 3.11 on
# Linux. tests/test_action.py checks them against the virtualenv; after a dependency change,
# rewrite this file with: PYTHONPATH=. .venv/bin/python tests/test_action.py
"""


def constraints_text() -> str:
    return CONSTRAINTS_HEADER + "".join(f"{k}=={v}\n" for k, v in runtime_pins().items())


def test_the_install_step_installs_the_actions_own_checkout_with_pinned_dependencies(
        tmp_path: Path) -> None:
    (install,) = [s for s in steps() if s.get("id") == "install"]
    assert install["env"] == {"GARDENER_ACTION_PATH": "${{ github.action_path }}"}
    run = " ".join(install["run"].replace("\\\n", " ").split())
    assert ('pip install --disable-pip-version-check --quiet --constraint '
            '"$GARDENER_ACTION_PATH/examples/github/constraints.txt" "$GARDENER_ACTION_PATH"'
            in run)
    # every runtime dependency pinned, at the version these tests ran with
    assert CONSTRAINTS.read_text(encoding="utf-8") == constraints_text()
    pinned = [line for line in CONSTRAINTS.read_text(encoding="utf-8").splitlines()
              if line and not line.startswith("#")]
    assert pinned and all(re.fullmatch(r"[a-z0-9-]+==[^=\s]+", line) for line in pinned)
    assert {"prefect", "openai", "instructor", "pydantic"} <= {p.split("==")[0] for p in pinned}
    # pip's cache: restored under a key made from the files that fix the install, saved on a
    # miss (setup-python's own cache cannot hash the action's files)
    found = action()["runs"]["steps"]
    ids = [s.get("id") or s.get("uses") for s in found]
    assert ids.index("pip") < ids.index("pip-cache") < ids.index("install")
    (pip,) = [s for s in found if s.get("id") == "pip"]
    assert "pyproject.toml" in pip["run"] and "constraints.txt" in pip["run"]
    (save,) = [s for s in found if s.get("uses") == "actions/cache/save@v4"
               and "steps.pip.outputs.dir" in str(s["with"]["path"])]
    assert save["with"]["key"] == "${{ steps.pip.outputs.key }}"
    if os.environ.get("GARDENER_TEST_INSTALL") != "1":
        pytest.skip("the install step builds and installs this checkout with its "
                    "dependencies (network, minutes); the other tests use the .venv's "
                    "editable install. GARDENER_TEST_INSTALL=1 runs it in a throwaway venv")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "GARDENER_ACTION_PATH": str(ROOT)}
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c",
                           substitute(install["run"], {})], env=env, check=True,
                          timeout=1200, capture_output=True, text=True)
    assert done.stdout.strip().endswith(f"gardener {VERSION}")
    frozen = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "freeze"],
                            capture_output=True, text=True, check=True).stdout
    got = {str(canonicalize_name(n)): v for n, v in
           (line.split("==", 1) for line in frozen.splitlines() if "==" in line)}
    assert {k: got.get(k) for k in runtime_pins()} == runtime_pins()


def test_an_unknown_expression_fails_the_substitution() -> None:
    with pytest.raises(pytest.fail.Exception):
        substitute("${{ secrets.OTHER }}", {"inputs.library": "lib"})


# ---------------------------------------------------------------------------------------------
# The example workflow


def workflow() -> dict[Any, Any]:
    flow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(flow, dict)
    return flow


OPERAND = re.compile(r"'(?P<text>[^']*)'|(?P<name>[a-z]+(?:\.[A-Za-z0-9_-]+)+)")


def evaluate(text: str, known: Mapping[str, str]) -> str:
    """A workflow value with its ``${{ ... }}`` expressions evaluated as Actions does for
    what this workflow uses: context values (absent ones are empty), quoted strings and
    ``||`` (the first non-empty operand). Any other expression fails the test."""
    def one(m: re.Match[str]) -> str:
        for operand in m.group(1).split("||"):
            found = OPERAND.fullmatch(operand.strip())
            if found is None:
                pytest.fail(f"the workflow uses ${{{{ {m.group(1)} }}}}, unknown to this test")
            name = found.group("name")
            if name is not None and name.split(".")[0] not in {"inputs", "vars", "secrets"}:
                pytest.fail(f"the workflow reads {name}, unknown to this test")
            value = known.get(name, "") if name is not None else found.group("text")
            if value:
                return value
        return ""
    return EXPRESSION.sub(one, text)


def the_gardener_step() -> dict[str, Any]:
    (job,) = workflow()["jobs"].values()
    checkout, gardener = job["steps"]
    assert checkout["uses"].startswith("actions/checkout@")
    return dict(gardener)


def test_the_example_workflow_has_what_the_action_needs() -> None:
    flow = workflow()
    on = flow[True] if True in flow else flow["on"]  # PyYAML reads a bare `on` as True
    assert on["schedule"][0]["cron"]
    dispatch = on["workflow_dispatch"]["inputs"]
    assert set(dispatch) >= {"only", "max-patterns", "budget-tokens"}
    declared = action()["inputs"]
    # a run by hand starts with the action's own bounds
    for name in ("max-patterns", "budget-tokens"):
        assert dispatch[name]["default"] == declared[name]["default"] != ""
    assert flow["permissions"] == {"contents": "write", "pull-requests": "write"}
    (job,) = flow["jobs"].values()
    assert "OPENAI_API_KEY" in job["env"]
    checkout = job["steps"][0]
    assert checkout["with"]["fetch-depth"] == 0
    assert checkout["with"]["persist-credentials"] is False
    gardener = the_gardener_step()
    assert set(gardener["with"]) <= set(declared)
    # one pass per library, whatever started it: not keyed on the branch it started from
    group = flow["concurrency"]["group"]
    assert group == f"graph-gardener-{gardener['with']['library']}"
    assert "github.ref" not in group and flow["concurrency"]["cancel-in-progress"] is False
    # the gardener's own repository at this version's release tag (or a commit SHA)
    repo, _, ref = gardener["uses"].partition("@")
    assert re.fullmatch(r"[A-Za-z0-9-]+/[A-Za-z0-9._-]+", repo)
    assert ref == f"v{VERSION}" or re.fullmatch(r"[0-9a-f]{40}", ref)


@pytest.mark.parametrize("library_dir", ["_patterns"])
def test_the_example_workflow_runs_bounded_on_its_schedule(
        runner: Runner, github: FakeGitHub, library_dir: str) -> None:
    gardener = the_gardener_step()
    # `uses:` resolved to this checkout: its ref is this version's tag
    assert gardener["uses"].endswith(f"@v{VERSION}")
    # a scheduled run: no dispatch inputs, no repository variables
    inputs = {k: evaluate(str(v), {}) for k, v in gardener["with"].items()}
    assert inputs["library"] == library_dir
    assert inputs["max-patterns"] == inputs["budget-tokens"] == ""  # the action's defaults
    said = ok(runner.run(inputs))
    assert "--max-patterns 50" in said and "--budget-tokens 400000" in said
    assert "pull request #1 created" in said
    summary = runner.summary.read_text(encoding="utf-8")
    estimate, spent = summary.split("### graph-gardener: what this run spent")
    assert "### graph-gardener: the estimate for this run" in estimate
    assert "at most 50 stale patterns asked" in estimate
    assert "no model call started once 400000 tokens are spent" in estimate
    calls = re.search(r"model calls:\s+(\d+)", estimate)
    assert calls is not None and int(calls.group(1)) == len(SPECS)
    assert re.search(r"prompt tokens:\s+[\d,]+", estimate)
    tokens = re.search(r"\| tokens used \(prompt \+ completion\) \| ([\d,]+) ", spent)
    assert tokens is not None and int(tokens.group(1).replace(",", "")) > 0
    assert f"| patterns changed | {len(SPECS)} |" in spent
    assert "`gardener review` exited with status 0." in spent
    # a run by hand with its own bound: it asks that many, the rest wait
    runner.push_change()
    by_hand = {k: evaluate(str(v), {"inputs.max-patterns": "1", "inputs.budget-tokens": "0"})
               for k, v in gardener["with"].items()}
    done = runner.run(by_hand)
    said = done.stdout + done.stderr
    assert done.returncode in (0, 3), said
    (command,) = [line for line in said.splitlines() if line.startswith("gardener review ")]
    assert "--max-patterns 1" in command and "--budget-tokens" not in command
    summary = runner.summary.read_text(encoding="utf-8")
    assert re.search(r"model calls:\s+1\b", summary)
    assert "no token budget but gardener.toml's" in summary


# ---------------------------------------------------------------------------------------------
# The pieces: the route inside Actions, closed pull requests, their links


def test_inside_actions_rest_goes_to_github_api_url_for_github_repository() -> None:
    from gardener.review import github as gh

    env = {"GITHUB_TOKEN": "t", "GITHUB_API_URL": "http://127.0.0.1:1/api/",
           "GITHUB_REPOSITORY": "commons/library", "GITHUB_SERVER_URL": "https://ghe.example"}
    route = gh.choose("/tmp/origin.git", env, gh=True)  # gh ignores GITHUB_API_URL
    assert (route.kind, route.api, route.repository) == (
        "rest", "http://127.0.0.1:1/api", ("commons", "library"))
    assert gh.push_env("t", route.server)["GIT_CONFIG_KEY_0"] == \
        "http.https://ghe.example/.extraheader"
    assert gh.choose("/tmp/origin.git", {"GITHUB_TOKEN": "t"}, gh=False).kind == "none"


def test_closed_unmerged_keeps_only_closed_unmerged_heads_of_the_branch() -> None:
    import httpx

    from gardener.review import github as gh

    sha = "a" * 40
    listing = [
        {"number": 3, "state": "closed", "merged_at": None,
         "head": {"ref": BRANCH, "sha": sha}, "html_url": "u3"},
        {"number": 2, "state": "closed", "merged_at": "2026-03-01T00:00:00Z",
         "head": {"ref": BRANCH, "sha": "b" * 40}},
        {"number": 1, "state": "closed", "merged_at": None,
         "head": {"ref": "someone/else", "sha": "c" * 40}},
    ]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=listing)

    found = gh.closed_unmerged("o", "r", BRANCH, "t", transport=httpx.MockTransport(handler))
    assert found == [gh.ClosedPR(3, sha, "u3")]
    assert found[0].ref == "refs/pull/3/head"
    assert dict(seen[0].url.params)["state"] == "closed"
    assert dict(seen[0].url.params)["head"] == f"o:{BRANCH}"


def test_a_closed_prs_added_and_retyped_links_are_rejected_kept_ones_are_not() -> None:
    import datetime as dt

    links = learned.Links
    before = {"a": links(frozenset({("b", "enables"), ("c", "requires")}), frozenset())}
    after = {"a": links(frozenset({("b", "enables"), ("c", "tools"), ("d", "enables"),
                                   ("a", "enables")}), frozenset()),
             "new": links(frozenset({("a", "complementary")}), frozenset())}
    found = learned.closed_unmerged(before, after, number=4, commit="f" * 40,
                                      today=dt.date(2026, 3, 9))
    assert [(d.slug, d.target, d.type) for d in found] == [
        ("a", "c", "tools"), ("a", "d", None), ("new", "a", None)]
    assert {d.source for d in found} == {"pull-request"}
    assert learned.read_pull_requests(decisions.Ledger(tuple(found))) == {"f" * 40}
    # the ledger file keeps the new source and reads it back
    text = decisions.render(decisions.Ledger(tuple(found)))
    assert decisions.parse(text, "d.yaml").decisions == tuple(
        sorted(found, key=lambda d: (d.slug, d.target, d.type or "")))


if __name__ == "__main__":  # rewrite examples/github/constraints.txt from this virtualenv
    CONSTRAINTS.write_text(constraints_text(), encoding="utf-8")
    print(f"{CONSTRAINTS}: {len(runtime_pins())} pins")
