"""Analysis entry point for the {{ project_name }} project."""

from __future__ import annotations

from pathlib import Path

DATA_PATH = Path("{{ data_path }}")


def summarise(lines: list[str]) -> dict[str, int]:
    """Return simple counts about ``lines``: how many, and how many are blank."""
    return {"lines": len(lines), "blank": sum(1 for line in lines if not line.strip())}


if __name__ == "__main__":
    files = sorted(DATA_PATH.glob("**/*")) if DATA_PATH.exists() else []
    print(f"{len(files)} input files under {DATA_PATH}")
