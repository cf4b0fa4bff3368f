"""Checks a workflow must pass before it runs, beyond what its file format checks.

``structure_problems`` covers what makes a workflow unrunnable anywhere (names, the
dependency graph, conditions, references); ``action_problems`` covers what makes it
unrunnable here (actions not registered in this process, resource requirements no
configured resource can ever meet). The WorkflowManager applies the first when a
workflow is registered and the second when a run starts, because plugins may register
actions after a workflow is defined.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .conditions import condition_problems
from .errors import ValidationProblem, WorkflowValidationError
from .models import Workflow, WorkflowStep
from .templating import referenced_steps
from .text import did_you_mean
from .workflow_dag import DAGTask, WorkflowDAG

if TYPE_CHECKING:
    from .resource_manager import ResourceManager

__all__ = ["parse_steps", "structure_problems", "action_problems", "dag_tasks"]


def parse_steps(steps: Iterable[WorkflowStep | Mapping[str, Any]]) -> list[WorkflowStep]:
    """Return the steps as :class:`WorkflowStep` records (dicts use the record's field names).

    Raises:
        WorkflowValidationError: a dict has an unknown field or a value of the wrong kind
            (every bad step at once).
    """
    result: list[WorkflowStep] = []
    problems: list[ValidationProblem] = []
    for index, step in enumerate(steps):
        if isinstance(step, WorkflowStep):
            result.append(step)
            continue
        try:
            result.append(WorkflowStep.from_dict(dict(step)))
        except (ValueError, TypeError) as exc:
            problems.append(ValidationProblem(f"step {index} is not a valid step: {exc}", path=f"steps[{index}]"))
    if problems:
        raise WorkflowValidationError(problems)
    return result


def structure_problems(workflow: Workflow) -> list[ValidationProblem]:
    """Return what makes ``workflow`` unrunnable regardless of installed actions.

    Checks the name, the dependency graph (duplicates, self and unknown dependencies,
    cycles), each step's conditions, and that every ``{{ step.output }}`` reference
    names an upstream step. Returns an empty list for a sound workflow.
    """
    where = workflow.source_path
    problems: list[ValidationProblem] = []
    if not isinstance(workflow.name, str) or not workflow.name.strip():
        problems.append(ValidationProblem("a workflow needs a non-empty name", file=where, path="name"))
    dag = WorkflowDAG.from_workflow(workflow)
    problems.extend(ValidationProblem(text, file=where, path="steps") for text in dag.problems())
    for index, step in enumerate(workflow.steps):
        at = f"steps[{index}]"
        for text in condition_problems(step.conditions) if step.conditions else ():
            problems.append(ValidationProblem(f"step '{step.name}': {text}", file=where, path=f"{at}.conditions"))
        refs = referenced_steps(step.parameters) - {"params"}
        if not refs:
            continue
        upstream = dag.upstream(step.name) if step.name in dag else set(step.dependencies)
        for ref in sorted(refs - upstream):
            if ref in dag:
                hint = f"add '{ref}' to its dependencies"
            else:
                hint = did_you_mean(ref, dag, otherwise="no step has that name")
            problems.append(ValidationProblem(
                f"step '{step.name}' refers to the output of '{ref}', which is not upstream of it",
                file=where, path=f"{at}.parameters", hint=hint,
            ))
    return problems


def action_problems(workflow: Workflow, resource_manager: ResourceManager | None = None) -> dict[str, str]:
    """Return ``{step: problem}`` for steps whose action or resources cannot work here.

    Unknown module/action or a missing required parameter (from the action registry,
    with its did-you-mean), and, given a resource manager, resource requirements that
    no configured resource could ever meet.
    """
    from .actions import registry

    found: dict[str, str] = {}
    for step in workflow.steps:
        problem = registry.problem_for(step.module, step.action, step.parameters)
        if problem is None and step.resources and resource_manager is not None:
            problem = resource_manager.requirement_problem(step.resources)
        if problem:
            found[step.name] = f"step '{step.name}': {problem}"
    return found


def dag_tasks(tasks: Iterable[Any]) -> list[DAGTask]:
    """Return DAG nodes for steps, Tasks, DAGTasks or ``{"name", "dependencies"}`` dicts.

    A dict keeps the keys it has beyond the graph (``module``, ``action`` ...) as the
    node's payload, so spec-style task dicts can be passed as they are.
    """
    nodes = []
    for task in tasks:
        if isinstance(task, DAGTask):
            nodes.append(task)
        elif isinstance(task, Mapping):
            nodes.append(DAGTask(str(task.get("name", "")), list(task.get("dependencies") or ()),
                                 timeout=task.get("timeout"), payload=dict(task)))
        else:
            nodes.append(DAGTask(task.name, list(task.dependencies), timeout=getattr(task, "timeout", None),
                                 payload=task))
    return nodes
