"""instructor's async-validator check: remembered for classes that pass, never for others."""

from __future__ import annotations

from typing import Any

import pytest
from instructor.v2.validation.async_validators import async_field_validator
from pydantic import BaseModel

from gardener import instructor_checks
from gardener.proposal import build_response_model


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
    model = build_response_model("a", ["b", "c"])
    for _ in range(4):
        checked(model)
    assert seen == [model]
    other = build_response_model("a", ["b", "c"])
    checked(other)
    assert seen == [model, other]


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
