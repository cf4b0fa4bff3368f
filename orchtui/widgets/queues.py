"""The Task queues pane: five priority lanes, the running tasks, the counters, and whose they are.

The snapshot is the sum of every process running workflows on the state directory; a
line per process (its label, pid and runs) says where the tasks live.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from core.live_state import LiveProcess
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


def _process_name(process: LiveProcess) -> str:
    """``"run demo"`` for a process labelled ``"orchtui run demo"``; its pid when unlabelled."""
    label = process.label.removeprefix("orchtui ").strip()
    return label or f"pid {process.pid}"


def _short_run(run_id: str | None) -> str:
    """A run id short enough for a task line: ``run-74dd2b5f58cb`` -> ``74dd2b``."""
    if not run_id:
        return "-"
    return run_id.removeprefix("run-")[:6]


def render_queues(
    snapshot: OrchestratorSnapshot,
    now: float,
    width: int = 40,
    *,
    processes: tuple[LiveProcess, ...] = (),
    height: int | None = None,
) -> Text:
    """Return the pane's text for ``snapshot``; elapsed times are measured to ``now``.

    Lines: counters, one line per process running workflows (``processes``: its label,
    pid, runs and running steps), one line per priority lane (count and next tasks),
    the waiting figures, then one line per running task with its elapsed time. Running
    tasks name their run when they come from more than one. When all that does not fit
    in ``height`` lines, the empty lanes share one line.
    """
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"{task_glyph(TaskStatus.RUNNING)} {len(snapshot.running)}/{snapshot.max_workers} ", task_style(TaskStatus.RUNNING))
    for status in _COUNTED:
        text.append(f" {task_glyph(status)} {snapshot.counts.get(status, 0)}", task_style(status))
    for process in processes:
        running = sum(1 for view in snapshot.running if view.run_id in process.run_ids)
        runs = ", ".join(_short_run(r) for r in process.run_ids) or "idle"
        text.append("\n")
        text.append("⚙ ", "cyan")
        text.append(_process_name(process), "bold")
        text.append(f" {process.pid} · {runs}", "dim")
        if running:
            text.append(f" · {task_glyph(TaskStatus.RUNNING)}{running}", task_style(TaskStatus.RUNNING))
    lanes = list(TaskPriority)
    needed = 2 + len(processes) + len(lanes) + len(snapshot.running)
    empty = [lane for lane in lanes if not snapshot.queued.get(lane, 0)]
    collapse = height is not None and needed > height and len(empty) > 1
    for priority in lanes:
        count = snapshot.queued.get(priority, 0)
        if collapse and not count:
            if priority is empty[0]:
                text.append("\n")
                text.append("/".join(_LANE_LABELS[lane].strip() for lane in empty) + " 0", "dim")
            continue
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
    tag_runs = len({view.run_id for view in snapshot.running}) > 1
    for view in snapshot.running:
        elapsed = format_elapsed(view.started_at, now)
        tag = f" {_short_run(view.run_id)}" if tag_runs else ""
        name_room = max(4, width - len(elapsed) - len(tag) - 4)
        name = view.name if len(view.name) <= name_room else view.name[: name_room - 1] + "…"
        text.append("\n")
        text.append(f"{task_glyph(TaskStatus.RUNNING)} ", task_style(TaskStatus.RUNNING))
        text.append(name.ljust(name_room))
        text.append(tag, "dim")
        text.append(f" {elapsed}", "yellow")
    return text


class QueuesPane(Static, can_focus=True):
    """Shows an :class:`OrchestratorSnapshot`; redraws only on a new version or while tasks run."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._snapshot: OrchestratorSnapshot | None = None
        self._processes: tuple[LiveProcess, ...] = ()
        self._now = 0.0

    def show(self, snapshot: OrchestratorSnapshot, now: float, processes: tuple[LiveProcess, ...] = ()) -> None:
        """Display ``snapshot`` and the ``processes`` it adds up; running tasks' elapsed times advance to ``now``."""
        if (snapshot is self._snapshot and processes is self._processes
                and (not snapshot.running or now == self._now)):
            return
        self._snapshot, self._processes, self._now = snapshot, processes, now
        self._render_now()

    def _render_now(self) -> None:
        if self._snapshot is not None:
            region = self.content_region
            # the pane's size is set by the layout, never by its text: skip the layout pass
            self.update(render_queues(self._snapshot, self._now, max(16, region.width), processes=self._processes,
                                      height=region.height or None), layout=False)

    def on_resize(self) -> None:
        self._render_now()
