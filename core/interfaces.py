"""The small interfaces that let parts of the core be swapped without touching the rest.

* :class:`ExecutorBackend`: where an :class:`~core.models.Invocation` runs (threads,
  child processes, Dask). The orchestrator depends on nothing else of a backend.
* :class:`RunObserver`: who hears about workflow runs (the SQLite store recorder, the
  CLI's progress display). Called on the dispatcher thread: copy and return.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from .models import Invocation, TaskResult, TaskTransition, Workflow, WorkflowExecution

__all__ = ["ExecutorBackend", "BackendHandle", "RunObserver", "DoneCallback", "ParameterGuard"]

DoneCallback = Callable[[TaskResult], None]
# (step name, module, resolved parameters) -> why the step may not run with them, or None.
ParameterGuard = Callable[[str, str, dict[str, Any]], "str | None"]


class BackendHandle(Protocol):
    """Whatever a backend returns from ``submit``; only the backend looks inside."""


@runtime_checkable
class ExecutorBackend(Protocol):
    """Runs invocations somewhere and reports each result exactly once.

    Contract:
      * ``submit`` returns at once; ``on_done(result)`` is later called exactly once,
        from any thread, for every submitted invocation, even if it was cancelled
        (then with ``error_type="Cancelled"``) or the backend shut down.
      * ``cancel`` is best effort and idempotent: it asks the attempt to stop (a
        subprocess tree is killed); it never calls ``on_done`` itself synchronously
        with the caller holding locks.
      * ``capacity`` is how many invocations it can run at once (None: no limit).
    """

    name: str

    def submit(self, invocation: Invocation, on_done: DoneCallback) -> BackendHandle: ...

    def cancel(self, handle: BackendHandle) -> None: ...

    def shutdown(self, wait: bool = True) -> None: ...

    @property
    def capacity(self) -> int | None: ...


@runtime_checkable
class RunObserver(Protocol):
    """Hears about one workflow run's life. Methods must be quick and never raise."""

    def run_started(self, run_id: str, workflow: Workflow, params: dict[str, Any], session_id: str | None) -> None: ...

    def task_transition(self, transition: TaskTransition) -> None: ...

    def run_finished(self, execution: WorkflowExecution) -> None: ...
