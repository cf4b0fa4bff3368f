"""The live progress display of ``orchtui run``.

One row per step: a state glyph, the name, the state, the attempt and the elapsed time.
The display pulls the run handle's per-step progress (and the orchestrator's snapshot
for the header) at a fixed rate, never per event, so its cost does not grow with the
task rate. On a terminal it redraws a rich ``Live`` table in place; otherwise (a pipe,
a CI log) it prints one plain line per change of a step's state or attempt.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from core.models import TaskStatus, WorkflowExecution, WorkflowStatus
from core.text import format_duration, terminal_safe
from core.workflow_run import RunHandle, StepProgress

from .widgets.status import task_glyph, task_style

if TYPE_CHECKING:
    from core.snapshot import OrchestratorSnapshot

__all__ = ["RunProgress", "format_seconds", "summary_table"]

_RUN_STYLE = {
    WorkflowStatus.COMPLETED: "bold green",
    WorkflowStatus.FAILED: "bold red",
    WorkflowStatus.CANCELLED: "bold magenta",
}


def format_seconds(seconds: float | None) -> str:
    """``0.4s``, ``12.3s``, ``4m05s``, ``2h03m``; an em dash when unknown."""
    return format_duration(seconds)


def _glyph(status: TaskStatus, unicode: bool) -> Text:
    return Text(task_glyph(status, ascii=not unicode), style=task_style(status))


def _note(step: StepProgress, now: float) -> str:
    error = terminal_safe(step.error)  # the step's own words: no escape sequence reaches the terminal
    if step.retry_at is not None and step.status == TaskStatus.PENDING:
        return f"retry in {format_seconds(max(0.0, step.retry_at - now))}: {error}".rstrip(": ")
    return error


def summary_table(execution: WorkflowExecution, steps: list[StepProgress], *, unicode: bool = True) -> Table:
    """Return the end-of-run table: every step's state, attempts, duration and error."""
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column, justify in (("", "left"), ("step", "left"), ("state", "left"), ("try", "right"),
                            ("time", "right"), ("error / note", "left")):
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    now = time.time()
    for step in steps:
        table.add_row(_glyph(step.status, unicode), step.name, step.status.value,
                      str(step.attempt or "—"), format_seconds(step.elapsed(now)), _note(step, now))
    return table


class RunProgress:
    """Shows a run's progress until it ends; use as a context manager around :meth:`follow`.

    Parameters
    ----------
    handle : RunHandle
        The run to show.
    console : rich Console, optional
        Where to draw (default: stdout). A console that is not a terminal gets plain lines.
    snapshot : callable returning OrchestratorSnapshot, optional
        Source of the header's running/queued counts (``orchestrator.snapshot``).
    refresh_hz : float
        Redraws (or polls, in plain mode) per second.
    """

    def __init__(
        self,
        handle: RunHandle,
        *,
        console: Console | None = None,
        snapshot: Callable[[], OrchestratorSnapshot] | None = None,
        refresh_hz: float = 10.0,
    ) -> None:
        self.handle = handle
        self.console = console or Console()
        self.snapshot = snapshot
        self.interval = 1.0 / max(0.5, refresh_hz)
        self.live_mode = self.console.is_terminal
        self.unicode = (self.console.encoding or "").lower().startswith("utf")
        self.notice = ""
        self._live: Live | None = None
        self._seen: dict[str, tuple[TaskStatus, int]] = {}
        self._t0 = time.monotonic()

    def __enter__(self) -> RunProgress:
        if self.live_mode:
            self._live = Live(self.render(), console=self.console, auto_refresh=False, transient=False,
                              redirect_stdout=False, redirect_stderr=False)
            self._live.start()
        else:
            self.console.print(f"run {self.handle.run_id}: workflow {self.handle.workflow_name}, "
                               f"{len(self.handle.workflow.steps)} step(s)", highlight=False)
        return self

    def __exit__(self, *exc: object) -> None:
        self.refresh()
        if self._live is not None:
            self._live.stop()
            self._live = None

    def set_notice(self, text: str) -> None:
        """Show ``text`` under the table (live) or as a line (plain), e.g. "cancelling…"."""
        self.notice = text
        if not self.live_mode:
            self.console.print(text, highlight=False, markup=False, soft_wrap=True)

    def follow(self, should_stop: Callable[[], Any] | None = None) -> WorkflowExecution | None:
        """Refresh at the fixed rate until the run ends or ``should_stop()`` is true.

        Returns the final execution, or None when stopped before the run ended.
        """
        while not self.handle.done():
            if should_stop is not None and should_stop():
                return None
            self.refresh()
            self.handle.wait(self.interval)
        self.refresh()
        return self.handle.execution

    def refresh(self) -> None:
        """Redraw once (live mode) or print the steps whose state changed (plain mode)."""
        if self._live is not None:
            self._live.update(self.render(), refresh=True)
            return
        if self.live_mode:
            return
        elapsed = time.monotonic() - self._t0
        for step in self.handle.step_progress():
            key = (step.status, step.attempt)
            if self._seen.get(step.name) == key:
                continue
            if step.name not in self._seen and step.status == TaskStatus.PENDING:
                self._seen[step.name] = key  # everything starts pending; say nothing
                continue
            self._seen[step.name] = key
            self.console.print(self._line(step, elapsed), highlight=False, markup=False, soft_wrap=True)

    def _line(self, step: StepProgress, elapsed: float) -> str:
        glyph = task_glyph(step.status, ascii=not self.unicode)
        text = f"[{format_seconds(elapsed):>7}] {glyph} {step.name}: {step.status.value}"
        if step.attempt > 1:
            text += f" (attempt {step.attempt})"
        if step.status.is_terminal:
            text += f" after {format_seconds(step.elapsed())}" if step.started_at is not None else ""
        note = _note(step, time.time())
        if note and step.status != TaskStatus.COMPLETED:
            text += f" — {note}"
        return text

    def _header(self) -> Text:
        ex = self.handle.execution
        header = Text()
        header.append(f"{ex.workflow_name}", style="bold")
        header.append(f"  run {ex.run_id}  ", style="dim")
        header.append(ex.status.value, style=_RUN_STYLE.get(ex.status, "yellow"))
        header.append(f"  {format_seconds(time.monotonic() - self._t0)}", style="dim")
        if self.snapshot is not None:
            snap = self.snapshot()
            queued = sum(snap.queued.values())
            header.append(f"  · running {len(snap.running)}/{snap.max_workers} · queued {queued}", style="dim")
        return header

    def render(self) -> RenderableType:
        """Return the live view: header, one row per step, and the notice if any."""
        steps = self.handle.step_progress()
        now = time.time()
        table = Table(show_header=False, box=None, pad_edge=False, expand=False)
        table.add_column(width=1)
        table.add_column(overflow="ellipsis", no_wrap=True)
        table.add_column(width=9)
        table.add_column(justify="right")
        table.add_column(justify="right", width=7)
        table.add_column(overflow="ellipsis", no_wrap=True, max_width=60)
        for step in steps:
            attempt = f"try {step.attempt}" if step.attempt > 1 else ""
            table.add_row(_glyph(step.status, self.unicode), step.name, step.status.value, attempt,
                          format_seconds(step.elapsed(now)), Text(_note(step, now), style="dim"))
        parts: list[RenderableType] = [self._header(), table]
        if self.notice:
            parts.append(Text(self.notice, style="bold magenta"))
        return Group(*parts)
