"""WorkflowManager: the registry of workflow definitions and the runner of workflow runs.

A run turns each step into a :class:`~core.models.Task` and hands them all to the
:class:`~core.task_orchestrator.TaskOrchestrator` in one ``submit_run`` call; the
orchestrator's dispatcher resolves parameter references and conditions, runs the steps
and publishes every status change. One listener per manager routes those changes to
the run they belong to (:class:`~core.workflow_run.RunState`), which tells its observers
(the store recorder, progress displays) and, when the last step settles, fixes the
outcome and emits ``workflow_completed`` / ``workflow_failed`` / ``workflow_cancelled``.

Choices (spec 000/002/004 and DESIGN.md):

* ``execute_workflow`` is synchronous and returns a :class:`~core.models.WorkflowExecution`
  (``result["success"]`` works). An unknown workflow raises
  :class:`~core.errors.WorkflowNotFoundError`; it is the engine, the spec-002 boundary,
  that turns errors into ``{"success": False, "error": ...}``.
* ``create_workflow`` checks structure (names, dependencies, cycles, conditions,
  references) and raises :class:`~core.errors.WorkflowValidationError`. Whether each
  step's action exists is checked when a run starts, because plugins may register
  actions after a workflow is defined (spec 004 defines workflows on modules such as
  ``static_analysis``). A run with an unknown action runs nothing: those steps are
  FAILED with the registry's message, the others SKIPPED, and the run is FAILED.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import Settings, load_settings
from .errors import (
    OrchestrationError,
    ValidationProblem,
    WorkflowExecutionError,
    WorkflowNotFoundError,
    WorkflowValidationError,
)
from .events import EventBus, EventType
from .interfaces import ParameterGuard, RunObserver
from .models import (
    Task,
    TaskStatus,
    TaskTransition,
    Workflow,
    WorkflowExecution,
    WorkflowStatus,
    WorkflowStep,
    new_id,
)
from .text import did_you_mean, iso_utc
from .workflow_checks import action_problems, dag_tasks, parse_steps, structure_problems
from .workflow_dag import WorkflowDAG
from .workflow_params import coerce_cli_params as _coerce_cli_params
from .workflow_params import param_problems, resolve_params
from .workflow_run import RunHandle, RunState
from .workflow_stats import PerformanceTracker

if TYPE_CHECKING:
    from .resource_manager import ResourceManager
    from .task_orchestrator import TaskOrchestrator
    from .workflow_directory import LoadedFile

__all__ = ["WorkflowManager", "RunHandle"]

log = logging.getLogger(__name__)

# A run id becomes a directory name under runs_dir: keep it to one safe path segment.
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# Finished runs kept in memory for get_workflow_status; the store keeps them all.
_HISTORY = 1000


class WorkflowManager:
    """Registers workflow definitions and runs them through a TaskOrchestrator.

    Parameters
    ----------
    config_dir : Path or str, optional
        The workflows directory (default: ``Settings.workflows_dir``). Its YAML and JSON
        files are loaded at construction when ``autoload`` is true; problems are kept in
        :attr:`load_problems`, never raised.
    orchestrator : TaskOrchestrator, optional
        Where steps run. Without one, the manager creates (and owns) one on first run.
    resource_manager : ResourceManager, optional
        Given to the orchestrator it creates; also used to reject impossible resource
        requirements before a run starts.
    events : EventBus, optional
        Receives the ``workflow_*`` events (a private bus by default).
    observers : sequence of RunObserver
        Told about every run (e.g. the store recorder); ``start_workflow`` adds more per run.
    settings : Settings, optional
        Directories and limits (default: :func:`core.config.load_settings`).
    """

    def __init__(
        self,
        config_dir: Path | str | None = None,
        *,
        orchestrator: TaskOrchestrator | None = None,
        resource_manager: ResourceManager | None = None,
        events: EventBus | None = None,
        observers: Sequence[RunObserver] = (),
        settings: Settings | None = None,
        autoload: bool = True,
    ) -> None:
        self.settings = settings or load_settings()
        self.config_dir = Path(config_dir) if config_dir is not None else self.settings.workflows_dir
        self.workflows: dict[str, Workflow] = {}
        self.resource_manager = resource_manager
        self.events = events or EventBus("orchtui-workflow-events")
        self.observers: list[RunObserver] = list(observers)
        self.load_problems: list[str] = []
        self._lock = threading.RLock()
        self._ambiguous: dict[str, tuple[list[str], Path]] = {}  # name -> (its files, their directory)
        self._broken: dict[str, tuple[WorkflowValidationError, Path]] = {}  # name only an invalid file declares
        self._orchestrator = orchestrator
        self._owns_orchestrator = orchestrator is None
        self._listening = False
        self._closed = False
        self._active: dict[str, RunState] = {}
        self._runs: dict[str, RunState] = {}
        self._latest: dict[str, str] = {}  # workflow name -> its newest run id
        self._perf = PerformanceTracker()
        if orchestrator is not None:
            self._listen(orchestrator)
        if autoload and self.config_dir.is_dir():
            self.load_problems = self.load_workflows(self.config_dir)

    # ------------------------------------------------------------- orchestrator

    @property
    def orchestrator(self) -> TaskOrchestrator:
        """The TaskOrchestrator runs go to (created on first use when none was given)."""
        with self._lock:
            if self._orchestrator is None:
                from .task_orchestrator import TaskOrchestrator

                self._orchestrator = TaskOrchestrator(
                    self.settings.max_workers, resource_manager=self.resource_manager, events=self.events,
                )
                self._listen(self._orchestrator)
            return self._orchestrator

    def _listen(self, orchestrator: TaskOrchestrator) -> None:
        if not self._listening:
            orchestrator.add_listener(self._on_transition)
            self._listening = True
            if self.resource_manager is None:
                self.resource_manager = getattr(orchestrator, "resource_manager", None)

    def shutdown(self) -> None:
        """Cancel active runs and refuse new ones; stop the orchestrator if this manager created it.

        A shared orchestrator keeps running; this manager stops listening to it once
        its cancelled runs have settled.
        """
        for state in list(self._active.values()):
            self._cancel_state(state)
        with self._lock:
            self._closed = True
        if self._owns_orchestrator and self._orchestrator is not None:
            self._orchestrator.shutdown(wait=True, cancel_running=True)
        self._detach_if_idle()

    def _detach_if_idle(self) -> None:
        """After shutdown, stop listening to the orchestrator once no run needs its transitions.

        A shared orchestrator outlives this manager; the cancelled runs still need their
        last transitions, so the listener goes only when the last of them has finished.
        """
        with self._lock:
            if not (self._closed and self._listening and not self._active):
                return
            self._listening = False
            orchestrator = self._orchestrator
        if orchestrator is not None:
            orchestrator.remove_listener(self._on_transition)

    # --------------------------------------------------------------- definitions

    def create_workflow(
        self,
        name: str | Mapping[str, Any] | Workflow,
        steps: Sequence[WorkflowStep | Mapping[str, Any]] | str | None = None,
        description: str = "",
    ) -> Workflow:
        """Register a workflow and return it (an existing one of that name is replaced).

        Accepts ``create_workflow(name, steps, description="")``, spec 002's
        ``create_workflow(name, description)`` (an empty workflow), a definition dict in
        the workflow-file format, or a :class:`~core.models.Workflow`.

        Raises
        ------
        WorkflowValidationError
            The definition is malformed: unknown keys or bad types (dict form), duplicate
            or missing step names, unknown dependencies, cycles, bad conditions, or
            references to steps that are not upstream. Every problem at once.
        """
        if isinstance(name, Workflow):
            workflow = name
        elif isinstance(name, Mapping):
            from .workflow_file import workflow_from_dict

            workflow = workflow_from_dict(dict(name))
        else:
            if isinstance(steps, str):  # spec 002: create_workflow(name, description)
                steps, description = None, steps
            workflow = Workflow(name=name, description=description, steps=parse_steps(steps or ()))
        problems = self.structure_problems(workflow)
        if problems:
            raise WorkflowValidationError(problems)
        workflow.status = WorkflowStatus.READY
        with self._lock:
            self.workflows[workflow.name] = workflow
            self._ambiguous.pop(workflow.name, None)  # registered on purpose: this one is meant
            self._broken.pop(workflow.name, None)
        return workflow

    def get_workflow(self, name: str) -> Workflow | None:
        """Return the registered workflow ``name``, or None."""
        return self.workflows.get(name)

    def require_workflow(self, name: str) -> Workflow:
        """Return the registered workflow ``name``.

        Raises
        ------
        WorkflowNotFoundError
            No workflow has that name (the message suggests the closest one), or several
            files define it (``WORKFLOW_AMBIGUOUS``).
        WorkflowValidationError
            The only file that declares the name is invalid (its located problems).
        """
        refused = self.refusal(name)
        if refused is not None:
            raise refused
        workflow = self.workflows.get(name)
        if workflow is None:
            hint = did_you_mean(name, sorted(self.workflows))
            known = ", ".join(sorted(self.workflows)) or "none"
            raise WorkflowNotFoundError(
                f"workflow '{name}' is not registered ({hint or f'known: {known}'})",
                details={"workflow_name": name, "known": sorted(self.workflows)},
                suggestions=[hint or f"add a workflow file to {self.config_dir} or call create_workflow"],
            )
        return workflow

    def refusal(self, name: str) -> WorkflowNotFoundError | WorkflowValidationError | None:
        """Return why running workflow ``name`` by name is refused, or None when it is not.

        Refused: several files of a loaded directory declare the name
        (``WORKFLOW_AMBIGUOUS``), or the only file that does is invalid (its problems).
        """
        ambiguous = self._ambiguous.get(name)
        if ambiguous is not None:
            from .workflow_file import ambiguous_name_error

            return ambiguous_name_error(name, *ambiguous)
        broken = self._broken.get(name)
        return broken[0] if broken is not None else None

    def list_workflows(self) -> list[str]:
        """Return the names of the registered workflows, sorted."""
        return sorted(self.workflows)

    def delete_workflow(self, name: str) -> bool:
        """Forget workflow ``name``; returns False when there was none (runs keep going)."""
        with self._lock:
            return self.workflows.pop(name, None) is not None

    def load_workflows(self, directory: Path | str | None = None) -> list[str]:
        """Load every workflow file (YAML and JSON) of ``directory`` (default: config_dir).

        A bad file never stops the others: its problems are returned, one line each
        (``file:line:col: message; hint``). A name defined twice: see :meth:`register_loaded`.

        Returns
        -------
        list of str
            The problems found; empty when every file loaded.
        """
        from .workflow_directory import WorkflowDirectory

        directory = Path(directory) if directory is not None else self.config_dir
        if not directory.is_dir():
            return [f"{directory}: workflows directory does not exist"]
        files = WorkflowDirectory(directory).load()
        problems = [str(p) for f in files if f.error is not None for p in (f.error.problems or [f.error.message])]
        return problems + self.register_loaded(files, directory)

    def register_loaded(self, files: Sequence[LoadedFile], directory: Path) -> list[str]:
        """Register the workflows of ``directory``'s files (loaded, in file order).

        What this directory registered before and no file declares any more is
        forgotten. A name several files declare (an invalid file counts: it means to be
        that workflow) is registered as the first valid file's workflow, so it is
        listed, but :meth:`require_workflow` refuses it with ``WORKFLOW_AMBIGUOUS`` until
        one is renamed: running whichever file sorts first would run the wrong one half
        the time. A name only an invalid file declares is refused with its problems.

        Returns
        -------
        list of str
            One problem per file whose name an earlier file took.
        """
        directory = Path(directory)
        problems: list[str] = []
        declaring: dict[str, list[LoadedFile]] = {}
        for loaded in files:
            if loaded.name is not None:
                declaring.setdefault(loaded.name, []).append(loaded)
        with self._lock:
            self._ambiguous = {name: seen for name, seen in self._ambiguous.items() if seen[1] != directory}
            self._broken = {name: seen for name, seen in self._broken.items() if seen[1] != directory}
            for name, workflow in list(self.workflows.items()):
                if name not in declaring and _defined_in(workflow, directory):
                    del self.workflows[name]  # its file was deleted or renamed the workflow
            for name, group in declaring.items():
                for later in group[1:]:
                    problems.append(f"{later.path}: workflow name '{name}' is also used by {group[0].path}; rename "
                                    f"one (running '{name}' by name is refused until then)")
                if len(group) > 1:
                    self._ambiguous[name] = ([str(f.path) for f in group], directory)
                valid = next((f.workflow for f in group if f.workflow is not None), None)
                if valid is not None:
                    valid.status = WorkflowStatus.READY
                    self.workflows[name] = valid
                    continue
                registered = self.workflows.get(name)
                if registered is not None and not _defined_in(registered, directory):
                    continue  # created on purpose (API, MCP): it stands, as create_workflow meant
                if len(group) == 1 and group[0].error is not None:
                    self._broken[name] = (group[0].error, directory)
                if registered is not None:
                    del self.workflows[name]  # its only file is invalid now: not the old version
        return problems

    # ----------------------------------------------------------------- validation

    def structure_problems(self, workflow: Workflow) -> list[ValidationProblem]:
        """Return what makes ``workflow`` unrunnable anywhere (see :mod:`core.workflow_checks`)."""
        return structure_problems(workflow)

    def action_problems(self, workflow: Workflow) -> dict[str, str]:
        """Return ``{step: problem}`` for unknown actions and impossible resource needs here."""
        return action_problems(workflow, self.resource_manager)

    def validate_workflow(self, definition: Mapping[str, Any] | Workflow | str) -> list[str]:
        """Return every problem of a workflow definition (empty: it can run).

        ``definition`` is a definition dict, a Workflow, or the name of a registered
        workflow. Covers structure, unknown actions and resource requirements.
        """
        if isinstance(definition, str):
            if definition not in self.workflows:
                return [f"workflow '{definition}' is not registered"]
            workflow = self.workflows[definition]
        elif isinstance(definition, Workflow):
            workflow = definition
        else:
            from .workflow_file import workflow_from_dict

            try:
                workflow = workflow_from_dict(dict(definition))
            except WorkflowValidationError as exc:
                return [str(p) for p in exc.problems] or [exc.message]
        problems = [str(p) for p in self.structure_problems(workflow)]
        problems.extend(self.action_problems(workflow).values())
        problems.extend(str(p) for p in param_problems(workflow, {}))
        return problems

    def create_workflow_dag(self, tasks: Iterable[Any]) -> WorkflowDAG:
        """Return the :class:`WorkflowDAG` of ``tasks`` (steps, Tasks or task dicts), unvalidated."""
        return WorkflowDAG(dag_tasks(tasks))

    def validate_workflow_dependencies(self, tasks: Iterable[Any]) -> list[str]:
        """Return the dependency problems of ``tasks`` (unknown, self, duplicate, cycles)."""
        return self.create_workflow_dag(tasks).problems()

    def get_workflow_execution_order(self, tasks: Iterable[Any]) -> list[list[str]]:
        """Return ``tasks`` grouped in levels that can each run in parallel.

        Raises
        ------
        DAGValidationError, CycleDetectedError
            The dependencies are invalid.
        """
        return self.create_workflow_dag(tasks).get_execution_levels()

    def coerce_cli_params(self, workflow: Workflow | str, pairs: Iterable[str]) -> dict[str, Any]:
        """Convert ``["key=value", ...]`` to typed parameters of ``workflow``.

        Raises
        ------
        WorkflowValidationError
            Malformed pair, unknown key (with did-you-mean) or unconvertible value.
        WorkflowNotFoundError
            ``workflow`` is a name that is not registered.
        """
        wf = workflow if isinstance(workflow, Workflow) else self.require_workflow(workflow)
        return _coerce_cli_params(wf, pairs)

    # ----------------------------------------------------------------------- runs

    def start_workflow(
        self,
        workflow: str | Workflow,
        params: Mapping[str, Any] | None = None,
        *,
        session_id: str | None = None,
        max_parallel: int | None = None,
        run_id: str | None = None,
        preset_outputs: Mapping[str, Any] | None = None,
        working_dir: Path | str | None = None,
        observers: Sequence[RunObserver] = (),
        parameter_guard: ParameterGuard | None = None,
    ) -> RunHandle:
        """Start a run in the background and return its :class:`RunHandle`.

        ``preset_outputs`` marks steps as already completed with those outputs (resume).
        Step logs go to ``Settings.runs_dir/<run_id>/``. ``parameter_guard`` vets each
        step's parameters after its references are resolved (see ``RunSpec``).

        Raises
        ------
        WorkflowNotFoundError
            ``workflow`` names no registered workflow.
        WorkflowValidationError
            Bad parameters, or a structurally invalid Workflow object.
        WorkflowExecutionError
            ``run_id`` is not a safe identifier or is already in use.
        """
        from .task_orchestrator import RunSpec

        wf = workflow if isinstance(workflow, Workflow) else self.require_workflow(workflow)
        if isinstance(workflow, Workflow) and workflow.name not in self.workflows:
            problems = self.structure_problems(wf)
            if problems:
                raise WorkflowValidationError(problems)
        merged = resolve_params(wf, params)
        run_id = run_id or new_id("run")
        if not _RUN_ID.fullmatch(run_id) or ".." in run_id:
            raise WorkflowExecutionError(
                f"run id {run_id!r} is not valid; use letters, digits, '.', '_' and '-' (at most 128, no '..')")
        preset = {k: v for k, v in (preset_outputs or {}).items() if k in wf.step_names}
        state = RunState(run_id, wf, merged, session_id=session_id, observers=[*self.observers, *observers],
                         log_dir=self.settings.runs_dir / run_id, preset=preset)
        with self._lock:
            if self._closed:
                raise WorkflowExecutionError("this workflow manager was shut down; create a new WorkflowManager")
            if run_id in self._runs:
                raise WorkflowExecutionError(f"run id {run_id!r} is already in use; pick another or omit it")
            self._runs[run_id] = state
            self._active[run_id] = state
            self._latest[wf.name] = run_id
            self._trim_history()
        handle = RunHandle(state, self._cancel_state)
        for observer in state.observers:
            self._safe(observer.run_started, run_id, wf, merged, session_id)
        self.events.emit(EventType.WORKFLOW_STARTED, {
            "workflow_name": wf.name, "run_id": run_id, "session_id": session_id, "params": merged,
        })
        invalid = self.action_problems(wf)
        if invalid:
            self._refuse(state, invalid)
            return handle
        if state.all_terminal:  # nothing left to run: empty workflow, or everything preset
            self._finish(state)
            return handle
        tasks = [Task.from_step(step, run_id=run_id) for step in wf.steps]
        spec = RunSpec(
            run_id=run_id,
            params=merged,
            log_dir=state.log_dir,
            max_parallel=max_parallel,
            preset_outputs=preset,
            working_dir=str(working_dir) if working_dir is not None else None,
            parameter_guard=parameter_guard,
        )
        try:
            self.orchestrator.submit_run(spec, tasks)
        except Exception as exc:
            # Whatever went wrong, the run is over: waiters, observers and sessions must hear so.
            message = exc.message if isinstance(exc, OrchestrationError) else f"{type(exc).__name__}: {exc}"
            self._finish(state, WorkflowStatus.FAILED, message)
            raise
        return handle

    def _refuse(self, state: RunState, invalid: dict[str, str]) -> None:
        """End a run that cannot start: named steps FAILED, the others SKIPPED, nothing run."""
        ex = state.execution
        now = time.time()
        for name, status in list(ex.step_status.items()):
            if status == TaskStatus.COMPLETED:
                continue
            if name in invalid:
                status, error = TaskStatus.FAILED, invalid[name]
            else:
                status, error = TaskStatus.SKIPPED, "not run: the workflow failed validation"
            # Observers (the store) see the same step states as any other run's.
            transition = TaskTransition(task_id=new_id(), name=name, status=status, at=now,
                                        run_id=state.run_id, error=error)
            state.apply(transition)
            state.notify_transition(transition)
        first = next(iter(invalid.values()))
        more = f" (and {len(invalid) - 1} more)" if len(invalid) > 1 else ""
        self._finish(state, WorkflowStatus.FAILED, f"workflow '{state.workflow.name}' cannot run: {first}{more}")

    def execute_workflow(self, name: str | Workflow, /, session_id: str | None = None, **params: Any) -> WorkflowExecution:
        """Run a workflow to its end and return the :class:`WorkflowExecution`.

        Raises
        ------
        WorkflowNotFoundError
            No workflow has that name.
        WorkflowValidationError
            The parameters do not fit the workflow's declared ``params``.
        """
        handle = self.start_workflow(name, params, session_id=session_id)
        execution = handle.wait()
        assert execution is not None  # wait() without a timeout returns only at the end
        return execution

    def _on_transition(self, transition: TaskTransition) -> None:
        # Runs on the dispatcher thread: a dict lookup, a few assignments, maybe a finish.
        run_id = transition.run_id
        state = self._active.get(run_id) if run_id is not None else None
        if state is None:
            return
        ended = state.apply(transition)
        state.notify_transition(transition)
        if ended:
            self._finish(state)

    def _finish(self, state: RunState, status: WorkflowStatus | None = None, error: str | None = None) -> None:
        """Fix the run's outcome (computed unless ``status`` is given), tell everyone, wake waiters."""
        with self._lock:
            if self._active.pop(state.run_id, None) is None:
                return  # already finished
        execution = state.finish(status, error)
        self._perf.record(execution)
        for observer in state.observers:
            self._safe(observer.run_finished, execution)
        event = {
            WorkflowStatus.COMPLETED: EventType.WORKFLOW_COMPLETED,
            WorkflowStatus.CANCELLED: EventType.WORKFLOW_CANCELLED,
        }.get(execution.status, EventType.WORKFLOW_FAILED)
        self.events.emit(event, {
            "workflow_name": execution.workflow_name,
            "run_id": execution.run_id,
            "session_id": execution.session_id,
            "success": execution.success,
            "status": execution.status.value,
            "execution_time": execution.execution_time,
            "failed_steps": execution.failed_steps,
            "error": execution.error,
        })
        state.finished.set()
        self._detach_if_idle()

    @staticmethod
    def _safe(method: Any, *args: Any) -> None:
        try:
            method(*args)
        except Exception:  # an observer must never break the run it watches
            log.exception("run observer %r failed", method)

    def _trim_history(self) -> None:
        if len(self._runs) > _HISTORY:
            for run_id in list(self._runs)[: len(self._runs) - _HISTORY]:
                if run_id not in self._active:
                    del self._runs[run_id]

    def _cancel_state(self, state: RunState) -> bool:
        if state.finished.is_set():
            return False
        state.cancel_requested = True
        self.orchestrator.cancel_run(state.run_id)
        return True

    def _runs_for(self, name_or_run_id: str) -> list[RunState]:
        state = self._runs.get(name_or_run_id)
        if state is not None:
            return [state]
        return [s for s in list(self._active.values()) if s.workflow.name == name_or_run_id]

    def get_run(self, run_id: str) -> RunHandle | None:
        """Return the handle of run ``run_id`` (kept in memory: the last 1000 runs), or None."""
        state = self._runs.get(run_id)
        return RunHandle(state, self._cancel_state) if state is not None else None

    def active_runs(self) -> list[RunHandle]:
        """Return the handles of the runs still in progress."""
        return [RunHandle(s, self._cancel_state) for s in list(self._active.values())]

    def cancel_workflow(self, name_or_run_id: str) -> bool:
        """Cancel run ``name_or_run_id``, or every active run of the workflow of that name.

        Returns True when at least one run was still in progress.
        """
        cancelled = [self._cancel_state(s) for s in self._runs_for(name_or_run_id)]
        return any(cancelled)

    def get_workflow_status(self, name_or_run_id: str) -> dict[str, Any] | None:
        """Return the spec-002 status dict of a run, or of a workflow's newest run.

        A workflow that never ran reports its definition status with zero progress.
        Returns None when the name is neither a run id nor a workflow.
        """
        state = self._runs.get(name_or_run_id)
        if state is None and name_or_run_id in self._latest:
            state = self._runs.get(self._latest[name_or_run_id])
        if state is None:
            workflow = self.workflows.get(name_or_run_id)
            if workflow is None:
                return None
            total = len(workflow.steps)
            return {
                "name": workflow.name, "run_id": None, "status": workflow.status.value,
                "progress": {"total_steps": total, "completed_steps": 0, "failed_steps": 0, "running_steps": 0,
                             "skipped_steps": 0, "cancelled_steps": 0, "pending_steps": total},
                "start_time": None, "end_time": None, "error_message": "",
            }
        with state.lock:
            ex = state.execution
            counts = {s: 0 for s in TaskStatus}
            for status in ex.step_status.values():
                counts[status] += 1
            return {
                "name": ex.workflow_name,
                "run_id": ex.run_id,
                "session_id": ex.session_id,
                "status": ex.status.value,
                "progress": {
                    "total_steps": len(ex.step_status),
                    "completed_steps": counts[TaskStatus.COMPLETED],
                    "failed_steps": counts[TaskStatus.FAILED],
                    "running_steps": counts[TaskStatus.RUNNING],
                    "skipped_steps": counts[TaskStatus.SKIPPED],
                    "cancelled_steps": counts[TaskStatus.CANCELLED] + counts[TaskStatus.INTERRUPTED],
                    "pending_steps": counts[TaskStatus.PENDING] + counts[TaskStatus.READY],
                },
                "start_time": iso_utc(ex.started_at),
                "end_time": iso_utc(ex.finished_at),
                "error_message": ex.error,
            }

    def execute_parallel_workflow(self, workflow: str | Workflow, *, max_workers: int | None = None) -> dict[str, Any]:
        """Run a workflow's steps through a :class:`~core.parallel_executor.ParallelExecutor`.

        This is spec 000's direct path: the steps run on a private executor (its own
        pool of ``max_workers``), outside this manager's orchestrator, so the run has no
        session, no observers and is not recorded; use ``execute_workflow`` for that.

        Returns
        -------
        dict
            ``success``, ``workflow_name``, ``status``, ``execution_time`` and
            ``results`` (``{step: ExecutionResult.to_dict()}``).

        Raises
        ------
        WorkflowNotFoundError
            No workflow has that name.
        """
        from .parallel_executor import ParallelExecutor

        wf = workflow if isinstance(workflow, Workflow) else self.require_workflow(workflow)
        tasks = [Task.from_step(step) for step in wf.steps]  # dependencies travel with each task
        started = time.monotonic()
        with ParallelExecutor(max_workers=max_workers or self.settings.max_workers) as executor:
            results = executor.execute_tasks(tasks)
        elapsed = time.monotonic() - started
        success = all(r.success for r in results.values())
        return {
            "success": success,
            "workflow_name": wf.name,
            "status": (WorkflowStatus.COMPLETED if success else WorkflowStatus.FAILED).value,
            "execution_time": elapsed,
            "results": {name: r.to_dict() for name, r in results.items()},
        }

    def get_performance_summary(self) -> dict[str, Any]:
        """Return run counts and timings, overall and per workflow.

        Keys: ``total_executions``, ``successful``, ``failed``, ``cancelled``,
        ``running``, ``success_rate`` (0..1), ``total_execution_time``,
        ``average_execution_time`` and ``workflows`` (the same per workflow, plus
        ``min_time``, ``max_time``, ``last_status``, ``last_run_id``).
        """
        return self._perf.summary(running=len(self._active))


def _defined_in(workflow: Workflow | None, directory: Path) -> bool:
    """True when ``workflow`` was loaded from a workflow file directly in ``directory``
    (not a placeholder such as ``<mcp>``, whose parent would read as ``.``)."""
    from .workflow_file import WORKFLOW_SUFFIXES

    if workflow is None or workflow.source_path is None:
        return False
    source = Path(workflow.source_path)
    return source.suffix in WORKFLOW_SUFFIXES and source.parent == directory
