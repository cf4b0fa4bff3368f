"""The dispatcher thread behind a TaskOrchestrator: the single writer of scheduler state.

Every other thread talks to it through one ``queue.SimpleQueue`` inbox of small
tuples: API calls (add, cancel, wait, start, stop), backend completion callbacks,
resource-release and clock-advance wake-ups. The loop drains the inbox in batches,
fires due timers (retry backoff, timeout and cancel backstops), then starts ready tasks
while a worker slot is free, so the backend never holds a queue of its own and
priority order is real. Nothing on this path takes a contended lock.

Status changes are published to listeners on this thread (they must be cheap) and, as
events, to an :class:`~core.events.EventBus` whose handlers run on its own thread.
An immutable :class:`~core.snapshot.OrchestratorSnapshot` is republished at most every
``SNAPSHOT_INTERVAL`` seconds when something changed.

The class is assembled from one mixin per concern, all running on this one thread over
the same state (plain method lookups, so the hot path pays nothing for the split):
:mod:`core.dispatch_gates` (admission, resource gates, the scheduling pass),
:mod:`core.dispatch_lifecycle` (starting and ending attempts, retries, dependents),
:mod:`core.dispatch_timers` (the timer heap, cancel and stop) and
:mod:`core.dispatch_publish` (transitions, events, snapshots). This module keeps the
loop, registration and waiting; :mod:`core.dispatch_protocol` defines the messages.
"""

from __future__ import annotations

import itertools
import logging
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .clock import Clock, ManualClock
from .dispatch_gates import STAGE_BELOW, Gates
from .dispatch_lifecycle import Lifecycle, skip_reason
from .dispatch_protocol import (
    OP_ADD,
    OP_BARRIER,
    OP_CANCEL,
    OP_CANCEL_RUN,
    OP_DONE,
    OP_FLUSH,
    OP_RUN,
    OP_START,
    OP_STOP,
    OP_WAIT,
    OP_WAKE,
    OP_WORKERS,
    Waiter,
)
from .dispatch_publish import Publisher
from .dispatch_timers import Timers
from .events import EventBus
from .interfaces import ExecutorBackend
from .models import TaskResult, TaskStatus, TaskTransition
from .scheduler_queues import (
    CANCELLED,
    COMPLETED,
    FAILED,
    HELD,
    PENDING,
    READY,
    SKIPPED,
    STATUSES,
    WAITING_DEPS,
    ActiveRun,
    ReadyLanes,
    TaskEntry,
)
from .snapshot import OrchestratorSnapshot
from .templating import has_references

__all__ = ["Dispatcher", "SNAPSHOT_INTERVAL"]

log = logging.getLogger(__name__)

SNAPSHOT_INTERVAL = 0.05  # seconds between two published snapshots, at most


