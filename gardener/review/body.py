"""The pull-request body for a gardening pass: what changed, why, and how to say no.

Maintainers decide on the gardener's proposals in a pull request, so the body has to carry
everything a decision needs without opening the files: a summary, then per pattern the links
added (with type, confidence, the model's reason and its evidence, a quote of the
pattern's own text), removed (with pruning's reason), retyped (``retyped``: a proposed type
with evidence; else a vocabulary rename), the entities and communities added and removed
(each removal with its reason code, ``stale``, ``cap``...), how many items the pass left
unchanged, the clashes with human relationships, the proposed vitality reasoning beside the
human score, a Mermaid picture of the neighbourhood and the diff. Pure: data in, Markdown out.

Model text ends up here, so every model-written string goes through one helper, `cell`: one
line, Markdown's link and HTML characters backslash-escaped, and whatever GitHub would turn
into a link or a notification (URLs, ``www.``, e-mail addresses, ``@user`` and ``@org/team``,
``#123`` and ``owner/repo#123``) shown in a code span: a reason must not ping anyone, nor
carry a live link or a tracking image into the pull request.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from gardener.endpoint.prices import Price, dollars, price_for
from gardener.library.decisions import Decision
from gardener.model import Garden, HumanLink, Link, Outcome, Status
from gardener.steps.outliers import Outlier, gained, outliers
from gardener.text import one_line

MAX_BODY = 60_000
"""GitHub refuses bodies over 65,536 characters; diffs are left out past this budget."""

MARKER = "<!-- graph-gardener review -->"
"""First line of every body: how a later run (or a person) knows who wrote it."""


@dataclass(frozen=True)
class PatternChange:
    """One pattern the pass looked at, with what a reviewer needs to judge it."""

    slug: str
    path: str
    """Relative to the repository, as GitHub shows it."""
    title: str
    outcome: Outcome
    old: Garden | None
    new: Garden | None
    human: tuple[HumanLink, ...] = ()
    vitality: float | None = None
    """The human vitality score (``ontology.commons_assessment.vitality``)."""
    human_reasoning: str | None = None
    """The human vitality reasoning (``ontology.commons_assessment.vitality_reasoning``)."""


@dataclass(frozen=True)
class PassInfo:
    """What the whole pass was: where, on what, with which model and prompt."""

    library: str
    base: str
    branch: str
    model: str
    prompt_version: str
    today: dt.date
    base_sha: str = ""
    learned: tuple[Decision, ...] = ()
    """Rejections learned in this run: links deleted by hand, links of closed pull requests."""
    honoured: int = 0
    """Rejections in force (ledger and history) during the pass."""
    schedule: str = ""
    """When the bot runs (a cron line, or words); empty: when someone runs it."""
    price: Price | None = None
    """What the model's tokens cost (``gardener.endpoint.prices``); None: the built-in table's."""


@dataclass(frozen=True)
class LinkDelta:
    added: tuple[Link, ...] = ()
    removed: tuple[tuple[Link, str], ...] = ()
    """Each removed link and why it went (pruning's reason code and detail)."""
    retyped: tuple[tuple[Link, Link], ...] = ()


@dataclass(frozen=True)
class ItemDelta:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Totals:
    changed: int = 0
    failed: int = 0
    links_added: int = 0
    links_removed: int = 0
    links_retyped: int = 0
    entities: ItemDelta = field(default_factory=ItemDelta)
    communities: ItemDelta = field(default_factory=ItemDelta)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0


# ---------------------------------------------------------------------------------------------
# What changed


def link_delta(old: Garden | None, new: Garden | None, outcome: Outcome) -> LinkDelta:
    """Links by target: added, removed (with the pass's reason), retyped."""
    before = {lk.target: lk for lk in (old.inferred_links if old else ())}
    after = {lk.target: lk for lk in (new.inferred_links if new else ())}
    why = {r.item: f"{r.reason.value}" + (f": {r.detail}" if r.detail else "")
           for r in outcome.removals if r.kind == "link"}
    added = tuple(lk for t, lk in after.items() if t not in before)
    removed = tuple((lk, why.get(t, "removed by the pass"))
                    for t, lk in before.items() if t not in after)
    retyped = tuple((before[t], lk) for t, lk in after.items()
                    if t in before and before[t].type != lk.type)
    return LinkDelta(added, removed, retyped)


def item_delta(old: Iterable[str], new: Iterable[str]) -> ItemDelta:
    a, b = list(dict.fromkeys(old)), list(dict.fromkeys(new))
    return ItemDelta(tuple(x for x in b if x not in a), tuple(x for x in a if x not in b))


def _entities(g: Garden | None) -> list[str]:
    return [e.id for e in g.entities] if g else []


def _communities(g: Garden | None) -> list[str]:
    return [c.id for c in g.communities] if g else []


def totals(changes: Sequence[PatternChange], outcomes: Sequence[Outcome]) -> Totals:
    ents_added: list[str] = []
    ents_removed: list[str] = []
    coms_added: list[str] = []
    coms_removed: list[str] = []
    added = removed = retyped = 0
    for c in changes:
        if c.outcome.status is not Status.CHANGED:
            continue
        d = link_delta(c.old, c.new, c.outcome)
        added, removed, retyped = (added + len(d.added), removed + len(d.removed),
                                   retyped + len(d.retyped))
        e = item_delta(_entities(c.old), _entities(c.new))
        m = item_delta(_communities(c.old), _communities(c.new))
        ents_added += e.added
        ents_removed += e.removed
        coms_added += m.added
        coms_removed += m.removed
    return Totals(
        changed=sum(1 for o in outcomes if o.status is Status.CHANGED),
        failed=sum(1 for o in outcomes if o.status is Status.FAILED),
        links_added=added, links_removed=removed, links_retyped=retyped,
        entities=ItemDelta(tuple(ents_added), tuple(ents_removed)),
        communities=ItemDelta(tuple(coms_added), tuple(coms_removed)),
        prompt_tokens=sum(o.usage.get("prompt_tokens", 0) for o in outcomes),
        completion_tokens=sum(o.usage.get("completion_tokens", 0) for o in outcomes),
        requests=sum(o.requests for o in outcomes))


# ---------------------------------------------------------------------------------------------
# Safe Markdown


_LIVE = re.compile(
    r"(?:\b[a-z][a-z0-9+.-]*://|\bwww\.|\b(?:mailto|xmpp):)"  # a URL, less its end's
    r"(?:[^\s|`<>]*[^\s|`<>.,:;!?)\]'\"])?"  # punctuation (as GitHub's autolink)
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"  # an e-mail address: autolinked as mailto
    r"|(?<![\w`])@[a-z0-9][\w-]*(?:/[\w.-]+)?"  # @user, @org/team
    r"|(?<!\w)(?:[\w.-]+/[\w.-]+)?#\d+\b|\bgh-\d+\b",  # #123, owner/repo#123, GH-123
    re.IGNORECASE)
"""What GitHub links or notifies on in plain text. Its mentions, references and e-mail links
are made after Markdown, from the rendered text, so ``\\@team`` still pings (github/cmark-gfm
issues 181 and 389); only a code span is left alone."""
_ESCAPES = str.maketrans({"\\": "\\\\", "`": "\\`", "[": "\\[", "]": "\\]", "!": "\\!",
                          "|": "\\|", "&": "&amp;", "<": "&lt;", ">": "&gt;"})
"""Backslash escapes CommonMark honours (``[``, ``]``, ``!``: no link, no image; ``|``: no
new table cell; ``\\`` and a backtick: no escape or code span of the model's), and entities
for ``<``, ``>`` (no HTML, no ``<https://...>`` autolink) and ``&`` (no entity of its own)."""


def cell(text: object, limit: int = 300) -> str:
    """Model-written (or file) text as inert Markdown, one line: the one helper every such
    string of the body goes through, in table cells and list items alike.

    Cut to ``limit`` characters before escaping, so a cut never splits an escape or a code
    span; what GitHub would link or notify on (`_LIVE`) becomes a code span, the rest is
    escaped (`_ESCAPES`). ``[docs](https://evil.example) ![x](https://evil.example/p.png)
    @org/team #1`` shows as that text, with no link, no image, no ping.
    """
    flat = one_line(str(text))
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    out: list[str] = []
    at = 0
    for live in _LIVE.finditer(flat):
        out += [flat[at:live.start()].translate(_ESCAPES), code(live.group())]
        at = live.end()
    out.append(flat[at:].translate(_ESCAPES))
    return "".join(out)


def code(text: str) -> str:
    """Inline code that survives backticks, newlines and controls in the text: a slug like
    ``"x\n\n@org/team [x](https://evil)"`` stays inside its span, on one line."""
    text = one_line(text)
    run = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * (run + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def fenced(text: str, lang: str) -> str:
    run = max((len(m) for m in re.findall(r"`{3,}", text)), default=0)
    fence = "`" * max(3, run + 1)
    return f"{fence}{lang}\n{text.rstrip(chr(10))}\n{fence}"


def _quote(evidence: str | None) -> str:
    """A link's evidence as a quoted cell; a dash when the pass had none for it."""
    return f"“{cell(evidence, 200)}”" if evidence else "–"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


# ---------------------------------------------------------------------------------------------
# Mermaid


def _mermaid_label(text: str) -> str:
    """A quoted Mermaid label: quotes and angle brackets as entities, one line."""
    flat = " ".join(text.split())
    return (flat.replace("#", "#35;").replace("&", "#amp;").replace('"', "#quot;")
            .replace("<", "#lt;").replace(">", "#gt;"))


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
            edges.append((f'{center} -- "{_mermaid_label(h.type)}" --> {node(h.target)}', ""))
    for lk in (change.new.inferred_links if change.new else ()):
        label = _mermaid_label(lk.type or "?")
        if lk.target in added or lk.target in retyped:
            colour = "stroke:#2da44e,stroke-width:3px"
            edges.append((f'{center} == "{label} (new)" ==> {node(lk.target)}', colour))
        else:
            edges.append((f'{center} -. "{label}" .-> {node(lk.target)}', ""))
    for lk, _why in delta.removed:
        label = _mermaid_label(lk.type or "?")
        edges.append((f'{center} -. "{label} (removed)" .-> {node(lk.target)}',
                      "stroke:#cf222e,stroke-dasharray:4 4"))
    lines = ["flowchart LR"]
    for slug, nid in ids.items():
        lines.append(f'  {nid}["{_mermaid_label(slug)}"]')
    lines += [f"  {line}" for line, _ in edges]
    lines += ["  classDef focus fill:#ddf4ff,stroke:#0969da,stroke-width:2px",
              f"  class {center} focus"]
    lines += [f"  linkStyle {i} {colour}" for i, (_, colour) in enumerate(edges) if colour]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The body


def title(info: PassInfo, t: Totals) -> str:
    n = t.changed
    return (f"graph-gardener: {n} pattern{'s' if n != 1 else ''} gardened in {info.library}"
            f" ({info.today.isoformat()})")


def _summary(t: Totals, price: Price | None) -> list[str]:
    return [
        "| | |", "|---|---:|",
        f"| patterns changed | {t.changed} |",
        *([f"| patterns failed | {t.failed} |"] if t.failed else []),
        f"| links added | {t.links_added} |",
        f"| links removed | {t.links_removed} |",
        f"| links retyped | {t.links_retyped} |",
        f"| entities added / removed | {len(t.entities.added)} / {len(t.entities.removed)} |",
        f"| communities added / removed | {len(t.communities.added)} / "
        f"{len(t.communities.removed)} |",
        f"| tokens used (prompt + completion) | {t.prompt_tokens + t.completion_tokens:,} "
        f"({t.prompt_tokens:,} + {t.completion_tokens:,}, {t.requests} requests) |",
        *([f"| estimated cost | {dollars(price.cost(t.prompt_tokens, t.completion_tokens))} "
           f"({cell(price.family)}, {cell(price.source)}) |"] if price is not None else []),
    ]


def _how(info: PassInfo) -> list[str]:
    lib = info.library
    return [
        "<details><summary>How to review this pull request</summary>", "",
        "- **Accept**: merge it. Only `graph_garden` blocks change (and the gardener's state "
        "and decisions files under `.gardener/`); every other byte of each file is verified "
        "unchanged.",
        "- **Reject a link**: run "
        f"`gardener reject SLUG TARGET --library {lib} --reason \"...\"` and commit "
        f"`{lib}/.gardener/decisions.yaml`; or delete the link's lines, here or after merging. "
        "A link deleted by hand after the gardener's commit counts as rejected too: it is "
        "never proposed again.",
        "- **Make a link human**: `gardener promote SLUG TARGET --library "
        f"{lib}` moves it into the `relationships` group (group 5), which only people write.",
        "- **Refresh**: `gardener review` again replaces this branch's single commit.", "",
        "</details>",
    ]


def _when(schedule: str) -> str:
    text = one_line(schedule).strip()
    if not text:
        return "when someone runs `gardener review --open` (no schedule is set)."
    if len(text.split()) == 5 and not any(ch.isalpha() and ch not in "LW" for ch in text):
        return f"cron {code(text)} (UTC), and whenever someone runs the workflow by hand."
    return cell(text, 200) + "."


def configuration(info: PassInfo) -> list[str]:
    """The footer, in Renovate's manner: when the bot runs, how to say no, how to stop it."""
    lib = info.library
    return [
        "---", "", "### Configuration", "",
        f"📅 **Schedule**: {_when(info.schedule)}", "",
        f"♻ **Updating**: each run replaces the one commit on {code(info.branch)} with a "
        f"fresh pass over {code(info.base)} and updates this pull request; there is never a "
        "second one. Once people push to the branch, the gardener leaves it alone.", "",
        "🚫 **Reject a link**: run "
        f"`gardener reject SLUG TARGET --library {lib}` and commit "
        f"`{lib}/.gardener/decisions.yaml`, or delete the link's lines in this branch and "
        "merge: either way it is never proposed again.", "",
        "🔕 **Ignore**: close this pull request without merging, and every link it adds is "
        "recorded as rejected on the next run and never proposed again.", "",
        "⏹ **Stop**: disable the workflow that runs the gardener (Actions → its workflow → "
        "Disable workflow) or delete its file under `.github/workflows/`.", "",
    ]


def _pattern_section(c: PatternChange) -> tuple[list[str], str | None]:
    """A pattern's section, and its diff block (added later, while the budget allows)."""
    o = c.outcome
    d = link_delta(c.old, c.new, o)
    lines = [f"### {cell(c.title, 120)} ({code(c.slug)})", "", f"{code(c.path)}", ""]
    if o.unchanged:
        u = o.unchanged
        lines += [f"{sum(u.values())} unchanged: {u.get('links', 0)} links, "
                  f"{u.get('entities', 0)} entities, {u.get('communities', 0)} communities", ""]
    if d.added:
        lines += ["**Links added**", "",
                  "| target | type | confidence | reason | evidence (quoted from the pattern) |",
                  "|---|---|---:|---|---|"]
        lines += [f"| {code(lk.target)} | {cell(lk.type or '?')} | {_pct(lk.confidence)} "
                  f"| {cell(lk.reason or '')} | {_quote(o.evidence.get(lk.target))} |"
                  for lk in d.added]
        lines.append("")
    if d.removed:
        lines += ["**Links removed**", "", "| target | type | why |", "|---|---|---|"]
        lines += [f"| {code(lk.target)} | {cell(lk.type or '?')} | {cell(why)} |"
                  for lk, why in d.removed]
        lines.append("")
    if d.retyped:
        retyped = {r.item: r for r in o.removals if r.kind == "link" and r.reason == "retyped"}
        lines += ["**Links retyped**", "", "| target | was | now | confidence | why |",
                  "|---|---|---|---:|---|"]
        lines += [f"| {code(new.target)} | {cell(old.type or '?')} | {cell(new.type or '?')} "
                  f"| {_pct(new.confidence)} | "
                  + (cell(f"retyped: {retyped[new.target].detail}") if new.target in retyped
                     else "renamed to the vocabulary") + " |" for old, new in d.retyped]
        lines.append("")
    if o.conflicts:
        lines += ["**Conflicts with human-curated relationships** (the human one wins)", ""]
        lines += [f"- {cell(x)}" for x in o.conflicts]
        lines.append("")
    refused = o.detail.get("rejected") or []
    if refused:
        lines += ["**Not proposed again** (rejected earlier): "
                  + ", ".join(code(str(t)) for t in refused), ""]
    new_reasoning = c.new.vitality_reasoning if c.new else None
    old_reasoning = c.old.vitality_reasoning if c.old else None
    if new_reasoning and new_reasoning != old_reasoning:
        score = "none" if c.vitality is None else f"{c.vitality:g}"
        lines += ["**Vitality**", "", "| | |", "|---|---|",
                  f"| human score | {score} |"]
        if c.human_reasoning:
            lines.append(f"| human reasoning | {cell(c.human_reasoning, 600)} |")
        lines += [f"| proposed reasoning | {cell(new_reasoning, 600)} |", ""]
    ents = item_delta(_entities(c.old), _entities(c.new))
    coms = item_delta(_communities(c.old), _communities(c.new))
    for name, kind, delta in (("Entities", "entity", ents), ("Communities", "community", coms)):
        if delta.added or delta.removed:
            why = {r.item: r.reason.value for r in o.removals if r.kind == kind}
            parts = [*(f"+{code(x)}" for x in delta.added),
                     *(f"−{code(x)} ({why.get(x, 'removed')})" for x in delta.removed)]
            lines += [f"**{name}**: " + " ".join(parts), ""]
    lines += [fenced(neighbourhood(c, d), "mermaid"), ""]
    diff = o.diff or None
    block = None
    if diff:
        block = "\n".join(["<details><summary>Diff</summary>", "", fenced(diff, "diff"), "",
                           "</details>", ""])
    return lines, block


def existing_links(changes: Sequence[PatternChange]) -> dict[str, int]:
    """How many of the changed patterns linked to each target before the pass (human and
    inferred): the in-degrees an outlier is judged by when the caller gives none."""
    counts: Counter[str] = Counter()
    for c in changes:
        targets = {h.target for h in c.human if h.resolved}
        targets |= {lk.target for lk in (c.old.inferred_links if c.old else ())}
        counts.update(targets - {c.slug})
    return dict(counts)


def warning(flagged: Sequence[Outlier]) -> list[str]:
    """The alert at the top of the body: targets added to far more patterns than usual."""
    if not flagged:
        return []
    lines = ["> [!WARNING]",
             "> **Link targets proposed for many patterns at once.** A pattern's own text "
             "may be telling the model to link them (prompt injection); each link's evidence "
             "can still be a real quote. Check these links before merging; reject the wrong "
             "ones with `gardener reject`.", ">"]
    for o in flagged:
        shown = ", ".join(code(s) for s in o.patterns[:20])
        more = f" and {len(o.patterns) - 20} more" if len(o.patterns) > 20 else ""
        lines.append(f"> - {code(o.target)} {o.describe()}: {shown}{more}")
    return [*lines, ""]


def body(info: PassInfo, changes: Sequence[PatternChange],
         outcomes: Sequence[Outcome], *, limit: int = MAX_BODY,
         existing: Mapping[str, int] | None = None) -> str:
    """The whole pull-request body, in Markdown that reads well on GitHub.

    ``existing``: the library's in-degrees before the pass
    (`gardener.steps.outliers.in_degrees`); without them, those of the changed patterns
    judge the outliers listed first."""
    t = totals(changes, outcomes)
    flagged = outliers(gained(outcomes), library=len(outcomes),
                       existing=existing if existing is not None else existing_links(changes))
    head = [MARKER, f"## {cell(title(info, t), 200)}", "", *warning(flagged),
            "The gardener proposes, people decide. This branch holds one commit with a "
            f"gardening pass over {code(info.library)}, made on {code(info.base)}"
            + (f" ({code(info.base_sha[:12])})" if info.base_sha else "") + ". It never "
            "pushes to the main line: nothing lands until someone merges this pull request.",
            "", *_summary(t, info.price or price_for(info.model)), ""]
    if info.learned:
        head += ["**Rejections learned from history** (links deleted by hand after the "
                 "gardener's last commit, and links of its pull requests closed without "
                 "merging; now in `.gardener/decisions.yaml`):", ""]
        head += [f"- {code(d.describe())}" + (f": {cell(d.reason)}" if d.reason else "")
                 for d in info.learned]
        head.append("")
    if info.honoured:
        head += [f"{info.honoured} rejection{'s' if info.honoured != 1 else ''} in force; "
                 "rejected links are never proposed again.", ""]
    dropped = sorted(f"{o.slug} -> {target}" for o in outcomes
                     for target in o.detail.get("rejected") or ())
    if dropped:
        head += ["**Proposed again and dropped** (rejected earlier): "
                 + ", ".join(code(x) for x in dropped), ""]
    failed = [o for o in outcomes if o.status in (Status.FAILED, Status.CONFLICT)]
    if failed:
        head += ["**Failed or conflicting patterns** (left as they were):", ""]
        head += [f"- {cell(o.error or o.path, 400)}" for o in failed]
        head.append("")
    head += [*_how(info), ""]
    foot = [*configuration(info), "---",
            f"Made by graph-gardener with model {code(info.model)}, prompt version "
            f"{code(info.prompt_version)}, on {info.today.isoformat()}."]
    changed = sorted((c for c in changes if c.outcome.status is Status.CHANGED),
                     key=lambda c: c.path)
    sections = [_pattern_section(c) for c in changed]
    parts = [*head, "## Patterns", ""] if changed else [*head, "No pattern changed.", ""]
    text_without = "\n".join(parts + [x for lines, _ in sections for x in lines] + foot)
    budget = limit - len(text_without)
    omitted = 0
    out = list(parts)
    for lines, block in sections:
        out += lines
        if block is not None:
            if len(block) + 1 <= budget:
                out.append(block)
                budget -= len(block) + 1
            else:
                omitted += 1
    if omitted:
        out += [f"_{omitted} diff{'s' if omitted != 1 else ''} left out to keep this body "
                "under GitHub's size limit; see the commit._", ""]
    return "\n".join(out + foot) + "\n"
