"""TaskOrchestrator: priority scheduling of tasks with dependencies, resources, retries and timeouts.

The public face of the scheduler. Every method here is safe to call from any thread:
it validates what it can on the caller's thread, then hands the work to the
orchestrator's single dispatcher thread (:mod:`core.dispatcher`) through its inbox.

* Five priority lanes (CRITICAL..BACKGROUND) with aging, and resource reservation, so
  a big task never starves behind a stream of small ones.
* ``max_workers`` attempts at most run at once; the backend (threads, processes, Dask)
  never queues work of its own, so priority order is the order tasks start in.
* Dependencies are task ids or names (step names inside a run); a task whose
  dependency failed, was skipped or was cancelled is SKIPPED, unless the failed
  dependency has ``continue_on_failure``.
* Retries with exponential backoff and jitter, timed by the injected clock.
* Timeouts are enforced by :func:`core.actions.invoke`; as a backstop an attempt still
  running at ``timeout + kill_grace + BACKSTOP_MARGIN`` is cancelled and failed.

Tasks added with :meth:`~TaskOrchestrator.add_task` before
:meth:`~TaskOrchestrator.start_execution` wait for it; :meth:`execute_task`,
:meth:`execute_parallel` and :meth:`submit_run` run at once.
"""

from __future__ import annotations

import dataclasses
import graphlib
import os
import random
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from .clock import SYSTEM_CLOCK, Clock
from .dispatch_protocol import (
    OP_ADD,
    OP_BARRIER,
    OP_CANCEL,
    OP_CANCEL_RUN,
    OP_RUN,
    OP_START,
    OP_STOP,
    OP_WAIT,
    OP_WORKERS,
    Waiter,
)
from .dispatcher import Dispatcher
from .errors import ConfigError, CycleDetectedError, OrchestrationError, TaskExecutionError
from .events import EventBus
from .executors import create_backend
from .interfaces import ExecutorBackend, ParameterGuard
from .models import Task, TaskPriority, TaskResult, TaskStatus, TaskTransition
from .scheduler_queues import CANCELLED, COMPLETED, FAILED, READY, RUNNING, SKIPPED, ActiveRun, TaskEntry
from .snapshot import OrchestratorSnapshot

__all__ = ["TaskOrchestrator", "RunSpec", "default_max_workers"]

_TASK_FIELDS = frozenset(f.name for f in dataclasses.fields(Task))
_WAIT_SLICE = 0.5  # seconds; waits re-check that the dispatcher is still alive this often


def default_max_workers() -> int:
    """Return ``ORCHTUI_MAX_WORKERS`` as a positive int, or 4 when it is unset.

    Raises:
        ConfigError: the variable is set but is not a positive integer.
    """
    raw = os.environ.get("ORCHTUI_MAX_WORKERS", "").strip()
    if not raw:
        return 4
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"ORCHTUI_MAX_WORKERS={raw!r} is not valid; set it to a positive integer")
    return value


@dataclasses.dataclass(slots=True)
class RunSpec:
    """How to run the tasks of one workflow run (see :meth:`TaskOrchestrator.submit_run`).

    ``log_dir`` gets one log file per attempt, ``<step>.<attempt>.log``; ``max_parallel``
    caps how many of the run's tasks run at once (1: SEQUENTIAL mode); ``preset_outputs``
    are steps already completed by an earlier attempt of the run (resume);
    ``parameter_guard`` sees each step's parameters once its references are resolved
    and returns why the step may not run with them (the step fails), or None.
    """

    run_id: str
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    log_dir: Path | None = None
    max_parallel: int | None = None
    preset_outputs: dict[str, Any] = dataclasses.field(default_factory=dict)
    working_dir: str | Path | None = None
    parameter_guard: ParameterGuard | None = None


