"""Transformations of the {{ project_name }} pipeline."""

from __future__ import annotations


def merge_rows(tables: list[list[str]]) -> list[str]:
    """Merge CSV tables (lists of lines) keeping the first table's header once."""
    merged: list[str] = []
    for table in tables:
        if not table:
            continue
        merged.extend(table if not merged else table[1:])
    return merged
