"""How run writes become rows: the store's write statements and the group builder.

The writer (:mod:`core.store_writer`) hands most statements all rows of a group at once
as one JSON array, read with ``json_each``; column ``i`` of a row is
``json_extract(value, '$[i]')``. Rows are built on the writer thread, never on the
dispatcher thread that reports transitions.

A group's transitions are merged per step (and per attempt) before SQLite sees them:
a step that went ready, running and completed within one group costs one ``steps``
upsert and one ``attempts`` upsert, plus its three history rows. The merge applies the
same rules as the upserts (the latest value wins, except that a missing start time,
output, exit code or log path never erases a known one), so merged and unmerged
writes leave the same rows.
"""

from __future__ import annotations

import dataclasses
import json
import operator
from collections.abc import Sequence
from typing import Any

from .models import TaskStatus, TaskTransition, Workflow, WorkflowStatus, WorkflowStep
from .store_writer import Group

__all__ = ["STATEMENTS", "PHASES", "PER_ROW", "NewRun", "build_group", "dumps", "workflow_json"]

_TERMINAL = frozenset(s for s in TaskStatus if s.is_terminal)
_TERMINAL_SQL = ", ".join(f"'{s.value}'" for s in TaskStatus if s.is_terminal)
# Plain str constants: TaskStatus members are str already, and enum attribute access is
# slow enough to matter at 30k transitions a second.
_RUNNING = TaskStatus.RUNNING
_FAILED = str(TaskStatus.FAILED.value)


def _columns(*indexes: int) -> str:
    return ", ".join(f"json_extract(value, '$[{i}]')" for i in indexes)


STATEMENTS: dict[str, tuple[str, ...]] = {
    "run_insert": (
        "INSERT INTO runs (id, workflow, workflow_json, params_json, session_id, status, owner_pid, "
        f"owner_started, host, created_at, started_at, parent_run_id, error) "
        f"SELECT {_columns(*range(12))}, '' FROM json_each(?) ORDER BY key",
    ),
    # One row per run: run_id, created_at, parent_run_id, and a JSON array of
    # [step, preset output JSON or null] in workflow order.
    "step_init": (
        "INSERT INTO steps (run_id, step, status, finished_at, output_json, reused_from, position) "
        "SELECT ?1, json_extract(value, '$[0]'), "
        f"CASE WHEN json_extract(value, '$[1]') IS NULL THEN '{TaskStatus.PENDING.value}' "
        f"ELSE '{TaskStatus.COMPLETED.value}' END, "
        "CASE WHEN json_extract(value, '$[1]') IS NULL THEN NULL ELSE ?2 END, json_extract(value, '$[1]'), "
        "CASE WHEN json_extract(value, '$[1]') IS NULL THEN NULL ELSE ?3 END, key "
        "FROM json_each(?4) WHERE true ORDER BY key ON CONFLICT (run_id, step) DO NOTHING",
    ),
    "history": (
        f"INSERT INTO transitions (run_id, step, status, attempt, at) SELECT {_columns(0, 1, 2, 3, 4)} "
        "FROM json_each(?) ORDER BY key",
    ),
    "step_upsert": (
        "INSERT INTO steps (run_id, step, status, attempt, started_at, finished_at, error, output_json) "
        f"SELECT {_columns(*range(8))} FROM json_each(?) WHERE true ORDER BY key "
        "ON CONFLICT (run_id, step) DO UPDATE SET status = excluded.status, "
        "attempt = MAX(steps.attempt, excluded.attempt), "
        "started_at = COALESCE(excluded.started_at, steps.started_at), finished_at = excluded.finished_at, "
        "error = excluded.error, output_json = COALESCE(excluded.output_json, steps.output_json)",
    ),
    "attempt_upsert": (
        "INSERT INTO attempts (run_id, step, attempt, status, started_at, finished_at, exit_code, error, "
        f"output_json, log_path) SELECT {_columns(*range(10))} FROM json_each(?) WHERE true ORDER BY key "
        "ON CONFLICT (run_id, step, attempt) DO UPDATE SET status = excluded.status, "
        "started_at = COALESCE(attempts.started_at, excluded.started_at), "
        "finished_at = COALESCE(excluded.finished_at, attempts.finished_at), "
        "exit_code = COALESCE(excluded.exit_code, attempts.exit_code), error = excluded.error, "
        "output_json = COALESCE(excluded.output_json, attempts.output_json), "
        "log_path = COALESCE(excluded.log_path, attempts.log_path)",
    ),
    # A step the run settled without a transition (refused at start, say) takes its
    # final status; a step that already ended keeps what its transition said.
    "step_settle": (
        "UPDATE steps SET status = ?, error = CASE WHEN ? = '' THEN error ELSE ? END, "
        f"finished_at = COALESCE(finished_at, ?) WHERE run_id = ? AND step = ? AND status NOT IN ({_TERMINAL_SQL})",
    ),
    "finish": ("UPDATE runs SET status = ?, finished_at = ?, error = ? WHERE id = ?",),
    "alloc": (
        "INSERT OR REPLACE INTO allocations (id, run_id, requester_id, resource_id, amount_json, "
        "allocated_at, released_at, owner_pid, owner_started, host) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)",
    ),
    "release": ("UPDATE allocations SET released_at = ? WHERE id = ? AND released_at IS NULL",),
    "session": (
        "INSERT INTO sessions (id, data_json, created_at, status) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET data_json = excluded.data_json, status = excluded.status",
    ),
}
# Rare writes (and the one-per-run step list) keep plain parameters: one executemany row each.
PER_ROW = frozenset({"step_init", "step_settle", "finish", "alloc", "release", "session"})
# A group runs its statements in this order: a run exists before its steps change, and
# ends after them.
PHASES = ("run_insert", "step_init", "history", "step_upsert", "attempt_upsert", "step_settle", "finish", "alloc",
          "release", "session")


