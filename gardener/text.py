"""Text hygiene for what comes from models and files and goes to terminals and pull requests.

A model's label or a file's slug may carry terminal escape sequences (``ESC [ 2 J``) or C1
controls; printed raw they rewrite the user's screen, and in a pull request a newline lets a
slug escape its code span. One rule, used by the validators and every printer.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""C0 and C1 control characters, DEL included; tab and newline are text."""
_ALL_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def without_controls(text: str) -> str:
    """``text`` with every control character but tab and newline removed."""
    return _CONTROLS.sub("", text)


def one_line(text: str) -> str:
    """``text`` as a single line: controls removed, every run of whitespace one space."""
    return " ".join(_ALL_CONTROLS.sub(" ", text).split())


_SECRET_PARAM = re.compile(r"key|token|secret|password|sig|auth", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` fit to show: a user and password become ``***``, and so does the value of any
    query parameter named like a credential (``?api-key=``, ``?token=``)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = [(k, "***" if _SECRET_PARAM.search(k) else v)
                 for k, v in parse_qsl(query, keep_blank_values=True)]
        query = urlencode(pairs, safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
