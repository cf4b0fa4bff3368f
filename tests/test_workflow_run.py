"""RunState: applying transitions, the outcome rule, and per-step progress."""

from __future__ import annotations

from core.models import TaskResult, TaskStatus, TaskTransition, Workflow, WorkflowStatus, WorkflowStep
from core.workflow_run import RunHandle, RunState


def _state(*steps: WorkflowStep, preset: dict[str, object] | None = None) -> RunState:
    workflow = Workflow(name="wf", steps=list(steps))
    return RunState("run-1", workflow, {}, session_id=None, observers=(), log_dir=None, preset=preset)


def _t(name: str, status: TaskStatus, at: float = 100.0, **kw: object) -> TaskTransition:
    return TaskTransition(task_id=f"id-{name}", name=name, status=status, at=at, run_id="run-1", **kw)


def test_the_run_ends_when_the_last_step_settles_and_records_outputs():
    state = _state(WorkflowStep(name="a"), WorkflowStep(name="b"))
    assert not state.apply(_t("a", TaskStatus.RUNNING, attempt=1))
    assert not state.apply(_t("a", TaskStatus.COMPLETED, 101.0, attempt=1, result=TaskResult(True, data=7)))
    assert not state.apply(_t("nobody", TaskStatus.COMPLETED))  # not a step of this run
    assert state.apply(_t("b", TaskStatus.SKIPPED, error="skipped: condition false"))
    execution = state.finish()
    assert execution.status == WorkflowStatus.COMPLETED and execution.results == {"a": 7}
    assert execution.errors == {"b": "skipped: condition false"}
    assert not state.apply(_t("a", TaskStatus.FAILED))  # nothing changes after the end
    assert execution.step_status["a"] == TaskStatus.COMPLETED


def test_a_retry_makes_a_failed_step_pending_again():
    state = _state(WorkflowStep(name="a"))
    state.apply(_t("a", TaskStatus.RUNNING, 100.0, attempt=1))
    assert not state.apply(_t("a", TaskStatus.PENDING, 101.0, attempt=1, retry_at=103.0, error="exit 1"))
    (progress,) = state.progress()
    assert progress.status == TaskStatus.PENDING and progress.retry_at == 103.0 and progress.error == "exit 1"
    state.apply(_t("a", TaskStatus.RUNNING, 103.0, attempt=2))
    assert state.apply(_t("a", TaskStatus.COMPLETED, 104.5, attempt=2, result=TaskResult(True)))
    (progress,) = state.progress()
    assert progress.attempt == 2 and progress.started_at == 100.0 and progress.elapsed() == 4.5
    assert progress.error == "" and progress.retry_at is None


def test_outcome_rule():
    def outcome(statuses: dict[str, TaskStatus], *, tolerate: tuple[str, ...] = (), cancel: bool = False):
        state = _state(*(WorkflowStep(name=n, continue_on_failure=n in tolerate) for n in statuses))
        state.cancel_requested = cancel
        for name, status in statuses.items():
            state.apply(_t(name, status, error=f"{name} went wrong" if status == TaskStatus.FAILED else ""))
        return state.outcome()

    ok, fail, skip, gone = TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.CANCELLED
    assert outcome({"a": ok, "b": skip}) == (WorkflowStatus.COMPLETED, "")
    assert outcome({"a": fail, "b": skip}) == (WorkflowStatus.FAILED, "step 'a' failed: a went wrong")
    assert outcome({"a": fail, "b": ok}, tolerate=("a",)) == (WorkflowStatus.COMPLETED, "")
    assert outcome({"a": fail, "b": fail})[1] == "step 'a' failed: a went wrong (and 1 more step)"
    assert outcome({"a": ok, "b": gone})[0] == WorkflowStatus.CANCELLED
    assert outcome({"a": ok, "b": skip}, cancel=True)[0] == WorkflowStatus.CANCELLED
    assert outcome({"a": ok, "b": ok}, cancel=True)[0] == WorkflowStatus.COMPLETED  # cancel came too late


def test_preset_steps_start_completed():
    state = _state(WorkflowStep(name="a"), WorkflowStep(name="b", dependencies=["a"]), preset={"a": "kept"})
    assert state.execution.step_status["a"] == TaskStatus.COMPLETED and state.execution.results == {"a": "kept"}
    assert not state.all_terminal
    assert state.apply(_t("b", TaskStatus.COMPLETED, result=TaskResult(True, data=1)))


def test_handle_reports_and_cancels_through_its_callback():
    state = _state(WorkflowStep(name="a"))
    asked: list[str] = []
    handle = RunHandle(state, lambda s: asked.append(s.run_id) or True)
    assert handle.wait(0) is None and not handle.done() and handle.status == WorkflowStatus.RUNNING
    assert handle.cancel() and asked == ["run-1"]
    state.apply(_t("a", TaskStatus.CANCELLED))
    state.finish()
    state.finished.set()
    assert handle.wait(0).status == WorkflowStatus.CANCELLED and handle.done()
    assert repr(handle) == "RunHandle('run-1', 'wf', cancelled)"
