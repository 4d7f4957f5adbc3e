"""Inert Markdown for the pull-request body and the pass report: model text shows as text.

Model text ends up in both, so every model-written string goes through one helper, `cell`:
one line, Markdown's link and HTML characters backslash-escaped, and whatever GitHub would
turn into a link or a notification (URLs, ``www.``, e-mail addresses, ``@user`` and
``@org/team``, ``#123`` and ``owner/repo#123``) shown in a code span: a reason must not ping
anyone, nor carry a live link or a tracking image into the pull request. Pure: text in,
Markdown out.
"""

from __future__ import annotations

import re

from gardener.text import one_line

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


def quote(evidence: str | None) -> str:
    """A link's evidence as a quoted cell; a dash when the pass had none for it."""
    return f"“{cell(evidence, 200)}”" if evidence else "–"


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def mermaid_label(text: str) -> str:
    """A quoted Mermaid label: quotes and angle brackets as entities, one line."""
    flat = " ".join(text.split())
    return (flat.replace("#", "#35;").replace("&", "#amp;").replace('"', "#quot;")
            .replace("<", "#lt;").replace(">", "#gt;"))


def size(lines: list[str]) -> int:
    """Characters ``lines`` add to a text joined with newlines (each with its newline)."""
    return sum(len(line) + 1 for line in lines)
