"""Analysis helpers for the {{ project_name }} experiments."""

from __future__ import annotations


def mean(values: list[float]) -> float:
    """Return the arithmetic mean of ``values`` (0.0 for none)."""
    return sum(values) / len(values) if values else 0.0


def effect(baseline: list[float], treatment: list[float]) -> float:
    """Return how much the treatment's mean exceeds the baseline's."""
    return mean(treatment) - mean(baseline)
