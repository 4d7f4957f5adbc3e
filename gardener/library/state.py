"""Remember what each pattern was last gardened from, so an unchanged pattern is not re-asked.

A model call costs time and money, and its answer drifts even when nothing changed. The
state records, per pattern, the inputs of its last successful gardening (the content
fingerprint, the prompt version, the model, the candidate set) and a hash of the garden it
produced. A pattern whose inputs are all the same is up to date and skipped.

The state lives inside the library, in ``.gardener/state.json``, so it travels with it (a
clone, another machine, CI all see the same decisions). The file is written for git: sorted
keys, one entry per slug, one field per line, a final newline, and it is only rewritten when
its content changes.

A missing file is an empty state. A file that cannot be understood is reported (``problems``
names the file, and the line for a JSON error), treated as empty, and copied aside to a
``.bak`` file before anything overwrites it, so a hand-edit gone wrong is never lost quietly.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import os
import threading
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from gardener.errors import GardenerError, brief
from gardener.library import pattern
from gardener.library.bounded import (
    LINK_REFUSED,
    MAX_JSON_BYTES,
    check_json_depth,
    decode,
    read_capped_bytes,
)
from gardener.library.document import ReadError
from gardener.library.write import write_atomic
from gardener.model import Garden

STATE_DIR = ".gardener"
STATE_FILE = "state.json"
FORMAT = 1
"""Version of the file layout; a file with another version is not guessed at."""

_FIELDS = ("fingerprint", "prompt_version", "model", "candidates", "date", "garden")
_log = logging.getLogger(__name__)


class StaleReason(StrEnum):
    """Why a pattern needs gardening (or ``UP_TO_DATE`` when it does not)."""

    NEW = "new"
    CONTENT = "content changed"
    PROMPT = "prompt changed"
    MODEL = "model changed"
    CANDIDATES = "candidates changed"
    UP_TO_DATE = "up to date"


@dataclass(frozen=True)
class PatternState:
    """The inputs and result of one pattern's last successful gardening."""

    fingerprint: str
    """``Pattern.fingerprint`` (or ``content_fingerprint``) of what the model saw."""
    prompt_version: str
    model: str
    candidates: str
    """``CandidateIndex.fingerprint`` of the shortlist the model could link to."""
    date: dt.date
    garden: str
    """``garden_hash`` of the garden that was written."""

    def to_json(self) -> dict[str, str]:
        return {
            "fingerprint": self.fingerprint,
            "prompt_version": self.prompt_version,
            "model": self.model,
            "candidates": self.candidates,
            "date": self.date.isoformat(),
            "garden": self.garden,
        }

    @classmethod
    def from_json(cls, raw: Any) -> PatternState:
        """Raises ``ValueError`` saying which field is wrong."""
        if not isinstance(raw, Mapping):
            raise ValueError(f"expected an object, found {type(raw).__name__}")
        missing = [name for name in _FIELDS if name not in raw]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        wrong = [name for name in _FIELDS if not isinstance(raw[name], str)]
        if wrong:
            raise ValueError(f"{', '.join(wrong)} must be a string")
        try:
            date = dt.date.fromisoformat(raw["date"])
        except ValueError:
            raise ValueError(f"date {brief(raw['date'])} is not YYYY-MM-DD") from None
        return cls(fingerprint=raw["fingerprint"], prompt_version=raw["prompt_version"],
                   model=raw["model"], candidates=raw["candidates"], date=date,
                   garden=raw["garden"])


