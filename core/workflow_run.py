"""One workflow run in flight: its live state, its outcome rule, and the caller's handle.

The :class:`~core.workflow_manager.WorkflowManager` creates a :class:`RunState` per
run and feeds it the orchestrator's :class:`~core.models.TaskTransition` records on the
dispatcher thread. ``apply`` is therefore short: it updates a few dictionaries under a
per-run lock (only the run's own readers ever contend for it) and says whether the run
just ended. The caller holds a :class:`RunHandle`: status, the live
:class:`~core.models.WorkflowExecution`, ``wait``, ``cancel`` and per-step progress for
displays.

Outcome rule (``RunState.outcome``): CANCELLED when a cancel was asked for and not every
step completed, or a step was cancelled; otherwise FAILED when a step failed without
``continue_on_failure``; otherwise COMPLETED (every step completed, was skipped by its
condition, or failed with ``continue_on_failure``).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .interfaces import RunObserver
from .models import TaskStatus, TaskTransition, Workflow, WorkflowExecution, WorkflowStatus
from .text import plural

__all__ = ["StepProgress", "RunState", "RunHandle"]

log = logging.getLogger(__name__)

_CANCELLED_STATES = (TaskStatus.CANCELLED, TaskStatus.INTERRUPTED)


@dataclasses.dataclass(slots=True, frozen=True)
class StepProgress:
    """What a progress display shows of one step (times are wall-clock epoch seconds)."""

    name: str
    status: TaskStatus
    attempt: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    error: str = ""
    retry_at: float | None = None

    def elapsed(self, now: float | None = None) -> float | None:
        """Seconds since the step first started (until it finished), or None if it never ran."""
        if self.started_at is None:
            return None
        end = self.finished_at if self.finished_at is not None else (time.time() if now is None else now)
        return max(0.0, end - self.started_at)


class RunState:
    """The mutable state of one run; written by the dispatcher's listener, read by anyone."""

    __slots__ = (
        "workflow", "execution", "observers", "log_dir", "lock", "finished", "cancel_requested",
        "_continue_ok", "_terminal", "_attempts", "_started", "_ended", "_retry_at", "_t0",
    )

    def __init__(
        self,
        run_id: str,
        workflow: Workflow,
        params: dict[str, Any],
        *,
        session_id: str | None,
        observers: Sequence[RunObserver],
        log_dir: Path | None,
        preset: dict[str, Any] | None = None,
    ) -> None:
        self.workflow = workflow
        self.observers = tuple(observers)
        self.log_dir = log_dir
        self.lock = threading.Lock()
        self.finished = threading.Event()
        self.cancel_requested = False
        self._continue_ok = {s.name for s in workflow.steps if s.continue_on_failure}
        preset = preset or {}
        self.execution = WorkflowExecution(
            run_id=run_id,
            workflow_name=workflow.name,
            status=WorkflowStatus.RUNNING,
            session_id=session_id,
            params=dict(params),
            step_status={s.name: (TaskStatus.COMPLETED if s.name in preset else TaskStatus.PENDING) for s in workflow.steps},
            results=dict(preset),
            started_at=time.time(),
        )
        # Steps resumed from an earlier run are already done.
        self._terminal: set[str] = set(preset) & set(self.execution.step_status)
        self._attempts: dict[str, int] = {}
        self._started: dict[str, float] = {}
        self._ended: dict[str, float] = {}
        self._retry_at: dict[str, float] = {}
        self._t0 = time.monotonic()

    @property
    def run_id(self) -> str:
        return self.execution.run_id

    @property
    def all_terminal(self) -> bool:
        return len(self._terminal) >= len(self.execution.step_status)

    def apply(self, transition: TaskTransition) -> bool:
        """Record one task transition; return True when it ended the run.

        Transitions of unknown steps and transitions after the end are ignored.
        """
        name = transition.name
        ex = self.execution
        with self.lock:
            if self.finished.is_set() or name not in ex.step_status or ex.status.is_terminal:
                return False
            status = transition.status
            ex.step_status[name] = status
            if transition.attempt:
                self._attempts[name] = max(self._attempts.get(name, 0), transition.attempt)
            if status == TaskStatus.RUNNING:
                self._started.setdefault(name, transition.at)
                self._retry_at.pop(name, None)
            elif status == TaskStatus.PENDING and transition.retry_at is not None:
                self._retry_at[name] = transition.retry_at
                if transition.error:
                    ex.errors[name] = transition.error
            if status.is_terminal:
                self._terminal.add(name)
                self._ended[name] = transition.at
                result = transition.result
                if status == TaskStatus.COMPLETED:
                    ex.results[name] = result.data if result is not None else None
                    ex.errors.pop(name, None)
                else:
                    message = transition.error or (result.error_message if result is not None else "")
                    if message:
                        ex.errors[name] = message
            else:
                self._terminal.discard(name)
            return self.all_terminal

    def outcome(self) -> tuple[WorkflowStatus, str]:
        """Return the final status and its one-line reason (see the module docstring)."""
        ex = self.execution
        states = ex.step_status
        cancelled = [n for n, s in states.items() if s in _CANCELLED_STATES]
        not_done = [n for n, s in states.items() if s != TaskStatus.COMPLETED]
        if cancelled or (self.cancel_requested and not_done):
            return WorkflowStatus.CANCELLED, f"run {ex.run_id} was cancelled"
        failed = [n for n, s in states.items() if s == TaskStatus.FAILED and n not in self._continue_ok]
        if failed:
            first = failed[0]
            reason = ex.errors.get(first, "")
            more = f" (and {plural(len(failed) - 1, 'more step')})" if len(failed) > 1 else ""
            return WorkflowStatus.FAILED, f"step '{first}' failed{': ' + reason if reason else ''}{more}"
        return WorkflowStatus.COMPLETED, ""

    def finish(self, status: WorkflowStatus | None = None, error: str | None = None) -> WorkflowExecution:
        """Fix the outcome (computed unless given) and the timings; returns the execution."""
        with self.lock:
            ex = self.execution
            if status is None:
                status, reason = self.outcome()
                error = reason if error is None else error
            ex.status = status
            ex.error = error or ""
            ex.finished_at = time.time()
            ex.execution_time = time.monotonic() - self._t0
            return ex

    def notify_transition(self, transition: TaskTransition) -> None:
        """Pass a transition to the observers; an observer's failure is logged, never raised."""
        for observer in self.observers:
            try:
                observer.task_transition(transition)
            except Exception:  # an observer must never break the run it watches
                log.exception("run observer %r failed on a task transition", observer)

    def progress(self) -> list[StepProgress]:
        """Return one :class:`StepProgress` per step, in the workflow's step order."""
        with self.lock:
            ex = self.execution
            return [
                StepProgress(
                    name=name,
                    status=status,
                    attempt=self._attempts.get(name, 0),
                    started_at=self._started.get(name),
                    finished_at=self._ended.get(name) if status.is_terminal else None,
                    error=ex.errors.get(name, ""),
                    retry_at=self._retry_at.get(name),
                )
                for name, status in ex.step_status.items()
            ]


