"""Live state shared between processes through files in the state directory.

The run store says what every run did; it does not say what a process's scheduler is
doing right now, and it cannot carry a request to a run owned by another process.
Both go through small files, so no process needs a socket or a schema change:

- ``<state_dir>/live/<pid>.json``: each process that owns runs (``orchtui run``,
  ``resume``/``rerun``, the MCP server, a dashboard running inline) publishes its
  :class:`~core.snapshot.OrchestratorSnapshot`, its pid and process create time, the
  run ids it owns, its resource manager's usage and, on the Dask backend, the
  cluster's workers, a few times a second while something moves. Files are written
  atomically (temporary file, then ``os.replace``), so readers never see half a file.
- ``<state_dir>/control/<run_id>.cancel`` and ``<run_id>.<step>.cancel``: cancel
  requests. The process that owns the run picks them up within a poll interval,
  cancels (process trees get killed as for Ctrl-C) and deletes the request.

A file whose process is gone (its pid no longer exists, or belongs to a process with
another create time) is ignored and deleted by the next reader.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .atomic_file import write_text_atomic
from .errors import OrchestrationError
from .models import ResourceUsage, TaskPriority, TaskStatus
from .process_tree import process_alive, this_process
from .snapshot import OrchestratorSnapshot, TaskView

if TYPE_CHECKING:
    from .task_orchestrator import TaskOrchestrator
    from .workflow_manager import WorkflowManager

__all__ = [
    "LiveProcess",
    "WorkerInfo",
    "LivePublisher",
    "LiveReader",
    "read_live_snapshots",
    "request_cancel",
    "snapshot_to_dict",
    "snapshot_from_dict",
]

log = logging.getLogger(__name__)

LIVE_DIR = "live"
CONTROL_DIR = "control"
_SUFFIX = ".cancel"
_STALE_REQUEST = 60.0  # seconds: a request nobody picked up by then has no owner
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_STEP = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")


@dataclasses.dataclass(slots=True, frozen=True)
class WorkerInfo:
    """One worker of a Dask cluster, as its orchestrator's backend last saw it."""

    name: str
    address: str = ""
    nthreads: int = 0
    executing: int = 0
    memory: int = 0  # bytes in use
    memory_limit: int = 0  # bytes; 0: no limit


@dataclasses.dataclass(slots=True, frozen=True)
class LiveProcess:
    """What one live process published: who it is, its runs, its scheduler and resources.

    ``resources`` is the process's own ResourceManager usage (every process allocates
    from its own pools); ``backend`` names its executor backend and ``workers`` lists
    the Dask cluster's workers when that backend is ``"dask"``.
    """

    pid: int
    create_time: float
    run_ids: tuple[str, ...]
    snapshot: OrchestratorSnapshot
    label: str = ""
    written_at: float = 0.0
    resources: tuple[ResourceUsage, ...] = ()
    backend: str = ""
    workers: tuple[WorkerInfo, ...] = ()


# ------------------------------------------------------------------ JSON form


def _task_to_dict(view: TaskView) -> dict[str, Any]:
    return {
        "id": view.id, "name": view.name, "status": view.status.value, "priority": int(view.priority),
        "run_id": view.run_id, "attempt": view.attempt, "started_at": view.started_at,
        "module": view.module, "action": view.action, "error": view.error,
    }


def _task_from_dict(data: dict[str, Any]) -> TaskView:
    return TaskView(
        id=str(data["id"]), name=str(data["name"]), status=TaskStatus(data["status"]),
        priority=TaskPriority(int(data["priority"])), run_id=data.get("run_id"), attempt=int(data.get("attempt", 0)),
        started_at=data.get("started_at"), module=str(data.get("module", "")), action=str(data.get("action", "")),
        error=str(data.get("error", "")),
    )


def snapshot_to_dict(snapshot: OrchestratorSnapshot) -> dict[str, Any]:
    """Return ``snapshot`` as JSON data (enums by value); :func:`snapshot_from_dict` inverts it."""
    return {
        "version": snapshot.version,
        "taken_at": snapshot.taken_at,
        "max_workers": snapshot.max_workers,
        "queued": {str(int(p)): n for p, n in snapshot.queued.items()},
        "queue_heads": {str(int(p)): [_task_to_dict(v) for v in views] for p, views in snapshot.queue_heads.items()},
        "running": [_task_to_dict(v) for v in snapshot.running],
        "counts": {s.value: n for s, n in snapshot.counts.items()},
        "waiting_on_dependencies": snapshot.waiting_on_dependencies,
        "waiting_on_resources": snapshot.waiting_on_resources,
        "retry_scheduled": snapshot.retry_scheduled,
        "completed_per_second": snapshot.completed_per_second,
    }