def dumps(value: Any) -> str:
    """JSON text of ``value``; what JSON cannot hold is stored as its ``str``."""
    return json.dumps(value, default=str, separators=(",", ":"))


_STEP_FIELDS = tuple(
    (f.name, f.default if f.default is not dataclasses.MISSING else f.default_factory())  # type: ignore[misc]
    for f in dataclasses.fields(WorkflowStep)
    if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
)
_STEP_NAMES = tuple(name for name, _ in _STEP_FIELDS)
_STEP_DEFAULT_VALUES = tuple(default for _, default in _STEP_FIELDS)
_step_values = operator.attrgetter(*_STEP_NAMES)


def workflow_json(workflow: Workflow) -> str:
    """Return the workflow as compact JSON that ``Workflow.from_dict`` reads back.

    Step fields at their default are left out, and enums are written as their values:
    a 10k-step snapshot takes tens of milliseconds (``to_dict`` takes ten times longer).
    """
    data = dataclasses.replace(workflow, steps=[]).to_dict()
    steps = []
    for step in workflow.steps:
        entry: dict[str, Any] = {
            name: value
            for name, value, default in zip(_STEP_NAMES, _step_values(step), _STEP_DEFAULT_VALUES, strict=True)
            if value != default
        }
        entry["name"] = step.name
        if "priority" in entry:  # an IntEnum would otherwise be written as its number
            entry["priority"] = step.priority.label
        steps.append(entry)
    data["steps"] = steps
    return dumps(data)


@dataclasses.dataclass(slots=True)
class NewRun:
    """A queued ``create_run``; its rows (and the workflow snapshot) are built by the writer."""

    run_id: str
    workflow: Workflow
    params: dict[str, Any]
    session_id: str | None
    status: str
    owner_pid: int
    owner_started: float
    host: str
    created_at: float
    parent_run_id: str | None
    preset_outputs: dict[str, Any]

    def rows(self) -> tuple[str, list[tuple[str, list[Any]]]]:
        """Return the run id and the (key, row) pairs that create the run and its steps."""
        started = self.created_at if self.status == WorkflowStatus.RUNNING.value else None
        presets = self.preset_outputs
        # One row for all the steps: [name, preset output JSON or null] in workflow order.
        steps = [[s.name, dumps(presets[s.name]) if s.name in presets else None] for s in self.workflow.steps]
        return self.run_id, [
            ("run_insert", [
                self.run_id, self.workflow.name, workflow_json(self.workflow), dumps(self.params), self.session_id,
                self.status, self.owner_pid, self.owner_started, self.host, self.created_at, started,
                self.parent_run_id,
            ]),
            ("step_init", [self.run_id, self.created_at, self.parent_run_id, dumps(steps)]),
        ]


