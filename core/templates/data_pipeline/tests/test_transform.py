"""Tests for the {{ project_name }} transformations."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from transform import merge_rows  # noqa: E402


def test_header_kept_once() -> None:
    assert merge_rows([["id", "1"], ["id", "2"]]) == ["id", "1", "2"]