def snapshot_from_dict(data: dict[str, Any]) -> OrchestratorSnapshot:
    """Return the :class:`OrchestratorSnapshot` that :func:`snapshot_to_dict` wrote.

    Raises:
        KeyError, ValueError, TypeError: ``data`` is not such a dict.
    """
    return OrchestratorSnapshot(
        version=int(data["version"]),
        taken_at=float(data["taken_at"]),
        max_workers=int(data["max_workers"]),
        queued={TaskPriority(int(p)): int(n) for p, n in data["queued"].items()},
        queue_heads={TaskPriority(int(p)): tuple(_task_from_dict(v) for v in views)
                     for p, views in data["queue_heads"].items()},
        running=tuple(_task_from_dict(v) for v in data["running"]),
        counts={TaskStatus(s): int(n) for s, n in data["counts"].items()},
        waiting_on_dependencies=int(data.get("waiting_on_dependencies", 0)),
        waiting_on_resources=int(data.get("waiting_on_resources", 0)),
        retry_scheduled=int(data.get("retry_scheduled", 0)),
        completed_per_second=float(data.get("completed_per_second", 0.0)),
    )


def _usage_to_dict(usage: ResourceUsage) -> dict[str, Any]:
    return {"resource_id": usage.resource_id, "capacity": usage.capacity, "current": usage.current,
            "peak": usage.peak, "available": usage.available, "users": usage.users}


def _usage_from_dict(data: dict[str, Any]) -> ResourceUsage:
    def units(key: str) -> dict[str, float]:
        return {str(unit): float(value) for unit, value in (data.get(key) or {}).items()}

    return ResourceUsage(resource_id=str(data["resource_id"]), capacity=units("capacity"), current=units("current"),
                         peak=units("peak"), available=units("available"), users=int(data.get("users", 0)))


def _worker_from_dict(data: dict[str, Any]) -> WorkerInfo:
    return WorkerInfo(name=str(data.get("name", data.get("address", ""))), address=str(data.get("address", "")),
                      nthreads=int(data.get("nthreads", 0)), executing=int(data.get("executing", 0)),
                      memory=int(data.get("memory", 0)), memory_limit=int(data.get("memory_limit", 0)))


def _parse(text: str) -> LiveProcess:
    data = json.loads(text)
    return LiveProcess(
        pid=int(data["pid"]),
        create_time=float(data["create_time"]),
        run_ids=tuple(str(r) for r in data.get("run_ids", ())),
        snapshot=snapshot_from_dict(data["snapshot"]),
        label=str(data.get("label", "")),
        written_at=float(data.get("written_at", 0.0)),
        resources=tuple(_usage_from_dict(u) for u in data.get("resources", ())),
        backend=str(data.get("backend", "")),
        workers=tuple(_worker_from_dict(w) for w in data.get("workers", ())),
    )


# ------------------------------------------------------------------- readers


