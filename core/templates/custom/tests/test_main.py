"""Tests for the {{ project_name }} entry point."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from main import greet  # noqa: E402


def test_greet_names_the_project() -> None:
    assert greet("x") == "hello from x"
