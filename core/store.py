"""The run store: every run, step attempt, output and project, in one SQLite file.

One database in WAL mode under the state directory (``.workflows/orchtui.db``, or
``$ORCHTUI_DIR``) is shared by every orchtui process: the dashboard, a CLI ``run``, the
MCP server. Each :class:`Store` has one writer thread that commits queued writes in
groups (see :mod:`core.store_writer`); reads use a connection per thread and, WAL
being what it is, never wait for the writer or block it. Several processes can write
at once: each group is one ``BEGIN IMMEDIATE`` transaction, ``busy_timeout`` waits out
the others, and a still-busy group is retried.

Run writes (``create_run``, ``record_transition``, ``finish_run``, allocations,
sessions) only enqueue; :meth:`Store.flush` waits for them. Project writes and
maintenance (prune, recovery) wait for their own commit.

Durability and semantics:

* A crash loses at most the writes of the last ~50 ms, never committed ones. A step
  whose completion was not committed yet runs again on resume; a committed completion
  never does (at-least-once).
* When a store opens, runs whose owner process is gone (checked by pid *and* process
  start time, so a recycled pid does not fool it; same host only) are marked
  INTERRUPTED, their running steps too, and their resource allocations released.
* Watching: every committed group bumps a change counter and stamps the runs it
  touched; :meth:`Store.changes_since` returns the runs changed after a version.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import logging
import os
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import psutil

from .clock import SYSTEM_CLOCK, Clock
from .config import Settings, load_settings
from .errors import StoreError
from .logs import RUN_ID_MAX, claim_log_dir, run_log_dir, validate_run_id
from .models import (
    OrchestrationSession,
    Project,
    ResourceAllocation,
    TaskStatus,
    TaskTransition,
    Workflow,
    WorkflowStatus,
    record_data_problems,
)
from .snapshot import RunView
from .store_records import (
    ATTEMPT_COLUMNS,
    RUN_COLUMNS,
    AttemptRecord,
    RunRecord,
    StepRecord,
    attach_steps,
    attempt_from_row,
    loads,
    record_from_json,
    run_from_row,
    workflow_or_none,
)
from .process_tree import kill_orphans, this_process
from .store_history import HistoryEntry, derive_history
from .store_recovery import HEARTBEAT_INTERVAL, OwnedRun, OwnerHeartbeat, host, mark_interrupted, orphaned, stamp_seen
from .store_rows import PHASES, SETUP, STATEMENTS, VALUES_ROWS, NewRun, TransitionRows, build_group, dumps
from .store_schema import connect, connect_read_only, describe_error, ensure_schema
from .store_writer import GroupCommitWriter

__all__ = ["Store", "RunRecord", "StepRecord", "AttemptRecord", "prepare_state_directory"]

T = TypeVar("T")

log = logging.getLogger(__name__)

_TERMINAL_RUN = tuple(s.value for s in WorkflowStatus if s.is_terminal)
_COMPLETED = TaskStatus.COMPLETED

class Store:
    """The SQLite run store of one state directory (see the module docstring).

    Args:
        db_path: the database file; its directory is created if missing.
        runs_dir: where step logs live (default: ``runs`` next to the database).
        clock: time source for every timestamp the store writes.
        group_commit_delay: how long the writer gathers writes before committing.
        max_db_bytes: cap on the database size; a write past it fails like a full disk.
        recover: mark runs of dead processes INTERRUPTED while opening (default True).
        read_only: only read, for a store in a directory this process may not write
            (another user's, a read-only mount): no writer, no recovery, and every
            write raises StoreError. The database must exist.
        heartbeat_interval: seconds between the stamps that tell when the owner of this
            process's unfinished runs was last alive (``core.store_recovery``). Leave it
            at its default outside tests: recovery, maybe in another process, places a
            death by the default.

    Raises:
        StoreError: the state directory cannot be created or written, the file is not
            an orchtui database, or it was written by a newer orchtui.
    """

    def __init__(
        self,
        db_path: Path,
        *,
        runs_dir: Path | None = None,
        clock: Clock = SYSTEM_CLOCK,
        group_commit_delay: float = 0.05,
        max_db_bytes: int | None = None,
        recover: bool = True,
        read_only: bool = False,
        heartbeat_interval: float = HEARTBEAT_INTERVAL,
    ) -> None:
        self.db_path = Path(db_path)
        self.runs_dir = Path(runs_dir) if runs_dir is not None else self.db_path.parent / "runs"
        self.read_only = read_only
        self._clock = clock
        self._writer: GroupCommitWriter | _NoWriter
        if read_only:
            connect_read_only(self.db_path).close()  # the checks, now rather than at the first read
            self._writer = _NoWriter(self.db_path)
            recover = False
        else:
            prepare_state_directory(self.db_path.parent)
            conn = connect(self.db_path, max_db_bytes=max_db_bytes)
            try:
                ensure_schema(conn, self.db_path)
            except BaseException:
                conn.close()
                raise
            self._writer = GroupCommitWriter(
                conn, self.db_path, statements=dict(STATEMENTS), order=PHASES, values=VALUES_ROWS,
                setup=SETUP, build=build_group, buffer=TransitionRows(self.runs_dir), delay=group_commit_delay,
            )
        self._identity = _file_identity(self.db_path)  # see :meth:`replaced_problem`
        self._record = self._writer.record  # bound once: record_transition is the hot path
        self._heartbeat = OwnerHeartbeat(self._stamp_seen, heartbeat_interval)
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        atexit.register(self._flush_at_exit)
        if recover:
            self.recover_interrupted()

    @classmethod
    def open(cls, settings: Settings | None = None, **options: Any) -> Store:
        """Open the store of ``settings`` (default: the settings in force here).

        Raises:
            StoreError: as for the constructor.
        """
        settings = settings or load_settings()
        return cls(settings.db_path, runs_dir=settings.runs_dir, **options)

    @classmethod
    def open_for_reading(cls, settings: Settings | None = None, **options: Any) -> Store:
        """Open the store of ``settings`` for a caller that only reads: as :meth:`open`
        does, or read-only (``store.read_only``) when this process may not write there
        but the database exists (another user's state directory, a read-only mount).

        Raises:
            StoreError: as for the constructor.
        """
        settings = settings or load_settings()
        try:
            return cls.open(settings, **options)
        except StoreError as exc:
            if exc.error_code != "STORE_READ_ONLY" or not settings.db_path.is_file():
                raise
        return cls(settings.db_path, runs_dir=settings.runs_dir, read_only=True)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.db_path)!r})"

    # ------------------------------------------------------------ lifecycle

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every write queued so far is committed; False on timeout.

        Raises:
            StoreError: a queued write failed (full disk, bad record) since the last
                flush; writes committed before it are intact.
        """
        return self._writer.flush(timeout)

    def close(self) -> None:
        """Commit what is queued, stop the writer and close every connection."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self._flush_at_exit)
        self._heartbeat.stop()
        self._writer.close()
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()

    def _flush_at_exit(self) -> None:
        # A CLI run that exits normally must not lose its last group of writes.
        self._writer.close(timeout=10.0)

    @property
    def pending_failures(self) -> list[StoreError]:
        """Write failures that the next :meth:`flush` will raise."""
        return self._writer.failures

    @property
    def commit_count(self) -> int:
        """Transactions this store's writer committed (for benchmarks and diagnostics)."""
        return self._writer.commits

    # --------------------------------------------------------------- writes

    def create_run(
        self,
        run_id: str,
        workflow: Workflow,
        params: dict[str, Any] | None = None,
        session_id: str | None = None,
        status: WorkflowStatus | str = WorkflowStatus.RUNNING,
        *,
        parent_run_id: str | None = None,
        preset_outputs: dict[str, Any] | None = None,
    ) -> None:
        """Queue a new run owned by this process, with a snapshot of ``workflow``.

        Every step starts PENDING (it gets a ``steps`` row once it changes; readers take
        the others from the snapshot); steps in ``preset_outputs`` start COMPLETED with
        that output, taken over from ``parent_run_id`` (a resume).

        Raises:
            StoreError: the run id is not valid, or the store is closed.
        """
        new_run = self._new_run(run_id, workflow, params, session_id, status, parent_run_id, preset_outputs)
        # Committed at once, not after the group delay: until the run row is there, a
        # crash leaves step processes that recovery cannot trace to their dead owner.
        self._writer.submit(new_run, hurry=True)
        self._heartbeat.wake()

    def claim_run(
        self,
        run_id: str,
        workflow: Workflow,
        params: dict[str, Any] | None = None,
        session_id: str | None = None,
        *,
        parent_run_id: str | None = None,
        preset_outputs: dict[str, Any] | None = None,
        timeout: float = 60.0,
    ) -> None:
        """Create run ``run_id`` like :meth:`create_run`, but only if nobody has, and wait for it.

        The checks run inside the write transaction, which holds SQLite's write lock:
        of two processes claiming one run id (or resuming one run) at the same moment,
        exactly one succeeds. :meth:`create_run` cannot promise that, because it
        returns before the run row is written.

        An id is taken when a stored run has it, or when a run not recorded took it: its
        log directory holds a claim or step logs (:func:`core.logs.claim_log_dir`; the new
        run would write into its logs). A claim that is not written gives the id back.

        A claim that cannot get the write lock within ``timeout`` seconds is dropped, not
        written later.

        Raises:
            StoreError: the id is taken (RUN_ID_TAKEN), ``parent_run_id`` was already
                resumed (RUN_ALREADY_RESUMED), the id is not valid, or the write failed
                or timed out (nothing written).
        """
        new_run = self._new_run(run_id, workflow, params, session_id, WorkflowStatus.RUNNING,
                                parent_run_id, preset_outputs)
        claimed: list[Path] = []  # the claim file, once written: removed again if the run is not

        def write(conn: sqlite3.Connection, touched: set[str]) -> None:
            if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is not None:
                raise run_id_taken(run_id)
            if parent_run_id is not None:
                child = conn.execute("SELECT id FROM runs WHERE parent_run_id = ? ORDER BY created_at LIMIT 1",
                                     (parent_run_id,)).fetchone()
                if child is not None:
                    raise already_resumed(parent_run_id, child[0])
            if not claimed:  # should the writer ever run this twice (a retried group), the claim is ours
                claimed.append(claim_log_dir(self.runs_dir, run_id))  # an unrecorded run's logs, say
            _, rows = build_group([new_run])
            for key in PHASES:
                for statement in STATEMENTS[key] if key in rows else ():
                    conn.executemany(statement, rows[key])
            touched.add(run_id)

        try:
            self._writer.call(write, timeout)
        except BaseException:
            for claim in claimed:
                claim.unlink(missing_ok=True)
            raise
        self._heartbeat.wake()

    def _stamp_seen(self) -> int:
        """Stamp this process's unfinished runs as seen alive now; return how many."""
        pid, started = this_process()
        now = self._clock.time()
        return self._writer.call(lambda conn, touched: stamp_seen(conn, pid, started, now),
                                 self._heartbeat.interval)

    def _new_run(self, run_id: str, workflow: Workflow, params: dict[str, Any] | None, session_id: str | None,
                 status: WorkflowStatus | str, parent_run_id: str | None,
                 preset_outputs: dict[str, Any] | None) -> NewRun:
        """Return the write that creates run ``run_id``, owned by this process.

        Raises:
            StoreError: the run id is not valid.
        """
        validate_run_id(run_id)
        pid, started = this_process()
        return NewRun(run_id, workflow, dict(params or {}), session_id, WorkflowStatus(status).value, pid, started,
                      host(), self._clock.time(), parent_run_id, dict(preset_outputs or {}))

    def record_transition(self, transition: TaskTransition) -> None:
        """Queue one task transition (ignored when the task belongs to no run).

        Cheap enough for the dispatcher thread: its fields are copied into the writer's
        row buffer, and SQLite does the rest on the writer thread.
        """
        self._record(transition)

    def transition_sink(self) -> Callable[[TaskTransition], None]:
        """Return the callable behind :meth:`record_transition`, for callers on a hot path.

        A run reports tens of thousands of transitions a second from the dispatcher
        thread; calling this directly saves a call per transition.
        """
        return self._record

    def finish_run(
        self,
        run_id: str,
        status: WorkflowStatus | str,
        error: str = "",
        *,
        finished_at: float | None = None,
        step_status: Mapping[str, TaskStatus] | None = None,
        step_errors: Mapping[str, str] | None = None,
    ) -> None:
        """Queue the end of a run with its final status and error message.

        ``step_status`` (with ``step_errors``) settles steps the run ended without a
        transition, e.g. steps refused before anything ran. Only FAILED, SKIPPED,
        CANCELLED and INTERRUPTED are taken, and only for steps not already ended:
        a completion is recorded by its transition alone, with its output.
        """
        state = WorkflowStatus(status)
        at = finished_at if finished_at is not None else self._clock.time()
        rows: list[tuple[str, list[Any]]] = []
        errors = step_errors or {}
        for step, step_state in (step_status or {}).items():
            if step_state is _COMPLETED:
                continue  # the common case, skipped without a conversion: 10k-step runs end here
            value = TaskStatus(step_state)
            if value.is_terminal and value is not TaskStatus.COMPLETED:
                message = errors.get(step, "")
                rows.append(("step_settle", [value.value, message, message, at, run_id, step]))
        rows.append(("finish", [state.value, at, error, run_id]))
        self._writer.submit((run_id, rows))

    def record_allocation(self, allocation: ResourceAllocation, run_id: str | None = None) -> None:
        """Queue a resource allocation held by this process (for ``run_id`` if known)."""
        pid, started = this_process()
        self._writer.submit((run_id, [("alloc", [
            allocation.id, run_id, allocation.requester_id, allocation.resource_id, dumps(allocation.amount),
            allocation.allocated_at, pid, started, host(),
        ])]))

    def record_release(self, allocation_id: str, released_at: float | None = None) -> None:
        """Queue the release of allocation ``allocation_id``."""
        at = released_at if released_at is not None else self._clock.time()
        self._writer.submit((None, [("release", [at, allocation_id])]))

    def save_session(self, session: OrchestrationSession) -> None:
        """Queue an insert or update of ``session``."""
        self._writer.submit((None, [("session", [session.id, dumps(session.to_dict()), session.created_at,
                                                 session.status])]))

    # ---------------------------------------------------------------- reads

    def _reader(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"the run store {self.db_path} is closed; open it again")
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect_read_only(self.db_path) if self.read_only else connect(self.db_path)
            conn.execute("PRAGMA query_only = ON")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one read transaction (one consistent snapshot)."""
        conn = self._reader()
        try:
            conn.execute("BEGIN")
            try:
                return fn(conn)
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise describe_error(exc, self.db_path, "read the run store") from None

    def _read_one(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """Return the first row of one SELECT, or None, without an explicit transaction: a
        single statement reads one consistent snapshot anyway, and each statement saved
        is a hand-back of the GIL saved, which matters to a UI thread polling this while
        other threads run Python."""
        conn = self._reader()
        try:
            row: tuple[Any, ...] | None = conn.execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise describe_error(exc, self.db_path, "read the run store") from None
        return row

    def replaced_problem(self) -> str | None:
        """Return why this store is no longer the one at :attr:`db_path` (the file was
        deleted, or another put in its place), or None while it is.

        SQLite keeps reading and writing a deleted file it has open, silently: a
        process that stays up (the dashboard) must look, or it shows a store nobody
        else sees any more. One ``stat``.
        """
        now = _file_identity(self.db_path)
        if now == self._identity:
            return None
        what = "was deleted" if now is None else "was replaced by another file"
        return (f"the run store {self.db_path} {what} while this process had it open; runs recorded since "
                "are not seen here: restart this process")

    def integrity_problem(self) -> str | None:
        """Return SQLite's first complaint about the database file's structure (a
        ``PRAGMA quick_check``, which reads every page), or None when it is sound.

        Raises:
            StoreError: the file cannot be read at all.
        """
        row = self._read_one("PRAGMA quick_check(1)", ())
        return None if row is None or row[0] == "ok" else str(row[0])

    def require_writable(self) -> None:
        """Return None once an (empty) write group commits.

        Raises:
            StoreError: it cannot: a read-only file or directory, a full disk, a lock
                held too long.
        """
        self._writer.call(lambda conn, touched: None)

    def version(self) -> int:
        """Return the change counter: it grows with every committed write group."""
        return self._read(lambda c: c.execute("SELECT version FROM counter").fetchone()[0])

    def stored_run_ids(self, run_ids: Iterable[str]) -> set[str]:
        """Return those of ``run_ids`` still in the store (a prune deletes runs, and
        :meth:`changes_since` reports changes, not deletions)."""
        wanted = list(run_ids)
        if not wanted:
            return set()
        # One value per id, in a JSON array: no limit on how many ids a statement binds.
        rows = self._read(lambda c: c.execute("SELECT id FROM runs WHERE id IN (SELECT value FROM json_each(?))",
                                              (json.dumps(wanted),)).fetchall())
        return {row[0] for row in rows}

    def get_run(self, run_id: str, *, with_attempts: bool = True) -> RunRecord | None:
        """Return the run with its definition, steps (workflow order) and attempts, or None.

        ``with_attempts=False`` leaves each step's ``attempts`` empty: a watcher that shows
        step states need not read one row per attempt of a 10k-step run.
        """

        def read(conn: sqlite3.Connection) -> RunRecord | None:
            row = conn.execute(
                f"SELECT {RUN_COLUMNS}, (SELECT workflow_json FROM run_definitions AS d WHERE d.run_id = runs.id) "
                "FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                return None
            run = run_from_row(row[:-1])
            run.definition = workflow_or_none(row[-1])
            attempts: dict[str, list[AttemptRecord]] = {}
            for arow in _attempts_of(conn, run_id) if with_attempts else ():
                record = attempt_from_row(arow, self.runs_dir)
                attempts.setdefault(record.step, []).append(record)
            for name, status, attempt, started, finished, error, output_json, reused_from in conn.execute(
                "SELECT step, status, attempt, started_at, finished_at, error, output_json, reused_from "
                "FROM steps WHERE run_id = ? ORDER BY position, step", (run_id,)
            ):
                run.steps[name] = StepRecord(name, TaskStatus(status), attempt, started, finished, error or "",
                                             loads(output_json), reused_from, attempts.get(name, []))
            if run.definition is not None:
                run.steps = _in_workflow_order(run.steps, run.definition.step_names)
            return run

        return self._read(read)

    def run_status(self, run_id: str) -> WorkflowStatus | None:
        """Return the status of run ``run_id`` (a cheap read for pollers), or None."""
        row = self._read_one("SELECT status FROM runs WHERE id = ?", (run_id,))
        return None if row is None else WorkflowStatus(row[0])

    def step_status(self, run_id: str, step: str) -> TaskStatus | None:
        """Return the status of one step of a run (a cheap read for pollers), or None."""
        row = self._read(lambda c: c.execute(
            "SELECT status FROM steps WHERE run_id = ? AND step = ? "
            # A step that has not started has no row: it is pending if the snapshot has it.
            f"UNION ALL SELECT '{TaskStatus.PENDING.value}' FROM run_definitions AS d, "
            "json_each(d.workflow_json, '$.steps') "
            "WHERE d.run_id = ?1 AND json_extract(value, '$.name') = ?2 LIMIT 1", (run_id, step)).fetchone())
        return None if row is None else TaskStatus(row[0])

    def get_attempts(self, run_id: str, step: str | None = None) -> list[AttemptRecord]:
        """Return the attempts of a run (of one step), ordered by step then attempt."""
        return self._read(lambda c: [attempt_from_row(r, self.runs_dir) for r in _attempts_of(c, run_id, step)])

    def step_history(self, run_id: str) -> list[HistoryEntry]:
        """Return the run's status changes, oldest first: each attempt's start and end, the
        retries scheduled, and the ends of steps that never ran (see :mod:`core.store_history`).

        Empty for an unknown run. Steps taken over from an earlier run have none here.
        """

        def read(conn: sqlite3.Connection) -> list[HistoryEntry]:
            steps = conn.execute("SELECT step, status, attempt, finished_at, reused_from FROM steps "
                                 "WHERE run_id = ?", (run_id,)).fetchall()
            attempts = [row[1:6] for row in _attempts_of(conn, run_id)]  # step .. finished_at
            stored = conn.execute("SELECT step, status, attempt, at FROM transitions WHERE run_id = ? ORDER BY id",
                                  (run_id,)).fetchall()
            return derive_history(steps, attempts, stored)

        return self._read(read)

    def step_attempt(self, run_id: str, step: str) -> int:
        """Return the newest attempt recorded for one step of a run (0 when none is: the
        step has not started, or no such run or step). One row by its key: cheap enough
        for the UI thread, unlike anything that reads a whole run."""
        row = self._read_one("SELECT attempt FROM steps WHERE run_id = ? AND step = ?", (run_id, step))
        return 0 if row is None else int(row[0])

    def committed_outputs(self, run_id: str) -> dict[str, Any]:
        """Return ``{step: output}`` for every step of the run whose completion committed."""
        return self._read(lambda c: {
            step: loads(output) for step, output in c.execute(
                "SELECT step, output_json FROM steps WHERE run_id = ? AND status = ?",
                (run_id, TaskStatus.COMPLETED.value),
            )
        })

    def list_runs(
        self,
        workflow: str | None = None,
        status: WorkflowStatus | str | None = None,
        limit: int | None = 50,
        since: float | None = None,
        *,
        with_steps: bool = False,
    ) -> list[RunRecord]:
        """Return runs, newest first, filtered by workflow name, status and creation time.

        Listed runs carry no definition; ``steps`` is filled (without attempts) only
        ``with_steps``.
        """
        clauses, args = [], []
        if workflow is not None:
            clauses.append("workflow = ?")
            args.append(workflow)
        if status is not None:
            clauses.append("status = ?")
            args.append(WorkflowStatus(status).value)
        if since is not None:
            clauses.append("created_at >= ?")
            args.append(since)
        sql = f"SELECT {RUN_COLUMNS} FROM runs"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY created_at DESC, id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))

        def read(conn: sqlite3.Connection) -> list[RunRecord]:
            runs = [run_from_row(r) for r in conn.execute(sql, args)]
            if with_steps:
                _attach_all_steps(conn, runs)
            return runs

        return self._read(read)

    def run_views(self, limit: int = 50) -> list[RunView]:
        """Return the newest ``limit`` runs as the faces show them."""
        return [run.to_view() for run in self.list_runs(limit=limit, with_steps=True)]

    def changes_since(self, version: int, *, steps_of: Iterable[str] | None = None) -> tuple[int, list[RunView]]:
        """Return ``(current version, runs changed after version)`` for watchers.

        Poll with the version this returned last time (start with 0 for every run).
        Runs deleted by :meth:`prune` do not appear. Each view has its per-step states,
        or, when ``steps_of`` is given, only the views of those runs do: listing the
        steps of a 10k-step run costs tens of milliseconds, which a watcher that shows
        one run's steps need not pay for every other run that changed.
        """
        wanted = None if steps_of is None else set(steps_of)

        def read(conn: sqlite3.Connection) -> tuple[int, list[RunView]]:
            current = conn.execute("SELECT version FROM counter").fetchone()[0]
            runs = [run_from_row(r) for r in conn.execute(
                f"SELECT {RUN_COLUMNS} FROM runs WHERE version > ? ORDER BY created_at DESC, id", (version,)
            )]
            return current, [_view_with_steps(conn, run) if wanted is None or run.run_id in wanted else run.to_view()
                             for run in runs]

        return self._read(read)

    def get_run_view(self, run_id: str) -> RunView | None:
        """Return run ``run_id`` as the faces show it, with its per-step maps, or None.

        What a watcher reads many times a second: the step maps are filled straight from
        the rows, without a record per step, so reading a 10k-step run leaves two dicts
        behind rather than 10k objects for the garbage collector to trace.
        """

        def read(conn: sqlite3.Connection) -> RunView | None:
            row = conn.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
            return None if row is None else _view_with_steps(conn, run_from_row(row))

        return self._read(read)

    def definition_text(self, run_id: str) -> str | None:
        """Return the JSON text of run ``run_id``'s workflow snapshot, or None.

        For a watcher that keeps the workflows it parsed by their text: runs of an
        unchanged workflow store the same text, and parsing a 10k-step snapshot again
        would cost ~100 ms and 40k new objects.
        """
        row = self._read(lambda c: c.execute(
            "SELECT workflow_json FROM run_definitions WHERE run_id = ?", (run_id,)).fetchone())
        return None if row is None else str(row[0])

    def resolve_run_id(self, prefix: str) -> str:
        """Return the id of the one run whose id is ``prefix`` or starts with it.

        Raises:
            StoreError: no run matches, or several do (the message lists some).
        """
        text = prefix.strip()
        if not text:
            raise StoreError("give a run id (or its first characters); list runs with `orchtui runs`")
        if len(text) > RUN_ID_MAX:  # no run has it, and SQLite refuses such a LIKE pattern as "too complex"
            raise StoreError(f"no run matches '{text[:40]}...' ({len(text)} characters): run ids are at most "
                             f"{RUN_ID_MAX}; list runs with `orchtui runs`", error_code="RUN_NOT_FOUND",
                             details={"run_id": text[:RUN_ID_MAX]})

        def read(conn: sqlite3.Connection) -> list[str]:
            if conn.execute("SELECT 1 FROM runs WHERE id = ?", (text,)).fetchone():
                return [text]
            escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            return [r[0] for r in conn.execute(
                "SELECT id FROM runs WHERE id LIKE ? ESCAPE '\\' ORDER BY created_at DESC LIMIT 6", (escaped + "%",)
            )]

        matches = self._read(read)
        if not matches:
            raise StoreError(f"no run matches {text!r}; list runs with `orchtui runs`",
                             error_code="RUN_NOT_FOUND", details={"run_id": text})
        if len(matches) > 1:
            shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
            raise StoreError(f"run id {text!r} is ambiguous ({shown}); give more characters",
                             error_code="RUN_AMBIGUOUS", details={"run_id": text, "matches": matches[:5]})
        return matches[0]

    def resumed_by(self, run_id: str) -> list[str]:
        """Return the ids of the runs that resumed (or reran) ``run_id``, oldest first."""
        return self._read(lambda c: [r[0] for r in c.execute(
            "SELECT id FROM runs WHERE parent_run_id = ? ORDER BY created_at", (run_id,))])

    def open_allocations(self, run_id: str | None = None) -> list[ResourceAllocation]:
        """Return the allocations not yet released (of one run when ``run_id`` is given)."""
        sql = "SELECT id, resource_id, requester_id, amount_json, allocated_at FROM allocations WHERE released_at IS NULL"
        args: tuple[Any, ...] = ()
        if run_id is not None:
            sql += " AND run_id = ?"
            args = (run_id,)
        return self._read(lambda c: [
            ResourceAllocation(id=i, resource_id=r, requester_id=q, amount=loads(a) or {}, allocated_at=t)
            for i, r, q, a, t in c.execute(sql + " ORDER BY allocated_at", args)
        ])

    def get_session(self, session_id: str) -> OrchestrationSession | None:
        """Return the stored session, or None."""
        row = self._read(lambda c: c.execute("SELECT data_json FROM sessions WHERE id = ?", (session_id,)).fetchone())
        return None if row is None else record_from_json(OrchestrationSession, row[0], self.db_path)

    def list_sessions(self) -> list[OrchestrationSession]:
        """Return every stored session, oldest first."""
        rows = self._read(lambda c: c.execute("SELECT data_json FROM sessions ORDER BY created_at").fetchall())
        return [record_from_json(OrchestrationSession, r[0], self.db_path) for r in rows]

    # ------------------------------------------------------------- projects

    def save_project(self, project: Project) -> None:
        """Insert or replace ``project`` (and its milestones); returns once committed.

        Raises:
            StoreError: the write failed.
        """
        self._writer.call(lambda conn, touched: self._write_project(conn, project))

    def register_project(self, project: Project, *, may_replace: Callable[[str], bool] | None = None) -> str | None:
        """Save ``project`` unless another project of its name is registered; returns once
        committed. The check and the write are one transaction, so of several processes
        registering one name at once exactly one succeeds.

        ``may_replace`` is given the registered one's path and says whether ``project``
        may take its place (the same directory loaded again, say).

        Returns:
            None when ``project`` was saved, else the path of the project that keeps the name.

        Raises:
            StoreError: the write failed.
        """
        kept: list[str] = []

        def write(conn: sqlite3.Connection, touched: set[str]) -> None:
            kept.clear()  # a transaction that is retried runs this again
            row = conn.execute("SELECT path FROM projects WHERE name = ?", (project.name,)).fetchone()
            if row is not None and (may_replace is None or not may_replace(row[0])):
                kept.append(row[0])
                return
            self._write_project(conn, project)

        self._writer.call(write)
        return kept[0] if kept else None

    def _write_project(self, conn: sqlite3.Connection, project: Project) -> None:
        data = project.to_dict()
        milestones = data.pop("milestones")
        conn.execute(
            "INSERT INTO projects (name, path, data_json, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET path = excluded.path, data_json = excluded.data_json, "
            "updated_at = excluded.updated_at",
            (project.name, project.path, dumps(data), project.updated_at),
        )
        conn.execute("DELETE FROM milestones WHERE project = ?", (project.name,))
        conn.executemany(
            "INSERT INTO milestones (project, name, data_json, at) VALUES (?, ?, ?, ?)",
            [(project.name, name, dumps(value), project.updated_at) for name, value in milestones.items()],
        )

    def get_project(self, name: str) -> Project | None:
        """Return the project called ``name`` with its milestones, or None.

        Raises:
            StoreError: its stored record is not one this orchtui can read.
        """
        projects = self._read_projects("WHERE name = ?", (name,), strict=True)
        return projects[0] if projects else None

    def list_projects(self) -> list[Project]:
        """Return every project, sorted by name. A record this orchtui cannot read (an
        older one wrote it unchecked) is left out with a logged warning, so it cannot hide
        the others; :meth:`get_project` of its name says what is wrong with it."""
        return self._read_projects("", ())

    def _read_projects(self, where: str, args: tuple[Any, ...], *, strict: bool = False) -> list[Project]:
        def read(conn: sqlite3.Connection) -> list[tuple[str, str, list[tuple[str, str]]]]:
            rows = conn.execute(f"SELECT name, data_json FROM projects {where} ORDER BY name", args).fetchall()
            return [(name, data_json, conn.execute(
                "SELECT name, data_json FROM milestones WHERE project = ? ORDER BY at, rowid", (name,)
            ).fetchall()) for name, data_json in rows]

        projects = []
        for name, data_json, milestones in self._read(read):
            data = json.loads(data_json)
            data["milestones"] = {m: json.loads(m_json) for m, m_json in milestones}
            problems = record_data_problems(Project, data) if isinstance(data, dict) else [("", "is not a mapping")]
            if problems:
                field, problem = problems[0]
                message = (f"{self.db_path}: the record of project {name!r} cannot be read: field {field!r} {problem}; "
                           "register its directory again with `orchtui project load DIR`")
                if strict:
                    raise StoreError(message, error_code="PROJECT_RECORD_INVALID")
                log.warning("%s", message)
                continue
            projects.append(record_from_json(Project, data, self.db_path))
        return projects

    def delete_project(self, name: str) -> bool:
        """Delete the project called ``name``; returns False when there was none."""

        def write(conn: sqlite3.Connection, touched: set[str]) -> bool:
            conn.execute("DELETE FROM milestones WHERE project = ?", (name,))
            return conn.execute("DELETE FROM projects WHERE name = ?", (name,)).rowcount > 0

        return bool(self._writer.call(write))

    def add_milestone(self, project: str, name: str, data: dict[str, Any]) -> bool:
        """Record (or replace) milestone ``name`` of ``project``; False if no such project."""
        now = self._clock.time()

        def write(conn: sqlite3.Connection, touched: set[str]) -> bool:
            if conn.execute("UPDATE projects SET updated_at = ? WHERE name = ?", (now, project)).rowcount == 0:
                return False
            conn.execute("DELETE FROM milestones WHERE project = ? AND name = ?", (project, name))
            conn.execute("INSERT INTO milestones (project, name, data_json, at) VALUES (?, ?, ?, ?)",
                         (project, name, dumps(data), now))
            return True

        return bool(self._writer.call(write))

    # ---------------------------------------------------------- maintenance

    def recover_interrupted(self, *, timeout: float | None = 60.0) -> list[str]:
        """Mark runs whose owner process on this host is gone as INTERRUPTED.

        Their RUNNING steps and attempts become INTERRUPTED and their resource
        allocations (and any other allocation held by a dead process) are released.
        Step processes a dead owner left running are stopped (SIGTERM, then SIGKILL), so
        a resume never runs a step while its orphaned first attempt still does.
        Returns the ids of the runs marked, oldest first. Runs owned by other hosts are
        left alone: their owners cannot be checked from here.

        Raises:
            StoreError: the marks could not be written (within ``timeout`` seconds of
                waiting for another process's write lock, or at all); nothing was marked.
        """
        now = self._clock.time()
        run_ids, owners = self._writer.call(lambda conn, touched: mark_interrupted(conn, touched, now), timeout)
        for pid, started in sorted(owners, key=lambda owner: owner[0]):
            try:
                stopped = kill_orphans(pid, started)
            except (OSError, psutil.Error) as exc:  # cleanup is best effort; the run is marked already
                log.warning("could not stop the steps left by dead process %s: %s", pid, exc)
                continue
            if stopped:
                log.warning("stopped %d step process(es) left running by dead process %s: %s",
                            len(stopped), pid, ", ".join(map(str, stopped)))
        return list(run_ids)

    def recover_orphaned(self, runs: Iterable[OwnedRun]) -> list[str]:
        """Run :meth:`recover_interrupted` if one of ``runs`` (just read) is unfinished and
        its owner process on this host died; return the ids recovery marked.

        Readers that live long (the MCP server) call this so that a run whose process
        was killed shows INTERRUPTED at once, not only once another process opens the
        store. A read-only store marks nothing.

        Raises:
            StoreError: the marks cannot be written.
        """
        if self.read_only or not orphaned(runs):
            return []
        return self.recover_interrupted()

    def prune(self, older_than_seconds: float) -> int:
        """Delete finished runs older than ``older_than_seconds``, with their log directories.

        Running runs are never pruned. Returns how many runs were deleted.
        """
        cutoff = self._clock.time() - older_than_seconds

        def write(conn: sqlite3.Connection, touched: set[str]) -> list[str]:
            done = ",".join("?" * len(_TERMINAL_RUN))
            ids = [r[0] for r in conn.execute(
                f"SELECT id FROM runs WHERE status IN ({done}) AND COALESCE(finished_at, created_at) < ?",
                (*_TERMINAL_RUN, cutoff),
            )]
            keys = [(i,) for i in ids]
            for table, column in (("steps", "run_id"), ("attempts", "run_id"), ("transitions", "run_id"),
                                  ("allocations", "run_id"), ("run_definitions", "run_id"), ("runs", "id")):
                conn.executemany(f"DELETE FROM {table} WHERE {column} = ?", keys)
            return ids

        ids: list[str] = self._writer.call(write)
        for run_id in ids:
            _remove_log_dir(self.runs_dir, run_id)
        return len(ids)

    def log_dir(self, run_id: str) -> Path:
        """Return the directory that holds the step logs of ``run_id``.

        Raises:
            StoreError: the run id is not a safe directory name.
        """
        return run_log_dir(self.runs_dir, run_id)


# A run's attempts, in ``ATTEMPT_COLUMNS`` order. Since schema 4 a step's latest attempt
# is its step row, and only an attempt a retry superseded has an attempt row; before, every
# attempt had one, kept in step with the step row. So: every attempt row, and the step
# row as the latest attempt where it has none. An attempt row still RUNNING while its
# step row has moved on was left by an older orchtui in the middle of a run: the step
# row is newer, and the old row only fills in what it lacks (exit code, log path).
_ATTEMPTS_OF_RUN = (
    f"SELECT {', '.join('a.' + c for c in ATTEMPT_COLUMNS.split(', '))} FROM attempts AS a "
    "LEFT JOIN steps AS s ON s.run_id = a.run_id AND s.step = a.step AND s.attempt = a.attempt "
    f"WHERE a.run_id = ?1 {{step_a}} AND NOT (a.status = '{TaskStatus.RUNNING.value}' "
    f"AND s.status IS NOT NULL AND s.status != '{TaskStatus.RUNNING.value}') "
    "UNION ALL SELECT s.run_id, s.step, s.attempt, s.status, s.started_at, s.finished_at, "
    "COALESCE(s.exit_code, a.exit_code), s.error, s.output_json, COALESCE(s.log_path, a.log_path) "
    "FROM steps AS s LEFT JOIN attempts AS a ON a.run_id = s.run_id AND a.step = s.step AND a.attempt = s.attempt "
    "WHERE s.run_id = ?1 {step_s} AND s.attempt >= 1 "
    f"AND (a.status IS NULL OR (a.status = '{TaskStatus.RUNNING.value}' AND s.status != a.status)) "
    "ORDER BY 2, 3"
)
_ATTEMPTS_SQL = {
    False: _ATTEMPTS_OF_RUN.format(step_a="", step_s=""),
    True: _ATTEMPTS_OF_RUN.format(step_a="AND a.step = ?2", step_s="AND s.step = ?2"),
}


def _attempts_of(conn: sqlite3.Connection, run_id: str, step: str | None = None) -> list[tuple[Any, ...]]:
    """Return the attempt rows of a run (of one step), ordered by step then attempt."""
    if step is None:
        return conn.execute(_ATTEMPTS_SQL[False], (run_id,)).fetchall()
    return conn.execute(_ATTEMPTS_SQL[True], (run_id, step)).fetchall()


def _in_workflow_order(steps: dict[str, StepRecord], names: Iterable[str]) -> dict[str, StepRecord]:
    """Return ``steps`` in workflow order (``names``), with a PENDING record for each step
    that has no row yet (it has not started), followed by any step the names lack."""
    ordered = {name: steps.get(name) or StepRecord(name, TaskStatus.PENDING) for name in names}
    if len(ordered) != len(steps):
        for name, record in steps.items():
            ordered.setdefault(name, record)
    return ordered


def _attach_all_steps(conn: sqlite3.Connection, runs: list[RunRecord]) -> None:
    """Fill each run's ``steps`` (latest state, no attempts) in workflow order, the
    steps that have not started included, as PENDING, from the run's snapshot."""
    attach_steps(conn, runs)
    for run in runs:
        run.steps = _in_workflow_order(run.steps, _step_names(conn, run.run_id))


def _step_names(conn: sqlite3.Connection, run_id: str) -> Iterable[str]:
    """The step names of run ``run_id``'s workflow snapshot, in workflow order (a cursor)."""
    return (name for name, in conn.execute(
        "SELECT json_extract(value, '$.name') FROM run_definitions AS d, json_each(d.workflow_json, '$.steps') "
        "WHERE d.run_id = ? ORDER BY key", (run_id,)))


_STATUS_OF = {status.value: status for status in TaskStatus}


def _view_with_steps(conn: sqlite3.Connection, run: RunRecord) -> RunView:
    """Return ``run``'s view with its per-step maps, in workflow order, the steps that have
    not started included, as PENDING, from the run's snapshot (then any step it lacks).

    Rows are read one at a time into the two maps: each row dies at once, so a read
    leaves no per-step objects behind for the garbage collector.
    """
    status: dict[str, TaskStatus] = dict.fromkeys(_step_names(conn, run.run_id), TaskStatus.PENDING)
    started: dict[str, float] = {}
    for name, value, started_at in conn.execute(
            "SELECT step, status, started_at FROM steps WHERE run_id = ?", (run.run_id,)):
        status[name] = _STATUS_OF[value]
        if started_at is not None:
            started[name] = started_at
    return dataclasses.replace(run.to_view(), step_status=status, step_started_at=started)


def _remove_log_dir(runs_dir: Path, run_id: str) -> None:
    try:
        directory = run_log_dir(runs_dir, run_id)
    except StoreError:  # an id that could never have had a log directory
        return
    shutil.rmtree(directory, ignore_errors=True)


class _NoWriter:
    """The writer of a store opened read-only: nothing to commit, and every write refused."""

    commits = 0

    def __init__(self, path: Path) -> None:
        self._path = path

    @property
    def failures(self) -> list[StoreError]:
        return []

    def _refuse(self, *_args: Any, **_kwargs: Any) -> Any:
        raise StoreError(f"the run store {self._path} is open read-only (its directory may not be written here); "
                         "run this as a user who may write to it", error_code="STORE_READ_ONLY")

    submit = record = call = _refuse

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def close(self, timeout: float | None = None) -> None:
        return None


def _file_identity(path: Path) -> tuple[int, int] | None:
    """Return (device, inode) of ``path``, or None when there is no such file."""
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_dev, found.st_ino


def prepare_state_directory(directory: Path) -> None:
    """Create the state directory and prove it is writable, or raise a clear StoreError.

    Runs need it whether or not the store records them: their step logs live there.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StoreError(f"the state directory {directory} exists but is not a directory; "
                         "remove it or set ORCHTUI_DIR to another path", error_code="STORE_READ_ONLY") from None
    except OSError as exc:
        raise StoreError(f"cannot create the state directory {directory} ({exc.strerror}); "
                         "set ORCHTUI_DIR to a writable directory", error_code="STORE_READ_ONLY") from None
    # Unique per thread, not only per process: two threads opening stores at once must not
    # remove each other's probe (the second removal failed, and its store with it).
    probe = directory / f".orchtui-write-probe-{os.getpid()}-{threading.get_native_id()}"
    try:
        fd = os.open(probe, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        os.close(fd)
        probe.unlink()
    except OSError as exc:
        raise StoreError(f"the state directory {directory} is not writable ({exc.strerror}); "
                         "fix its permissions or set ORCHTUI_DIR to a writable directory",
                         error_code="STORE_READ_ONLY") from None


def run_id_taken(run_id: str) -> StoreError:
    """Return the error for a new run under ``run_id``, an id a stored run has."""
    return StoreError(f"run id {run_id!r} is taken by a stored run (orchtui show {run_id}); "
                      "pick another id or leave --run-id out", error_code="RUN_ID_TAKEN", details={"run_id": run_id})


def already_resumed(run_id: str, child: str) -> StoreError:
    """Return the error for resuming ``run_id`` again, which run ``child`` already resumed."""
    return StoreError(f"run {run_id} was already resumed as {child}; resume or rerun {child} instead, "
                      "so no completed step runs twice", error_code="RUN_ALREADY_RESUMED",
                      details={"run_id": run_id, "resumed_as": child})
