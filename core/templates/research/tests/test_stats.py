"""Tests for the {{ project_name }} analysis helpers."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from stats import effect  # noqa: E402


def test_effect_is_difference_of_means() -> None:
    assert effect([1.0, 1.0], [2.0, 4.0]) == 2.0
