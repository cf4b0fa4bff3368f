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
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from .clock import Clock, ManualClock
from .conditions import evaluate_conditions
from .errors import OrchestrationError
from .events import EventBus, EventType
from .interfaces import ExecutorBackend
from .models import Invocation, TaskResult, TaskStatus, TaskTransition
from .scheduler_queues import (
    CANCELLED,
    COMPLETED,
    FAILED,
    HELD,
    IN_LANE,
    NOWHERE,
    ON_WORKER,
    PENDING,
    READY,
    RETRY_WAIT,
    RUNNING,
    SKIPPED,
    STATUSES,
    WAITING_DEPS,
    ActiveRun,
    ReadyLanes,
    TaskEntry,
)
from .dispatch_publish import Publisher
from .snapshot import OrchestratorSnapshot
from .templating import has_references, referenced_steps, resolve_parameters

__all__ = ["Dispatcher", "Waiter", "SNAPSHOT_INTERVAL", "BACKSTOP_MARGIN"]

log = logging.getLogger(__name__)

SNAPSHOT_INTERVAL = 0.05  # seconds between two published snapshots, at most
# Staging: when recent attempts took less than this on average (seconds), and the
# backend queues excess work in order, up to max_workers extra attempts are handed over
# ahead of time so a worker finds its next task without waiting for this thread. A
# task arriving later can then start at most about one such short task later than a
# strict scheduler would start it; longer tasks are never staged.
STAGE_BELOW = 0.001
_EWMA_WEIGHT = 0.125
BACKSTOP_MARGIN = 2.0  # seconds past deadline + kill_grace before an attempt is abandoned
_RESOURCE_SCAN_LIMIT = 256  # resource-blocked entries one pass may step over

# Inbox operations (first element of every message).
(
    OP_DONE,
    OP_ADD,
    OP_RUN,
    OP_START,
    OP_WAIT,
    OP_CANCEL,
    OP_CANCEL_RUN,
    OP_BARRIER,
    OP_FLUSH,
    OP_WAKE,
    OP_WORKERS,
    OP_STOP,
) = range(12)

# Timer kinds.
_T_RETRY, _T_TIMEOUT, _T_CANCEL = range(3)



class Waiter:
    """Counts down to zero as the entries it waits for end; then its event is set."""

    __slots__ = ("remaining", "event", "value")

    def __init__(self, remaining: int = 1) -> None:
        self.remaining = remaining
        self.event = threading.Event()
        self.value: Any = None

    def count_down(self) -> None:
        self.remaining -= 1
        if self.remaining <= 0:
            self.event.set()

    def reply(self, value: Any = None) -> None:
        self.value = value
        self.event.set()


class _Attempt:
    """One attempt of one task on the backend; its ``done`` is the backend's callback."""

    __slots__ = ("entry", "number", "handle", "put", "log_path")

    def __init__(self, entry: TaskEntry, number: int, put: Callable[[Any], None], log_path: str | None) -> None:
        self.entry = entry
        self.number = number
        self.handle: Any = None
        self.put = put
        self.log_path = log_path

    def done(self, result: TaskResult) -> None:
        self.put((OP_DONE, self, result))


