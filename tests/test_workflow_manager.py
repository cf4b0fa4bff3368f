"""WorkflowManager: definitions, validation, runs through the real orchestrator, outcomes."""

from __future__ import annotations

import gc
import json
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.config import load_settings
from core.errors import DAGValidationError, OrchestrationError, WorkflowExecutionError, WorkflowNotFoundError, WorkflowValidationError
from core.events import EventBus, EventType
from core.models import (
    TaskStatus,
    TaskTransition,
    Workflow,
    WorkflowExecution,
    WorkflowStatus,
    WorkflowStep,
)
from core.resource_manager import ResourceManager
from core.task_orchestrator import TaskOrchestrator
from core.workflow_dag import WorkflowDAG
from core.workflow_manager import WorkflowManager

WAIT = 30.0  # generous: the machine is shared and noisy; never a timing assertion


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[WorkflowManager]:
    orchestrator = TaskOrchestrator(4, resource_manager=ResourceManager(detect=False))
    wm = WorkflowManager(tmp_path / "workflows", orchestrator=orchestrator, settings=load_settings(tmp_path))
    yield wm
    wm.shutdown()
    orchestrator.shutdown(wait=True, cancel_running=True)


def echo(name: str, message: Any = None, deps: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"name": name, "module": "builtin", "action": "echo",
            "parameters": {"message": name if message is None else message}, "dependencies": deps or [], **extra}


def fail(name: str, deps: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"name": name, "module": "builtin", "action": "fail", "parameters": {"message": f"{name} broke"},
            "dependencies": deps or [], **extra}


def sleeper(name: str, seconds: float = 60, deps: list[str] | None = None) -> dict[str, Any]:
    return {"name": name, "module": "builtin", "action": "sleep", "parameters": {"seconds": seconds},
            "dependencies": deps or []}


def run(wm: WorkflowManager, steps: list[dict[str, Any]], name: str = "wf", **params: Any) -> WorkflowExecution:
    wm.create_workflow({"name": name, "steps": steps})
    handle = wm.start_workflow(name, params)
    execution = handle.wait(WAIT)
    assert execution is not None, "the run did not finish"
    return execution