class TaskOrchestrator:
    """Schedules tasks by priority onto an executor backend.

    Args:
        max_workers: attempts running at once (default ``ORCHTUI_MAX_WORKERS`` or 4).
        resource_manager: a :class:`~core.resource_manager.ResourceManager` that gates
            tasks declaring ``resources``; without one, requirements are not enforced.
        backend: ``"thread"``, ``"process"``, ``"dask"`` or an ExecutorBackend instance
            (which the orchestrator then owns and shuts down).
        clock: time source for backoff, aging and backstops (a ManualClock in tests).
        events: bus for task_* and resource_* events (handlers run off the dispatcher).
        rng: random source for retry jitter.
        aging_interval: seconds of waiting that raise a ready task one priority level.
        kill_grace: seconds between SIGTERM and SIGKILL when a step is stopped.
        log_cap_bytes: size cap of each attempt's log file.

    Raises:
        OrchestrationError: ``max_workers`` < 1, or an unknown or unavailable backend.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        resource_manager: Any = None,
        backend: str | ExecutorBackend = "thread",
        clock: Clock = SYSTEM_CLOCK,
        events: EventBus | None = None,
        rng: random.Random | None = None,
        aging_interval: float = 30.0,
        kill_grace: float = 5.0,
        log_cap_bytes: int = 5 * 1024 * 1024,
    ) -> None:
        workers = default_max_workers() if max_workers is None else int(max_workers)
        if workers < 1:
            raise OrchestrationError(f"max_workers must be at least 1, got {max_workers!r}")
        self.max_workers = workers
        self.resource_manager = resource_manager
        self.clock = clock
        self.events = events
        self.kill_grace = kill_grace
        self.backend: ExecutorBackend = (
            create_backend(backend, workers) if isinstance(backend, str) else backend
        )
        self._entries: dict[str, TaskEntry] = {}
        self._runs: set[str] = set()
        self._lock = threading.Lock()  # guards _closed and _runs, never taken by the dispatcher
        self._closed = False
        self._dispatcher = Dispatcher(
            entries=self._entries,
            backend=self.backend,
            max_workers=workers,
            clock=clock,
            events=events,
            rng=rng or random.Random(),
            aging_interval=aging_interval,
            kill_grace=kill_grace,
            resource_manager=resource_manager,
            log_cap_bytes=log_cap_bytes,
            name="orchtui",
        )
        self._post = self._dispatcher.post
        self._dispatcher.start_thread()
        if resource_manager is not None:
            resource_manager.add_release_listener(self._dispatcher.wake)

    # -------------------------------------------------------------- adding

    def create_task(self, name: str, module: str, action: str, **kwargs: Any) -> Task:
        """Create a task, add it (see :meth:`add_task`) and return it.

        ``kwargs`` are Task fields (parameters, dependencies, priority, timeout,
        max_retries, resources, ...). ``resources`` may also be a list of resource
        names, each meaning "one unit of it".

        Raises:
            TaskExecutionError: an unknown keyword, or a bad priority or dependency.
        """
        unknown = sorted(set(kwargs) - _TASK_FIELDS)
        if unknown:
            raise TaskExecutionError(
                f"create_task got unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(_TASK_FIELDS))}"
            )
        resources = kwargs.get("resources")
        if isinstance(resources, (list, tuple)):
            kwargs["resources"] = {str(r): {} for r in resources}
        task = Task(name=name, module=module, action=action, **kwargs)
        self.add_task(task)
        return task

    def add_task(self, task: Task) -> str:
        """Queue ``task``; before :meth:`start_execution` it waits for the start.

        Returns:
            The task id.

        Raises:
            TaskExecutionError: the id is already known, or the priority is not valid.
            OrchestrationError: the orchestrator was shut down.
        """
        entry = self._new_entry(task)
        self._post((OP_ADD, (entry,), True))
        return task.id

    def submit_task(self, task: Task) -> str:
        """Same as :meth:`add_task` (spec 000's name); returns the task id."""
        return self.add_task(task)

    def add_tasks(self, tasks: Iterable[Task]) -> list[str]:
        """Add many tasks in one message to the dispatcher; returns their ids in order."""
        entries = tuple(self._new_entry(task) for task in tasks)
        self._post((OP_ADD, entries, True))
        return [entry.task.id for entry in entries]

    def _new_entry(self, task: Task) -> TaskEntry:
        if not isinstance(task, Task):
            raise TaskExecutionError(f"expected a Task, got {type(task).__name__}")
        self._check_open()
        try:
            priority = task.priority if isinstance(task.priority, TaskPriority) else TaskPriority(task.priority)
        except ValueError:
            raise TaskExecutionError(
                f"task {task.name!r} has priority {task.priority!r}; use one of {', '.join(TaskPriority.choices())}"
            ) from None
        task.priority = priority
        if isinstance(task.dependencies, str):
            task.dependencies = [task.dependencies]
        entry = TaskEntry(task, int(priority))
        if self._entries.setdefault(task.id, entry) is not entry:
            raise TaskExecutionError(f"a task with id {task.id!r} was already submitted; give each task a new id")
        return entry

    # --------------------------------------------------------------- runs

    def submit_run(self, run: RunSpec, tasks: list[Task]) -> None:
        """Start the tasks of one workflow run at once (no start_execution needed).

        Dependencies are step names within ``tasks`` (or steps in
        ``run.preset_outputs``); a task whose name is in ``preset_outputs`` counts as
        completed with that output and does not run. Each task's ``run_id`` is set.

        Raises:
            TaskExecutionError: the run id is active, step names repeat, a dependency
                names no step, ``max_parallel`` < 1, or the log directory cannot be made.
            CycleDetectedError: the dependencies form a cycle.
        """
        names = [task.name for task in tasks]
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise TaskExecutionError(f"run {run.run_id!r} has duplicate step names: {', '.join(dupes)}")
        if run.max_parallel is not None and run.max_parallel < 1:
            raise TaskExecutionError(f"run {run.run_id!r}: max_parallel must be at least 1, got {run.max_parallel}")
        known = set(names) | set(run.preset_outputs)
        graph: dict[str, list[str]] = {}
        for task in tasks:
            deps = [task.dependencies] if isinstance(task.dependencies, str) else list(task.dependencies)
            missing = [d for d in deps if d not in known]
            if missing:
                raise TaskExecutionError(
                    f"run {run.run_id!r}: step {task.name!r} depends on unknown step(s) {', '.join(missing)}"
                )
            graph[task.name] = deps
        try:
            graphlib.TopologicalSorter(graph).prepare()
        except graphlib.CycleError as exc:
            raise CycleDetectedError(list(exc.args[1])) from None
        with self._lock:
            if run.run_id in self._runs:
                raise TaskExecutionError(f"run {run.run_id!r} was already submitted; use a new run id")
            self._runs.add(run.run_id)
        if run.log_dir is not None:
            try:
                Path(run.log_dir).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                with self._lock:
                    self._runs.discard(run.run_id)
                raise TaskExecutionError(
                    f"{run.log_dir}: cannot create the run's log directory ({exc.strerror or exc}); "
                    "check that the state directory is writable",
                    details={"run_id": run.run_id, "log_dir": str(run.log_dir)},
                ) from None
        for task in tasks:
            task.run_id = run.run_id
        entries = [self._new_entry(task) for task in tasks]
        active = ActiveRun(
            run.run_id, dict(run.params), Path(run.log_dir) if run.log_dir is not None else None, run.max_parallel,
            str(run.working_dir) if run.working_dir is not None else None, dict(run.preset_outputs),
            run.parameter_guard,
        )
        self._post((OP_RUN, active, entries))

    def cancel_run(self, run_id: str) -> int:
        """Cancel every unfinished task of a run; return how many were cancelled."""
        waiter = Waiter()
        self._post((OP_CANCEL_RUN, run_id, waiter))
        count = self._await(waiter, None)
        return count if isinstance(count, int) else 0

    def wait_for_run(self, run_id: str, timeout: float | None = None) -> bool:
        """Block until every task of run ``run_id`` ended; False on timeout."""
        entries = [e for e in list(self._entries.values()) if e.task.run_id == run_id]
        return self._wait_entries(entries, timeout, release=False)

    # ----------------------------------------------------------- executing

    def start_execution(self) -> None:
        """Let tasks added before now (and all later ones) run. Idempotent."""
        self._check_open()
        self._post((OP_START,))

    def start_background_processing(self) -> None:
        """Same as :meth:`start_execution` (spec 000's name)."""
        self.start_execution()

    def execute_task(self, task: Task | str, timeout: float | None = None) -> TaskResult:
        """Run one task now and wait for it (its dependencies run too if they were waiting).

        Args:
            task: a new Task, or the id of one already added.
            timeout: seconds to wait; None waits as long as it takes.

        Returns:
            The final attempt's TaskResult; for a task that was skipped or cancelled
            before running, a failed TaskResult saying so.

        Raises:
            TaskExecutionError: unknown task id, called from a listener, or the wait
                timed out (the task keeps running).
        """
        (result,) = self.execute_parallel([task], timeout=timeout)
        return result

    def execute_parallel(self, tasks: Sequence[Task | str], timeout: float | None = None) -> list[TaskResult]:
        """Run tasks now (in parallel, by priority and dependencies) and wait for all.

        Returns:
            One TaskResult per task, in the order given.

        Raises:
            TaskExecutionError: unknown task id, called from a listener, or the wait
                timed out (the tasks keep running).
        """
        if threading.current_thread() is self._dispatcher.thread:
            raise TaskExecutionError("execute_task/execute_parallel cannot be called from a task listener")
        fresh: list[TaskEntry] = []
        entries: list[TaskEntry] = []
        for item in tasks:
            if isinstance(item, Task):
                entry = self._entries.get(item.id)
                if entry is None:
                    entry = self._new_entry(item)
                    fresh.append(entry)
                elif entry.task is not item:
                    raise TaskExecutionError(f"another task with id {item.id!r} was already submitted")
            else:
                entry = self._entries.get(str(item))
                if entry is None:
                    raise TaskExecutionError(f"no task with id {item!r}; add it first or pass the Task itself")
            entries.append(entry)
        if fresh:
            self._post((OP_ADD, tuple(fresh), False))
        if not self._wait_entries(entries, timeout, release=True):
            raise TaskExecutionError(
                f"{len(entries)} task(s) did not finish within {timeout:g}s; they keep running",
                details={"task_ids": [e.task.id for e in entries]},
            )
        return [_result_of(entry.task) for entry in entries]

    def wait_for_completion(self, timeout: float | None = None) -> bool:
        """Block until every task submitted so far ended.

        Tasks added before :meth:`start_execution` count too, so without a start this
        waits until ``timeout``.

        Returns:
            True when all tasks ended, False on timeout.
        """
        if threading.current_thread() is self._dispatcher.thread:
            raise TaskExecutionError("wait_for_completion cannot be called from a task listener")
        waiter = Waiter()
        self._post((OP_BARRIER, waiter))
        return self._await(waiter, timeout) is True

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Block until the dispatcher handled everything sent so far (and published a snapshot).

        Useful after ``ManualClock.advance()`` to observe what the jump caused.
        Returns False on timeout.
        """
        return self._dispatcher.flush(timeout)

    def _wait_entries(self, entries: list[TaskEntry], timeout: float | None, *, release: bool) -> bool:
        if not entries:
            return True
        waiter = Waiter(len(entries))
        self._post((OP_WAIT, entries, waiter, release))
        return self._await(waiter, timeout) is not _TIMED_OUT

    def _await(self, waiter: Waiter, timeout: float | None) -> Any:
        """Wait for the dispatcher's reply; ``_TIMED_OUT`` on timeout or if it died."""
        thread = self._dispatcher.thread
        remaining = timeout
        while True:
            slice_ = _WAIT_SLICE if remaining is None else min(_WAIT_SLICE, remaining)
            if waiter.event.wait(slice_):
                return waiter.value
            if not thread.is_alive():
                return waiter.value if waiter.event.is_set() else _TIMED_OUT
            if remaining is not None:
                remaining -= slice_
                if remaining <= 0:
                    return _TIMED_OUT

    # ------------------------------------------------------------ control

    def cancel_task(self, task_id: str) -> bool:
        """Cancel a task: a waiting one ends at once, a running one is stopped (tree killed).

        Returns:
            True if the task was not finished yet, False if it had ended or is unknown.
        """
        entry = self._entries.get(task_id)
        if entry is None or entry.task.status.is_terminal:
            return False
        waiter = Waiter()
        self._post((OP_CANCEL, entry, waiter))
        if threading.current_thread() is self._dispatcher.thread:
            return True  # handled after this listener returns
        return self._await(waiter, None) is True

    def set_max_workers(self, max_workers: int) -> None:
        """Change how many attempts may run at once (takes effect on the next scheduling pass).

        Raises:
            OrchestrationError: ``max_workers`` < 1.
        """
        if int(max_workers) < 1:
            raise OrchestrationError(f"max_workers must be at least 1, got {max_workers!r}")
        self.max_workers = int(max_workers)
        self._post((OP_WORKERS, self.max_workers))

    def add_listener(self, callback: Callable[[TaskTransition], None]) -> None:
        """Call ``callback(transition)`` on every status change, on the dispatcher thread.

        The callback must be quick (copy the transition onto your own queue) and must
        not wait for the orchestrator.
        """
        with self._lock:
            self._dispatcher.listeners = (*self._dispatcher.listeners, callback)

    def remove_listener(self, callback: Callable[[TaskTransition], None]) -> None:
        """Stop calling ``callback``; unknown callbacks are ignored.

        Compared with ``==``, not ``is``: each ``obj.method`` access makes a new
        bound-method object, equal to the one that was added.
        """
        with self._lock:
            self._dispatcher.listeners = tuple(cb for cb in self._dispatcher.listeners if cb != callback)

    def shutdown(self, wait: bool = True, cancel_running: bool = True) -> None:
        """Stop the orchestrator: waiting tasks are cancelled; running ones are cancelled
        (``cancel_running``) or allowed to finish.

        With ``wait``, returns once the dispatcher and the backend's workers have
        stopped, so no thread or subprocess of ours is left. Idempotent.

        Raises:
            OrchestrationError: called with ``wait`` from a task listener.
        """
        dispatcher = self._dispatcher
        if wait and threading.current_thread() is dispatcher.thread:
            raise OrchestrationError("shutdown(wait=True) cannot be called from a task listener")
        with self._lock:
            first = not self._closed
            self._closed = True
        if first:
            self._post((OP_STOP, cancel_running))
            if self.resource_manager is not None:
                self.resource_manager.remove_release_listener(self._dispatcher.wake)
        if not wait:
            if first:
                threading.Thread(target=self._finish_shutdown, name="orchtui-shutdown", daemon=True).start()
            return
        self._finish_shutdown()

    def _finish_shutdown(self) -> None:
        self._dispatcher.thread.join()
        try:
            # Bounded: a thread stuck in an action that ignores cancellation cannot be joined.
            self.backend.shutdown(wait=True, timeout=self.kill_grace + 1.0)  # type: ignore[call-arg]
        except TypeError:  # a backend with the protocol's plain shutdown(wait)
            self.backend.shutdown(wait=True)

    def __enter__(self) -> TaskOrchestrator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown(wait=True, cancel_running=True)

    def _check_open(self) -> None:
        if self._closed:
            raise OrchestrationError("the orchestrator was shut down; create a new TaskOrchestrator")

    # ------------------------------------------------------------- reading

    def get_task(self, task_id: str) -> Task | None:
        """Return the task with this id, or None."""
        entry = self._entries.get(task_id)
        return entry.task if entry is not None else None

    def get_task_status(self, task_id: str) -> TaskStatus | None:
        """Return the task's current status, or None for an unknown id."""
        entry = self._entries.get(task_id)
        return entry.task.status if entry is not None else None

    def get_dependencies(self, task_id: str) -> list[str]:
        """Return the ids of the tasks ``task_id`` depends on (as given, until it is scheduled).

        Raises:
            TaskExecutionError: unknown task id.
        """
        entry = self._entries.get(task_id)
        if entry is None:
            raise TaskExecutionError(f"no task with id {task_id!r}")
        deps = entry.deps
        if deps is not None:
            return [dep.task.id for dep in deps]
        return list(entry.task.dependencies)

    def get_tasks(self) -> list[Task]:
        """Return every task submitted so far, in submission order."""
        return [entry.task for entry in list(self._entries.values())]

    def get_execution_stats(self) -> dict[str, Any]:
        """Return the spec-002 statistics (plus ``skipped`` and ``max_workers``).

        Keys: total_tasks, pending, ready, running, completed, failed, cancelled,
        skipped, total_execution_time (seconds summed over finished attempts),
        average_execution_time (per finished attempt), max_workers.
        """
        dispatcher = self._dispatcher
        counts = list(dispatcher.counts)
        total = len(self._entries)
        finished = dispatcher.finished_attempts
        spent = dispatcher.execution_time
        return {
            "total_tasks": total,
            "pending": max(0, total - sum(counts[1:])),
            "ready": counts[READY],
            "running": counts[RUNNING],
            "completed": counts[COMPLETED],
            "failed": counts[FAILED],
            "cancelled": counts[CANCELLED],
            "skipped": counts[SKIPPED],
            "total_execution_time": spent,
            "average_execution_time": spent / finished if finished else 0.0,
            "max_workers": self.max_workers,
        }

    def snapshot(self) -> OrchestratorSnapshot:
        """Return the latest published snapshot (at most ~50 ms old); never blocks."""
        return self._dispatcher.snapshot

    @property
    def is_running(self) -> bool:
        """True until :meth:`shutdown` completed."""
        return self._dispatcher.thread.is_alive()


_TIMED_OUT = object()


def _result_of(task: Task) -> TaskResult:
    """The result to hand back for a finished task (one is made up if it never ran)."""
    result = task.result
    status = task.status
    if result is not None and (status == TaskStatus.COMPLETED or not result.success):
        return result
    kind = {TaskStatus.SKIPPED: "Skipped", TaskStatus.CANCELLED: "Cancelled"}.get(status, "TaskExecutionError")
    return TaskResult(
        success=False,
        error_message=task.error or f"task {task.name!r} ended {status.value} without running",
        error_type=kind,
        attempt=task.attempts,
    )
