"""Run history from the store: ``runs``, ``show``, ``logs``, ``resume``, ``rerun``, ``prune``.

Every command reads the shared run store, so it sees runs started by any process (the
dashboard, another ``orchtui run``, the MCP server). Opening the store marks runs whose
process died as INTERRUPTED. ``resume`` and ``rerun`` start a new run (linked to the old
one) in this process and show its progress like ``orchtui run``; their exit codes are
``run``'s: 0 completed, 1 failed, 130 cancelled with Ctrl-C, 143 by SIGTERM, 129 by SIGHUP.
"""

from __future__ import annotations

import functools
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from core.config import load_settings
from core.errors import StoreError
from core.logs import LogFile, list_logs, log_path, read_log
from core.logs import follow as follow_log
from core.models import TaskStatus, WorkflowStatus, new_id
from core.store import Store
from core.store_records import RunRecord
from core.store_recovery import owner_gone
from core.text import format_duration, terminal_safe

from ..columns import Column, column_text
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

__all__ = ["register", "parse_age"]

_AGE_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", re.IGNORECASE)
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_STATUS_STYLE = {
    WorkflowStatus.COMPLETED: "green", WorkflowStatus.FAILED: "red", WorkflowStatus.CANCELLED: "magenta",
    WorkflowStatus.INTERRUPTED: "yellow", WorkflowStatus.RUNNING: "cyan",
}
# Step statuses share their names with run statuses, and so their colours.
_STYLE_BY_VALUE = {status.value: style for status, style in _STATUS_STYLE.items()}
_OUTPUT_WIDTH = 80
_RUNS_COLUMNS = tuple(Column(header) for header in ("run", "workflow", "status", "started", "duration"))
_STEP_COLUMNS = tuple(Column(header) for header in ("step", "status", "try", "time", "exit", "error / output"))
_HISTORY_COLUMNS = tuple(Column(header) for header in ("time", "step", "status", "try"))
_POLL = 0.1  # seconds between looks at a followed log and at the store


def parse_age(text: str) -> float:
    """Return the seconds in an age such as ``30d``, ``12h``, ``90m``, ``45s``, ``2w``, or a
    sum of them such as ``1h30m`` (the way ``prune`` prints an age).

    Raises:
        click.BadParameter: the text is not one or more numbers each followed by one of
            s, m, h, d, w.
    """
    parts = _AGE_RE.findall(text)
    if not parts or "".join(f"{number}{unit}" for number, unit in parts) != re.sub(r"\s+", "", text):
        raise click.BadParameter(f"{text!r} is not an age; write a number and a unit, e.g. 30d, 12h, 90m, 1h30m")
    return sum(float(number) * _AGE_UNITS[unit.lower()] for number, unit in parts)


@contextmanager
def _store(*, reading: bool = False) -> Iterator[Store]:
    """The run store here. A command that only reads (``reading``) also reads a store
    that this process may not write, and says what that leaves out."""
    settings = load_settings()
    with (Store.open_for_reading(settings) if reading else Store.open(settings)) as store:
        if store.read_only:
            click.echo(f"note: {settings.state_dir} may not be written here, so runs whose process ended are "
                       "not marked interrupted; showing the runs as recorded", err=True)
        yield store


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts is not None else "-"


def _when_precise(ts: float) -> str:
    """A history time: to the millisecond, since a step's changes are often that close."""
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _seconds(value: float | None) -> str:
    return format_duration(value, unknown="-")


def _short(value: Any) -> str:
    text = terminal_safe(repr(value) if not isinstance(value, str) else value)
    text = text.replace("\n", "\\n")
    return text if len(text) <= _OUTPUT_WIDTH else text[: _OUTPUT_WIDTH - 1] + "…"


def _console() -> Console:
    return StdoutConsole(highlight=False, soft_wrap=False)


# ----------------------------------------------------------------------- runs


@click.command("runs", context_settings=CONTEXT_SETTINGS)
@click.option("--workflow", "-w", default=None, help="Only runs of this workflow.")
@click.option("--status", "-s", type=click.Choice(WorkflowStatus.choices(), case_sensitive=False), default=None,
              help="Only runs in this state.")
