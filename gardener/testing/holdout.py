"""Held-out patterns for ``bench/quality.py``: the product's logic, and the bench's own bits.

The choice of patterns, the hiding of their human links in a copy, and precision, recall and
type agreement live in one place, ``gardener.pipeline.holdout`` (``gardener evaluate`` uses
them too); this module re-exports them for the benchmark and its tests
(tests/test_quality_bench.py). Here only: `merged`, which makes one report of the benchmark's
per-pattern runs, and `hide` and `check_hidden` ending a script with a message
(``SystemExit``) where the product raises `gardener.errors.Failed`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gardener.errors import Failed
from gardener.model import Pattern, vocabulary_type
from gardener.pipeline import holdout as _holdout
from gardener.pipeline.holdout import (
    DROPPED_LINK,
    HIDDEN_KEYS,
    MIN_LINKS,
    Gold,
    Proposed,
    Score,
    Totals,
    choose,
    dropped_targets,
    gold_of,
    most_common_type,
    score,
    total,
    unique_slugs,
    without_keys,
    written_links,
)

__all__ = ["DROPPED_LINK", "HIDDEN_KEYS", "MIN_LINKS", "Gold", "Proposed", "Score", "Totals",
           "check_hidden", "choose", "dropped_targets", "gold_of", "hide", "merged",
           "most_common_type", "score", "total", "unique_slugs", "vocabulary_type",
           "without_keys", "written_links"]


def hide(path: Path, extra_keys: Iterable[str] = ()) -> None:
    """`gardener.pipeline.holdout.hide`, ending the script with its message on failure."""
    try:
        _holdout.hide(path, extra_keys)
    except Failed as exc:
        raise SystemExit(str(exc)) from None


def check_hidden(before: Mapping[str, Pattern], after: Mapping[str, Pattern],
                 slugs: Sequence[str]) -> None:
    """`gardener.pipeline.holdout.check_hidden`, ending the script with its message."""
    try:
        _holdout.check_hidden(before, after, slugs)
    except Failed as exc:
        raise SystemExit(str(exc)) from None


def merged(reports: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One report from per-pattern runs: their patterns, and seconds and usage summed."""
    usage: Counter[str] = Counter()
    for r in reports:
        usage.update(r.get("totals", {}).get("usage", {}))
    return {"model": reports[0].get("model") if reports else None,
            "seconds": round(sum(float(r.get("seconds") or 0.0) for r in reports), 2),
            "totals": {"usage": dict(usage)},
            "patterns": [p for r in reports for p in r.get("patterns", [])]}
