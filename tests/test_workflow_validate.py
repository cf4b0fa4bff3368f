"""Tests for core.workflow_validate helpers not covered through load_workflow."""

from __future__ import annotations

from typing import Any

import pytest

from core.workflow_validate import infer_param_type


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "boolean"),  # bool before int: True is an int to Python
        (3, "integer"),
        (2.5, "number"),
        ("x", "string"),
        ([1], "list"),
        ({"a": 1}, "object"),
        (None, "any"),
        ((1, 2), "any"),
    ],
)
def test_infer_param_type_picks_the_most_specific_name(value: Any, expected: str) -> None:
    assert infer_param_type(value) == expected
