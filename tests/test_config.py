"""gardener.toml: parsing, errors naming file:line:key, discovery, precedence, what it changes
in the commands (which files are patterns, prune limits, vocabulary), ``gardener init`` on the
two layouts real libraries use, and the shipped JSON schema."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from gardener.cli import flows as cli_flows
from gardener.cli.init import FIRST_BATCH, plan, template_reason
from gardener.cli.main import app
from gardener.config import (
    Config,
    ConfigError,
    find_config,
    key_line,
    load_config,
    parse_config,
    schema_text,
)
from gardener.library import load as library_mod
from gardener.library.scope import Scope, glob_match
from gardener.steps.prune import PruneSettings, canonical_type

REPO = Path(__file__).resolve().parent.parent
TOML = Path("gardener.toml")
runner = CliRunner()


def invoke(*args: str | Path) -> Result:
    return runner.invoke(app, [str(a) for a in args])


def problem(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, TOML)
    return str(caught.value)


def pattern(slug: str, *, links: tuple[tuple[str, str, float], ...] = (), extra: str = "") -> str:
    garden = "graph_garden:\n  entities: []\n  communities: []\n"
    garden += "  inferred_links:\n" if links else "  inferred_links: []\n"
    for target, type_, confidence in links:
        garden += f"    - target: {target}\n      type: {type_}\n      confidence: {confidence}\n"
    head = f"---\nid: pat_{slug}\nslug: {slug}\ntitle: {slug.title()}\n"
    return f"{head}{extra}{garden}---\n\nBody.\n"


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")


# --- parsing ---------------------------------------------------------------------------------


FULL = """\
[library]
include = ["_patterns/*.md"]
exclude = ["_patterns/README.md"]

[relationships]
types = ["manifests_as", "embodies"]
renames = { enabler_of = "enables" }

[prune]
min_confidence = 0.7
max_links = 8
max_entities = 6
max_communities = 3

[model]
name = "gpt-4.1-mini"
mode = "tools"
concurrency = 4
budget_tokens = 200000
timeout_s = 90

[prices."gpt-4.1"]
input_per_mtok = 2
output_per_mtok = 8.0

[review]
branch = "bots/garden"
labels = ["gardener", "automated"]
base = "main"