@click.option("--limit", "-n", type=click.IntRange(min=1), default=20, show_default=True, help="Newest runs shown.")
@json_option
@handle_errors
def runs_cmd(workflow: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """List recorded runs, newest first, from every process."""
    with _store(reading=True) as store:
        runs = store.list_runs(workflow=workflow, status=status, limit=limit)
    if as_json:
        emit_json([_run_summary(r) for r in runs])
        return
    if not runs:
        click.echo("no runs recorded" + (" matching the filters" if workflow or status else ""))
        return
    rows = [[run.run_id, run.workflow, Text(run.status.value, style=_STATUS_STYLE.get(run.status, "")),
             _when(run.started_at or run.created_at), _seconds(run.duration())] for run in runs]
    _console().print(column_text(_RUNS_COLUMNS, rows), soft_wrap=True)


def _run_summary(run: RunRecord) -> dict[str, Any]:
    return {
        "run_id": run.run_id, "workflow": run.workflow, "status": run.status.value,
        "created_at": run.created_at, "started_at": run.started_at, "finished_at": run.finished_at,
        "duration": run.duration(), "error": run.error, "session_id": run.session_id,
        "owner_pid": run.owner_pid, "parent_run_id": run.parent_run_id,
    }


# ----------------------------------------------------------------------- show


@click.command("show", context_settings=CONTEXT_SETTINGS)
@click.argument("run_id", metavar="RUN")
@click.option("--history", "with_history", is_flag=True,
              help="Also list every status change of every step, oldest first.")
@json_option
@handle_errors
def show_cmd(run_id: str, with_history: bool, as_json: bool) -> None:
    """Show one run: its steps, every attempt, errors and outputs.

    RUN is a run id or its first characters.
    """
    with _store(reading=True) as store:
        run = store.get_run(store.resolve_run_id(run_id))
        assert run is not None  # resolve_run_id found it in the same store
        resumed_by = store.resumed_by(run.run_id)
        history = store.step_history(run.run_id) if with_history else []
    if as_json:
        extra: dict[str, Any] = {"resumed_by": resumed_by}
        if with_history:
            extra["history"] = [entry.to_dict() for entry in history]
        emit_json(run.to_dict() | extra)
        return
    console = _console()
    style = _STATUS_STYLE.get(run.status, "")
    console.print(f"[bold]{escape(run.workflow)}[/]  run {run.run_id}  [{style}]{run.status.value}[/]")
    console.print(f"started {_when(run.started_at)}  duration {_seconds(run.duration())}  "
                  f"pid {run.owner_pid or '-'} on {run.host or '-'}", style="dim")
    if run.params:
        console.print("params: " + escape(", ".join(f"{k}={_short(v)}" for k, v in run.params.items())))
    if run.parent_run_id:
        console.print(f"resumes run {run.parent_run_id}")
    for child in resumed_by:
        console.print(f"resumed as run {child}")
    if run.error:
        console.print(f"error: {escape(terminal_safe(run.error))}", style="red")
    rows: list[list[str | Text]] = []
    for step in run.steps.values():
        latest = step.latest
        duration = latest.duration() if latest is not None else None
        if step.error:
            note = Text(_short(step.error), style="red")
        elif step.reused_from:
            note = Text.assemble((f"reused from {step.reused_from}", "dim"), f": {_short(step.output)}")
        else:
            note = Text(_short(step.output) if step.output is not None else "")
        rows.append([step.name, Text(step.status.value, style=_STYLE_BY_VALUE.get(step.status.value, "")),
                     str(step.attempt or "-"), _seconds(duration),
                     "-" if step.exit_code is None else str(step.exit_code), note])
        for attempt in step.attempts[:-1]:  # earlier attempts, indented under the step
            rows.append(["", Text(f"attempt {attempt.attempt}: {attempt.status.value}", style="dim"),
                         str(attempt.attempt), _seconds(attempt.duration()),
                         "-" if attempt.exit_code is None else str(attempt.exit_code),
                         Text(_short(attempt.error), style="dim")])
    console.print(column_text(_STEP_COLUMNS, rows, max_width=console.width if console.is_terminal else None),
                  soft_wrap=True)
    if with_history:
        console.print("history", style="italic")
        changes = [[_when_precise(entry.at), entry.step,
                    Text(entry.status.value, style=_STYLE_BY_VALUE.get(entry.status.value, "")),
                    str(entry.attempt or "-")] for entry in history]
        console.print(column_text(_HISTORY_COLUMNS, changes), soft_wrap=True)


# ----------------------------------------------------------------------- logs


class _OwnerCheck:
    """Ends the follow of a run whose process died: at most once a second it checks that
    the run's owner process (on this host) still lives, read-only, and once it does not,
    marks the run INTERRUPTED (``Store.recover_interrupted``). The run would otherwise
    stay "running" until some other orchtui process opened the store."""

    def __init__(self, store: Store, run: RunRecord, every: float = 1.0) -> None:
        self._store = store
        self._owner = (run.owner_pid, run.owner_started_at, run.host) if run.owner_pid is not None else None
        self._every = every
        self._last = time.monotonic()  # opening the store just recovered what it could
        self._abandoned = False

    def __call__(self) -> bool:
        """Check (at most once a second); True once the owner is gone and the run could not
        be marked, so the follow must end by itself: the store will never say the run ended."""
        now = time.monotonic()
        if self._owner is None or now - self._last < self._every:
            return self._abandoned
        self._last = now
        if owner_gone(*self._owner):
            pid = self._owner[0]
            self._owner = None  # once is enough
            try:
                self._store.recover_interrupted()
            except StoreError as exc:
                click.echo(f"warning: the process of this run (pid {pid}) ended, and the run cannot be marked "
                           f"interrupted: {exc.message}", err=True)
                self._abandoned = True
        return self._abandoned


def _attempt_over(store: Store, run_id: str, step: str, attempt: int, check_owner: _OwnerCheck) -> bool:
    """True once attempt ``attempt`` of ``step`` ended, or the step or run ended without it
    (or its process did, and nobody can record that)."""
    if check_owner():
        return True
    for record in store.get_attempts(run_id, step):
        if record.attempt == attempt:
            return record.status is not TaskStatus.RUNNING
        if record.attempt > attempt:
            return True
    step_state = store.step_status(run_id, step)
    if step_state is not None and step_state.is_terminal:
        return True  # skipped, cancelled or reused: this attempt will never run
    run_state = store.run_status(run_id)
    return run_state is None or run_state.is_terminal


def _latest_attempt(store: Store, run_id: str, step: str) -> int:
    attempts = store.get_attempts(run_id, step)
    return attempts[-1].attempt if attempts else 1


def _next_attempt(store: Store, run_id: str, step: str, after: int, check_owner: _OwnerCheck) -> int | None:
    """Wait for an attempt of ``step`` numbered above ``after``; None if none will come."""
    while True:
        if check_owner():
            return None
        later = [a.attempt for a in store.get_attempts(run_id, step) if a.attempt > after]
        if later:
            return min(later)
        step_state = store.step_status(run_id, step)
        run_state = store.run_status(run_id)
        if (step_state is None or step_state.is_terminal) or run_state is None or run_state.is_terminal:
            return None
        time.sleep(_POLL)  # a failed attempt waits for its retry


def _follow_step(store: Store, run_id: str, step: str, attempt: int | None, prefix: str,
                 check_owner: _OwnerCheck) -> int:
    """Print the lines of ``step``'s attempt (each later one too, unless ``attempt`` is
    given) as they are written, until no more will come; return how many were printed."""
    number = attempt or _latest_attempt(store, run_id, step)
    printed = 0
    while True:
        path = log_path(store.runs_dir, run_id, step, number)
        over = functools.partial(_attempt_over, store, run_id, step, number, check_owner)
        for line in follow_log(path, over, poll_interval=_POLL):
            click.echo(prefix + line)
            printed += 1
        if attempt is not None:
            return printed
        following = _next_attempt(store, run_id, step, number, check_owner)
        if following is None:
            return printed
        click.echo(f"{prefix}--- attempt {following} ---")
        number = following


@click.command("logs", context_settings=CONTEXT_SETTINGS)
@click.argument("run_id", metavar="RUN")
@click.argument("step", required=False)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until the step (or run) ends.")
@click.option("--attempt", "-a", type=click.IntRange(min=1), default=None, help="Which attempt (default: the latest).")
@click.option("--tail", "-t", "tail", type=click.IntRange(min=0), default=None, help="Only the last N lines of each log.")
@handle_errors
def logs_cmd(run_id: str, step: str | None, follow: bool, attempt: int | None, tail: int | None) -> None:
    """Print the logs of a run's steps (of STEP only when given).

    With -f, follows a live step as it writes, also one run by another process, until
    it ends; without STEP, follows the run's steps one after another.
    """
    with _store(reading=True) as store:
        run_id = store.resolve_run_id(run_id)
        run = store.get_run(run_id)
        assert run is not None
        if step is not None and step not in run.steps:
            raise StoreError(f"run {run_id} has no step {step!r}; its steps: {', '.join(run.steps)}")
        if step is not None and attempt is not None and run.status.is_terminal and attempt > run.steps[step].attempt:
            ran = run.steps[step].attempt
            raise StoreError(f"step {step!r} of run {run_id} has no attempt {attempt}: it made "
                             + (f"{ran} attempt(s)" if ran else "none"))
        steps = [step] if step is not None else list(run.steps)
        if follow:
            check_owner = _OwnerCheck(store, run)
            printed = 0
            for name in steps:
                if step is None and run.steps[name].status is TaskStatus.SKIPPED:
                    continue
                printed += _follow_step(store, run_id, name, attempt, "" if step is not None else f"[{name}] ",
                                        check_owner)
            if store.run_status(run_id) is WorkflowStatus.INTERRUPTED:
                click.echo(f"run {run_id} was interrupted: its process ended before the run did; "
                           f"`orchtui resume {run_id}` finishes it", err=True)
            elif not printed and (ended := store.get_run(run_id)) is not None:
                click.echo(_no_logs_note(store, ended, step, attempt), err=True)  # as without -f
            return
        # One listing of the run's log directory for all its steps: a listing per step
        # took minutes for a 10k-step run (10k listings of 10k files).
        logs_of: dict[str, list[LogFile]] = {}
        for found in list_logs(store.runs_dir, run_id, step):
            logs_of.setdefault(found.step, []).append(found)
        shown = 0
        for name in steps:
            files = logs_of.get(name, [])
            if attempt is not None:
                files = [f for f in files if f.attempt == attempt]
            elif files:
                files = files[-1:]
            for file in files:
                if step is None:
                    click.echo(f"==> {name} (attempt {file.attempt}) <==")
                click.echo(read_log(file.path, tail_lines=tail), nl=False)
                shown += 1
        if not shown:
            click.echo(_no_logs_note(store, run, step, attempt), err=True)


def _no_logs_note(store: Store, run: RunRecord, step: str | None, attempt: int | None) -> str:
    """Say why there is no log to print: "yet" only where one may still come."""
    of_attempt = f" (attempt {attempt})" if attempt else ""
    if step is None:
        if run.status.is_terminal:
            return f"no step of run {run.run_id} wrote any output{of_attempt}"
        return f"no logs for run {run.run_id} yet{of_attempt}; -f follows its steps as they write"
    record = run.steps[step]
    which = f"step {step!r} of run {run.run_id}"
    if record.reused_from is not None:
        from core.resume_plan import reused_origin

        origin, stored = reused_origin(store, run, step)
        if not stored:
            return f"{which} reused the output of run {origin}, which has been pruned with its logs"
        return f"{which} reused the output of run {origin}; `orchtui logs {origin} {step}` prints its log"
    if record.status is TaskStatus.SKIPPED:
        return f"{which} was skipped: it never ran, so it has no log"
    if record.status is TaskStatus.RUNNING:
        return f"no output from {which} yet{of_attempt}; -f follows it"
    if not record.status.is_terminal or record.attempt == 0:
        return f"{which} never started" if run.status.is_terminal else f"{which} has not started yet; -f waits for it"
    return f"{which} ({record.status.value}) wrote no output{of_attempt}"


# ------------------------------------------------------------ resume / rerun


def _start(store: Store, run_id: str, from_step: str | None, max_workers: int | None, as_json: bool,
           new_run_id: str | None = None, reload: bool = False, param_pairs: tuple[str, ...] = ()) -> None:
    """Run the resume (or rerun) of ``run_id`` in this process and exit with run's codes.

    With ``reload`` the workflow file's current definition runs instead of the stored one;
    without it, a file that changed since is mentioned on stderr. ``param_pairs``
    (``-p KEY=VALUE``) override the run's parameters for the steps that run.
    """
    from core.resource_manager import ResourceManager
    from core.resume_plan import (
        current_definition,
        file_changes,
        kept_steps_using,
        params_for,
        plan_rerun_from,
        plan_resume,
    )
    from core.run_recorder import StoreRecorder
    from core.task_orchestrator import TaskOrchestrator
    from core.workflow_manager import WorkflowManager
    from core.workflow_params import coerce_cli_params, resolve_params

    from ..progress import summary_table

    settings = load_settings()
    if as_json:
        keep_stdout_for_json()
    parent = store.get_run(run_id)
    # Said before planning, which may refuse ("nothing to resume") where --reload would not.
    changed = file_changes(parent) if parent is not None and not reload else None
    if changed is not None:
        file, changes = changed
        click.echo(f"note: {terminal_safe(str(file))} changed since run {run_id} started ({'; '.join(changes)}); "
                   "running the definition stored with the run (--reload runs the file)", err=True)
    definition = current_definition(parent) if reload and parent is not None else None
    if from_step is None:
        workflow, params, preset = plan_resume(store, run_id, definition=definition)
    else:
        workflow, params, preset = plan_rerun_from(store, run_id, from_step, definition=definition)
    dropped = params_for(parent, workflow)[1] if definition is not None and parent is not None else []
    if dropped:
        click.echo(f"note: {workflow.source_path} no longer declares parameter(s) {', '.join(dropped)}; "
                   "resuming without them", err=True)
    overrides = coerce_cli_params(workflow, param_pairs)
    changed = sorted(name for name, value in overrides.items() if name not in params or params[name] != value)
    params.update(overrides)
    resolve_params(workflow, params)  # every parameter problem now, before the new run is claimed
    stale = kept_steps_using(workflow, preset, changed)
    if stale:
        click.echo(f"note: completed step(s) {', '.join(stale)} used {', '.join(changed)} and keep the outputs "
                   f"made with the old value; `orchtui rerun {run_id} --from {stale[0]}` runs them again", err=True)
    new_run = new_id("run") if new_run_id is None else new_run_id  # an empty --run-id is refused, not replaced
    resources = ResourceManager()
    recorder = StoreRecorder(store, resource_manager=resources)
    recorder.expect_resume(new_run, run_id, preset)
    orchestrator = TaskOrchestrator(max_workers or settings.max_workers, resource_manager=resources)
    manager = WorkflowManager(settings=settings, orchestrator=orchestrator, resource_manager=resources,
                              observers=[recorder], autoload=False)
    console = StdoutConsole(highlight=False)
    interrupted = False
    # The live file lets dashboards show this run's queues and cancel it from elsewhere.
    with Interrupts() as interrupts, published(orchestrator, manager, settings.state_dir,
                                               f"orchtui resume {run_id}"):
        try:
            # Claimed in the store first: of two resumes of one run at once, only one runs.
            handle = recorder.start_run(manager, workflow, params, run_id=new_run, preset_outputs=preset,
                                        session_id=parent.session_id if parent is not None else None)
            if not as_json:
                verb = f"rerunning {run_id} from step {from_step}" if from_step else f"resuming {run_id}"
                console.print(f"{verb} as run {new_run} (reusing {len(preset)} completed step(s))")
            interrupted = follow_run(handle, interrupts, quiet=as_json, console=console,
                                     snapshot=orchestrator.snapshot)
        finally:
            interrupts.following = False
            # Kills whatever still runs (after a second signal) and waits for the process trees to go.
            orchestrator.shutdown(wait=True, cancel_running=True)
            store.flush()
    execution = final_execution(handle)
    code = EXIT_OK if execution.success else (interrupts.exit_code if interrupted else EXIT_FAILED)
    if as_json:
        emit_json(execution.to_dict() | {"resumed_from": run_id, "reused_steps": sorted(preset),
                                          "definition": "file" if reload else "stored",
                                          "changed_params": changed, "kept_steps_using_changed_params": stale})
        sys.exit(code)
    console.print(summary_table(execution, handle.step_progress(),
                                unicode=(console.encoding or "").lower().startswith("utf")), soft_wrap=True)
    console.print(f"{execution.workflow_name}: {execution.status.value} — run {new_run}",
                  style=_STATUS_STYLE.get(execution.status, ""))
    if execution.error:
        console.print(f"error: {terminal_safe(execution.error)}", style="red", markup=False)
    sys.exit(code)


_NEW_RUN_ID_HELP = "The id to give the new run (default: a new one)."
_reload_option = click.option(
    "--reload", is_flag=True,
    help="Run the workflow file as it is now instead of the definition stored with the run "
         "(steps it adds run; completed steps keep their outputs).")


@click.command("resume", context_settings=CONTEXT_SETTINGS)
@click.argument("run_id", metavar="RUN")
@click.option("--max-workers", type=click.IntRange(min=1), default=None, help="Steps running at once.")
@click.option("--run-id", "new_run_id", default=None, metavar="ID", help=_NEW_RUN_ID_HELP)
@_reload_option
@param_option
@json_option
@handle_errors
def resume_cmd(run_id: str, max_workers: int | None, new_run_id: str | None, reload: bool, params: tuple[str, ...],
               as_json: bool) -> None:
    """Finish a failed, cancelled or interrupted run.

    Steps whose completion was recorded keep their outputs and do not run again; the
    failed, cancelled, interrupted, skipped and unfinished steps run, with everything
    downstream of them. The resume is a new run that names RUN as its parent.

    It runs the workflow as stored with RUN; after fixing the workflow file, --reload
    runs the file instead (a note says when the file changed). -p changes a parameter
    for the steps that run; completed steps keep what they made with the old value.

    \b
    Exit codes: 0 completed, 1 failed or not resumable, 130 cancelled with Ctrl-C,
    143 by SIGTERM, 129 by SIGHUP.
    """
    with _store() as store:
        _start(store, store.resolve_run_id(run_id), None, max_workers, as_json, new_run_id, reload, params)


@click.command("rerun", context_settings=CONTEXT_SETTINGS)
@click.argument("run_id", metavar="RUN")
@click.option("--from", "from_step", required=True, metavar="STEP", help="The first step to run again.")
@click.option("--max-workers", type=click.IntRange(min=1), default=None, help="Steps running at once.")
@click.option("--run-id", "new_run_id", default=None, metavar="ID", help=_NEW_RUN_ID_HELP)
@_reload_option
@param_option
@json_option
@handle_errors
def rerun_cmd(run_id: str, from_step: str, max_workers: int | None, new_run_id: str | None, reload: bool,
              params: tuple[str, ...], as_json: bool) -> None:
    """Run STEP of RUN and everything downstream of it again, reusing the other outputs.

    \b
    Exit codes: 0 completed, 1 failed or not rerunnable, 130 cancelled with Ctrl-C,
    143 by SIGTERM, 129 by SIGHUP.
    """
    with _store() as store:
        _start(store, store.resolve_run_id(run_id), from_step, max_workers, as_json, new_run_id, reload, params)


# ---------------------------------------------------------------------- prune


@click.command("prune", context_settings=CONTEXT_SETTINGS)
@click.option("--older-than", "seconds", required=True, metavar="AGE",
              callback=lambda _ctx, _param, value: parse_age(value),
              help="Delete finished runs older than this (30d, 12h, 90m, 2w).")
@json_option
@handle_errors
def prune_cmd(seconds: float, as_json: bool) -> None:
    """Delete finished runs (and their logs) older than AGE. Running runs are kept."""
    with _store() as store:
        count = store.prune(seconds)
    if as_json:
        emit_json({"success": True, "pruned": count, "older_than_seconds": seconds})
    else:
        click.echo(f"pruned {count} run(s) older than {_seconds(seconds)}")


def register(group: click.Group) -> None:
    """Add the run-history commands to ``group``."""
    for command in (runs_cmd, show_cmd, logs_cmd, resume_cmd, rerun_cmd, prune_cmd):
        group.add_command(command)
