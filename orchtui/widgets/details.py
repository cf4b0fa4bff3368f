"""A step's details: definition, resolved parameters, attempts, error, output and log tail."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from core.models import TaskStatus, WorkflowStep
from core.store_records import AttemptRecord
from core.text import terminal_safe

from .status import format_duration, task_glyph, task_style

__all__ = ["StepDetail", "render_step_detail", "OUTPUT_PREVIEW_CHARS"]

OUTPUT_PREVIEW_CHARS = 2000


@dataclasses.dataclass(slots=True, frozen=True)
class StepDetail:
    """Everything the details view shows about one step (of a run, or of a workflow only).

    Attributes:
        parameters: the parameters with references resolved when the run's outputs
            allow it, else as written in the workflow.
        parameters_note: why the parameters are shown unresolved ("" when resolved).
        output: the committed output (meaningful when ``has_output``).
        log_tail: the last lines of the latest attempt's log ("" when there is none).
    """

    step: WorkflowStep
    run_id: str | None
    status: TaskStatus
    parameters: dict[str, Any]
    parameters_note: str = ""
    attempts: tuple[AttemptRecord, ...] = ()  # as the store recorded them
    error: str = ""
    output: Any = None
    has_output: bool = False
    log_tail: str = ""
    upstream: tuple[str, ...] = ()
    downstream: tuple[str, ...] = ()


def _preview(value: Any) -> str:
    try:
        text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > OUTPUT_PREVIEW_CHARS:
        text = text[:OUTPUT_PREVIEW_CHARS] + f"\n… ({len(text) - OUTPUT_PREVIEW_CHARS} more characters)"
    return text


def render_step_detail(detail: StepDetail) -> RenderableType:
    """Return a Rich renderable of ``detail`` for the details screen."""
    step = detail.step
    head = Text()
    head.append(f"{task_glyph(detail.status)} {detail.status.value}", task_style(detail.status))
    head.append(f"   {step.module}.{step.action}", "bold")
    head.append(f"   priority {step.priority.label}", "dim")
    if detail.run_id:
        head.append(f"   run {detail.run_id}", "dim")
    parts: list[RenderableType] = [head]
    if step.description:
        parts.append(Text(step.description, style="italic"))
    edges = Text()
    edges.append("↑ after: ", "bold")
    edges.append(", ".join(detail.upstream) or "—")
    edges.append("\n↓ before: ", "bold")
    edges.append(", ".join(detail.downstream) or "—")
    parts.append(edges)

    parts.append(Text("\nParameters" + (f" ({detail.parameters_note})" if detail.parameters_note else " (resolved)"), style="bold underline"))
    parts.append(Text(_preview(detail.parameters) if detail.parameters else "—"))

    parts.append(Text("\nAttempts", style="bold underline"))
    if detail.attempts:
        table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
        for column in ("#", "status", "took", "exit", "error"):
            table.add_column(column, overflow="fold")
        for a in detail.attempts:
            took = format_duration(a.finished_at - a.started_at) if a.started_at and a.finished_at else "-"
            table.add_row(
                str(a.attempt),
                Text(f"{task_glyph(a.status)} {a.status.value}", style=task_style(a.status)),
                took,
                "-" if a.exit_code is None else str(a.exit_code),
                Text(terminal_safe(a.error or "")),  # a step's words, not markup: "[/data/in]" would crash Rich
            )
        parts.append(table)
    else:
        parts.append(Text("— not run" + ("" if detail.run_id else " (no run selected)"), style="dim"))

    if detail.error:
        parts.append(Text("\nError", style="bold underline"))
        parts.append(Text(terminal_safe(detail.error), style="red"))
    parts.append(Text("\nOutput", style="bold underline"))
    parts.append(Text(terminal_safe(_preview(detail.output)) if detail.has_output else "—",
                      style="" if detail.has_output else "dim"))
    parts.append(Text("\nLog (tail)", style="bold underline"))
    # A step's bytes: an escape sequence in them must not reach the terminal (it could clear
    # the screen or retitle the window), so control characters show as \\xNN, as in the CLI.
    parts.append(Text(terminal_safe(detail.log_tail.rstrip("\n")) or "—", style="" if detail.log_tail else "dim"))
    return Group(*parts)
