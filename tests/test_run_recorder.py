"""Recording real workflow runs into the store, and planning resumes (core/run_recorder.py).

Runs go through the real WorkflowManager and TaskOrchestrator; steps are real shell
commands that append to a trace file, so a test can count how often each step ran.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.config import load_settings
from core.errors import OrchestrationError, StoreError
from core.models import TaskStatus, Workflow, WorkflowExecution, WorkflowStatus, WorkflowStep
from core.resource_manager import ResourceManager
from core.resume_plan import plan_rerun_from, plan_resume
from core.run_recorder import StoreRecorder
from core.store import Store
from core.task_orchestrator import TaskOrchestrator
from core.workflow_manager import WorkflowManager


class Harness:
    """A store, a recorder and a workflow manager wired as ``orchtui run`` wires them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.trace = root / "trace.txt"
        self.settings = load_settings(cwd=root)
        self.store = Store.open(self.settings)
        self.resources = ResourceManager(detect=False)
        self.resources.register_resource("slots", "custom", {"units": 2})
        self.recorder = StoreRecorder(self.store, resource_manager=self.resources)
        self.orchestrator = TaskOrchestrator(2, resource_manager=self.resources)
        self.manager = WorkflowManager(settings=self.settings, orchestrator=self.orchestrator,
                                       resource_manager=self.resources, observers=[self.recorder], autoload=False)

    def step(self, name: str, deps: list[str] | None = None, *, guard: str | None = None, **kw: object) -> WorkflowStep:
        """A shell step that fails while file ``guard`` is missing, else appends its name to the trace."""
        command = f"echo {name} >> {shlex.quote(str(self.trace))} && echo out-{name}"
        if guard is not None:
            command = f"test -e {shlex.quote(str(self.root / guard))} && " + command
        return WorkflowStep(name=name, module="shell", action="run", parameters={"command": command},
                            dependencies=deps or [], **kw)  # type: ignore[arg-type]

    def run(self, workflow: Workflow, **kw: object) -> WorkflowExecution:
        execution = self.manager.start_workflow(workflow, {}, **kw).wait(60)  # type: ignore[arg-type]
        assert execution is not None, "the run did not end"
        self.store.flush()
        return execution

    def resume(self, run_id: str, from_step: str | None = None) -> WorkflowExecution:
        plan = plan_resume(self.store, run_id) if from_step is None else plan_rerun_from(self.store, run_id, from_step)
        workflow, params, preset = plan
        new_run = f"{run_id}-r{len(self.store.resumed_by(run_id)) + 1}"
        self.recorder.expect_resume(new_run, run_id, preset)
        return self.run(workflow, run_id=new_run, preset_outputs=preset)

    def ran(self) -> list[str]:
        return self.trace.read_text().split() if self.trace.exists() else []

    def close(self) -> None:
        self.orchestrator.shutdown(wait=True)
        self.store.close()


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    harness.close()


def diamond(h: Harness, guard_c: str | None = None) -> Workflow:
    """a -> (b, c) -> d, with c failing while ``guard_c`` is missing."""
    return Workflow(name="diamond", steps=[
        h.step("a"), h.step("b", ["a"]), h.step("c", ["a"], guard=guard_c), h.step("d", ["b", "c"]),
    ])


def test_a_run_is_recorded_with_outputs_and_log_paths(h: Harness) -> None:
    execution = h.run(diamond(h), run_id="run-ok")
    assert execution.success
    run = h.store.get_run("run-ok")
    assert run is not None and run.status is WorkflowStatus.COMPLETED and run.finished_at is not None
    assert {name: s.status for name, s in run.steps.items()} == dict.fromkeys("abcd", TaskStatus.COMPLETED)
    assert h.store.committed_outputs("run-ok") == {n: f"out-{n}" for n in "abcd"}
    log = run.steps["d"].log_path
    assert log is not None and Path(log) == h.settings.runs_dir / "run-ok" / "d.1.log"
    assert [v.run_id for v in h.store.changes_since(0)[1]] == ["run-ok"]


def test_history_holds_each_steps_running_and_end_but_not_ready(h: Harness) -> None:
    assert h.run(diamond(h), run_id="run-h").success
    history = sorted(((e.step, e.status.value) for e in h.store.step_history("run-h")), key=lambda e: e[0])
    assert history == [(step, status) for step in "abcd" for status in ("running", "completed")]


def test_a_failed_run_records_failed_and_skipped_steps(h: Harness) -> None:
    execution = h.run(diamond(h, guard_c="missing"), run_id="run-bad")
    assert execution.status is WorkflowStatus.FAILED
    run = h.store.get_run("run-bad")
    assert run is not None and run.status is WorkflowStatus.FAILED and "c" in run.error
    statuses = {name: s.status for name, s in run.steps.items()}
    assert statuses == {"a": TaskStatus.COMPLETED, "b": TaskStatus.COMPLETED, "c": TaskStatus.FAILED,
                        "d": TaskStatus.SKIPPED}
    assert run.steps["c"].attempts[0].exit_code == 1
    assert run.steps["d"].attempts == []


def test_retries_are_recorded_as_attempts(h: Harness) -> None:
    flaky = WorkflowStep(
        name="flaky", module="shell", action="run", max_retries=2, retry_delay=0.01, retry_jitter=0.0,
        parameters={"command": f"test -e {h.root}/seen && echo fine || (touch {h.root}/seen; exit 3)"},
    )
    assert h.run(Workflow(name="retry", steps=[flaky]), run_id="run-retry").success
    attempts = h.store.get_attempts("run-retry", "flaky")
    assert [(a.attempt, a.status) for a in attempts] == [(1, TaskStatus.FAILED), (2, TaskStatus.COMPLETED)]
    assert attempts[0].exit_code == 3 and attempts[1].output == "fine"
    assert [Path(a.log_path or "").name for a in attempts] == ["flaky.1.log", "flaky.2.log"]