[schedule]
garden = "0 5 * * 0"
prune = "30 2 * * 1-5"
"""


def test_every_key_is_read() -> None:
    c = parse_config(FULL, TOML)
    assert c.path == TOML
    assert c.library.include == ["_patterns/*.md"] and c.library.exclude == ["_patterns/README.md"]
    assert c.relationships.types == ["manifests_as", "embodies"]
    assert c.relationships.renames == {"enabler_of": "enables"}
    assert c.prune_settings() == PruneSettings(0.7, 8, 6, 3, renames=(("enabler_of", "enables"),))
    assert (c.model.name, c.model.mode, c.model.concurrency) == ("gpt-4.1-mini", "tools", 4)
    assert (c.model.budget_tokens, c.model.timeout_s) == (200000, 90.0)
    assert c.prices["gpt-4.1"].input_per_mtok == 2.0 and c.prices["gpt-4.1"].output_per_mtok == 8
    assert (c.review.branch, c.review.labels, c.review.base) == (
        "bots/garden", ["gardener", "automated"], "main")
    assert (c.schedule.garden, c.schedule.prune) == ("0 5 * * 0", "30 2 * * 1-5")


def test_an_empty_file_is_the_default_and_the_defaults_are_the_built_in_ones() -> None:
    c = parse_config("# nothing yet\n", TOML)
    assert c.model_copy(update={"path": None}) == Config()
    assert Config().path is None
    assert Config().prune_settings() == PruneSettings()
    assert Config().library.include == ["**/*.md"] and Config().scope(Path(".")).everything
    assert (Config().schedule.garden, Config().schedule.prune) == ("0 4 1 * *", "0 3 * * 1")
    assert Config().review.branch == "gardener/garden" and Config().review.labels == ["gardener"]
    with pytest.raises(ValueError):
        Config().prune.__setattr__("max_links", 3)  # frozen


@pytest.mark.parametrize(("text", "expected"), [
    ("[prune]\nmax_links = 3\ncolour = 'red'\n",
     "gardener.toml:3: prune.colour: Extra inputs are not permitted"),
    ("[typo]\nx = 1\n", "gardener.toml:1: typo: Extra inputs are not permitted"),
    ("prune.colour = 1\n", "gardener.toml:1: prune.colour: Extra inputs are not permitted"),
    ("\nprune = { max_links = 3, colour = 1 }\n",
     "gardener.toml:2: prune.colour: Extra inputs are not permitted"),
    ('[prices."gpt-4.1"]\ninput_per_mtok = 1\noutput_per_mtok = 2\ncached = 3\n',
     'gardener.toml:4: prices."gpt-4.1".cached: Extra inputs are not permitted'),
    ("path = 'x'\n", "gardener.toml:1: path: Extra inputs are not permitted"),
])
def test_an_unknown_key_names_file_line_and_key(text: str, expected: str) -> None:
    assert problem(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("# limits\n\n[prune]\nmin_confidence = 2\n",
     "gardener.toml:4: prune.min_confidence: Input should be less than or equal to 1"),
    ("[prune]\nmax_links = '3'\n", "gardener.toml:2: prune.max_links: Input should be a valid "
     "integer"),
    ("[model]\nconcurrency = 0\n",
     "gardener.toml:2: model.concurrency: Input should be greater than or equal to 1"),
    ("[model]\nmode = 'yaml'\n", "gardener.toml:2: model.mode: 'yaml' is not a mode"),
    ("[schedule]\ngarden = '0 4 1 *'\n", "gardener.toml:2: schedule.garden: '0 4 1 *' is not a "
     "cron schedule: it needs 5 fields"),
    ("[schedule]\nprune = '0 3 * * mon@'\n", "gardener.toml:2: schedule.prune: '0 3 * * mon@' "
     "is not a cron schedule: bad field 'mon@'"),
    ("[relationships]\nrenames = { enabler_of = 'makes' }\n",
     "gardener.toml:2: relationships.renames: enabler_of = 'makes': not a link type"),
    ("[relationships]\ntypes = ['ok', 'not ok']\n",
     "gardener.toml:2: relationships.types: 'not ok' is not a relationship key"),
    ("[library]\ninclude = [\n  'a/*.md',\n  '../b/*.md',\n]\n",
     "gardener.toml:2: library.include: '../b/*.md' is not a glob relative to the library"),
    ('[prices."gpt-4.1"]\ninput_per_mtok = 1\n',
     'gardener.toml:1: prices."gpt-4.1".output_per_mtok: Field required'),
])
def test_a_bad_value_names_file_line_and_key(text: str, expected: str) -> None:
    assert problem(text).startswith(expected)


def test_every_problem_is_reported_one_per_line() -> None:
    lines = problem("[prune]\nmin_confidence = -1\nmax_links = -1\n").splitlines()
    assert [line.split(": ")[0] for line in lines] == ["gardener.toml:2", "gardener.toml:3"]


def test_a_syntax_error_names_file_line_and_column() -> None:
    assert problem("[prune]\nmax_links = = 3\n").startswith("gardener.toml:2:13: TOML syntax: ")
    assert problem("[prune\n").startswith("gardener.toml:1:7: TOML syntax: ")


def test_key_line_knows_headers_dotted_quoted_inline_and_skips_multiline_strings() -> None:
    text = ('a = """\n[prune]\nmax_links = 1\n"""\n'  # 1-4: a string, not keys
            "[prune]\n"  # 5
            "  max_links = 3\n"  # 6
            "model.name = 'x'\n"  # 7: a dotted key inside [prune] is prune.model.name
            '[prices."a.b"]\n'  # 8
            "input_per_mtok = 1\n"  # 9
            "[[things]]\n")  # 10
    assert key_line(text, ("prune", "max_links")) == 6
    assert key_line(text, ("prune", "min_confidence")) == 5  # missing: its table
    assert key_line(text, ("prune", "model", "name")) == 7
    assert key_line(text, ("prices", "a.b", "input_per_mtok")) == 9
    assert key_line(text, ("things",)) == 10
    assert key_line(text, ("nowhere",)) is None
    assert key_line("x = { y = { z = 1 } }\n", ("x", "y", "z")) == 1
    assert key_line("xs = [\n  1,\n  2,\n]\n", ("xs", "1")) == 1


# --- discovery and the command line ----------------------------------------------------------


def test_the_file_is_found_walking_up_from_the_library_and_not_past_a_repository(
        tmp_path: Path) -> None:
    lib = tmp_path / "repo" / "docs" / "library"
    lib.mkdir(parents=True)
    assert find_config(lib) is None and load_config(lib) == Config()
    (tmp_path / "gardener.toml").write_text("[prune]\nmax_links = 2\n")
    (tmp_path / "repo" / ".git").mkdir()  # the repository's top: the walk ends there
    assert find_config(lib) is None
    (tmp_path / "repo" / "gardener.toml").write_text("[prune]\nmax_links = 4\n")
    assert find_config(lib) == (tmp_path / "repo" / "gardener.toml").resolve()
    (lib / "gardener.toml").write_text("[prune]\nmax_links = 6\n")
    assert find_config(lib) == (lib / "gardener.toml").resolve()
    assert load_config(lib).prune.max_links == 6


def test_globs_of_a_file_above_the_library_are_relative_to_its_folder(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()  # the walk above the library stops at a repository's top
    (tmp_path / "gardener.toml").write_text("[library]\ninclude = ['lib/_patterns/*.md']\n")
    (tmp_path / "lib" / "_patterns").mkdir(parents=True)
    scope = load_config(tmp_path / "lib").scope(tmp_path / "lib")
    assert scope.prefix == "lib"
    assert scope.admits("_patterns/a.md") and not scope.admits("README.md")


def test_a_broken_file_stops_a_command_with_exit_2_and_its_line(tmp_path: Path) -> None:
    write(tmp_path, {"a.md": pattern("a"), "gardener.toml": "[prune]\nmax_link = 3\n"})
    for command in ("check", "prune", "health"):
        result = invoke(command, tmp_path)
        assert result.exit_code == 2, (command, result.output)
        assert "gardener.toml:2: prune.max_link: Extra inputs are not permitted" in \
            " ".join(result.output.split())


def test_globs_match_whole_relative_paths() -> None:
    assert glob_match("**/*.md", "a.md") and glob_match("**/*.md", "x/y/a.md")
    assert glob_match("_patterns/*.md", "_patterns/a.md")
    assert not glob_match("_patterns/*.md", "_patterns/sub/a.md")
    assert not glob_match("*.md", "docs/a.md")
    assert glob_match("extensions/**/patterns/**/*.md", "extensions/a/b/patterns/c.md")
    assert glob_match("extensions/**/patterns/**/*.md", "extensions/patterns/x/c.md")
    assert glob_match("docs/**", "docs/a/b.md") and not glob_match("docs/**", "docsx/a.md")
    assert glob_match("[!R]*.md", "a.md") and not glob_match("[!R]*.md", "README.md")
    assert glob_match("a?.md", "ab.md") and not glob_match("a?.md", "a/.md")
    scope = Scope(include=("p/**/*.md",), exclude=("p/drafts/**",))
    assert scope.admits("p/a.md") and scope.admits("p/x/a.md")
    assert not scope.admits("p/drafts/a.md") and not scope.admits("q/a.md")


def test_include_and_exclude_decide_the_patterns_of_check_and_prune(tmp_path: Path) -> None:
    write(tmp_path, {
        "_patterns/a.md": pattern("a", links=(("b", "enables", 0.9),)),
        "_patterns/b.md": pattern("b", links=(("a", "enables", 0.2),)),
        "_patterns/drafts/c.md": pattern("c", links=(("a", "enables", 0.1),)),
        # Front matter like a pattern's, outside the globs: never read, never pruned.
        "docs/notes.md": pattern("notes", links=(("a", "enables", 0.1),)),
        "README.md": "# The library\n",
    })
    assert library_mod.load(tmp_path).slugs == {"a", "b", "c", "notes"}
    (tmp_path / "gardener.toml").write_text(
        '[library]\ninclude = ["_patterns/**/*.md"]\nexclude = ["_patterns/drafts/**"]\n')
    check = invoke("check", tmp_path)
    assert check.exit_code == 0, check.output
    assert "2 patterns read" in check.output
    pruned = invoke("prune", tmp_path, "--dry-run", "--today", "2026-11-25")
    assert pruned.exit_code == 0, pruned.output
    assert "_patterns/b.md" in pruned.stdout  # its weak link goes
    assert "drafts" not in pruned.stdout and "notes" not in pruned.stdout


def test_nothing_matching_the_globs_is_a_usage_error(tmp_path: Path) -> None:
    write(tmp_path, {"a.md": pattern("a"), "gardener.toml": "[library]\ninclude = ['x/*.md']\n"})
    result = invoke("check", tmp_path)
    assert result.exit_code == 2
    assert "matches the include and exclude globs" in " ".join(result.output.split())


def test_prune_takes_the_file_s_limits_and_the_options_beat_them(tmp_path: Path) -> None:
    write(tmp_path, {
        "a.md": pattern("a", links=(("b", "enables", 0.6),)), "b.md": pattern("b"),
        "gardener.toml": "[prune]\nmin_confidence = 0.8\nmax_entities = 3\n"})
    report = tmp_path / "r.json"
    result = invoke("prune", tmp_path, "--dry-run", "--report", report)
    assert result.exit_code == 0, result.output
    settings = json.loads(report.read_text())["settings"]
    assert (settings["min_confidence"], settings["max_entities"]) == (0.8, 3)
    assert "weak" in report.read_text()
    result = invoke("prune", tmp_path, "--dry-run", "--report", report, "--min-confidence",
                    "0.5")
    settings = json.loads(report.read_text())["settings"]
    assert (settings["min_confidence"], settings["max_entities"]) == (0.5, 3)
    assert "weak" not in report.read_text()


def test_the_library_s_own_kinds_and_renames_reach_reading_and_pruning(tmp_path: Path) -> None:
    write(tmp_path, {
        "a.md": pattern("a", extra="embodies: [b]\n",
                        links=(("b", "enables", 0.9), ("c", "enabler_of", 0.9))),
        "b.md": pattern("b"), "c.md": pattern("c")})
    report = tmp_path / "r.json"

    def removals() -> dict[str, str]:
        result = invoke("prune", tmp_path, "--dry-run", "--report", report)
        assert result.exit_code == 0, result.output
        [a] = [p for p in json.loads(report.read_text())["patterns"] if p["slug"] == "a"]
        return {r["item"]: r["reason"] for r in a["removals"]}

    assert removals() == {"c": "bad_type"}  # 'embodies' is no key it knows; 'enabler_of' no type
    (tmp_path / "gardener.toml").write_text(
        "[relationships]\ntypes = ['embodies']\nrenames = { enabler_of = 'enables' }\n")
    assert removals() == {"b": "human_confirmed"}  # the human 'embodies' b; c renamed, kept
    assert canonical_type("Enabler-Of", (("enabler_of", "enables"),)) == "enables"
    assert canonical_type("enabler_of") is None


def test_run_options_beat_the_environment_which_beats_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_config("[model]\nname = 'file-model'\nmode = 'json'\nconcurrency = 3\n"
                          "timeout_s = 30\n[prune]\nmax_links = 2\n", tmp_path / "gardener.toml")
    monkeypatch.delenv("GARDENER_MODEL", raising=False)
    monkeypatch.delenv("GARDENER_MODE", raising=False)
    d = cli_flows.garden_defaults(config, tmp_path, model=None, mode=None, concurrency=None)
    assert (d["model"], d["mode"], d["concurrency"], d["timeout_s"]) == ("file-model", "json",
                                                                         3, 30.0)
    assert d["prune"].max_links == 2 and d["scope"] == Scope()
    d = cli_flows.garden_defaults(config, tmp_path, model="cli", mode="tools", concurrency=9)
    assert (d["model"], d["mode"], d["concurrency"]) == ("cli", "tools", 9)
    monkeypatch.setenv("GARDENER_MODEL", "env-model")
    d = cli_flows.garden_defaults(config, tmp_path, model=None, mode=None, concurrency=None)
    assert d["model"] is None  # LLMSettings.from_env takes GARDENER_MODEL then
    d = cli_flows.garden_defaults(Config(), tmp_path, model=None, mode=None, concurrency=None)
    assert d["concurrency"] == 8


def test_the_pass_options_carry_the_file_s_scope_through_a_deployment() -> None:
    from gardener.pipeline.client import model_settings
    from gardener.pipeline.options import GardenOptions
    from gardener.pipeline.prune import PruneOptions

    config = parse_config(FULL, TOML)
    options = GardenOptions(scope=config.scope(Path(".")), prune=config.prune_settings(),
                            timeout_s=12.0)
    again = GardenOptions.model_validate(json.loads(json.dumps(options.model_dump(mode="json"))))
    assert again == options and again.prune.renames == (("enabler_of", "enables"),)
    pruning = PruneOptions(**config.prune.model_dump(), renames=config.renames,
                           scope=options.scope)
    assert PruneOptions.model_validate(pruning.model_dump(mode="json")).settings == \
        config.prune_settings()
    env = {"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    assert model_settings(options, env).timeout_s == 12.0
    assert model_settings(options, {**env, "GARDENER_TIMEOUT_S": "5"}).timeout_s == 5.0


# --- gardener init ---------------------------------------------------------------------------


def admitted(layout_include: tuple[str, ...], layout_exclude: tuple[str, ...],
             files: list[str]) -> set[str]:
    scope = Scope(include=layout_include, exclude=layout_exclude)
    return {f for f in files if scope.admits(f)}


def test_init_on_a_flat_patterns_folder(tmp_path: Path) -> None:
    files = {f"_patterns/{s}.md": pattern(s, extra="relationships:\n  manifests_as: [a]\n")
             for s in ("a", "b", "c")}
    files |= {"README.md": "# Library\n", "docs/guide.md": "---\ntitle: Guide\nlayout: page\n"
              "---\nText.\n", "_patterns/README.md": "# About the patterns\n"}
    write(tmp_path, files)
    result = invoke("init", tmp_path)
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "include _patterns/*.md: 3 pattern files" in said
    assert "manifests_as (3 patterns)" in said and "wrote" in said
    config = load_config(tmp_path)
    assert config.path == (tmp_path / "gardener.toml").resolve()
    assert config.library.include == ["_patterns/*.md"]
    assert config.library.exclude == ["_patterns/README.md"]
    assert config.relationships.types == ["manifests_as"]
    assert library_mod.load(tmp_path, scope=config.scope(tmp_path)).slugs == {"a", "b", "c"}
    again = invoke("init", tmp_path)
    assert again.exit_code == 2 and "already exists" in again.output
    (tmp_path / "gardener.toml").write_text("# mine\n")
    assert invoke("init", tmp_path, "--force").exit_code == 0
    assert "[library]" in (tmp_path / "gardener.toml").read_text()


def test_init_on_commons_and_extensions_with_other_markdown_beside(tmp_path: Path) -> None:
    files = {
        "commons/patterns/a.md": pattern("a"),
        "commons/patterns/governance/b.md": pattern("b"),
        "extensions/cities/patterns/c.md": pattern("c"),
        "extensions/cities/patterns/README.md": "# Cities\n",
        "extensions/cities/README.md": "# The cities extension\n",
        "extensions/schools/patterns/d.md": pattern("d", extra="related: [a]\n"),
        "extensions/schools/patterns/README.md": "# Schools\n",
        "extensions/schools/docs/spec.md": "---\ntitle: Spec\n---\nText.\n",
        "specs/graph.md": "---\ntitle: Graph\nstatus: draft\n---\nPopulated by an engine.\n",
        "README.md": "# Commons\n",
    }
    write(tmp_path, files)
    result = invoke("init", tmp_path)
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "include commons/patterns/**/*.md: 2 pattern files" in said
    assert "include extensions/*/patterns/*.md: 2 pattern files" in said
    config = load_config(tmp_path)
    assert config.library.include == ["commons/patterns/**/*.md", "extensions/*/patterns/*.md"]
    assert config.library.exclude == ["extensions/*/patterns/README.md"]
    assert config.relationships.types == ["related"]
    check = invoke("check", tmp_path)
    assert check.exit_code == 0 and "4 patterns read" in check.output


def test_plan_selects_exactly_the_pattern_files() -> None:
    assert plan({"a.md": True, "b/c.md": True}).include == ("**/*.md",)
    cases: list[dict[str, bool | None]] = [
        {"a.md": True, "b.md": True, "README.md": False, "docs/x.md": False, "docs/y/z.md": False},
        {"p/a.md": True, "p/q/b.md": True, "p/q/README.md": False, "p/README.md": False},
        {"x/1/p/a.md": True, "x/2/p/b.md": True, "x/3/p/c.md": False, "x/1/p/n.md": None},
    ]
    for files in cases:
        layout = plan(files)
        patterns = {f for f, is_pattern in files.items() if is_pattern}
        others = [f for f, is_pattern in files.items() if is_pattern is not None]
        assert admitted(layout.include, layout.exclude, others) == patterns, (files, layout)
    layout = plan(cases[0])
    assert layout.include == ("**/*.md",) and layout.exclude == ("README.md", "docs/**")
    # x/3/p holds no pattern: no '*' over x/1 and x/2, which would take it in.
    assert plan(cases[2]).include == ("x/1/p/*.md", "x/2/p/*.md")


def test_init_refuses_a_folder_without_patterns(tmp_path: Path) -> None:
    write(tmp_path, {"README.md": "# Nothing\n", "docs/a.md": "---\ntitle: A\n---\n"})
    result = invoke("init", tmp_path)
    assert result.exit_code == 2 and "no Markdown file with a pattern's front matter" in \
        " ".join(result.output.split())
    assert not (tmp_path / "gardener.toml").exists()


def test_init_leaves_templates_out_and_says_so(tmp_path: Path) -> None:
    files = {f"commons/patterns/{s}.md": pattern(s) for s in ("a", "b")}
    files |= {"commons/templates/pattern.md": pattern("pattern-slug-here"),
              "commons/patterns/_template.md": pattern("x"),
              "commons/patterns/draft.md": pattern("a").replace("slug: a", "slug: '{{slug}}'"),
              "commons/patterns/start-here.md": pattern("start-here")}
    write(tmp_path, files)
    result = invoke("init", tmp_path)
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert ("template, no pattern: commons/templates/pattern.md (in a templates/ folder); "
            "excluded") in said
    assert ("template, no pattern: commons/patterns/_template.md (a template's file name); "
            "excluded") in said
    assert ("template, no pattern: commons/patterns/draft.md (placeholder slug '{{slug}}'); "
            "excluded") in said
    assert "include commons/patterns/*.md: 3 pattern files" in said
    config = load_config(tmp_path)
    lib = library_mod.load(tmp_path, scope=config.scope(tmp_path))
    assert lib.slugs == {"a", "b", "start-here"}  # "start-here" is a slug, not a placeholder


def test_template_reason_is_generic() -> None:
    assert template_reason("_templates/p.md", {"slug": "real"}) == "in a _templates/ folder"
    for slug in ("pattern-slug-here", "your-slug-here", "slug-goes-here", "<slug>",
                 "${slug}", "{{ slug }}", "TODO"):
        assert template_reason("p/x.md", {"slug": slug}) is not None, slug
    for slug in ("start-here", "template-driven-design", "slugging-it-out", "commons-id"):
        assert template_reason(f"p/{slug}.md", {"slug": slug}) is None, slug


@pytest.fixture
def counted_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """An endpoint that is never called (the estimate sends nothing) and a priced model."""
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    monkeypatch.setenv("GARDENER_MODEL", "gpt-4.1-mini")


def test_init_prints_the_whole_library_s_estimate_and_the_first_batch_s(
        tmp_path: Path, counted_offline: None) -> None:
    slugs = [f"p{i:02}" for i in range(12)]
    write(tmp_path, {f"patterns/{s}.md": pattern(s) for s in slugs} | {"README.md": "# L\n"})
    result = invoke("init", tmp_path)
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "estimate for model 'gpt-4.1-mini' at http://127.0.0.1:9/v1" in said
    assert "nothing was sent" in said
    whole = re.search(r"whole library: (\d+) model calls, ([\d,]+) prompt tokens", said)
    batch = re.search(rf"first batch \(gardener run {re.escape(str(tmp_path))} --max-patterns "
                      rf"{FIRST_BATCH}\): (\d+) model calls, ([\d,]+) prompt tokens", said)
    assert whole is not None and batch is not None, said
    assert int(whole[1]) == len(slugs) and int(batch[1]) == FIRST_BATCH
    assert 0 < int(batch[2].replace(",", "")) < int(whole[2].replace(",", ""))
    assert re.search(r"whole library: .*, \$[\d.]+ to \$[\d.]+ first batch", said)
    assert not (tmp_path / ".gardener").exists()  # counted, nothing written but the config


# --- the schema ------------------------------------------------------------------------------


def test_the_shipped_schema_is_what_the_model_generates() -> None:
    shipped = (REPO / "gardener.schema.json").read_text(encoding="utf-8")
    assert shipped == schema_text(), "run: .venv/bin/python scripts/config_schema.py"


def test_the_schema_accepts_the_full_example_and_refuses_an_unknown_key() -> None:
    import tomllib

    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(schema_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(tomllib.loads(FULL), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"prune": {"colour": 1}}, schema)


SEED = REPO.parent / "shared" / "seed" / "distributed-leadership-design.md"


@pytest.mark.skipif(not SEED.is_file(), reason=f"{SEED} is absent: no real pattern file to copy")
def test_init_on_real_pattern_files_beside_readmes(tmp_path: Path) -> None:
    real = SEED.read_text(encoding="utf-8")
    files: dict[str, str] = {"README.md": "# Commons\n", "extensions/a/README.md": "# A\n"}
    for rel, slug in (("commons/patterns/x.md", "x"), ("extensions/a/patterns/y.md", "y"),
                      ("extensions/b/patterns/z.md", "z")):
        files[rel] = real.replace("slug: distributed-leadership-design", f"slug: {slug}").replace(
            "relationships:\n", "relationships:\n  manifests_as: [x]\n", 1)
    write(tmp_path, files)
    result = invoke("init", tmp_path)
    assert result.exit_code == 0, result.output
    config = load_config(tmp_path)
    assert config.library.include == ["commons/patterns/*.md", "extensions/*/patterns/*.md"]
    assert config.library.exclude == [] and config.relationships.types == ["manifests_as"]
    assert library_mod.load(tmp_path, scope=config.scope(tmp_path)).slugs == {"x", "y", "z"}
