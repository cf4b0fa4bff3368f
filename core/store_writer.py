"""The run store's single writer thread: a queue of writes, committed in groups.

Callers (the dispatcher's listener above all) only put a write on a queue and return.
One thread per store wakes on the first queued write, lets ``delay`` seconds (about
50 ms) of writes gather, and commits the lot in one ``BEGIN IMMEDIATE`` transaction;
``flush``, a waiting caller or ``close`` cut the wait short. The rows end up as writing
each at once would leave them, because a group runs its statements phase by phase (runs
before their steps, steps before the run's end) and keeps queue order inside each phase.

Failure handling, so that what was committed before is never harmed:

* another process holds the write lock: ``busy_timeout`` waits, and the whole group is
  retried with backoff if SQLite still reports it busy;
* one write is bad (say a duplicate run id): the group is rolled back and replayed one
  write at a time, each in a savepoint, so only that write is lost and it is reported;
* the disk is full or the file turns unwritable: the group is rolled back and dropped,
  the failure is kept and raised from the next :meth:`GroupCommitWriter.flush`.

Each committed group also bumps the store's change counter and stamps the runs it
touched with the new value; that is what ``Store.changes_since`` watches.

Frequent writes (task transitions) reach SQLite as multi-row ``VALUES`` statements, a
few per group, never through ``executemany``: ``executemany`` hands the GIL back and
forth once per row, and on a busy scheduler each hand-back waits out the interpreter's
switch interval, while one statement per chunk of rows runs in SQLite with the GIL
released throughout. Binding plain parameters also costs the GIL-holding side less than
encoding the rows as JSON, and spares SQLite from parsing it. Rare writes (a run's
creation and end, allocations, sessions) use ``executemany``.
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from .errors import StoreError
from .store_schema import describe_error, is_busy

__all__ = ["Group", "Builder", "Call", "GroupCommitWriter"]

log = logging.getLogger(__name__)

# What a group of queued writes becomes: the runs they touch, and the rows for each
# statement key: a list of parameter rows, or for a ``values`` key one flat list of
# parameters.
Group = tuple[set[str], dict[str, list[Any]]]
Builder = Callable[[Sequence[Any]], Group]

_STOP = object()
_BUSY_RETRIES = 8
_MAX_VALUES_ROWS = 1024
_MAX_FAILURES_KEPT = 20


class Call:
    """A write that runs arbitrary SQL and hands its result back to a waiting caller.

    ``fn(conn, touched)`` runs inside the group's transaction (in its own savepoint);
    it adds the ids of runs it changed to ``touched``.
    """

    __slots__ = ("fn", "future")

    def __init__(self, fn: Callable[[sqlite3.Connection, set[str]], Any]) -> None:
        self.fn = fn
        self.future: Future[Any] = Future()


class GroupCommitWriter:
    """Owns the store's write connection and the thread that commits queued writes.

    ``statements`` maps a key to the SQL statements that consume that key's rows.
    Usually each statement runs once per row (``executemany``). The keys in ``values``
    (key -> columns per row) are the frequent writes: their rows come as one flat
    parameter list, the key's first statement reads them from ``VALUES {values}`` a
    chunk at a time (skipping rows whose first column is NULL, which pad a chunk to a
    cached size), and its other statements, which take no parameters, run once after it.
    ``order`` is the phase order in which a group executes the keys; ``build(items)``
    turns queued writes into their :data:`Group`; ``setup`` runs once on the connection
    (temp tables, pragmas).
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        *,
        statements: dict[str, tuple[str, ...]],
        order: tuple[str, ...],
        values: dict[str, int] | None = None,
        setup: tuple[str, ...] = (),
        build: Builder,
        delay: float = 0.05,
        max_batch: int = 5000,
        name: str = "orchtui-store-writer",
    ) -> None:
        self._conn = conn
        self._path = path
        self._statements = statements
        self._order = order
        self._values = dict(values or {})
        # Rows per VALUES statement: a power of two within SQLite's parameter limit, so a
        # group needs few statements and the padded sizes (1, 2, 4, ...) stay few and cached.
        limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        self._chunk_rows = {key: 1 << (max(1, min(_MAX_VALUES_ROWS, limit // columns)).bit_length() - 1)
                            for key, columns in self._values.items()}
        self._values_sql: dict[tuple[str, int], str] = {}
        try:
            for statement in setup:
                conn.execute(statement)
        except sqlite3.Error as exc:
            raise describe_error(exc, path, "prepare the run store") from None
        self._build = build
        self._delay = max(0.0, delay)
        self._max_batch = max(1, max_batch)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._hurry = threading.Event()  # set by flush, call and close: commit now
        self._failures: list[StoreError] = []
        self._failures_lock = threading.Lock()
        self._closed = False
        self.commits = 0
        self.writes = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ callers

    def submit(self, item: Any) -> None:
        """Queue one write; returns at once.

        Raises:
            StoreError: the writer was closed.
        """
        if self._closed:
            raise StoreError(f"the run store {self._path} is closed; open it again")
        self._queue.put(item)

    def call(self, fn: Callable[[sqlite3.Connection, set[str]], Any], timeout: float | None = 60.0) -> Any:
        """Run ``fn(conn, touched)`` in the writer's next transaction and return its result.

        Raises:
            StoreError: the store is closed, the write failed, or it did not commit
                within ``timeout`` seconds.
            Exception: whatever ``fn`` raised (its changes are rolled back).
        """
        item = Call(fn)
        self.submit(item)
        self._hurry.set()
        try:
            return item.future.result(timeout)
        except TimeoutError:
            raise StoreError(f"the run store {self._path} did not commit within {timeout} s; retry") from None

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every write queued so far is committed.

        Returns False when ``timeout`` seconds passed first.

        Raises:
            StoreError: a write failed since the last flush (the first failure, with a
                count of the others); the failures are cleared.
        """
        if self._closed and not self._thread.is_alive():
            self._raise_failures()
            return True
        done = threading.Event()
        self._queue.put(done)
        self._hurry.set()
        finished = done.wait(timeout)
        self._raise_failures()
        return finished

    def close(self, timeout: float = 30.0) -> None:
        """Commit what is queued, stop the thread and close the write connection."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._hurry.set()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._conn.close()

    @property
    def failures(self) -> list[StoreError]:
        """Write failures not yet raised by :meth:`flush`."""
        with self._failures_lock:
            return list(self._failures)

    def _raise_failures(self) -> None:
        with self._failures_lock:
            failures, self._failures = self._failures, []
        if failures:
            first = failures[0]
            if len(failures) > 1:
                first = StoreError(
                    f"{first.message} (and {len(failures) - 1} more failed write(s))",
                    error_code=first.error_code,
                    details=first.details,
                )
            raise first

    def _fail(self, error: StoreError) -> None:
        log.error("run store write failed: %s", error.message)
        with self._failures_lock:
            if len(self._failures) < _MAX_FAILURES_KEPT:
                self._failures.append(error)

    # ------------------------------------------------------------------- thread

    def _run(self) -> None:
        stop = False
        backlog = False
        while not stop:
            first = self._queue.get()
            if not backlog and not (first is _STOP or type(first) in (threading.Event, Call)):
                # Gather by sleeping out the delay instead of waking for every write: a
                # wake-up per write would take the GIL from the dispatcher each time.
                self._hurry.wait(self._delay)
            self._hurry.clear()
            items = [first]
            try:
                while len(items) < self._max_batch:
                    items.append(self._queue.get_nowait())
            except queue.Empty:
                pass
            backlog = len(items) >= self._max_batch
            writes: list[Any] = []
            calls: list[Call] = []
            markers: list[threading.Event] = []
            for item in items:
                kind = type(item)
                if kind is Call:
                    calls.append(item)
                elif kind is threading.Event:
                    markers.append(item)
                elif item is _STOP:
                    stop = True
                else:
                    writes.append(item)
            if writes or calls:
                try:
                    self._commit_group(writes, calls)
                except Exception as exc:  # the writer must outlive any one bad group
                    self._rollback()
                    error = StoreError(f"cannot save run state to {self._path}: {exc}")
                    self._fail(error)
                    for call in calls:
                        if not call.future.done():
                            call.future.set_exception(error)
            for marker in markers:
                marker.set()

    def _commit_group(self, writes: list[Any], calls: list[Call]) -> None:
        results: list[Any] = []
        delay = 0.05
        for attempt in range(_BUSY_RETRIES):
            try:
                results = self._transaction(writes, calls)
                break
            except sqlite3.Error as exc:
                self._rollback()
                if is_busy(exc) and attempt + 1 < _BUSY_RETRIES:
                    time.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                error = describe_error(exc, self._path, "save run state")
                self._fail(error)
                for call in calls:
                    call.future.set_exception(error)
                return
        self.commits += 1
        self.writes += len(writes) + len(calls)
        for call, outcome in zip(calls, results, strict=True):
            if isinstance(outcome, BaseException):
                call.future.set_exception(outcome)
            else:
                call.future.set_result(outcome)

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                log.exception("rollback failed on %s", self._path)

    def _transaction(self, writes: list[Any], calls: list[Call]) -> list[Any]:
        """Apply the group in one transaction; returns each call's result (or exception).

        When one write is bad, the group is rolled back and replayed one write at a time.
        """
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            touched = self._write(writes)
        except Exception as exc:
            if isinstance(exc, sqlite3.OperationalError) and not _statement_level(exc):
                raise  # the disk, not one write: fail the whole group
            conn.execute("ROLLBACK")
            conn.execute("BEGIN IMMEDIATE")
            touched = self._write_each(writes)
        results = [self._savepoint(lambda c=call: c.fn(conn, touched)) for call in calls]
        self._stamp(touched)
        conn.execute("COMMIT")
        return results

    def _write(self, writes: list[Any]) -> set[str]:
        """Build the rows of ``writes`` and execute them phase by phase; returns touched runs."""
        if not writes:
            return set()
        touched, grouped = self._build(writes)
        for key in self._order:
            rows = grouped.get(key)
            if rows:
                self._execute(key, rows)
        return touched

    def _write_each(self, writes: list[Any]) -> set[str]:
        """Apply each write in its own savepoint, reporting (and skipping) the bad ones."""
        touched: set[str] = set()
        for item in writes:
            outcome = self._savepoint(lambda i=item: self._write([i]))
            if isinstance(outcome, BaseException):
                self._fail(describe_error(outcome, self._path, f"save {_describe(item)}")
                           if isinstance(outcome, sqlite3.Error)
                           else StoreError(f"cannot save {_describe(item)} to {self._path}: {outcome}"))
            else:
                touched |= outcome
        return touched

    def _execute(self, key: str, rows: list[Any]) -> None:
        columns = self._values.get(key)
        if columns is not None:
            self._execute_values(key, rows, columns)
            return
        for statement in self._statements[key]:
            self._conn.executemany(statement, rows)

    def _execute_values(self, key: str, params: list[Any], columns: int) -> None:
        """Run the key's first statement on the flat ``params`` (``columns`` per row) a chunk at a
        time, then its other statements (which take no parameters) once."""
        load, *after = self._statements[key]
        chunk = self._chunk_rows[key]
        width = chunk * columns
        for start in range(0, len(params), width):
            part = params[start:start + width]
            rows = len(part) // columns
            size = chunk if rows == chunk else 1 << (rows - 1).bit_length()
            if size > rows:  # NULL rows up to a cached statement size; the statement skips them
                part.extend([None] * ((size - rows) * columns))
            sql = self._values_sql.get((key, size))
            if sql is None:
                row = "(" + ",".join("?" * columns) + ")"
                sql = self._values_sql[(key, size)] = load.format(values=",".join([row] * size))
            self._conn.execute(sql, part)
        for statement in after:
            self._conn.execute(statement)

    def _savepoint(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` in a savepoint; return its result, or the exception it raised.

        Disk-level errors (full, I/O, read-only) are re-raised: they doom the whole group.
        """
        conn = self._conn
        conn.execute("SAVEPOINT one_write")
        try:
            result = fn()
        except sqlite3.OperationalError as exc:
            if not _statement_level(exc):
                raise
            conn.execute("ROLLBACK TO one_write")
            conn.execute("RELEASE one_write")
            return exc
        except Exception as exc:
            conn.execute("ROLLBACK TO one_write")
            conn.execute("RELEASE one_write")
            return exc
        conn.execute("RELEASE one_write")
        return result

    def _stamp(self, touched: set[str]) -> None:
        version = self._conn.execute("UPDATE counter SET version = version + 1 RETURNING version").fetchone()[0]
        if touched:
            self._conn.execute("UPDATE runs SET version = ? WHERE id IN (SELECT value FROM json_each(?))",
                               (version, json.dumps(sorted(touched))))


def _statement_level(exc: sqlite3.OperationalError) -> bool:
    """True for an error confined to one statement (not a full disk or a lost file)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    return not name.startswith(("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_READONLY", "SQLITE_CORRUPT",
                                "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN", "SQLITE_NOTADB"))


def _describe(item: Any) -> str:
    """Name a queued write for an error message ("run state of run-1")."""
    run_id = getattr(item, "run_id", None)
    if run_id is None and isinstance(item, tuple) and item and isinstance(item[0], str):
        run_id = item[0]
    return f"run state of {run_id}" if run_id else "a record"
