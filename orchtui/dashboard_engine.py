"""The core as the dashboard sees it: one object that reads state and carries out actions.

:class:`DashboardEngine` owns (or is given) a WorkflowManager with its TaskOrchestrator,
a ResourceManager, the SQLite store and a ProjectManager. It implements
:class:`~orchtui.dashboard_model.StateSource` for the model thread (cheap reads that
return the same object while nothing changed) and the actions the keys trigger: start,
cancel, resume, details, logs, Mermaid export, new projects.

Runs are started as detached processes by default (``run_mode="process"``,
:mod:`core.run_launcher`): a run survives the dashboard quitting or crashing, and its
threads never compete with the dashboard's for the GIL. Every run, whoever started it,
is watched through the store (:class:`~orchtui.store_watch.StoreWatcher`, reading only
what changed), its scheduler through the live files of :mod:`core.live_state`, and it is
cancelled through a request file that the owning process carries out.

``run_mode="inline"`` runs workflows in this process instead (embedding, tests): those
runs are read from memory, published for other faces, and cancelled when the engine
closes.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from core.config import Settings, load_settings
from core.errors import OrchestrationError, StoreError, WorkflowExecutionError
from core.live_state import LivePublisher, LiveProcess, LiveReader, request_cancel
from core.logs import log_path, newest_log, read_log
from core.models import Project, ResourceUsage, TaskPriority, TaskStatus, Workflow, new_id
from core.project_manager import ProjectManager
from core.resource_manager import ResourceManager
from core.run_launcher import launch_resume, launch_run, reap_children, runner_log_path
from core.resume_plan import plan_resume
from core.run_recorder import StoreRecorder
from core.snapshot import OrchestratorSnapshot, RunView
from core.store import Store
from core.templating import resolve_parameters
from core.workflow_dag import WorkflowDAG
from core.workflow_directory import WorkflowDirectory
from core.workflow_manager import WorkflowManager
from core.workflow_params import resolve_params

from .dashboard_model import CatalogView
from .screens.forms import ProjectRequest
from .store_watch import StoreWatcher
from .widgets.details import StepDetail

__all__ = ["DashboardEngine", "RUN_HISTORY", "LOG_TAIL_LINES", "RUN_MODES", "merge_snapshots", "merge_usages"]

log = logging.getLogger(__name__)

RUN_HISTORY = 300  # newest runs listed
LOG_TAIL_LINES = 20  # lines of log in the details view
# ...and at most this many characters of them: a progress bar that redraws with "\r" (pip,
# curl, tqdm) writes megabytes without a newline, and laying that out froze the screen 3 s.
LOG_TAIL_CHARS = 4000
RUN_MODES = ("process", "inline")
_CATALOG_CHECK = 2.0  # seconds between looks at the workflows directory and projects
_QUEUE_HEADS = 3  # next tasks shown per lane when several processes are merged
_CLAIM_WAIT = 2.0  # seconds a resume started here waits for the store's write lock (on the UI thread)


def merge_snapshots(parts: list[OrchestratorSnapshot], version: int) -> OrchestratorSnapshot:
    """Return one snapshot adding up ``parts`` (several processes' schedulers) as ``version``."""
    if len(parts) == 1:
        return dataclasses.replace(parts[0], version=version)
    counts: dict[TaskStatus, int] = {}
    for part in parts:
        for status, count in part.counts.items():
            counts[status] = counts.get(status, 0) + count
    return OrchestratorSnapshot(
        version=version,
        taken_at=max((p.taken_at for p in parts), default=0.0),
        max_workers=sum(p.max_workers for p in parts),
        queued={lane: sum(p.queued.get(lane, 0) for p in parts) for lane in TaskPriority},
        queue_heads={lane: tuple(v for p in parts for v in p.queue_heads.get(lane, ()))[:_QUEUE_HEADS]
                     for lane in TaskPriority},
        running=tuple(v for p in parts for v in p.running),
        counts=counts,
        waiting_on_dependencies=sum(p.waiting_on_dependencies for p in parts),
        waiting_on_resources=sum(p.waiting_on_resources for p in parts),
        retry_scheduled=sum(p.retry_scheduled for p in parts),
        completed_per_second=sum(p.completed_per_second for p in parts),
    )


def merge_usages(parts: list[tuple[ResourceUsage, ...]]) -> tuple[ResourceUsage, ...]:
    """Return one usage per resource id adding up ``parts`` (several processes' resource managers).

    Resources keep the order they first appear in; amounts in use and users are
    summed, capacity comes from the first part that has the resource, peaks are the
    largest seen, and what is available is recomputed (never below zero).
    """
    if len(parts) == 1:
        return parts[0]
    merged: dict[str, ResourceUsage] = {}
    for part in parts:
        for usage in part:
            seen = merged.get(usage.resource_id)
            if seen is None:
                merged[usage.resource_id] = ResourceUsage(
                    usage.resource_id, dict(usage.capacity), dict(usage.current), dict(usage.peak),
                    dict(usage.available), usage.users)
                continue
            for unit, amount in usage.current.items():
                seen.current[unit] = seen.current.get(unit, 0.0) + amount
            for unit, amount in usage.peak.items():
                seen.peak[unit] = max(seen.peak.get(unit, 0.0), amount)
            seen.users += usage.users
    for usage in merged.values():
        usage.available = {unit: max(0.0, cap - usage.current.get(unit, 0.0)) for unit, cap in usage.capacity.items()}
    return tuple(merged.values())


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
        Steps a run executes at once (default: the settings').
    run_mode : {"process", "inline"}
        Where started runs execute: detached processes (default), or this process.
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
        run_mode: str = "process",
    ) -> None:
        if run_mode not in RUN_MODES:
            raise OrchestrationError(f"run mode {run_mode!r} is not known; use one of: {', '.join(RUN_MODES)}")
        self.run_mode = run_mode
        self._max_workers = max_workers
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
        self._directory = WorkflowDirectory(settings.workflows_dir)
        self._directory_lock = threading.Lock()
        self._directory_parts: CatalogView | None = None  # the directory's part of the catalog, once loaded
        self._fresh_parts: CatalogView | None = None  # a background load's result, until load_catalog takes it
        self._catalog_loader: threading.Thread | None = None
        self._projects: tuple[Project, ...] = ()
        self.watcher = StoreWatcher(self.store, history=RUN_HISTORY)
        self._live = LiveReader(settings.state_dir)
        self._live_key: tuple[Any, ...] | None = None
        self._live_version = 0
        self._merged = OrchestratorSnapshot.empty()
        self.live_processes: tuple[LiveProcess, ...] = ()
        self._runs: tuple[RunView, ...] = ()
        self._resources: tuple[ResourceUsage, ...] = ()
        self._focus_cache: dict[str, tuple[Any, RunView]] = {}
        self._launched: dict[str, Workflow] = {}  # detached runs started here, until the store has them
        self._closed = False
        self._publisher: LivePublisher | None = None
        if run_mode == "inline":
            # Other faces see this process's runs and can cancel them, as any runner's.
            self._publisher = LivePublisher(self.orchestrator, self.manager, settings.state_dir, label="orchtui dashboard")
            self._publisher.start()

    # ------------------------------------------------------------ state source

    def load_catalog(self) -> CatalogView:
        """Return the workflows and projects; the same object while neither changed.

        The directory is looked at every couple of seconds (names, sizes, modification
        times); only the files that changed are parsed again, and after the first load
        on a thread of their own: a 10k-step file takes seconds, which the other panes
        would otherwise stand still for. Projects are re-read at each look.
        """
        parts, fresh = self._directory_parts, self._fresh_parts
        now = time.monotonic()
        if fresh is None and parts is not None and now - self._catalog_checked < _CATALOG_CHECK:
            return self._catalog
        if fresh is not None:
            self._fresh_parts = None
            parts = fresh
        if parts is None or now - self._catalog_checked >= _CATALOG_CHECK:
            self._catalog_checked = now
            signature = self._dir_signature()
            loading = self._catalog_loader is not None and self._catalog_loader.is_alive()
            if signature != self._catalog_signature and not loading:  # while loading: at the next look
                self._catalog_signature = signature
                if parts is None:  # nothing to show yet: wait for it
                    parts = self._load_directory()
                else:
                    self._catalog_loader = threading.Thread(target=self._load_in_background, daemon=True,
                                                            name="orchtui-catalog-loader")
                    self._catalog_loader.start()
            self._projects = tuple(self.store.list_projects())
        self._directory_parts = parts
        catalog = dataclasses.replace(parts, projects=self._projects)
        if catalog != self._catalog:
            self._catalog = catalog
        return self._catalog

    def _load_in_background(self) -> None:
        self._fresh_parts = self._load_directory()

    def _load_directory(self) -> CatalogView:
        """Load the workflows directory (changed files only) and register its workflows;
        return them as a catalog without projects. Never raises: a directory that cannot
        be read is the catalog's one problem line until its listing changes (a failed
        first load used to leave every later build of the dashboard failing)."""
        try:
            with self._directory_lock:
                files = self._directory.load() if self.workflows_dir.is_dir() else []
                shared_names = self.manager.register_loaded(files, self.workflows_dir)
        except Exception as exc:  # OSError listing it; anything else is a bug, shown rather than fatal
            if not isinstance(exc, OSError):
                self._catalog_signature = None  # try again at the next look, not only at the next change
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else f"{type(exc).__name__}: {exc}"
            log.warning("the workflows directory %s could not be loaded: %s", self.workflows_dir, why)
            return CatalogView(problems=(f"{self.workflows_dir}: cannot be read ({why}); check its permissions",))
        # A name several files declare is listed once (list entries are keyed by name); the
        # problem line names both files, and running it is refused until one is renamed.
        # A name only an invalid file declares stays listed (refused), so editing the
        # selected workflow into a broken state keeps it selected.
        first: dict[str, Workflow] = {}
        names: dict[str, None] = {}
        for loaded in files:
            if loaded.name is not None:
                names.setdefault(loaded.name)
            if loaded.workflow is not None:
                first.setdefault(loaded.workflow.name, loaded.workflow)
        refused = []
        for name in names:
            error = self.manager.refusal(name)
            if error is not None:
                refused.append((name, str(error.message).splitlines()[0]))
        problems = [str(f.error.message).splitlines()[0] for f in files if f.error is not None]
        return CatalogView(tuple(first.values()), tuple(problems + shared_names), (), tuple(names), tuple(refused))

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
        """Return the schedulers of every live process on this state dir, added up.

        The same object comes back while no process published anything new. In inline
        mode this process's own scheduler is read directly rather than from its file.
        Also refreshes :meth:`processes` (what each process published).
        """
        own = os.getpid()
        live = self._live.read(exclude_pid=own)
        parts = [p.snapshot for p in live]
        key: tuple[Any, ...] = tuple((p.pid, p.snapshot.version, p.written_at) for p in live)
        if self.run_mode == "inline":
            mine = self.orchestrator.snapshot()
            parts.insert(0, mine)
            key = ((own, mine.version), *key)
        if key != self._live_key:
            self._live_key = key
            self._live_version += 1
            self.live_processes = tuple(live)
            self._merged = (merge_snapshots(parts, self._live_version) if parts
                            else OrchestratorSnapshot.empty(self._max_workers or self.settings.max_workers))
        return self._merged

    def processes(self) -> tuple[LiveProcess, ...]:
        """Return the other live processes as of the last :meth:`orchestrator_snapshot`.

        The same tuple comes back while none of them published anything new.
        """
        return self.live_processes

    def resource_usage(self) -> tuple[ResourceUsage, ...]:
        """Return every resource's usage, this process's and the live processes' added up.

        Each process allocates from its own pools of the same machine, so the amounts
        in use are summed per resource and unit; capacity is this process's when it
        has the resource, else the first publisher's. The same tuple comes back while
        nothing changed.
        """
        usage = merge_usages([tuple(self.resources.snapshot()), *(p.resources for p in self.live_processes)])
        if usage != self._resources:
            self._resources = usage
        return self._resources

    def run_views(self, focus: str | None = None) -> tuple[RunView, ...]:
        """Return the run history (newest first), without per-step maps.

        Reads only the runs whose store version moved (and, once, the whole of run
        ``focus`` when it becomes the focus). In inline mode, this process's active runs
        come from memory.
        """
        self.watcher.poll(focus)
        stored = self.watcher.runs
        local = {h.run_id: h for h in self.manager.active_runs()} if self.run_mode == "inline" else {}
        if not local:
            runs = stored
        else:
            views = [self._local_view(h, steps=False) for h in local.values()]
            views.extend(v for v in stored if v.run_id not in local)
            views.sort(key=lambda v: v.started_at or 0.0, reverse=True)
            runs = tuple(views[:RUN_HISTORY])
        if runs != self._runs:
            self._runs = runs
        return self._runs

    def focus_view(self, run_id: str, snapshot: OrchestratorSnapshot) -> RunView | None:
        """Return run ``run_id`` with its per-step statuses and start times, or None.

        A run of this process (inline mode) is copied from its live state, with start
        times of running steps from ``snapshot``; any other run is the store watcher's
        latest read (call :meth:`run_views` with ``focus`` first).
        """
        handle = self.manager.get_run(run_id) if self.run_mode == "inline" else None
        if handle is None:
            return self.watcher.focus_view(run_id)
        statuses = dict(handle.execution.step_status)
        started = {v.name: v.started_at for v in snapshot.running if v.run_id == run_id and v.started_at is not None}
        key: Any = (handle.status, statuses, started)
        cached = self._focus_cache.get(run_id)
        if cached is not None and cached[0] == key:
            return cached[1]
        view = self._local_view(handle, steps=True, statuses=statuses, started=started)
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
        """Return the workflow definition a run used (as it was when it started), or None
        while it is not known: a stored run's is read by the store watcher on the model
        thread, with the run's steps, once the run is the focus (never by this call)."""
        handle = self.manager.get_run(run_id)
        if handle is not None:
            return handle.workflow
        definition = self.watcher.known_definition(run_id)
        return definition if definition is not None else self._launched.get(run_id)

    def local_active_runs(self) -> list[str]:
        """Return the ids of this process's runs that are still going (inline mode only has any)."""
        return [h.run_id for h in self.manager.active_runs()]

    def failures_to_report(self) -> list[str]:
        """Return one message per detached run process that ended without recording its run,
        and one per failed attempt to mark the runs of dead processes interrupted.

        Such a process failed before the run began (say, its workflow file changed and
        no longer validates); the message quotes the last line of its ``runner.log``.
        """
        messages = []
        for run_id, code in reap_children():
            self._launched.pop(run_id, None)
            if code == 0 or self.store.run_status(run_id) is not None:
                continue
            path = runner_log_path(self.state_dir, run_id)
            try:
                lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
            except OSError:
                lines = []
            last = lines[-1].strip() if lines else f"exit code {code}"
            messages.append(f"Run {run_id} did not start: {last[:200]} (see {path})")
        messages.extend(f"Runs whose process died cannot be marked interrupted yet: {error}"
                        for error in self.watcher.take_recovery_errors())
        return messages

    def log_path(self, run_id: str, step: str, attempt: int) -> Path:
        """Return where attempt ``attempt`` of ``step`` writes its log (may not exist yet).

        Raises:
            StoreError: the run id or step name cannot be a path.
        """
        return log_path(self.settings.runs_dir, run_id, step, attempt)

    def latest_log(self, run_id: str, step: str) -> tuple[Path | None, int]:
        """Return ``(path, attempt)`` of the step's newest log file, or ``(None, 0)``.

        The model thread asks this at every build for the step the Logs pane follows,
        and the UI thread once per key that opens a log: so it reads one row of the
        store (the step's newest attempt) and looks at that attempt's file names
        (:func:`core.logs.newest_log`), never the run's whole log directory.
        """
        try:
            return newest_log(self.settings.runs_dir, run_id, step, self.store.step_attempt(run_id, step))
        except StoreError:
            return None, 0

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
        attempts = tuple(record_step.attempts) if record_step is not None else ()
        path, _attempt = self.latest_log(run_id, step_name)
        tail = ""
        if path is not None:
            try:
                tail = read_log(path, tail_lines=LOG_TAIL_LINES)
                if len(tail) > LOG_TAIL_CHARS:
                    tail = "…" + tail[-LOG_TAIL_CHARS:]
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
        """Start ``workflow_name`` with ``params``; return the run id.

        In process mode the run gets its own detached process (it goes on when the
        dashboard quits); the parameters are checked here first, so mistakes show at once.

        Raises:
            WorkflowNotFoundError, WorkflowValidationError, WorkflowExecutionError: as
                ``WorkflowManager.start_workflow``.
            OrchestrationError: the run's process could not be started.
        """
        if self.run_mode == "inline":
            return self.manager.start_workflow(workflow_name, params).run_id
        workflow = self.manager.require_workflow(workflow_name)
        resolve_params(workflow, params)
        run_id = launch_run(workflow, state_dir=self.state_dir, params=params, max_workers=self._max_workers)
        self._launched[run_id] = workflow
        return run_id

    def cancel_run(self, run_id: str) -> bool:
        """Cancel run ``run_id``, whichever process on this machine runs it.

        Returns True when the cancel went to a process known to own the run (this one,
        or one whose live file lists it); False means the request waits for an owner.

        Raises:
            OrchestrationError: the request cannot be written.
        """
        handle = self.manager.get_run(run_id)
        if handle is not None and handle.cancel():
            return True
        request_cancel(self.state_dir, run_id)
        return self._owned_elsewhere(run_id)

    def cancel_step(self, run_id: str, step: str) -> bool:
        """Cancel one unfinished step of run ``run_id``, whichever process runs it.

        Returns True when the cancel went to a process known to own the run.

        Raises:
            OrchestrationError: the step name is not valid, or the request cannot be written.
        """
        if self.manager.get_run(run_id) is not None:
            for task in self.orchestrator.get_tasks():
                if task.run_id == run_id and task.name == step:
                    return self.orchestrator.cancel_task(task.id)
            return False
        request_cancel(self.state_dir, run_id, step)
        return self._owned_elsewhere(run_id)

    def _owned_elsewhere(self, run_id: str) -> bool:
        return any(run_id in p.run_ids for p in self._live.read(exclude_pid=os.getpid()))

    def resume_run(self, run_id: str) -> str:
        """Start a run that redoes ``run_id``'s unfinished steps, reusing committed outputs.

        Returns the new run's id.

        Raises:
            StoreError: there is no such run, or it completed.
            WorkflowValidationError: its workflow or parameters are no longer valid.
        """
        workflow, params, preset = plan_resume(self.store, run_id)
        if self.run_mode == "process":
            new_run = launch_resume(run_id, state_dir=self.state_dir, max_workers=self._max_workers)
            self._launched[new_run] = workflow
            return new_run
        new_run = new_id("run")
        self.recorder.expect_resume(new_run, run_id, preset)
        # Claimed in the store first: a resume of the same run elsewhere meanwhile stops this one.
        # This runs on the UI thread, so it waits for the write lock (a few ms, as a rule)
        # at most _CLAIM_WAIT seconds, then asks the user to retry.
        return self.recorder.start_run(self.manager, workflow, params, preset_outputs=preset, run_id=new_run,
                                       claim_timeout=_CLAIM_WAIT).run_id

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
        project = self.projects.create_project(request.name, request.template, description=request.description)
        self.reload_catalog()
        return project

    def project_templates(self) -> list[str]:
        """Return the names of the templates a project can be created from (built-in and the user's)."""
        return self.projects.list_templates()

    def close(self) -> None:
        """Release everything (idempotent); inline runs are cancelled, detached ones go on."""
        if self._closed:
            return
        self._closed = True
        if self._publisher is not None:
            self._publisher.stop()
        self.manager.shutdown()
        self.orchestrator.shutdown(wait=True, cancel_running=True)
        self.projects.close()
        self.watcher.wait_for_recovery(timeout=10.0)  # its writes land before the store closes
        if self._owns_store:
            self.store.close()
