"""What people decided about the gardener's proposals: the rejection ledger, and its filter.

The gardener proposes and people decide. A link a person turned down must never come back in
the next pass, or every review would re-litigate it. The decisions live in one small YAML
file inside the library (``LIBRARY/.gardener/decisions.yaml``, committed with it), written
by ``gardener reject`` or by hand, and by ``gardener review`` for links a person deleted
from a garden after the gardener's last commit (``source: history``) and for the links a
pull request of the gardener's added when it was closed without merging
(``source: pull-request``, ``commit``: its head, so each closed pull request is read once).

A rejection names a pattern (``slug``), a link ``target`` and, optionally, a ``type``:
without one, every type of link from that pattern to that target is rejected. Rejected links
are dropped after validation, from the proposal and from the existing garden alike, so a
hand-edited ledger takes effect on the pattern's next pass.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import SingleQuotedScalarString
from yaml.constructor import SafeConstructor

from gardener.errors import GardenerError, brief
from gardener.library.bounded import MAX_YAML_BYTES, check_yaml_depth, read_capped
from gardener.library.document import ReadError, guard
from gardener.library.write import ConflictError, write_atomic
from gardener.model import LINK_TYPES
from gardener.text import one_line

LEDGER_NAME = "decisions.yaml"
Source = Literal["person", "history", "pull-request"]
SOURCES: tuple[Source, ...] = ("person", "history", "pull-request")
FIELDS: tuple[str, ...] = ("slug", "target", "type", "reason", "date", "source", "commit")

HEADER = """\
# graph-gardener decisions: links people rejected. The gardener never proposes them again.
# Add one with `gardener reject SLUG TARGET [--type T] [--reason TEXT]`, or edit by hand:
# without `type`, every type of link from `slug` to `target` is rejected. Commit this file.
"""


class LedgerError(GardenerError, ValueError):
    """A ledger that cannot be trusted; the message names the file and line.

    A ``ValueError``: like a bad ``--only``, it stops a run before any pattern is touched.
    """


class LedgerConflict(ConflictError):
    """The ledger changed on disk after it was read: a person edited it meanwhile.

    Nothing is written, so their edit stays; the message names the rejections that were not
    recorded, so the gardener's side is not lost silently either (run the command again).
    """

    def __init__(self, path: Path, unrecorded: tuple[Decision, ...]) -> None:
        named = ", ".join(one_line(d.describe())[:80] for d in unrecorded[:3])
        more = f" and {len(unrecorded) - 3} more" if len(unrecorded) > 3 else ""
        what = (f"{len(unrecorded)} rejection{'s' if len(unrecorded) != 1 else ''} "
                f"({named}{more}) not recorded" if unrecorded else "nothing new to record")
        OSError.__init__(self, f"{path}: changed on disk since the gardener read it; not "
                         f"written, so that edit stays; {what}: run the command again to "
                         "record them over the new text")
        self.path = path
        self.unrecorded = unrecorded


@dataclass(frozen=True)
class Decision:
    """One rejected link: from pattern ``slug`` to ``target`` (of ``type``, or of any type)."""

    slug: str
    target: str
    type: str | None = None
    reason: str = ""
    date: dt.date | None = None
    source: Source = "person"
    commit: str | None = None
    """For ``history``: the gardener commit after which a person deleted the link; for
    ``pull-request``: the head commit of the pull request closed without merging."""

    @property
    def key(self) -> tuple[str, str, str | None]:
        return (self.slug, self.target, self.type)

    def covers(self, slug: str, target: str, type_: str | None) -> bool:
        """True when this decision rejects a link ``slug -> target`` of ``type_``."""
        return (self.slug == slug and self.target == target
                and (self.type is None or self.type == type_))

    def describe(self) -> str:
        kind = f" ({self.type})" if self.type else ""
        return f"{self.slug} -> {self.target}{kind}"


@dataclass(frozen=True)
class Ledger:
    """Every rejection, in file order; lookups go through ``Rejections``."""

    decisions: tuple[Decision, ...] = ()

    def find(self, slug: str, target: str, type_: str | None) -> Decision | None:
        return next((d for d in self.decisions if d.covers(slug, target, type_)), None)

    def add(self, new: Iterable[Decision]) -> tuple[Ledger, list[Decision]]:
        """The ledger with the decisions it did not already cover, and those decisions."""
        kept = list(self.decisions)
        added: list[Decision] = []
        for d in new:
            if any(old.covers(d.slug, d.target, d.type) for old in kept):
                continue
            kept.append(d)
            added.append(d)
        return Ledger(tuple(kept)), added

    def union(self, other: Ledger) -> Ledger:
        return self.add(other.decisions)[0]


# ---------------------------------------------------------------------------------------------
# The file


def ledger_path(library_root: Path) -> Path:
    return library_root / ".gardener" / LEDGER_NAME


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _field(raw: Mapping[str, Any], name: str, where: str, *, required: bool = False) -> str | None:
    value = raw.get(name)
    if value is None:
        if required:
            raise LedgerError(f"{where}: '{name}' is missing")
        return None
    if not isinstance(value, str) or not value.strip():
        raise LedgerError(f"{where}: '{name}' must be a non-empty text, not {brief(value)}")
    return value.strip()


def _decision(raw: Any, where: str) -> Decision:
    if not isinstance(raw, Mapping):
        raise LedgerError(f"{where}: a decision is a mapping with slug and target, "
                          f"not {brief(raw)}")
    unknown = sorted(str(k) for k in raw if k not in FIELDS)
    if unknown:
        raise LedgerError(f"{where}: unknown key(s) {', '.join(unknown)}; "
                          f"known: {', '.join(FIELDS)}")
    type_ = _field(raw, "type", where)
    if type_ is not None and type_ not in LINK_TYPES:
        raise LedgerError(f"{where}: type '{type_}' is not a link type "
                          f"({', '.join(LINK_TYPES)})")
    source = _field(raw, "source", where) or "person"
    if source not in SOURCES:
        raise LedgerError(f"{where}: source must be person or history (or pull-request, "
                          f"which gardener review writes), not '{source}'")
    date = raw.get("date")
    if isinstance(date, str):
        try:
            date = dt.date.fromisoformat(date)
        except ValueError:
            raise LedgerError(f"{where}: date {brief(date)} is not like 2026-02-19") from None
    if date is not None and (not isinstance(date, dt.date) or isinstance(date, dt.datetime)):
        raise LedgerError(f"{where}: date {brief(date)} is not like 2026-02-19")
    reason = raw.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise LedgerError(f"{where}: reason must be text, not {brief(reason)}")
    return Decision(slug=_field(raw, "slug", where, required=True) or "",
                    target=_field(raw, "target", where, required=True) or "",
                    type=type_, reason=(reason or "").strip(), date=date,
                    source=next(s for s in SOURCES if s == source),
                    commit=_field(raw, "commit", where))


def _constructed(node: yaml.Node) -> Any:
    """``node`` as Python values, through PyYAML's safe constructor (as ``safe_load``)."""
    return SafeConstructor().construct_document(node)


