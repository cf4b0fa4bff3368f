"""Tests for the {{ project_name }} analysis code."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from analysis import summarise  # noqa: E402


def test_summarise_counts_blank_lines() -> None:
    assert summarise(["a", " ", "b"]) == {"lines": 3, "blank": 1}
