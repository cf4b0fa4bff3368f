"""What a resume runs: the stored definition, or the file's, and what changed between them."""

from __future__ import annotations

from core.models import Workflow, WorkflowParam, WorkflowStep
from core.resume_plan import definition_changes


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
