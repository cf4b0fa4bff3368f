"""The run store's SQLite schema, its forward migrations, and how connections are opened.

The schema version lives in ``schema_version``. A new database is created exactly the
way an old one is upgraded: the frozen version-1 DDL first, then every migration step
in order, so the migration path runs every time a store is created and cannot rot.

Version history:

1. runs, step attempts, transitions, resource allocations, sessions, projects (with
   milestones inside the project JSON).
2. a per-step table (latest state, committed output) so resume and the dashboard do
   not scan attempts; a change counter plus ``runs.version`` for watching from other
   processes; the run a resume started from (``parent_run_id``); the owner process of
   each allocation, so a crash releases allocations that belong to no run; milestones
   moved out of the project JSON into their own table.
3. each run's workflow snapshot moved into ``run_definitions`` (``runs.workflow_json``
   stays, empty), so updating a run no longer rewrites a large snapshot.
4. a step's latest attempt lives in its ``steps`` row (which gains its exit code and log
   path); ``attempts`` keeps the attempts a retry superseded, so a plain step is one row,
   not two. Attempt rows written before stay and are read as they are.

Migrations run in one ``BEGIN IMMEDIATE`` transaction and re-read the version inside it,
so two processes opening an old database at once upgrade it once.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from .errors import StoreError

__all__ = [
    "CURRENT_VERSION",
    "SCHEMA_V1",
    "BUSY_TIMEOUT_MS",
    "connect",
    "connect_read_only",
    "schema_version",
    "ensure_schema",
    "describe_error",
    "is_busy",
]

BUSY_TIMEOUT_MS = 30_000
PAGE_SIZE = 8192  # for new databases; an existing one keeps the size it was created with

# Frozen: this is what orchtui 0.1 wrote. Never edit it; add a migration instead.
SCHEMA_V1: tuple[str, ...] = (
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    """CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        workflow TEXT NOT NULL,
        workflow_json TEXT NOT NULL,
        params_json TEXT NOT NULL DEFAULT '{}',
        session_id TEXT,
        status TEXT NOT NULL,
        owner_pid INTEGER,
        owner_started REAL,
        host TEXT,
        created_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        error TEXT NOT NULL DEFAULT ''
    )""",
    """CREATE TABLE attempts (
        run_id TEXT NOT NULL,
        step TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        status TEXT NOT NULL,
        started_at REAL,
        finished_at REAL,
        exit_code INTEGER,
        error TEXT NOT NULL DEFAULT '',
        output_json TEXT,
        log_path TEXT,
        PRIMARY KEY (run_id, step, attempt)
    )""",
    """CREATE TABLE transitions (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL,
        step TEXT NOT NULL,
        status TEXT NOT NULL,
        at REAL NOT NULL
    )""",
    """CREATE TABLE allocations (
        id TEXT PRIMARY KEY,
        run_id TEXT,
        requester_id TEXT NOT NULL,
        resource_id TEXT NOT NULL,
        amount_json TEXT NOT NULL,
        allocated_at REAL NOT NULL,
        released_at REAL
    )""",
    """CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        data_json TEXT NOT NULL,
        created_at REAL NOT NULL,
        status TEXT NOT NULL
    )""",
    """CREATE TABLE projects (
        name TEXT PRIMARY KEY,
        path TEXT NOT NULL,
        data_json TEXT NOT NULL,
        updated_at REAL NOT NULL
    )""",
    "INSERT INTO schema_version (version) VALUES (1)",
)


def _migrate_1_to_2(conn: sqlite3.Connection) -> None:
    """Add steps, the change counter, parent runs, allocation owners and milestones."""
    for statement in (
        "ALTER TABLE runs ADD COLUMN version INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE runs ADD COLUMN parent_run_id TEXT",
        "ALTER TABLE transitions ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE allocations ADD COLUMN owner_pid INTEGER",
        "ALTER TABLE allocations ADD COLUMN owner_started REAL",
        "ALTER TABLE allocations ADD COLUMN host TEXT",
        """CREATE TABLE steps (
            run_id TEXT NOT NULL,
            step TEXT NOT NULL,
            status TEXT NOT NULL,
            attempt INTEGER NOT NULL DEFAULT 0,
            started_at REAL,
            finished_at REAL,
            error TEXT NOT NULL DEFAULT '',
            output_json TEXT,
            reused_from TEXT,
            position INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (run_id, step)
        ) WITHOUT ROWID""",
        "CREATE TABLE counter (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)",
        """CREATE TABLE milestones (
            project TEXT NOT NULL,
            name TEXT NOT NULL,
            data_json TEXT NOT NULL,
            at REAL NOT NULL,
            PRIMARY KEY (project, name)
        )""",
        # Each step's latest attempt becomes its row in ``steps``.
        """INSERT INTO steps (run_id, step, status, attempt, started_at, finished_at, error, output_json)
           SELECT a.run_id, a.step, a.status, a.attempt, a.started_at, a.finished_at, a.error, a.output_json
           FROM attempts AS a
           WHERE a.attempt = (SELECT MAX(b.attempt) FROM attempts AS b
                              WHERE b.run_id = a.run_id AND b.step = a.step)""",
        "INSERT INTO counter (id, version) VALUES (1, 1)",
        "UPDATE runs SET version = 1",
        "CREATE INDEX runs_created ON runs (created_at)",
        "CREATE INDEX runs_version ON runs (version)",
        "CREATE INDEX runs_status ON runs (status)",
        "CREATE INDEX runs_workflow ON runs (workflow, created_at)",
        "CREATE INDEX transitions_run ON transitions (run_id)",
        "CREATE INDEX allocations_open ON allocations (run_id) WHERE released_at IS NULL",
    ):
        conn.execute(statement)
    projects = conn.execute("SELECT name, data_json, updated_at FROM projects").fetchall()
    for name, data_json, updated_at in projects:
        data = json.loads(data_json)
        milestones = data.pop("milestones", None) or {}
        for milestone, payload in milestones.items():
            conn.execute(
                "INSERT INTO milestones (project, name, data_json, at) VALUES (?, ?, ?, ?)",
                (name, milestone, json.dumps(payload, default=str), updated_at),
            )
        conn.execute("UPDATE projects SET data_json = ? WHERE name = ?", (json.dumps(data, default=str), name))


def _migrate_2_to_3(conn: sqlite3.Connection) -> None:
    """Move each run's workflow snapshot out of ``runs`` into ``run_definitions``.

    A big workflow's snapshot is hundreds of KB. Inside ``runs`` every change of a run's
    status rewrote all of it, and every read of a column stored after it walked its
    overflow pages. ``runs.workflow_json`` stays (dropping a column means rebuilding
    the table), always empty from now on.
    """
    conn.execute("CREATE TABLE run_definitions (run_id TEXT PRIMARY KEY, workflow_json TEXT NOT NULL)")
    conn.execute("INSERT INTO run_definitions (run_id, workflow_json) SELECT id, workflow_json FROM runs")
    conn.execute("UPDATE runs SET workflow_json = ''")


def _migrate_3_to_4(conn: sqlite3.Connection) -> None:
    """Give each step row the exit code and log path of its latest attempt.

    From now on a step's latest attempt is its step row (see ``core.store_rows``); the
    attempt rows already written stay, and readers take what the step row lacks from them.
    """
    conn.execute("ALTER TABLE steps ADD COLUMN exit_code INTEGER")
    conn.execute("ALTER TABLE steps ADD COLUMN log_path TEXT")


def _migrate_4_to_5(conn: sqlite3.Connection) -> None:
    """Give each run the time its owner process was last known alive (``seen_at``).

    The owner stamps it while the run is unfinished (``core.store_recovery``), so crash
    recovery can end an interrupted run near when its process died, not when the death
    was noticed (which can be days later). Runs written before stay NULL: unknown.
    """
    conn.execute("ALTER TABLE runs ADD COLUMN seen_at REAL")


# MIGRATIONS[n] upgrades a version-n database to version n + 1.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _migrate_1_to_2, 2: _migrate_2_to_3, 3: _migrate_3_to_4, 4: _migrate_4_to_5}
CURRENT_VERSION = max(MIGRATIONS) + 1


def describe_error(exc: sqlite3.Error, path: Path, doing: str) -> StoreError:
    """Return the one-line ``StoreError`` for an SQLite failure while ``doing`` something.

    Tells a full disk, a read-only location, a damaged file and lock exhaustion apart,
    each with what to do about it.
    """
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if name.startswith("SQLITE_FULL") or "disk is full" in text:
        message = f"cannot {doing} in {path}: the disk (or the database size cap) is full; free space and retry"
        code = "STORE_FULL"
    elif name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")) or "readonly" in text:
        part = _read_only_part(path)
        what = "the state directory" if part == path.parent else part.name
        message = (
            f"cannot {doing} in {path}: {what} is not writable; "
            f"fix its permissions (chmod u+w {part}) or set ORCHTUI_DIR to a writable directory"
        )
        code = "STORE_READ_ONLY"
    elif name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")) or "not a database" in text or "malformed" in text:
        message = (
            f"{path} is not a usable orchtui database ({text}); move it aside and orchtui will create "
            "a new one, or set ORCHTUI_DIR to another directory"
        )
        code = "STORE_CORRUPT"
    elif is_busy(exc):
        message = f"cannot {doing} in {path}: the database stayed locked by another process; retry"
        code = "STORE_BUSY"
    else:
        message = f"cannot {doing} in {path}: {text}"
        code = "STORE_ERROR"
    return StoreError(message, error_code=code, details={"path": str(path), "sqlite_error": name or text})


def _read_only_part(path: Path) -> Path:
    """Return the first of the database file, its ``-wal`` and ``-shm`` files that exists and
    this process may not write, else the directory holding them. (SQLite creates the
    ``-shm`` file with the database file's mode: a read-only database leaves a read-only
    ``-shm`` behind, which still fails once the database file is writable again.)"""
    for candidate in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if candidate.exists() and not os.access(candidate, os.W_OK):
            return candidate
    return path.parent


def is_busy(exc: sqlite3.Error) -> bool:
    """True when ``exc`` means another connection holds the lock (retrying may succeed)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in str(exc)


