"""What the MCP tools report about runs: outcomes, live progress, and store reads.

:class:`~core.mcp_tools.OrchestrationMCPTools` starts runs; this module turns what it
knows about them into the plain JSON dicts an agent receives. Live runs are read from
their :class:`~core.workflow_run.RunHandle`; everything else comes from the run store,
so an agent can follow runs started by the dashboard or the CLI as well.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from .errors import StoreError
from .logs import is_truncated, list_logs, read_log
from .models import TaskStatus, WorkflowExecution, WorkflowStatus
from .store import Store
from .resume_plan import reused_origin
from .store_records import RunRecord, StepRecord
from .text import did_you_mean, printable
from .workflow_run import RunHandle

__all__ = [
    "ProgressCallback",
    "jsonable",
    "flush",
    "read_runs",
    "follow_run",
    "run_outcome",
    "run_started",
    "run_status",
    "run_summary",
    "step_log",
]

log = logging.getLogger(__name__)

# ``progress(done, total, message)``: steps settled so far, steps in the run, a short text.
ProgressCallback = Callable[[float, float | None, str], None]

_POLL_SECONDS = 0.2
_OUTPUT_CHARS = 4000  # an output longer than this (as JSON) is cut for the agent


def jsonable(value: Any) -> Any:
    """Return ``value`` as plain JSON data (anything else becomes its ``str``)."""
    return json.loads(json.dumps(value, default=printable))


def _clip(value: Any) -> Any:
    """Return ``value``, or a clipped text of it when its JSON is very long."""
    text = json.dumps(value, default=printable)
    if len(text) <= _OUTPUT_CHARS:
        return jsonable(value)
    return text[:_OUTPUT_CHARS] + f"... [{len(text) - _OUTPUT_CHARS} more characters; read the step log]"


def _progress_text(handle: RunHandle) -> tuple[int, int, str]:
    rows = handle.step_progress()
    done = sum(1 for r in rows if r.status.is_terminal)
    running = [r.name for r in rows if r.status == TaskStatus.RUNNING]
    text = f"{handle.workflow_name}: {done}/{len(rows)} steps done"
    if running:
        text += f"; running: {', '.join(running[:5])}" + (" ..." if len(running) > 5 else "")
    return done, len(rows), text


def follow_run(
    handle: RunHandle, *, wait: bool, wait_seconds: float | None, progress: ProgressCallback | None,
    stopped: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Wait for a run as asked and return what the agent gets back.

    Without ``wait`` returns at once (:func:`run_started`). Otherwise polls the run,
    calling ``progress`` whenever a step settles or starts, until the run ends
    (:func:`run_outcome`), or ``wait_seconds`` pass, or ``stopped()`` says to stop
    waiting (the client cancelled the request, or the server is stopping); in those
    two cases the run keeps going and the result says it is still running.
    """
    if not wait:
        return run_started(handle)
    deadline = None if wait_seconds is None else time.monotonic() + wait_seconds
    last, reported = "", 0
    while True:
        execution = handle.wait(_POLL_SECONDS)
        if progress is not None:
            done, total, text = _progress_text(handle)
            if text != last:
                last = text
                # MCP progress must never go back; a step that fails and retries would.
                reported = max(reported, done)
                try:
                    progress(float(reported), float(total), text)
                except Exception:  # a client that went away must not stop the run or the wait
                    log.debug("progress report failed", exc_info=True)
                    progress = None
        if execution is not None:
            return run_outcome(execution, handle)
        timed_out = deadline is not None and time.monotonic() >= deadline
        if timed_out or (stopped is not None and stopped()):
            # The run may have ended since the wait above: then its outcome is the answer.
            execution = handle.wait(0)
            if execution is not None:
                return run_outcome(execution, handle)
            result = run_started(handle)
            why = f"still running after {wait_seconds:g} s" if timed_out else "stopped waiting while it runs"
            result["message"] = f"{why}; poll get_run_status with run_id {handle.run_id}"
            return result


