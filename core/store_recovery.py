"""Crash recovery: which process owns a run, whether it still lives, and cleaning up after it.

A run records the pid *and* start time of the process that runs it, plus the host.
A pid alone proves nothing (pids are recycled), so a run counts as orphaned when its pid
is gone, is a zombie, or belongs to a process that started at another time. Only runs
of this host are judged; another host's processes cannot be checked from here.

While a process owns unfinished runs, an :class:`OwnerHeartbeat` stamps their
``seen_at`` every :data:`HEARTBEAT_INTERVAL` seconds. Recovery may come long after the
death (the next ``orchtui`` command, days later); it ends the run at
:func:`interrupted_at`, within a couple of intervals of the death, so the run's
duration says how long it ran, not how long nobody looked.
"""

from __future__ import annotations

import functools
import logging
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterable
from typing import Protocol

from .models import TaskStatus, WorkflowStatus
from .process_tree import process_alive

__all__ = ["HEARTBEAT_INTERVAL", "OwnerHeartbeat", "host", "interrupted_at", "mark_interrupted", "orphaned",
           "owner_gone", "stamp_seen", "OwnedRun"]

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = 10.0
"""Seconds between the stamps of a live owner's runs (``runs.seen_at``)."""
# Stamps come late when the process is starved or another holds the write lock; a death
# is placed this many intervals after the last stamp at the latest.
_LATE_STAMPS = 2

_LIVE_RUN = tuple(s.value for s in WorkflowStatus if not s.is_terminal)
_RUNNING = TaskStatus.RUNNING.value
_INTERRUPTED = TaskStatus.INTERRUPTED.value


@functools.cache
def host() -> str:
    """Return this machine's host name, as stored with every run."""
    return socket.gethostname()


def owner_gone(pid: int | None, started: float | None, run_host: str | None) -> bool:
    """Return True when a run's owner process is known to have died: it ran on this host
    (``run_host`` None counts as this host, as in :func:`mark_interrupted`) and process
    ``pid`` started at ``started`` no longer lives. A run without a recorded owner, or of
    another host, is never judged gone."""
    if pid is None or (run_host is not None and run_host != host()):
        return False
    return not process_alive(pid, started)


class OwnedRun(Protocol):
    """A run as any face holds it (``RunRecord``, ``RunView``): who owns it, and where."""

    @property
    def run_id(self) -> str: ...
    @property
    def status(self) -> WorkflowStatus: ...
    @property
    def owner_pid(self) -> int | None: ...
    @property
    def owner_started_at(self) -> float | None: ...
    @property
    def host(self) -> str | None: ...


def orphaned(runs: Iterable[OwnedRun]) -> list[str]:
    """Return the ids of the unfinished ``runs`` whose owner process is known to have
    died (:func:`owner_gone`): the runs crash recovery would mark INTERRUPTED now."""
    return [run.run_id for run in runs
            if not run.status.is_terminal and owner_gone(run.owner_pid, run.owner_started_at, run.host)]


def interrupted_at(seen_at: float | None, now: float) -> float:
    """Return when a run whose owner was last seen alive at ``seen_at`` ended, as recovery
    records it at ``now``: at the latest a couple of heartbeat intervals after that
    stamp, and never after ``now`` (a run with no stamp, written before stamps existed:
    ``now``)."""
    if seen_at is None:
        return now
    return min(now, seen_at + _LATE_STAMPS * HEARTBEAT_INTERVAL)


def stamp_seen(conn: sqlite3.Connection, pid: int, started: float, now: float) -> int:
    """Stamp ``now`` as the time process ``pid`` (started at ``started``) was last seen
    alive on each of its unfinished runs on this host; return how many it stamped."""
    live = ",".join("?" * len(_LIVE_RUN))
    return conn.execute(
        f"UPDATE runs SET seen_at = ? WHERE owner_pid = ? AND owner_started = ? AND host = ? AND status IN ({live})",
        (now, pid, started, host(), *_LIVE_RUN),
    ).rowcount


