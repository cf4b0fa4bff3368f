"""Step conditions: a whitelisted expression language, never ``eval``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.conditions import ConditionError, condition_problems, evaluate_conditions
from core.models import TaskStatus
from core.templating import UnresolvedReferenceError

OUTPUTS: dict[str, Any] = {"test": {"passed": 10, "failed": 0, "tags": ["fast", "unit"]}, "check": "ok", "n": 7,
                           "printed": "12\n", "ratio": "0.5", "grouped": "1_000"}
PARAMS: dict[str, Any] = {"env": "prod", "threshold": 5}
STATUSES: dict[str, Any] = {"test": TaskStatus.COMPLETED, "lint": "failed"}


def when(expression: Any) -> tuple[bool, str]:
    return evaluate_conditions({"when": expression}, params=PARAMS, outputs=OUTPUTS, statuses=STATUSES, step_name="deploy")


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("{{ test.output.failed }} == 0", True),
        ("{{ test.output.passed }} > {{ params.threshold }}", True),
        ("{{ test.output.passed }} <= 3", False),
        ("{{ params.env }} == 'prod' and {{ check.output }} == 'ok'", True),
        ("{{ params.env }} == 'dev' or {{ n.output }} != 7", False),
        ("not {{ test.output.failed }}", True),
        ("{{ params.env }} in ['prod', 'staging']", True),
        ("'slow' not in {{ test.output.tags }}", True),
        ("{{ n.output }} * 2 + 1 == 15", True),
        ("{{ n.output }} % 2 == 1 and {{ n.output }} // 2 == 3 and -{{ n.output }} < 0", True),
        ("{{ n.output }} / 2 == 3.5", True),
        ("1 < {{ n.output }} < 10", True),
        ("{{ test.status }} == 'completed' and ${lint.status} == 'failed'", True),
        ("${test.output.failed} == 0", True),
        ("true", True),
        ("False", False),
        ("{{ check.output }} == null", False),
        (True, True),
        (False, False),
    ],
)
def test_expressions_evaluate(expression: Any, expected: bool) -> None:
    assert when(expression)[0] is expected


def test_false_condition_reason_quotes_it() -> None:
    assert when("{{ n.output }} > 100") == (False, "condition '{{ n.output }} > 100' is false")
    assert when("{{ n.output }} > 1") == (True, "")


def test_no_conditions_means_run() -> None:
    assert evaluate_conditions({}, params={}, outputs={}, statuses={}) == (True, "")
    assert evaluate_conditions(None, params={}, outputs={}, statuses={}) == (True, "")


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("__import__('os').system('touch pwned')", "function calls are not allowed"),
        ("open('x')", "function calls are not allowed"),
        ("{{ check.output }}.upper() == 'OK'", "function calls are not allowed"),
        ("().__class__.__bases__", "attribute access is not allowed"),
        ("{{ test.output }}['passed'] > 1", "subscripts are not allowed"),
        ("(lambda: 1)", "lambdas are not allowed"),
        ("[x for x in [1, 2]]", "comprehensions are not allowed"),
        ("9 ** 9 ** 9", "'Pow' is not allowed"),
        ("1 if true else 2", "conditional expressions are not allowed"),
        ("os", "unknown name 'os'"),
        ("__orchtui_ref_0__ == 1", "unknown name '__orchtui_ref_0__'"),
        ("{{ n.output }} is None", "only == != < <= > >= in and not in"),
        ("1 <<", "not a valid expression"),
        ("~1", "bitwise operators are not allowed"),
        ("{'a': 1}", "'Dict' is not allowed"),
        ("(y := 1)", "assignments are not allowed"),
    ],
)
def test_unsafe_or_unknown_constructs_are_rejected(expression: str, reason: str) -> None:
    problems = condition_problems({"when": expression})
    assert len(problems) == 1 and reason in problems[0]
    with pytest.raises(ConditionError) as refused:
        when(expression)
    assert reason in refused.value.message


def test_an_output_that_looks_like_code_is_only_a_string(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    outputs = {"evil": "__import__('os').system('touch pwned') or True"}
    result = evaluate_conditions({"when": "{{ evil.output }} == 'x'"}, params={}, outputs=outputs, statuses={})
    assert result[0] is False
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    ("conditions", "fragment"),
    [
        ({"if": "true"}, "unknown condition key 'if'"),
        ({"when": 3}, "'when' must be an expression string or a boolean"),
        ("true", "conditions must be a mapping"),
        ({"when": "{{ a.outptu }} == 1"}, "malformed reference {{ a.outptu }}"),
        ({"when": "x" * 2001}, "longer than 2000 characters"),
    ],
)
def test_condition_problems_report_shape_errors(conditions: Any, fragment: str) -> None:
    problems = condition_problems(conditions)
    assert any(fragment in problem for problem in problems), problems


def test_valid_conditions_have_no_problems() -> None:
    assert condition_problems({"when": "{{ a.output.x }} > 1 and {{ params.p }} in ['a']"}) == []
    assert condition_problems({"when": True}) == []
    assert condition_problems({}) == []


@pytest.mark.parametrize(("expression", "expected"), [
    ("'{{ params.env }}' == 'prod'", True),
    ('"{{ params.env }}" == "dev"', False),
    ("'{{ params.env }}-{{ n.output }}' == 'prod-7'", True),
    ("'{{ test.status }}' == 'completed'", True),
])
def test_a_reference_inside_quotes_is_spliced_into_the_string(expression: str, expected: bool) -> None:
    assert when(expression)[0] is expected


def test_a_quoted_value_is_never_read_as_code() -> None:
    outputs = {"evil": "' or 1 == 1 or '"}
    decided = evaluate_conditions({"when": "'{{ evil.output }}' == 'x'"}, params={}, outputs=outputs, statuses={})
    assert decided[0] is False


@pytest.mark.parametrize(("expression", "expected"), [
    ("{{ printed.output }} > 10", True),
    ("{{ printed.output }} == 12", True),
    ("{{ ratio.output }} < 1", True),
    ("{{ check.output }} == 12", False),
    ("12 in [{{ printed.output }}]", True),
    ("{{ printed.output }} in [11, 12]", True),
    ("{{ printed.output }} not in [12, 13]", False),
    ("{{ check.output }} in [1, 2]", False),
    ("{{ printed.output }} + 1 == 13", True),
    ("-{{ ratio.output }} < 0", True),
    ("{{ grouped.output }} == 1000", False),
])
def test_text_that_reads_as_a_number_compares_with_a_number(expression: str, expected: bool) -> None:
    assert when(expression)[0] is expected


def test_text_with_digit_separators_is_no_number_for_arithmetic() -> None:
    with pytest.raises(ConditionError, match="arithmetic needs numbers, got '1_000'"):
        when("{{ grouped.output }} + 1 > 0")


def test_a_membership_test_in_a_number_says_what_cannot_be_looked_for_where() -> None:
    with pytest.raises(ConditionError, match=r"1 \(int\) cannot be looked for in 7 \(int\)"):
        when("1 in {{ n.output }}")


def test_a_condition_error_does_not_name_its_step_again() -> None:
    with pytest.raises(ConditionError) as info:
        when("{{ check.output }} > 3")
    assert info.value.message.startswith("cannot evaluate condition")


def test_type_errors_during_evaluation_are_condition_errors() -> None:
    with pytest.raises(ConditionError, match="cannot evaluate.*'ok' \\(str\\) and 3 \\(int\\) cannot be ordered"):
        when("{{ check.output }} > 3")
    with pytest.raises(ConditionError, match="arithmetic needs numbers, got 'ok'"):
        when("{{ check.output }} + 1 == 2")


def test_missing_reference_names_the_step() -> None:
    with pytest.raises(UnresolvedReferenceError, match="step 'deploy'.*ghost"):
        when("{{ ghost.output }} == 1")