def run_started(handle: RunHandle) -> dict[str, Any]:
    """Return the result for a run the caller does not wait for: its id and live state."""
    done, total, text = _progress_text(handle)
    return {
        "success": True,
        "run_id": handle.run_id,
        "workflow_name": handle.workflow_name,
        "status": handle.status.value,
        "steps_done": done,
        "steps_total": total,
        "progress": text,
        "log_dir": str(handle.log_dir) if handle.log_dir else None,
        "message": f"run {handle.run_id} started; poll get_run_status for its progress",
    }


def run_outcome(execution: WorkflowExecution, handle: RunHandle | None = None) -> dict[str, Any]:
    """Return the spec-002 result of a finished run; a failed run carries the error keys too."""
    result: dict[str, Any] = {
        "success": execution.success,
        "run_id": execution.run_id,
        "workflow_name": execution.workflow_name,
        "status": execution.status.value,
        "executed_steps": execution.executed_steps,
        "failed_steps": execution.failed_steps,
        "skipped_steps": execution.skipped_steps,
        "cancelled_steps": execution.cancelled_steps,
        "step_status": {name: s.value for name, s in execution.step_status.items()},
        "results": {name: _clip(value) for name, value in execution.results.items()},
        "errors": dict(execution.errors),
        "execution_time": execution.execution_time,
        "error": execution.error,
        "log_dir": str(handle.log_dir) if handle is not None and handle.log_dir else None,
    }
    if not execution.success:
        result.update(
            error=execution.error or f"run {execution.run_id} ended {execution.status.value}",
            error_type="WorkflowExecutionError",
            error_code=f"RUN_{execution.status.value.upper()}",
            details={"run_id": execution.run_id, "failed_steps": execution.failed_steps},
            suggestions=[f"read a failed step's log with get_step_logs(run_id={execution.run_id!r}, step=...)"]
            if execution.failed_steps else [],
        )
    return result


def _step_dict(step: StepRecord, now: float, logged: set[str]) -> dict[str, Any]:
    started = step.started_at
    duration = None if started is None else (step.finished_at or now) - started
    return {
        "name": step.name,
        "status": step.status.value,
        "attempt": step.attempt,
        "started_at": step.started_at,
        "finished_at": step.finished_at,
        "duration": duration,
        "error": step.error,
        "exit_code": step.exit_code,
        "output": _clip(step.output),
        "reused_from": step.reused_from,
        "has_log": step.name in logged,  # a step that printed nothing has a log path but no file
    }


def run_summary(run: RunRecord) -> dict[str, Any]:
    """Return one run of a listing: id, workflow, status, times and error."""
    return {
        "run_id": run.run_id,
        "workflow": run.workflow,
        "status": run.status.value,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration": run.duration(),
        "error": run.error,
        "parent_run_id": run.parent_run_id,
    }


def flush(store: Store) -> None:
    """Wait (briefly) until this process's queued run writes are committed.

    A failed write is logged, not raised: it concerns an earlier write, and the read
    or result that follows is still worth giving.
    """
    try:
        store.flush(timeout=5.0)
    except StoreError as exc:
        log.warning("the run store reported a failed write: %s", exc.message)


def _recovered(store: Store, runs: list[RunRecord]) -> bool:
    """Mark ``runs`` whose process died INTERRUPTED (:meth:`Store.recover_orphaned`);
    True when some were. A failure to write is logged: the read is still worth giving."""
    try:
        return bool(store.recover_orphaned(runs))
    except StoreError as exc:
        log.warning("runs whose process died cannot be marked interrupted: %s", exc.message)
        return False


def read_runs(store: Store, *, workflow: str | None, status: str | None, limit: int) -> list[RunRecord]:
    """Return the newest stored runs (of ``workflow``/``status`` when given), runs whose
    process died already marked INTERRUPTED."""
    flush(store)
    runs = store.list_runs(workflow=workflow, status=status, limit=limit)
    if _recovered(store, runs):
        runs = store.list_runs(workflow=workflow, status=status, limit=limit)
    return runs


def _read_run(store: Store, run_id: str) -> RunRecord:
    """Return the stored run whose id is ``run_id`` or starts with it.

    Raises:
        StoreError: no run (or several) match.
    """
    flush(store)  # runs of this process: their last writes may still be queued
    full = store.resolve_run_id(run_id)
    run = store.get_run(full)
    if run is not None and _recovered(store, [run]):  # its process died: say so now
        run = store.get_run(full)
    if run is None:  # pruned between the two reads
        raise StoreError(f"run {full!r} is no longer in the store", error_code="RUN_NOT_FOUND")
    return run


