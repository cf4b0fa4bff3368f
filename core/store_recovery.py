"""Crash recovery: which process owns a run, whether it still lives, and cleaning up after it.

A run records the pid *and* start time of the process that runs it, plus the host.
A pid alone proves nothing (pids are recycled), so a run counts as orphaned when its pid
is gone, is a zombie, or belongs to a process that started at another time. Only runs
of this host are judged; another host's processes cannot be checked from here.
"""

from __future__ import annotations

import functools
import socket
import sqlite3
from collections.abc import Iterable
from typing import Protocol

from .models import TaskStatus, WorkflowStatus
from .process_tree import process_alive

__all__ = ["host", "mark_interrupted", "orphaned", "owner_gone", "OwnedRun"]

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


def mark_interrupted(
    conn: sqlite3.Connection, touched: set[str], now: float
) -> tuple[list[str], set[tuple[int, float | None]]]:
    """Mark this host's orphaned runs INTERRUPTED and release what dead processes held.

    Runs inside the caller's transaction. The RUNNING steps and attempts of each
    orphaned run become INTERRUPTED, ended ``now`` (which their history shows, see
    :mod:`core.store_history`); its allocations, and
    every other allocation whose owner process died, are released. Adds the marked
    runs to ``touched`` and returns their ids, oldest first, with the dead owners found
    as (pid, start time), whose leftover step processes the caller should stop once the
    transaction is committed (:func:`core.process_tree.kill_orphans`).
    """
    here = host()
    live = ",".join("?" * len(_LIVE_RUN))
    rows = conn.execute(
        f"SELECT id, owner_pid, owner_started FROM runs WHERE status IN ({live}) "
        "AND (host = ? OR host IS NULL) ORDER BY created_at", (*_LIVE_RUN, here),
    ).fetchall()
    dead = [(run_id, pid, started) for run_id, pid, started in rows if not process_alive(pid, started)]
    owners_gone = {(pid, started) for _, pid, started in dead if pid is not None}
    for run_id, pid, _ in dead:
        error = (f"interrupted: its process (pid {pid}) ended before the run finished; "
                 f"`orchtui resume {run_id}` finishes it")
        conn.execute("UPDATE runs SET status = ?, finished_at = ?, error = ? WHERE id = ?",
                     (WorkflowStatus.INTERRUPTED.value, now, error, run_id))
        for table in ("steps", "attempts"):
            conn.execute(f"UPDATE {table} SET status = ?, finished_at = ? WHERE run_id = ? AND status = ?",
                         (_INTERRUPTED, now, run_id, _RUNNING))
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
    return [run_id for run_id, _, _ in dead], owners_gone