def _enter_wal(conn: sqlite3.Connection) -> str:
    """Switch ``conn``'s database to WAL mode and return the mode it ends in.

    Switching needs an exclusive lock, and SQLite answers BUSY at once, without its busy
    handler, when two connections try it together (a dashboard and a CLI run opening a
    fresh state directory at the same moment). So retry with a short backoff until
    the busy timeout; once one of them has switched, the other's switch is a no-op.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    pause = 0.005
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.1)


def connect(path: Path, *, max_db_bytes: int | None = None) -> sqlite3.Connection:
    """Return a connection to ``path`` set up for the store: WAL, busy timeout, NORMAL sync.

    The connection is in autocommit mode; callers issue ``BEGIN``/``COMMIT`` themselves.
    ``max_db_bytes`` caps how large the database may grow (a write past it fails like a
    full disk).

    Raises:
        StoreError: the file cannot be opened, is not an SQLite database, or its
            directory is read-only.
    """
    try:
        conn = sqlite3.connect(
            str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise describe_error(exc, path, "open the run store") from None
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # Only takes effect on a database not created yet (and must come before WAL):
        # 8 KB pages cut the writer's SQLite time by about a tenth against the 4 KB
        # default (fewer B-tree pages to split, fewer WAL frames per commit).
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        mode = _enter_wal(conn)
        if str(mode).lower() != "wal":
            raise StoreError(
                f"cannot open {path} in WAL mode (it stays in {mode!r} mode); "
                "put the state directory on a local file system (ORCHTUI_DIR)"
            )
        # NORMAL in WAL mode survives any process crash; only a power cut can lose the
        # last commits, never corrupt the file.
        conn.execute("PRAGMA synchronous = NORMAL")
        if max_db_bytes is not None:
            page_size = conn.execute("PRAGMA page_size").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {max(1, max_db_bytes // page_size)}")
        _check_features(conn)
    except sqlite3.Error as exc:
        conn.close()
        raise describe_error(exc, path, "open the run store") from None
    except StoreError:
        conn.close()
        raise
    return conn


_MIN_SQLITE = (3, 24, 0)  # upsert (INSERT ... ON CONFLICT DO UPDATE)


def _check_features(conn: sqlite3.Connection) -> None:
    """Refuse an SQLite library without upsert or the JSON functions the writer uses."""
    if sqlite3.sqlite_version_info < _MIN_SQLITE:
        raise StoreError(f"orchtui needs SQLite {'.'.join(map(str, _MIN_SQLITE))} or newer, this Python has "
                         f"{sqlite3.sqlite_version}; use a newer Python build")
    try:
        conn.execute("SELECT value FROM json_each('[1]')").fetchone()
    except sqlite3.OperationalError:
        raise StoreError(f"this Python's SQLite {sqlite3.sqlite_version} has no JSON functions, which orchtui "
                         "needs; use a Python built with SQLite 3.38 or newer") from None


def connect_read_only(path: Path) -> sqlite3.Connection:
    """Return a connection that only reads ``path``, for a store this process cannot write.

    SQLite reads a WAL database read-only when its ``-wal`` and ``-shm`` files exist (a
    writer has it open) or may be created. When neither holds (a read-only directory
    that no writer has open), it is opened as immutable: with no WAL file there are no
    commits outside the main file to miss, and no process can start writing in a
    directory nobody may write to.

    Raises:
        StoreError: the file is missing or unreadable, not an orchtui database of this
            schema version (an older one must be upgraded by a process that may write).
    """
    from urllib.parse import quote

    if not path.is_file():
        raise StoreError(f"no run store at {path}; nothing has been recorded there", error_code="STORE_NOT_FOUND",
                         details={"path": str(path)})
    target = quote(str(path.resolve()))
    conn: sqlite3.Connection | None = None
    try:
        for query in ("mode=ro", "immutable=1"):
            conn = sqlite3.connect(f"file:{target}?{query}", uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                                   isolation_level=None, check_same_thread=False)
            try:
                version = schema_version(conn)  # the first read opens the file for real
                break
            except sqlite3.OperationalError:
                conn.close()
                conn = None
                if query != "mode=ro" or Path(f"{path}-wal").exists():
                    raise
        assert conn is not None
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA query_only = ON")
    except sqlite3.Error as exc:
        if conn is not None:
            conn.close()
        raise describe_error(exc, path, "read the run store") from None
    try:
        _check_not_newer(version, path)
        if version != CURRENT_VERSION:
            raise StoreError(
                f"{path} has schema {version}, which this orchtui upgrades to {CURRENT_VERSION} only when it may "
                "write there; run any orchtui command once as a user who may write to its directory",
                error_code="STORE_READ_ONLY", details={"path": str(path), "schema": version})
    except StoreError:
        conn.close()
        raise
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    """Return the schema version of the open database (0 for an empty database)."""
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if row is None:
        return 0
    found = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(found[0] or 0)


def _check_not_newer(version: int, path: Path) -> None:
    if version > CURRENT_VERSION:
        raise StoreError(
            f"{path} was written by a newer orchtui (schema {version}); upgrade orchtui "
            f"(this one reads schema {CURRENT_VERSION} and older)",
            error_code="STORE_TOO_NEW",
            details={"path": str(path), "schema": version, "supported": CURRENT_VERSION},
        )


def ensure_schema(conn: sqlite3.Connection, path: Path) -> int:
    """Create or upgrade the schema of the database behind ``conn``; return its version.

    Raises:
        StoreError: the database is newer than this orchtui, is not an orchtui
            database, or cannot be written.
    """
    try:
        version = schema_version(conn)
        _check_not_newer(version, path)
        if version == CURRENT_VERSION:
            return version
        if version == 0 and conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]:
            raise StoreError(
                f"{path} is an SQLite database but not an orchtui one; move it aside "
                "or set ORCHTUI_DIR to another directory",
                error_code="STORE_CORRUPT",
                details={"path": str(path)},
            )
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have upgraded it while this one waited for the lock.
            version = schema_version(conn)
            _check_not_newer(version, path)
            if version == 0:
                for statement in SCHEMA_V1:
                    conn.execute(statement)
                version = 1
            while version < CURRENT_VERSION:
                MIGRATIONS[version](conn)
                version += 1
                conn.execute("UPDATE schema_version SET version = ?", (version,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return version
    except sqlite3.Error as exc:
        raise describe_error(exc, path, "prepare the run store") from None
    except (ValueError, KeyError) as exc:  # malformed JSON in a v1 project row
        raise StoreError(f"cannot upgrade {path}: stored data is malformed ({exc}); move it aside") from None