class Dispatcher(Publisher):
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
            self._finish(entry, SKIPPED, None, _skip_reason(blocker))
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

    # ------------------------------------------------------------ readiness

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
            limit += limit
        free = limit - len(self._running)
        lanes = self._lanes
        if free <= 0 or not any(lanes.counts):
            return
        now = self._now
        rm = self.rm
        deferred: list[TaskEntry] = []
        blocked: set[str] = set()
        while free > 0:
            entry = lanes.pop(now)
            if entry is None:
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
                    blocked.update(resources)
                    deferred.append(entry)
                    if len(deferred) >= _RESOURCE_SCAN_LIMIT:
                        break
                    continue
            if self._start(entry):
                free -= 1
        if deferred:
            lanes.push_front(deferred)
        if len(deferred) != self._blocked_on_resources:
            self._blocked_on_resources = len(deferred)
            self._touch()

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

    def _start(self, entry: TaskEntry) -> bool:
        """Hand one attempt of ``entry`` to the backend; False if it ended instead (skip/fail)."""
        task = entry.task
        run = entry.run
        params = task.parameters
        if entry.dynamic:
            try:
                if task.conditions and task.attempts == 0:
                    ok, reason = evaluate_conditions(
                        task.conditions,
                        params=run.params if run is not None else {},
                        outputs=self._outputs_for(entry, task.conditions),
                        statuses=self._statuses_for(entry),
                    )
                    if not ok:
                        self._deallocate(entry)
                        self._leave_lane_slot(entry)
                        self._finish(entry, SKIPPED, None, f"skipped: condition not met ({reason})" if reason else
                                     "skipped: condition not met")
                        return False
                if task.parameters and has_references(task.parameters):
                    params = resolve_parameters(
                        task.module, task.action, task.parameters,
                        params=run.params if run is not None else {},
                        outputs=self._outputs_for(entry, task.parameters),
                        step_name=task.name,
                    )
            except OrchestrationError as exc:
                self._deallocate(entry)
                self._leave_lane_slot(entry)
                self._finish(entry, FAILED, None, exc.message)
                return False
        number = task.attempts + 1
        task.attempts = number
        log_path = None
        working_dir = task.working_dir
        if run is not None:
            if run.log_dir is not None:
                # os.path.join on the string form: a pathlib join per attempt costs more
                # than the no-op steps it is for.
                log_path = os.path.join(run.log_dir, f"{task.name}.{number}.log")
            working_dir = working_dir or run.working_dir
        memory_limit = self.rm.memory_limit_bytes(task.resources) if task.resources and self.rm is not None else None
        invocation = Invocation(
            task.id, task.name, task.module, task.action, params, number, task.run_id, task.timeout,
            log_path, self.log_cap_bytes, working_dir, None, memory_limit, self.kill_grace, task.resources,
        )
        attempt = _Attempt(entry, number, self.post, log_path)
        entry.attempt = attempt
        entry.where = ON_WORKER
        self._running[task.id] = entry
        if task.started_at is None:
            task.started_at = self.clock.time()
        self._set_state(entry, RUNNING, None, "", None, log_path)
        try:
            attempt.handle = self.backend.submit(invocation, attempt.done)
        except Exception as exc:  # a backend that refuses work fails the attempt, not the scheduler
            self._attempt_done(attempt, TaskResult(
                success=False, error_message=f"the executor refused task {task.name!r}: {exc}",
                error_type=type(exc).__name__, attempt=number))
            return True
        if task.timeout:
            self._add_timer(self._now + task.timeout + self.kill_grace + BACKSTOP_MARGIN, _T_TIMEOUT, attempt)
        return True

    def _outputs_for(self, entry: TaskEntry, value: Any) -> dict[str, Any]:
        run = entry.run
        if run is not None:
            return run.outputs
        outputs: dict[str, Any] = {}
        for name in referenced_steps(value):
            dep = self._find_dependency(name, None)
            if dep is not None and dep.state == COMPLETED and dep.task.result is not None:
                outputs[name] = dep.task.result.data
        return outputs

    def _statuses_for(self, entry: TaskEntry) -> dict[str, TaskStatus]:
        run = entry.run
        source: Iterable[TaskEntry] = run.names.values() if run is not None else (entry.deps or ())
        statuses = {dep.task.name: STATUSES[dep.state] for dep in source}
        if run is not None:
            for name in run.preset:
                statuses.setdefault(name, TaskStatus.COMPLETED)
        return statuses

    # ------------------------------------------------------------ completion

    def _attempt_done(self, attempt: _Attempt, result: TaskResult) -> None:
        entry = attempt.entry
        if entry.attempt is not attempt:
            return  # abandoned by a backstop; its late result means nothing now
        entry.attempt = None
        entry.where = NOWHERE
        task = entry.task
        del self._running[task.id]
        self._deallocate(entry)
        if entry.run is not None:
            self._release_admission(entry.run)
        result.attempt = attempt.number
        duration = result.execution_time
        self.execution_time += duration
        self.finished_attempts += 1
        self._recent_duration += (duration - self._recent_duration) * _EWMA_WEIGHT
        task.result = result
        if result.success:
            task.error = ""
            if entry.run is not None:
                entry.run.outputs[task.name] = result.data
            self._finish(entry, COMPLETED, result, "", attempt.log_path)
        elif entry.cancel_requested or result.error_type == "Cancelled":
            self._finish(entry, CANCELLED, result, result.error_message or "cancelled", attempt.log_path)
        else:
            task.error = result.error_message
            if task.max_retries and not self._stopping:
                policy = task.retry_policy
                if policy.should_retry(attempt.number, result.exit_code):
                    self._schedule_retry(entry, result, policy.delay_for(attempt.number, self.rng), attempt.log_path)
                    return
            self._finish(entry, FAILED, result, result.error_message, attempt.log_path)

    def _schedule_retry(self, entry: TaskEntry, result: TaskResult, delay: float, log_path: str | None) -> None:
        entry.where = RETRY_WAIT
        self._retrying += 1
        self._add_timer(self._now + delay, _T_RETRY, entry)
        retry_at = self.clock.time() + delay
        self._set_state(entry, PENDING, result, result.error_message, retry_at, log_path)
        self._emit(EventType.TASK_RETRYING, entry, {
            "attempt": entry.task.attempts, "error": result.error_message, "retry_in": delay, "retry_at": retry_at,
        })

    def _finish(self, entry: TaskEntry, state: int, result: TaskResult | None, error: str,
                log_path: str | None = None, *, settle: bool = True) -> None:
        """Make ``entry`` terminal and, with ``settle``, release or skip its dependents."""
        task = entry.task
        if state != COMPLETED and error:
            task.error = error
        task.completed_at = self.clock.time()
        if entry.where == RETRY_WAIT:
            self._retrying -= 1
        entry.where = NOWHERE
        self._set_state(entry, state, result, error if state != COMPLETED else "", None, log_path)
        self._active -= 1
        waiters = entry.waiters
        if waiters is not None:
            entry.waiters = None
            for waiter in waiters:
                waiter.count_down()
        run = entry.run
        if run is not None:
            run.active -= 1
            if run.active <= 0:
                self._runs.pop(run.run_id, None)
        if settle and entry.dependents:
            self._settle_dependents(entry)

    def _settle_dependents(self, entry: TaskEntry) -> None:
        """Release or skip the dependents of a terminal entry, transitively, without recursion."""
        stack = [entry]
        while stack:
            done = stack.pop()
            dependents = done.dependents
            if not dependents:
                continue
            done.dependents = None
            state = done.state
            satisfied = state == COMPLETED or (state == FAILED and done.task.continue_on_failure)
            for dep in dependents:
                if dep.where != WAITING_DEPS:
                    continue  # already ended (skipped by another branch, cancelled)
                if satisfied:
                    dep.waiting -= 1
                    if dep.waiting == 0:
                        dep.where = NOWHERE
                        self._make_ready(dep)
                else:
                    ended = CANCELLED if dep.cancel_requested else SKIPPED
                    self._finish(dep, ended, None, "cancelled" if ended == CANCELLED else _skip_reason(done),
                                 settle=False)
                    stack.append(dep)

    # --------------------------------------------------------------- timers

    def _add_timer(self, due: float, kind: int, payload: Any) -> None:
        heapq.heappush(self._timers, (due, next(self._seq), kind, payload))

    def _fire_timers(self) -> None:
        timers = self._timers
        now = self._now
        while timers and timers[0][0] <= now:
            _, _, kind, payload = heapq.heappop(timers)
            if kind == _T_RETRY:
                entry: TaskEntry = payload
                if entry.where == RETRY_WAIT and entry.state == PENDING:
                    self._retrying -= 1
                    entry.where = NOWHERE
                    self._make_ready(entry)
                continue
            attempt: _Attempt = payload
            entry = attempt.entry
            if entry.attempt is not attempt:
                continue
            task = entry.task
            self.backend.cancel(attempt.handle)
            if kind == _T_TIMEOUT:
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
            self._add_timer(self._now + self.kill_grace + BACKSTOP_MARGIN, _T_CANCEL, attempt)
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


def _skip_reason(upstream: TaskEntry) -> str:
    status = STATUSES[upstream.state].value
    return f"skipped: dependency {upstream.task.name!r} {status}"