def build_group(items: Sequence[Any]) -> Group:
    """Turn a group of queued writes into the runs they touch and their rows (the builder).

    ``items`` are :class:`~core.models.TaskTransition` objects, :class:`NewRun` objects and
    ``(run_id, [(key, row), ...])`` tuples, in queue order.
    """
    touched: set[str] = set()
    grouped: dict[str, list[Any]] = {}
    history: list[list[Any]] = []
    steps: dict[tuple[str, str], list[Any]] = {}
    attempts: dict[tuple[str, str, int], list[Any]] = {}
    for item in items:
        if type(item) is TaskTransition:
            _merge_transition(item, history, steps, attempts)
            touched.add(item.run_id)  # type: ignore[arg-type]
            continue
        run_id, rows = item.rows() if isinstance(item, NewRun) else item
        if run_id:
            touched.add(run_id)
        for key, row in rows:
            grouped.setdefault(key, []).append(row)
    if history:
        grouped["history"] = history
        grouped["step_upsert"] = list(steps.values())
        if attempts:
            grouped["attempt_upsert"] = list(attempts.values())
    return touched, grouped


def _merge_transition(
    t: TaskTransition,
    history: list[list[Any]],
    steps: dict[tuple[str, str], list[Any]],
    attempts: dict[tuple[str, str, int], list[Any]],
) -> None:
    """Add one transition's history row and fold it into its step's and attempt's rows."""
    status = t.status
    if type(status) is not TaskStatus:
        status = TaskStatus(status)
    run_id, name, at, result = t.run_id, t.name, t.at, t.result
    attempt = t.attempt or (result.attempt if result is not None else 0)
    terminal = status in _TERMINAL
    if result is None:
        error, output, exit_code, started, result_end = t.error, None, None, None, None
    else:
        error = t.error or ("" if result.success else result.error_message)
        output = dumps(result.data) if result.data is not None else None
        exit_code, started, result_end = result.exit_code, result.started_at, result.finished_at
    if started is None and status is _RUNNING:
        started = at
    finished = (result_end or at) if terminal else None
    history.append([run_id, name, status, attempt, at])
    # steps row: [run_id, step, status, attempt, started_at, finished_at, error, output_json]
    key = (run_id, name)
    row = steps.get(key)
    if row is None:
        steps[key] = [run_id, name, status, attempt, started, finished, error, output]
    else:
        row[2], row[5], row[6] = status, finished, error
        if attempt > row[3]:
            row[3] = attempt
        if started is not None:
            row[4] = started
        if output is not None:
            row[7] = output
    if attempt < 1:
        return
    if status is _RUNNING or terminal:
        attempt_status: str = status
        attempt_end = finished
    elif result is not None:  # back to pending/ready: this attempt failed, a retry follows
        attempt_status, attempt_end = _FAILED, result_end or at
    else:
        return
    # attempts row: [run_id, step, attempt, status, started_at, finished_at, exit_code,
    # error, output_json, log_path]
    akey = (run_id, name, attempt)
    arow = attempts.get(akey)
    if arow is None:
        attempts[akey] = [run_id, name, attempt, attempt_status, started, attempt_end, exit_code, error, output,
                          t.log_path]
        return
    arow[3], arow[7] = attempt_status, error
    if arow[4] is None:
        arow[4] = started
    if attempt_end is not None:
        arow[5] = attempt_end
    if exit_code is not None:
        arow[6] = exit_code
    if output is not None:
        arow[8] = output
    if t.log_path is not None:
        arow[9] = t.log_path
