"""The run store's single writer thread: writes gathered, then committed in groups.

Callers only hand a write over and return. Frequent writes (task transitions) go into
a :class:`RowBuffer`, which turns each into flat ``VALUES`` parameters right away on
the caller's thread; rare writes (a run's creation and end, allocations, sessions,
flush markers, calls) go into a list. Both sit behind one lock, so the writer takes
each group as one consistent cut of everything handed over so far. One thread per
store wakes on the first write, lets ``delay`` seconds (about 50 ms) of writes gather,
and commits the lot in one ``BEGIN IMMEDIATE`` transaction; ``flush``, a waiting
caller or ``close`` cut the wait short. The rows end up as writing each at once would
leave them, because a group runs its statements phase by phase (runs before their
steps, steps before the run's end) and keeps arrival order inside each phase.

Why transitions are flattened by the caller and not queued as objects for the writer
to convert: a queued transition object (with its result) outlives its moment by up to
a group's delay, so every garbage collection in between walks thousands of them, and
the writer's per-object Python work holds the GIL that the scheduler needs. Measured
on a 10k-step run: about 20 ms of extra collection time alone. Flat parameters are
strings and numbers, which the collector never visits, and the writer's share of the
GIL becomes binding them.

Failure handling, so that what was committed before is never harmed:

* another process holds the write lock: ``busy_timeout`` waits, and the whole group is
  retried with backoff if SQLite still reports it busy;
* one write is bad (say a duplicate run id): the group is rolled back and replayed one
  write at a time, each in a savepoint, so only that write is lost and it is reported;
* the disk is full or the file turns unwritable: the group is rolled back and dropped,
  the failure is kept and raised from the next :meth:`GroupCommitWriter.flush` (and
  logged), unless the group held only calls: their callers get it, and nobody else.

Each committed group also bumps the store's change counter and stamps the runs it
touched with the new value; that is what ``Store.changes_since`` watches.

Buffered rows reach SQLite as multi-row ``VALUES`` statements, a few per group, never
through ``executemany``: ``executemany`` hands the GIL back and forth once per row,
and on a busy scheduler each hand-back waits out the interpreter's switch interval,
while one statement per chunk of rows runs in SQLite with the GIL released throughout.
Rare writes use ``executemany``.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Protocol

from .errors import StoreError
from .store_schema import describe_error, is_busy

__all__ = ["Group", "Builder", "Call", "RowBuffer", "GroupCommitWriter"]

log = logging.getLogger(__name__)

# What a group of queued writes becomes: the runs they touch, and the rows for each
# statement key: a list of parameter rows, or for a ``values`` key one flat list of
# parameters.
Group = tuple[set[str], dict[str, list[Any]]]
Builder = Callable[[Sequence[Any]], Group]
# What a row buffer hands over at a cut: the runs touched, and per ``values`` key its
# flat parameters.
Buffered = tuple[set[str], dict[str, list[Any]]]


class RowBuffer(Protocol):
    """Where frequent writes become flat ``VALUES`` parameters as they arrive.

    The writer calls ``add``, ``empty`` and ``take`` with its lock held, so an
    implementation needs no locking of its own; ``add`` runs on the caller's thread and
    must be cheap, and per-row work that can wait belongs in ``prepare``, which the
    writer thread calls on the rows it took, after releasing the lock.
    """

    keys: tuple[str, ...]  # the ``values`` statement keys its rows feed

    def add(self, item: Any) -> None:
        """Take one write."""

    def empty(self) -> bool:
        """True when nothing was added since the last :meth:`take`."""

    def take(self) -> tuple[set[str], dict[str, list[Any]]]:
        """Return the runs touched and, per key, the flat parameters of everything added
        (keys without rows may be left out), and start over."""

    def prepare(self, rows: dict[str, list[Any]]) -> None:
        """Finish the rows :meth:`take` returned, in place; called after the cut, without
        the lock, so per-row work done here never holds up :meth:`add`."""


_STOP = object()
_BUSY_RETRIES = 8
# Rows per multi-row VALUES statement. Preparing one costs far more than running it
# (1024 rows: ~9 ms to prepare, ~1.3 ms to run), and every process prepares its own,
# so a short CLI run would pay that for each padded size it meets; at 128 rows the
# prepares are cheap and running costs the same per row (measured: 15.5 ms against
# 19.5 ms for 10k rows, prepares included).
_MAX_VALUES_ROWS = 128
_MAX_FAILURES_KEPT = 20
# Checkpoints (copying the WAL into the database, with two fsyncs) are the writer's to
# schedule, not SQLite's: by default SQLite runs one inside whichever commit crosses
# 1000 WAL pages, which puts ~10 ms of disk waits in the middle of a busy run. The
# writer checkpoints once it has been idle this long, or after this many commits in a
# row without a pause, so the WAL stays bounded under a steady stream too.
_CHECKPOINT_WHEN_IDLE = 0.5
_CHECKPOINT_EVERY = 32
_WAL_SIZE_LIMIT = 64 * 1024 * 1024  # a WAL grown past this is truncated back after a checkpoint


class Call:
    """A write that runs arbitrary SQL and hands its result back to a waiting caller.

    ``fn(conn, touched)`` runs inside the group's transaction (in its own savepoint);
    it adds the ids of runs it changed to ``touched``. A caller that gave up waiting
    cancels ``future``; until the writer holds the write lock and starts ``fn``, that
    keeps ``fn`` from ever running, so a write the caller reported as not done is not
    done later behind its back.
    """

    __slots__ = ("fn", "future", "live")

    def __init__(self, fn: Callable[[sqlite3.Connection, set[str]], Any]) -> None:
        self.fn = fn
        self.future: Future[Any] = Future()
        self.live: bool | None = None  # None until the writer decides: run it, or it was cancelled

    def start(self) -> bool:
        """Return whether ``fn`` is to run: True unless the caller cancelled first (decided once)."""
        if self.live is None:
            self.live = self.future.set_running_or_notify_cancel()
        return self.live


class GroupCommitWriter:
    """Owns the store's write connection and the thread that commits queued writes.

    ``statements`` maps a key to the SQL statements that consume that key's rows.
    Usually each statement runs once per row (``executemany``). The keys in ``values``
    (key -> columns per row) are the frequent writes: their rows come as one flat
    parameter list, the key's first statement reads them from ``VALUES {values}`` a
    chunk at a time (skipping rows whose first column is the integer 0, which pad a chunk to a
    cached size), and its other statements, which take no parameters, run once after it.
    ``order`` is the phase order in which a group executes the keys; ``build(items)``
    turns queued writes into their :data:`Group`; ``buffer`` takes the frequent writes
    handed to :meth:`record` (its keys must be ``values`` keys); ``setup`` runs once on
    the connection (temp tables, pragmas).
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
        buffer: RowBuffer | None = None,
        delay: float = 0.05,
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
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.execute(f"PRAGMA journal_size_limit = {_WAL_SIZE_LIMIT}")
            for statement in setup:
                conn.execute(statement)
        except sqlite3.Error as exc:
            raise describe_error(exc, path, "prepare the run store") from None
        self._uncheckpointed = 0  # commits since the last checkpoint
        self._build = build
        if buffer is not None and not set(buffer.keys) <= set(self._values):
            raise ValueError(f"the row buffer's keys {buffer.keys!r} are not all VALUES keys")
        self._buffer = buffer
        self._buffer_add = buffer.add if buffer is not None else None
        self._delay = max(0.0, delay)
        # Everything handed over and not yet taken: ``_items`` (rare writes, markers,
        # calls) and ``_buffer``, both behind ``_lock`` so a group is one consistent cut.
        self._lock = threading.Lock()
        self._acquire, self._release = self._lock.acquire, self._lock.release
        self._items: list[Any] = []
        self._sleeping = False  # the writer waits on ``_wake`` for the next write
        self._wake = threading.Event()
        self._hurry = threading.Event()  # set by flush, call and close: commit now
        self._failures: list[StoreError] = []
        self._failures_lock = threading.Lock()
        self._closed = False
        self.commits = 0
        self.writes = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ callers

    def submit(self, item: Any, *, hurry: bool = False) -> None:
        """Queue one write; returns at once. ``hurry`` commits it without gathering more.

        Raises:
            StoreError: the writer was closed.
        """
        with self._lock:
            if self._closed:
                raise StoreError(f"the run store {self._path} is closed; open it again")
            self._items.append(item)
            if hurry:
                self._hurry.set()
            if self._sleeping:
                self._sleeping = False
                self._wake.set()

    def record(self, item: Any) -> None:
        """Hand one frequent write to the row buffer; returns at once.

        Raises:
            StoreError: the writer was closed.
        """
        # The lock's bound methods, not ``with``: this runs for every transition, and a
        # ``with`` block looks up and binds __enter__/__exit__ each time (133 against 80 ns).
        self._acquire()
        try:
            if self._closed:
                raise StoreError(f"the run store {self._path} is closed; open it again")
            self._buffer_add(item)  # type: ignore[misc]  # record is only used with a buffer
        finally:  # even a refused record may have written the start it held back
            if self._sleeping:
                self._sleeping = False
                self._wake.set()
            self._release()

    def call(self, fn: Callable[[sqlite3.Connection, set[str]], Any], timeout: float | None = 60.0) -> Any:
        """Run ``fn(conn, touched)`` in the writer's next transaction and return its result.

        Raises:
            StoreError: the store is closed, the write failed, or it did not commit
                within ``timeout`` seconds.
            Exception: whatever ``fn`` raised (its changes are rolled back).
        """
        item = Call(fn)
        self.submit(item, hurry=True)
        try:
            return item.future.result(timeout)
        except TimeoutError:
            if item.future.cancel():
                raise StoreError(f"the run store {self._path} could not be written within {timeout:g} s (another "
                                 "process holds its lock?), so nothing was written; retry") from None
            return item.future.result()  # it runs now, inside a transaction that holds the lock
        except BaseException:  # Ctrl-C while waiting: not written later, if it can still be stopped
            item.future.cancel()
            raise

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every write queued so far is committed.

        Returns False when ``timeout`` seconds passed first.

        Raises:
            StoreError: a write failed since the last flush (the first failure, with a
                count of the others); the failures are cleared.
        """
        done = threading.Event()
        try:
            self.submit(done, hurry=True)
        except StoreError:  # closed: everything was committed (or failed) by close
            self._raise_failures()
            return True
        finished = done.wait(timeout)
        self._raise_failures()
        return finished

    def close(self, timeout: float = 30.0) -> None:
        """Commit what is queued, stop the thread and close the write connection."""
        with self._lock:
            if self._closed:
                return
            self._items.append(_STOP)
            self._closed = True
            self._hurry.set()
            self._sleeping = False
            self._wake.set()
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
        last_cut = 0.0
        while not stop:
            idle = self._sleep_until_written()
            if not self._hurry.is_set():
                # Gather by sleeping out the delay instead of waking for every write: a
                # wake-up per write would take the GIL from the dispatcher each time. A
                # writer that was busy committing counts the delay from its last cut.
                remaining = (time.monotonic() if idle else last_cut) + self._delay - time.monotonic()
                if remaining > 0:
                    self._hurry.wait(remaining)
            with self._lock:
                self._hurry.clear()
                items, self._items = self._items, []
                touched, rows = self._buffer.take() if self._buffer is not None else (set(), {})
            last_cut = time.monotonic()
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
            if writes or calls or any(rows.values()):
                try:
                    if rows:
                        self._buffer.prepare(rows)  # type: ignore[union-attr]  # rows come from a buffer
                    self._commit_group(writes, (touched, rows), calls)
                except Exception as exc:  # the writer must outlive any one bad group
                    self._rollback()
                    error = StoreError(f"cannot save run state to {self._path}: {exc}")
                    if writes or any(rows.values()):
                        self._fail(error)
                    for call in calls:
                        if not call.future.done():
                            call.future.set_exception(error)
            for marker in markers:
                marker.set()
            if self._uncheckpointed >= _CHECKPOINT_EVERY:  # after the waiters are released
                self._checkpoint()
        if self._uncheckpointed:
            self._checkpoint()

    def _sleep_until_written(self) -> bool:
        """Block until something was handed over; True when the writer had to wait for it.

        A writer left idle for a while checkpoints the WAL meanwhile.
        """
        with self._lock:
            idle = not self._items and (self._buffer is None or self._buffer.empty())
            if idle:
                self._sleeping = True
                self._wake.clear()
        if idle and not (self._uncheckpointed and self._wake.wait(_CHECKPOINT_WHEN_IDLE)):
            if self._uncheckpointed:
                self._checkpoint()
            self._wake.wait()
        return idle

    def _checkpoint(self) -> None:
        """Copy the WAL into the database without waiting for readers (PASSIVE)."""
        self._uncheckpointed = 0
        try:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:  # a checkpoint is housekeeping: the next one catches up
            log.debug("checkpoint of %s skipped: %s", self._path, exc)

    def _commit_group(self, writes: list[Any], buffered: Buffered, calls: list[Call]) -> None:
        results: list[Any] = []
        delay = 0.05
        for attempt in range(_BUSY_RETRIES):
            try:
                results = self._transaction(writes, buffered, calls)
                break
            except sqlite3.Error as exc:
                self._rollback()
                if is_busy(exc) and attempt + 1 < _BUSY_RETRIES:
                    time.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                error = describe_error(exc, self._path, "save run state")
                if writes or any(buffered[1].values()):  # a call's own failure reaches its caller alone
                    self._fail(error)
                for call in calls:
                    if not call.future.done():
                        call.future.set_exception(error)
                return
        self.commits += 1
        self._uncheckpointed += 1
        self.writes += len(writes) + len(calls) + sum(len(rows) // self._values[key]
                                                      for key, rows in buffered[1].items())
        for call, outcome in zip(calls, results, strict=True):
            if not call.live:
                continue  # cancelled before it ran
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

    def _transaction(self, writes: list[Any], buffered: Buffered, calls: list[Call]) -> list[Any]:
        """Apply the group in one transaction; returns each call's result (or exception).

        When one write is bad, the group is rolled back and replayed one write at a time.
        """
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            touched = self._write(writes, buffered)
        except Exception as exc:
            if isinstance(exc, sqlite3.OperationalError) and not _statement_level(exc):
                raise  # the disk, not one write: fail the whole group
            conn.execute("ROLLBACK")
            conn.execute("BEGIN IMMEDIATE")
            touched = self._write_each(writes, buffered)
        # Decided here, with the write lock held: a call cancelled while the lock was
        # busy never runs (see ``Call``).
        results = [self._savepoint(lambda c=call: c.fn(conn, touched)) if call.start() else None for call in calls]
        self._stamp(touched)
        conn.execute("COMMIT")
        return results

    def _write(self, writes: list[Any], buffered: Buffered = (set(), {})) -> set[str]:
        """Build the rows of ``writes``, add the buffered rows and execute them phase by
        phase; returns the runs touched."""
        return self._apply(self._build(writes) if writes else (set(), {}), buffered)

    def _apply(self, group: Group, buffered: Buffered = (set(), {})) -> set[str]:
        """Execute a built group (plus the buffered rows) phase by phase; returns the runs touched."""
        touched, grouped = set(group[0]), dict(group[1])
        runs, rows = buffered
        if any(rows.values()):
            grouped.update(rows)
            touched |= runs
        for key in self._order:
            key_rows = grouped.get(key)
            if key_rows:
                self._execute(key, key_rows)
        return touched

    def _write_each(self, writes: list[Any], buffered: Buffered) -> set[str]:
        """Apply each write in its own savepoint, reporting (and skipping) the bad ones.

        Phase order holds here too: writes that create runs go before the buffered rows,
        the others after them. Buffered rows are tried together first, then one by one.
        """
        touched: set[str] = set()
        first_phase = (min(self._order.index(key) for key in self._buffer.keys) if self._buffer is not None
                       else len(self._order))
        early: list[tuple[Any, Group]] = []
        late: list[tuple[Any, Group]] = []
        for item in writes:
            try:
                group = self._build([item])
            except Exception as exc:  # a write that cannot even become rows is lost alone
                self._fail(StoreError(f"cannot save {_describe(item)} to {self._path}: {exc}"))
                continue
            phase = min((self._order.index(k) for k in group[1] if k in self._order), default=len(self._order))
            (early if phase < first_phase else late).append((item, group))
        for item, group in early:
            touched |= self._replay(lambda g=group: self._apply(g), _describe(item))
        runs, rows = buffered
        if any(rows.values()):
            outcome = self._savepoint(lambda: self._apply((set(), {}), buffered))
            if isinstance(outcome, BaseException):
                for key in self._order:
                    width = self._values.get(key, 0)
                    flat = rows.get(key) or []
                    for start in range(0, len(flat), width):
                        row = flat[start:start + width]
                        touched |= self._replay(lambda k=key, r=row: self._apply((set(), {}), ({r[0]}, {k: r})),
                                                f"a transition of {row[0]}/{row[1]}")
            else:
                touched |= outcome
        for item, group in late:
            touched |= self._replay(lambda g=group: self._apply(g), _describe(item))
        return touched

    def _replay(self, write: Callable[[], set[str]], what: str) -> set[str]:
        """Run one write in a savepoint; report it and return no runs when it fails."""
        outcome = self._savepoint(write)
        if isinstance(outcome, BaseException):
            self._fail(describe_error(outcome, self._path, f"save {what}")
                       if isinstance(outcome, sqlite3.Error)
                       else StoreError(f"cannot save {what} to {self._path}: {outcome}"))
            return set()
        return outcome

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
            if size > rows:  # rows of 0 up to a cached statement size; the statement skips them
                part.extend([0] * ((size - rows) * columns))  # 0 binds natively, None through an adapter
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
