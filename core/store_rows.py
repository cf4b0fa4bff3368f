"""How run writes become rows: the store's write statements and the group builder.

Rare writes are built into rows on the writer thread (:mod:`core.store_writer`).
A run's creation is one row, the run with its
workflow snapshot: a step gets its ``steps`` row when it first changes (readers show
the others PENDING, from the snapshot), except a resume's taken-over steps, which
start COMPLETED; their list is one JSON array that ``json_each`` spreads into rows.

Transitions, two or three per step and tens of thousands a second, take the cheapest
path there is for the Python side, which holds the GIL the scheduler needs:
:class:`TransitionRows` only copies each transition's fields into one flat parameter list
as it arrives, the writer binds them as multi-row ``VALUES`` statements, and SQLite
(with the GIL released) turns each row into its step's upsert.

A step is one row, whatever happened to it: its ``steps`` row is also its latest
attempt (status, times, exit code, error, output, log path). Only an attempt that a
retry superseded gets an ``attempts`` row of its own, and no transition gets a history
row: an attempt says when it started and how it ended, which is what its transitions
said, and :mod:`core.store_history` reads the history back. Writing a history row and
an attempt row per step as well, through a temp table, cost half as much SQLite work
again (callgrind, per 10k steps in groups of 1000: 379M instructions then, 247M for
the step row alone straight from ``VALUES``).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import operator
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .models import TaskStatus, TaskTransition, Workflow, WorkflowStatus, WorkflowStep
from .store_writer import Group
from .text import printable

log = logging.getLogger(__name__)

__all__ = ["STATEMENTS", "PHASES", "VALUES_ROWS", "SETUP", "TRANSITION_COLUMNS", "NewRun", "TransitionRows",
           "build_group", "dumps", "workflow_json"]

# Identity, not equality: a str enum hashes through a Python-level ``__hash__``, an id
# does not, and this test runs for every transition. A status given as a plain string
# is never folded (``TransitionRows.add``), which only costs a row.
_TERMINAL_IDS = frozenset(id(s) for s in TaskStatus if s.is_terminal)
_TERMINAL_SQL = ", ".join(f"'{s.value}'" for s in TaskStatus if s.is_terminal)
_RUNNING = TaskStatus.RUNNING
_PENDING = TaskStatus.PENDING
_RUNNING_SQL = TaskStatus.RUNNING.value
_FAILED = TaskStatus.FAILED.value

# The raw fields of one transition, in VALUES column order: what the dispatcher gave
# (columns 1-7), its result's (8-14), and the time of the RUNNING transition folded
# into it, if any (15; see ``TransitionRows``). The caller's thread only copies attributes;
# the writer empties standard log paths (``TransitionRows.prepare``) and every other rule
# that turns them into rows is SQL in the "transition" statement. The
# copy is plain attribute reads in one tuple display: on Python 3.11 the specialising
# interpreter reads a slot in a few instructions, which made it 2.4x faster than an
# ``operator.attrgetter`` of the same fields (measured: 116 ns against 280 ns a row).
# The values are chosen to bind cheaply: sqlite3 binds exact str/int/float directly,
# but for anything else (None, a bool, an enum) it builds a key and looks up an adapter,
# which cost the writer as much as binding everything else together (callgrind: 120M
# instructions per 10k steps). So the status goes as its plain ``_value_``, a result's
# success as 1 or 0, a missing exit code or folded start as '' and a missing output as
# 0 (which SQL turns back into NULL), and a transition without a result carries
# ``_NO_RESULT`` (success -1 marks it; its other values are never read), not seven Nones.
_NO_RESULT = (0, -1, 0, 0, 0, 0, 0)
TRANSITION_COLUMNS = 15

# A step's log where the dispatcher puts every attempt's, ``<runs dir>/<run id>/<step>.<attempt>.log``
# (:func:`core.logs.attempt_log_path`), is stored as '' and readers rebuild it from the row
# (``core.store_records.attempt_from_row``); any other path (a run recorded with another
# runs directory, say) is stored whole. The full path was half of a step row's bytes, and
# a group commit rewrites most of a run's steps pages into the WAL (10k steps in 5 groups:
# 4.9 MB of WAL with full paths, 2.7 MB with ''). The writer decides which paths to drop
# in Python (:meth:`TransitionRows.prepare`), after the cut and outside the lock: the same
# test as SQL (concatenating the expected path and comparing) cost 42M instructions of
# SQLite per 10k rows, a third of the statement's work, against ~7M for the comprehension.
_LOG_PATH_COLUMN = 6  # 0-based, in a VALUES row

# What a transition's VALUES row means, as SQL over the raw columns, shared by the two
# statements that read such rows ("transition" and "retry"): the raw fields by name
# (r_* are the result's, NULL when the transition has none, marked by column 9 < 0),
# then the values a step or attempt row takes from them. Padding rows (column 1 is 0,
# see ``core.store_writer``) are skipped.
_TRANSITION_ROWS = (
    "WITH raw AS (SELECT column1 AS run_id, column2 AS step, column3 AS status, column4 AS at, "
    "column5 AS attempt, column6 AS error, column7 AS log_path, column9 >= 0 AS has_result, "
    "column8 AS r_attempt, column9 AS r_success, column10 AS r_error, "
    "CASE WHEN column9 >= 0 THEN NULLIF(column11, '') END AS r_exit_code, "
    "CASE WHEN column9 >= 0 THEN column12 END AS r_started, "
    "CASE WHEN column9 >= 0 THEN column13 END AS r_finished, "
    "CASE WHEN column9 >= 0 THEN NULLIF(column14, 0) END AS r_output, NULLIF(column15, '') AS running_at "
    "FROM (VALUES {values}) WHERE column1 != 0), "
    "t AS (SELECT run_id, step, status, "
    "CASE WHEN attempt THEN attempt WHEN has_result THEN r_attempt ELSE 0 END AS attempt, at, "
    f"COALESCE(r_started, running_at, CASE WHEN status = '{_RUNNING_SQL}' THEN at END) AS started, "
    f"CASE WHEN status IN ({_TERMINAL_SQL}) THEN COALESCE(r_finished, at) END AS finished, "
    "CASE WHEN error = '' AND r_success = 0 THEN r_error ELSE error END AS error, r_output AS output, "
    "r_exit_code AS exit_code, log_path, r_finished, running_at FROM raw) "
)

# Run once on the writer's connection: what SQLite keeps aside while it works (sorts,
# materialised subqueries) stays in memory.
SETUP = ("PRAGMA temp_store = MEMORY",)


_STATEMENTS: dict[str, tuple[str, ...]] = {
    # ``runs.workflow_json`` is empty since schema 3: the snapshot has a table of its own.
    "run_insert": (
        "INSERT INTO runs (id, workflow, workflow_json, params_json, session_id, status, owner_pid, "
        "owner_started, host, created_at, started_at, parent_run_id, error, seen_at) "
        "VALUES (?, ?, '', ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?9)",  # seen alive when created (?9)
    ),
    "definition": ("INSERT INTO run_definitions (run_id, workflow_json) VALUES (?, ?)",),
    # A resume's taken-over steps: run_id, created_at, parent_run_id, and a JSON array of
    # [step, output JSON, position in the workflow]. Steps that have not started have no
    # row at all: readers take them, PENDING, from the run's workflow snapshot.
    "step_init": (
        "INSERT INTO steps (run_id, step, status, finished_at, output_json, reused_from, position) "
        f"SELECT ?1, json_extract(value, '$[0]'), '{TaskStatus.COMPLETED.value}', ?2, json_extract(value, '$[1]'), "
        "?3, json_extract(value, '$[2]') FROM json_each(?4) WHERE true ON CONFLICT (run_id, step) DO NOTHING",
    ),
    # A group's transitions: one VALUES row of raw fields each (see ``TransitionRows._row``),
    # a chunk of rows per statement, in queue order. Each becomes its step's upsert (and
    # "retry" below adds the attempt row of an attempt that a retry superseded). No
    # history row: the step and attempt rows hold what the transitions said
    # (:mod:`core.store_history` reads it back). The upsert applies the rows in queue
    # order with the rules a single write follows (the latest value wins, except that a
    # missing start time, output, exit code or log path never erases a known one), so a
    # group leaves what writing each transition at once would.
    "transition": (
        # The step row is also its latest attempt's: a new attempt starts with its own
        # exit code and log path. Rows of one step apply in queue order.
        _TRANSITION_ROWS +
        "INSERT INTO steps (run_id, step, status, attempt, started_at, finished_at, error, output_json, "
        "exit_code, log_path) SELECT run_id, step, status, attempt, started, finished, error, output, exit_code, "
        "log_path FROM t WHERE true "
        "ON CONFLICT (run_id, step) DO UPDATE SET status = excluded.status, "
        "attempt = MAX(steps.attempt, excluded.attempt), "
        "started_at = COALESCE(excluded.started_at, steps.started_at), finished_at = excluded.finished_at, "
        "error = excluded.error, output_json = COALESCE(excluded.output_json, steps.output_json), "
        "exit_code = CASE WHEN excluded.attempt > steps.attempt THEN excluded.exit_code "
        "ELSE COALESCE(excluded.exit_code, steps.exit_code) END, "
        "log_path = CASE WHEN excluded.attempt > steps.attempt THEN excluded.log_path "
        "ELSE COALESCE(excluded.log_path, steps.log_path) END",
    ),
    # An attempt that a retry supersedes (a failed try, back to pending) keeps a row of
    # its own. Its start is the folded RUNNING's (column 15), else its result's, else the
    # step row's while that row is still this attempt's. Which state of the step row
    # that is depends on where the RUNNING came: in an earlier group, the row before
    # this group's transitions (the next attempt may start in this group); in this
    # group, the row after them. So the statement runs on both sides of "transition"
    # (as "retry_before" and "retry", the same rows); the upsert keeps the first start
    # found, and the other values are the same either way.
    "retry": (
        _TRANSITION_ROWS +
        "INSERT INTO attempts (run_id, step, attempt, status, started_at, finished_at, exit_code, error, "
        f"output_json, log_path) SELECT t.run_id, t.step, t.attempt, '{_FAILED}', "
        "COALESCE(t.started, s.started_at), COALESCE(t.r_finished, t.at), t.exit_code, t.error, "
        "t.output, COALESCE(t.log_path, s.log_path) FROM t "
        "LEFT JOIN steps AS s ON s.run_id = t.run_id AND s.step = t.step AND s.attempt = t.attempt "
        "WHERE t.attempt >= 1 "
        "ON CONFLICT (run_id, step, attempt) DO UPDATE SET status = excluded.status, "
        "started_at = COALESCE(attempts.started_at, excluded.started_at), "
        "finished_at = COALESCE(excluded.finished_at, attempts.finished_at), "
        "exit_code = COALESCE(excluded.exit_code, attempts.exit_code), error = excluded.error, "
        "output_json = COALESCE(excluded.output_json, attempts.output_json), "
        "log_path = COALESCE(excluded.log_path, attempts.log_path)",
    ),
    # A step the run settled without a transition (refused at start, say) takes its
    # final status; a step that already ended keeps what its transition said. A step
    # that never started has no row yet (see "step_init"), so this inserts one.
    "step_settle": (
        "INSERT INTO steps (run_id, step, status, error, finished_at) VALUES (?5, ?6, ?1, ?3, ?4) "
        "ON CONFLICT (run_id, step) DO UPDATE SET status = excluded.status, "
        "error = CASE WHEN ?2 = '' THEN steps.error ELSE excluded.error END, "
        f"finished_at = COALESCE(steps.finished_at, excluded.finished_at) WHERE steps.status NOT IN ({_TERMINAL_SQL})",
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


_STATEMENTS["retry_before"] = _STATEMENTS["retry"]
# The store's write statements, by key; the VALUES ones keep their ``{values}`` placeholder
# for the writer.
STATEMENTS: Mapping[str, tuple[str, ...]] = MappingProxyType(_STATEMENTS)


# Keys whose rows are bound as multi-row VALUES (key -> columns per row); the rows of
# such a key come as one flat list of parameters. The other keys are rare writes (a
# run's creation and end, allocations, sessions): one executemany row each.
VALUES_ROWS = {"transition": TRANSITION_COLUMNS, "retry_before": TRANSITION_COLUMNS, "retry": TRANSITION_COLUMNS}
# A group runs its statements in this order: a run exists before its steps change, and
# ends after them.
PHASES = ("run_insert", "definition", "step_init", "retry_before", "transition", "retry", "step_settle", "finish",
          "alloc", "release", "session")


def dumps(value: Any) -> str:
    """JSON text of ``value``; what JSON cannot hold is stored as its ``str``."""
    return json.dumps(value, default=printable, separators=(",", ":"))


def _output_json(data: Any) -> str | int:
    """A step output as a transition row carries it: 0 for none (never JSON text, and an
    integer binds faster than an empty string), else its JSON, or the JSON of its ``str``
    when JSON cannot hold it whole (a circular structure, tuple keys)."""
    if data is None:
        return 0
    try:
        return dumps(data)
    except (ValueError, TypeError, RecursionError):
        try:
            return dumps(str(data))
        except Exception:  # a __str__ that fails too
            return dumps(f"<{type(data).__name__} that cannot be stored>")


_STEP_FIELDS = tuple(
    (f.name, f.default if f.default is not dataclasses.MISSING else f.default_factory())  # type: ignore[misc]
    for f in dataclasses.fields(WorkflowStep)
    if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
)
_STEP_NAMES = tuple(name for name, _ in _STEP_FIELDS)
_STEP_DEFAULT_VALUES = tuple(default for _, default in _STEP_FIELDS)
_step_values = operator.attrgetter(*_STEP_NAMES)
# Generated DAGs are mostly steps that set nothing but a name and dependencies: one
# tuple comparison (in C) recognises them, instead of a comparison per field.
_PLAIN_NAMES = tuple(name for name in _STEP_NAMES if name != "dependencies")
_PLAIN_DEFAULTS = tuple(default for name, default in _STEP_FIELDS if name != "dependencies")
_plain_values = operator.attrgetter(*_PLAIN_NAMES)
# JSON text of a str, exactly as ``json.dumps`` writes it (the C encoder).
_quote = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]
# Text that JSON (ASCII-only, as ``json.dumps`` writes it) keeps as it is: printable ASCII
# but the quote and the backslash.
_JSON_VERBATIM = re.compile(r'[ !#-\[\]-~]*')


def _names_verbatim(steps: Sequence[WorkflowStep]) -> bool:
    """Return True when every step name and dependency is a str that JSON writes as it is,
    checked in one pass over all of them (they are then quoted by concatenation)."""
    try:
        names = "".join([step.name for step in steps])
        deps = "".join(itertools.chain.from_iterable([step.dependencies for step in steps]))
    except TypeError:  # a name or dependency that is not a string
        return False
    return _JSON_VERBATIM.fullmatch(names) is not None and _JSON_VERBATIM.fullmatch(deps) is not None


def workflow_json(workflow: Workflow) -> str:
    """Return the workflow as compact JSON that ``Workflow.from_dict`` reads back.

    Step fields at their default are left out, and enums are written as their values.
    A step that sets nothing but its name and dependencies (most steps of a generated
    DAG) is written straight as text: a 10k-step snapshot then takes a few milliseconds
    and, above all, creates no dict or list per step. Ten thousand containers alive at
    once would outlast a few garbage collections and be promoted to the oldest
    generation, where they hasten a full collection of the whole heap (measured: one
    extra, ~30 ms, per 10k-step run). When every name is plain ASCII (checked once for
    all), names are quoted by concatenation rather than by the encoder one by one (10k
    steps: 9 ms against 15 ms).
    """
    data = dataclasses.replace(workflow, steps=[]).to_dict()
    del data["steps"]
    source = data.get("source_path")
    if source and not os.path.isabs(source) and os.path.isfile(source):
        # `resume --reload` reads the file again, maybe from another directory.
        data["source_path"] = os.path.abspath(source)
    steps: list[str] = []
    verbatim = _names_verbatim(workflow.steps)
    for step in workflow.steps:
        if _plain_values(step) == _PLAIN_DEFAULTS:
            deps = step.dependencies
            if verbatim:
                steps.append('{"dependencies":["' + '","'.join(deps) + '"],"name":"' + step.name + '"}'
                             if deps else '{"name":"' + step.name + '"}')
                continue
            try:
                name = _quote(step.name)
                steps.append('{"dependencies":[' + ",".join(map(_quote, deps)) + '],"name":' + name + "}"
                             if deps else '{"name":' + name + "}")
                continue
            except TypeError:  # a name that is not a string: let dumps write it (with ``default=printable``)
                pass
        entry: dict[str, Any] = {
            name: value
            for name, value, default in zip(_STEP_NAMES, _step_values(step), _STEP_DEFAULT_VALUES, strict=True)
            if value != default
        }
        entry["name"] = step.name
        if "priority" in entry:  # an IntEnum would otherwise be written as its number
            entry["priority"] = step.priority.label
        steps.append(dumps(entry))
    head = dumps(data)
    return head[:-1] + ("," if len(head) > 2 else "") + '"steps":[' + ",".join(steps) + "]}"


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
        rows: list[tuple[str, list[Any]]] = [
            ("run_insert", [
                self.run_id, self.workflow.name, dumps(self.params), self.session_id,
                self.status, self.owner_pid, self.owner_started, self.host, self.created_at, started,
                self.parent_run_id,
            ]),
            ("definition", [self.run_id, workflow_json(self.workflow)]),
        ]
        if presets:
            # One row for the taken-over steps: [name, output JSON, position].
            steps = [[step.name, dumps(presets[step.name]), position]
                     for position, step in enumerate(self.workflow.steps) if step.name in presets]
            rows.append(("step_init", [self.run_id, self.created_at, self.parent_run_id, dumps(steps)]))
        return self.run_id, rows


def build_group(items: Sequence[Any]) -> Group:
    """Turn a group of queued rare writes into the runs they touch and their rows (the builder).

    ``items`` are :class:`NewRun` objects and ``(run_id, [(key, row), ...])`` tuples, in
    queue order; transitions never come here (see :class:`TransitionRows`).
    """
    touched: set[str] = set()
    grouped: dict[str, list[Any]] = {}
    for item in items:
        run_id, rows = item.rows() if isinstance(item, NewRun) else item
        if run_id:
            touched.add(run_id)
        for key, row in rows:
            grouped.setdefault(key, []).append(row)
    return touched, grouped


class TransitionRows:
    """The store's :class:`~core.store_writer.RowBuffer`: task transitions as flat VALUES rows.

    :meth:`add` runs on the thread that reports the transition (the dispatcher's), so it
    only copies fields, an output JSON-encoded only when there is one,
    :data:`TRANSITION_COLUMNS` values per row. The writer thread empties the standard log
    paths (:meth:`prepare`); every other rule that turns them into table rows is SQL
    (see ``_STATEMENTS["transition"]``).

    A RUNNING transition is held back: when its attempt ends (completes, fails, is
    cancelled, or fails with a retry to come) before the writer takes the rows, it is
    folded into the row of its end (column 15 keeps its time): one row instead of two,
    which SQLite applies to the step and attempt rows exactly as it would have applied
    the two one after the other. A RUNNING still held at the take is written then,
    after the group's other rows, which touch other tasks, so each task's rows keep
    their order. An end that cannot take its start in (another log path, say) still
    carries the start's time in column 15, so the attempt row of a retried attempt
    knows when it started even when its result does not say.
    """

    keys = ("transition", "retry_before", "retry")
    __slots__ = ("_flat", "_retries", "_held", "_runs_dir")

    def __init__(self, runs_dir: Path) -> None:
        self._runs_dir = str(runs_dir)
        self._flat: list[Any] = []
        self._retries: list[Any] = []  # rows of transitions that end an attempt with a retry
        self._held: dict[str, TaskTransition] = {}  # task id -> its RUNNING, held back

    def empty(self) -> bool:
        return not self._flat and not self._held

    def add(self, item: TaskTransition) -> None:
        """Take one transition (ignored when it belongs to no run)."""
        if item.run_id is None:
            return
        # Popped first, so that a row that fails below is not written again by take.
        held = self._held.pop(item.task_id, None)
        status = item.status
        if status is _RUNNING:
            if held is not None:  # a start that never ended (not from the dispatcher): keep it
                self._write_held(held)
            self._held[item.task_id] = item  # its attempt may end before the next take
        elif held is None:
            self._row(item)
        elif item.attempt == held.attempt and (id(status) in _TERMINAL_IDS or
                                               (status is _PENDING and item.result is not None)):
            if item.log_path == held.log_path:
                try:
                    self._row(item, held.at)
                except Exception:  # a malformed end must not take its attempt's start with it
                    self._write_held(held)
                    raise
            else:  # the end of the same attempt, with another log: two rows, the end knowing the start
                self._write_held(held)
                self._row(item, held.at)
        else:
            self._write_held(held)
            self._row(item)

    def _write_held(self, held: TaskTransition) -> None:
        """Write a held RUNNING's row. One that cannot become a row is logged, not raised: it
        was taken without complaint when it came, and the transition being added now (or the
        writer thread, at a take) must not fail for it."""
        try:
            self._row(held)
        except Exception:
            log.exception("transition of %s/%s not recorded", held.run_id, held.name)

    def _row(self, item: TaskTransition, running_at: float | str = "") -> None:
        """Append one row. All of it or nothing: a row cut short would shift every later one,
        so everything that can fail runs before the first value is added."""
        flat = self._flat
        result = item.result
        try:  # each tuple is complete before it is added: a missing attribute adds nothing
            if result is None:
                flat += (item.run_id, item.name, item.status._value_, item.at, item.attempt, item.error,
                         item.log_path)
                flat += _NO_RESULT
            else:
                data = result.data
                output = 0 if data is None else _output_json(data)
                exit_code = result.exit_code
                flat += (item.run_id, item.name, item.status._value_, item.at, item.attempt, item.error,
                         item.log_path, result.attempt, 1 if result.success else 0, result.error_message,
                         "" if exit_code is None else exit_code, result.started_at, result.finished_at, output)
        except AttributeError:
            if isinstance(item.status, TaskStatus):
                raise  # not the plain-string status handled below: a malformed transition
            # A status given as a plain string, not a TaskStatus.
            self._row(dataclasses.replace(item, status=TaskStatus(item.status)), running_at)
            return
        flat.append(running_at)
        if result is not None and item.status is _PENDING:  # a failed try, a retry to come
            self._retries += flat[-TRANSITION_COLUMNS:]

    def take(self) -> tuple[set[str], dict[str, list[Any]]]:
        """Return the runs touched and, per statement key, every row since the last take
        (held RUNNINGs last), and start over."""
        for held in self._held.values():
            self._write_held(held)
        flat, retries = self._flat, self._retries
        self._flat, self._retries, self._held = [], [], {}
        rows = {key: part for key, part in (("transition", flat), ("retry_before", retries), ("retry", retries))
                if part}
        return set(flat[::TRANSITION_COLUMNS]), rows

    def prepare(self, rows: dict[str, list[Any]]) -> None:
        """Store '' for every log path where the dispatcher puts it (readers rebuild it).

        Runs on the writer thread after the cut, outside the lock (``rows`` is what
        :meth:`take` returned; its keys may share one list).
        """
        done: set[int] = set()
        for flat in rows.values():
            if id(flat) not in done:
                done.add(id(flat))
                _drop_standard_log_paths(flat, self._runs_dir)


def _drop_standard_log_paths(flat: list[Any], runs_dir: str) -> None:
    """Replace, in the flat VALUES rows ``flat``, each log path that is the standard one
    for its run, step and attempt (:func:`core.logs.attempt_log_path`, spelled inline: it
    runs for every row) with ''."""
    c, lp = TRANSITION_COLUMNS, _LOG_PATH_COLUMN
    prefix, sep = runs_dir + os.sep, os.sep
    flat[lp::c] = ["" if path == f"{prefix}{run}{sep}{step}.{attempt}.log" else path
                   for run, step, attempt, path in zip(flat[0::c], flat[1::c], flat[4::c], flat[lp::c], strict=True)]
