"""Tests for the {{ project_name }} helpers."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from toc import table_of_contents  # noqa: E402


def test_toc_links_pages() -> None:
    assert table_of_contents([Path("b.md"), Path("a.md")]) == ["- [a](a.md)", "- [b](b.md)"]
