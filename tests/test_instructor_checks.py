"""instructor's async-validator check: remembered for classes that pass, never for others."""

from __future__ import annotations

from typing import Any

import pytest
from instructor.v2.validation.async_validators import async_field_validator
from pydantic import BaseModel

from gardener.llm import instructor_checks
from gardener.llm.client import _context_bound
from gardener.llm.schemas import build_response_model


class Plain(BaseModel):
    name: str


class WithAsync(BaseModel):
    name: str

    @async_field_validator("name")
    async def check_name(self, value: str) -> str:
        return value


def counting() -> tuple[list[Any], Any]:
    seen: list[Any] = []

    def check(model: Any) -> None:
        seen.append(model)
        if model is WithAsync:
            raise ValueError("async validators are not supported")

    return seen, check


def test_a_class_that_passed_is_not_walked_again() -> None:
    seen, check = counting()
    checked = instructor_checks.once(check)
    for _ in range(4):
        checked(Plain)
    assert seen == [Plain]


def test_response_models_are_checked_as_their_shape_once() -> None:
    """Each pattern's model is a new class viewing a shared shape: the shape is walked once,
    and the context-bound subclass the client makes of a model is checked as it."""
    seen, check = counting()
    checked = instructor_checks.once(check)
    model = build_response_model("a", ["b", "c"])
    shape = instructor_checks.checked_as(model)
    assert shape is not model and issubclass(model, shape)
    for _ in range(4):
        checked(model)
    checked(build_response_model("x", ["y", "z"]))
    checked(_context_bound(build_response_model("a", ["b", "c"])))
    assert seen == [shape]
    # A band-fixed model views another shape: walked once more.
    checked(build_response_model("a", ["b", "c"], vitality=0.9))
    assert len(seen) == 2 and seen[1] is not shape


def test_a_subclass_that_does_not_say_so_is_walked_itself() -> None:
    seen, check = counting()
    checked = instructor_checks.once(check)
    model = build_response_model("a", ["b", "c"])

    class Extended(model):  # type: ignore[valid-type, misc]
        pass

    assert instructor_checks.checked_as(Extended) is Extended
    checked(Extended)
    assert seen == [Extended]


def test_a_refused_class_is_refused_every_time_and_non_classes_are_always_walked() -> None:
    seen, check = counting()
    checked = instructor_checks.once(check)
    for _ in range(2):
        with pytest.raises(ValueError, match="not supported"):
            checked(WithAsync)
    assert seen == [WithAsync, WithAsync]
    checked(list[Plain])
    checked(list[Plain])
    assert seen[2:] == [list[Plain], list[Plain]]


def test_installed_where_instructor_looks_and_still_refuses_async_validators() -> None:
    from instructor.v2.core import patch
    from instructor.v2.validation import async_validators

    instructor_checks.install()
    instructor_checks.install()
    installed = async_validators.reject_async_validators
    assert vars(patch)["reject_async_validators"] is installed
    assert installed.__wrapped__.__module__ == async_validators.__name__
    for _ in range(2):
        with pytest.raises(ValueError, match="async validators are not supported"):
            installed(WithAsync)
    installed(Plain)
    installed(build_response_model("a", ["b"]))