class OwnerHeartbeat:
    """Calls ``beat()`` every ``interval`` seconds on a thread of its own while it stamps
    something; ``beat`` returns how many runs it stamped (see :func:`stamp_seen`).

    The thread starts at :meth:`wake` (a run was created) and ends by itself once a beat
    stamps nothing and no wake came meanwhile, so a process without unfinished runs has
    no thread and writes nothing. A beat that fails (store busy, disk full) is skipped:
    the next one stamps again.
    """

    def __init__(self, beat: Callable[[], int], interval: float = HEARTBEAT_INTERVAL) -> None:
        self._beat = beat
        self.interval = interval
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._woken = False  # a run was created since the last beat: keep beating
        self._stop = threading.Event()

    def wake(self) -> None:
        """Keep beating through at least one more beat; start the thread if none runs."""
        with self._lock:
            self._woken = True
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="orchtui-store-heartbeat", daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """End the thread (no beat after this returns, unless one outlasts ``timeout``)."""
        self._stop.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                woken, self._woken = self._woken, False
            try:
                stamped = self._beat()
            except Exception as exc:  # a missed stamp only makes a later recovery's estimate earlier
                log.debug("heartbeat skipped: %s", exc)
                stamped = 1
            with self._lock:
                if not stamped and not woken and not self._woken:
                    self._thread = None
                    return
        with self._lock:
            self._thread = None


def mark_interrupted(
    conn: sqlite3.Connection, touched: set[str], now: float
) -> tuple[list[str], set[tuple[int, float | None]]]:
    """Mark this host's orphaned runs INTERRUPTED and release what dead processes held.

    Runs inside the caller's transaction. Each orphaned run, and its RUNNING steps and
    attempts, become INTERRUPTED, ended at :func:`interrupted_at` (which their history
    shows, see :mod:`core.store_history`); its allocations, released ``now``, and
    every other allocation whose owner process died, are released. Adds the marked
    runs to ``touched`` and returns their ids, oldest first, with the dead owners found
    as (pid, start time), whose leftover step processes the caller should stop once the
    transaction is committed (:func:`core.process_tree.kill_orphans`).
    """
    here = host()
    live = ",".join("?" * len(_LIVE_RUN))
    rows = conn.execute(
        f"SELECT id, owner_pid, owner_started, seen_at FROM runs WHERE status IN ({live}) "
        "AND (host = ? OR host IS NULL) ORDER BY created_at", (*_LIVE_RUN, here),
    ).fetchall()
    dead = [(run_id, pid, started, seen) for run_id, pid, started, seen in rows if not process_alive(pid, started)]
    owners_gone = {(pid, started) for _, pid, started, _ in dead if pid is not None}
    for run_id, pid, _, seen in dead:
        ended = interrupted_at(seen, now)
        error = (f"interrupted: its process (pid {pid}) ended before the run finished; "
                 f"`orchtui resume {run_id}` finishes it")
        conn.execute("UPDATE runs SET status = ?, finished_at = MAX(?, COALESCE(started_at, ?)), error = ? "
                     "WHERE id = ?", (WorkflowStatus.INTERRUPTED.value, ended, ended, error, run_id))
        for table in ("steps", "attempts"):  # a step that started after the estimate ends when it started
            conn.execute(f"UPDATE {table} SET status = ?, finished_at = MAX(?, COALESCE(started_at, ?)) "
                         "WHERE run_id = ? AND status = ?", (_INTERRUPTED, ended, ended, run_id, _RUNNING))
        conn.execute("UPDATE allocations SET released_at = ? WHERE run_id = ? AND released_at IS NULL",
                     (now, run_id))
        touched.add(run_id)
    owners = conn.execute(
        "SELECT DISTINCT owner_pid, owner_started FROM allocations WHERE released_at IS NULL AND host = ?",
        (here,),
    ).fetchall()
    for pid, started in owners:
        if not process_alive(pid, started):
            conn.execute("UPDATE allocations SET released_at = ? WHERE released_at IS NULL AND host = ? "
                         "AND owner_pid = ? AND owner_started IS ?", (now, here, pid, started))
            if pid is not None:
                owners_gone.add((pid, started))
    return [run_id for run_id, *_ in dead], owners_gone
