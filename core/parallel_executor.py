"""ParallelExecutor: run a batch of tasks or plain callables with dependencies, in parallel.

A thin front on :class:`~core.task_orchestrator.TaskOrchestrator` (one scheduler,
not two): the batch is submitted as one run whose dependencies are task names, so
priorities, skip-on-failure, timeouts and cancellation behave exactly as for workflows.

Plain Python callables run on the thread backend. With a timeout, a callable runs on
a helper thread so the timeout ends the *task* on time even if the callable never
returns (Python cannot kill a thread; use a Task with ``python.call`` on the process
backend when the work itself must be killed).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .actions import ActionContext, ActionRegistry, invoke
from .errors import OrchestrationError
from .executors import ThreadBackend, create_backend
from .models import ExecutionResult, Invocation, Task, TaskResult, TaskStatus, new_id
from .task_orchestrator import RunSpec, TaskOrchestrator

__all__ = ["ParallelExecutor"]

# Module/action under which a plain callable runs; never visible in the global registry.
_CALLABLE_MODULE, _CALLABLE_ACTION = "python", "callable"
_POLL = 0.02  # seconds between deadline/cancel checks while a timed callable runs


def _run_callable(ctx: ActionContext, params: dict[str, Any]) -> Any:
    """Call ``params["callable"]()``; with a deadline, on a helper thread that can be abandoned."""
    fn: Callable[[], Any] = params["callable"]
    if ctx.deadline is None:
        return fn()
    box: dict[str, Any] = {}
    finished = threading.Event()

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the waiting attempt below
            box["error"] = exc
        finally:
            finished.set()

    threading.Thread(target=target, name=f"orchtui-callable-{ctx.task_name}", daemon=True).start()
    while not finished.wait(_POLL):
        ctx.check()  # raises StepTimeout / StepCancelled; the helper thread is abandoned
    if "error" in box:
        raise box["error"]
    return box.get("value")


_CALLABLES = ActionRegistry()
_CALLABLES.register(_CALLABLE_MODULE, _CALLABLE_ACTION, _run_callable, required=("callable",))


def _invoke_with_callables(invocation: Invocation, cancel_event: Any) -> TaskResult:
    if invocation.module == _CALLABLE_MODULE and invocation.action == _CALLABLE_ACTION \
            and callable(invocation.parameters.get("callable")):
        return invoke(invocation, cancel_event, action_registry=_CALLABLES)
    return invoke(invocation, cancel_event)


class ParallelExecutor:
    """Runs tasks in parallel while honouring their dependencies.

    Use as a context manager (``with ParallelExecutor(4) as ex: ...``) or call
    :meth:`shutdown` when done.

    Args:
        max_workers: tasks running at once.
        backend: ``"thread"`` (default), ``"process"`` or ``"dask"``; callables always
            need ``"thread"``.
        timeout: default per-task timeout in seconds (a Task's own timeout wins).

    Raises:
        OrchestrationError: max_workers < 1, or an unknown or unavailable backend.
    """

    def __init__(self, max_workers: int = 4, backend: str = "thread", timeout: float | None = None) -> None:
        if int(max_workers) < 1:
            raise OrchestrationError(f"max_workers must be at least 1, got {max_workers!r}")
        self.max_workers = int(max_workers)
        self.backend_name = str(backend).strip().lower()
        self.timeout = timeout
        if self.backend_name == "thread":
            executor = ThreadBackend(self.max_workers, invoke=_invoke_with_callables)
        else:
            executor = create_backend(self.backend_name, self.max_workers)
        self._orchestrator = TaskOrchestrator(self.max_workers, backend=executor)
        self._closed = False

    def __enter__(self) -> ParallelExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    @property
    def orchestrator(self) -> TaskOrchestrator:
        """The TaskOrchestrator that schedules the batches."""
        return self._orchestrator

    def shutdown(self, wait: bool = True) -> None:
        """Cancel whatever still runs and stop the worker threads. Idempotent."""
        if not self._closed:
            self._closed = True
            self._orchestrator.shutdown(wait=wait, cancel_running=True)

    def execute_tasks(
        self,
        tasks: Sequence[Task] | Mapping[str, Callable[[], Any] | Task],
        dependencies: Mapping[str, Sequence[str]] | None = None,
    ) -> dict[str, ExecutionResult]:
        """Run ``tasks`` once each, respecting ``dependencies``, and wait for all of them.

        Args:
            tasks: a list of Task, or a mapping name -> callable (called with no
                arguments) or name -> Task.
            dependencies: name -> names it waits for (added to each Task's own).

        Returns:
            name -> ExecutionResult for every task: COMPLETED, FAILED, or SKIPPED (a
            dependency failed) / CANCELLED.

        Raises:
            OrchestrationError: the executor was shut down, a task name repeats, a
                callable is given with a non-thread backend, or a value is neither a
                Task nor a callable.
            TaskExecutionError: a dependency names no task in the batch.
            CycleDetectedError: the dependencies form a cycle.
        """
        if self._closed:
            raise OrchestrationError("the ParallelExecutor was shut down; create a new one")
        batch = self._build_tasks(tasks, dependencies or {})
        if not batch:
            return {}
        run_id = new_id("batch")
        self._orchestrator.submit_run(RunSpec(run_id=run_id), batch)
        self._orchestrator.wait_for_run(run_id)
        return {task.name: _execution_result(task) for task in batch}

    def _build_tasks(
        self,
        tasks: Sequence[Task] | Mapping[str, Callable[[], Any] | Task],
        dependencies: Mapping[str, Sequence[str]],
    ) -> list[Task]:
        items: list[tuple[str, Callable[[], Any] | Task]]
        if isinstance(tasks, Mapping):
            items = [(str(name), value) for name, value in tasks.items()]
        else:
            items = [(getattr(task, "name", ""), task) for task in tasks]
        batch: list[Task] = []
        seen: set[str] = set()
        # A Task list may name its dependencies by task id; inside the batch they are names.
        id_to_name = {value.id: name for name, value in items if isinstance(value, Task)}
        for name, value in items:
            if name in seen:
                raise OrchestrationError(f"task name {name!r} appears twice in the batch; names must be unique")
            seen.add(name)
            if isinstance(value, Task):
                # A fresh copy: a Task object runs once per orchestrator, a batch may be rerun.
                task = dataclasses.replace(
                    value, name=name, id=new_id(), status=TaskStatus.PENDING, attempts=0, result=None,
                    started_at=None, completed_at=None, error="", run_id=None,
                    dependencies=[id_to_name.get(d, d) for d in value.dependencies],
                )
            elif callable(value):
                if self.backend_name != "thread":
                    raise OrchestrationError(
                        f"task {name!r} is a Python callable, which runs only on the thread backend; "
                        "use backend='thread' or give a Task (e.g. python.call)"
                    )
                task = Task(name=name, module=_CALLABLE_MODULE, action=_CALLABLE_ACTION, parameters={"callable": value})
            else:
                raise OrchestrationError(
                    f"task {name!r} is a {type(value).__name__}; give a Task or a callable taking no arguments"
                )
            extra = [str(d) for d in dependencies.get(name, ())]
            task.dependencies = list(dict.fromkeys([*task.dependencies, *extra]))
            if task.timeout is None:
                task.timeout = self.timeout
            batch.append(task)
        return batch


def _execution_result(task: Task) -> ExecutionResult:
    result = task.result
    success = task.status == TaskStatus.COMPLETED
    return ExecutionResult(
        task_name=task.name,
        success=success,
        result=result.data if result is not None and success else None,
        error="" if success else (task.error or (result.error_message if result is not None else "")),
        execution_time=result.execution_time if result is not None else 0.0,
        start_time=result.started_at if result is not None else None,
        end_time=result.finished_at if result is not None else None,
        status=task.status,
    )
