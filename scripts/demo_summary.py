"""What the demo's gardening pass proposed and kept, per pattern: read from its report and
from the gardened copy, so it shows what was written, not what was hoped for.

Usage: python scripts/demo_summary.py REPORT.json LIBRARY
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from gardener.library import load as library
from gardener.model import Garden, Link


def _items(values: list[str], limit: int = 4) -> str:
    shown = ", ".join(values[:limit])
    return (shown + (f" (+{len(values) - limit})" if len(values) > limit else "")) or "none"


def _removed(row: dict[str, Any]) -> str:
    reasons = Counter(f"{r['reason']} {r['kind']}" for r in row.get("removals", []))
    return ", ".join(f"{n} {what}" for what, n in sorted(reasons.items())) or "nothing"


def _link(link: Link) -> str:
    confidence = f" {link.confidence:g}" if link.confidence is not None else ""
    return f"{link.target} ({link.type}{confidence})"


def summary(report: dict[str, Any], root: Path) -> list[str]:
    """Lines per pattern of the report: the garden now in the file, and what was removed."""
    gardens = {e.pattern.slug: e.pattern.garden for e in library.load(root).entries}
    lines = []
    for row in sorted(report["patterns"], key=lambda r: str(r.get("slug"))):
        slug = str(row.get("slug"))
        usage = row.get("usage") or {}
        lines.append(f"- {slug}: {row['status']} ({row.get('requests', 0)} request(s), "
                     f"{usage.get('prompt_tokens', 0)}+{usage.get('completion_tokens', 0)} "
                     "tokens)")
        if row.get("error"):
            lines.append(f"    error: {row['error']}")
            continue
        garden = gardens.get(slug, Garden())
        added = set(row.get("added", []))
        new = [_link(lk) for lk in garden.inferred_links if lk.target in added]
        kept = [_link(lk) for lk in garden.inferred_links if lk.target not in added]
        lines.append(f"    entities: {_items([e.id for e in garden.entities])}; "
                     f"communities: {_items([c.id for c in garden.communities])}")
        lines.append(f"    new links: {_items(new)}; links kept: {_items(kept, 2)}")
        evidence = row.get("evidence") or {}
        for lk in garden.inferred_links:
            if lk.target in added and evidence.get(lk.target):
                quote = " ".join(str(evidence[lk.target]).split())
                cut = "..." if len(quote) > 110 else ""
                lines.append(f"      {lk.target}: \"{quote[:110]}{cut}\"")
        detail = row.get("detail") or {}
        refused = len(detail.get("dropped", [])) + len(detail.get("refused", []))
        lines.append(f"    removed: {_removed(row)}"
                     + (f"; model's items refused: {refused} (listed in the report)"
                        if refused else ""))
    return lines


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    report_path, root = Path(argv[0]), Path(argv[1])
    report = json.loads(report_path.read_text(encoding="utf-8"))
    totals = report["totals"]
    usage = totals.get("usage", {})
    if report.get("dry_run"):
        print(f"Dry run: nothing was written to {root}; the diffs above show what "
              f"{report.get('model')} proposed, after merging and pruning.")
    else:
        print(f"What {report.get('model')} proposed, as written to {root} (after merging with "
              "what was there and pruning):")
        print("\n".join(summary(report, root)))
    print(f"{totals['patterns']} patterns in {report.get('seconds')} s: "
          f"{totals['changed']} changed, {totals['failed']} failed, "
          f"{totals['added_links']} links added, {totals['removals']} items removed; "
          f"{totals['requests']} model requests, {usage.get('prompt_tokens', 0)} prompt "
          f"+ {usage.get('completion_tokens', 0)} completion tokens")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
