"""``orchtui run`` (headless run with live progress), ``orchtui status`` and ``orchtui health``.

``run`` exit codes: 0 the run completed; 1 it failed, or the workflow or its parameters
are invalid; 130 it was cancelled with Ctrl-C, 143 by SIGTERM, 129 by SIGHUP. Each of
them cancels the run cleanly (see :mod:`orchtui.cli.foreground`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from core.config import Settings, load_settings
from core.errors import OrchestrationError, StoreError
from core.models import Workflow, WorkflowExecution, WorkflowStatus
from core.text import terminal_safe

from .common import (
    CONTEXT_SETTINGS,
    EXIT_FAILED,
    EXIT_OK,
    StdoutConsole,
    emit_json,
    handle_errors,
    json_option,
    keep_stdout_for_json,
    published,
    param_option,
)
from .foreground import Interrupts, final_execution, follow_run
from .workflow_target import find_workflow

__all__ = ["register"]


def _recorder(settings: Settings, resources: Any) -> tuple[Any, Any]:
    """Return ``(recorder, store)`` recording into the run store, or ``(None, None)``.

    A store that cannot open does not stop the run: it runs unrecorded, with a warning.
    """
    from core.run_recorder import StoreRecorder
    from core.store import Store

    try:
        store = Store.open(settings)
    except OrchestrationError as exc:
        click.secho(f"warning: this run will not be recorded: {exc.message}", fg="yellow", err=True)
        return None, None
    return StoreRecorder(store, resource_manager=resources), store


def _close_store(store: Any) -> None:
    """Commit the run's last writes; a write that failed is reported, not hidden."""
    try:
        store.flush()
    except StoreError as exc:
        click.secho(f"warning: the run was not fully recorded: {exc.message}", fg="yellow", err=True)
    finally:
        store.close()


def _execute(
    workflow: Workflow, params: dict[str, Any], *, settings: Settings, max_workers: int | None,
    console: Console, quiet: bool, record: bool, run_id: str | None = None,
    executor: str = "thread", scheduler: str | None = None, working_dir: Path | None = None,
) -> tuple[WorkflowExecution, int, list[Any], str | None]:
    """Run ``workflow`` to its end (its steps in ``working_dir`` when given); returns
    (execution, the exit code of the signal that cancelled it or 0, progress rows, log dir)."""
    from core.executors import create_backend
    from core.logs import claim_log_dir
    from core.resource_manager import ResourceManager
    from core.store import prepare_state_directory
    from core.task_orchestrator import TaskOrchestrator
    from core.workflow_manager import WorkflowManager

    # Step logs are written there even when the store does not record the run: a state
    # directory that cannot be written stops the run before anything starts.
    prepare_state_directory(settings.state_dir)
    resources = ResourceManager()
    workers = max_workers or settings.max_workers
    options = {"scheduler": scheduler or settings.dask_scheduler} if executor == "dask" else {}
    # Built before the store opens: an unreachable scheduler fails fast with nothing recorded.
    backend = create_backend(executor, workers, **options)
    if executor == "dask" and max_workers is None:
        workers = backend.capacity or workers  # a cluster's threads, not this machine's default
    orchestrator = TaskOrchestrator(workers, resource_manager=resources, backend=backend)
    recorder, store = _recorder(settings, resources) if record else (None, None)
    observers = [recorder] if recorder is not None else []
    manager = WorkflowManager(settings=settings, orchestrator=orchestrator, resource_manager=resources,
                              observers=observers, autoload=False)
    interrupted = False
    # The handlers stay through the shutdown: a signal then must not kill this process
    # before the step trees are gone.
    with Interrupts() as interrupts:
        try:
            if run_id is not None and recorder is None:
                claim_log_dir(settings.runs_dir, run_id)  # a recorded run claims it with its store row
            # The live file lets dashboards show this run's queues and cancel it from elsewhere.
            with published(orchestrator, manager, settings.state_dir, f"orchtui run {workflow.name}"):
                if recorder is not None and run_id is not None:
                    # A chosen id is claimed in the store first: a taken one stops the run before anything runs.
                    handle = recorder.start_run(manager, workflow, params, run_id=run_id, working_dir=working_dir)
                else:
                    handle = manager.start_workflow(workflow, params, run_id=run_id, working_dir=working_dir)
                if store is not None and not quiet:
                    console.print(f"run id: {handle.run_id}", highlight=False)
                interrupted = follow_run(handle, interrupts, quiet=quiet, console=console,
                                         snapshot=orchestrator.snapshot)
        finally:
            interrupts.following = False
            # Kills whatever still runs (after a second signal) and waits for the process trees to go.
            orchestrator.shutdown(wait=True, cancel_running=True)
            if store is not None:
                _close_store(store)
    execution = final_execution(handle)
    rows = handle.step_progress()
    return execution, interrupts.exit_code if interrupted else 0, rows, str(handle.log_dir) if handle.log_dir else None