def needs_gardening(entry: PatternState | None, *, fingerprint: str, prompt_version: str,
                    model: str, candidates_fp: str) -> tuple[bool, str]:
    """Whether a pattern must be gardened again, and the first reason why.

    Reasons are checked from the most to the least telling: a changed pattern matters more
    to a reader of the report than a changed model.
    """
    if entry is None:
        return True, StaleReason.NEW
    if entry.fingerprint != fingerprint:
        return True, StaleReason.CONTENT
    if entry.prompt_version != prompt_version:
        return True, StaleReason.PROMPT
    if entry.model != model:
        return True, StaleReason.MODEL
    if entry.candidates != candidates_fp:
        return True, StaleReason.CANDIDATES
    return False, StaleReason.UP_TO_DATE


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def garden_hash(garden: Garden | None) -> str:
    """A hash of a garden's meaning: not its layout (``text``), not ``last_pruned``."""
    if garden is None:
        return _sha256("null")
    data = garden.model_copy(update={"last_pruned": None}).model_dump(mode="json")
    return _sha256(json.dumps(data, sort_keys=True, ensure_ascii=False))


def without_assessment_reasoning(data: Mapping[str, Any]) -> dict[str, Any]:
    """Front matter without ``ontology.commons_assessment.vitality_reasoning``.

    An emptied ``commons_assessment`` or ``ontology`` is dropped too, and an empty one is
    treated as absent, so a file the writer gave a new ``commons_assessment`` just for the
    reasoning reads the same as before.
    """
    out = dict(data)
    ontology = out.get("ontology")
    if not isinstance(ontology, Mapping):
        return out
    ontology = dict(ontology)
    assessment = ontology.pop("commons_assessment", None)
    if isinstance(assessment, Mapping):
        rest = {k: v for k, v in assessment.items() if k != "vitality_reasoning"}
        if rest:
            ontology["commons_assessment"] = rest
    elif assessment is not None:
        ontology["commons_assessment"] = assessment
    if ontology:
        out["ontology"] = ontology
    else:
        del out["ontology"]
    return out


def content_fingerprint(data: Mapping[str, Any], body: str, *,
                        vitality_in_assessment: bool = False) -> str:
    """The fingerprint to record and compare, blind to whatever the gardener itself writes.

    ``Pattern.fingerprint`` already leaves out ``graph_garden``. When the vitality reasoning
    is written into ``ontology.commons_assessment`` instead, that field is left out as well,
    or every gardening would make its own pattern look changed.
    """
    if vitality_in_assessment:
        data = without_assessment_reasoning(data)
    return pattern.fingerprint(data, body)


class State:
    """Per-slug states, safe to read and record from several threads at once."""

    def __init__(self, entries: Mapping[str, PatternState] | None = None,
                 problems: Iterable[str] = ()) -> None:
        self._entries: dict[str, PatternState] = dict(entries or {})
        self._lock = threading.Lock()
        self._save_lock = threading.Lock()
        self._version = 0
        self._saved_version = 0
        self._disk: tuple[Signature, str] | None = None
        """The file's signature and text when this state last loaded or saved it cleanly."""
        self.problems: tuple[str, ...] = tuple(problems)
        """What was wrong with the file this state was loaded from, naming it."""

    def get(self, slug: str) -> PatternState | None:
        with self._lock:
            return self._entries.get(slug)

    def record(self, slug: str, *, fingerprint: str, prompt_version: str, model: str,
               candidates_fp: str, garden: Garden | None,
               on: dt.date | None = None) -> PatternState:
        """Note a successful gardening; call it only once the file is written."""
        entry = PatternState(fingerprint=fingerprint, prompt_version=prompt_version,
                             model=model, candidates=candidates_fp,
                             date=on if on is not None else dt.date.today(),
                             garden=garden_hash(garden))
        with self._lock:
            if self._entries.get(slug) != entry:
                self._entries[slug] = entry
                self._version += 1
        return entry

    def forget(self, slug: str) -> bool:
        with self._lock:
            if self._entries.pop(slug, None) is None:
                return False
            self._version += 1
            return True

    def retain(self, slugs: Collection[str]) -> list[str]:
        """Drop the entries of patterns no longer in the library; the dropped slugs, sorted."""
        with self._lock:
            gone = sorted(s for s in self._entries if s not in slugs)
            for slug in gone:
                del self._entries[slug]
            if gone:
                self._version += 1
            return gone

    def snapshot(self) -> dict[str, PatternState]:
        with self._lock:
            return dict(self._entries)

    @property
    def dirty(self) -> bool:
        """True when something was recorded since the last save (or load)."""
        with self._lock:
            return self._version != self._saved_version

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, slug: object) -> bool:
        with self._lock:
            return slug in self._entries


