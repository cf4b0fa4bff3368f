"""What a resume runs: the stored definition, or the file's, and what changed between them."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import StoreError
from core.models import Workflow, WorkflowParam, WorkflowStatus, WorkflowStep
from core.resume_plan import definition_changes, kept_steps_using, params_for, plan_rerun_from
from core.store import Store
from core.store_records import RunRecord


def workflow(*steps: WorkflowStep, **params: WorkflowParam) -> Workflow:
    return Workflow(name="w", steps=list(steps), params=dict(params))


def step(name: str, command: str = "true", deps: list[str] | None = None) -> WorkflowStep:
    return WorkflowStep(name=name, module="shell", action="run", parameters={"command": command},
                        dependencies=deps or [])


def test_an_unchanged_definition_has_no_changes() -> None:
    assert definition_changes(workflow(step("a"), step("b", deps=["a"])),
                              workflow(step("a"), step("b", deps=["a"]))) == []


def test_added_removed_and_changed_steps_are_named() -> None:
    stored = workflow(step("a"), step("b", "exit 1"), step("gone"))
    current = workflow(step("a"), step("b", "echo fixed"), step("new"))
    assert definition_changes(stored, current) == ["step 'new' added", "step 'gone' removed", "step 'b' changed"]


def test_a_changed_dependency_is_a_changed_step() -> None:
    assert definition_changes(workflow(step("a"), step("b")),
                              workflow(step("a"), step("b", deps=["a"]))) == ["step 'b' changed"]


def test_changed_parameters_are_noted() -> None:
    assert definition_changes(workflow(step("a"), n=WorkflowParam(name="n", default=1)),
                              workflow(step("a"), n=WorkflowParam(name="n", default=2))) == ["parameters changed"]


def test_where_the_file_was_read_from_is_no_change() -> None:
    stored, current = workflow(step("a")), workflow(step("a"))
    current.source_path = "/elsewhere/w.yaml"
    assert definition_changes(stored, current) == []


def run_of(stored: Workflow, params: dict[str, object]) -> RunRecord:
    return RunRecord(run_id="r1", workflow=stored.name, status=WorkflowStatus.FAILED, params=params, definition=stored)


def param(name: str, default: object) -> WorkflowParam:
    return WorkflowParam(name=name, default=default)


def test_the_stored_definition_resumes_with_the_stored_parameters() -> None:
    stored = workflow(step("a"), nap=param("nap", 0.1))
    run = run_of(stored, {"nap": 0.1})
    assert params_for(run, stored) == ({"nap": 0.1}, [])


def test_a_reloaded_definition_gets_its_new_defaults_for_values_nobody_gave() -> None:
    stored = workflow(step("a"), nap=param("nap", 0.1), who=param("who", "x"))
    current = workflow(step("a"), nap=param("nap", 9), who=param("who", "x"))
    assert params_for(run_of(stored, {"nap": 0.1, "who": "me"}), current) == ({"who": "me"}, [])


def test_a_parameter_the_reloaded_definition_dropped_is_left_out_and_named() -> None:
    stored = workflow(step("a"), nap=param("nap", 0.1))
    current = workflow(step("a"), delay=param("delay", 1))
    assert params_for(run_of(stored, {"nap": 5}), current) == ({}, ["nap"])


def test_kept_steps_using_a_changed_parameter_are_named_in_workflow_order() -> None:
    flow = workflow(step("b", "echo {{ params.dir }}"), step("a", "echo {{ params.other }}"),
                    WorkflowStep(name="gated", conditions={"if": "'{{ params.dir }}' == 'x'"}),
                    step("runs", "echo {{ params.dir }}"))
    assert kept_steps_using(flow, ["a", "b", "gated"], ["dir"]) == ["b", "gated"]


def test_no_changed_parameter_names_no_kept_step() -> None:
    assert kept_steps_using(workflow(step("a", "echo {{ params.dir }}")), ["a"], []) == []


def test_rerunning_from_a_step_the_reloaded_file_dropped_blames_the_file_not_the_run(tmp_path: Path) -> None:
    with Store(tmp_path / "o.db") as store:
        store.create_run("run-1", workflow(step("a"), step("b", deps=["a"])))
        store.finish_run("run-1", WorkflowStatus.FAILED)
        store.flush()
        reloaded = Workflow(name="w", steps=[step("a")], source_path="/work/w.yaml")
        with pytest.raises(StoreError, match=r"the reloaded workflow \(/work/w.yaml\) has no step 'b', "
                                             r"though run run-1 had it.*rerun without --reload"):
            plan_rerun_from(store, "run-1", "b", definition=reloaded)
        with pytest.raises(StoreError, match="run run-1 has no step 'c'"):
            plan_rerun_from(store, "run-1", "c", definition=reloaded)
