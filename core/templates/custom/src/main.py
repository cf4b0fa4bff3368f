"""Entry point of the {{ project_name }} project."""

from __future__ import annotations


def greet(name: str = "{{ project_name }}") -> str:
    """Return a greeting for ``name``."""
    return f"hello from {name}"


if __name__ == "__main__":
    print(greet())