class RunHandle:
    """The caller's grip on a run started with ``WorkflowManager.start_workflow``.

    ``execution`` is live: it changes as steps finish and is final once ``done()``.
    """

    __slots__ = ("_state", "_cancel")

    def __init__(self, state: RunState, cancel: Callable[[RunState], bool]) -> None:
        self._state = state
        self._cancel = cancel

    def __repr__(self) -> str:
        return f"RunHandle({self.run_id!r}, {self.workflow_name!r}, {self.status.value})"

    @property
    def run_id(self) -> str:
        return self._state.run_id

    @property
    def workflow_name(self) -> str:
        return self._state.workflow.name

    @property
    def workflow(self) -> Workflow:
        return self._state.workflow

    @property
    def log_dir(self) -> Path | None:
        """Where the steps' log files go (``<runs_dir>/<run_id>``)."""
        return self._state.log_dir

    @property
    def status(self) -> WorkflowStatus:
        return self._state.execution.status

    @property
    def execution(self) -> WorkflowExecution:
        return self._state.execution

    def done(self) -> bool:
        """True once the run has its final status."""
        return self._state.finished.is_set()

    def wait(self, timeout: float | None = None) -> WorkflowExecution | None:
        """Block until the run ends; returns its execution, or None if ``timeout`` passed first."""
        if self._state.finished.wait(timeout):
            return self._state.execution
        return None

    def cancel(self) -> bool:
        """Ask the run to stop (running steps are killed); False when it had already ended."""
        return self._cancel(self._state)

    def step_progress(self) -> list[StepProgress]:
        """Per-step status, attempt and timings, for progress displays."""
        return self._state.progress()
