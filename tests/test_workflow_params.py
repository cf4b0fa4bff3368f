"""Workflow parameters: defaults, unknown names, required values, types, CLI coercion."""

from __future__ import annotations

import pytest

from core.errors import WorkflowValidationError
from core.models import Workflow, WorkflowParam, WorkflowStep
from core.workflow_params import coerce_cli_params, resolve_params


def _workflow(**params: WorkflowParam) -> Workflow:
    return Workflow(name="wf", params=params, steps=[WorkflowStep(name="a")])


def typed() -> Workflow:
    return _workflow(
        name=WorkflowParam("name", type="string", default="x"),
        count=WorkflowParam("count", type="integer", default=1),
        ratio=WorkflowParam("ratio", type="number"),
        verbose=WorkflowParam("verbose", type="boolean", default=False),
        items=WorkflowParam("items", type="list"),
        extra=WorkflowParam("extra", type="object"),
        anything=WorkflowParam("anything"),
    )


def test_defaults_are_merged_under_given_values():
    assert resolve_params(typed(), {"count": 3}) == {
        "name": "x", "count": 3, "ratio": None, "verbose": False, "items": None, "extra": None, "anything": None,
    }


def test_unknown_parameter_is_an_error_with_a_did_you_mean():
    with pytest.raises(WorkflowValidationError) as info:
        resolve_params(typed(), {"cuont": 3})
    problem = info.value.problems[0]
    assert "has no parameter 'cuont'" in problem.message
    assert problem.hint == "did you mean 'count'?"


def test_a_workflow_without_declared_params_accepts_any():
    assert resolve_params(_workflow(), {"code_path": "./src"}) == {"code_path": "./src"}


def test_missing_required_parameter_is_an_error():
    wf = _workflow(target=WorkflowParam("target", required=True, description="where to deploy"))
    with pytest.raises(WorkflowValidationError, match="needs parameter 'target'") as info:
        resolve_params(wf, {})
    assert "-p target=VALUE" in info.value.problems[0].hint


def test_wrong_type_and_bad_choice_are_reported_together():
    wf = _workflow(
        count=WorkflowParam("count", type="integer"),
        env=WorkflowParam("env", type="string", choices=["dev", "prod"]),
    )
    with pytest.raises(WorkflowValidationError) as info:
        resolve_params(wf, {"count": "3", "env": "test"})
    messages = [p.message for p in info.value.problems]
    assert len(messages) == 2
    assert "must be of type integer" in messages[0]
    assert "not one of its choices" in messages[1]


def test_booleans_are_not_integers():
    with pytest.raises(WorkflowValidationError, match="type integer"):
        resolve_params(typed(), {"count": True})


@pytest.mark.parametrize(
    ("pair", "expected"),
    [
        ("name=007", ("name", "007")),
        ("count=007", ("count", 7)),
        ("count=0x10", ("count", 16)),
        ("ratio=2", ("ratio", 2.0)),
        ("verbose=yes", ("verbose", True)),
        ("verbose=OFF", ("verbose", False)),
        ("items=[a, b]", ("items", ["a", "b"])),
        ("extra={k: 1}", ("extra", {"k": 1})),
        ("anything=true", ("anything", True)),
        ("anything=3.5", ("anything", 3.5)),
        ("anything=a=b", ("anything", "a=b")),
        ("name=", ("name", "")),
    ],
)
def test_cli_values_take_the_declared_type(pair: str, expected: tuple[str, object]):
    assert coerce_cli_params(typed(), [pair]) == dict([expected])


def test_cli_problems_are_all_reported():
    with pytest.raises(WorkflowValidationError) as info:
        coerce_cli_params(typed(), ["count=many", "verbose=maybe", "items=a", "nope", "conut=1"])
    messages = [p.message for p in info.value.problems]
    assert len(messages) == 5
    assert "must be an integer" in messages[0]
    assert "must be true or false" in messages[1]
    assert "must be a list" in messages[2]
    assert "not of the form key=value" in messages[3]
    assert "has no parameter 'conut'" in messages[4]
    assert info.value.problems[4].hint == "did you mean 'count'?"


def test_cli_undeclared_values_are_read_as_yaml_scalars():
    assert coerce_cli_params(_workflow(), ["n=3", "flag=false", "s=hello world", "bad=[unclosed"]) == {
        "n": 3, "flag": False, "s": "hello world", "bad": "[unclosed",
    }


@pytest.mark.parametrize("raw", ["inf", "-inf", "nan", "1e999"])
def test_cli_numbers_must_be_finite(raw: str):
    # An infinite "seconds" used to reach builtin.sleep and fail the step with an OverflowError.
    with pytest.raises(WorkflowValidationError, match="must be a finite number"):
        coerce_cli_params(typed(), [f"ratio={raw}"])


def test_cli_pair_problem_has_no_made_up_location():
    with pytest.raises(WorkflowValidationError) as info:
        coerce_cli_params(typed(), ["nope"])
    assert info.value.message == "parameter 'nope' is not of the form key=value; write -p name=value"
