"""The dispatcher's per-task record and its ready queues (one lane per priority, with aging).

Only the dispatcher thread of a :class:`~core.task_orchestrator.TaskOrchestrator`
touches these after a task was submitted, so nothing here takes a lock. Statuses are
kept as small ints (``entry.state``) because the hot path compares and counts them per
task; ``STATUSES[entry.state]`` is the public :class:`~core.models.TaskStatus`.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .interfaces import ParameterGuard
from .models import Task, TaskPriority, TaskStatus

__all__ = [
    "STATUSES",
    "PENDING",
    "READY",
    "RUNNING",
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "SKIPPED",
    "TaskEntry",
    "ActiveRun",
    "ReadyLanes",
]

# Index of each status in STATUSES; every state >= COMPLETED is terminal.
PENDING, READY, RUNNING, COMPLETED, FAILED, CANCELLED, SKIPPED = range(7)
STATUSES: tuple[TaskStatus, ...] = (
    TaskStatus.PENDING,
    TaskStatus.READY,
    TaskStatus.RUNNING,
    TaskStatus.COMPLETED,
    TaskStatus.FAILED,
    TaskStatus.CANCELLED,
    TaskStatus.SKIPPED,
)

# Where a non-terminal entry sits (entry.where). Queues drop stale entries lazily: an
# entry is live in a queue only while its ``where`` still names that queue.
NOWHERE, WAITING_DEPS, IN_LANE, HELD, RUN_QUEUE, RETRY_WAIT, ON_WORKER = range(7)

_LANES = len(TaskPriority)


class TaskEntry:
    """The dispatcher's bookkeeping for one submitted task.

    Created on the submitting thread (so the task id is known at once), then owned by
    the dispatcher: every field below ``task`` and ``priority`` is written only there.
    """

    __slots__ = (
        "task",
        "priority",
        "held",
        "registered",
        "state",
        "where",
        "waiting",
        "deps",
        "dependents",
        "run",
        "attempt",
        "enqueued_at",
        "dynamic",
        "allocations",
        "cancel_requested",
        "waiters",
    )

    def __init__(self, task: Task, priority: int) -> None:
        self.task = task
        self.priority = priority
        self.held = False  # submitted before start_execution(): waits for it
        self.registered = False
        self.state = PENDING
        self.where = NOWHERE
        self.waiting = 0  # unfinished dependencies
        self.deps: list[TaskEntry] | None = None
        self.dependents: list[TaskEntry] | None = None
        self.run: ActiveRun | None = None
        self.attempt: Any = None  # the live attempt while RUNNING
        self.enqueued_at = 0.0
        self.dynamic = False  # has parameter references or conditions to resolve
        self.allocations: dict[str, str] | None = None
        self.cancel_requested = False
        self.waiters: list[Any] | None = None


class ActiveRun:
    """A workflow run while it has unfinished tasks: names, outputs and its parallel limit."""

    __slots__ = ("run_id", "params", "log_dir", "limit", "working_dir", "preset", "guard", "names", "outputs",
                 "admitted", "queue", "active", "entries", "cancelling")

    def __init__(
        self,
        run_id: str,
        params: dict[str, Any],
        log_dir: Path | None,
        limit: int | None,
        working_dir: str | None,
        preset: dict[str, Any],
        guard: ParameterGuard | None = None,
    ) -> None:
        self.run_id = run_id
        self.params = params
        self.log_dir = log_dir
        self.limit = limit
        self.working_dir = working_dir
        self.preset = preset
        self.guard = guard  # checks resolved parameters (RunSpec.parameter_guard)
        self.names: dict[str, TaskEntry] = {}
        self.outputs: dict[str, Any] = dict(preset)
        self.admitted = 0  # entries in a lane or running (counted against ``limit``)
        self.queue: list[tuple[int, int, TaskEntry]] = []  # ready but over the limit
        self.active = 0  # non-terminal entries
        self.entries: list[TaskEntry] = []
        self.cancelling = False

    def push_waiting(self, entry: TaskEntry, seq: int) -> None:
        """Park a ready entry until the run is under its limit again."""
        entry.where = RUN_QUEUE
        heapq.heappush(self.queue, (entry.priority, seq, entry))

    def pop_waiting(self) -> TaskEntry | None:
        """Return the best parked entry still waiting, or None."""
        queue = self.queue
        while queue:
            entry = heapq.heappop(queue)[2]
            if entry.where == RUN_QUEUE:
                return entry
        return None


class ReadyLanes:
    """Ready entries, one FIFO lane per priority, picked by effective priority.

    An entry's effective priority improves by one level per ``aging_interval`` seconds
    it has waited (never past CRITICAL); ties go to the entry that waited longest. So
    a LOW task behind a stream of HIGH ones reaches the front after at most
    ``2 * aging_interval``. Within a lane the oldest entry is also the most aged, so
    only the lane heads need comparing.
    """

    __slots__ = ("lanes", "counts", "aging_interval")

    def __init__(self, aging_interval: float | None) -> None:
        self.lanes: tuple[deque[TaskEntry], ...] = tuple(deque() for _ in range(_LANES))
        self.counts = [0] * _LANES
        self.aging_interval = aging_interval if aging_interval and aging_interval > 0 else None

    def __len__(self) -> int:
        return sum(self.counts)

    def push(self, entry: TaskEntry, now: float) -> None:
        """Append ``entry`` to its lane, waiting since ``now``."""
        entry.where = IN_LANE
        entry.enqueued_at = now
        self.lanes[entry.priority].append(entry)
        self.counts[entry.priority] += 1

    def push_front(self, entries: list[TaskEntry]) -> None:
        """Put back entries popped in this order (they keep their place and their age)."""
        lanes = self.lanes
        counts = self.counts
        for entry in reversed(entries):
            entry.where = IN_LANE
            lanes[entry.priority].appendleft(entry)
            counts[entry.priority] += 1

    def discard(self, entry: TaskEntry) -> None:
        """Forget ``entry`` (cancelled while ready); its lane drops it when it reaches the head."""
        entry.where = NOWHERE
        self.counts[entry.priority] -= 1

    def pop(self, now: float) -> TaskEntry | None:
        """Remove and return the entry to start next, or None when all lanes are empty."""
        counts = self.counts
        lanes = self.lanes
        aging = self.aging_interval
        best_lane = -1
        best_rank = 0
        best_since = 0.0
        for lane_no in range(_LANES):
            if not counts[lane_no]:
                continue
            lane = lanes[lane_no]
            while lane[0].where != IN_LANE:  # a live entry exists: counts are exact
                lane.popleft()
            if best_lane < 0:
                best_lane, best_rank, best_since = lane_no, lane_no, lane[0].enqueued_at
                if aging is None:
                    break
                best_rank = max(0, lane_no - int((now - best_since) / aging))
                continue
            since = lane[0].enqueued_at
            rank = max(0, lane_no - int((now - since) / aging))  # type: ignore[operator]
            if rank < best_rank or (rank == best_rank and since < best_since):
                best_lane, best_rank, best_since = lane_no, rank, since
        if best_lane < 0:
            return None
        counts[best_lane] -= 1
        entry = lanes[best_lane].popleft()
        entry.where = NOWHERE
        return entry

    def heads(self, lane_no: int, limit: int) -> Iterator[TaskEntry]:
        """Yield up to ``limit`` live entries from the front of one lane (for snapshots)."""
        found = 0
        for entry in self.lanes[lane_no]:
            if found >= limit:
                return
            if entry.where == IN_LANE:
                found += 1
                yield entry