@click.command("run", context_settings=CONTEXT_SETTINGS)
@click.argument("target", metavar="FILE|NAME")
@param_option
@click.option("--max-workers", type=click.IntRange(min=1), default=None,
              help="Steps running at once (default: setting max_workers / ORCHTUI_MAX_WORKERS).")
@click.option("--no-record", is_flag=True, help="Do not record the run in the store.")
@click.option("--run-id", default=None, metavar="ID",
              help="The id to give the run (default: a new one); the dashboard picks it before starting the run.")
@click.option("--executor", type=click.Choice(["thread", "process", "dask"]), default="thread", show_default=True,
              help="Where steps run: threads, a child process per step, or a Dask cluster.")
@click.option("--scheduler", metavar="ADDRESS", default=None,
              help="Dask scheduler (tcp://HOST:8786) for --executor dask; default: setting dask_scheduler / "
                   "ORCHTUI_DASK_SCHEDULER, else a local cluster.")
@click.option("--project", "project_name", metavar="PROJECT", default=None,
              help="Run the workflow NAME of this project, in its directory, and count it in its metrics.")
@json_option
@handle_errors
def run_cmd(target: str, params: tuple[str, ...], max_workers: int | None, no_record: bool, run_id: str | None,
            executor: str, scheduler: str | None, project_name: str | None, as_json: bool) -> None:
    """Run a workflow headless, showing each step's progress live.

    FILE|NAME is a workflow file, or the name of a workflow in the workflows
    directory (with --project, of that project's workflows/). Ctrl-C, SIGTERM or
    SIGHUP cancels the run cleanly (no step process is left behind); a second one
    stops waiting for the steps' grace period.

    \b
    Exit codes: 0 completed, 1 failed or invalid, 130 cancelled with Ctrl-C,
    143 by SIGTERM, 129 by SIGHUP.
    """
    from core.workflow_params import coerce_cli_params, resolve_params
    from ..progress import summary_table

    if scheduler and executor != "dask":
        raise click.UsageError("--scheduler needs --executor dask")
    settings = load_settings()
    if as_json:
        keep_stdout_for_json()
    console = StdoutConsole(highlight=False)
    working_dir = None
    if project_name is not None:
        workflow, working_dir = _project_workflow(settings, project_name, target)
    else:
        workflow = find_workflow(target, settings)
    values = coerce_cli_params(workflow, params)
    resolve_params(workflow, values)  # every parameter problem now, not just the first later
    execution, interrupted, rows, log_dir = _execute(
        workflow, values, settings=settings, max_workers=max_workers, console=console, quiet=as_json,
        record=not no_record, run_id=run_id, executor=executor, scheduler=scheduler, working_dir=working_dir)
    if project_name is not None:
        _count_project_run(settings, project_name, execution)
    code = EXIT_OK if execution.success else (interrupted or EXIT_FAILED)
    if as_json:
        emit_json(execution.to_dict() | {"log_dir": log_dir})
        sys.exit(code)
    if not console.is_terminal or not execution.success:
        # The live view already shows a successful run's final state; logs and
        # failures get the full table, with untruncated errors.
        console.print()
        console.print(summary_table(execution, rows, unicode=(console.encoding or "").lower().startswith("utf")),
                      soft_wrap=True)
    style = {WorkflowStatus.COMPLETED: "bold green", WorkflowStatus.CANCELLED: "bold magenta"}.get(
        execution.status, "bold red")
    console.print(
        f"{execution.workflow_name}: {execution.status.value} in {execution.execution_time:.2f}s — "
        f"{execution.executed_steps}/{len(execution.step_status)} steps completed"
        + (f", failed: {', '.join(execution.failed_steps)}" if execution.failed_steps else "")
        + (f", skipped: {', '.join(execution.skipped_steps)}" if execution.skipped_steps else ""),
        style=style, highlight=False)
    if execution.error:
        console.print(f"error: {terminal_safe(execution.error)}", style="red", highlight=False, markup=False)
    if log_dir:
        console.print(f"logs: {log_dir}", style="dim", highlight=False)
    sys.exit(code)