def run_status(store: Store, run_id: str) -> dict[str, Any]:
    """Return a stored run with every step: status, attempt, timings, error, output.

    Raises:
        StoreError: no run (or several) match ``run_id``.
    """
    run = _read_run(store, run_id)
    now = time.time()
    counts = {s.value: 0 for s in TaskStatus}
    for step in run.steps.values():
        counts[step.status.value] += 1
    logged = {log.step for log in list_logs(store.runs_dir, run.run_id)}  # one listing for every step
    result = run_summary(run)
    result.update(
        success=True,
        params=jsonable(run.params),
        session_id=run.session_id,
        finished=run.status.is_terminal,
        run_succeeded=run.status == WorkflowStatus.COMPLETED if run.status.is_terminal else None,
        progress={"total": len(run.steps), **{k: v for k, v in counts.items() if v}},
        steps=[_step_dict(step, now, logged) for step in run.steps.values()],
    )
    return result


MAX_LOG_CHARS = 100_000
"""The most of a log :func:`step_log` returns (its end); ``clipped`` says it cut."""


def step_log(store: Store, run_id: str, step: str, *, tail_lines: int, attempt: int | None) -> dict[str, Any]:
    """Return the last ``tail_lines`` lines of a step's log (latest attempt unless given),
    at most :data:`MAX_LOG_CHARS` characters of them.

    Raises:
        StoreError: unknown run; unknown step (with did-you-mean); no log for that step
            or attempt yet.
    """
    run = _read_run(store, run_id)
    record = run.steps.get(step)
    if record is None:
        hint = did_you_mean(step, run.steps, otherwise=f"its steps: {', '.join(run.steps)}")
        raise StoreError(f"run {run.run_id} has no step {step!r}; {hint}", error_code="STEP_NOT_FOUND",
                         details={"run_id": run.run_id, "step": step})
    every = list_logs(store.runs_dir, run.run_id, step)
    files = every if attempt is None else [f for f in every if f.attempt == attempt]
    if not files and attempt is None and record.reused_from is not None:
        origin, stored = reused_origin(store, run, step)
        raise StoreError(
            f"step {step!r} of run {run.run_id} did not run: it reused the output of run {origin}"
            + (f"; get_step_logs(run_id={origin!r}, step={step!r}) reads its log" if stored
               else ", which has been pruned with its logs"),
            error_code="LOG_NOT_FOUND",
            details={"run_id": run.run_id, "step": step, "status": record.status.value, "reused_from": origin})
    if not files:
        which = f"attempt {attempt} of step {step!r}" if attempt is not None else f"step {step!r}"
        status = record.status
        if status is TaskStatus.SKIPPED:
            why = "was skipped: it never ran, so it has no log"
        elif status is TaskStatus.RUNNING:
            why = "has written no output yet; call again later"
        elif status.is_terminal:
            why = f"wrote no output (it {status.value})" if record.attempt else f"never ran (it is {status.value})"
        else:
            why = f"has not started yet (it is {status.value}); its log appears once it writes"
        raise StoreError(f"{which} of run {run.run_id} {why}", error_code="LOG_NOT_FOUND",
                         details={"run_id": run.run_id, "step": step, "status": status.value})
    chosen = files[-1]
    text = read_log(chosen.path, tail_lines)
    clipped = len(text) > MAX_LOG_CHARS
    if clipped:  # one answer must not carry megabytes: a line may be as long as the log's cap
        text = f"[orchtui: the last {MAX_LOG_CHARS} characters]\n" + text[-MAX_LOG_CHARS:]
    return {
        "success": True,
        "run_id": run.run_id,
        "step": step,
        "status": record.status.value,
        "attempt": chosen.attempt,
        "attempts": sorted({f.attempt for f in every}),
        "tail_lines": tail_lines,
        "truncated": is_truncated(chosen.path),
        "clipped": clipped,
        "log": text,
    }
