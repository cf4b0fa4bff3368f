"""The Task queues pane: five priority lanes, the running tasks, and the counters."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from core.models import TaskPriority, TaskStatus
from core.snapshot import OrchestratorSnapshot

from .status import format_elapsed, task_glyph, task_style

__all__ = ["QueuesPane", "render_queues"]

_LANE_LABELS = {
    TaskPriority.CRITICAL: "crit",
    TaskPriority.HIGH: "high",
    TaskPriority.NORMAL: "norm",
    TaskPriority.LOW: "low ",
    TaskPriority.BACKGROUND: "bg  ",
}
_COUNTED = (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.CANCELLED)


def render_queues(snapshot: OrchestratorSnapshot, now: float, width: int = 40) -> Text:
    """Return the pane's text for ``snapshot``; elapsed times are measured to ``now``.

    Lines: counters, one line per priority lane (count and next tasks), the waiting
    figures, then one line per running task with its elapsed time.
    """
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"{task_glyph(TaskStatus.RUNNING)} {len(snapshot.running)}/{snapshot.max_workers} ", task_style(TaskStatus.RUNNING))
    for status in _COUNTED:
        text.append(f" {task_glyph(status)} {snapshot.counts.get(status, 0)}", task_style(status))
    for priority in TaskPriority:
        count = snapshot.queued.get(priority, 0)
        heads = ", ".join(view.name for view in snapshot.queue_heads.get(priority, ()))
        text.append("\n")
        text.append(f"{_LANE_LABELS[priority]} {count:>5} ", "bold" if count else "dim")
        text.append(heads[: max(0, width - 12)], "dim" if not count else "")
    text.append("\n")
    text.append(
        f"deps {snapshot.waiting_on_dependencies} · res {snapshot.waiting_on_resources}"
        f" · retry {snapshot.retry_scheduled}",
        "dim",
    )
    if snapshot.completed_per_second:
        text.append(f" · {snapshot.completed_per_second:.0f}/s", "dim")
    for view in snapshot.running:
        elapsed = format_elapsed(view.started_at, now)
        name_room = max(4, width - len(elapsed) - 4)
        name = view.name if len(view.name) <= name_room else view.name[: name_room - 1] + "…"
        text.append("\n")
        text.append(f"{task_glyph(TaskStatus.RUNNING)} ", task_style(TaskStatus.RUNNING))
        text.append(name.ljust(name_room))
        text.append(f" {elapsed}", "yellow")
    return text


class QueuesPane(Static, can_focus=True):
    """Shows an :class:`OrchestratorSnapshot`; redraws only on a new version or while tasks run."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._snapshot: OrchestratorSnapshot | None = None
        self._now = 0.0

    def show(self, snapshot: OrchestratorSnapshot, now: float) -> None:
        """Display ``snapshot``; with running tasks, elapsed times advance to ``now``."""
        if snapshot is self._snapshot and (not snapshot.running or now == self._now):
            return
        self._snapshot, self._now = snapshot, now
        self._render_now()

    def _render_now(self) -> None:
        if self._snapshot is not None:
            # the pane's size is set by the layout, never by its text: skip the layout pass
            self.update(render_queues(self._snapshot, self._now, max(16, self.content_region.width)), layout=False)

    def on_resize(self) -> None:
        self._render_now()
