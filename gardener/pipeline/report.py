"""The JSON report of a pass: every pattern, what happened to it, and totals.

Maintainers and CI read this file rather than logs, so it is complete (failed and unreadable
files included), stable (sorted by path) and free of secrets (only outcome data goes in). A
gardening pass adds its tokens and their estimated price under ``cost``
(``gardener.endpoint.prices.as_dict``) and the patterns its token budget left under
``totals.not_asked``. Link targets the pass added to far more patterns than their usual share
(`gardener.steps.outliers`: what a prompt injection in one pattern looks like) are listed
first, under ``outliers``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gardener.library.document import ReadError
from gardener.library.write import write_atomic
from gardener.model import Detail, Outcome, Status
from gardener.steps.outliers import gained, outliers


def unreadable(errors: Iterable[ReadError]) -> list[Outcome]:
    """Files that could not be read count as failed patterns of the pass."""
    return [Outcome(path=str(e.path), status=Status.FAILED, error=str(e),
                    detail=Detail(problem="unreadable")) for e in errors]


def totals(outcomes: Iterable[Outcome]) -> dict[str, Any]:
    outcomes = list(outcomes)
    status = Counter(o.status.value for o in outcomes)
    reasons = Counter(r.reason.value for o in outcomes for r in o.removals)
    usage: Counter[str] = Counter()
    for o in outcomes:
        usage.update(o.usage)
    return {
        "patterns": len(outcomes),
        **{s.value: status.get(s.value, 0) for s in Status},
        "removals": sum(reasons.values()),
        "removals_by_reason": dict(sorted(reasons.items())),
        "renames": sum(len(o.renames) for o in outcomes),
        "conflicts": sum(len(o.conflicts) for o in outcomes),
        "added_links": sum(len(o.added) for o in outcomes),
        "added_links_with_evidence": sum(1 for o in outcomes for t in o.added
                                         if o.evidence.get(t)),
        # Items the pass left exactly as they were, per kind (issue 19: "N unchanged").
        "items_unchanged": {kind: sum(o.unchanged.get(kind, 0) for o in outcomes)
                            for kind in ("links", "entities", "communities")},
        # What the model proposed that the checks or the calibration did not let through: the
        # report keeps each with why (``detail.dropped``, ``detail.refused``).
        "refused": sum(len(o.detail.dropped) + len(o.detail.refused) for o in outcomes),
        "requests": sum(o.requests for o in outcomes),
        "usage": dict(sorted(usage.items())),
        # Skipped because the token budget was spent (``GardenOptions.budget_tokens``): the
        # next run asks them; counted apart from the patterns skipped as up to date.
        "not_asked": sum(1 for o in outcomes if o.detail.not_asked),
    }


def build(outcomes: Iterable[Outcome], *, command: str, library: Path,
          meta: Mapping[str, Any] | None = None,
          existing: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The report. ``existing``: the library's in-degrees before the pass
    (`gardener.steps.outliers.in_degrees`), which judge an outlier by its place in the
    library; without them, by the other targets of the pass."""
    ordered = sorted(outcomes, key=lambda o: o.path)
    flagged = outliers(gained(ordered), existing=existing, library=len(ordered))
    return {
        "command": command,
        "library": str(library),
        "generated": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        **(dict(meta) if meta else {}),
        "outliers": [o.as_dict() for o in flagged],
        "totals": totals(ordered),
        "patterns": [o.model_dump(mode="json") for o in ordered],
    }


def write(path: Path, report: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