class Dispatcher(Gates, Lifecycle, Timers, Publisher):
    """Owns the queues and all scheduler state of one orchestrator; runs on its own thread.

    The orchestrator creates it, posts messages with :meth:`post` and reads only
    :attr:`counts`, :attr:`snapshot` and the statuses on the Task objects.
    """

    def __init__(
        self,
        *,
        entries: dict[str, TaskEntry],
        backend: ExecutorBackend,
        max_workers: int,
        clock: Clock,
        events: EventBus | None,
        rng: random.Random,
        aging_interval: float | None,
        kill_grace: float,
        resource_manager: Any,
        log_cap_bytes: int,
        name: str,
    ) -> None:
        self.inbox: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self.post = self.inbox.put
        self.entries = entries
        self.backend = backend
        self.max_workers = max_workers
        self.clock = clock
        self.events = events
        self.rng = rng
        self.kill_grace = kill_grace
        self.rm = resource_manager
        self.log_cap_bytes = log_cap_bytes
        self.listeners: tuple[Callable[[TaskTransition], None], ...] = ()
        # counts[state] of registered tasks; readers derive PENDING from the total, which
        # also covers tasks still in the inbox.
        self.counts = [0] * len(STATUSES)
        self.execution_time = 0.0
        self.finished_attempts = 0
        self.snapshot = OrchestratorSnapshot.empty(max_workers)
        self._lanes = ReadyLanes(aging_interval)
        self._names: dict[str, TaskEntry] = {}
        self._runs: dict[str, ActiveRun] = {}
        self._held: list[TaskEntry] = []
        self._timers: list[tuple[float, int, int, Any]] = []
        self._seq = itertools.count()
        self._running: dict[str, TaskEntry] = {}
        self._active = 0  # registered, non-terminal entries
        self._retrying = 0
        self._blocked_on_resources = 0
        self._barriers: list[Waiter] = []
        self._flushes: list[Waiter] = []
        self._started = False
        self._stopping = False
        self._now = clock.monotonic()
        self._version = 0
        self._published_version = 0
        self._published_at = 0.0
        self._rate_samples: deque[tuple[float, int]] = deque(maxlen=64)
        self._can_stage = bool(getattr(backend, "queues_excess", False))
        self._recent_duration = STAGE_BELOW * 10  # EWMA of attempt durations; assume long at first
        self.thread = threading.Thread(target=self._loop, name=f"{name}-dispatcher", daemon=True)

    # ----------------------------------------------------------------- loop

    def _loop(self) -> None:
        get = self.inbox.get
        empty = self.inbox.empty
        handle = self._handle
        while True:
            try:
                message = get(timeout=self._wait_timeout())
            except queue.Empty:
                message = None
            self._now = self.clock.monotonic()
            if message is not None:
                try:
                    handle(message)
                    while not empty():
                        handle(get())
                except Exception:  # a bug must not kill the only scheduler thread
                    log.exception("orchtui dispatcher failed on a message")
            try:
                self._tick()
            except Exception:
                log.exception("orchtui dispatcher failed while scheduling")
            if self._stopping and not self._running:
                break
        self._close_out()

    def _wait_timeout(self) -> float | None:
        timeout: float | None = None
        if self._timers:
            timeout = max(0.0, self._timers[0][0] - self.clock.monotonic())
        if self._version != self._published_version:
            pending = max(0.0, self._published_at + SNAPSHOT_INTERVAL - time.monotonic())
            timeout = pending if timeout is None else min(timeout, pending)
        return timeout

    def _tick(self) -> None:
        if self._timers and self._timers[0][0] <= self._now:
            self._fire_timers()
        self._schedule()
        if self._barriers and not self._active:
            for waiter in self._barriers:
                waiter.reply(True)
            self._barriers.clear()
        if self._version != self._published_version:
            real_now = time.monotonic()
            if real_now - self._published_at >= SNAPSHOT_INTERVAL or self._flushes:
                self._publish_snapshot(real_now)
        if self._flushes:
            for waiter in self._flushes:
                waiter.reply(True)
            self._flushes.clear()

    def _handle(self, message: tuple[Any, ...]) -> None:
        op = message[0]
        if op == OP_DONE:
            self._attempt_done(message[1], message[2])
        elif op == OP_ADD:
            for entry in message[1]:
                self._register(entry, message[2], None)
        elif op == OP_RUN:
            self._register_run(message[1], message[2])
        elif op == OP_START:
            self._start_held()
        elif op == OP_WAIT:
            self._add_waiter(message[1], message[2], message[3])
        elif op == OP_CANCEL:
            message[2].reply(self._cancel(message[1], "cancelled"))
        elif op == OP_CANCEL_RUN:
            message[2].reply(self._cancel_run(message[1]))
        elif op == OP_BARRIER:
            self._barriers.append(message[1])
        elif op == OP_FLUSH:
            self._flushes.append(message[1])
        elif op == OP_WORKERS:
            self.max_workers = message[1]
            resize = getattr(self.backend, "resize", None)
            if resize is not None:
                resize(message[1])
            self._touch()
        elif op == OP_STOP:
            self._stop(message[1])
        # OP_WAKE only ends the wait so that timers and the schedule are re-checked.

    def _close_out(self) -> None:
        """After the loop: answer every message still queued, cancel late additions."""
        while not self.inbox.empty():
            message = self.inbox.get()
            try:
                self._handle(message)
            except Exception:
                log.exception("orchtui dispatcher failed while closing")
        for waiter in self._barriers + self._flushes:
            waiter.reply(not self._active)
        self._barriers.clear()
        self._flushes.clear()
        self._publish_snapshot(time.monotonic())

    # ---------------------------------------------------------- registration

    def _register(self, entry: TaskEntry, held: bool, run: ActiveRun | None) -> None:
        if entry.registered:
            return
        entry.registered = True
        entry.held = held and not self._started
        entry.run = run
        task = entry.task
        self._active += 1
        self.counts[PENDING] += 1
        self._version += 1
        if run is None:
            self._names[task.name] = entry
        if self._stopping or entry.cancel_requested:
            self._finish(entry, CANCELLED, None, "cancelled before it started")
            return
        if task.resources and self.rm is not None:
            try:
                problem = self.rm.requirement_problem(task.resources)
            except Exception as exc:  # a malformed requirement: the task's fault, not ours
                problem = str(exc)
            if problem:
                self._finish(entry, FAILED, None, f"task {task.name!r} cannot get its resources: {problem}")
                return
        entry.dynamic = bool(task.conditions) or (bool(task.parameters) and has_references(task.parameters))
        waiting = 0
        blocker: TaskEntry | None = None
        deps: list[TaskEntry] = []
        entries = self.entries
        for name in task.dependencies:
            # Ids first (the common case, and what a run's names never collide with).
            dep = entries.get(name) if run is None else None
            if dep is None:
                dep = self._find_dependency(name, run)
            if dep is None:
                if run is not None and name in run.preset:
                    continue
                self._finish(
                    entry, FAILED, None,
                    f"task {task.name!r} depends on {name!r}, which is neither the id nor the name of a task "
                    "submitted before it; submit the dependency first",
                )
                return
            deps.append(dep)
            state = dep.state
            if state == COMPLETED or (state == FAILED and dep.task.continue_on_failure):
                continue
            if state >= COMPLETED:
                blocker = dep
                break
            waiting += 1
            if dep.dependents is None:
                dep.dependents = [entry]
            else:
                dep.dependents.append(entry)
        entry.deps = deps or None
        if blocker is not None:
            self._finish(entry, SKIPPED, None, skip_reason(blocker))
        elif waiting:
            entry.waiting = waiting
            entry.where = WAITING_DEPS
        else:
            self._make_ready(entry)

    def _find_dependency(self, name: str, run: ActiveRun | None) -> TaskEntry | None:
        if run is not None:
            found = run.names.get(name)
            if found is not None:
                return found
        found = self.entries.get(name)
        if found is not None:
            return found
        return self._names.get(name) if run is None else None

    def _register_run(self, run: ActiveRun, entries: list[TaskEntry]) -> None:
        self._runs[run.run_id] = run
        run.entries = entries
        for entry in entries:
            run.names[entry.task.name] = entry
        for entry in entries:
            if entry.task.name in run.preset:
                self._preset_completed(entry, run)
        todo = [entry for entry in entries if not entry.registered]
        # Counted up front: a task that ends while registering must not end the run early.
        run.active = len(todo)
        for entry in todo:
            self._register(entry, False, run)
        if not run.active:
            self._runs.pop(run.run_id, None)

    def _preset_completed(self, entry: TaskEntry, run: ActiveRun) -> None:
        """A step resumed from an earlier run: completed with its recorded output, not run again."""
        entry.registered = True
        entry.run = run
        task = entry.task
        output = run.preset[task.name]
        task.result = TaskResult(success=True, data=output, metadata={"preset": True}, attempt=0)
        task.status = TaskStatus.COMPLETED
        task.completed_at = self.clock.time()
        entry.state = COMPLETED
        self.counts[COMPLETED] += 1
        self._touch()

    # -------------------------------------------------------------- waiting

    def _add_waiter(self, entries: list[TaskEntry], waiter: Waiter, release: bool) -> None:
        if release:
            self._release(entries)
        for entry in entries:
            if entry.state >= COMPLETED:
                waiter.count_down()
            elif entry.waiters is None:
                entry.waiters = [waiter]
            else:
                entry.waiters.append(waiter)

    def _release(self, entries: list[TaskEntry]) -> None:
        """Run held entries (and their held ancestors) now, without a start_execution()."""
        stack = list(entries)
        while stack:
            entry = stack.pop()
            if not entry.held:
                continue
            entry.held = False
            if entry.where == HELD and entry.state == READY:
                self._admit(entry)  # its stale copy in _held is skipped at start
            if entry.deps:
                stack.extend(entry.deps)

    # ------------------------------------------------------------- control

    def start_thread(self) -> None:
        self.thread.start()
        if isinstance(self.clock, ManualClock):
            self.clock.on_advance(self.wake)

    def wake(self) -> None:
        """Make the loop re-read the clock (time jumped, or a resource was released)."""
        if self.thread.is_alive():
            self.post((OP_WAKE,))

    def flush(self, timeout: float | None) -> bool:
        """Block until everything posted so far was handled and a snapshot published."""
        if threading.current_thread() is self.thread:
            return True
        waiter = Waiter()
        self.post((OP_FLUSH, waiter))
        return waiter.event.wait(timeout)
