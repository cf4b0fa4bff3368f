"""The attempt lifecycle for the Dispatcher: start, complete, retry, finish, settle.

A mixin of :class:`~core.dispatcher.Dispatcher` (it runs on the dispatcher thread and
uses the same state). :meth:`Lifecycle._start` resolves conditions and parameter
references at the last moment and hands one :class:`~core.dispatch_protocol.Attempt`
to the backend; its result comes back through the inbox to :meth:`_attempt_done`,
which completes, retries (backoff on the timer heap) or fails the task, and
:meth:`_finish` releases or skips its dependents.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterable
from typing import Any

from .clock import Clock
from .conditions import evaluate_conditions
from .dispatch_protocol import Attempt
from .dispatch_timers import BACKSTOP_MARGIN, T_RETRY, T_TIMEOUT
from .errors import OrchestrationError
from .events import EventType
from .interfaces import ExecutorBackend
from .logs import log_file_name
from .models import Invocation, TaskResult, TaskStatus
from .scheduler_queues import (
    CANCELLED,
    COMPLETED,
    FAILED,
    NOWHERE,
    ON_WORKER,
    PENDING,
    RETRY_WAIT,
    RUNNING,
    SKIPPED,
    STATUSES,
    WAITING_DEPS,
    ActiveRun,
    TaskEntry,
)
from .templating import has_references, referenced_steps, resolve_parameters

__all__ = ["Lifecycle", "skip_reason"]

_EWMA_WEIGHT = 0.125  # weight of the newest attempt in the running mean of durations


class Lifecycle:
    """Starting and ending attempts and tasks for the Dispatcher (see there)."""

    # Set by the Dispatcher.
    post: Callable[[Any], None]
    backend: ExecutorBackend
    clock: Clock
    rng: random.Random
    kill_grace: float
    rm: Any
    log_cap_bytes: int
    execution_time: float
    finished_attempts: int
    _running: dict[str, TaskEntry]
    _runs: dict[str, ActiveRun]
    _active: int
    _retrying: int
    _stopping: bool
    _now: float
    _recent_duration: float
    # Defined by the Dispatcher's other parts.
    _set_state: Callable[..., None]
    _emit: Callable[..., None]
    _make_ready: Callable[[TaskEntry], None]
    _deallocate: Callable[[TaskEntry], None]
    _leave_lane_slot: Callable[[TaskEntry], None]
    _release_admission: Callable[[ActiveRun], None]
    _find_dependency: Callable[[str, ActiveRun | None], TaskEntry | None]
    _add_timer: Callable[[float, int, Any], None]

    def _start(self, entry: TaskEntry) -> bool:
        """Hand one attempt of ``entry`` to the backend; False if it ended instead (skip/fail)."""
        task = entry.task
        run = entry.run
        params = task.parameters
        guard = run.guard if run is not None else None
        if entry.dynamic or guard is not None:
            try:
                if task.conditions and task.attempts == 0:
                    ok, reason = evaluate_conditions(
                        task.conditions,
                        params=run.params if run is not None else {},
                        outputs=self._outputs_for(entry, task.conditions),
                        statuses=self._statuses_for(entry),
                        step_name=task.name,
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
                if guard is not None and (refusal := guard(task.name, task.module, params)):
                    raise OrchestrationError(f"step {task.name!r} may not run: {refusal}")
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
                log_path = os.path.join(run.log_dir, log_file_name(task.name, number))
            working_dir = working_dir or run.working_dir
        memory_limit = self.rm.memory_limit_bytes(task.resources) if task.resources and self.rm is not None else None
        invocation = Invocation(
            task.id, task.name, task.module, task.action, params, number, task.run_id, task.timeout,
            log_path, self.log_cap_bytes, working_dir, None, memory_limit, self.kill_grace, task.resources,
        )
        attempt = Attempt(entry, number, self.post, log_path)
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
            self._add_timer(self._now + task.timeout + self.kill_grace + BACKSTOP_MARGIN, T_TIMEOUT, attempt)
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

    def _attempt_done(self, attempt: Attempt, result: TaskResult) -> None:
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
        self._add_timer(self._now + delay, T_RETRY, entry)
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
                    self._finish(dep, ended, None, "cancelled" if ended == CANCELLED else skip_reason(done),
                                 settle=False)
                    stack.append(dep)


def skip_reason(upstream: TaskEntry) -> str:
    """Return the error text of a task skipped because ``upstream`` ended without success."""
    status = STATUSES[upstream.state].value
    return f"skipped: dependency {upstream.task.name!r} {status}"
