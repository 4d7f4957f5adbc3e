"""A library's ``gardener.toml``: which files are patterns, its vocabulary, limits and model.

Found in the library folder, or walking up to the top of the library's repository
(``find_config``), read within a size cap and a nesting bound (``gardener.library.bounded``),
parsed with the standard ``tomllib`` and validated by frozen pydantic models that refuse
unknown keys and bound every number. Every problem
names the file, the line and the key (``gardener.toml:12: prune.min_confidence: ...``):
tomllib gives no positions, so ``key_line`` finds a key's line in the text itself. Parsing
is pure (``parse_config``: text in, ``Config`` or ``ConfigError`` out). Command-line options
override what the file says; the file overrides the built-in defaults (docs/configuration.md).
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.json_schema import SkipJsonSchema

from gardener.endpoint.settings import (
    MAX_CONCURRENCY,
    MIN_CONTEXT,
    MODES,
    context_problem,
    model_name_problem,
    timeout_problem,
)
from gardener.errors import GardenerError
from gardener.library.bounded import MAX_TOML_BYTES, check_toml_depth, read_capped
from gardener.library.document import ReadError
from gardener.library.scope import ALL_MARKDOWN, Scope
from gardener.model import LINK_TYPES
from gardener.review.branch import DEFAULT_BRANCH
from gardener.steps.prune import PruneSettings, type_key

CONFIG_FILE = "gardener.toml"

DEFAULT_PRUNE_CRON = "0 3 * * 1"
"""Mondays at 03:00: pruning is cheap and keeps dangling links from piling up."""
DEFAULT_GARDEN_CRON = "0 4 1 * *"
"""The first of each month at 04:00: gardening costs model calls; monthly is plenty."""

_PRUNE = PruneSettings()
_CRON_FIELD = re.compile(r"^(\*|\?|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/[0-9]+)?"
                         r"(,(\*|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/[0-9]+)?)*$")
_TYPE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")

MAX_CAP = 1000
"""Most items of a kind pruning keeps: a garden of more links than that is no garden."""
MAX_BUDGET_TOKENS = 10**10
"""Ten billion tokens, more than any pass spends; the budget is a brake, not a counter."""
MAX_PRICE = 10_000.0
"""Dollars per million tokens; the dearest list price is a few hundred."""


class ConfigError(GardenerError):
    """A ``gardener.toml`` that cannot be used; each line of the message names file:line."""

    exit_code = 2


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class LibrarySection(_Section):
    """Which Markdown files are patterns: globs relative to the config file's folder."""

    include: list[str] = Field([ALL_MARKDOWN],
                               description="Globs of the pattern files ('**' spans folders).")
    exclude: list[str] = Field([],
                               description="Globs of Markdown files that are no patterns.")

    @field_validator("include", "exclude")
    @classmethod
    def _relative(cls, globs: list[str]) -> list[str]:
        for glob in globs:
            parts = PurePosixPath(glob).parts
            if not glob.strip() or glob.startswith("/") or ".." in parts:
                raise ValueError(f"{glob!r} is not a glob relative to the library")
        return globs


