"""Timers and cancellation for the Dispatcher: retry backoff, backstops, cancel and stop.

A mixin of :class:`~core.dispatcher.Dispatcher` (it runs on the dispatcher thread and
uses the same state). One heap holds every timer: a retry's backoff, and the backstops
that abandon an attempt still running ``BACKSTOP_MARGIN`` seconds after its timeout or
its cancel plus the kill grace (the backend is asked to kill it first; a backstop only
fires when that did not work). The dispatcher loop sleeps until the earliest one.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

from .dispatch_protocol import Attempt
from .interfaces import ExecutorBackend
from .models import TaskResult
from .scheduler_queues import (
    CANCELLED,
    COMPLETED,
    IN_LANE,
    NOWHERE,
    PENDING,
    RETRY_WAIT,
    RUNNING,
    ActiveRun,
    ReadyLanes,
    TaskEntry,
)

__all__ = ["Timers", "BACKSTOP_MARGIN", "FAR_AHEAD", "T_RETRY", "T_TIMEOUT", "T_CANCEL"]

BACKSTOP_MARGIN = 2.0  # seconds past deadline + kill_grace before an attempt is abandoned
FAR_AHEAD = 1e9  # seconds (30 years): no timer is due later; threading's waits end at ~9.2e9

# Timer kinds.
T_RETRY, T_TIMEOUT, T_CANCEL = range(3)


class Timers:
    """The timer heap, cancellation and shutdown for the Dispatcher (see there)."""

    # Set by the Dispatcher.
    backend: ExecutorBackend
    kill_grace: float
    entries: dict[str, TaskEntry]
    _timers: list[tuple[float, int, int, Any]]
    _seq: Any
    _now: float
    _retrying: int
    _runs: dict[str, ActiveRun]
    _lanes: ReadyLanes
    _started: bool
    _stopping: bool
    # Defined by the Dispatcher's other parts.
    _make_ready: Callable[[TaskEntry], None]
    _attempt_done: Callable[[Attempt, TaskResult], None]
    _finish: Callable[..., None]
    _release_admission: Callable[[ActiveRun], None]

    def _add_timer(self, due: float, kind: int, payload: Any) -> None:
        """Schedule ``payload`` at monotonic time ``due``. A due time past :data:`FAR_AHEAD`
        from now (or NaN: a task built in Python with a NaN timeout) is put there: the wait
        for it must stay within what the dispatcher's queue can wait, and one NaN at the
        head of the heap would keep every timer behind it from firing."""
        if not due <= self._now + FAR_AHEAD:  # not <=: NaN compares false
            due = self._now + FAR_AHEAD
        heapq.heappush(self._timers, (due, next(self._seq), kind, payload))

    def _fire_timers(self) -> None:
        timers = self._timers
        now = self._now
        while timers and timers[0][0] <= now:
            _, _, kind, payload = heapq.heappop(timers)
            if kind == T_RETRY:
                entry: TaskEntry = payload
                if entry.where == RETRY_WAIT and entry.state == PENDING:
                    self._retrying -= 1
                    entry.where = NOWHERE
                    self._make_ready(entry)
                continue
            attempt: Attempt = payload
            entry = attempt.entry
            if entry.attempt is not attempt:
                continue
            task = entry.task
            self.backend.cancel(attempt.handle)
            abandon = getattr(self.backend, "abandon", None)  # only a thread cannot be made to stop
            if abandon is not None:
                abandon(attempt.handle)
            if kind == T_TIMEOUT:
                result = TaskResult(
                    success=False, error_type="TimeoutError", attempt=attempt.number,
                    error_message=(f"timed out after {task.timeout:g}s and did not stop within the "
                                   f"{self.kill_grace:g}s grace period; the attempt was abandoned"),
                )
            else:
                result = TaskResult(
                    success=False, error_type="Cancelled", attempt=attempt.number,
                    error_message=(f"cancelled; the attempt did not stop within the {self.kill_grace:g}s "
                                   "grace period and was abandoned"),
                )
            self._attempt_done(attempt, result)

    # --------------------------------------------------------------- cancel

    def _cancel(self, entry: TaskEntry, reason: str) -> bool:
        if entry.state >= COMPLETED:
            return False
        entry.cancel_requested = True
        if not entry.registered:
            return True  # cancelled the moment its submission is processed
        if entry.state == RUNNING:
            attempt = entry.attempt
            self.backend.cancel(attempt.handle)
            self._add_timer(self._now + self.kill_grace + BACKSTOP_MARGIN, T_CANCEL, attempt)
            return True
        if entry.where == IN_LANE:
            self._lanes.discard(entry)
            if entry.run is not None:
                self._release_admission(entry.run)
        self._finish(entry, CANCELLED, None, reason)
        return True

    def _cancel_run(self, run_id: str) -> int:
        run = self._runs.get(run_id)
        if run is None:
            return 0
        run.cancelling = True
        live = [entry for entry in run.entries if entry.state < COMPLETED]
        # Flag them all first, so a dependent ends CANCELLED rather than SKIPPED.
        for entry in live:
            entry.cancel_requested = True
        for entry in live:
            self._cancel(entry, "cancelled with its run")
        return len(live)

    def _stop(self, cancel_running: bool) -> None:
        self._stopping = True
        self._started = True
        live = [e for e in list(self.entries.values()) if e.registered and e.state < COMPLETED]
        for entry in live:
            if entry.state != RUNNING or cancel_running:
                entry.cancel_requested = True
        for entry in live:
            if entry.cancel_requested:
                self._cancel(entry, "cancelled: the orchestrator shut down")

