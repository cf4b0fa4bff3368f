"""The core as the dashboard sees it: one object that reads state and carries out actions.

:class:`DashboardEngine` owns (or is given) a WorkflowManager with its TaskOrchestrator,
a ResourceManager, the SQLite store and a ProjectManager. It implements
:class:`~orchtui.dashboard_model.StateSource` for the model thread (cheap reads that
return the same object while nothing changed) and the actions the keys trigger: start,
cancel, resume, details, logs, Mermaid export, new projects.

Run views come from two places. Runs of this process are read from their in-memory
state (no database round trip, so a 10k-step run's graph stays live at 10 Hz); every
other run, including those of other processes (CLI, MCP), comes from the store, re-read
only when the store's change counter says it moved.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from core.config import Settings, load_settings
from core.errors import OrchestrationError, StoreError, WorkflowExecutionError
from core.logs import list_logs, log_path, read_log
from core.models import Project, ResourceUsage, TaskStatus, Workflow, new_id
from core.project_manager import ProjectManager
from core.resource_manager import ResourceManager
from core.run_recorder import StoreRecorder, plan_resume
from core.snapshot import OrchestratorSnapshot, RunView
from core.store import Store
from core.templating import resolve_parameters
from core.workflow_dag import WorkflowDAG
from core.workflow_file import load_workflows_dir
from core.workflow_manager import WorkflowManager

from .dashboard_model import CatalogView
from .screens.forms import ProjectRequest
from .widgets.details import AttemptInfo, StepDetail

__all__ = ["DashboardEngine", "RUN_HISTORY", "LOG_TAIL_LINES"]

RUN_HISTORY = 300  # newest runs listed
LOG_TAIL_LINES = 20  # lines of log in the details view
_CATALOG_CHECK = 2.0  # seconds between looks at the workflows directory and projects
_FOREIGN_FOCUS_INTERVAL = 0.5  # seconds between re-reads of another process's focused run


class DashboardEngine:
    """Reads and drives the core for the dashboard.

    Parameters
    ----------
    state_dir, workflows_dir : Path, optional
        Override the settings' directories (tests pass tmp dirs).
    settings : Settings, optional
        Default: :func:`core.config.load_settings` with the overrides above.
    resource_manager : ResourceManager, optional
        Default: one that detects this machine (and reads ``ORCHTUI_RESOURCE_CONFIG``).
    store : Store, optional
        Default: the state directory's store, opened here and closed by :meth:`close`.
    max_workers : int, optional
        Worker threads of the orchestrator (default: the settings').
    """

    def __init__(
        self,
        *,
        state_dir: Path | None = None,
        workflows_dir: Path | None = None,
        settings: Settings | None = None,
        resource_manager: ResourceManager | None = None,
        store: Store | None = None,
        max_workers: int | None = None,
    ) -> None:
        settings = settings or load_settings()
        if state_dir is not None:
            settings.state_dir = Path(state_dir)
        if workflows_dir is not None:
            settings.workflows_dir = Path(workflows_dir)
        if max_workers is not None:
            settings.max_workers = max_workers
        self.settings = settings
        self.workflows_dir = settings.workflows_dir
        self.state_dir = settings.state_dir
        self._owns_store = store is None
        self.store = store or Store.open(settings)
        self.resources = resource_manager or ResourceManager(state_dir=settings.state_dir)
        self.recorder = StoreRecorder(self.store, resource_manager=self.resources)
        self.manager = WorkflowManager(
            settings.workflows_dir,
            resource_manager=self.resources,
            observers=[self.recorder],
            settings=settings,
            autoload=False,
        )
        self.orchestrator = self.manager.orchestrator
        self.projects = ProjectManager(store=self.store, settings=settings, workflow_manager=self.manager)
        self._lock = threading.Lock()
        self._catalog = CatalogView()
        self._catalog_signature: tuple[Any, ...] | None = None
        self._catalog_checked = 0.0
        self._store_version = -1
        self._store_runs: tuple[RunView, ...] = ()
        self._runs: tuple[RunView, ...] = ()
        self._resources: tuple[ResourceUsage, ...] = ()
        self._focus_cache: dict[str, tuple[Any, RunView]] = {}
        self._focus_read_at = 0.0
        self._closed = False

    # ------------------------------------------------------------ state source

    def load_catalog(self) -> CatalogView:
        """Return the workflows and projects; the same object while neither changed.

        Workflow files are parsed again only when the directory's listing (names, sizes,
        modification times) changed; projects are re-read every couple of seconds.
        """
        now = time.monotonic()
        if now - self._catalog_checked < _CATALOG_CHECK and self._catalog_signature is not None:
            return self._catalog
        self._catalog_checked = now
        signature = self._dir_signature()
        workflows, problems = self._catalog.workflows, self._catalog.problems
        if signature != self._catalog_signature:
            self._catalog_signature = signature
            loaded, errors = load_workflows_dir(self.workflows_dir) if self.workflows_dir.is_dir() else ([], [])
            for workflow in loaded:
                self.manager.workflows[workflow.name] = workflow
            workflows = tuple(loaded)
            problems = tuple(str(e.message).splitlines()[0] for e in errors)
        projects = tuple(self.store.list_projects())
        catalog = CatalogView(workflows, problems, projects)
        if catalog != self._catalog:
            self._catalog = catalog
        return self._catalog

    def _dir_signature(self) -> tuple[tuple[str, int, int], ...]:
        try:
            entries = sorted(os.scandir(self.workflows_dir), key=lambda e: e.name)
        except OSError:
            return ()
        return tuple((e.name, e.stat().st_mtime_ns, e.stat().st_size) for e in entries if e.is_file())

    def reload_catalog(self) -> None:
        """Make the next :meth:`load_catalog` look at the directory and projects again."""
        self._catalog_signature = None
        self._catalog_checked = 0.0

    def orchestrator_snapshot(self) -> OrchestratorSnapshot:
        """Return the scheduler's latest published snapshot."""
        return self.orchestrator.snapshot()

    def resource_usage(self) -> tuple[ResourceUsage, ...]:
        """Return every resource's usage; the same tuple while nothing changed."""
        usage = tuple(self.resources.snapshot())
        if usage != self._resources:
            self._resources = usage
        return self._resources

    def run_views(self) -> tuple[RunView, ...]:
        """Return the run history (newest first), without per-step maps.

        Runs of this process come from memory; the store's list is re-read only when its
        change counter moved.
        """
        version = self.store.version()
        if version != self._store_version:
            self._store_version = version
            self._store_runs = tuple(r.to_view() for r in self.store.list_runs(limit=RUN_HISTORY))
        local = {h.run_id: h for h in self.manager.active_runs()}
        views = [self._local_view(h, steps=False) for h in local.values()]
        views.extend(v for v in self._store_runs if v.run_id not in local)
        views.sort(key=lambda v: v.started_at or 0.0, reverse=True)
        runs = tuple(views[:RUN_HISTORY])
        if runs != self._runs:
            self._runs = runs
        return self._runs

    def focus_view(self, run_id: str, snapshot: OrchestratorSnapshot) -> RunView | None:
        """Return run ``run_id`` with its per-step statuses and start times, or None.

        For a run of this process, statuses are copied from its live state and start
        times of running steps come from ``snapshot``; other runs are read from the
        store when their version changed.
        """
        handle = self.manager.get_run(run_id)
        if handle is not None:
            statuses = dict(handle.execution.step_status)
            started = {v.name: v.started_at for v in snapshot.running if v.run_id == run_id and v.started_at is not None}
            key: Any = (handle.status, statuses, started)
            cached = self._focus_cache.get(run_id)
            if cached is not None and cached[0] == key:
                return cached[1]
            view = self._local_view(handle, steps=True, statuses=statuses, started=started)
        else:
            # Another process's run: re-read it when the store moved, at most twice a second
            # (a 10k-step run is 10k rows).
            version = self.store.version()
            cached = self._focus_cache.get(run_id)
            now = time.monotonic()
            if cached is not None and (cached[0] == version or now - self._focus_read_at < _FOREIGN_FOCUS_INTERVAL):
                return cached[1]
            self._focus_read_at = now
            record = self.store.get_run(run_id)
            if record is None:
                return None
            key, view = version, record.to_view()
        self._focus_cache = {run_id: (key, view)}  # one focused run at a time
        return view

    @staticmethod
    def _local_view(
        handle: Any,
        *,
        steps: bool,
        statuses: dict[str, TaskStatus] | None = None,
        started: dict[str, float] | None = None,
    ) -> RunView:
        ex = handle.execution
        return RunView(
            run_id=ex.run_id,
            workflow=ex.workflow_name,
            status=handle.status,
            started_at=ex.started_at,
            finished_at=ex.finished_at,
            step_status=statuses if statuses is not None else ({} if not steps else dict(ex.step_status)),
            step_started_at=started or {},
            params=dict(ex.params),
            error=ex.error,
            owner_pid=os.getpid(),
            session_id=ex.session_id,
        )

    # ----------------------------------------------------------------- queries

    def workflow_for_run(self, run_id: str) -> Workflow | None:
        """Return the workflow definition a run used (as it was when it started), or None."""
        handle = self.manager.get_run(run_id)
        if handle is not None:
            return handle.workflow
        record = self.store.get_run(run_id)
        return record.definition if record is not None else None

    def local_active_runs(self) -> list[str]:
        """Return the ids of this process's runs that are still going."""
        return [h.run_id for h in self.manager.active_runs()]

    def log_path(self, run_id: str, step: str, attempt: int) -> Path:
        """Return where attempt ``attempt`` of ``step`` writes its log (may not exist yet).

        Raises:
            StoreError: the run id or step name cannot be a path.
        """
        return log_path(self.settings.runs_dir, run_id, step, attempt)

    def latest_log(self, run_id: str, step: str) -> tuple[Path | None, int]:
        """Return ``(path, attempt)`` of the step's newest log file, or ``(None, 0)``."""
        try:
            logs = list_logs(self.settings.runs_dir, run_id, step)
        except StoreError:
            return None, 0
        if not logs:
            return None, 0
        return logs[-1].path, logs[-1].attempt

    def step_detail(self, workflow: Workflow, run_id: str | None, step_name: str) -> StepDetail:
        """Return what the details view shows of ``step_name`` (in run ``run_id`` if given).

        Parameters are resolved against the run's parameters and its committed outputs
        when every reference can be; otherwise they are shown as written, with why.

        Raises:
            WorkflowExecutionError: the workflow has no such step.
        """
        try:
            step = workflow.step(step_name)
        except KeyError:
            raise WorkflowExecutionError(f"workflow {workflow.name!r} has no step {step_name!r}") from None
        upstream = tuple(step.dependencies)
        downstream = tuple(s.name for s in workflow.steps if step_name in s.dependencies)
        if run_id is None:
            return StepDetail(step, None, TaskStatus.PENDING, dict(step.parameters), "as written: no run selected",
                              upstream=upstream, downstream=downstream)
        record = self.store.get_run(run_id)
        record_step = record.steps.get(step_name) if record is not None else None
        handle = self.manager.get_run(run_id)
        status = TaskStatus.PENDING
        if handle is not None:
            status = handle.execution.step_status.get(step_name, TaskStatus.PENDING)
        elif record_step is not None:
            status = record_step.status
        params = dict(handle.execution.params) if handle is not None else dict(record.params if record else {})
        outputs = {name: s.output for name, s in (record.steps.items() if record else ()) if s.status is TaskStatus.COMPLETED}
        try:
            resolved = resolve_parameters(step.module, step.action, step.parameters, params=params, outputs=outputs, step_name=step_name)
            note = ""
        except OrchestrationError as exc:
            resolved, note = dict(step.parameters), f"as written: {exc.message}"
        attempts = tuple(
            AttemptInfo(a.attempt, a.status, a.started_at, a.finished_at, a.exit_code, a.error, a.log_path)
            for a in (record_step.attempts if record_step is not None else ())
        )
        path, _attempt = self.latest_log(run_id, step_name)
        tail = ""
        if path is not None:
            try:
                tail = read_log(path, tail_lines=LOG_TAIL_LINES)
            except StoreError as exc:
                tail = exc.message
        has_output = record_step is not None and record_step.status is TaskStatus.COMPLETED
        return StepDetail(
            step=step,
            run_id=run_id,
            status=status,
            parameters=resolved,
            parameters_note=note,
            attempts=attempts,
            error=record_step.error if record_step is not None else "",
            output=record_step.output if has_output else None,
            has_output=has_output,
            log_tail=tail,
            upstream=upstream,
            downstream=downstream,
        )

    # ----------------------------------------------------------------- actions

    def start_run(self, workflow_name: str, params: dict[str, Any]) -> str:
        """Start ``workflow_name`` with ``params`` in the background; return the run id.

        Raises:
            WorkflowNotFoundError, WorkflowValidationError, WorkflowExecutionError: as
                ``WorkflowManager.start_workflow``.
        """
        return self.manager.start_workflow(workflow_name, params).run_id

    def cancel_run(self, run_id: str) -> bool:
        """Cancel run ``run_id`` if this process runs it; returns whether a cancel was sent."""
        handle = self.manager.get_run(run_id)
        return handle.cancel() if handle is not None else False

    def cancel_step(self, run_id: str, step: str) -> bool:
        """Cancel one unfinished step of a run of this process; returns whether one was found."""
        for task in self.orchestrator.get_tasks():
            if task.run_id == run_id and task.name == step:
                return self.orchestrator.cancel_task(task.id)
        return False

    def resume_run(self, run_id: str) -> str:
        """Start a run that redoes ``run_id``'s unfinished steps, reusing committed outputs.

        Returns the new run's id.

        Raises:
            StoreError: there is no such run, or it completed.
            WorkflowValidationError: its workflow or parameters are no longer valid.
        """
        workflow, params, preset = plan_resume(self.store, run_id)
        new_run = new_id("run")
        self.recorder.expect_resume(new_run, run_id, preset)
        return self.manager.start_workflow(workflow, params, preset_outputs=preset, run_id=new_run).run_id

    def write_mermaid(self, workflow: Workflow, run: RunView | None) -> Path:
        """Write ``workflow``'s Mermaid graph (with ``run``'s statuses as classes) and return the file.

        The file goes to ``<state_dir>/graphs/<run id or workflow>.mmd``.

        Raises:
            DAGValidationError: the workflow is not a DAG.
            OSError: the file cannot be written.
        """
        statuses = run.step_status if run is not None else None
        text = WorkflowDAG.from_workflow(workflow).to_mermaid(statuses)
        directory = self.state_dir / "graphs"
        directory.mkdir(parents=True, exist_ok=True)
        stem = run.run_id if run is not None else "".join(c if c.isalnum() or c in "-_." else "_" for c in workflow.name)
        path = directory / f"{stem}.mmd"
        path.write_text(text + "\n", encoding="utf-8")
        return path

    def create_project(self, request: ProjectRequest) -> Project:
        """Create a project from the form's request and return it.

        Raises:
            ProjectManagementError: as ``ProjectManager.create_project``.
        """
        project = self.projects.create_project(request.name, type=request.type, description=request.description)
        self.reload_catalog()
        return project

    def close(self) -> None:
        """Cancel this process's active runs and release everything (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self.manager.shutdown()
        self.orchestrator.shutdown(wait=True, cancel_running=True)
        self.projects.close()
        if self._owns_store:
            self.store.close()
