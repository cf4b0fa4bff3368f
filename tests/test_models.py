"""Records round-trip losslessly through JSON and YAML; enums parse leniently."""

from __future__ import annotations

import json
import random

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from core.models import (
    OrchestrationMode,
    OrchestrationSession,
    Project,
    ProjectStatus,
    ProjectType,
    Resource,
    ResourceAllocation,
    ResourceLimits,
    ResourceType,
    RetryPolicy,
    Task,
    TaskPriority,
    TaskResult,
    TaskStatus,
    Workflow,
    WorkflowExecution,
    WorkflowParam,
    WorkflowStatus,
    WorkflowStep,
)


def _json_trip(record):
    return type(record).from_dict(json.loads(json.dumps(record.to_dict())))


def _yaml_trip(record):
    return type(record).from_dict(yaml.safe_load(yaml.safe_dump(record.to_dict())))


def _sample_workflow() -> Workflow:
    return Workflow(
        name="etl",
        description="extract, transform, load",
        params={"rows": WorkflowParam("rows", 10, "integer", "how many", choices=[10, 20])},
        steps=[
            WorkflowStep("extract", "shell", "run", {"command": ["echo", "hi"]}, priority=TaskPriority.HIGH),
            WorkflowStep(
                "load",
                dependencies=["extract"],
                resources={"memory": {"gb": 2, "enforce": True}},
                retry_on_exit_codes=[75],
                conditions={"when": "{{ params.rows }} > 5"},
            ),
        ],
        status=WorkflowStatus.READY,
        tags=["etl"],
    )


RECORDS = [
    _sample_workflow(),
    Task("t", priority=TaskPriority.LOW, result=TaskResult(True, data={"k": [1, 2]}, exit_code=0)),
    Resource("gpu_1", "GPU", ResourceType.GPU, capacity={"units": 1.0}, limits=ResourceLimits(max_concurrent_users=1)),
    ResourceAllocation("a1", "cpu", "task-1", {"cores": 2.0}),
    Project("p", type=ProjectType.ML_MODEL, status=ProjectStatus.ACTIVE, milestones={"m": {"score": 8.5}}),
    WorkflowExecution("run-1", "etl", WorkflowStatus.FAILED, step_status={"a": TaskStatus.FAILED}, results={"a": None}),
    OrchestrationSession(mode=OrchestrationMode.SEQUENTIAL, max_parallel_tasks=1),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_record_round_trips_through_json(record):
    assert _json_trip(record) == record


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_record_round_trips_through_yaml(record):
    assert _yaml_trip(record) == record


def test_enums_serialise_as_lowercase_strings():
    data = _sample_workflow().to_dict()
    assert data["status"] == "ready"
    assert data["steps"][0]["priority"] == "high"


@pytest.mark.parametrize("text", ["HIGH", "high", "High", " high "])
def test_priority_accepts_names_case_insensitively(text):
    assert TaskPriority(text) is TaskPriority.HIGH


def test_priority_orders_critical_first():
    assert sorted([TaskPriority.BACKGROUND, TaskPriority.CRITICAL, TaskPriority.NORMAL]) == [
        TaskPriority.CRITICAL,
        TaskPriority.NORMAL,
        TaskPriority.BACKGROUND,
    ]


def test_status_enums_accept_member_names():
    assert TaskStatus("COMPLETED") is TaskStatus.COMPLETED
    assert OrchestrationMode("Resource_Aware") is OrchestrationMode.RESOURCE_AWARE


def test_unknown_enum_value_raises_value_error():
    with pytest.raises(ValueError):
        TaskStatus("finished")


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match="no field"):
        Task.from_dict({"name": "t", "colour": "red"})


def test_workflow_execution_exposes_spec_keys():
    execution = WorkflowExecution(
        "r", "w", WorkflowStatus.COMPLETED, session_id="s", step_status={"a": TaskStatus.COMPLETED, "b": TaskStatus.SKIPPED}
    )
    data = execution.to_dict()
    for key in ("success", "session_id", "executed_steps", "failed_steps", "results", "execution_time", "error"):
        assert key in data
    assert execution["success"] is True
    assert data["executed_steps"] == 1
    assert data["skipped_steps"] == ["b"]


def test_terminal_statuses():
    assert TaskStatus.SKIPPED.is_terminal
    assert not TaskStatus.READY.is_terminal
    assert WorkflowStatus.INTERRUPTED.is_terminal


def test_task_from_step_copies_retry_and_resources():
    step = _sample_workflow().steps[1]
    task = Task.from_step(step, run_id="run-1")
    assert task.run_id == "run-1"
    assert task.resources == step.resources and task.resources is not step.resources
    assert task.retry_policy == step.retry_policy


@given(
    attempt=st.integers(min_value=1, max_value=101),
    delay=st.floats(min_value=0, max_value=100),
    backoff=st.floats(min_value=1, max_value=1e308),  # a backoff whose powers pass any float once hung the run
    max_delay=st.floats(min_value=0, max_value=1000),
    jitter=st.floats(min_value=0, max_value=1),
)
def test_retry_delay_never_exceeds_max_delay(attempt, delay, backoff, max_delay, jitter):
    policy = RetryPolicy(5, delay, backoff, max_delay, jitter)
    assert 0.0 <= policy.delay_for(attempt, random.Random(attempt)) <= max_delay


def test_retry_delay_grows_exponentially_without_jitter():
    policy = RetryPolicy(5, delay=1.0, backoff=2.0, max_delay=100.0, jitter=0.0)
    assert [policy.delay_for(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]


def test_retry_on_exit_codes_limits_retries():
    policy = RetryPolicy(3, retry_on_exit_codes=[75])
    assert policy.should_retry(1, 75)
    assert not policy.should_retry(1, 1)
    assert not policy.should_retry(4, 75)


def test_record_data_problems_name_each_field_that_does_not_fit_and_what_it_must_be() -> None:
    from core.models import WorkflowExecution, record_data_problems

    data = {"run_id": 7, "workflow_name": "w", "started_at": None, "step_status": {"a": "bogus"}, "colour": "red"}
    assert record_data_problems(WorkflowExecution, data) == [
        ("run_id", "must be a string, not 7 (quote it to make it a string)"),
        ("step_status", "entry 'a' must be one of " + ", ".join(s.value for s in TaskStatus) + ", not 'bogus'"),
        ("colour", "is not a field of a workflow execution"),
    ]
    assert record_data_problems(WorkflowExecution, {"run_id": "r", "workflow_name": "w", "started_at": 1}) == []
