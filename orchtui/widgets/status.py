"""How a status looks: a glyph that carries the meaning, and a colour that helps.

The glyph alone must tell the status apart, so the dashboard stays readable with
``NO_COLOR`` set (Textual then renders in monochrome) and on terminals without colour.
This is the one glyph table: the CLI's progress display (``orchtui.progress``) uses it
too, with its ASCII column on terminals that cannot print UTF-8. It imports no Textual,
so the CLI stays quick to start.
"""

from __future__ import annotations

from rich.style import Style

from core.models import TaskStatus, WorkflowStatus
from core.text import format_duration as _format_duration

__all__ = ["task_glyph", "task_style", "run_glyph", "run_style", "format_elapsed", "format_duration"]

_TASK_GLYPHS: dict[TaskStatus, tuple[str, str]] = {  # status -> (unicode, ascii)
    TaskStatus.PENDING: ("·", "."),
    TaskStatus.READY: ("○", "o"),
    TaskStatus.RUNNING: ("▶", ">"),
    TaskStatus.COMPLETED: ("✔", "+"),
    TaskStatus.FAILED: ("✖", "x"),
    TaskStatus.CANCELLED: ("⊘", "-"),
    TaskStatus.SKIPPED: ("↷", "~"),
    TaskStatus.INTERRUPTED: ("‼", "!"),
}

_TASK_STYLES: dict[TaskStatus, Style] = {
    TaskStatus.PENDING: Style(color="grey62"),
    TaskStatus.READY: Style(color="cyan"),
    TaskStatus.RUNNING: Style(color="yellow", bold=True),
    TaskStatus.COMPLETED: Style(color="green"),
    TaskStatus.FAILED: Style(color="red", bold=True),
    TaskStatus.CANCELLED: Style(color="magenta"),
    TaskStatus.SKIPPED: Style(color="grey50", italic=True),
    TaskStatus.INTERRUPTED: Style(color="red"),
}

_RUN_GLYPHS: dict[WorkflowStatus, str] = {
    WorkflowStatus.DRAFT: "·",
    WorkflowStatus.READY: "○",
    WorkflowStatus.RUNNING: "▶",
    WorkflowStatus.PAUSED: "‖",
    WorkflowStatus.COMPLETED: "✔",
    WorkflowStatus.FAILED: "✖",
    WorkflowStatus.CANCELLED: "⊘",
    WorkflowStatus.INTERRUPTED: "‼",
}

_RUN_STYLES: dict[WorkflowStatus, Style] = {
    WorkflowStatus.DRAFT: Style(color="grey62"),
    WorkflowStatus.READY: Style(color="cyan"),
    WorkflowStatus.RUNNING: Style(color="yellow", bold=True),
    WorkflowStatus.PAUSED: Style(color="blue"),
    WorkflowStatus.COMPLETED: Style(color="green"),
    WorkflowStatus.FAILED: Style(color="red", bold=True),
    WorkflowStatus.CANCELLED: Style(color="magenta"),
    WorkflowStatus.INTERRUPTED: Style(color="red"),
}


def task_glyph(status: TaskStatus, *, ascii: bool = False) -> str:
    """Return the one-cell glyph for a task status (its ASCII stand-in when ``ascii``)."""
    glyphs = _TASK_GLYPHS.get(status)
    return "?" if glyphs is None else glyphs[ascii]


def task_style(status: TaskStatus) -> Style:
    """Return the Rich style (colour) for a task status."""
    return _TASK_STYLES.get(status, Style())


def run_glyph(status: WorkflowStatus) -> str:
    """Return the one-cell glyph for a run status."""
    return _RUN_GLYPHS.get(status, "?")


def run_style(status: WorkflowStatus) -> Style:
    """Return the Rich style (colour) for a run status."""
    return _RUN_STYLES.get(status, Style())


def format_duration(seconds: float) -> str:
    """Return a short human duration for narrow columns: ``0.4s``, ``12s``, ``3m05s``, ``2h10m``."""
    return _format_duration(seconds, tenths_below=10.0)


def format_elapsed(started_at: float | None, now: float) -> str:
    """Return the time since ``started_at`` (wall clock) as a short duration, or ``""``."""
    if started_at is None:
        return ""
    return format_duration(now - started_at)
