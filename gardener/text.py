"""Text hygiene for what comes from models and files and goes to terminals and pull requests.

A model's label or a file's slug may carry terminal escape sequences (``ESC [ 2 J``) or C1
controls; printed raw they rewrite the user's screen, and in a pull request a newline lets a
slug escape its code span. One rule, used by the validators and every printer.
"""

from __future__ import annotations

import functools
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


@functools.lru_cache(maxsize=64)
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


_SECRET_IN_QUERY = re.compile(
    r"(?P<name>[?&;][^\s=&?#;]*(?:key|token|secret|password|sig|auth)[^\s=&?#;]*=)"
    r"[^\s&#;,\"'<>)\]]+", re.IGNORECASE)
_USER_IN_URL = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#@\"'<>]+@")


def redact_urls_in(text: str) -> str:
    """Free text (a server's error message) with every URL in it fit to show, as
    ``redact_url`` does one: a server quoting the request back (``Unknown path
    /v1?api-key=...``) must not put the credential in a message, a log or a report. A value
    runs to the next ``&``, ``#``, comma, space or quote: ``?api-key=K/chat`` loses ``K/chat``."""
    text = _SECRET_IN_QUERY.sub(lambda m: m.group("name") + "***", text)
    return _USER_IN_URL.sub(lambda m: m.group("scheme") + "***@", text)


def url_secrets(url: str) -> list[str]:
    """The credentials written in ``url``: its password and its credential-named query
    values, which the client then scrubs from whatever it is sent back, in any form."""
    parts = urlsplit(url)
    found = [parts.password] if parts.password else []
    found += [v for k, v in parse_qsl(parts.query, keep_blank_values=True)
              if v and _SECRET_PARAM.search(k)]
    return found
