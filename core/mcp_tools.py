"""OrchestrationMCPTools: the orchestrator as tools for AI agents (spec 001, 004).

Fourteen tools: the ten of spec 001 (execute_workflow, create_workflow, list_workflows,
create_project, list_projects, execute_task, get_system_status, get_health_status,
allocate_resources, create_complex_workflow) and four an agent needs to follow up on a
run (get_run_status, get_step_logs, cancel_run, list_runs). :meth:`get_tool_definitions`
describes them with JSON Schemas (:mod:`core.mcp_schemas`); :meth:`execute_tool` checks
the arguments against the schema, runs the tool, and always returns a dict: the spec's
``{"success": True, ...}`` or the spec-002 error dict. It never raises.

This module is pure core: it does not import the MCP SDK, so ``get_mcp_tools()`` works
without it. ``orchtui mcp`` (``orchtui/mcp_server.py``) serves these tools over stdio.

Safety (DESIGN.md, security rules):

* ``execute_workflow`` runs only workflows the server knows: the workflows directory,
  the registered projects' workflow files, and workflows created in this session.
  Workflow files on disk are the operator's and run as written.
* Workflows that arrive over MCP (create_workflow, create_complex_workflow,
  execute_task) may not use ``shell`` or ``python`` steps unless the server was made
  with ``allow_shell`` / ``allow_python``, nor plugin actions without ``allow_plugins``
  (orchtui cannot know what a plugin does with the text it is given: a plugin that
  writes a file named by its parameters lets an agent write code that a workflow file
  then runs); unknown actions are refused up front; a
  workflow not created in this session cannot be replaced.
* Path arguments are resolved and must lie inside the working directory; names are
  validated by the core (workflow, step, project, run ids).
* Parameter values an agent gives to a workflow with steps that can touch files (any
  module but ``builtin``), and the parameters of plugin steps it defines, may not name a
  place outside the working directory, the run's project directory, or a directory the
  operator allowed (:mod:`core.path_confinement`): a bundled ``rm -rf {{ params.dir }}``
  must not become ``rm -rf /home``.
* Runs go to the same store as every other face, so the dashboard shows them live.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import mcp_runs
from .config import Settings
from .errors import OrchestrationError, ResourceAllocationError, StoreError, error_dict
from .interfaces import ParameterGuard
from .mcp_runs import ProgressCallback, jsonable
from .mcp_schemas import TOOL_SPECS, ToolSpec, schema_problem
from .models import ProjectStatus, Workflow, WorkflowStatus, new_id
from .path_confinement import FILE_SAFE_MODULES, PathRefusal, file_reaching_params, refused_path
from .text import did_you_mean
from .workflow_run import RunHandle

if TYPE_CHECKING:
    from .orchestration_engine import OrchestrationEngine
    from .project_manager import ProjectManager
    from .store import Store
    from .workflow_manager import WorkflowManager

__all__ = ["OrchestrationMCPTools", "MCPToolError", "ActionNotAllowedError", "TOOLS_THAT_WAIT"]

log = logging.getLogger(__name__)

_RESTRICTED_MODULES = ("shell", "python")
_KEPT_HANDLES = 1000  # finished runs remembered for cancel_run / get_run_status
_CANCEL_WAIT_SECONDS = 10.0


def _runs_anything(workflow: Workflow) -> bool:
    """True when ``workflow`` has a shell or python step (which can do anything by itself)."""
    return any(step.module in _RESTRICTED_MODULES for step in workflow.steps)


class MCPToolError(OrchestrationError):
    """A tool was called with arguments it cannot act on (unknown tool, bad argument, path)."""

    error_code = "INVALID_ARGUMENT"


class ActionNotAllowedError(MCPToolError):
    """A workflow sent over MCP uses a module the operator did not allow (shell, python)."""

    error_code = "ACTION_NOT_ALLOWED"


class OrchestrationMCPTools:
    """The MCP tools over an :class:`~core.orchestration_engine.OrchestrationEngine`.

    Parameters
    ----------
    engine : OrchestrationEngine, optional
        Where workflows run. Default: the process's engine (``get_orchestration_engine``)
        when ``settings`` is None, otherwise a private engine built for ``settings``
        that records runs in that state directory's store (closed by :meth:`close`).
    allow_shell, allow_python, allow_plugins : bool
        Let workflows created over MCP use ``shell`` / ``python`` / plugin steps.
    workdir : Path or str, optional
        Path arguments must stay inside it (default: the working directory).
    allowed_paths : iterable of Path or str
        More directories that parameter values may name (``orchtui mcp --allow-path``).
    settings : Settings, optional
        Directories and limits (default: the engine's).

    Raises
    ------
    StoreError
        A private engine's run store cannot be opened.
    """

    def __init__(
        self,
        engine: OrchestrationEngine | None = None,
        *,
        allow_shell: bool = False,
        allow_python: bool = False,
        allow_plugins: bool = False,
        workdir: Path | str | None = None,
        allowed_paths: Iterable[Path | str] = (),
        settings: Settings | None = None,
    ) -> None:
        self.allow_shell = allow_shell
        self.allow_python = allow_python
        self.allow_plugins = allow_plugins
        self.workdir = Path(workdir if workdir is not None else Path.cwd()).resolve()
        self.allowed_paths = tuple(Path(p).expanduser().resolve() for p in allowed_paths)
        self._closers: list[Callable[[], None]] = []  # what close() undoes, in reverse order
        if engine is None:
            if settings is None:
                from .singletons import get_orchestration_engine

                engine = get_orchestration_engine()
            else:
                engine = self._build_engine(settings)
        self.engine = engine
        self.settings = settings or engine.settings
        self._store: Store | None = getattr(engine, "store", None)
        self._projects: ProjectManager | None = getattr(engine, "project_manager", None)
        self._lock = threading.Lock()
        self._created: dict[str, Workflow] = {}  # workflows defined over MCP in this session
        self._handles: dict[str, RunHandle] = {}  # runs this server started
        self._specs: dict[str, ToolSpec] = {spec.name: spec for spec in TOOL_SPECS}
        # Set when the server stops: every tool waiting for a run returns at once, so
        # the server can go and ``close`` cancel the runs.
        self.stopping = threading.Event()

    def _build_engine(self, settings: Settings) -> OrchestrationEngine:
        """Build an engine for ``settings`` whose runs are recorded in its store."""
        from .events import EventBus
        from .orchestration_engine import OrchestrationEngine
        from .project_manager import ProjectManager
        from .resource_manager import ResourceManager
        from .run_recorder import StoreRecorder
        from .store import Store
        from .task_orchestrator import TaskOrchestrator
        from .workflow_manager import WorkflowManager

        store = Store.open(settings)
        self._closers.append(store.close)
        events = EventBus("orchtui-mcp-events")
        self._closers.append(events.close)
        resources = ResourceManager()
        orchestrator = TaskOrchestrator(settings.max_workers, resource_manager=resources, events=events)
        self._closers.append(lambda: orchestrator.shutdown(wait=True, cancel_running=True))
        manager = WorkflowManager(settings=settings, orchestrator=orchestrator, resource_manager=resources,
                                  events=events, observers=[StoreRecorder(store, resource_manager=resources)])
        self._closers.append(manager.shutdown)
        projects = ProjectManager(settings=settings, store=store, workflow_manager=manager)
        self._closers.append(projects.close)
        engine = OrchestrationEngine(settings=settings, workflow_manager=manager, task_orchestrator=orchestrator,
                                     resource_manager=resources, project_manager=projects, store=store,
                                     events=events)
        self._closers.append(engine.shutdown)
        return engine

    def close(self) -> None:
        """Cancel this server's runs and shut down what it built (never a shared engine)."""
        self.stopping.set()
        with self._lock:
            running = [handle for handle in self._handles.values() if not handle.done()]
        for handle in running:
            handle.cancel()
        deadline = time.monotonic() + _CLOSE_WAIT_SECONDS  # for them all: the server must go
        for handle in running:
            # A run is done once its end is recorded: the store must not close before.
            handle.wait(max(0.0, deadline - time.monotonic()))
        closers, self._closers = self._closers, []
        for closer in reversed(closers):
            closer()

    def __enter__(self) -> OrchestrationMCPTools:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ plumbing

    @property
    def workflows(self) -> WorkflowManager:
        """The workflow manager runs go through (it records them in the store)."""
        return self.engine.workflow_manager

    @property
    def store(self) -> Store:
        """The run store that run reads come from (opened on first use if the engine has none)."""
        with self._lock:
            if self._store is None:
                from .store import Store

                self._store = Store.open(self.settings)
                self._closers.insert(0, self._store.close)  # closed last: the others may still write
            return self._store

    @property
    def projects(self) -> ProjectManager:
        """The project manager (the engine's, or one sharing its store and workflow manager)."""
        store = self.store
        with self._lock:
            if self._projects is None:
                from .project_manager import ProjectManager

                self._projects = ProjectManager(settings=self.settings, store=store, workflow_manager=self.workflows)
                self._closers.append(self._projects.close)
            return self._projects

    def _remember(self, handle: RunHandle) -> None:
        with self._lock:
            self._handles[handle.run_id] = handle
            if len(self._handles) > _KEPT_HANDLES:
                for run_id in [r for r, h in self._handles.items() if h.done()][: len(self._handles) - _KEPT_HANDLES]:
                    del self._handles[run_id]

    def _inside_workdir(self, raw: str, what: str) -> Path:
        """Return ``raw`` resolved, after checking it lies strictly inside the working directory.

        Raises:
            MCPToolError: it resolves to the working directory itself, outside it, or into
                (or around) the state or a workflows directory.
        """
        roots = [self.workdir]
        found = refused_path(raw, base=self.workdir, roots=roots, protected=self._protected_dirs(), where=what)
        if found is not None:
            raise self._refusal_error(found, roots, widenable=False)
        return (self.workdir / Path(raw).expanduser()).resolve()

    def _protected_dirs(self) -> list[Path]:
        """Return the directories no parameter may name: the state directory and every workflows directory."""
        dirs = [Path(self.settings.state_dir), Path(self.workflows.config_dir)]
        dirs += [Path(project.path) / "workflows" for project in self.projects.list_projects(include_archived=True)]
        return [directory.resolve() for directory in dirs]

    def _confinement(self, working_dir: Path | None) -> tuple[Path, list[Path], list[Path]]:
        """Return ``(base, roots, protected)`` for a run in ``working_dir`` (None: this process's).

        Relative paths start where the run's steps start; a project's run may also name
        places in its project directory.
        """
        base = (working_dir if working_dir is not None else Path.cwd()).resolve()
        roots = list(dict.fromkeys((self.workdir, *([base] if working_dir is not None else []), *self.allowed_paths)))
        return base, roots, self._protected_dirs()

    @staticmethod
    def _refusal_error(found: PathRefusal, roots: list[Path], *, widenable: bool = True) -> MCPToolError:
        """The error for ``found``; ``widenable`` when ``--allow-path`` would admit the place."""
        message = found.sentence()
        outside = found.code == "PATH_OUTSIDE_WORKDIR" and found.resolved is not None and found.resolved not in roots
        if outside and widenable:
            message += (f" ({', '.join(map(str, roots))}); give a path inside them, or ask the operator to start "
                        f"the server with --allow-path {found.resolved}")
        elif outside:
            message += f" ({roots[0]}); give a path inside the server's working directory"
        return MCPToolError(
            message, error_code=found.code,
            details={"parameter": found.where, "value": found.value,
                     "resolved": str(found.resolved) if found.resolved is not None else None,
                     "allowed": [str(root) for root in roots]},
            suggestions=["give a path inside the working directory, outside its state and workflows directories"])

    def _confine(self, value: Mapping[str, Any], where: str, *, working_dir: Path | None) -> None:
        """Refuse ``value`` (an agent's parameters) when a string in it names a place agents may not name.

        Raises:
            MCPToolError: ``PATH_OUTSIDE_WORKDIR`` or ``PATH_PROTECTED``, naming the value and where it leads.
        """
        if not value:
            return
        base, roots, protected = self._confinement(working_dir)
        # The names of the parameters are not paths, only what is in them.
        for name, item in value.items():
            found = refused_path(item, base=base, roots=roots, protected=protected, where=f"{where}.{name}")
            if found is not None:
                raise self._refusal_error(found, roots)

    def _confine_parameters(self, workflow: Workflow, params: Mapping[str, Any], *,
                            working_dir: Path | None) -> None:
        """Refuse an agent's ``params`` for ``workflow`` that name places agents may not name.

        Only parameters that can reach a step that touches files are checked
        (:func:`~core.path_confinement.file_reaching_params`).

        Raises:
            MCPToolError: see :meth:`_confine`.
        """
        reaching = file_reaching_params(workflow)
        self._confine({name: value for name, value in params.items() if name in reaching}, "params",
                      working_dir=working_dir)

    def _parameter_guard(self, working_dir: Path | None) -> ParameterGuard:
        """Return a guard that refuses plugin steps whose resolved parameters name forbidden places.

        For workflows an agent defined: their plugin steps' parameters are the agent's
        text, and references (``{{ echo.output }}``) can carry a path past the check made
        before the run, so the dispatcher checks them again once resolved.
        """
        base, roots, _ = self._confinement(working_dir)

        def guard(step: str, module: str, parameters: dict[str, Any]) -> str | None:
            if module in FILE_SAFE_MODULES or module in _RESTRICTED_MODULES:
                return None
            protected = self._protected_dirs()  # now: a project created since the run began counts
            for name, item in parameters.items():
                found = refused_path(item, base=base, roots=roots, protected=protected, where=f"parameter {name}")
                if found is not None:
                    return self._refusal_error(found, roots).message
            return None

        return guard

    def _check_definition(self, workflow: Workflow) -> None:
        """Refuse a workflow from MCP that uses a module not allowed here, or an unknown action.

        Raises:
            ActionNotAllowedError: a ``shell`` / ``python`` step without the operator's flag.
            MCPToolError: a step names an unknown module or action, or needs impossible resources.
        """
        allowed = {"shell": self.allow_shell, "python": self.allow_python}
        for step in workflow.steps:
            if step.module in _RESTRICTED_MODULES and not allowed[step.module]:
                raise self._not_allowed(step.name, f"a {step.module} action", step.module)
        problems = self.workflows.action_problems(workflow)
        if problems:
            step, problem = next(iter(problems.items()))
            raise MCPToolError(f"step {step!r} cannot run: {problem}", error_code="STEP_CANNOT_RUN",
                               details={"problems": problems})
        for step in workflow.steps:
            if step.module not in FILE_SAFE_MODULES and step.module not in _RESTRICTED_MODULES:
                if not self.allow_plugins:
                    raise self._not_allowed(step.name, f"the plugin action {step.module}.{step.action}", "plugins")
                # The agent wrote these values too (checked again when the step starts).
                self._confine(step.parameters, f"steps.{step.name}.parameters", working_dir=None)
        if not _runs_anything(workflow):
            defaults = {name: param.default for name, param in workflow.params.items() if param.default is not None}
            self._confine_parameters(workflow, defaults, working_dir=None)

    @staticmethod
    def _not_allowed(step: str, what: str, flag: str) -> ActionNotAllowedError:
        return ActionNotAllowedError(
            f"step {step!r} uses {what}, which this MCP server does not allow; "
            f"the operator must start it with --allow-{flag}",
            details={"step": step, "flag": f"--allow-{flag}"},
            suggestions=["use builtin actions", f"ask the operator to restart with --allow-{flag}"])

    def _define(self, data: dict[str, Any]) -> Workflow:
        """Validate a workflow definition from MCP and register it for this session.

        Raises:
            WorkflowValidationError: the definition is invalid (every problem listed).
            ActionNotAllowedError, MCPToolError: see :meth:`_check_definition`; or the
                name belongs to a workflow this session did not create.
        """
        from .workflow_file import workflow_from_dict

        workflow = workflow_from_dict(data, filename="<mcp>")
        self._check_definition(workflow)
        with self._lock:
            existing = self.workflows.get_workflow(workflow.name)
            # A name a file of the workflows directory declares (even an invalid one, or
            # two files) is the operator's: the next reload of the directory would take it back.
            if self.workflows.refusal(workflow.name) is not None and workflow.name not in self._created:
                raise MCPToolError(
                    f"workflow {workflow.name!r} is declared by a file of the workflows directory; choose another name",
                    error_code="WORKFLOW_EXISTS", details={"workflow_name": workflow.name})
            if existing is not None and self._created.get(workflow.name) is not existing:
                raise MCPToolError(
                    f"workflow {workflow.name!r} already exists and was not created over MCP; choose another name",
                    error_code="WORKFLOW_EXISTS", details={"workflow_name": workflow.name})
            workflow = self.workflows.create_workflow(workflow)
            self._created[workflow.name] = workflow
        return workflow

    def _known_workflow(self, name: str, project: str | None) -> tuple[Workflow, Path | None]:
        """Return a workflow the server knows and the working directory it runs in.

        Raises:
            WorkflowNotFoundError: no such workflow (with a did-you-mean).
            ProjectManagementError: unknown or archived project, or no such project workflow.
        """
        if project is not None:
            record = self.projects.require_project(project)
            if record.status == ProjectStatus.ARCHIVED:
                raise MCPToolError(f"project {record.name!r} is archived; its workflows do not run",
                                   error_code="PROJECT_ARCHIVED")
            return self.projects.load_project_workflow(record, name), Path(record.path)
        workflow = self.workflows.get_workflow(name)
        if workflow is None:
            # A file the operator added since the server started is known too.
            self.workflows.load_workflows()
        return self.workflows.require_workflow(name), None

    def _run(self, workflow: Workflow, params: Mapping[str, Any], *, working_dir: Path | None, wait: bool,
             wait_seconds: float | None, progress: ProgressCallback | None, agent_defined: bool,
             stop: threading.Event | None = None) -> dict[str, Any]:
        guard = self._parameter_guard(working_dir) if agent_defined else None
        handle = self.workflows.start_workflow(workflow, dict(params), working_dir=working_dir,
                                               parameter_guard=guard)
        self._remember(handle)
        result = mcp_runs.follow_run(handle, wait=wait, wait_seconds=wait_seconds, progress=progress,
                                     stopped=lambda: self.stopping.is_set() or (stop is not None and stop.is_set()))
        if handle.done():
            # The agent may look the run up elsewhere (`orchtui runs`) right after this returns.
            mcp_runs.flush(self.store)
        return result

    # -------------------------------------------------------------- definitions

    def get_tool_definitions(self) -> list[dict[str, Any]]:
        """Return the MCP definition of every tool: ``name``, ``description``, ``inputSchema``, ``annotations``."""
        return [spec.definition() for spec in TOOL_SPECS]

    def tool_names(self) -> list[str]:
        """Return the names of the tools, in definition order."""
        return [spec.name for spec in TOOL_SPECS]

    def execute_tool(self, name: str, arguments: Mapping[str, Any] | None = None, *,
                     progress: ProgressCallback | None = None, stop: threading.Event | None = None) -> dict[str, Any]:
        """Run tool ``name`` with ``arguments`` and return its result dict; never raises.

        The arguments are checked against the tool's schema first. ``progress`` (used by
        the run tools while they wait) is called as ``progress(done, total, message)``;
        once ``stop`` is set they stop waiting (the client cancelled the request) and
        return the run's id and state, as when ``wait_seconds`` pass.

        Returns
        -------
        dict
            ``{"success": True, ...}``, or the spec-002 error dict (``success: False``,
            ``error``, ``error_type``, ``error_code``, ``details``, ``suggestions``);
            a run that ends failed or cancelled gives ``success: False`` with its outcome.
        """
        try:
            spec = self._specs.get(name)
            if spec is None:
                hint = did_you_mean(name, self._specs)
                raise MCPToolError(
                    f"there is no tool {name!r}; {hint or 'known: ' + ', '.join(self._specs)}",
                    error_code="UNKNOWN_TOOL", suggestions=[hint] if hint else [])
            args = dict(arguments or {}) if isinstance(arguments, Mapping) or arguments is None else arguments
            problem = schema_problem(spec.input_schema, args)
            if problem:
                raise MCPToolError(f"{name}: {problem}", details={"tool": name},
                                   suggestions=["the tool's inputSchema (tools/list) says what it accepts"])
            method = getattr(self, name)
            if spec.name in _WAITING_TOOLS:
                result = method(**args, progress=progress, stop=stop)
            else:
                result = method(**args)
            return jsonable(result)
        except OrchestrationError as exc:
            return jsonable(error_dict(exc))
        except Exception as exc:  # a boundary: the agent gets a result, the server keeps running
            log.exception("MCP tool %s failed unexpectedly", name)
            return jsonable(error_dict(exc))

    # -------------------------------------------------------------------- tools

    def execute_workflow(
        self, workflow_name: str, parameters: Mapping[str, Any] | None = None, *, project: str | None = None,
        wait: bool = True, wait_seconds: float | None = None, progress: ProgressCallback | None = None,
        stop: threading.Event | None = None,
    ) -> dict[str, Any]:
        """Run a known workflow (of ``project`` when given) and return its outcome.

        Returns the run's result (see :func:`core.mcp_runs.run_outcome`), or with
        ``wait=False`` (or when ``wait_seconds`` pass) its ``run_id`` and live state.

        Raises:
            WorkflowNotFoundError, ProjectManagementError: the workflow is not known.
            WorkflowValidationError: ``parameters`` do not fit the workflow.
            MCPToolError: a parameter names a place outside the allowed directories.
        """
        workflow, working_dir = self._known_workflow(workflow_name, project)
        with self._lock:
            agent_defined = self._created.get(workflow.name) is workflow
        if not (agent_defined and _runs_anything(workflow)):
            # An agent's own workflow with shell or python steps could name any path itself.
            self._confine_parameters(workflow, parameters or {}, working_dir=working_dir)
        return self._run(workflow, parameters or {}, working_dir=working_dir, wait=wait, wait_seconds=wait_seconds,
                         progress=progress, agent_defined=agent_defined, stop=stop)

    def create_workflow(self, name: str, steps: list[dict[str, Any]], description: str = "",
                        params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Define a workflow for this session; returns its name, steps and execution order.

        Raises:
            WorkflowValidationError: the definition is invalid.
            ActionNotAllowedError, MCPToolError: a restricted or unknown action, or a taken name.
        """
        data: dict[str, Any] = {"name": name, "description": description, "steps": steps}
        if params:
            data["params"] = dict(params)
        workflow = self._define(data)
        return {
            "success": True,
            "workflow_name": workflow.name,
            "steps": workflow.step_names,
            "execution_order": self.workflows.get_workflow_execution_order(workflow.steps),
            "params": _params_dict(workflow),
            "message": f"workflow {workflow.name!r} created; run it with execute_workflow",
        }

    def list_workflows(self) -> dict[str, Any]:
        """Return the runnable workflows (name, description, steps, params, origin) and projects' workflows."""
        problems = self.workflows.load_workflows()
        with self._lock:
            created = {name for name, wf in self._created.items() if self.workflows.get_workflow(name) is wf}
        items = []
        for name in self.workflows.list_workflows():
            workflow = self.workflows.get_workflow(name)
            if workflow is None:
                continue
            items.append({
                "name": workflow.name,
                "description": workflow.description,
                "steps": len(workflow.steps),
                "params": _params_dict(workflow),
                "tags": list(workflow.tags),
                "origin": "mcp" if name in created else ("file" if workflow.source_path else "registered"),
            })
        project_workflows: dict[str, list[str]] = {}
        for record in self.projects.list_projects():
            try:
                project_workflows[record.name] = sorted(self.projects.project_workflows(record))
            except OrchestrationError as exc:  # a project whose directory is gone
                problems.append(f"project {record.name}: {exc.message}")
        return {"success": True, "workflows": items, "total": len(items), "project_workflows": project_workflows,
                "problems": problems}

    def create_project(self, name: str, template: str | None = None, description: str = "",
                       path: str | None = None, author: str = "", tags: list[str] | None = None) -> dict[str, Any]:
        """Create a project from a template and return its record.

        Raises:
            MCPToolError: ``path`` leaves the working directory.
            ProjectManagementError: a bad name, an existing project, an unknown template.
        """
        target = self._inside_workdir(path, "project path") if path is not None else None
        project = self.projects.create_project(name, template, target, description=description, author=author,
                                               tags=tags)
        return {"success": True, "project": _project_dict(project),
                "message": f"project {project.name!r} created at {project.path}"}

    def list_projects(self, include_archived: bool = False) -> dict[str, Any]:
        """Return the registered projects (archived ones only when asked)."""
        projects = self.projects.list_projects(include_archived=include_archived)
        return {"success": True, "projects": [_project_dict(p) for p in projects], "total": len(projects)}

    def execute_task(
        self, name: str, module: str, action: str, parameters: Mapping[str, Any] | None = None, *,
        priority: str = "normal", timeout: float | None = None, max_retries: int = 0, wait: bool = True,
        wait_seconds: float | None = None, progress: ProgressCallback | None = None,
        stop: threading.Event | None = None,
    ) -> dict[str, Any]:
        """Run one action as a single-step run; returns the run's outcome plus ``output``.

        Raises:
            WorkflowValidationError: a bad task name or field.
            ActionNotAllowedError, MCPToolError: a restricted or unknown action.
        """
        from .workflow_file import workflow_from_dict

        step: dict[str, Any] = {"name": name, "module": module, "action": action,
                                "parameters": dict(parameters or {}), "priority": priority, "max_retries": max_retries}
        if timeout is not None:
            step["timeout"] = timeout
        workflow = workflow_from_dict({"name": f"task-{name}", "steps": [step]}, filename="<mcp>")
        self._check_definition(workflow)
        result = self._run(workflow, {}, working_dir=None, wait=wait, wait_seconds=wait_seconds, progress=progress,
                           agent_defined=True, stop=stop)
        result["task"] = name
        if "results" in result:
            result["output"] = result["results"].get(name)
        return result

    def get_system_status(self) -> dict[str, Any]:
        """Return the engine's system status plus recent runs and what this server allows."""
        status = self.engine.get_system_status()
        status["recent_runs"] = [mcp_runs.run_summary(r) for r in self.store.list_runs(limit=5)]
        status["mcp"] = {"allow_shell": self.allow_shell, "allow_python": self.allow_python,
                         "allow_plugins": self.allow_plugins,
                         "workdir": str(self.workdir), "workflows_dir": str(self.workflows.config_dir),
                         "allowed_paths": [str(path) for path in self.allowed_paths]}
        return {"success": True, **status}

    def get_health_status(self) -> dict[str, Any]:
        """Return the engine's health: status, uptime, component states, error counts, issues."""
        return {"success": True, **self.engine.get_health_status()}

    def allocate_resources(self, user_id: str, requirements: Mapping[str, Any] | None = None,
                           timeout: float = 0, release: bool = False) -> dict[str, Any]:
        """Reserve ``requirements`` for ``user_id`` (all or nothing), or release what it holds.

        Reservations are held as ``mcp:<user_id>``, so an agent can never release a
        run's or a session's own allocations.

        Raises:
            MCPToolError: no ``requirements`` to allocate.
            ResourceAllocationError: malformed requirements, ones that can never be met,
                or ones still taken when ``timeout`` passes.
        """
        requester = f"mcp:{user_id}"
        resources = self.engine.resource_manager
        if release:
            released = resources.deallocate_resources(requester)
            return {"success": True, "user_id": user_id, "released": released}
        if not requirements:
            raise MCPToolError("allocate_resources needs 'requirements' (or release: true)",
                               suggestions=['e.g. {"cpu": {"cores": 1}, "memory": {"gb": 1}}'])
        granted = resources.allocate_resources(requester, dict(requirements), timeout=timeout)
        if granted is None:
            raise ResourceAllocationError(
                f"the resources asked for by {user_id!r} are in use" + (f" after waiting {timeout:g} s" if timeout else "")
                + "; retry later, wait longer (timeout) or ask for less",
                details={"requirements": jsonable(dict(requirements))},
                suggestions=["get_system_status shows current resource usage"])
        return {"success": True, "user_id": user_id, "allocations": granted,
                "message": "held until allocate_resources(release=true) or the server stops"}

    def create_complex_workflow(
        self, steps: list[dict[str, Any]], dependencies: Mapping[str, Any] | None = None,
        parallel_groups: list[list[str]] | None = None, name: str | None = None, description: str = "",
        params: Mapping[str, Any] | None = None, *, wait: bool = True, wait_seconds: float | None = None,
        progress: ProgressCallback | None = None, stop: threading.Event | None = None,
    ) -> dict[str, Any]:
        """Create a workflow from steps, a dependency map and parallel groups, then run it.

        Returns the run result plus ``execution_order`` (levels) and ``warnings``
        (parallel groups whose members depend on each other).

        Raises:
            MCPToolError: ``dependencies`` or ``parallel_groups`` name unknown steps.
            WorkflowValidationError, ActionNotAllowedError: as :meth:`create_workflow`.
        """
        names = [s.get("name") for s in steps]
        merged = []
        extra = dict(dependencies or {})
        for key, wanted in extra.items():
            if key not in names:
                raise MCPToolError(f"'dependencies' names unknown step {key!r}" + did_you_mean(key, names, sep="; "))
            if not isinstance(wanted, (list, str)):
                raise MCPToolError(f"'dependencies.{key}' must be a step name or a list of step names")
        for step in steps:
            step = dict(step)
            wanted = extra.get(step["name"], [])
            own = step.get("dependencies") or []
            step["dependencies"] = list(dict.fromkeys([*own, *([wanted] if isinstance(wanted, str) else wanted)]))
            merged.append(step)
        for group in parallel_groups or []:
            for member in group:
                if member not in names:
                    raise MCPToolError(f"'parallel_groups' names unknown step {member!r}" + did_you_mean(member, names, sep="; "))
        data: dict[str, Any] = {"name": name or new_id("complex"), "description": description, "steps": merged}
        if params:
            data["params"] = dict(params)
        workflow = self._define(data)
        dag = self.workflows.create_workflow_dag(workflow.steps)
        warnings = [
            f"parallel group {group}: {member!r} depends on {other!r}, so they run one after the other"
            for group in parallel_groups or [] for member in group for other in sorted(dag.upstream(member) & set(group))
        ]
        order = dag.get_execution_levels()
        result = self._run(workflow, {}, working_dir=None, wait=wait, wait_seconds=wait_seconds, progress=progress,
                           agent_defined=True, stop=stop)
        result.update(execution_order=order, warnings=warnings)
        return result

    def get_run_status(self, run_id: str) -> dict[str, Any]:
        """Return a run from the store: status, params, progress and every step.

        Raises:
            StoreError: no run (or several) match ``run_id`` (a prefix is enough).
        """
        result = mcp_runs.run_status(self.store, run_id)
        with self._lock:
            result["managed_by_this_server"] = result["run_id"] in self._handles
        return result

    def get_step_logs(self, run_id: str, step: str, tail_lines: int = 100, attempt: int | None = None) -> dict[str, Any]:
        """Return the last ``tail_lines`` lines of a step's log (its latest attempt unless given).

        Raises:
            StoreError: unknown run or step, or no log yet.
        """
        return mcp_runs.step_log(self.store, run_id, step, tail_lines=tail_lines, attempt=attempt)

    def cancel_run(self, run_id: str) -> dict[str, Any]:
        """Cancel a run this server started; waits briefly for its steps to stop.

        Returns ``cancelled`` (False when it had already ended) and the run's status.

        Raises:
            StoreError: no run matches ``run_id``, or it is live in another process.
        """
        with self._lock:
            handle = self._handles.get(run_id)
        if handle is None:
            record = mcp_runs.run_status(self.store, run_id)
            full = record["run_id"]
            with self._lock:
                handle = self._handles.get(full)
            handle = handle or self.workflows.get_run(full)
            if handle is None:
                if WorkflowStatus(record["status"]).is_terminal:
                    return {"success": True, "run_id": full, "cancelled": False, "status": record["status"],
                            "message": f"run {full} had already ended ({record['status']})"}
                raise StoreError(
                    f"run {full} is running in another orchtui process; cancel it there (this server can only "
                    "cancel runs it started)", error_code="RUN_NOT_OWNED", details={"run_id": full})
        cancelled = handle.cancel()
        handle.wait(_CANCEL_WAIT_SECONDS)
        return {"success": True, "run_id": handle.run_id, "cancelled": cancelled, "status": handle.status.value,
                "message": f"run {handle.run_id} " + ("was cancelled" if cancelled else
                                                       f"had already ended ({handle.status.value})")}

    def list_runs(self, workflow: str | None = None, status: str | None = None, limit: int = 20) -> dict[str, Any]:
        """Return recent runs from the store, newest first (of one workflow / status when given)."""
        runs = mcp_runs.read_runs(self.store, workflow=workflow, status=status, limit=limit)
        return {"success": True, "runs": [mcp_runs.run_summary(r) for r in runs], "total": len(runs)}


# How long closing waits for the cancelled runs to end: their steps' kill grace and more.
_CLOSE_WAIT_SECONDS = 30.0

# Tools that may wait for a run: their methods take a ``progress`` callback and a ``stop`` event.
_WAITING_TOOLS = frozenset({"execute_workflow", "execute_task", "create_complex_workflow"})
TOOLS_THAT_WAIT = _WAITING_TOOLS | {"allocate_resources"}
"""Tools whose call may last long (a run, or resources freed by others): a server runs them
apart from the others, so that any number of them never delays a status read or a cancel."""


def _params_dict(workflow: Workflow) -> dict[str, Any]:
    """Return each declared parameter's default, type, whether it is required, and its help."""
    return {
        name: {"default": p.default, "type": p.type, "required": p.required, "description": p.description}
        for name, p in workflow.params.items()
    }


def _project_dict(project: Any) -> dict[str, Any]:
    return {
        "name": project.name,
        "description": project.description,
        "type": project.type.value,
        "status": project.status.value,
        "path": project.path,
        "template": project.template,
        "workflows": list(project.workflows),
        "tags": list(project.tags),
        "created_at": project.created_at,
    }
