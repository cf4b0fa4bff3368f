"""Immutable views of live state, built by the core and polled by the faces.

The dashboard never reads the scheduler's own dictionaries: the dispatcher publishes a
new :class:`OrchestratorSnapshot` (an immutable object swapped in by one assignment)
whenever its version moved and enough time has passed, and readers take whichever is
current. This keeps the UI's cost independent of the task rate (memray's live view
works the same way).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .models import TaskPriority, TaskStatus, WorkflowStatus

__all__ = ["TaskView", "OrchestratorSnapshot", "RunView"]


@dataclasses.dataclass(slots=True, frozen=True)
class TaskView:
    """What a face shows of one task."""

    id: str
    name: str
    status: TaskStatus
    priority: TaskPriority
    run_id: str | None = None
    attempt: int = 0
    started_at: float | None = None  # wall clock
    module: str = ""
    action: str = ""
    error: str = ""


@dataclasses.dataclass(slots=True, frozen=True)
class OrchestratorSnapshot:
    """The scheduler at one instant. ``version`` grows with every state change."""

    version: int
    taken_at: float
    max_workers: int
    queued: dict[TaskPriority, int]  # ready tasks per priority lane
    queue_heads: dict[TaskPriority, tuple[TaskView, ...]]  # first few ready tasks per lane
    running: tuple[TaskView, ...]
    counts: dict[TaskStatus, int]  # every known task by status
    waiting_on_dependencies: int = 0
    waiting_on_resources: int = 0
    retry_scheduled: int = 0
    completed_per_second: float = 0.0

    @classmethod
    def empty(cls, max_workers: int = 0) -> OrchestratorSnapshot:
        return cls(0, 0.0, max_workers, {p: 0 for p in TaskPriority}, {p: () for p in TaskPriority}, (), {})


@dataclasses.dataclass(slots=True, frozen=True)
class RunView:
    """One workflow run as the faces list it (from memory or from the store)."""

    run_id: str
    workflow: str
    status: WorkflowStatus
    started_at: float | None
    finished_at: float | None = None
    step_status: dict[str, TaskStatus] = dataclasses.field(default_factory=dict)
    step_started_at: dict[str, float] = dataclasses.field(default_factory=dict)
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    error: str = ""
    owner_pid: int | None = None
    session_id: str | None = None
    owner_started_at: float | None = None  # the owner's start time: with the pid, proves it is the same process
    host: str | None = None  # where the owner runs (None: this process's own run, or not recorded)