def _project_workflow(settings: Settings, project_name: str, name: str) -> tuple[Workflow, Path]:
    """Return the project's workflow ``name`` and the project's directory (a planning
    project becomes active)."""
    from core.project_manager import ProjectManager

    with ProjectManager(settings=settings) as projects:
        _project, workflow, directory = projects.prepare_project_run(project_name, name)
    return workflow, directory


def _count_project_run(settings: Settings, project_name: str, execution: WorkflowExecution) -> None:
    """Count the run in the project's metrics; a failure to is a warning, not the run's."""
    from core.project_manager import ProjectManager

    try:
        with ProjectManager(settings=settings) as projects:
            projects.record_project_run(project_name, execution.workflow_name, execution.run_id, execution.to_dict())
    except OrchestrationError as exc:
        click.secho(f"warning: the run was not counted in project {project_name}: {exc.message}", fg="yellow",
                    err=True)


def _engine() -> Any:
    from core.orchestration_engine import OrchestrationEngine

    return OrchestrationEngine(settings=load_settings())


@click.command("status", context_settings=CONTEXT_SETTINGS)
@json_option
@handle_errors
def status_cmd(as_json: bool) -> None:
    """Show the orchestrator's status: workflows, resources, and runs in the store."""
    engine = _engine()
    try:
        status = engine.get_system_status()
    finally:
        engine.shutdown()
    status["runs"], why = _store_runs()
    if status["runs"] is None:
        status["runs_error"] = why
    if as_json:
        emit_json(status)
        return
    wm = status["workflow_manager"]
    click.echo(f"workflows: {wm['total_workflows']} in {load_settings().workflows_dir}")
    resources = status["resource_manager"]
    for rid, usage in resources.get("resources", {}).items():
        click.echo(f"resource {rid}: {_usage_text(usage)}")
    runs = status["runs"]
    if runs is None:
        click.echo(f"runs: the run store is not available: {status['runs_error']}")
        return
    active = [r for r in runs if r["status"] == WorkflowStatus.RUNNING.value]
    click.echo(f"runs: {len(active)} running, {len(runs)} recent")
    for run in runs[:10]:
        click.echo(f"  {run['run_id']}  {run['workflow']:<24} {run['status']}")


def _usage_text(usage: dict[str, Any]) -> str:
    current = usage.get("current") or {}
    capacity = usage.get("capacity") or {}
    parts = [f"{current.get(unit, 0):g}/{cap:g} {unit}" for unit, cap in capacity.items()]
    return ", ".join(parts) or "—"


