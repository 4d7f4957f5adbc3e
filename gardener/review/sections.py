"""The parts of the pull-request body and the pass report, each a list of Markdown lines.

What people need to decide comes first in both: the prompt-injection warning (`warning`),
every new link with the model's reason and evidence (`new_link_rows`), the clashes with
human relationships (`conflict_items`) and the removals grouped by reason code
(`removal_table`). Then, per pattern, the details (`pattern_section`): links removed and
retyped, conflicts, vitality, entities, communities, a Mermaid picture of the
neighbourhood and the diff. Pure: data in, Markdown lines out; every string from a file or
the model goes through `gardener.review.markdown.cell` or ``code``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from gardener.model import Outcome
from gardener.review.changes import (
    LinkDelta,
    PatternChange,
    communities,
    entities,
    item_delta,
    link_delta,
    removal_codes,
)
from gardener.review.markdown import cell, code, fenced, mermaid_label, pct, quote
from gardener.steps.outliers import Outlier

NEW_LINKS_HEADER = ("| pattern | target | type | confidence | reason | evidence (quoted from "
                    "the pattern) |", "|---|---|---|---:|---|---|")
KINDS = (("link", "links"), ("entity", "entities"), ("community", "communities"))


def warning(flagged: Sequence[Outlier]) -> tuple[list[str], list[str]]:
    """The alert at the top of the body: targets added to far more patterns than usual.
    Its opening lines, and one line per flagged target."""
    if not flagged:
        return [], []
    head = ["> [!WARNING]",
            "> **Link targets proposed for many patterns at once.** A pattern's own text "
            "may be telling the model to link them (prompt injection); each link's evidence "
            "can still be a real quote. Check these links before merging; reject the wrong "
            "ones with `gardener reject`.", ">"]
    items = []
    for o in flagged:
        shown = ", ".join(code(s) for s in o.patterns[:20])
        more = f" and {len(o.patterns) - 20} more" if len(o.patterns) > 20 else ""
        items.append(f"> - {code(o.target)} {o.describe()}: {shown}{more}")
    return head, items


def new_link_rows(changes: Sequence[PatternChange]) -> list[tuple[str, str]]:
    """Every link the pass added, one table row each, with the slug of its pattern."""
    rows: list[tuple[str, str]] = []
    for c in changes:
        o = c.outcome
        for lk in link_delta(c.old, c.new, o).added:
            rows.append((c.slug, f"| {code(c.slug)} | {code(lk.target)} | {cell(lk.type or '?')} "
                         f"| {pct(lk.confidence)} | {cell(lk.reason or '')} "
                         f"| {quote(o.evidence.get(lk.target))} |"))
    return rows


def conflict_items(changes: Sequence[PatternChange]) -> list[str]:
    """Each clash of an inferred link with a human relationship, as a list item."""
    return [f"- {code(c.slug)}: {cell(x)}" for c in changes for x in c.outcome.conflicts]


def removal_table(changes: Sequence[PatternChange]) -> list[str]:
    """What the pass took out of the files, grouped by reason code: counts per kind and a
    few examples (``pattern → item``)."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(
        (k for k, _ in KINDS), 0))
    examples: dict[str, list[str]] = defaultdict(list)
    for c in changes:
        for kind, item, reason in removal_codes(c):
            counts[reason][kind] += 1
            if len(examples[reason]) < 3:
                examples[reason].append(code(f"{c.slug} → {item}"))
    if not counts:
        return []
    lines = ["| reason | links | entities | communities | for example |",
             "|---|---:|---:|---:|---|"]
    for reason in sorted(counts, key=lambda r: (-sum(counts[r].values()), r)):
        n = counts[reason]
        total = sum(n.values())
        more = f" and {total - len(examples[reason])} more" if total > len(examples[reason]) \
            else ""
        lines.append(f"| {code(reason)} | {n['link']} | {n['entity']} | {n['community']} | "
                     f"{', '.join(examples[reason])}{more} |")
    return lines


def neighbourhood(change: PatternChange, delta: LinkDelta) -> str:
    """The changed pattern, its human relationships (solid), inferred links kept (dotted),
    added (thick, green) and removed (dashed, red), as a Mermaid flowchart.

    Node ids are generated (``n0``, ``n1``...), never slugs: a slug like ``end`` or one with
    odd characters would break the graph; slugs appear only inside quoted labels.
    """
    ids: dict[str, str] = {}

    def node(slug: str) -> str:
        if slug not in ids:
            ids[slug] = f"n{len(ids)}"
        return ids[slug]

    center = node(change.slug)
    edges: list[tuple[str, str]] = []  # (line, colour or "")
    added = {lk.target for lk in delta.added}
    retyped = {new.target for _, new in delta.retyped}
    for h in change.human:
        if h.resolved:
            edges.append((f'{center} -- "{mermaid_label(h.type)}" --> {node(h.target)}', ""))
    for lk in (change.new.inferred_links if change.new else ()):
        label = mermaid_label(lk.type or "?")
        if lk.target in added or lk.target in retyped:
            colour = "stroke:#2da44e,stroke-width:3px"
            edges.append((f'{center} == "{label} (new)" ==> {node(lk.target)}', colour))
        else:
            edges.append((f'{center} -. "{label}" .-> {node(lk.target)}', ""))
    for lk, _why in delta.removed:
        label = mermaid_label(lk.type or "?")
        edges.append((f'{center} -. "{label} (removed)" .-> {node(lk.target)}',
                      "stroke:#cf222e,stroke-dasharray:4 4"))
    lines = ["flowchart LR"]
    for slug, nid in ids.items():
        lines.append(f'  {nid}["{mermaid_label(slug)}"]')
    lines += [f"  {line}" for line, _ in edges]
    lines += ["  classDef focus fill:#ddf4ff,stroke:#0969da,stroke-width:2px",
              f"  class {center} focus"]
    lines += [f"  linkStyle {i} {colour}" for i, (_, colour) in enumerate(edges) if colour]
    return "\n".join(lines)


