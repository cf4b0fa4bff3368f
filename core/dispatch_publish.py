"""How the dispatcher tells the world: status transitions, events and snapshots.

A mixin of :class:`~core.dispatcher.Dispatcher`, kept apart because it is the only part
that builds records for others (listeners, the event bus, the faces' snapshot); it runs
on the dispatcher thread like the rest and reads the same state.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from .clock import Clock
from .events import EventBus, EventType
from .models import TaskPriority, TaskResult, TaskStatus, TaskTransition
from .scheduler_queues import (
    CANCELLED,
    COMPLETED,
    FAILED,
    RUNNING,
    SKIPPED,
    STATUSES,
    ReadyLanes,
    TaskEntry,
)
from .snapshot import OrchestratorSnapshot, TaskView

__all__ = ["Publisher"]

log = logging.getLogger("core.dispatcher")

_QUEUE_HEAD_VIEWS = 3

_EVENT_FOR = {
    RUNNING: EventType.TASK_STARTED,
    COMPLETED: EventType.TASK_COMPLETED,
    FAILED: EventType.TASK_FAILED,
    CANCELLED: EventType.TASK_CANCELLED,
    SKIPPED: EventType.TASK_SKIPPED,
}


class Publisher:
    """Transition, event and snapshot publication for the Dispatcher (see there)."""

    # Set by the Dispatcher.
    clock: Clock
    events: EventBus | None
    listeners: tuple[Callable[[TaskTransition], None], ...]
    counts: list[int]
    entries: dict[str, TaskEntry]
    max_workers: int
    snapshot: OrchestratorSnapshot
    _version: int
    _published_version: int
    _published_at: float
    _rate_samples: deque[tuple[float, int]]
    _lanes: ReadyLanes
    _running: dict[str, TaskEntry]
    _retrying: int
    _blocked_on_resources: int

    def _touch(self) -> None:
        self._version += 1

    def _set_state(self, entry: TaskEntry, state: int, result: TaskResult | None = None, error: str = "",
                   retry_at: float | None = None, log_path: str | None = None) -> None:
        counts = self.counts
        counts[entry.state] -= 1
        counts[state] += 1
        entry.state = state
        entry.task.status = STATUSES[state]
        self._version += 1
        if self.listeners or self.events is not None:
            self._announce(entry, state, result, error, retry_at, log_path)

    def _announce(self, entry: TaskEntry, state: int, result: TaskResult | None, error: str,
                  retry_at: float | None, log_path: str | None) -> None:
        """Publish one status change to the listeners and, as an event, to the bus."""
        task = entry.task
        status = STATUSES[state]
        listeners = self.listeners
        if listeners:
            transition = TaskTransition(
                task.id, task.name, status, self.clock.time(), task.run_id, task.attempts, result, error, log_path,
                retry_at,
            )
            for listener in listeners:
                try:
                    listener(transition)
                except Exception:  # a listener's bug must not stop scheduling
                    log.exception("task listener %r failed", listener)
        kind = _EVENT_FOR.get(state)
        if kind is not None and self.events is not None:
            data: dict[str, Any] = {"status": status.value}
            if error:
                data["error"] = error
            if result is not None:
                data["execution_time"] = result.execution_time
                data["success"] = result.success
                if result.exit_code is not None:
                    data["exit_code"] = result.exit_code
            self._emit(kind, entry, data)

    def _emit(self, kind: EventType, entry: TaskEntry, data: dict[str, Any]) -> None:
        events = self.events
        if events is None or not events.has_handlers:
            return
        task = entry.task
        data.update(task_id=task.id, task_name=task.name, run_id=task.run_id)
        data.setdefault("attempt", task.attempts)
        events.emit(kind, data)

    def _publish_snapshot(self, real_now: float) -> None:
        self._published_version = self._version
        self._published_at = real_now
        counts = self.counts
        completed = counts[COMPLETED] + counts[FAILED]
        self._rate_samples.append((real_now, completed))
        first_time, first_done = self._rate_samples[0]
        rate = (completed - first_done) / (real_now - first_time) if real_now > first_time else 0.0
        total = len(self.entries)
        by_status = {STATUSES[i]: counts[i] for i in range(1, len(STATUSES))}
        by_status[TaskStatus.PENDING] = max(0, total - sum(counts[1:]))
        lanes = self._lanes
        self.snapshot = OrchestratorSnapshot(
            version=self._version,
            taken_at=self.clock.time(),
            max_workers=self.max_workers,
            queued={p: lanes.counts[p] for p in TaskPriority},
            queue_heads={p: tuple(_view(e) for e in lanes.heads(p, _QUEUE_HEAD_VIEWS)) for p in TaskPriority},
            running=tuple(_view(e) for e in self._running.values()),
            counts=by_status,
            waiting_on_dependencies=max(0, by_status[TaskStatus.PENDING] - self._retrying),
            waiting_on_resources=self._blocked_on_resources,
            retry_scheduled=self._retrying,
            completed_per_second=rate,
        )


def _view(entry: TaskEntry) -> TaskView:
    task = entry.task
    return TaskView(
        task.id, task.name, STATUSES[entry.state], TaskPriority(entry.priority), task.run_id, task.attempts,
        task.started_at, task.module, task.action, task.error,
    )
