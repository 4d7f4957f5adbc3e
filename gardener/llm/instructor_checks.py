"""instructor's check for async validators, once per response model instead of four times.

instructor 1.17 refuses response models carrying its async validators, and walks the whole
model (every class of its MRO, every field's annotation) to find out: in ``patch``, the
retry loop, the response-model preparation and the function-call parsing, four walks of
the same class per call, about 0.15 ms each for a pattern's response model. A class that
passed the walk passes it again (this gardener never adds validators to a class after
making it), so a class that passed is remembered, weakly, and not walked again; one that
fails is walked, and refused, every time.

A pattern's response model is a new class each time, a view of one of a few shapes that adds
no validator (``gardener.llm.schemas``): it names that shape as ``CHECKED_AS`` in its own
namespace, and the shape's check stands for it, so the walk happens once per shape rather
than once per pattern.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

_checked: weakref.WeakSet[type] = weakref.WeakSet()
_lock = threading.Lock()
_installed: list[Callable[[Any], None]] = []
CHECKED_AS = "__gardener_checked_as__"
"""Class attribute, honoured only in the class's own namespace: the class whose check
stands for this one, set by code that made this class without adding validators."""
_NAME = "reject_async_validators"
"""Looked up in its own module on each call, and imported by name into ``patch``."""


def once(check: Callable[[Any], None]) -> Callable[[Any], None]:
    """``check`` run at most once per class it accepts; anything else is checked each time."""

    def reject_async_validators(response_model: Any) -> None:
        if not isinstance(response_model, type):
            check(response_model)
            return
        response_model = checked_as(response_model)
        with _lock:
            if response_model in _checked:
                return
        check(response_model)
        with _lock:
            _checked.add(response_model)

    reject_async_validators.__wrapped__ = check  # type: ignore[attr-defined]
    return reject_async_validators


def checked_as(cls: type) -> type:
    """The class whose check stands for ``cls``: itself, unless its own namespace says."""
    seen = {cls}
    while isinstance(stand_in := cls.__dict__.get(CHECKED_AS), type) and stand_in not in seen:
        seen.add(stand_in)
        cls = stand_in
    return cls


def install() -> None:
    """Put the remembering check where instructor looks it up; idempotent.

    Another instructor release may keep the check elsewhere: then instructor's own check runs
    on every call, as it always did, and nothing else changes.
    """
    try:
        from instructor.v2.core import patch
        from instructor.v2.validation import async_validators
    except ImportError:
        return
    if not callable(getattr(async_validators, _NAME, None)) or not hasattr(patch, _NAME):
        return

    with _lock:
        if _installed:
            return
        checked = once(async_validators.reject_async_validators)
        for module in (async_validators, patch):
            setattr(module, _NAME, checked)
        _installed.append(checked)
