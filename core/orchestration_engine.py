"""OrchestrationEngine: sessions, workflow runs in a session, events, health and metrics.

The engine is spec 002's front door. It owns no scheduling logic: workflows run through
the :class:`~core.workflow_manager.WorkflowManager`, tasks through the
:class:`~core.task_orchestrator.TaskOrchestrator`. What it adds is the session:

* ``mode``: SEQUENTIAL runs one step at a time (``RunSpec.max_parallel=1``) and one
  workflow at a time; PARALLEL and PRIORITY run up to ``max_parallel_tasks`` steps of a
  run at once (priorities are always honoured by the orchestrator's queues);
  RESOURCE_AWARE also reserves the session's ``resource_requirements`` for its lifetime
  (released on close) on top of each step's own requirements, which gate every mode.
* ``max_parallel_workflows``: a blocking call (``execute_workflow``,
  ``execute_complex_workflow``) waits for a free slot; the non-blocking
  ``start_workflow`` is refused with a :class:`~core.errors.WorkflowExecutionError`.
* ``timeout_seconds`` (default: the ``session_timeout`` setting): when it passes, the
  session expires, its runs are cancelled and its resources released.

Errors become spec-002 result dicts here (``success: False``, ``error``, ``error_type``,
``error_code``, ...); the WorkflowManager below raises them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import engine_status
from .config import Settings, load_settings
from .errors import OrchestrationError, ResourceAllocationError, WorkflowExecutionError, WorkflowValidationError
from .events import ANY_EVENT, EventBus, EventHandler, EventType
from .models import (
    OrchestrationMode,
    OrchestrationSession,
    ResourceAllocation,
    Task,
    TaskTransition,
    Workflow,
    WorkflowExecution,
    new_id,
)
from .text import did_you_mean
from .workflow_checks import parse_steps
from .workflow_manager import WorkflowManager
from .workflow_run import RunHandle

if TYPE_CHECKING:
    from .resource_manager import ResourceManager
    from .task_orchestrator import TaskOrchestrator

__all__ = ["OrchestrationEngine"]

log = logging.getLogger(__name__)

_SESSION_OPTIONS = (
    "mode", "max_parallel_tasks", "max_parallel_workflows", "timeout_seconds",
    "resource_requirements", "metadata", "name",
)
_CLOSED_KEPT = 200  # closed sessions remembered for get_session and metrics


class _SessionSlots:
    """A session's running workflows and the condition that guards its slot limit.

    Doubles as the RunObserver of the session's runs, so a finished run frees its slot
    whichever way it was started.
    """

    __slots__ = ("session", "cond", "runs", "started", "reserved", "timer", "allocated")

    def __init__(self, session: OrchestrationSession) -> None:
        self.session = session
        self.cond = threading.Condition()
        self.runs: dict[str, RunHandle | None] = {}  # None: started, handle not stored yet
        self.started: set[str] = set()
        self.reserved = 0
        self.timer: threading.Timer | None = None
        self.allocated = False

    @property
    def limit(self) -> int:
        if self.session.mode == OrchestrationMode.SEQUENTIAL:
            return 1
        return self.session.max_parallel_workflows

    # RunObserver -------------------------------------------------------------
    def run_started(self, run_id: str, workflow: Workflow, params: dict[str, Any], session_id: str | None) -> None:
        # The reservation taken by _take_slot becomes a running workflow.
        with self.cond:
            self.reserved -= 1
            self.runs[run_id] = None
            self.started.add(run_id)

    def task_transition(self, transition: TaskTransition) -> None:
        """Nothing to do: sessions count runs, not steps."""

    def run_finished(self, execution: WorkflowExecution) -> None:
        with self.cond:
            self.runs.pop(execution.run_id, None)
            self.cond.notify_all()


class OrchestrationEngine:
    """Coordinates sessions, workflow runs, tasks, resources and events (spec 002).

    Parameters
    ----------
    settings : Settings, optional
        Default: :func:`core.config.load_settings`.
    workflow_manager, task_orchestrator, resource_manager : optional
        Components to use; missing ones are created (and shut down by :meth:`shutdown`).
    project_manager, store : optional
        Reported by the health and status calls when given.
    events : EventBus, optional
        Where events go; by default the workflow manager's bus, or a new one.
    """

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        workflow_manager: WorkflowManager | None = None,
        task_orchestrator: TaskOrchestrator | None = None,
        resource_manager: ResourceManager | None = None,
        project_manager: Any = None,
        store: Any = None,
        events: EventBus | None = None,
    ) -> None:
        self.settings = settings or (workflow_manager.settings if workflow_manager else load_settings())
        self._owned: list[Any] = []
        self.events = events or (workflow_manager.events if workflow_manager else EventBus())
        if events is None and workflow_manager is None:
            self._owned.append(self.events)
        if task_orchestrator is None and workflow_manager is not None:
            task_orchestrator = workflow_manager.orchestrator
        if resource_manager is None:
            resource_manager = getattr(task_orchestrator, "resource_manager", None) or (
                workflow_manager.resource_manager if workflow_manager else None)
        if resource_manager is None:
            from .resource_manager import ResourceManager

            resource_manager = ResourceManager()
        self.resource_manager = resource_manager
        if task_orchestrator is None:
            from .task_orchestrator import TaskOrchestrator

            task_orchestrator = TaskOrchestrator(
                self.settings.max_workers, resource_manager=resource_manager, events=self.events)
            self._owned.append(task_orchestrator)
        self.task_orchestrator = task_orchestrator
        if workflow_manager is None:
            workflow_manager = WorkflowManager(
                settings=self.settings, orchestrator=task_orchestrator, resource_manager=resource_manager,
                events=self.events)
            self._owned.append(workflow_manager)
        self.workflow_manager = workflow_manager
        self.project_manager = project_manager
        self.store = store
        self.sessions: dict[str, OrchestrationSession] = {}
        self._lock = threading.RLock()
        self._slots: dict[str, _SessionSlots] = {}
        self._closed: deque[OrchestrationSession] = deque(maxlen=_CLOSED_KEPT)
        self._counts = {"created": 0, "closed": 0, "expired": 0}
        self._t0 = time.monotonic()
        self._shut = False
        resource_manager.add_allocation_listener(self._on_allocation)

    # ------------------------------------------------------------------ sessions

    def create_session(self, user_id: str = "system", **kwargs: Any) -> str:
        """Create a session and return its id.

        Keyword arguments (spec 002): ``mode`` (OrchestrationMode or its name, default
        parallel), ``max_parallel_tasks`` (4), ``max_parallel_workflows`` (2),
        ``timeout_seconds`` (default: the ``session_timeout`` setting; None or 0: never
        expires), ``resource_requirements`` (reserved now in resource_aware mode),
        ``metadata``, ``name``.

        Raises
        ------
        OrchestrationError
            An unknown keyword, mode or a limit below 1.
        ResourceAllocationError
            resource_aware requirements that can never be met, or are taken right now.
        """
        unknown = sorted(set(kwargs) - set(_SESSION_OPTIONS))
        if unknown:
            raise OrchestrationError(
                f"create_session got unknown argument '{unknown[0]}'"
                + did_you_mean(unknown[0], _SESSION_OPTIONS, otherwise=f"known: {', '.join(_SESSION_OPTIONS)}", sep="; "))
        mode = kwargs.get("mode") or OrchestrationMode.PARALLEL
        try:
            mode = OrchestrationMode(mode)
        except ValueError:
            raise OrchestrationError(
                f"session mode {mode!r} is not known; use one of {', '.join(OrchestrationMode.choices())}") from None
        limits = {}
        for key, default in (("max_parallel_tasks", 4), ("max_parallel_workflows", 2)):
            value = kwargs.get(key, default)
            if value is None:
                value = default
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise OrchestrationError(f"session {key} must be a whole number of at least 1, got {value!r}")
            limits[key] = value
        timeout = kwargs.get("timeout_seconds", self.settings.session_timeout)
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0):
            raise OrchestrationError(f"session timeout_seconds must be a number of seconds, got {timeout!r}")
        session = OrchestrationSession(
            id=new_id("session"),
            user_id=user_id,
            name=kwargs.get("name") or "",
            mode=mode,
            timeout_seconds=float(timeout) if timeout else None,
            resource_requirements=dict(kwargs.get("resource_requirements") or {}),
            metadata=dict(kwargs.get("metadata") or {}),
            **limits,
        )
        slots = _SessionSlots(session)
        if mode == OrchestrationMode.RESOURCE_AWARE and session.resource_requirements:
            if self.resource_manager.try_allocate_requirements(session.id, session.resource_requirements) is None:
                raise ResourceAllocationError(
                    "the session's resource_requirements are in use by others right now; "
                    "retry later or ask for less",
                    details={"requirements": session.resource_requirements})
            slots.allocated = True
        with self._lock:
            self.sessions[session.id] = session
            self._slots[session.id] = slots
            self._counts["created"] += 1
        if session.timeout_seconds:
            slots.timer = threading.Timer(session.timeout_seconds, self._expire, (session.id,))
            slots.timer.daemon = True
            slots.timer.start()
        self.events.emit(EventType.SESSION_CREATED, {
            "session_id": session.id, "user_id": user_id, "mode": mode.value, "name": session.name,
        })
        return session.id

    def get_session(self, session_id: str) -> OrchestrationSession | None:
        """Return the session (active, or one of the last closed ones), or None."""
        session = self.sessions.get(session_id)
        if session is not None:
            return session
        return next((s for s in self._closed if s.id == session_id), None)

    def list_sessions(self) -> list[OrchestrationSession]:
        """Return the active sessions, oldest first."""
        return list(self.sessions.values())

    def close_session(self, session_id: str) -> bool:
        """Close a session: cancel its runs, release its resources. False if it was not active."""
        return self._end_session(session_id, "closed")

    def _expire(self, session_id: str) -> None:
        if self._end_session(session_id, "expired"):
            log.info("session %s expired; its runs were cancelled", session_id)

    def _end_session(self, session_id: str, reason: str) -> bool:
        with self._lock:
            session = self.sessions.pop(session_id, None)
            slots = self._slots.pop(session_id, None)
            if session is None or slots is None:
                return False
            session.status = reason
            session.closed_at = time.time()
            self._counts[reason] += 1
            self._closed.append(session)
        if slots.timer is not None:
            slots.timer.cancel()
        with slots.cond:
            runs = list(slots.runs.values())
            slots.cond.notify_all()  # waiters for a slot see the session is gone
        for handle in runs:
            if handle is not None:
                handle.cancel()
        if slots.allocated:
            self.resource_manager.deallocate_resources(session_id)
        self.events.emit(EventType.SESSION_CLOSED, {"session_id": session_id, "reason": reason})
        return True

    def _active_slots(self, session_id: str) -> _SessionSlots:
        slots = self._slots.get(session_id)
        if slots is None:
            session = self.get_session(session_id)
            state = f"is {session.status}" if session is not None else "does not exist"
            raise WorkflowExecutionError(
                f"session '{session_id}' {state}; create a new one with create_session()",
                details={"session_id": session_id})
        return slots

    def _take_slot(self, slots: _SessionSlots, *, block: bool) -> None:
        session = slots.session
        with slots.cond:
            while len(slots.runs) + slots.reserved >= slots.limit:
                if session.status != "active":
                    raise WorkflowExecutionError(f"session '{session.id}' was {session.status} while waiting to run")
                if not block:
                    raise WorkflowExecutionError(
                        f"session '{session.id}' already runs {len(slots.runs)} workflow(s), its limit "
                        f"(max_parallel_workflows={slots.limit}); wait for one to finish or raise the limit",
                        details={"session_id": session.id, "limit": slots.limit})
                slots.cond.wait()
            slots.reserved += 1

    def _start_in_session(
        self, slots: _SessionSlots, workflow: str | Workflow, params: Mapping[str, Any], *, block: bool,
    ) -> RunHandle:
        session = slots.session
        self._take_slot(slots, block=block)
        max_parallel = 1 if session.mode == OrchestrationMode.SEQUENTIAL else session.max_parallel_tasks
        run_id = new_id("run")
        try:
            handle = self.workflow_manager.start_workflow(
                workflow, params, session_id=session.id, max_parallel=max_parallel, run_id=run_id, observers=(slots,))
        except BaseException:
            with slots.cond:
                if run_id not in slots.started:
                    slots.reserved -= 1  # refused before it started: give the reservation back
                slots.cond.notify_all()
            raise
        with slots.cond:
            if run_id in slots.runs:  # still running (a finished run already left)
                slots.runs[run_id] = handle
            session.run_ids.append(run_id)
        if session.status != "active":  # closed while we were starting
            handle.cancel()
        return handle

    # --------------------------------------------------------------- workflows

    def start_workflow(self, workflow_name: str | Workflow, session_id: str | None = None, **params: Any) -> RunHandle:
        """Start a workflow in a session without waiting; returns its :class:`RunHandle`.

        Raises
        ------
        WorkflowExecutionError
            The session does not exist, is closed, or already runs its
            ``max_parallel_workflows``.
        WorkflowNotFoundError, WorkflowValidationError
            As :meth:`WorkflowManager.start_workflow`.
        """
        if session_id is None:
            session_id = self.create_session()
        return self._start_in_session(self._active_slots(session_id), workflow_name, params, block=False)

    def _run_blocking(self, workflow: str | Workflow, session_id: str | None, params: Mapping[str, Any]) -> dict[str, Any]:
        implicit = session_id is None
        started = time.monotonic()
        try:
            if session_id is None:
                session_id = self.create_session(name=f"run {workflow if isinstance(workflow, str) else workflow.name}")
            handle = self._start_in_session(self._active_slots(session_id), workflow, params, block=True)
            execution = handle.wait()
            assert execution is not None  # wait() without a timeout returns only at the end
            return self._result(execution)
        except OrchestrationError as exc:
            result = exc.to_error_dict()
            result.update(session_id=session_id, executed_steps=0, failed_steps=[], results={},
                          execution_time=time.monotonic() - started)
            return result
        finally:
            if implicit and session_id is not None:
                self.close_session(session_id)

    @staticmethod
    def _result(execution: WorkflowExecution) -> dict[str, Any]:
        """The spec-002 result dict of a finished run, plus run id, status and per-step detail."""
        return {
            "success": execution.success,
            "session_id": execution.session_id,
            "executed_steps": execution.executed_steps,
            "failed_steps": execution.failed_steps,
            "results": dict(execution.results),
            "execution_time": execution.execution_time,
            "error": execution.error,
            "run_id": execution.run_id,
            "workflow_name": execution.workflow_name,
            "status": execution.status.value,
            "skipped_steps": execution.skipped_steps,
            "cancelled_steps": execution.cancelled_steps,
            "step_status": {k: v.value for k, v in execution.step_status.items()},
            "errors": dict(execution.errors),
        }

    def execute_workflow(self, workflow_name: str, session_id: str | None = None, **params: Any) -> dict[str, Any]:
        """Run a registered workflow in a session and wait for it (spec 002).

        Without ``session_id`` a session is created for the run and closed after it.
        Waits for a free slot when the session already runs ``max_parallel_workflows``.

        Returns
        -------
        dict
            ``success``, ``session_id``, ``executed_steps``, ``failed_steps``,
            ``results``, ``execution_time``, ``error`` (plus ``run_id``, ``status``,
            ``step_status``, ``errors``, ...). Errors such as an unknown workflow or a
            closed session give ``success: False`` and the spec-002 error keys; this
            method does not raise them.
        """
        return self._run_blocking(workflow_name, session_id, params)

    def execute_complex_workflow(self, definition: Mapping[str, Any], session_id: str | None = None) -> dict[str, Any]:
        """Build a workflow from ``steps`` + ``dependencies`` + ``parallel_groups`` and run it.

        ``dependencies`` maps a step to the steps it waits for (added to each step's own
        ``dependencies``). ``parallel_groups`` lists steps meant to run side by side; the
        dependency graph always wins, and a group whose members depend on each other is
        reported in ``warnings``. Steps naming an unknown module or action end FAILED
        with the registry's message (nothing runs), as in any run.

        Returns
        -------
        dict
            As :meth:`execute_workflow`, plus ``execution_order`` (levels) and ``warnings``.
        """
        started = time.monotonic()
        try:
            workflow, warnings = self._complex_workflow(definition)
            levels = self.workflow_manager.get_workflow_execution_order(workflow.steps)
        except OrchestrationError as exc:
            result = exc.to_error_dict()
            result.update(session_id=session_id, executed_steps=0, failed_steps=[], results={},
                          execution_time=time.monotonic() - started, warnings=[])
            return result
        result = self._run_blocking(workflow, session_id, dict(definition.get("params") or {}))
        result.update(execution_order=levels, warnings=warnings)
        return result

    def _complex_workflow(self, definition: Mapping[str, Any]) -> tuple[Workflow, list[str]]:
        if not isinstance(definition, Mapping) or not isinstance(definition.get("steps"), list):
            raise WorkflowExecutionError("a complex workflow definition needs a 'steps' list")
        steps = parse_steps(definition["steps"])
        names = [s.name for s in steps]
        extra = definition.get("dependencies") or {}
        if not isinstance(extra, Mapping):
            raise WorkflowExecutionError("'dependencies' must map a step name to the list of steps it waits for")
        for name in extra:
            if name not in names:
                raise WorkflowExecutionError(
                    f"'dependencies' names unknown step '{name}'" + did_you_mean(name, names, sep="; "))
        for step in steps:
            wanted = extra.get(step.name) or []
            step.dependencies = list(dict.fromkeys([*step.dependencies, *([wanted] if isinstance(wanted, str) else wanted)]))
        workflow = Workflow(
            name=str(definition.get("name") or new_id("complex")),
            description=str(definition.get("description") or ""),
            steps=steps,
        )
        problems = self.workflow_manager.structure_problems(workflow)
        if problems:
            raise WorkflowValidationError(problems)
        warnings: list[str] = []
        dag = self.workflow_manager.create_workflow_dag(steps)
        for group in definition.get("parallel_groups") or []:
            members = [group] if isinstance(group, str) else list(group)
            for member in members:
                if member not in names:
                    raise WorkflowExecutionError(f"'parallel_groups' names unknown step '{member}'")
            for member in members:
                for other in sorted(dag.upstream(member) & set(members)):
                    warnings.append(
                        f"parallel group {members}: '{member}' depends on '{other}', so they run one after the other")
        return workflow, warnings

    def cancel_workflow(self, name_or_run_id: str) -> bool:
        """Cancel a run (or every active run of a workflow); True if one was in progress."""
        return self.workflow_manager.cancel_workflow(name_or_run_id)

    def get_workflow_status(self, name_or_run_id: str) -> dict[str, Any] | None:
        """Spec-002 status of a run or of a workflow's newest run (see WorkflowManager)."""
        return self.workflow_manager.get_workflow_status(name_or_run_id)

    def submit_task(self, task: Task) -> str:
        """Queue a single :class:`Task` on the orchestrator; returns its id."""
        return self.task_orchestrator.submit_task(task)

    # ------------------------------------------------------------------ events

    def register_event_handler(self, event_type: str | EventType, handler: EventHandler) -> None:
        """Call ``handler(event_type, data)`` for each event of that type ("*": every event).

        Handlers run on the event bus thread, never on the dispatcher, so a slow handler
        cannot stall scheduling. Events: workflow and task started/completed/failed/
        cancelled, task retrying and skipped, resource allocated/released, session
        created/closed.

        Raises
        ------
        OrchestrationError
            ``event_type`` is not an event orchtui emits.
        """
        key = str(event_type.value if isinstance(event_type, EventType) else event_type)
        known = [e.value for e in EventType]
        if key != ANY_EVENT and key not in known:
            raise OrchestrationError(
                f"there is no event type '{key}'" + did_you_mean(key, known, otherwise=f"known: {', '.join(known)}", sep="; "))
        for bus in self.event_buses():
            bus.register(key, handler)

    def event_buses(self) -> list[EventBus]:
        """Every distinct bus our components emit on (they may have been built apart)."""
        found: list[EventBus] = []
        for bus in (self.events, self.workflow_manager.events, getattr(self.task_orchestrator, "events", None)):
            if isinstance(bus, EventBus) and all(bus is not b for b in found):
                found.append(bus)
        return found

    def _on_allocation(self, event: str, allocation: ResourceAllocation) -> None:
        kind = EventType.RESOURCE_ALLOCATED if event == "allocated" else EventType.RESOURCE_RELEASED
        self.events.emit(kind, {
            "allocation_id": allocation.id, "resource_id": allocation.resource_id,
            "requester_id": allocation.requester_id, "amount": dict(allocation.amount), "reason": event,
        })

    # ------------------------------------------------------------ health, status

    @property
    def uptime_seconds(self) -> float:
        return time.monotonic() - self._t0

    def session_counts(self) -> dict[str, Any]:
        """Return ``total`` (ever created), ``active``, ``closed``, ``expired`` and ``by_mode``."""
        with self._lock:
            by_mode: dict[str, int] = {}
            for session in self.sessions.values():
                by_mode[session.mode.value] = by_mode.get(session.mode.value, 0) + 1
            return {"total": self._counts["created"], "active": len(self.sessions),
                    "closed": self._counts["closed"], "expired": self._counts["expired"], "by_mode": by_mode}

    def health_check(self) -> dict[str, Any]:
        """Check every component (spec 002); see :func:`core.engine_status.health_check`.

        Returns ``overall_status`` ("healthy", "degraded", "unhealthy"), ``timestamp``,
        ``components`` (name -> ``{"status", "details"}``) and ``issues``.
        """
        return engine_status.health_check(self)

    def get_health_status(self) -> dict[str, Any]:
        """Return a compact health summary (spec 000): status, uptime, error counts."""
        return engine_status.health_status(self)

    def get_system_status(self) -> dict[str, Any]:
        """Return the spec-002 system status: sessions, workflows, tasks, projects, resources."""
        return engine_status.system_status(self)

    def get_metrics(self) -> dict[str, Any]:
        """Return counters for dashboards (spec 004): sessions, workflows, tasks, resources, events."""
        return engine_status.metrics(self)

    # ---------------------------------------------------------------- lifetime

    def shutdown(self) -> None:
        """Close every session (cancelling its runs) and stop the components this engine made."""
        if self._shut:
            return
        self._shut = True
        for session_id in list(self.sessions):
            self.close_session(session_id)
        for component in reversed(self._owned):
            if isinstance(component, EventBus):
                component.flush(timeout=2.0)
                component.close()
            elif isinstance(component, WorkflowManager):
                component.shutdown()
            else:
                component.shutdown(wait=True, cancel_running=True)
        # Last: closing sessions releases their reservations, which still deserve events.
        self.resource_manager.remove_allocation_listener(self._on_allocation)

    def __enter__(self) -> OrchestrationEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
