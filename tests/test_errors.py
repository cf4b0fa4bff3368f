"""Errors carry one sentence plus the spec-002 error dict."""

from __future__ import annotations

from core.errors import (
    CycleDetectedError,
    DAGValidationError,
    OrchestrationError,
    ResourceAllocationError,
    ValidationProblem,
    WorkflowValidationError,
    error_dict,
)

SPEC_KEYS = {"success", "error", "error_type", "error_code", "details", "suggestions"}


def test_error_dict_has_the_spec_keys():
    data = error_dict(ResourceAllocationError("no cores left", suggestions=["lower cores"]))
    assert set(data) == SPEC_KEYS
    assert data["success"] is False
    assert data["error_type"] == "ResourceAllocationError"
    assert data["error_code"] == "RESOURCE_ALLOCATION_ERROR"
    assert data["suggestions"] == ["lower cores"]


def test_error_dict_of_foreign_exception_is_marked_internal():
    data = error_dict(RuntimeError("boom"))
    assert data["error_code"] == "INTERNAL_ERROR"
    assert data["error"] == "boom"


def test_cycle_error_is_a_dag_error_showing_the_path():
    exc = CycleDetectedError(["a", "b", "c", "a"])
    assert isinstance(exc, DAGValidationError) and isinstance(exc, OrchestrationError)
    assert "a -> b -> c -> a" in str(exc)
    assert exc.details["cycle"] == ["a", "b", "c", "a"]


def test_validation_problem_formats_file_line_column():
    problem = ValidationProblem("unknown key 'dependecies'", "flow.yaml", 4, 7, "steps[0]", "did you mean 'dependencies'?")
    assert str(problem) == "flow.yaml:4:7: unknown key 'dependecies' (at steps[0]); did you mean 'dependencies'?"


def test_validation_error_summarises_all_problems():
    exc = WorkflowValidationError([ValidationProblem("first"), ValidationProblem("second"), ValidationProblem("third")])
    assert "first" in exc.message and "2 more problems" in exc.message
    assert len(exc.to_error_dict()["details"]["problems"]) == 3


def test_validation_problem_without_any_location_is_just_the_message():
    assert str(ValidationProblem("parameter 'x' is bad", hint="write x=1")) == "parameter 'x' is bad; write x=1"
    assert str(ValidationProblem("bad", line=3, column=1)) == "<string>:3:1: bad"
