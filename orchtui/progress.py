"""The live progress display of ``orchtui run``.

One row per step: a state glyph, the name, the state, the attempt and the elapsed time.
The display pulls the run handle's per-step progress (and the orchestrator's snapshot
for the header) at a fixed rate, never per event, so its cost does not grow with the
task rate. On a terminal it redraws a rich ``Live`` table in place; otherwise (a pipe,
a CI log) it prints one plain line per change of a step's state or attempt.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text

from core.models import TaskStatus, WorkflowExecution, WorkflowStatus
from core.text import format_duration, terminal_safe
from core.workflow_run import RunHandle, StepProgress

from .columns import Column, column_text
from .widgets.status import task_glyph, task_style

if TYPE_CHECKING:
    from core.snapshot import OrchestratorSnapshot

__all__ = ["RunProgress", "format_seconds", "summary_table"]

_RUN_STYLE = {
    WorkflowStatus.COMPLETED: "bold green",
    WorkflowStatus.FAILED: "bold red",
    WorkflowStatus.CANCELLED: "bold magenta",
}
_UNHAPPY = frozenset({TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.INTERRUPTED})


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


_SUMMARY_COLUMNS = (Column(""), Column("step"), Column("state"), Column("try", "right"), Column("time", "right"),
                   Column("error / note"))
_LIVE_COLUMNS = (Column(""), Column(""), Column(""), Column("", "right"), Column("", "right"), Column(""))


def summary_table(execution: WorkflowExecution, steps: list[StepProgress], *, unicode: bool = True) -> Text:
    """Return the end-of-run table: every step's state, attempts, duration and whole error
    (print it with ``soft_wrap=True``: a terminal wraps a long error, nothing cuts it)."""
    now = time.time()
    rows = [[_glyph(step.status, unicode), step.name, step.status.value, str(step.attempt or "—"),
             format_seconds(step.elapsed(now)), _note(step, now)] for step in steps]
    return column_text(_SUMMARY_COLUMNS, rows)


def _worth_watching(steps: list[StepProgress], room: int) -> list[StepProgress]:
    """Return the ``room`` steps most worth a look, in workflow order: running and retrying
    steps, then failed and other unhappy ends, then the latest to finish, then the next
    pending ones."""
    def rank(index: int) -> tuple[int, float]:
        step = steps[index]
        if step.status is TaskStatus.RUNNING or step.retry_at is not None:
            return 0, index
        if step.status in _UNHAPPY:
            return 1, index
        if step.finished_at is not None:
            return 2, -step.finished_at
        return 3, index

    picked = sorted(range(len(steps)), key=rank)[:room]
    return [steps[index] for index in sorted(picked)]


def _counts(steps: list[StepProgress]) -> str:
    """``4,980 completed · 15 pending · 5 running``: how many steps are in each state."""
    counts = Counter(step.status.value for step in steps)
    return " · ".join(f"{count:,} {state}" for state, count in counts.most_common())


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
        """Return the live view: header, a row per step (those most worth a look when they
        do not all fit the terminal, with a count of all), and the notice if any.

        Only what fits is drawn: drawing all 5,000 rows of a big run ten times a second
        took the GIL from the run itself (it ran at half speed) and the terminal scrolled.
        """
        steps = self.handle.step_progress()
        now = time.time()
        room = max(1, self.console.height - 3 - bool(self.notice))
        shown = steps if len(steps) <= room else _worth_watching(steps, room - 1)
        rows = [[_glyph(step.status, self.unicode), step.name, step.status.value,
                 f"try {step.attempt}" if step.attempt > 1 else "", format_seconds(step.elapsed(now)),
                 Text(_note(step, now), style="dim")] for step in shown]
        table = column_text(_LIVE_COLUMNS, rows, max_width=self.console.width, show_header=False)
        if len(shown) < len(steps):
            table.append(f"\n{len(steps) - len(shown):,} more steps; all: {_counts(steps)}", style="dim")
        table.no_wrap, table.overflow = True, "ellipsis"  # a line longer than the terminal would break the redraw
        parts: list[RenderableType] = [self._header(), table]
        if self.notice:
            parts.append(Text(self.notice, style="bold magenta"))
        return Group(*parts)
