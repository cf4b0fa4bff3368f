"""Workflow parameters: merging defaults, checking what a caller passed, CLI coercion.

A workflow that declares ``params`` accepts exactly those names: an unknown name is an
error with a did-you-mean, a required parameter without a value is an error, and a
value of the wrong type (or outside ``choices``) is an error. A workflow that declares
no parameters at all accepts any keyword (spec 002's ``execute_workflow(name, **params)``
on workflows built in Python, which have no way to declare them); the values are still
reachable as ``{{ params.name }}``.

``coerce_cli_params`` turns ``key=value`` strings from the command line into the
declared types, reading YAML-style scalars (``true``, ``3``, ``[a, b]``) with the safe
loader only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from .errors import ValidationProblem, WorkflowValidationError
from .models import Workflow, WorkflowParam
from .text import did_you_mean

__all__ = ["resolve_params", "param_problems", "coerce_cli_params", "PARAM_TYPES"]

PARAM_TYPES = ("string", "integer", "number", "boolean", "list", "object", "any")

_TRUE = {"true", "yes", "on", "1", "y"}
_FALSE = {"false", "no", "off", "0", "n"}


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    known = sorted(known)
    return did_you_mean(name, known, otherwise=f"declared parameters: {', '.join(known)}" if known
                        else "this workflow declares no parameters")


def _fits(param: WorkflowParam, value: Any) -> bool:
    """True when ``value`` has the type ``param`` declares (None always fits an optional)."""
    kind = (param.type or "any").lower()
    if value is None or kind == "any":
        return True
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "list":
        return isinstance(value, (list, tuple))
    if kind == "object":
        return isinstance(value, dict)
    return True  # an unknown type name is the workflow file validator's business


def param_problems(workflow: Workflow, params: Mapping[str, Any]) -> list[ValidationProblem]:
    """Return every problem with ``params`` for ``workflow`` (empty when they are fine).

    Checks unknown names (only when the workflow declares parameters), required
    parameters without a value, declared types and ``choices``.
    """
    problems: list[ValidationProblem] = []
    where = workflow.source_path
    declared = workflow.params
    if declared:
        for name in params:
            if name not in declared:
                problems.append(ValidationProblem(
                    f"workflow '{workflow.name}' has no parameter '{name}'",
                    file=where, path=f"params.{name}", hint=_did_you_mean(name, declared),
                ))
    for name, param in declared.items():
        value = params.get(name, param.default)
        if value is None and param.required:
            problems.append(ValidationProblem(
                f"workflow '{workflow.name}' needs parameter '{name}'",
                file=where, path=f"params.{name}",
                hint=f"pass it, e.g. -p {name}=VALUE" + (f" ({param.description})" if param.description else ""),
            ))
            continue
        if name in params and not _fits(param, value):
            problems.append(ValidationProblem(
                f"parameter '{name}' of workflow '{workflow.name}' must be of type {param.type}, "
                f"got {type(value).__name__} {value!r}",
                file=where, path=f"params.{name}",
            ))
            continue
        if param.choices and value is not None and value not in param.choices:
            problems.append(ValidationProblem(
                f"parameter '{name}' of workflow '{workflow.name}' is {value!r}, which is not one of its choices",
                file=where, path=f"params.{name}", hint="choose one of " + ", ".join(map(repr, param.choices)),
            ))
    return problems


def resolve_params(workflow: Workflow, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return the parameters a run of ``workflow`` uses: declared defaults, then ``params``.

    Raises:
        WorkflowValidationError: an unknown name, a missing required value, a wrong
            type or a value outside ``choices`` (every problem at once).
    """
    given = dict(params or {})
    problems = param_problems(workflow, given)
    if problems:
        raise WorkflowValidationError(problems)
    merged = workflow.param_defaults()
    merged.update(given)
    return merged


def _yaml_scalar(text: str) -> Any:
    """Read ``text`` the way YAML reads a plain value; on a YAML error keep the text."""
    try:
        return yaml.safe_load(text) if text.strip() else text
    except yaml.YAMLError:
        return text


def _coerce(param: WorkflowParam | None, name: str, raw: str) -> Any:
    """Convert ``raw`` to ``param``'s type; raises ValueError with the reason."""
    kind = (param.type if param else "any").lower()
    if kind == "string":
        return raw  # "007" must stay "007", not become 7
    if kind == "integer":
        text = raw.strip().replace("_", "")
        try:
            return int(text)
        except ValueError:
            pass
        try:
            return int(text, 0)  # 0x1f, 0o17, 0b101
        except ValueError:
            raise ValueError(f"parameter '{name}' must be an integer, got {raw!r}") from None
    if kind == "number":
        try:
            number = float(raw.strip().replace("_", ""))
        except ValueError:
            raise ValueError(f"parameter '{name}' must be a number, got {raw!r}") from None
        if not math.isfinite(number):  # "inf" and "nan" parse, but no step can use them
            raise ValueError(f"parameter '{name}' must be a finite number, got {raw!r}")
        return number
    if kind == "boolean":
        word = raw.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise ValueError(f"parameter '{name}' must be true or false, got {raw!r}")
    if kind in ("list", "object"):
        value = _yaml_scalar(raw)
        wanted = list if kind == "list" else dict
        if not isinstance(value, wanted):
            example = "[a, b]" if kind == "list" else "{key: value}"
            raise ValueError(f"parameter '{name}' must be {'a list' if kind == 'list' else 'an object'} "
                             f"written like {example}, got {raw!r}")
        return value
    return _yaml_scalar(raw)


def coerce_cli_params(workflow: Workflow, pairs: Iterable[str]) -> dict[str, Any]:
    """Turn ``["key=value", ...]`` into ``{key: typed value}`` for ``workflow``.

    Values take the declared parameter's type; undeclared ones (in a workflow that
    declares none) are read as YAML scalars. A repeated key keeps its last value.

    Returns:
        The parameters, not yet merged with defaults (``resolve_params`` does that).

    Raises:
        WorkflowValidationError: a pair without ``=``, an unknown key (with a
            did-you-mean) or a value that does not convert (every problem at once).
    """
    problems: list[ValidationProblem] = []
    result: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            problems.append(ValidationProblem(
                f"parameter {pair!r} is not of the form key=value", hint="write -p name=value",
            ))
            continue
        param = workflow.params.get(name)
        if workflow.params and param is None:
            problems.append(ValidationProblem(
                f"workflow '{workflow.name}' has no parameter '{name}'",
                file=workflow.source_path, path=f"params.{name}", hint=_did_you_mean(name, workflow.params),
            ))
            continue
        try:
            result[name] = _coerce(param, name, raw)
        except ValueError as exc:
            problems.append(ValidationProblem(str(exc), file=workflow.source_path, path=f"params.{name}"))
    if problems:
        raise WorkflowValidationError(problems)
    return result
