"""What the run store hands back: runs, their steps and each step's attempts.

These are read-only copies built from database rows; changing one changes nothing in
the store. Times are epoch seconds. Outputs are whatever JSON the step produced (a value
that was not JSON-serialisable was stored as its ``str``).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

from .errors import StoreError
from .logs import attempt_log_path
from .models import TaskStatus, Workflow, WorkflowStatus
from .snapshot import RunView

__all__ = [
    "AttemptRecord", "StepRecord", "RunRecord", "RUN_COLUMNS", "ATTEMPT_COLUMNS", "run_from_row", "attempt_from_row",
    "attach_steps", "workflow_or_none", "record_from_json", "loads",
]

T = TypeVar("T")

# The runs columns every reader selects, in the order ``run_from_row`` expects.
RUN_COLUMNS = (
    "id, workflow, status, params_json, session_id, created_at, started_at, finished_at, error, "
    "owner_pid, owner_started, host, version, parent_run_id"
)


def loads(text: str | None) -> Any:
    """Return the value stored as JSON text (None stays None)."""
    return None if text is None else json.loads(text)


def _duration(start: float | None, end: float | None, now: float | None) -> float | None:
    if start is None:
        return None
    stop = end if end is not None else (time.time() if now is None else now)
    return max(0.0, stop - start)


@dataclasses.dataclass(slots=True)
class AttemptRecord:
    """One attempt of one step, as stored."""

    run_id: str
    step: str
    attempt: int
    status: TaskStatus
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    error: str = ""
    output: Any = None
    log_path: str | None = None

    def duration(self, now: float | None = None) -> float | None:
        """Seconds the attempt ran (so far, if it still runs); None if it never started."""
        return _duration(self.started_at, self.finished_at, now)

    def to_dict(self) -> dict[str, Any]:
        """Return the attempt as plain JSON data."""
        data = dataclasses.asdict(self)
        data["status"] = self.status.value
        return data


@dataclasses.dataclass(slots=True)
class StepRecord:
    """A step of a run: its latest state and every attempt it made.

    ``reused_from`` names the earlier run whose committed output this step took over
    (a resumed run does not run such a step again).
    """

    name: str
    status: TaskStatus
    attempt: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    error: str = ""
    output: Any = None
    reused_from: str | None = None
    attempts: list[AttemptRecord] = dataclasses.field(default_factory=list)

    @property
    def latest(self) -> AttemptRecord | None:
        """The most recent attempt, or None if the step never ran."""
        return self.attempts[-1] if self.attempts else None

    @property
    def exit_code(self) -> int | None:
        latest = self.latest
        return latest.exit_code if latest is not None else None

    @property
    def log_path(self) -> str | None:
        latest = self.latest
        return latest.log_path if latest is not None else None

    def to_dict(self) -> dict[str, Any]:
        """Return the step (with its attempts) as plain JSON data."""
        return {
            "name": self.name,
            "status": self.status.value,
            "attempt": self.attempt,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "error": self.error,
            "exit_code": self.exit_code,
            "output": self.output,
            "reused_from": self.reused_from,
            "log_path": self.log_path,
            "attempts": [a.to_dict() for a in self.attempts],
        }


@dataclasses.dataclass(slots=True)
class RunRecord:
    """One workflow run as stored.

    ``definition`` (the workflow as it was when the run started) and ``steps`` (in
    workflow order) are filled by ``Store.get_run``; listings leave them empty.
    ``owner_pid``/``owner_started_at``/``host`` identify the process that ran it.
    """

    run_id: str
    workflow: str
    status: WorkflowStatus
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    session_id: str | None = None
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    error: str = ""
    owner_pid: int | None = None
    owner_started_at: float | None = None
    host: str | None = None
    version: int = 0
    parent_run_id: str | None = None
    definition: Workflow | None = None
    steps: dict[str, StepRecord] = dataclasses.field(default_factory=dict)

    def duration(self, now: float | None = None) -> float | None:
        """Seconds from start to finish (to ``now`` while running); None if never started."""
        return _duration(self.started_at, self.finished_at, now)

    def to_view(self) -> RunView:
        """Return the run as the faces list it."""
        return RunView(
            run_id=self.run_id,
            workflow=self.workflow,
            status=self.status,
            started_at=self.started_at,
            finished_at=self.finished_at,
            step_status={name: s.status for name, s in self.steps.items()},
            step_started_at={name: s.started_at for name, s in self.steps.items() if s.started_at is not None},
            params=dict(self.params),
            error=self.error,
            owner_pid=self.owner_pid,
            session_id=self.session_id,
            owner_started_at=self.owner_started_at,
            host=self.host,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the run (steps and attempts included, definition excluded) as JSON data."""
        return {
            "run_id": self.run_id,
            "workflow": self.workflow,
            "status": self.status.value,
            "params": self.params,
            "session_id": self.session_id,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration": self.duration(),
            "error": self.error,
            "owner_pid": self.owner_pid,
            "host": self.host,
            "parent_run_id": self.parent_run_id,
            "steps": {name: step.to_dict() for name, step in self.steps.items()},
        }