def test_resume_reruns_only_what_did_not_complete(h: Harness) -> None:
    h.run(diamond(h, guard_c="fixed"), run_id="run-1")
    assert sorted(h.ran()) == ["a", "b"]
    workflow, params, preset = plan_resume(h.store, "run-1")
    assert preset == {"a": "out-a", "b": "out-b"} and workflow.name == "diamond" and params == {}
    (h.root / "fixed").touch()
    execution = h.resume("run-1")
    assert execution.success
    assert sorted(h.ran()) == ["a", "b", "c", "d"]  # a and b did not run again
    resumed = h.store.get_run("run-1-r1")
    assert resumed is not None and resumed.parent_run_id == "run-1"
    assert resumed.steps["a"].reused_from == "run-1" and resumed.steps["a"].attempts == []
    assert h.store.committed_outputs("run-1-r1") == {n: f"out-{n}" for n in "abcd"}
    with pytest.raises(StoreError, match="already resumed as run-1-r1"):
        plan_resume(h.store, "run-1")
    with pytest.raises(StoreError, match="completed: nothing to resume"):
        plan_resume(h.store, "run-1-r1")


def test_rerun_from_a_step_reruns_it_and_its_downstream(h: Harness) -> None:
    h.run(diamond(h), run_id="run-1")
    workflow, _, preset = plan_rerun_from(h.store, "run-1", "c")
    assert sorted(preset) == ["a", "b"]
    assert h.resume("run-1", from_step="c").success
    assert sorted(h.ran()) == ["a", "b", "c", "c", "d", "d"]
    with pytest.raises(StoreError, match="no step 'cc'; did you mean 'c'"):
        plan_rerun_from(h.store, "run-1-r1", "cc")


def test_resume_refuses_unknown_and_live_runs(h: Harness) -> None:
    with pytest.raises(StoreError, match="no run 'nope'"):
        plan_resume(h.store, "nope")
    h.store.create_run("run-live", diamond(h))  # owned by this (live) process
    h.store.flush()
    with pytest.raises(StoreError, match="still running"):
        plan_resume(h.store, "run-live")


def test_resource_allocations_are_recorded_and_released(h: Harness) -> None:
    step = h.step("held", resources={"slots": {"units": 1}})
    sleeper = WorkflowStep(name="wait", module="builtin", action="sleep", parameters={"seconds": 30},
                           resources={"slots": {"units": 1}})
    handle = h.manager.start_workflow(Workflow(name="res", steps=[step, sleeper]), {}, run_id="run-res")
    for _ in range(600):  # until the sleeper's grant is committed (the other step's may be too)
        h.store.flush()
        if h.store.open_allocations("run-res"):
            break
        handle.wait(0.05)
    assert h.store.open_allocations("run-res"), "the allocation was never recorded"
    assert all(a.resource_id == "slots" for a in h.store.open_allocations("run-res"))
    handle.cancel()
    assert handle.wait(60) is not None
    h.store.flush()
    assert h.store.open_allocations("run-res") == []
    assert h.store.run_status("run-res") is WorkflowStatus.CANCELLED


def test_a_refused_run_settles_its_steps(h: Harness) -> None:
    bad = Workflow(name="bad", steps=[WorkflowStep(name="x", module="nosuch", action="thing"),
                                      WorkflowStep(name="y", dependencies=["x"])])
    assert h.run(bad, run_id="run-refused").status is WorkflowStatus.FAILED
    run = h.store.get_run("run-refused")
    assert run is not None and run.status is WorkflowStatus.FAILED
    assert run.steps["x"].status is TaskStatus.FAILED and "nosuch" in run.steps["x"].error
    assert run.steps["y"].status is TaskStatus.SKIPPED


def test_start_run_records_the_run_before_it_starts_and_once(h: Harness) -> None:
    handle = h.recorder.start_run(h.manager, Workflow(name="one", steps=[h.step("a")]), {}, run_id="run-chosen")
    assert h.store.get_run("run-chosen") is not None  # no flush: written before start_run returned
    assert handle.wait(60) is not None
    h.store.flush()  # run_started wrote nothing more: a second insert of the run would fail here
    run = h.store.get_run("run-chosen")
    assert run is not None and run.status is WorkflowStatus.COMPLETED and h.ran() == ["a"]


def test_start_run_refuses_a_taken_id_before_anything_runs(h: Harness) -> None:
    h.run(Workflow(name="first", steps=[h.step("a")]), run_id="run-chosen")
    with pytest.raises(StoreError, match="is taken by a stored run"):
        h.recorder.start_run(h.manager, Workflow(name="second", steps=[h.step("b")]), {}, run_id="run-chosen")
    assert h.ran() == ["a"]
    run = h.store.get_run("run-chosen")
    assert run is not None and run.workflow == "first"


def test_a_start_refused_after_the_claim_is_recorded_as_the_runs_failure(h: Harness) -> None:
    broken = Workflow(name="broken", steps=[h.step("a", ["nowhere"])])
    with pytest.raises(OrchestrationError, match="nowhere"):
        h.recorder.start_run(h.manager, broken, {}, run_id="run-broken")
    h.store.flush()
    run = h.store.get_run("run-broken")
    assert run is not None and run.status is WorkflowStatus.FAILED and "nowhere" in run.error
    assert h.ran() == []
