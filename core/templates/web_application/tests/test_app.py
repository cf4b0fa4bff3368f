"""Tests for the {{ project_name }} application."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from app import app  # noqa: E402


def test_root_greets() -> None:
    seen = []
    body = app({"PATH_INFO": "/"}, lambda status, headers: seen.append(status))
    assert seen == ["200 OK"] and b"Hello" in b"".join(body)