def run_from_row(row: tuple[Any, ...]) -> RunRecord:
    """Build a :class:`RunRecord` (no steps) from a row of :data:`RUN_COLUMNS`."""
    (run_id, workflow, status, params_json, session_id, created_at, started_at, finished_at, error,
     owner_pid, owner_started, host, version, parent_run_id) = row
    return RunRecord(
        run_id=run_id,
        workflow=workflow,
        status=WorkflowStatus(status),
        params=loads(params_json) or {},
        session_id=session_id,
        created_at=created_at,
        started_at=started_at,
        finished_at=finished_at,
        error=error or "",
        owner_pid=owner_pid,
        owner_started_at=owner_started,
        host=host,
        version=version or 0,
        parent_run_id=parent_run_id,
    )


# The attempts columns readers select, in the order ``attempt_from_row`` expects.
ATTEMPT_COLUMNS = "run_id, step, attempt, status, started_at, finished_at, exit_code, error, output_json, log_path"


def attempt_from_row(row: tuple[Any, ...], runs_dir: Path) -> AttemptRecord:
    """Build an :class:`AttemptRecord` from a row of ``ATTEMPT_COLUMNS``, read from the store
    whose step logs live in ``runs_dir``."""
    run_id, step, attempt, status, started_at, finished_at, exit_code, error, output_json, log_path = row
    if log_path == "":  # the attempt's log where the dispatcher puts it (see core.store_rows)
        log_path = attempt_log_path(runs_dir, run_id, step, attempt)
    return AttemptRecord(
        run_id=run_id,
        step=step,
        attempt=attempt,
        status=TaskStatus(status),
        started_at=started_at,
        finished_at=finished_at,
        exit_code=exit_code,
        error=error or "",
        output=loads(output_json),
        log_path=log_path,
    )


def attach_steps(conn: sqlite3.Connection, runs: Iterable[RunRecord]) -> None:
    """Fill each run's ``steps`` (latest state only, no attempts) in one query per chunk."""
    by_id = {run.run_id: run for run in runs}
    ids = list(by_id)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for run_id, name, status, attempt, started, finished, error, reused_from in conn.execute(
            "SELECT run_id, step, status, attempt, started_at, finished_at, error, reused_from FROM steps "
            f"WHERE run_id IN ({marks}) ORDER BY run_id, position, step", chunk
        ):
            by_id[run_id].steps[name] = StepRecord(name, TaskStatus(status), attempt, started, finished,
                                                   error or "", None, reused_from)


def workflow_or_none(text: str) -> Workflow | None:
    """The stored workflow snapshot, or None if this orchtui cannot read it."""
    try:
        return Workflow.from_dict(json.loads(text))
    except (ValueError, TypeError, KeyError):
        return None


def record_from_json(cls: type[T], data: str | dict[str, Any], path: Path) -> T:
    """Build a stored record; data this version cannot read is a StoreError."""
    try:
        return cls.from_dict(json.loads(data) if isinstance(data, str) else data)  # type: ignore[attr-defined]
    except (ValueError, TypeError, KeyError) as exc:
        raise StoreError(f"{path} holds a {cls.__name__} this orchtui cannot read ({exc}); upgrade orchtui") from None