class RelationshipSection(_Section):
    """The library's relationship vocabulary beyond the built-in one."""

    types: list[str] = Field([], description=(
        "Human relationship keys besides the built-in ones (e.g. manifests_as); also read "
        "as top-level front-matter keys."))
    renames: dict[str, str] = Field({}, description=(
        "Off-vocabulary link type -> vocabulary type: pruning renames instead of removing."))
    untyped: str | None = Field(_PRUNE.untyped, description=(
        "The type given to an inferred link an older tool wrote without one (with `strength` "
        "read as its confidence); \"\" removes such links as bad_type instead."))

    @field_validator("untyped")
    @classmethod
    def _untyped_type(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if value not in LINK_TYPES:
            raise ValueError(f"{value!r} is not a link type ({', '.join(LINK_TYPES)})")
        return value

    @field_validator("types")
    @classmethod
    def _names(cls, types: list[str]) -> list[str]:
        for name in types:
            if not _TYPE_NAME.match(name):
                raise ValueError(f"{name!r} is not a relationship key (letters, digits, _ or -)")
        return types

    @field_validator("renames")
    @classmethod
    def _to_vocabulary(cls, renames: dict[str, str]) -> dict[str, str]:
        for old, new in renames.items():
            if new not in LINK_TYPES:
                raise ValueError(f"{old} = {new!r}: not a link type ({', '.join(LINK_TYPES)})")
            if type_key(old) in LINK_TYPES:
                raise ValueError(f"{old!r} is already a link type; it needs no rename")
        return renames


class PruneSection(_Section):
    """Pruning's threshold and caps, in gardening and in ``gardener prune``."""

    min_confidence: float = Field(_PRUNE.min_confidence, ge=0.0, le=1.0,
                                  description="Inferred links below this confidence are weak.")
    max_links: int = Field(_PRUNE.max_links, ge=0, description="Most inferred links kept.")
    max_entities: int = Field(_PRUNE.max_entities, ge=0, description="Most entities kept.")
    max_communities: int = Field(_PRUNE.max_communities, ge=0,
                                 description="Most communities kept.")

    @field_validator("max_links", "max_entities", "max_communities")
    @classmethod
    def _cap(cls, value: int) -> int:
        if value > MAX_CAP:
            raise ValueError(f"must be at most {MAX_CAP}, got {value}")
        return value


class ModelSection(_Section):
    """The model a pass asks; unset: GARDENER_* variables, else the endpoint's defaults."""

    name: str | None = Field(None, min_length=1, description="Model name (as --model).")
    mode: str | None = Field(None, description=f"Structured output: {', '.join(MODES)}.")
    concurrency: int | None = Field(None, ge=1, description="Model calls in flight at once.")
    budget_tokens: int | None = Field(None, ge=1,
                                      description="No new model call once this many tokens "
                                      "were spent in a pass.")
    timeout_s: float | None = Field(None, gt=0, description="Seconds one request may take.")
    context: int | None = Field(None, ge=MIN_CONTEXT,
                                description="Tokens of context the model has, where its server "
                                "does not say: requests are sized to fit.")

    @field_validator("mode")
    @classmethod
    def _mode(cls, mode: str | None) -> str | None:
        if mode is not None and mode not in MODES:
            raise ValueError(f"{mode!r} is not a mode ({', '.join(MODES)})")
        return mode

    @field_validator("name")
    @classmethod
    def _name(cls, name: str | None) -> str | None:
        problem = model_name_problem(name) if name is not None else None
        if problem is not None:
            raise ValueError(f"{name!r} {problem}")
        return name

    @field_validator("concurrency")
    @classmethod
    def _concurrency(cls, value: int | None) -> int | None:
        if value is not None and value > MAX_CONCURRENCY:
            raise ValueError(f"must be at most {MAX_CONCURRENCY}, got {value}")
        return value

    @field_validator("budget_tokens")
    @classmethod
    def _budget(cls, value: int | None) -> int | None:
        if value is not None and value > MAX_BUDGET_TOKENS:
            raise ValueError(f"must be at most {MAX_BUDGET_TOKENS:,}, got {value:,}")
        return value

    @field_validator("timeout_s")
    @classmethod
    def _timeout(cls, value: float | None) -> float | None:
        problem = timeout_problem(value) if value is not None else None
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("context")
    @classmethod
    def _context(cls, value: int | None) -> int | None:
        problem = context_problem(value) if value is not None else None
        if problem is not None:
            raise ValueError(problem)
        return value


class Price(_Section):
    """What a model family costs, in US dollars per million tokens."""

    input_per_mtok: float = Field(ge=0, description="Dollars per million prompt tokens.")
    output_per_mtok: float = Field(ge=0, description="Dollars per million completion tokens.")

    @field_validator("input_per_mtok", "output_per_mtok")
    @classmethod
    def _rate(cls, value: float) -> float:
        # 0 would show a paid model as free; a local model needs no price (it costs 0 already).
        if not math.isfinite(value) or value <= 0 or value > MAX_PRICE:
            raise ValueError(f"must be more than 0 and at most {MAX_PRICE:g} dollars per "
                             f"million tokens, got {value:g}")
        return value


class ReviewSection(_Section):
    """The review branch and pull request (``gardener review``)."""

    branch: str = Field(DEFAULT_BRANCH, min_length=1, description="The one rolling branch.")
    labels: list[str] = Field(["gardener"],
                              description="Labels of the pull request.")
    base: str | None = Field(None, min_length=1,
                             description="Base branch (default: the repository's default).")


class ScheduleSection(_Section):
    """When ``gardener serve`` gardens and prunes: cron, five fields."""

    garden: str = Field(DEFAULT_GARDEN_CRON, description="When to garden (cron).")
    prune: str = Field(DEFAULT_PRUNE_CRON, description="When to prune (cron).")

    @field_validator("garden", "prune")
    @classmethod
    def _cron(cls, value: str) -> str:
        fields = value.split()
        if len(fields) != 5:
            raise ValueError(f"{value!r} is not a cron schedule: it needs 5 fields (minute "
                             f"hour day-of-month month day-of-week), not {len(fields)}")
        bad = [f for f in fields if not _CRON_FIELD.match(f)]
        if bad:
            raise ValueError(f"{value!r} is not a cron schedule: bad field {bad[0]!r}")
        return value


class Config(_Section):
    """A library's configuration; ``Config()`` is the built-in default."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True,
                              title="gardener.toml",
                              json_schema_extra={"$schema":
                                                 "https://json-schema.org/draft/2020-12/schema"})

    path: SkipJsonSchema[Path | None] = Field(None, exclude=True)
    """The gardener.toml it came from; None when none was found."""
    library: LibrarySection = LibrarySection()
    relationships: RelationshipSection = RelationshipSection()
    prune: PruneSection = PruneSection()
    model: ModelSection = ModelSection()
    prices: dict[str, Price] = Field({}, description=(
        "Model family -> price, over the built-in price table of --estimate."))
    review: ReviewSection = ReviewSection()
    schedule: ScheduleSection = ScheduleSection()

    def scope(self, library: Path) -> Scope:
        """Which files of ``library`` are patterns, the globs seen from the config's folder."""
        prefix = ""
        if self.path is not None:
            try:
                prefix = library.resolve().relative_to(self.path.resolve().parent).as_posix()
            except ValueError:  # the library lies elsewhere: its own folder is the base
                prefix = ""
        return Scope(include=tuple(self.library.include), exclude=tuple(self.library.exclude),
                     prefix="" if prefix == "." else prefix,
                     human_types=tuple(self.relationships.types))

    def prune_settings(self) -> PruneSettings:
        p = self.prune
        return PruneSettings(min_confidence=p.min_confidence, max_links=p.max_links,
                             max_entities=p.max_entities, max_communities=p.max_communities,
                             renames=self.renames, untyped=self.relationships.untyped)

    @property
    def renames(self) -> tuple[tuple[str, str], ...]:
        return tuple(self.relationships.renames.items())


# --- discovery -------------------------------------------------------------------------------


def repository_top(folder: Path) -> Path | None:
    """The nearest folder at or above ``folder`` holding ``.git`` (a folder, or a worktree's
    file), or None when ``folder`` is in no repository."""
    for here in (folder, *folder.parents):
        if (here / ".git").exists():
            return here
    return None


def find_config(library: Path) -> Path | None:
    """The ``gardener.toml`` of ``library``: in it, or, within a repository, in the nearest
    folder above it up to the repository's top (a folder holding ``.git``, looked in too).

    A library in no repository gets only its own folder's file: the walk up would otherwise
    apply whatever ``gardener.toml`` a parent folder holds (another user's ``/tmp``, a shared
    home), silently; a library never picks up another project's file.
    """
    here = library.resolve()
    if not here.is_dir():
        here = here.parent
    top = repository_top(here)
    folders = [here] if top is None else [
        here, *(above for above in here.parents if above.is_relative_to(top))]
    for folder in folders:
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate
    return None


_listeners: list[Callable[[Path], None]] = []


@contextmanager
def announcing(listener: Callable[[Path], None]) -> Iterator[None]:
    """Call ``listener`` with each config file ``load_config`` uses within the block: the
    command line says which file applies (``gardener.cli.errors``)."""
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)