def _store_runs(limit: int = 20) -> tuple[list[dict[str, Any]] | None, str]:
    """Return the newest runs in the store as plain dicts (none when there is no store
    yet) and "", or None and why the store cannot be read. Creates nothing."""
    settings = load_settings()
    if not settings.db_path.exists():
        state = settings.db_path.parent
        nearest = next((path for path in (state, *state.parents) if path.exists()), None)
        if nearest is not None and not nearest.is_dir():  # a file where the state directory would go
            where = "exists but is not a directory" if nearest == state else f"cannot be made: {nearest} is a file"
            return None, f"the state directory {state} {where}; set ORCHTUI_DIR to another directory"
        return [], ""
    from core.store import Store

    try:
        with Store.open_for_reading(settings, recover=False) as store:
            views = store.run_views(limit=limit)
    except OrchestrationError as exc:
        return None, exc.message
    return [{"run_id": v.run_id, "workflow": v.workflow, "status": v.status.value, "started_at": v.started_at,
             "finished_at": v.finished_at, "error": v.error} for v in views], ""


# Above this size ``health`` skips the page-by-page integrity check unless asked
# (``--full``): it reads the whole file, and a monitoring probe runs often.
_FULL_CHECK_UP_TO = 256 * 1024 * 1024


def _store_health(settings: Settings, *, full: bool = False) -> dict[str, Any]:
    """The run store as a health component: unhealthy when it cannot open, cannot be
    written (read-only file or directory, full disk) or its file is damaged; with no
    database yet, when the directory it would be created in cannot be written."""
    from core.store import Store

    details: dict[str, Any] = {"path": str(settings.db_path)}
    if not settings.db_path.exists():
        problem = _unwritable_dir_problem(settings.db_path.parent)
        if problem is not None:
            return {"status": "unhealthy", "details": details | {"error": problem}}
        return {"status": "healthy", "details": details | {"runs": 0, "note": "no run recorded yet"}}
    size = settings.db_path.stat().st_size
    checked = full or size <= _FULL_CHECK_UP_TO
    try:
        with Store.open(settings, recover=False) as store:
            problem = store.integrity_problem() if checked else None
            if problem is None:
                store.require_writable()
    except OrchestrationError as exc:
        problem = exc.message
    if problem is not None:
        return {"status": "unhealthy", "details": details | {"error": problem}}
    if not checked:
        details["note"] = (f"integrity check skipped ({size // (1024 * 1024)} MB); "
                           "`orchtui health --full` reads every page")
    return {"status": "healthy", "details": details}


def _unwritable_dir_problem(directory: Path) -> str | None:
    """Return why no file can be created in ``directory`` (or, while it does not exist,
    in its nearest existing parent, where it would be made), or None when one can.

    A real file is created and removed: permissions, a read-only mount, the immutable
    flag and a full disk all show, also to root.
    """
    import tempfile

    existing = directory
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        return (f"{existing}: cannot create the run store there ({(exc.strerror or str(exc)).lower()}); "
                "runs would not be recorded; fix its permissions or set ORCHTUI_DIR")
    return None


@click.command("health", context_settings=CONTEXT_SETTINGS)
@click.option("--full", is_flag=True,
              help="Check every page of the run store, also when it is over 256 MB (slow on a big store).")
@json_option
@handle_errors
def health_cmd(full: bool, as_json: bool) -> None:
    """Check every component; exit 1 when the system is unhealthy."""
    engine = _engine()
    try:
        health = engine.health_check()
    finally:
        engine.shutdown()
    store = _store_health(load_settings(), full=full)
    health["components"]["store"] = store
    if store["status"] != "healthy":
        health["overall_status"] = "unhealthy"
        health["issues"].append(f"store: {store['details']['error']}")
    if as_json:
        emit_json(health)
    else:
        click.echo(f"overall: {health['overall_status']}")
        for name, component in health["components"].items():
            click.echo(f"  {name}: {component['status']}")
        for issue in health["issues"]:
            click.echo(f"  issue: {issue}")
    if health["overall_status"] == "unhealthy":
        sys.exit(EXIT_FAILED)


def register(group: click.Group) -> None:
    """Add ``run``, ``status`` and ``health`` to the ``orchtui`` command group."""
    group.add_command(run_cmd)
    group.add_command(status_cmd)
    group.add_command(health_cmd)
