"""OrchestrationEngine: sessions and their modes and limits, results, events, health."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.config import load_settings
from core.errors import OrchestrationError, ResourceAllocationError, WorkflowExecutionError
from core.events import EventBus, EventType
from core.models import OrchestrationMode, Task, TaskStatus, TaskTransition, WorkflowStatus
from core.orchestration_engine import OrchestrationEngine
from core.resource_manager import ResourceManager
from core.task_orchestrator import TaskOrchestrator

WAIT = 30.0
SPEC_002_KEYS = {"success", "session_id", "executed_steps", "failed_steps", "results", "execution_time", "error"}


@pytest.fixture
def resources() -> ResourceManager:
    rm = ResourceManager(detect=False)
    rm.register_resource("gpu", "gpu", {"units": 1})
    return rm


@pytest.fixture
def engine(tmp_path: Path, resources: ResourceManager) -> Iterator[OrchestrationEngine]:
    orchestrator = TaskOrchestrator(4, resource_manager=resources)
    eng = OrchestrationEngine(settings=load_settings(tmp_path), task_orchestrator=orchestrator,
                              resource_manager=resources)
    yield eng
    eng.shutdown()
    orchestrator.shutdown()


def sleepers(n: int, seconds: float) -> list[dict[str, Any]]:
    return [{"name": f"s{i}", "module": "builtin", "action": "sleep", "parameters": {"seconds": seconds}}
            for i in range(n)]


class Concurrency:
    """Largest number of steps of one run that were RUNNING at the same time."""

    def __init__(self) -> None:
        self.running: dict[str, set[str]] = {}
        self.peak = 0

    def __call__(self, t: TaskTransition) -> None:
        names = self.running.setdefault(t.run_id or "", set())
        if t.status == TaskStatus.RUNNING:
            names.add(t.name)
        else:
            names.discard(t.name)
        self.peak = max(self.peak, len(names))


# ------------------------------------------------------------------- sessions


def test_create_session_takes_the_spec_002_arguments(engine: OrchestrationEngine):
    sid = engine.create_session(user_id="analyst", mode="SEQUENTIAL", max_parallel_tasks=8,
                                max_parallel_workflows=3, timeout_seconds=120, metadata={"team": "a"}, name="nightly")
    session = engine.get_session(sid)
    assert session.user_id == "analyst" and session.mode == OrchestrationMode.SEQUENTIAL
    assert (session.max_parallel_tasks, session.max_parallel_workflows, session.timeout_seconds) == (8, 3, 120.0)
    assert session.metadata == {"team": "a"} and session.name == "nightly" and session.status == "active"
    assert engine.get_session(engine.create_session(mode=OrchestrationMode.PRIORITY)).mode == OrchestrationMode.PRIORITY
    assert engine.close_session(sid) and not engine.close_session(sid)
    assert engine.get_session(sid).status == "closed" and sid not in engine.sessions


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"mdoe": "parallel"}, "did you mean 'mode'"),
    ({"mode": "turbo"}, "sequential, parallel, priority, resource_aware"),
    ({"max_parallel_tasks": 0}, "at least 1"),
    ({"timeout_seconds": "soon"}, "number of seconds"),
])
def test_bad_session_arguments_are_clear_errors(engine: OrchestrationEngine, kwargs: dict[str, Any], match: str):
    with pytest.raises(OrchestrationError, match=match):
        engine.create_session(**kwargs)


def test_sequential_mode_never_runs_two_steps_at_once(engine: OrchestrationEngine):
    engine.workflow_manager.create_workflow({"name": "fan", "steps": sleepers(4, 0.05)})
    sequential, parallel = Concurrency(), Concurrency()
    engine.task_orchestrator.add_listener(sequential)
    result = engine.execute_workflow("fan", engine.create_session(mode="sequential"))
    engine.task_orchestrator.remove_listener(sequential)
    assert result["success"] and result["executed_steps"] == 4
    assert sequential.peak == 1
    # The same workflow in parallel mode does overlap, so the check above can fail.
    engine.task_orchestrator.add_listener(parallel)
    assert engine.execute_workflow("fan", engine.create_session(mode="parallel"))["success"]
    assert parallel.peak >= 2


def test_parallel_mode_caps_steps_at_max_parallel_tasks(engine: OrchestrationEngine):
    engine.workflow_manager.create_workflow({"name": "wide", "steps": sleepers(6, 0.05)})
    seen = Concurrency()
    engine.task_orchestrator.add_listener(seen)
    assert engine.execute_workflow("wide", engine.create_session(max_parallel_tasks=2))["success"]
    assert 1 <= seen.peak <= 2


def test_max_parallel_workflows_refuses_a_non_blocking_start_and_makes_a_blocking_one_wait(engine: OrchestrationEngine):
    wm = engine.workflow_manager
    wm.create_workflow({"name": "long", "steps": sleepers(1, 60)})
    wm.create_workflow({"name": "short", "steps": [{"name": "x"}]})
    sid = engine.create_session(max_parallel_workflows=1)
    first = engine.start_workflow("long", sid)
    with pytest.raises(WorkflowExecutionError, match="max_parallel_workflows=1"):
        engine.start_workflow("short", sid)
    results: list[dict[str, Any]] = []
    waiter = threading.Thread(target=lambda: results.append(engine.execute_workflow("short", sid)))
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive() and not results  # waiting for the slot, not refused
    first.cancel()
    waiter.join(WAIT)
    assert results and results[0]["success"] and first.wait(WAIT).status == WorkflowStatus.CANCELLED


def test_an_expired_session_cancels_its_runs(engine: OrchestrationEngine):
    engine.workflow_manager.create_workflow({"name": "long", "steps": sleepers(1, 60)})
    sid = engine.create_session(timeout_seconds=0.5)
    handle = engine.start_workflow("long", sid)
    execution = handle.wait(WAIT)
    assert execution is not None and execution.status == WorkflowStatus.CANCELLED
    assert engine.get_session(sid).status == "expired"
    refused = engine.execute_workflow("long", sid)
    assert refused["success"] is False and "is expired" in refused["error"]
    assert engine.get_metrics()["sessions"]["expired"] == 1


def test_resource_aware_sessions_hold_their_requirements_until_closed(engine: OrchestrationEngine,
                                                                      resources: ResourceManager):
    sid = engine.create_session(mode="resource_aware", resource_requirements={"gpu": {"units": 1}})
    assert resources.get_usage("gpu").current == {"units": 1}
    with pytest.raises(ResourceAllocationError, match="in use"):
        engine.create_session(mode="resource_aware", resource_requirements={"gpu": {"units": 1}})
    with pytest.raises(ResourceAllocationError):
        engine.create_session(mode="resource_aware", resource_requirements={"tpu": {"units": 1}})
    engine.close_session(sid)
    assert resources.get_usage("gpu").current.get("units", 0) == 0
    # Other modes keep the requirements as information only.
    engine.create_session(mode="parallel", resource_requirements={"gpu": {"units": 1}})
    assert resources.get_usage("gpu").current.get("units", 0) == 0


# --------------------------------------------------------------- executing


def test_execute_workflow_returns_the_spec_002_dict(engine: OrchestrationEngine):
    engine.workflow_manager.create_workflow({"name": "hello", "params": {"who": {"default": "me"}}, "steps": [
        {"name": "say", "module": "builtin", "action": "echo", "parameters": {"message": "{{ params.who }}"}}]})
    result = engine.execute_workflow("hello", who="you")
    assert SPEC_002_KEYS <= set(result)
    assert result["success"] is True and result["results"] == {"say": "you"} and result["error"] == ""
    assert result["session_id"] not in engine.sessions  # the implicit session was closed
    assert engine.get_workflow_status("hello")["status"] == "completed"


def test_execute_workflow_turns_errors_into_result_dicts(engine: OrchestrationEngine):
    missing = engine.execute_workflow("nope")
    assert SPEC_002_KEYS <= set(missing)
    assert missing["success"] is False and missing["error_code"] == "WORKFLOW_NOT_FOUND"
    assert missing["error_type"] == "WorkflowNotFoundError" and "nope" in missing["error"]
    assert engine.execute_workflow("nope", "session-unknown")["error"].startswith("session 'session-unknown'")


def test_execute_complex_workflow_with_unknown_modules_fails_those_steps(engine: OrchestrationEngine):
    definition = {
        "steps": [
            {"name": "setup", "module": "environment_setup", "action": "check_environment"},
            {"name": "analyze", "module": "static_analysis", "action": "analyze_code_quality"},
            {"name": "visualize", "module": "data_visualization", "action": "create_chart"},
        ],
        "dependencies": {"analyze": ["setup"], "visualize": ["analyze"]},
        "parallel_groups": [["analyze", "visualize"]],
    }
    result = engine.execute_complex_workflow(definition)
    assert result["success"] is False
    assert sorted(result["failed_steps"]) == ["analyze", "setup", "visualize"]
    assert "static_analysis" in result["errors"]["analyze"]
    assert result["execution_order"] == [["setup"], ["analyze"], ["visualize"]]
    assert result["warnings"] and "'visualize' depends on 'analyze'" in result["warnings"][0]


def test_execute_complex_workflow_runs_builtin_steps(engine: OrchestrationEngine):
    result = engine.execute_complex_workflow({
        "name": "cx",
        "steps": [{"name": "a", "module": "builtin", "action": "echo", "parameters": {"message": 1}},
                  {"name": "b", "module": "builtin", "action": "echo", "parameters": {"message": "{{ a.output }}"}},
                  {"name": "c", "module": "builtin", "action": "noop"}],
        "dependencies": {"b": ["a"]},
        "parallel_groups": [["b", "c"]],
    })
    assert result["success"] and result["results"]["b"] == 1 and result["warnings"] == []
    bad = engine.execute_complex_workflow({"steps": [{"name": "a"}], "dependencies": {"zz": ["a"]}})
    assert bad["success"] is False and "unknown step 'zz'" in bad["error"]
    cyc = engine.execute_complex_workflow({"steps": [{"name": "a"}, {"name": "b"}],
                                           "dependencies": {"a": ["b"], "b": ["a"]}})
    assert cyc["success"] is False and "cycle" in cyc["error"]


def test_submit_task_runs_a_task(engine: OrchestrationEngine):
    task = Task(name="t", module="builtin", action="echo", parameters={"message": "hi"})
    task_id = engine.submit_task(task)
    engine.task_orchestrator.start_execution()
    assert engine.task_orchestrator.wait_for_completion(WAIT)
    assert engine.task_orchestrator.get_task_status(task_id) == TaskStatus.COMPLETED


# ------------------------------------------------------------------- events


def test_event_handlers_run_off_the_dispatcher_thread(engine: OrchestrationEngine):
    seen: list[tuple[str, dict[str, Any], str]] = []
    dispatcher_threads: set[str] = set()
    engine.task_orchestrator.add_listener(lambda t: dispatcher_threads.add(threading.current_thread().name))

    def handler(event: str, data: dict[str, Any]) -> None:
        seen.append((event, data, threading.current_thread().name))

    for event in ("workflow_started", "workflow_completed", EventType.SESSION_CREATED, EventType.SESSION_CLOSED):
        engine.register_event_handler(event, handler)
    engine.workflow_manager.create_workflow({"name": "ev", "steps": [{"name": "a"}]})
    assert engine.execute_workflow("ev")["success"]
    assert engine.events.flush()
    events = [e for e, _, _ in seen]
    assert events == ["session_created", "workflow_started", "workflow_completed", "session_closed"]
    done = seen[2][1]
    assert done["workflow_name"] == "ev" and done["success"] is True
    assert not {thread for *_, thread in seen} & dispatcher_threads
    with pytest.raises(OrchestrationError, match="did you mean 'workflow_failed'"):
        engine.register_event_handler("workflow_fialed", handler)


def test_resource_events_are_emitted(engine: OrchestrationEngine, resources: ResourceManager):
    seen: list[tuple[str, str]] = []
    engine.register_event_handler("*", lambda e, d: seen.append((e, d.get("resource_id", ""))))
    allocation = resources.allocate("gpu", "someone", 1)
    resources.release(allocation.id)
    assert engine.events.flush()
    assert ("resource_allocated", "gpu") in seen and ("resource_released", "gpu") in seen


# -------------------------------------------------------------- health etc.


def test_health_status_and_metrics_have_the_documented_keys(engine: OrchestrationEngine):
    engine.workflow_manager.create_workflow({"name": "m", "steps": [{"name": "a"}]})
    engine.execute_workflow("m")
    health = engine.health_check()
    assert health["overall_status"] == "healthy" and health["issues"] == []
    assert set(health["components"]) == {"workflow_manager", "task_orchestrator", "project_manager", "resource_manager"}
    assert all({"status", "details"} <= set(c) for c in health["components"].values())
    assert health["components"]["project_manager"]["status"] == "disabled"
    summary = engine.get_health_status()
    assert summary["status"] == "healthy" and summary["uptime_seconds"] >= 0
    assert set(summary["error_counts"]) == {"failed_workflows", "failed_tasks", "event_handler_errors"}
    status = engine.get_system_status()
    assert {"timestamp", "orchestration_engine", "workflow_manager", "task_orchestrator", "project_manager",
            "resource_manager", "performance"} <= set(status)
    assert status["workflow_manager"] == {"total_workflows": 1, "running_workflows": 0}
    assert {"total_tasks", "pending", "running", "completed", "failed"} <= set(status["task_orchestrator"])
    metrics = engine.get_metrics()
    assert metrics["sessions"]["total"] == 1 and metrics["sessions"]["active"] == 0
    assert metrics["workflows"]["executions"] == 1 and metrics["workflows"]["successful"] == 1
    assert metrics["resources"]["utilization_percent"] == {"gpu": 0.0}


def test_a_fully_allocated_resource_degrades_health(engine: OrchestrationEngine, resources: ResourceManager):
    allocation = resources.allocate("gpu", "hog", 1)
    health = engine.health_check()
    assert health["overall_status"] == "degraded"
    assert health["issues"] == ["resource_manager: resource 'gpu' is fully allocated"]
    resources.release(allocation.id)


def test_a_closed_store_makes_health_unhealthy(tmp_path: Path, resources: ResourceManager):
    from core.store import Store

    store = Store(tmp_path / "state" / "orchtui.db")
    eng = OrchestrationEngine(settings=load_settings(tmp_path), resource_manager=resources, store=store)
    try:
        assert eng.health_check()["components"]["store"]["status"] == "healthy"
        store.close()
        health = eng.health_check()
        assert health["components"]["store"]["status"] == "unhealthy"
        assert health["overall_status"] == "unhealthy"
    finally:
        eng.shutdown()


def test_shutdown_detaches_from_a_shared_resource_manager(tmp_path: Path, resources: ResourceManager):
    bus = EventBus("test-shared-bus")
    seen: list[str] = []
    bus.register(EventType.RESOURCE_ALLOCATED, lambda event, data: seen.append(data["requester_id"]))
    try:
        first = OrchestrationEngine(settings=load_settings(tmp_path), resource_manager=resources, events=bus)
        first.shutdown()
        resources.deallocate_resources(resources.allocate("gpu", "after-shutdown", 1).requester_id)
        assert bus.flush(WAIT)
        assert seen == []  # a shut-down engine no longer reports the shared manager's grants
    finally:
        bus.close()


def test_shutdown_closes_sessions_and_cancels_runs(tmp_path: Path):
    eng = OrchestrationEngine(settings=load_settings(tmp_path), resource_manager=ResourceManager(detect=False))
    eng.workflow_manager.create_workflow({"name": "long", "steps": sleepers(1, 60)})
    sid = eng.create_session()
    handle = eng.start_workflow("long", sid)
    started = time.monotonic()
    eng.shutdown()
    assert handle.wait(WAIT).status == WorkflowStatus.CANCELLED
    assert eng.get_session(sid).status == "closed"
    assert time.monotonic() - started < WAIT  # the 60 s step was stopped, not waited for
