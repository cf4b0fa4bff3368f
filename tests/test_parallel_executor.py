"""ParallelExecutor: callables and Tasks with dependencies, on the shared scheduler."""

from __future__ import annotations

import threading

import psutil
import pytest

from core.errors import CycleDetectedError, OrchestrationError, TaskExecutionError
from core.models import ExecutionResult, Task, TaskStatus
from core.parallel_executor import ParallelExecutor


def test_callables_with_dependencies_and_a_failure() -> None:
    order: list[str] = []
    lock = threading.Lock()

    def step(name: str, value: object = None) -> object:
        def run() -> object:
            with lock:
                order.append(name)
            return value if value is not None else name
        return run

    with ParallelExecutor(max_workers=3) as executor:
        results = executor.execute_tasks(
            {"fetch": step("fetch", 1), "parse": step("parse", 2), "broken": lambda: 1 / 0,
             "report": step("report"), "after-broken": step("after-broken")},
            {"parse": ["fetch"], "report": ["parse"], "after-broken": ["broken"]},
        )
    assert set(results) == {"fetch", "parse", "broken", "report", "after-broken"}
    assert all(isinstance(r, ExecutionResult) for r in results.values())
    assert results["report"].success and results["parse"].result == 2
    assert order.index("fetch") < order.index("parse") < order.index("report")
    assert results["broken"].status == TaskStatus.FAILED and "ZeroDivisionError" in results["broken"].error
    assert results["after-broken"].status == TaskStatus.SKIPPED and "after-broken" not in order


def test_timeout_ends_a_callable_that_never_returns() -> None:
    release = threading.Event()
    with ParallelExecutor(max_workers=2, timeout=0.2) as executor:
        results = executor.execute_tasks({"hang": lambda: release.wait(30), "quick": lambda: "ok"})
    release.set()
    assert results["hang"].status == TaskStatus.FAILED and "timed out" in results["hang"].error
    assert results["quick"].result == "ok"


def test_task_list_with_ids_as_dependencies_runs_real_actions() -> None:
    a = Task(name="a", module="shell", action="run", parameters={"command": ["echo", "from a"]})
    b = Task(name="b", module="builtin", action="echo", parameters={"message": "{{ a.output }}!"},
             dependencies=[a.id])
    with ParallelExecutor(2) as executor:
        first = executor.execute_tasks([a, b])
        again = executor.execute_tasks([a, b])  # the same Task objects can run again
    assert first["b"].result == "from a!" and again["b"].result == "from a!"
    assert a.status == TaskStatus.PENDING  # the caller's objects are left alone


def test_process_backend_runs_tasks_in_children() -> None:
    task = Task(name="pid", module="python", action="call", parameters={"target": "os:getpid"})
    with ParallelExecutor(1, backend="process") as executor:
        result = executor.execute_tasks([task])["pid"]
        with pytest.raises(OrchestrationError, match="thread backend"):
            executor.execute_tasks({"f": lambda: 1})
    assert result.success and result.result != psutil.Process().pid


def test_bad_batches_are_user_errors() -> None:
    with ParallelExecutor(1) as executor:
        with pytest.raises(CycleDetectedError):
            executor.execute_tasks({"a": lambda: 1, "b": lambda: 2}, {"a": ["b"], "b": ["a"]})
        with pytest.raises(TaskExecutionError, match="unknown step"):
            executor.execute_tasks({"a": lambda: 1}, {"a": ["ghost"]})
        with pytest.raises(OrchestrationError, match="callable"):
            executor.execute_tasks({"a": 42})  # type: ignore[dict-item]
        assert executor.execute_tasks({}) == {}
    with pytest.raises(OrchestrationError, match="shut down"):
        executor.execute_tasks({"a": lambda: 1})
    with pytest.raises(OrchestrationError):
        ParallelExecutor(0)


def test_context_manager_leaves_no_threads() -> None:
    before = {t.ident for t in threading.enumerate()}
    with ParallelExecutor(4) as executor:
        executor.execute_tasks({f"t{i}": (lambda i=i: i * i) for i in range(50)})
    assert [t for t in threading.enumerate() if t.ident not in before] == []