def state_path(library_root: Path) -> Path:
    """Where a library's state lives; a single-file library keeps it beside the file."""
    folder = library_root.parent if library_root.is_file() else library_root
    return folder / STATE_DIR / STATE_FILE


def render(entries: Mapping[str, PatternState]) -> str:
    """The file's text: stable for equal states, so git sees only real changes.

    It is ``json.dumps`` of ``{"format": .., "patterns": {slug: entry}}`` with sorted keys
    and an indent of 2, made from each entry's own text (``_entry_text``, kept while the
    entry is unchanged): a pass saves every few seconds, and encoding a thousand entries
    again each time was most of the flow thread's work after the shortlists.
    """
    if not entries:
        return json.dumps({"format": FORMAT, "patterns": {}}, indent=2) + "\n"
    listed = ",\n".join(_entry_text(slug, entries[slug]) for slug in sorted(entries))
    return f'{{\n  "format": {json.dumps(FORMAT)},\n  "patterns": {{\n{listed}\n  }}\n}}\n'


@functools.lru_cache(maxsize=1 << 16)
def _entry_text(slug: str, entry: PatternState) -> str:
    """``"slug": {...}`` as it sits in the file, two levels deep."""
    alone = json.dumps({slug: entry.to_json()}, indent=2, sort_keys=True, ensure_ascii=False)
    return "\n".join("  " + line for line in alone[2:-2].split("\n"))


def parse(text: str, where: str) -> tuple[dict[str, PatternState], list[str]]:
    """Entries and problems; a bad entry is dropped alone, a bad file yields no entries."""
    try:
        check_json_depth(text, where)
        raw = json.loads(text)
    except ReadError as exc:
        return {}, [str(exc)]
    except json.JSONDecodeError as exc:
        return {}, [f"{where}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})"]
    if not isinstance(raw, dict):
        return {}, [f"{where}: expected a JSON object, found {type(raw).__name__}"]
    if raw.get("format") != FORMAT:
        return {}, [f"{where}: unknown state format {brief(raw.get('format'))} "
                    f"(expected {FORMAT})"]
    patterns = raw.get("patterns")
    if not isinstance(patterns, dict):
        return {}, [f"{where}: 'patterns' must be an object"]
    entries: dict[str, PatternState] = {}
    problems: list[str] = []
    for slug, value in patterns.items():
        try:
            entries[slug] = PatternState.from_json(value)
        except ValueError as exc:
            problems.append(f"{where}: entry {brief(slug)}: {exc}; it will be gardened again")
    return entries, problems


Signature = tuple[int, int, int]
"""A file's inode, modification time (ns) and size: equal while nobody replaced or edited it."""


def _signature(found: os.stat_result) -> Signature:
    return (found.st_ino, found.st_mtime_ns, found.st_size)


class StateError(GardenerError):
    """A state file the gardener refuses to read at all (a link, a folder): it is not guessed
    at, copied or overwritten, so nothing a link points to is ever read or replaced."""

    exit_code = 2


@dataclass(frozen=True)
class _OnDisk:
    text: str | None
    """None when the file could not be read as text."""
    entries: dict[str, PatternState]
    problems: list[str]
    signature: Signature | None = None
    data: bytes | None = None
    """The bytes read, kept for the backup of a file that does not read cleanly."""