class LiveReader:
    """Reads ``<state_dir>/live/*.json`` repeatedly, cheaply (the dashboard polls at 10 Hz).

    A file is parsed again only when its size or modification time changed; whether its
    process still lives is checked at most every ``liveness_interval`` seconds.
    """

    def __init__(self, state_dir: Path, *, liveness_interval: float = 1.0) -> None:
        self.directory = Path(state_dir) / LIVE_DIR
        self._liveness_interval = liveness_interval
        self._parsed: dict[str, tuple[tuple[int, int], LiveProcess]] = {}
        self._checked: dict[str, float] = {}

    def read(self, exclude_pid: int | None = None) -> list[LiveProcess]:
        """Return every live process's state (except ``exclude_pid``'s), ordered by pid.

        Files of dead processes are deleted; unreadable files are skipped.
        """
        try:
            entries = [e for e in os.scandir(self.directory) if e.name.endswith(".json")]
        except OSError:
            return []
        now = time.monotonic()
        found: list[LiveProcess] = []
        seen: set[str] = set()
        for entry in entries:
            seen.add(entry.name)
            try:
                stat = entry.stat()
            except OSError:
                continue  # removed while we looked
            key = (stat.st_mtime_ns, stat.st_size)
            cached = self._parsed.get(entry.name)
            if cached is not None and cached[0] == key:
                live = cached[1]
            else:
                try:
                    live = _parse(Path(entry.path).read_text(encoding="utf-8"))
                except (OSError, ValueError, KeyError, TypeError):
                    continue
                self._parsed[entry.name] = (key, live)
            if now - self._checked.get(entry.name, -1e9) >= self._liveness_interval:
                if not process_alive(live.pid, live.create_time):
                    Path(entry.path).unlink(missing_ok=True)
                    self._parsed.pop(entry.name, None)
                    self._checked.pop(entry.name, None)
                    continue
                self._checked[entry.name] = now
            if live.pid != exclude_pid:
                found.append(live)
        for gone in set(self._parsed) - seen:
            self._parsed.pop(gone, None)
            self._checked.pop(gone, None)
        found.sort(key=lambda p: p.pid)
        return found


def read_live_snapshots(state_dir: Path) -> list[LiveProcess]:
    """Return the published state of every live process using ``state_dir``, ordered by pid.

    Files whose process is gone (pid missing, or reused by a process with another create
    time) are deleted and left out.
    """
    return LiveReader(state_dir, liveness_interval=0.0).read()


def _control_path(state_dir: Path, run_id: str, step: str | None) -> Path:
    if not _RUN_ID.fullmatch(run_id) or ".." in run_id:
        raise OrchestrationError(
            f"cannot request a cancel for run id {run_id!r}: it is not a valid run id; list runs with `orchtui runs`")
    if step is not None and not _STEP.fullmatch(step):
        raise OrchestrationError(
            f"cannot request a cancel for step {step!r} of run {run_id}: it is not a valid step name")
    name = run_id if step is None else f"{run_id}.{step}"
    return Path(state_dir) / CONTROL_DIR / f"{name}{_SUFFIX}"


def request_cancel(state_dir: Path, run_id: str, step: str | None = None) -> Path:
    """Ask whichever process owns run ``run_id`` to cancel it (or only its step ``step``).

    The owner notices within a fraction of a second and deletes the request; a request
    nobody owns is dropped after a minute. Returns the request file.

    Raises:
        OrchestrationError: ``run_id`` or ``step`` is not a valid name, or the request
            cannot be written to the state directory.
    """
    path = _control_path(state_dir, run_id, step)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps({"requested_at": time.time(), "by": os.getpid()}))
    except OSError as exc:
        raise OrchestrationError(
            f"cannot write the cancel request {path} ({exc.strerror}); check the state directory's permissions"
        ) from None
    return path


def run_owner(state_dir: Path, run_id: str) -> LiveProcess | None:
    """Return the live process that owns run ``run_id``, or None."""
    return next((p for p in read_live_snapshots(state_dir) if run_id in p.run_ids), None)


# ------------------------------------------------------------------ publisher


