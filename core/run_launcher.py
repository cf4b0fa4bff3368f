"""Start runs as detached processes, so they outlive whoever started them.

A face (the dashboard) that runs a workflow inside its own process shares the GIL
with it, slows it down, and takes it down when it quits or crashes. Instead it asks
for ``python -m orchtui run FILE --run-id RID --json`` (or ``resume RUN --run-id RID``)
in a new session: no terminal, stdin from ``/dev/null``, and stdout/stderr appended to
``<state_dir>/runs/<RID>/runner.log``. The child records the run in the shared store
and publishes its live state (``core.live_state``), so every face watches it like any
other process's run, and cancels it through a request file.

The run id is chosen here, before the child starts, so the caller can show the run
at once.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import OrchestrationError
from .models import Workflow, new_id
from .process_tree import strip_own_marker

__all__ = ["launch_run", "launch_resume", "reap_children", "runner_log_path", "RUNNER_LOG"]

RUNNER_LOG = "runner.log"
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# The code the child runs is this checkout's, even when the caller's working directory
# (or an installed copy) would resolve ``orchtui`` elsewhere.
_SOURCE_ROOT = Path(__file__).resolve().parent.parent

_children_lock = threading.Lock()
_children: dict[str, subprocess.Popen[bytes]] = {}


def runner_log_path(state_dir: Path, run_id: str) -> Path:
    """Return where the detached process of run ``run_id`` writes its own output."""
    return Path(state_dir) / "runs" / run_id / RUNNER_LOG


def _check_run_id(run_id: str) -> str:
    if not _RUN_ID.fullmatch(run_id) or ".." in run_id:
        raise OrchestrationError(
            f"run id {run_id!r} is not valid; use letters, digits, '.', '_' and '-' (at most 128, no '..')")
    return run_id


def _param_arg(workflow: Workflow | None, name: str, value: Any) -> str:
    """Return ``name=value`` as ``orchtui run -p`` reads it back to the same typed value."""
    declared = workflow.params.get(name) if workflow is not None else None
    if isinstance(value, str) and declared is not None and declared.type.lower() == "string":
        return f"{name}={value}"  # strings stay verbatim ("007" is not 7)
    try:
        return f"{name}={json.dumps(value)}"  # JSON is YAML, which -p parses for the other types
    except (TypeError, ValueError):
        raise OrchestrationError(
            f"parameter {name!r} has a value of type {type(value).__name__} that cannot be passed to a run process; "
            "use strings, numbers, booleans, lists or mappings") from None


def _spawn(argv: list[str], state_dir: Path, run_id: str, env: Mapping[str, str] | None, cwd: Path | None) -> None:
    log_file = runner_log_path(state_dir, run_id)
    child_env = dict(os.environ if env is None else env)
    strip_own_marker(child_env)  # it outlives this process on purpose
    child_env["ORCHTUI_DIR"] = str(Path(state_dir).resolve())
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_SOURCE_ROOT), child_env.get("PYTHONPATH", "")) if p)
    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "orchtui", *argv],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,  # no signal from our terminal or process group reaches it
                env=child_env, cwd=str(cwd) if cwd is not None else None, close_fds=True,
            )
    except OSError as exc:
        raise OrchestrationError(
            f"could not start a process for run {run_id} ({exc.strerror or exc}); check that {sys.executable} "
            f"runs and that {log_file.parent} is writable") from None
    with _children_lock:
        _children[run_id] = process


def launch_run(
    workflow: Workflow | str | Path,
    *,
    state_dir: Path,
    params: Mapping[str, Any] | None = None,
    run_id: str | None = None,
    max_workers: int | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> str:
    """Start ``workflow`` in a detached ``orchtui run`` process; return the run id.

    Parameters
    ----------
    workflow : Workflow, str or Path
        A loaded workflow (its file is run), a workflow file, or a workflow name the
        child finds in its workflows directory.
    state_dir : Path
        The state directory the run is recorded in (``ORCHTUI_DIR`` of the child).
    params : mapping, optional
        Workflow parameters; passed with ``-p`` so the child types them the same way.
    run_id : str, optional
        The id to give the run (default: a new one).
    max_workers : int, optional
        Steps the child runs at once (default: its settings').
    env, cwd : optional
        The child's environment (default: this process's) and working directory.

    Raises
    ------
    OrchestrationError
        An invalid run id, a workflow object without a file, a parameter that cannot
        be passed, or the process could not start.
    """
    rid = _check_run_id(run_id) if run_id is not None else new_id("run")
    loaded = workflow if isinstance(workflow, Workflow) else None
    if loaded is not None:
        if not loaded.source_path:
            raise OrchestrationError(
                f"workflow {loaded.name!r} has no file to run in a separate process; save it to the workflows directory")
        target = str(Path(loaded.source_path).resolve())
    else:
        target = str(workflow)
        if not target.strip():
            raise OrchestrationError("give a workflow file or name to run")
    argv = ["run", target, "--run-id", rid, "--json"]
    for name, value in (params or {}).items():
        argv += ["-p", _param_arg(loaded, name, value)]
    if max_workers is not None:
        argv += ["--max-workers", str(int(max_workers))]
    _spawn(argv, state_dir, rid, env, cwd)
    return rid


def launch_resume(
    run_id: str,
    *,
    state_dir: Path,
    new_run_id: str | None = None,
    max_workers: int | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> str:
    """Resume run ``run_id`` in a detached ``orchtui resume`` process; return the new run's id.

    Raises:
        OrchestrationError: an invalid run id, or the process could not start.
    """
    _check_run_id(run_id)
    rid = _check_run_id(new_run_id) if new_run_id is not None else new_id("run")
    argv = ["resume", run_id, "--run-id", rid, "--json"]
    if max_workers is not None:
        argv += ["--max-workers", str(int(max_workers))]
    _spawn(argv, state_dir, rid, env, cwd)
    return rid


def reap_children() -> list[tuple[str, int]]:
    """Collect the runner processes started here that ended; return ``(run_id, exit code)`` for each.

    Exit codes are ``orchtui run``'s: 0 completed, 1 failed or invalid, 130/143/129 cancelled by
    SIGINT/SIGTERM/SIGHUP.
    """
    ended: list[tuple[str, int]] = []
    with _children_lock:
        for rid, process in list(_children.items()):
            code = process.poll()
            if code is not None:
                ended.append((rid, code))
                del _children[rid]
    return ended