def load_config(library: Path) -> Config:
    """The configuration of ``library``; the built-in defaults when it has no file.

    Read within ``MAX_TOML_BYTES`` (a link to it is followed: it is the user's own choice
    of file, found where the user put the library).
    """
    path = find_config(library)
    if path is None:
        return Config()
    for listener in list(_listeners):
        listener(path)
    try:
        text = read_capped(path, MAX_TOML_BYTES, follow=True)
    except FileNotFoundError:
        raise ConfigError(f"{path}: cannot be read: it is gone") from None
    except ReadError as exc:
        raise ConfigError(str(exc)) from None
    return parse_config(text, path)


# --- parsing ---------------------------------------------------------------------------------


_SYNTAX_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def parse_config(text: str, path: Path) -> Config:
    """The ``Config`` that ``text`` (the file ``path``) says; a ConfigError naming
    file:line and key for each problem. Pure."""
    try:
        check_toml_depth(text, path)  # tomllib recurses: a deep file would end in RecursionError
    except ReadError as exc:
        raise ConfigError(str(exc)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        at = _SYNTAX_AT.search(message)
        if at is not None:
            raise ConfigError(f"{path}:{at.group(1)}:{at.group(2)}: TOML syntax: "
                              f"{message[:at.start()]}") from None
        lines = text.count("\n") + 1
        raise ConfigError(f"{path}:{lines}: TOML syntax: {message}") from None
    problems: list[str] = []
    if "path" in data:  # the field records where the file is; a file cannot set it
        problems.append(_problem(path, text, ("path",), "Extra inputs are not permitted"))
        del data["path"]
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems += [_problem(path, text, tuple(str(p) for p in e["loc"]), e["msg"])
                     for e in exc.errors(include_url=False)]
    if problems:
        raise ConfigError("\n".join(problems))
    return config.model_copy(update={"path": path})


def _problem(path: Path, text: str, loc: tuple[str, ...], message: str) -> str:
    line = key_line(text, loc)
    where = f"{path}:{line}" if line is not None else str(path)
    key = ".".join(_shown_key(k) for k in loc)
    return f"{where}: {key}: {message.removeprefix('Value error, ')}"


def _shown_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else '"' + key.replace('"', '\\"') + '"'


# --- where a key is --------------------------------------------------------------------------


_BARE = r"[A-Za-z0-9_-]+"
_BASIC = r'"(?:[^"\\]|\\.)*"'
_LITERAL = r"'[^']*'"
_KEY = rf"(?:{_BARE}|{_BASIC}|{_LITERAL})"
_DOTTED = rf"{_KEY}(?:\s*\.\s*{_KEY})*"
_HEADER = re.compile(rf"^\s*\[\[?\s*({_DOTTED})\s*\]\]?")
_ASSIGN = re.compile(rf"^\s*({_DOTTED})\s*=")
_INLINE_KEY = re.compile(rf"[{{,]\s*({_DOTTED})\s*=")
_PART = re.compile(_KEY)


def _parts(dotted: str) -> tuple[str, ...]:
    out: list[str] = []
    for m in _PART.finditer(dotted):
        key = m.group()
        if key.startswith('"'):
            key = key[1:-1].encode().decode("unicode_escape")
        elif key.startswith("'"):
            key = key[1:-1]
        out.append(key)
    return tuple(out)


def key_line(text: str, loc: tuple[str, ...]) -> int | None:
    """The 1-based line of the key path ``loc`` in the TOML ``text``, or of its nearest
    written parent (a missing key: its table; a list item: the list's key); None when not
    even the first part is written.

    Knows table headers (``[a.b]``, ``[[a]]``), dotted and quoted keys, and keys of inline
    tables on one line (``prune = { max_links = 3 }``); skips multi-line strings.
    """
    table: tuple[str, ...] = ()
    best_line, best_depth = None, 0
    in_string: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if in_string is not None:
            if line.count(in_string) % 2 == 1:
                in_string = None
            continue
        written: list[tuple[str, ...]] = []
        header = _HEADER.match(line)
        if header is not None:
            table = _parts(header.group(1))
            written.append(table)
        elif (assign := _ASSIGN.match(line)) is not None:
            key = (*table, *_parts(assign.group(1)))
            written.append(key)
            written += [(*key, *_parts(m.group(1)))
                        for m in _INLINE_KEY.finditer(line, assign.end())]
        for key in written:
            depth = _common(key, loc)
            if depth == len(loc) and len(key) == len(loc):
                return number
            if depth == len(key) and depth > best_depth:
                best_line, best_depth = number, depth
        for quote in ('"""', "'''"):
            if line.count(quote) % 2 == 1:
                in_string = quote
                break
    return best_line


def _common(key: tuple[str, ...], loc: tuple[str, ...]) -> int:
    n = 0
    for a, b in zip(key, loc, strict=False):
        if a != b:
            break
        n += 1
    return n


def schema_text() -> str:
    """The JSON schema of ``gardener.toml`` as ``gardener.schema.json`` holds it (for editors
    with a TOML language server; ``scripts/config_schema.py`` writes it)."""
    schema = Config.model_json_schema(mode="validation")
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