class Recorder:
    """A RunObserver that keeps what it hears (a test double for the store recorder)."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.transitions: list[TaskTransition] = []
        self.finished: list[WorkflowExecution] = []

    def run_started(self, run_id: str, workflow: Workflow, params: dict[str, Any], session_id: str | None) -> None:
        self.started.append(run_id)

    def task_transition(self, transition: TaskTransition) -> None:
        self.transitions.append(transition)

    def run_finished(self, execution: WorkflowExecution) -> None:
        self.finished.append(execution)


# ------------------------------------------------------------------ definitions


def test_create_workflow_accepts_every_documented_form(manager: WorkflowManager):
    by_steps = manager.create_workflow("a", [WorkflowStep(name="s1"), {"name": "s2", "dependencies": ["s1"]}], "two")
    assert by_steps.description == "two" and by_steps.step_names == ["s1", "s2"]
    assert by_steps.status == WorkflowStatus.READY
    empty = manager.create_workflow("b", "spec 002: name and description only")
    assert empty.steps == [] and empty.description.startswith("spec 002")
    from_dict = manager.create_workflow({"name": "c", "steps": [echo("x")]})
    assert from_dict.step("x").action == "echo"
    obj = manager.create_workflow(Workflow(name="d", steps=[WorkflowStep(name="only")]))
    assert obj.name == "d"
    assert manager.list_workflows() == ["a", "b", "c", "d"]
    assert manager.get_workflow("c") is from_dict and manager.get_workflow("zzz") is None
    assert manager.delete_workflow("c") and not manager.delete_workflow("c")
    assert manager.list_workflows() == ["a", "b", "d"]


def test_create_workflow_reports_every_structural_problem(manager: WorkflowManager):
    steps = [
        WorkflowStep(name="x", dependencies=["y"]),
        WorkflowStep(name="z", parameters={"v": "{{ x.output }}"}),
        WorkflowStep(name="w", conditions={"when": "__import__('os')"}),
    ]
    with pytest.raises(WorkflowValidationError) as info:
        manager.create_workflow("bad", steps)
    text = "\n".join(str(p) for p in info.value.problems)
    assert "depends on unknown step 'y'" in text
    assert "refers to the output of 'x', which is not upstream" in text
    assert "step 'w'" in text
    assert manager.get_workflow("bad") is None


def test_create_workflow_rejects_a_cycle(manager: WorkflowManager):
    with pytest.raises(WorkflowValidationError, match="cycle: a -> b -> a"):
        manager.create_workflow("cyc", [WorkflowStep(name="a", dependencies=["b"]),
                                        WorkflowStep(name="b", dependencies=["a"])])


def test_load_workflows_keeps_good_files_and_reports_bad_ones(tmp_path: Path):
    folder = tmp_path / "wfs"
    folder.mkdir()
    (folder / "good.yaml").write_text("name: good\nsteps:\n  - name: a\n    module: builtin\n    action: noop\n")
    (folder / "also.json").write_text(json.dumps({"name": "also", "steps": [{"name": "b"}]}))
    (folder / "broken.yaml").write_text("name: broken\nsteps:\n  - name: a\n    dependencies: [nope]\n")
    (folder / "twin.yaml").write_text("name: good\nsteps:\n  - name: c\n")
    wm = WorkflowManager(folder, settings=load_settings(tmp_path))
    assert wm.list_workflows() == ["also", "good"]
    assert wm.get_workflow("good").step_names == ["a"]  # the first file of a name wins
    joined = "\n".join(wm.load_problems)
    assert "broken.yaml" in joined and "nope" in joined
    assert "twin.yaml" in joined and "also used by" in joined
    assert wm.load_workflows(tmp_path / "missing") == [f"{tmp_path / 'missing'}: workflows directory does not exist"]


def _two_files_named_same(tmp_path: Path) -> tuple[Path, WorkflowManager]:
    """A workflows directory whose a.yaml and b.yaml both define ``same``, and its manager."""
    folder = tmp_path / "wfs"
    folder.mkdir()
    (folder / "a.yaml").write_text("name: same\nsteps:\n  - name: a\n")
    (folder / "b.yaml").write_text("name: same\nsteps:\n  - name: b\n")
    return folder, WorkflowManager(folder, settings=load_settings(tmp_path))


def test_a_name_two_files_define_is_refused_by_name_naming_both_files(tmp_path: Path):
    _, wm = _two_files_named_same(tmp_path)
    with pytest.raises(WorkflowNotFoundError, match=r"defined by 2 files .*\(a.yaml, b.yaml\)") as refused:
        wm.start_workflow("same", {})
    assert refused.value.error_code == "WORKFLOW_AMBIGUOUS"


def test_renaming_one_of_two_files_of_a_name_makes_the_name_runnable_again(tmp_path: Path):
    folder, wm = _two_files_named_same(tmp_path)
    (folder / "b.yaml").write_text("name: other\nsteps:\n  - name: b\n")
    assert wm.load_workflows() == []
    assert wm.require_workflow("same").step_names == ["a"]


def test_an_invalid_file_declaring_a_valid_files_name_makes_it_ambiguous(tmp_path: Path):
    folder, wm = _two_files_named_same(tmp_path)
    (folder / "b.yaml").write_text("name: same\nsteps:\n  - name: b\n    dependencies: [nope]\n")
    assert any("b.yaml" in problem and "also used by" in problem for problem in wm.load_workflows())
    with pytest.raises(WorkflowNotFoundError) as refused:
        wm.require_workflow("same")
    assert refused.value.error_code == "WORKFLOW_AMBIGUOUS"


def test_a_name_only_an_invalid_file_declares_is_refused_with_its_problems(tmp_path: Path):
    folder, wm = _two_files_named_same(tmp_path)
    (folder / "b.yaml").unlink()
    (folder / "a.yaml").write_text("name: same\nsteps:\n  - name: a\n    dependencies: [nope]\n")
    wm.load_workflows()
    with pytest.raises(WorkflowValidationError, match=r"a.yaml:4.*nope"):
        wm.require_workflow("same")  # not the version loaded before the file broke


def test_a_workflow_whose_file_was_deleted_is_forgotten_when_the_directory_is_loaded_again(tmp_path: Path):
    folder, wm = _two_files_named_same(tmp_path)
    (folder / "a.yaml").unlink()
    (folder / "b.yaml").unlink()
    wm.create_workflow("made", [WorkflowStep(name="x")])  # not from the directory: kept
    assert wm.load_workflows() == []
    assert wm.list_workflows() == ["made"]


def test_a_created_workflow_outlives_a_reload_of_a_relative_directory(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f.yaml").write_text("name: f\nsteps:\n  - name: a\n")
    wm = WorkflowManager(".", settings=load_settings(tmp_path))
    wm.create_workflow({"name": "agent", "steps": [{"name": "x"}]})
    wm.workflows["agent"].source_path = "<mcp>"  # as the MCP server's definitions are named
    wm.load_workflows()
    assert wm.list_workflows() == ["agent", "f"]


def test_validate_workflow_covers_actions_and_structure(manager: WorkflowManager):
    manager.create_workflow("ext", [WorkflowStep(name="scan", module="static_analysis", action="analyze")])
    problems = manager.validate_workflow("ext")
    assert len(problems) == 1 and "static_analysis" in problems[0] and "scan" in problems[0]
    assert manager.validate_workflow({"name": "ok", "steps": [echo("a")]}) == []
    bad = manager.validate_workflow({"name": "k", "steps": [echo("a", deps=["b"])], "colour": 1})
    assert len(bad) >= 2 and any("colour" in p for p in bad)
    assert manager.validate_workflow("missing") == ["workflow 'missing' is not registered"]


def test_dependency_helpers_take_task_dicts_steps_and_tasks(manager: WorkflowManager):
    tasks = [{"name": "a", "module": "m", "action": "x"}, {"name": "b", "dependencies": ["a"]},
             {"name": "c", "dependencies": ["a"]}, {"name": "d", "dependencies": ["b", "c"]}]
    assert manager.get_workflow_execution_order(tasks) == [["a"], ["b", "c"], ["d"]]
    dag = manager.create_workflow_dag([WorkflowStep(name="s"), WorkflowStep(name="t", dependencies=["s"])])
    assert isinstance(dag, WorkflowDAG) and dag.topological_sort() == ["s", "t"]
    problems = manager.validate_workflow_dependencies(
        [{"name": "a", "dependencies": ["b"]}, {"name": "b", "dependencies": ["a"]}, {"name": "c", "dependencies": ["dd"]}])
    assert any("unknown step 'dd'" in p for p in problems) and any("cycle" in p for p in problems)
    with pytest.raises(DAGValidationError):
        manager.get_workflow_execution_order([{"name": "a", "dependencies": ["a"]}])


def test_unknown_workflow_raises_with_a_suggestion(manager: WorkflowManager):
    manager.create_workflow({"name": "deploy", "steps": [echo("a")]})
    with pytest.raises(WorkflowNotFoundError, match="did you mean 'deploy'"):
        manager.execute_workflow("deplyo")
    assert manager.get_workflow_status("deplyo") is None


# ------------------------------------------------------------------------ runs


def test_execute_workflow_passes_outputs_between_steps(manager: WorkflowManager):
    manager.create_workflow({"name": "chain", "params": {"who": {"default": "world"}}, "steps": [
        echo("hello", "{{ params.who }}"),
        echo("greet", "{{ hello.output }}!", deps=["hello"]),
    ]})
    execution = manager.execute_workflow("chain", who="orchtui")
    assert execution["success"] is True and execution.status == WorkflowStatus.COMPLETED
    assert execution.results == {"hello": "orchtui", "greet": "orchtui!"}
    assert execution.to_dict()["executed_steps"] == 2 and execution.params == {"who": "orchtui"}


def test_a_failed_step_skips_its_dependents_while_an_independent_branch_completes(manager: WorkflowManager):
    execution = run(manager, [
        fail("build"), echo("test", deps=["build"]), echo("package", deps=["test"]),
        echo("docs"), echo("publish_docs", deps=["docs"]),
    ])
    assert execution.status == WorkflowStatus.FAILED and not execution["success"]
    assert execution.step_status == {
        "build": TaskStatus.FAILED, "test": TaskStatus.SKIPPED, "package": TaskStatus.SKIPPED,
        "docs": TaskStatus.COMPLETED, "publish_docs": TaskStatus.COMPLETED,
    }
    assert execution.failed_steps == ["build"]
    assert "step 'build' failed" in execution.error and "build broke" in execution.error


def test_continue_on_failure_lets_dependents_run_and_the_run_complete(manager: WorkflowManager):
    execution = run(manager, [fail("lint", continue_on_failure=True), echo("build", deps=["lint"])])
    assert execution.step_status == {"lint": TaskStatus.FAILED, "build": TaskStatus.COMPLETED}
    assert execution.status == WorkflowStatus.COMPLETED and execution.error == ""
    assert "lint broke" in execution.errors["lint"]


def test_conditions_skip_steps_and_a_skipped_step_does_not_fail_the_run(manager: WorkflowManager):
    manager.create_workflow({"name": "cond", "params": {"env": {"default": "dev"}}, "steps": [
        echo("count", 3),
        echo("big", deps=["count"], conditions={"when": "{{ count.output }} > 5"}),
        echo("small", deps=["count"], conditions={"when": "{{ count.output }} <= 5"}),
        echo("prod_only", conditions={"when": "{{ params.env }} == 'prod'"}),
        echo("after_big", deps=["big"]),
    ]})
    execution = manager.execute_workflow("cond")
    assert execution.step_status["big"] == TaskStatus.SKIPPED
    assert execution.step_status["small"] == TaskStatus.COMPLETED
    assert execution.step_status["prod_only"] == TaskStatus.SKIPPED
    assert execution.step_status["after_big"] == TaskStatus.SKIPPED
    assert execution.status == WorkflowStatus.COMPLETED
    prod = manager.execute_workflow("cond", env="prod")
    assert prod.step_status["prod_only"] == TaskStatus.COMPLETED


def test_unknown_action_fails_the_run_before_anything_runs(manager: WorkflowManager, tmp_path: Path):
    marker = tmp_path / "ran"
    manager.create_workflow("mixed", [
        WorkflowStep(name="touch", module="shell", action="run", parameters={"command": ["touch", str(marker)]}),
        WorkflowStep(name="scan", module="static_analysis", action="analyze_code_quality", dependencies=["touch"]),
    ])
    execution = manager.execute_workflow("mixed")
    assert execution.status == WorkflowStatus.FAILED
    assert execution.step_status == {"touch": TaskStatus.SKIPPED, "scan": TaskStatus.FAILED}
    assert "static_analysis" in execution.errors["scan"] and "cannot run" in execution.error
    assert not marker.exists()


def test_cancel_stops_a_running_step_and_marks_the_run_cancelled(manager: WorkflowManager):
    manager.create_workflow({"name": "slow", "steps": [sleeper("nap"), echo("after", deps=["nap"]), sleeper("other")]})
    handle = manager.start_workflow("slow")
    assert handle.wait(0.05) is None and not handle.done()
    _wait_until(lambda: handle.execution.step_status["nap"] == TaskStatus.RUNNING)
    assert manager.cancel_workflow("slow") is True
    execution = handle.wait(WAIT)
    assert execution is not None and execution.status == WorkflowStatus.CANCELLED
    assert execution.step_status["nap"] == TaskStatus.CANCELLED
    assert execution.step_status["after"] in (TaskStatus.CANCELLED, TaskStatus.SKIPPED)
    assert handle.cancel() is False  # already over
    assert manager.get_workflow_status(handle.run_id)["status"] == "cancelled"


def test_status_reports_progress_counts_during_and_after_a_run(manager: WorkflowManager):
    manager.create_workflow({"name": "prog", "steps": [echo("a"), sleeper("b", deps=["a"]), echo("c", deps=["b"])]})
    assert manager.get_workflow_status("prog")["progress"]["pending_steps"] == 3
    handle = manager.start_workflow("prog")
    _wait_until(lambda: handle.execution.step_status["b"] == TaskStatus.RUNNING)
    status = manager.get_workflow_status("prog")
    assert status["run_id"] == handle.run_id and status["status"] == "running"
    assert status["progress"] == {
        "total_steps": 3, "completed_steps": 1, "failed_steps": 0, "running_steps": 1,
        "skipped_steps": 0, "cancelled_steps": 0, "pending_steps": 1,
    }
    assert status["start_time"] and status["end_time"] is None
    handle.cancel()
    handle.wait(WAIT)
    after = manager.get_workflow_status(handle.run_id)
    assert after["end_time"] and after["progress"]["completed_steps"] == 1


def test_observers_and_events_hear_the_whole_run(manager: WorkflowManager):
    bus = EventBus()
    seen: list[tuple[str, dict[str, Any], str]] = []
    bus.register("*", lambda event, data: seen.append((event, data, threading.current_thread().name)))
    manager.events = bus
    recorder, per_run = Recorder(), Recorder()
    manager.observers.append(recorder)
    manager.create_workflow({"name": "obs", "steps": [echo("a"), echo("b", deps=["a"])]})
    handle = manager.start_workflow("obs", observers=[per_run])
    execution = handle.wait(WAIT)
    assert bus.flush()
    for rec in (recorder, per_run):
        assert rec.started == [handle.run_id] and rec.finished == [execution]
        states = [(t.name, t.status) for t in rec.transitions]
        assert states.index(("a", TaskStatus.COMPLETED)) < states.index(("b", TaskStatus.RUNNING))
    workflow_events = [(e, d) for e, d, _ in seen if e.startswith("workflow_")]
    assert [e for e, _ in workflow_events] == [EventType.WORKFLOW_STARTED, EventType.WORKFLOW_COMPLETED]
    done = workflow_events[1][1]
    assert done["workflow_name"] == "obs" and done["success"] is True and done["run_id"] == handle.run_id
    assert {thread for *_, thread in seen} == {"orchtui-events"}
    bus.close()


def test_a_failing_run_emits_workflow_failed(manager: WorkflowManager):
    bus = EventBus()
    seen: list[dict[str, Any]] = []
    bus.register(EventType.WORKFLOW_FAILED, lambda event, data: seen.append(data))
    manager.events = bus
    run(manager, [fail("x")])
    assert bus.flush()
    assert len(seen) == 1 and seen[0]["success"] is False and seen[0]["failed_steps"] == ["x"]
    bus.close()


def test_step_logs_go_under_runs_dir(manager: WorkflowManager):
    manager.create_workflow({"name": "logs", "steps": [
        {"name": "say", "module": "shell", "action": "run", "parameters": {"command": "echo logged-line"}}]})
    handle = manager.start_workflow("logs")
    execution = handle.wait(WAIT)
    assert execution.success and execution.results["say"] == "logged-line"
    assert handle.log_dir == manager.settings.runs_dir / handle.run_id
    logs = list(handle.log_dir.glob("say*.log"))
    assert logs and "logged-line" in logs[0].read_text()


def test_preset_outputs_are_reused_not_rerun(manager: WorkflowManager, tmp_path: Path):
    marker = tmp_path / "count"
    manager.create_workflow({"name": "resume", "steps": [
        {"name": "first", "module": "shell", "action": "run", "parameters": {"command": f"echo x >> {marker}; echo fresh"}},
        echo("second", "{{ first.output }}", deps=["first"]),
    ]})
    handle = manager.start_workflow("resume", preset_outputs={"first": "kept"}, run_id="run-resume-1")
    execution = handle.wait(WAIT)
    assert execution.success and execution.results == {"first": "kept", "second": "kept"}
    assert not marker.exists()
    with pytest.raises(WorkflowExecutionError, match="already in use"):
        manager.start_workflow("resume", run_id="run-resume-1")
    with pytest.raises(WorkflowExecutionError, match="not valid"):
        manager.start_workflow("resume", run_id="../escape")


def test_everything_preset_or_empty_finishes_at_once(manager: WorkflowManager):
    manager.create_workflow("empty", [])
    assert manager.execute_workflow("empty").status == WorkflowStatus.COMPLETED
    manager.create_workflow({"name": "done", "steps": [echo("a")]})
    handle = manager.start_workflow("done", preset_outputs={"a": 1})
    assert handle.done() and handle.execution.results == {"a": 1}


def test_bad_parameters_raise_before_the_run_starts(manager: WorkflowManager):
    manager.create_workflow({"name": "p", "params": {"count": {"type": "integer", "default": 1}}, "steps": [echo("a")]})
    with pytest.raises(WorkflowValidationError, match="has no parameter 'cuont'"):
        manager.execute_workflow("p", cuont=2)
    with pytest.raises(WorkflowValidationError, match="type integer"):
        manager.start_workflow("p", {"count": "two"})
    assert manager.coerce_cli_params("p", ["count=2"]) == {"count": 2}
    assert manager.get_performance_summary()["total_executions"] == 0


def test_performance_summary_counts_runs(manager: WorkflowManager):
    run(manager, [echo("a")], name="good")
    run(manager, [fail("a")], name="bad")
    manager.execute_workflow("good")
    summary = manager.get_performance_summary()
    assert summary["total_executions"] == 3 and summary["successful"] == 2 and summary["failed"] == 1
    assert summary["workflows"]["good"]["executions"] == 2
    assert summary["workflows"]["bad"]["last_status"] == "failed"
    assert 0.66 < summary["success_rate"] < 0.67


def test_execute_parallel_workflow_returns_task_results(manager: WorkflowManager):
    manager.create_workflow({"name": "par", "steps": [echo("a", "A"), echo("b", "B", deps=["a"])]})
    status = manager.execute_parallel_workflow("par")
    assert status["success"] is True and status["status"] == "completed"
    assert status["results"]["a"]["success"] and status["results"]["b"]["result"] == "B"
    manager.create_workflow({"name": "parfail", "steps": [fail("x")]})
    assert manager.execute_parallel_workflow("parfail")["success"] is False


def test_a_shared_run_resource_gate_rejects_impossible_requirements(tmp_path: Path):
    resources = ResourceManager(detect=False)
    resources.register_resource("gpu", "gpu", {"units": 1})
    orchestrator = TaskOrchestrator(2, resource_manager=resources)
    wm = WorkflowManager(settings=load_settings(tmp_path), orchestrator=orchestrator, autoload=False)
    try:
        wm.create_workflow({"name": "greedy", "steps": [
            {"name": "train", "module": "builtin", "action": "noop", "resources": {"gpu": {"units": 4}}}]})
        execution = wm.execute_workflow("greedy")
        assert execution.status == WorkflowStatus.FAILED
        assert "gpu" in execution.errors["train"]
    finally:
        orchestrator.shutdown()


def _wait_until(predicate: Any, timeout: float = WAIT) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("condition not reached")
        time.sleep(0.01)



def test_shutdown_lets_cancelled_runs_settle_then_leaves_a_shared_orchestrator(tmp_path: Path):
    orchestrator = TaskOrchestrator(2, resource_manager=ResourceManager(detect=False))
    try:
        first = WorkflowManager(tmp_path / "a", orchestrator=orchestrator, settings=load_settings(tmp_path))
        first.create_workflow({"name": "long", "steps": [sleeper("nap")]})
        handle = first.start_workflow("long")
        first.shutdown()
        execution = handle.wait(WAIT)  # the run still hears its last transitions
        assert execution is not None and execution.status == WorkflowStatus.CANCELLED
        with pytest.raises(WorkflowExecutionError, match="shut down"):
            first.start_workflow("long")
        gone = weakref.ref(first)
        del first, handle
        gc.collect()
        assert gone() is None  # the shared orchestrator no longer holds the manager
        second = WorkflowManager(tmp_path / "b", orchestrator=orchestrator, settings=load_settings(tmp_path))
        assert run(second, [echo("a")]).status == WorkflowStatus.COMPLETED
    finally:
        orchestrator.shutdown(wait=True, cancel_running=True)


def test_a_run_whose_log_directory_cannot_be_made_fails_cleanly(manager: WorkflowManager):
    manager.settings.runs_dir.parent.mkdir(parents=True, exist_ok=True)
    manager.settings.runs_dir.write_text("a file where the runs directory should be")
    manager.create_workflow({"name": "logged", "steps": [echo("a")]})
    with pytest.raises(OrchestrationError, match="cannot create the run's log directory"):
        manager.start_workflow("logged")
    # The refused run is over, not left "running" forever for waiters and sessions.
    assert manager.active_runs() == []
    assert manager.get_workflow_status("logged")["status"] == "failed"
