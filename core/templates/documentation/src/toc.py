"""Build a table of contents for the {{ project_name }} pages."""

from __future__ import annotations

from pathlib import Path


def table_of_contents(pages: list[Path]) -> list[str]:
    """Return one Markdown list item per page, linking it by file name."""
    return [f"- [{page.stem}]({page.name})" for page in sorted(pages)]


if __name__ == "__main__":
    print("\n".join(table_of_contents(list(Path("docs").glob("*.md")))))
