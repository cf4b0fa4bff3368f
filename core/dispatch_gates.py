"""Readiness and gating for the Dispatcher: run admission, resource gates, the start loop.

A mixin of :class:`~core.dispatcher.Dispatcher` (it runs on the dispatcher thread and
uses the same state). A READY entry goes to its priority lane unless its run is at its
parallel limit (then it is parked in the run); each scheduling pass pops the best entry
while a worker slot is free, gives it its resources all-or-nothing and starts it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .errors import OrchestrationError
from .events import EventType
from .scheduler_queues import FAILED, HELD, READY, ActiveRun, ReadyLanes, TaskEntry

__all__ = ["Gates", "STAGE_BELOW", "STAGE_BUDGET", "stage_depth"]

log = logging.getLogger("core.dispatcher")

# Staging: when recent attempts took less than this on average (seconds), and the
# backend queues excess work in order, extra attempts are handed over ahead of time so
# a worker finds its next task without waiting for this thread. A worker that finds
# its queue empty blocks, and every block and wake-up is a context switch plus a GIL
# hand-over that costs more than a no-op step; with only max_workers staged, workers
# of a 10k no-op DAG blocked ~1,500 times each, with a deep stage ~70. The depth is
# bounded by time: at least max_workers, more only while the staged attempts add up to
# at most STAGE_BUDGET seconds of recent-average work, and never past
# _STAGE_PER_WORKER per worker. A task arriving later thus starts at most about
# STAGE_BUDGET / max_workers later than a strict scheduler would start it; longer
# tasks are never staged.
STAGE_BELOW = 0.001
STAGE_BUDGET = 0.002
_STAGE_PER_WORKER = 8
# Only these are ever staged: actions that return at once whatever their parameters. A
# staged attempt counts as running (its timeout runs, its resources are held) while it
# waits for a worker, so a long step after a burst of short ones must never be staged:
# it would run past max_workers, time out in the queue and pass ahead of urgent work.
_INSTANT_ACTIONS = frozenset({("builtin", "noop"), ("builtin", "echo"), ("builtin", "fail")})
_RESOURCE_SCAN_LIMIT = 256  # resource-blocked entries one pass may step over


def stage_depth(max_workers: int, recent_duration: float) -> int:
    """Return how many attempts to stage beyond ``max_workers`` for tasks this short.

    Returns:
        Between ``max_workers`` and ``max_workers * _STAGE_PER_WORKER``: as many as
        fit in ``STAGE_BUDGET`` seconds at ``recent_duration`` seconds each.
    """
    cap = max_workers * _STAGE_PER_WORKER
    if recent_duration * cap <= STAGE_BUDGET:
        return cap
    return max(max_workers, int(STAGE_BUDGET / recent_duration))


class Gates:
    """Admission, resource gating and the scheduling pass for the Dispatcher (see there)."""

    # Set by the Dispatcher.
    max_workers: int
    rm: Any
    _lanes: ReadyLanes
    _held: list[TaskEntry]
    _running: dict[str, TaskEntry]
    _started: bool
    _now: float
    _blocked_on_resources: int
    _can_stage: bool
    _recent_duration: float
    _seq: Any
    # Defined by the Dispatcher's other parts.
    _set_state: Callable[..., None]
    _touch: Callable[[], None]
    _emit: Callable[..., None]
    _finish: Callable[..., None]
    _start: Callable[[TaskEntry], bool]

    def _make_ready(self, entry: TaskEntry) -> None:
        self._set_state(entry, READY)
        if entry.held and not self._started:
            entry.where = HELD
            self._held.append(entry)
            return
        self._admit(entry)

    def _admit(self, entry: TaskEntry) -> None:
        """Put a READY entry in its lane, or park it while its run is at its parallel limit."""
        run = entry.run
        if run is not None and run.limit is not None:
            if run.admitted >= run.limit:
                run.push_waiting(entry, next(self._seq))
                return
            run.admitted += 1
        self._lanes.push(entry, self._now)

    def _start_held(self) -> None:
        self._started = True
        held, self._held = self._held, []
        for entry in held:
            entry.held = False
            if entry.where == HELD and entry.state == READY:
                self._admit(entry)
        self._touch()

    def _release_admission(self, run: ActiveRun) -> None:
        """One of the run's entries left a lane or a worker: admit the next parked one."""
        if run.limit is None:
            return
        run.admitted -= 1
        if run.admitted < run.limit:
            nxt = run.pop_waiting()
            if nxt is not None:
                run.admitted += 1
                self._lanes.push(nxt, self._now)

    # ------------------------------------------------------------ scheduling

    def _schedule(self) -> None:
        limit = self.max_workers
        if self._can_stage and self._recent_duration < STAGE_BELOW:
            limit += stage_depth(limit, self._recent_duration)
        free = limit - len(self._running)
        lanes = self._lanes
        if free <= 0 or not any(lanes.counts):
            return
        now = self._now
        rm = self.rm
        deferred: list[TaskEntry] = []
        blocked: set[str] = set()
        unstaged: list[TaskEntry] = []
        while free > 0:
            entry = lanes.pop(now)
            if entry is None:
                break
            if len(self._running) >= self.max_workers and (entry.task.module, entry.task.action) not in _INSTANT_ACTIONS:
                unstaged.append(entry)  # every worker is busy: only an instant attempt may be staged
                break
            resources = entry.task.resources
            if resources and rm is not None:
                # Reservation: once the best waiting task cannot get a resource, nothing
                # ranked after it may take that resource in this pass.
                if blocked and not blocked.isdisjoint(resources):
                    deferred.append(entry)
                    if len(deferred) >= _RESOURCE_SCAN_LIMIT:
                        break
                    continue
                if not self._allocate(entry):
                    if entry.state != READY:
                        continue  # failed: its requirements can never be met
                    # Only what it lacks: a step waiting for a lock must not hold back the
                    # cores it would share with steps that need no lock.
                    blocked.update(self._shortfall(entry) or resources)
                    deferred.append(entry)
                    if len(deferred) >= _RESOURCE_SCAN_LIMIT:
                        break
                    continue
            if self._start(entry):
                free -= 1
        if deferred or unstaged:
            lanes.push_front(deferred + unstaged)  # ranked ahead of it, so first
        if len(deferred) != self._blocked_on_resources:
            self._blocked_on_resources = len(deferred)
            self._touch()

    def _shortfall(self, entry: TaskEntry) -> set[str]:
        try:
            return self.rm.shortfall(entry.task.resources)
        except OrchestrationError:
            return set()

    def _allocate(self, entry: TaskEntry) -> bool:
        task = entry.task
        try:
            granted = self.rm.try_allocate_requirements(task.id, task.resources)
        except OrchestrationError as exc:
            self._leave_lane_slot(entry)
            self._finish(entry, FAILED, None, f"task {task.name!r} cannot get its resources: {exc.message}")
            return False
        if granted is None:
            return False
        entry.allocations = granted
        self._emit(EventType.RESOURCE_ALLOCATED, entry, {"allocations": dict(granted), "requirements": task.resources})
        return True

    def _deallocate(self, entry: TaskEntry) -> None:
        granted = entry.allocations
        if granted is None:
            return
        entry.allocations = None
        try:
            self.rm.deallocate_resources(entry.task.id)
        except Exception:  # releasing must never stop the scheduler
            log.exception("releasing the resources of task %s failed", entry.task.id)
        self._emit(EventType.RESOURCE_RELEASED, entry, {"allocations": dict(granted)})

    def _leave_lane_slot(self, entry: TaskEntry) -> None:
        """An entry popped from a lane will not run now: give back its run admission."""
        if entry.run is not None:
            self._release_admission(entry.run)
