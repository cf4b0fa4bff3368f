"""Recording workflow runs into the store.

:class:`StoreRecorder` is the :class:`~core.interfaces.RunObserver` that the workflow
manager tells about each run; it only enqueues writes, so the dispatcher thread that
calls it never waits for SQLite. Given a resource manager it also records each
allocation and release, so a crash that kills the process leaves no allocation open
in the store (the next store to open releases them).

Resumes are planned from what is recorded here by :mod:`core.resume_plan`.

What is recorded of each step: every transition that changes what the step did, that
is RUNNING (an attempt starts), PENDING after a failed attempt (a retry is scheduled)
and the end (COMPLETED, FAILED, CANCELLED, SKIPPED), into the attempt and step rows,
which keep each change's time (``Store.step_history`` reads the history back). READY
(dependencies met, waiting for a worker) is not recorded: it carries no outcome, a step
leaves it within moments unless workers are busy, and it was a third of all writes of a
large run. So a step the store shows as pending may already be queued for a worker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import OrchestrationError
from .models import ResourceAllocation, TaskStatus, TaskTransition, Workflow, WorkflowExecution, WorkflowStatus
from .store import Store
from .workflow_params import resolve_params

if TYPE_CHECKING:
    from .resource_manager import ResourceManager
    from .workflow_manager import RunHandle, WorkflowManager

__all__ = ["StoreRecorder"]

_READY = TaskStatus.READY

log = logging.getLogger(__name__)


class StoreRecorder:
    """A RunObserver that writes every run it hears about into ``store``.

    Never raises: a store failure is logged (and raised later by ``store.flush()``),
    because an observer must not break the run it watches.

    Args:
        store: where runs are recorded.
        resource_manager: when given, its allocations and releases are recorded too.
    """

    def __init__(self, store: Store, *, resource_manager: ResourceManager | None = None) -> None:
        self.store = store
        # Bound once: a run's transitions come tens of thousands a second on the
        # dispatcher thread, which the scheduler needs back at once.
        self._record = store.transition_sink()
        self._lock = threading.Lock()
        self._resumes: dict[str, tuple[str, dict[str, Any]]] = {}
        self._claimed: set[str] = set()  # runs already created by claim: run_started writes nothing
        self._task_runs: dict[str, str] = {}  # task id -> run id, for allocations
        self._tracks_tasks = resource_manager is not None
        if resource_manager is not None:
            resource_manager.add_allocation_listener(self._allocation_event)

    def expect_resume(self, run_id: str, parent_run_id: str, preset_outputs: Mapping[str, Any]) -> None:
        """Record run ``run_id``, when it starts, as a resume of ``parent_run_id``.

        Its steps in ``preset_outputs`` are stored COMPLETED with those outputs, taken
        over from the parent, so resuming the resumed run never runs them either.
        """
        with self._lock:
            self._resumes[run_id] = (parent_run_id, dict(preset_outputs))

    def claim(self, run_id: str, workflow: Workflow, params: dict[str, Any], session_id: str | None = None, *,
              timeout: float = 60.0) -> None:
        """Record run ``run_id`` now, before it starts, unless its id is taken or (for
        a resume) its parent was resumed by another run meanwhile; see ``Store.claim_run``.

        Its ``run_started`` then writes nothing. Unlike the observer methods, this raises:
        it is how a run that must not start learns so. Waits up to ``timeout`` seconds
        for the store's write lock; a claim that timed out is never written.

        Raises:
            StoreError: RUN_ID_TAKEN, RUN_ALREADY_RESUMED, or the store cannot be written.
        """
        with self._lock:
            parent, preset = self._resumes.pop(run_id, (None, None))
        self.store.claim_run(run_id, workflow, params, session_id, parent_run_id=parent, preset_outputs=preset,
                             timeout=timeout)
        with self._lock:
            self._claimed.add(run_id)

    def start_run(self, manager: WorkflowManager, workflow: Workflow, params: Mapping[str, Any] | None, *,
                  run_id: str, session_id: str | None = None,
                  preset_outputs: Mapping[str, Any] | None = None, claim_timeout: float = 60.0,
                  working_dir: Path | None = None) -> RunHandle:
        """Claim ``run_id`` (see :meth:`claim`), then start ``workflow`` under it on ``manager``.

        Nothing runs when the claim fails. A start that ``manager`` refuses after the
        claim is recorded as the run's failure, so no run is left RUNNING in the store.

        Raises:
            StoreError: as :meth:`claim`.
            OrchestrationError: what ``WorkflowManager.start_workflow`` raises.
        """
        merged = resolve_params(workflow, params)
        self.claim(run_id, workflow, merged, session_id, timeout=claim_timeout)
        try:
            return manager.start_workflow(workflow, merged, run_id=run_id, session_id=session_id,
                                          preset_outputs=preset_outputs, working_dir=working_dir)
        except OrchestrationError as exc:
            with self._lock:
                self._claimed.discard(run_id)
            self.store.finish_run(run_id, WorkflowStatus.FAILED, exc.message)
            raise

    # ---------------------------------------------------------------- RunObserver

    def run_started(self, run_id: str, workflow: Workflow, params: dict[str, Any], session_id: str | None) -> None:
        with self._lock:
            if run_id in self._claimed:
                self._claimed.discard(run_id)
                return
            parent, preset = self._resumes.pop(run_id, (None, None))
        try:
            self.store.create_run(run_id, workflow, params, session_id,
                                  parent_run_id=parent, preset_outputs=preset)
        except OrchestrationError as exc:
            log.error("run %s will not be recorded: %s", run_id, exc.message)

    def task_transition(self, transition: TaskTransition) -> None:
        if self._tracks_tasks:
            self._track_task(transition)
        if transition.status is _READY or transition.run_id is None:
            return  # READY is not recorded: see the module docstring
        try:
            self._record(transition)
        except OrchestrationError as exc:
            log.error("transition of %s/%s not recorded: %s", transition.run_id, transition.name, exc.message)

    def _track_task(self, transition: TaskTransition) -> None:
        """Remember which run a task with a live allocation belongs to."""
        run_id = transition.run_id
        if run_id is None:
            return
        if transition.status.is_terminal:
            self._task_runs.pop(transition.task_id, None)
        else:
            self._task_runs[transition.task_id] = run_id

    def run_finished(self, execution: WorkflowExecution) -> None:
        try:
            self.store.finish_run(execution.run_id, execution.status, execution.error,
                                  finished_at=execution.finished_at, step_status=execution.step_status,
                                  step_errors=execution.errors)
        except OrchestrationError as exc:
            log.error("end of run %s not recorded: %s", execution.run_id, exc.message)

    # ------------------------------------------------------------------ resources

    def _allocation_event(self, event: str, allocation: ResourceAllocation) -> None:
        try:
            if event == "allocated":
                self.store.record_allocation(allocation, run_id=self._task_runs.get(allocation.requester_id))
            else:  # "released" or "expired"
                self.store.record_release(allocation.id)
        except OrchestrationError as exc:
            log.error("allocation %s not recorded: %s", allocation.id, exc.message)