def _read(path: Path) -> _OnDisk | None:
    """None when there is no file; otherwise its text and what ``parse`` makes of it.

    A link is refused (`StateError`) like every other ``.gardener/`` file: a committed
    ``state.json -> ~/.ssh/id_rsa`` would otherwise be read and copied into the library.
    """
    try:
        data, status = read_capped_bytes(path, MAX_JSON_BYTES)
    except FileNotFoundError:
        return None
    except ReadError as exc:
        if exc.problem == LINK_REFUSED:
            raise StateError(str(exc)) from None
        return _OnDisk(None, {}, [str(exc)])
    signature = _signature(status)
    try:
        text = decode(data, path)
    except ReadError as exc:
        return _OnDisk(None, {}, [str(exc)], signature, data)
    entries, problems = parse(text, str(path))
    return _OnDisk(text, entries, problems, signature, data)


def _known(path: Path, state: State) -> _OnDisk | None:
    """The file as ``state`` last loaded or saved it, when it is still that file; else read.

    A pass saves every few seconds: reading and parsing a thousand entries back each time,
    only to learn that the file is the one it wrote, cost more than writing it.
    """
    remembered = state._disk
    if remembered is not None:
        try:
            now: Signature | None = _signature(os.stat(path))
        except OSError:
            now = None
        if now == remembered[0]:
            return _OnDisk(remembered[1], {}, [], now)
    return _read(path)


def load_state(library_root: Path) -> State:
    """The library's state; empty when there is none, empty and reported when unreadable."""
    path = state_path(library_root)
    found = _read(path)
    if found is None:
        return State()
    problems = list(found.problems)
    if problems:
        problems.append(f"{path}: the unreadable part is ignored; the file will be copied to "
                        f"a .bak before it is next saved")
        for problem in problems:
            _log.warning("%s", problem)
    state = State(found.entries, problems)
    if not problems and found.text is not None and found.signature is not None:
        state._disk = (found.signature, found.text)
    return state


def _backup_path(path: Path) -> Path:
    """The first of ``state.json.bak``, ``state.json.1.bak``, ... with nothing at it: not a
    file, and not a link either (a dangling one included), which would lead the copy out."""
    candidate = path.with_name(path.name + ".bak")
    n = 1
    while os.path.lexists(candidate):
        candidate = path.with_name(f"{path.name}.{n}.bak")
        n += 1
    return candidate


def save_state(library_root: Path, state: State) -> Path | None:
    """Write the state atomically; returns the backup made of a corrupt file, if one was.

    A file on disk that does not read cleanly (corrupt, a newer format, a bad entry) is
    copied to ``state.json.bak`` (or ``state.json.N.bak``) first and a warning logged.
    Saves from several threads are serialised; each writes a snapshot at least as new as
    the previous one.
    """
    path = state_path(library_root)
    with state._save_lock:
        with state._lock:
            version = state._version
            text = render(state._entries)
        backup: Path | None = None
        found = _known(path, state)
        if found is not None and found.problems:
            backup = _backup_path(path)
            if found.data is not None:
                # The one writer: a unique temporary name, never through a link or a linked
                # folder, so a planted (even dangling) state.json.bak leads nowhere.
                write_atomic(backup, found.data, within=path.parent.parent)
            else:  # too large to read: set aside whole (a rename moves the entry, no link)
                os.rename(path, backup)
            _log.warning("%s: could not be read cleanly; copied to %s before overwriting",
                         path, backup)
        elif found is not None and found.text == text:
            _mark_saved(state, version)
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text, within=path.parent.parent)  # refuses a linked .gardener/
        try:
            state._disk = (_signature(os.stat(path)), text)
        except OSError:
            state._disk = None
        _mark_saved(state, version)
        return backup


def _mark_saved(state: State, version: int) -> None:
    with state._lock:
        state._saved_version = version


def summarize(state: State) -> list[dict[str, str]]:
    """One row per pattern, by slug, hashes shortened: for ``gardener state LIBRARY``."""
    rows: list[dict[str, str]] = []
    for slug, entry in sorted(state.snapshot().items()):
        rows.append({
            "slug": slug,
            "date": entry.date.isoformat(),
            "model": entry.model,
            "prompt_version": entry.prompt_version,
            "fingerprint": entry.fingerprint[:12],
            "candidates": entry.candidates[:12],
            "garden": entry.garden[:12],
        })
    return rows