def _added(o: Outcome, d: LinkDelta, listed: bool) -> list[str]:
    if not d.added:
        return []
    if listed:
        n = len(d.added)
        return [f"**Links added**: {n} (in *New links* above)", ""]
    lines = ["**Links added**", "",
             "| target | type | confidence | reason | evidence (quoted from the pattern) |",
             "|---|---|---:|---|---|"]
    lines += [f"| {code(lk.target)} | {cell(lk.type or '?')} | {pct(lk.confidence)} "
              f"| {cell(lk.reason or '')} | {quote(o.evidence.get(lk.target))} |"
              for lk in d.added]
    return [*lines, ""]


def _retyped(o: Outcome, d: LinkDelta) -> list[str]:
    if not d.retyped:
        return []
    retyped = {r.item: r for r in o.removals if r.kind == "link" and r.reason == "retyped"}
    lines = ["**Links retyped**", "", "| target | was | now | confidence | why |",
             "|---|---|---|---:|---|"]
    lines += [f"| {code(new.target)} | {cell(old.type or '?')} | {cell(new.type or '?')} "
              f"| {pct(new.confidence)} | "
              + (cell(f"retyped: {retyped[new.target].detail}") if new.target in retyped
                 else "renamed to the vocabulary") + " |" for old, new in d.retyped]
    return [*lines, ""]


def _vitality(c: PatternChange) -> list[str]:
    new_reasoning = c.new.vitality_reasoning if c.new else None
    old_reasoning = c.old.vitality_reasoning if c.old else None
    if not new_reasoning or new_reasoning == old_reasoning:
        return []
    score = "none" if c.vitality is None else f"{c.vitality:g}"
    lines = ["**Vitality**", "", "| | |", "|---|---|", f"| human score | {score} |"]
    if c.human_reasoning:
        lines.append(f"| human reasoning | {cell(c.human_reasoning, 600)} |")
    return [*lines, f"| proposed reasoning | {cell(new_reasoning, 600)} |", ""]


def pattern_section(c: PatternChange, *, listed: bool = False) -> tuple[list[str], str | None]:
    """A pattern's section, and its diff block (added later, where the room allows).
    ``listed``: its added links are in the *New links* table already; only counted here."""
    o = c.outcome
    d = link_delta(c.old, c.new, o)
    lines = [f"### {cell(c.title, 120)} ({code(c.slug)})", "", f"{code(c.path)}", ""]
    if o.unchanged:
        u = o.unchanged
        lines += [f"{sum(u.values())} unchanged: {u.get('links', 0)} links, "
                  f"{u.get('entities', 0)} entities, {u.get('communities', 0)} communities", ""]
    lines += _added(o, d, listed)
    if d.removed:
        lines += ["**Links removed**", "", "| target | type | why |", "|---|---|---|"]
        lines += [f"| {code(lk.target)} | {cell(lk.type or '?')} | {cell(why)} |"
                  for lk, why in d.removed]
        lines.append("")
    lines += _retyped(o, d)
    if o.conflicts:
        lines += ["**Conflicts with human-curated relationships** (the human one wins)", ""]
        lines += [f"- {cell(x)}" for x in o.conflicts]
        lines.append("")
    refused = o.detail.rejected or []
    if refused:
        lines += ["**Not proposed again** (rejected earlier): "
                  + ", ".join(code(str(t)) for t in refused), ""]
    lines += _vitality(c)
    ents = item_delta(entities(c.old), entities(c.new))
    coms = item_delta(communities(c.old), communities(c.new))
    for name, kind, delta in (("Entities", "entity", ents), ("Communities", "community", coms)):
        if delta.added or delta.removed:
            why = {r.item: r.reason.value for r in o.removals if r.kind == kind}
            parts = [*(f"+{code(x)}" for x in delta.added),
                     *(f"−{code(x)} ({why.get(x, 'removed')})" for x in delta.removed)]
            lines += [f"**{name}**: " + " ".join(parts), ""]
    lines += [fenced(neighbourhood(c, d), "mermaid"), ""]
    block = None
    if o.diff:
        block = "\n".join(["<details><summary>Diff</summary>", "", fenced(o.diff, "diff"), "",
                           "</details>", ""])
    return lines, block