def _culprit(node: yaml.Node) -> yaml.Node:
    """The innermost node under ``node`` that cannot be constructed on its own: the one an
    error names, so ``date: 2025-13-45`` is reported on its own line, not the list's."""
    children: list[yaml.Node] = []
    if isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    elif isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    for child in children:
        try:
            _constructed(child)
        except (ValueError, OverflowError, yaml.YAMLError):
            return _culprit(child)
    return node


def _data(node: yaml.Node, where: str) -> Any:
    """The ledger's values; a scalar PyYAML cannot construct (``2025-13-45`` is a timestamp
    with month 13: ``ValueError``) is named by file and line, never a traceback."""
    try:
        return _constructed(node)
    except (ValueError, OverflowError, yaml.YAMLError) as exc:
        bad = _culprit(node)
        value = bad.value if isinstance(bad, yaml.ScalarNode) else bad.tag
        problem = (exc.problem if isinstance(exc, yaml.MarkedYAMLError) and exc.problem
                   else str(exc))
        kind = bad.tag.rsplit(":", 1)[-1]
        raise LedgerError(f"{where}:{_line(bad)}: {brief(value)} cannot be read as a {kind}: "
                          f"{one_line(problem)[:120]}") from None


def parse(text: str, where: str) -> Ledger:
    """A ledger from its text; ``where`` (the file) starts every error message.

    Nesting is counted before PyYAML composes (whose recursion a 10,000-deep file would
    exhaust), and values are constructed after the alias and tag guard."""
    try:
        check_yaml_depth(text, where)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None:
            guard(node, where, 0)  # alias bombs and foreign tags, as for pattern files
        data = _data(node, where) if node is not None else None
    except ReadError as exc:
        raise LedgerError(str(exc)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise LedgerError(f"{where}{line}: not valid YAML: {problem}") from None
    if data is None:
        return Ledger()
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        raise LedgerError(f"{where}:1: expected a mapping with a 'rejected' list")
    unknown = sorted(str(k) for k in data if k != "rejected")
    if unknown:
        raise LedgerError(f"{where}:1: unknown key(s) {', '.join(unknown)}; only 'rejected'")
    items = data.get("rejected")
    if items is None:
        return Ledger()
    value_node = next(v for k, v in node.value if k.value == "rejected")
    if not isinstance(items, list) or not isinstance(value_node, yaml.SequenceNode):
        raise LedgerError(f"{where}:{_line(value_node)}: 'rejected' must be a list")
    return Ledger(tuple(_decision(raw, f"{where}:{_line(item)}")
                        for raw, item in zip(items, value_node.value, strict=True)))


def render(ledger: Ledger) -> str:
    """The ledger's text: the header, then the decisions sorted by slug, target and type."""
    ordered = sorted(ledger.decisions, key=lambda d: (d.slug, d.target, d.type or ""))
    items = [{k: v for k, v in (("slug", d.slug), ("target", d.target), ("type", d.type),
                                 ("reason", d.reason or None), ("date", d.date),
                                 ("source", d.source), ("commit", d.commit)) if v is not None}
             for d in ordered]
    body = yaml.safe_dump({"rejected": items}, sort_keys=False, allow_unicode=True, width=100,
                          default_flow_style=False)
    return HEADER + body


@dataclass(frozen=True)
class Read:
    """A ledger and the exact text it was read from (None: there was no file): what
    ``save`` compares the file with, so a person's edit made meanwhile is never overwritten."""

    ledger: Ledger
    text: str | None


def _text(path: Path) -> str | None:
    """The ledger file's text, None when there is none. Read within `MAX_YAML_BYTES` (a
    14.6 MB ledger took PyYAML 88 s), never through a link: a committed
    ``decisions.yaml -> ~/.bashrc`` would be read, then written, through it."""
    try:
        return read_capped(path, MAX_YAML_BYTES)
    except FileNotFoundError:
        return None
    except ReadError as exc:
        raise LedgerError(str(exc)) from None


def read(path: Path) -> Read:
    """The ledger at ``path`` with the text it came from; empty when there is no file."""
    text = _text(path)
    return Read(parse(text, str(path)) if text is not None else Ledger(), text)


def load(path: Path) -> Ledger:
    """The ledger at ``path``; an empty one when there is no such file."""
    return read(path).ledger


def _plain_safe(value: Any) -> Any:
    """``value``, quoted where PyYAML (YAML 1.1, which reads the ledger) would not read the
    plain scalar back as this text: ruamel writes YAML 1.2, where ``no`` or ``1:20`` is text."""
    if isinstance(value, str) and yaml.safe_load(value or "''") != value:
        return SingleQuotedScalarString(value)
    return value


def appended(text: str, ledger: Ledger, where: str) -> str:
    """``text`` (a ledger file) with the decisions of ``ledger`` it lacks added at the end of
    its ``rejected`` list, through ruamel.yaml's round trip: the comments, order and notes
    people wrote in the file stay, where rewriting it whole (``render``) would drop them."""
    present = {d.key for d in parse(text, where).decisions}
    new = [d for d in ledger.decisions if d.key not in present]
    if not new:
        return text
    rt = YAML(typ="rt")
    rt.width = 100
    if "\n  - " in text:  # the file's own list indentation, else PyYAML's (indentless)
        rt.indent(mapping=2, sequence=4, offset=2)
    data = rt.load(text)
    if not isinstance(data, CommentedMap):
        data = CommentedMap()
    items = data.get("rejected")
    if not isinstance(items, CommentedSeq):
        items = CommentedSeq()
        data["rejected"] = items
    for d in new:
        item = CommentedMap()
        for key, value in (("slug", d.slug), ("target", d.target), ("type", d.type),
                           ("reason", d.reason or None), ("date", d.date),
                           ("source", d.source), ("commit", d.commit)):
            if value is not None:
                item[key] = _plain_safe(value)
        items.append(item)
    out = io.StringIO()
    rt.dump(data, out)
    result = out.getvalue()
    again = {d.key for d in parse(result, where).decisions}
    if again != present | {d.key for d in new}:  # what PyYAML reads is what was meant
        raise LedgerError(f"{where}: the ledger could not be extended safely; not written")
    return result


def save(path: Path, ledger: Ledger, *, since: Read | None = None) -> None:
    """Write the ledger atomically: a new file whole, an existing one extended in place.

    Refused with `LedgerConflict` (nothing written) when the file no longer holds the text
    ``since`` was read from, or, checked by `write_atomic` just before its rename, the text
    this call read: a person's edit to the ledger during a pass is never lost, and the
    message names the rejections that were not recorded. (A file created by someone between
    this call's read of "no file" and its rename is the one window left: a rename's.)
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    text = _text(path)
    before = since.ledger if since is not None else (
        parse(text, str(path)) if text is not None else Ledger())
    known = {d.key for d in before.decisions}
    unrecorded = tuple(d for d in ledger.decisions if d.key not in known)
    if since is not None and since.text != text:
        raise LedgerConflict(path, unrecorded)
    new = render(ledger) if text is None or not text.strip() else appended(text, ledger,
                                                                           str(path))
    try:  # `within` refuses a linked .gardener/
        write_atomic(path, new, expected=text, within=path.parent.parent)
    except ConflictError:
        raise LedgerConflict(path, unrecorded) from None