class LivePublisher:
    """Publishes this process's scheduler, owned runs and resources; carries out cancel requests.

    A daemon thread wakes ``rate`` times a second: when the orchestrator's snapshot
    version, the set of owned runs, the resource usage of its resource manager or (on
    the Dask backend) the cluster's workers moved it rewrites ``live/<pid>.json``, and it
    looks in ``control/`` for requests about runs this process owns. Use it as a
    context manager around the code that owns runs, or call :meth:`start` and
    :meth:`stop`.

    Parameters
    ----------
    orchestrator : TaskOrchestrator
        Whose snapshot is published, and which cancels single steps.
    workflow_manager : WorkflowManager
        Which runs this process owns, and which cancels whole runs.
    state_dir : Path
        The state directory shared with the other processes.
    label : str
        What this process is, for people reading the dashboard ("orchtui run demo").
    rate : float
        Wake-ups per second.
    """

    def __init__(
        self,
        orchestrator: TaskOrchestrator,
        workflow_manager: WorkflowManager,
        state_dir: Path,
        *,
        label: str = "",
        rate: float = 4.0,
    ) -> None:
        self.orchestrator = orchestrator
        self.workflow_manager = workflow_manager
        self.state_dir = Path(state_dir)
        self.label = label
        self._period = 1.0 / max(0.5, rate)
        self._pid, self._create_time = this_process()
        self.path = self.state_dir / LIVE_DIR / f"{self._pid}.json"
        self._control = self.state_dir / CONTROL_DIR
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._published: tuple[Any, ...] | None = None
        self.cancelled: list[str] = []  # requests carried out, as their file names (tests read it)

    def __enter__(self) -> LivePublisher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Publish once now and start the thread (idempotent).

        Raises:
            OrchestrationError: the state directory's ``live`` folder cannot be created.
        """
        if self._thread is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OrchestrationError(
                f"cannot create {self.path.parent} ({exc.strerror}); check the state directory's permissions"
            ) from None
        self._stop.clear()
        self.poll()
        self._thread = threading.Thread(target=self._loop, name="orchtui-live-publisher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread and remove this process's live file."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.path.unlink(missing_ok=True)

    def _loop(self) -> None:
        while not self._stop.wait(self._period):
            try:
                self.poll()
            except Exception:  # publishing is a side show: it must never end the run it shows
                log.exception("live state publisher failed")

    def poll(self) -> None:
        """Publish if something moved and carry out pending cancel requests (one tick)."""
        owned = tuple(h.run_id for h in self.workflow_manager.active_runs())
        snapshot = self.orchestrator.snapshot()
        resources = self._resources()
        backend, workers = self._workers()
        key = (snapshot.version, owned, resources, workers)
        if key != self._published:
            self._published = key
            payload = {
                "pid": self._pid, "create_time": self._create_time, "run_ids": list(owned), "label": self.label,
                "written_at": time.time(), "snapshot": snapshot_to_dict(snapshot),
                "resources": [_usage_to_dict(u) for u in resources], "backend": backend,
                "workers": [dataclasses.asdict(w) for w in workers],
            }
            try:
                write_text_atomic(self.path, json.dumps(payload, separators=(",", ":")))
            except OSError as exc:
                log.warning("cannot publish live state to %s: %s", self.path, exc)
        self._serve_requests(owned)

    def _resources(self) -> tuple[ResourceUsage, ...]:
        """Return the orchestrator's resource usage (a few pools under one lock: cheap)."""
        manager = getattr(self.orchestrator, "resource_manager", None)
        return tuple(manager.snapshot()) if manager is not None else ()

    def _workers(self) -> tuple[str, tuple[WorkerInfo, ...]]:
        """Return the backend's name and, for Dask, its workers (the backend caches them for a second)."""
        backend = getattr(self.orchestrator, "backend", None)
        name = str(getattr(backend, "name", ""))
        if name != "dask":
            return name, ()
        try:
            rows = backend.workers()  # type: ignore[union-attr]
        except Exception:  # the scheduler is unreachable: publish the scheduler state without workers
            log.debug("cannot read the dask cluster's workers", exc_info=True)
            return name, ()
        return name, tuple(_worker_from_dict(row) for row in rows)

    def _serve_requests(self, owned: tuple[str, ...]) -> None:
        try:
            entries = [e for e in os.scandir(self._control) if e.name.endswith(_SUFFIX)]
        except OSError:
            return
        by_length = sorted(owned, key=len, reverse=True)  # "run-1.x" before "run-1"
        now = time.time()
        for entry in entries:
            stem = entry.name[: -len(_SUFFIX)]
            run_id = next((r for r in by_length if stem == r or stem.startswith(r + ".")), None)
            if run_id is None:
                self._drop_if_stale(entry, now)
                continue
            step = stem[len(run_id) + 1:] or None
            self._cancel(run_id, step)
            Path(entry.path).unlink(missing_ok=True)
            self.cancelled.append(entry.name)

    @staticmethod
    def _drop_if_stale(entry: os.DirEntry[str], now: float) -> None:
        try:
            if now - entry.stat().st_mtime > _STALE_REQUEST:
                Path(entry.path).unlink(missing_ok=True)
        except OSError:
            pass  # another publisher removed it first

    def _cancel(self, run_id: str, step: str | None) -> None:
        if step is None:
            handle = self.workflow_manager.get_run(run_id)
            if handle is not None:
                handle.cancel()
            return
        for task in self.orchestrator.get_tasks():
            if task.run_id == run_id and task.name == step:
                self.orchestrator.cancel_task(task.id)
                return
