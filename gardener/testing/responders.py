"""The fake model's grounded answers: a deterministic, valid proposal for any pattern asked.

`grounded_responder` is what `gardener.testing.fake_openai.FakeOpenAI` answers with in the
tests and benchmarks that need every pattern really changed and written: links go to the
first candidates the request's schema offers, each quoting the pattern's own summary as its
evidence, so the gardener's grounding checks accept them. `asked_slug` says which pattern a
request is about.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from gardener.testing.fake_answers import link_targets, request_schema

_SLUG = re.compile(r"^slug: (\S+)$", re.MULTILINE)
"""The pattern's slug, the first line inside the prompt's fence."""
_TITLE = re.compile(r"^title: (.+)$", re.MULTILINE)
_SUMMARY = re.compile(r"^summary: (.+)$", re.MULTILINE)
LINK_TYPES = ("complementary", "enables", "requires")


def _user_text(body: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content", "")) for m in body.get("messages", [])
                     if m.get("role") == "user")


def _evidence(text: str, title: str, most: int = 80) -> str:
    """A quote of the pattern the prompt shows: the opening words of its summary (of its
    body's first paragraph when it has none), at most ``most`` characters, as a link's
    evidence must be."""
    found = _SUMMARY.search(text)
    summary = found.group(1).removesuffix(" […]").strip() if found else ""
    if not summary or summary == "(none)":
        after = text[found.end():] if found else text
        summary = next((line for line in after.splitlines()
                        if len(line.split()) >= 4 and line[:1] not in "#>[`"), title)
    quote = ""
    for word in summary.split()[:10]:
        if len(quote) + len(word) + 1 > most:
            break
        quote = f"{quote} {word}".strip()
    return quote


def asked_slug(body: dict[str, Any]) -> str | None:
    """The slug of the pattern a gardening request is about."""
    found = _SLUG.search(_user_text(body))
    return found.group(1) if found else None


def grounded_responder(body: dict[str, Any]) -> dict[str, Any]:
    """A valid, grounded proposal for whatever pattern the request is about.

    Links go to the first three candidates the schema allows (its ``target`` enum), so they
    are grounded by construction, each quoting the opening words of the pattern's summary as
    its evidence; the band is the one the schema fixes, if it fixes one; the
    rest is derived from the pattern's slug and title, so the same request always gets the
    same answer (what recorded fixtures need).
    """
    schema = request_schema(body) or {}
    text = _user_text(body)
    slug = asked_slug(body) or "pattern"
    title_match = _TITLE.search(text)
    title = (title_match.group(1).strip().strip('"') if title_match else slug)[:80]
    targets = link_targets(body)
    band_schema = schema.get("properties", {}).get("vitality_band", {})
    band = band_schema.get("const") or (band_schema.get("enum") or ["functional"])[0]
    digest = int(hashlib.sha256(slug.encode()).hexdigest()[:8], 16)
    head = re.sub(r"[^a-z0-9]+", "-", slug.split("-")[0].lower()).strip("-") or "core"
    evidence = _evidence(text, title)
    # The second entity pairs the slug's head with a word of the summary, so both its words
    # are in the pattern's text (gardener.propose.grounding refuses it otherwise).
    word = next((w for w in re.findall(r"[a-z]{4,}", evidence.lower()) if w != head),
                "practice")
    links = [
        {"target": target, "type": LINK_TYPES[(digest + n) % len(LINK_TYPES)],
         "confidence_pct": 85 - 10 * n, "evidence": evidence,
         "reason": f"Both patterns address {head} practice in overlapping situations"}
        for n, target in enumerate(targets[:3])
    ]
    return {
        "entities": [
            {"id": slug[:64].strip("-"), "type": "practice", "label": title,
             "relevance_pct": 90},
            {"id": f"{head}-{word}", "type": "concept", "label": f"{head.title()} {word}",
             "relevance_pct": 60 + digest % 30},
        ],
        "communities": [
            {"id": f"{head}-patterns", "label": f"{head.title()} patterns",
             "confidence_pct": 70},
        ],
        "inferred_links": links,
        "vitality_band": band,
        "vitality_reasoning": (f"The Vitality section of '{title}' describes how the practice "
                               "is kept alive and where it tends to decay when neglected."),
    }
