"""Step conditions: ``conditions: {when: "<expression>"}``, evaluated without ``eval``.

The expression may use references (``{{ build.output.count }}``, ``{{ params.env }}``,
``{{ build.status }}``; the ``${...}`` spelling too). Each reference is replaced by a
placeholder name bound to the referenced value, so a value is always a literal and
never re-parsed as code. The expression is then parsed with :mod:`ast` and walked by
an evaluator that knows only: literals (strings, numbers, booleans, ``None`` and the
YAML spellings ``true``/``false``/``null``), lists and tuples, ``and``/``or``/``not``,
comparisons (``== != < <= > >= in not in``), unary ``-``/``+`` and ``+ - * / // %`` on
numbers. Anything else (calls, attributes, subscripts, lambdas, comprehensions,
``**``) is rejected, which is what makes it safe.

Two conveniences for values that arrive as text:

* A reference inside quotes (``'{{ params.mode }}' == 'fast'``) is spliced into the
  string literal as text, after parsing, so it can never become code.
* Text that reads as a number is compared as that number with a number: a shell step
  prints ``5``, and ``{{ count.output }} > 3`` means what it says.

``when`` may also be a plain boolean.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

from .errors import OrchestrationError
from .templating import Reference, ReferenceResolver, reference_spans, stringify

__all__ = ["ConditionError", "evaluate_conditions", "condition_problems", "KNOWN_KEYS"]

KNOWN_KEYS = ("when",)
_MAX_LENGTH = 2000
_PLACEHOLDER = "__orchtui_ref_{}__"
_IN_STRING = re.compile(r"__orchtui_ref_\d+__")
_CONSTANT_NAMES = {"true": True, "false": False, "null": None, "none": None}

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_ARITHMETIC: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_REJECTED = {
    ast.Call: "function calls are not allowed",
    ast.Attribute: "attribute access is not allowed",
    ast.Subscript: "subscripts are not allowed (use {{ step.output.key }} instead)",
    ast.Lambda: "lambdas are not allowed",
    ast.NamedExpr: "assignments are not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.IfExp: "conditional expressions are not allowed",
    ast.Starred: "starred expressions are not allowed",
    ast.JoinedStr: "f-strings are not allowed",
}


class ConditionError(OrchestrationError):
    """A condition is malformed or cannot be evaluated; names the step and why."""

    error_code = "CONDITION_ERROR"


def _placeholders(expression: str) -> tuple[str, list[Reference]]:
    """Replace each reference in ``expression`` with a placeholder name."""
    refs: list[Reference] = []
    parts: list[str] = []
    last = 0
    for start, end, ref in reference_spans(expression):
        parts.append(expression[last:start])
        parts.append(_PLACEHOLDER.format(len(refs)))
        refs.append(ref)
        last = end
    parts.append(expression[last:])
    return "".join(parts), refs


class _Walker:
    """Evaluates (or, with ``values=None``, only checks) a whitelisted expression tree.

    ``names`` are the placeholders that stand for references; no other name is known.
    """

    def __init__(self, names: set[str], values: Mapping[str, Any] | None) -> None:
        self.names = names
        self.values = values

    def check_only(self) -> bool:
        return self.values is None

    def visit(self, node: ast.AST) -> Any:
        for bad, reason in _REJECTED.items():
            if isinstance(node, bad):
                raise ValueError(reason)
        method = getattr(self, f"_visit_{type(node).__name__}", None)
        if method is None:
            raise ValueError(f"'{type(node).__name__}' is not allowed in a condition")
        return method(node)

    def _visit_Expression(self, node: ast.Expression) -> Any:
        return self.visit(node.body)

    def _visit_Constant(self, node: ast.Constant) -> Any:
        if node.value is not None and not isinstance(node.value, (str, int, float, bool)):
            raise ValueError(f"the literal {node.value!r} is not allowed")
        if isinstance(node.value, str) and self.values is not None and "__orchtui_ref_" in node.value:
            # A reference written inside quotes ('{{ params.mode }}' == 'fast'), as dagu and
            # Airflow users write it: its value is spliced into the string literal as text.
            return _IN_STRING.sub(lambda m: stringify(self.values[m[0]]) if m[0] in self.names else m[0],
                                  node.value)
        return node.value

    def _visit_Name(self, node: ast.Name) -> Any:
        if node.id in self.names:
            return None if self.values is None else self.values[node.id]
        if node.id.lower() in _CONSTANT_NAMES:
            return _CONSTANT_NAMES[node.id.lower()]
        raise ValueError(f"unknown name '{node.id}'; quote strings and use {{{{ step.output }}}} or {{{{ params.name }}}}")

    def _visit_List(self, node: ast.List) -> Any:
        return [self.visit(item) for item in node.elts]

    def _visit_Tuple(self, node: ast.Tuple) -> Any:
        return tuple(self.visit(item) for item in node.elts)

    def _visit_BoolOp(self, node: ast.BoolOp) -> Any:
        if self.check_only():
            for item in node.values:
                self.visit(item)
            return None
        is_and = isinstance(node.op, ast.And)
        result: Any = None
        for item in node.values:
            result = self.visit(item)
            if bool(result) is not is_and:  # short-circuit like Python
                return result
        return result

    def _visit_UnaryOp(self, node: ast.UnaryOp) -> Any:
        operand = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return None if self.check_only() else not operand
        if not isinstance(node.op, (ast.USub, ast.UAdd)):
            raise ValueError("bitwise operators are not allowed")
        if self.check_only():
            return None
        operand = _require_number(operand)
        return -operand if isinstance(node.op, ast.USub) else +operand

    def _visit_BinOp(self, node: ast.BinOp) -> Any:
        op = _ARITHMETIC.get(type(node.op))
        if op is None:
            raise ValueError(f"the operator '{type(node.op).__name__}' is not allowed")
        left, right = self.visit(node.left), self.visit(node.right)
        if self.check_only():
            return None
        return op(_require_number(left), _require_number(right))

    def _visit_Compare(self, node: ast.Compare) -> Any:
        ops = [_COMPARE.get(type(op)) for op in node.ops]
        if None in ops:
            raise ValueError("only == != < <= > >= in and not in comparisons are allowed")
        left = self.visit(node.left)
        rights = [self.visit(item) for item in node.comparators]
        if self.check_only():
            return None
        for kind, op, right in zip(node.ops, ops, rights):
            try:
                if isinstance(kind, (ast.In, ast.NotIn)):
                    holds = _contains(right, left) == isinstance(kind, ast.In)
                else:
                    left, right = _as_numbers(left, right)
                    holds = op(left, right)  # type: ignore[misc]
            except TypeError:
                how = (f"cannot be looked for in {right!r} ({type(right).__name__})"
                       if isinstance(kind, (ast.In, ast.NotIn)) else
                       f"and {right!r} ({type(right).__name__}) cannot be ordered")
                raise ValueError(f"{left!r} ({type(left).__name__}) {how}") from None
            if not holds:
                return False
            left = right
        return True


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# A number as a command prints one: no "1_000", "inf", "nan" or "0x1f", which Python's
# int() and float() would also take.
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _number_in(text: str) -> int | float | None:
    """Return the number ``text`` spells (``" 5\n"``, ``"2.5"``, ``"-1e3"``), or None."""
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        return None
    try:
        return int(text)
    except ValueError:
        number = float(text)
    return number if math.isfinite(number) else None


def _contains(container: Any, item: Any) -> bool:
    """``item in container``, where text and a number that spell the same value match
    (a shell step's ``12`` is in ``[12, 13]``), as they do for ``==``.

    Raises:
        TypeError: ``container`` cannot hold anything (a number), or text is looked for
            in something that is not text.
    """
    if item in container:
        return True
    if isinstance(container, (str, bytes, Mapping)):
        return False
    if isinstance(item, str):
        number = _number_in(item)
        return number is not None and any(_is_number(x) and x == number for x in container)
    if _is_number(item):
        return any(isinstance(x, str) and _number_in(x) == item for x in container)
    return False


def _as_numbers(left: Any, right: Any) -> tuple[Any, Any]:
    """Read a text side as a number when the other side is a number; otherwise leave both."""
    if _is_number(left) and isinstance(right, str):
        number = _number_in(right)
        return left, right if number is None else number
    if _is_number(right) and isinstance(left, str):
        number = _number_in(left)
        return left if number is None else number, right
    return left, right


def _require_number(value: Any) -> int | float:
    """Return ``value`` as a number for arithmetic (text that spells one counts, as in
    comparisons); raises ValueError for anything else."""
    if isinstance(value, str):
        number = _number_in(value)
        if number is not None:
            return number
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"arithmetic needs numbers, got {value!r}")
    return value


def _parse(expression: str) -> tuple[ast.Expression, list[Reference]]:
    """Parse and structurally check ``expression``; raises ValueError with the reason."""
    if len(expression) > _MAX_LENGTH:
        raise ValueError(f"the expression is longer than {_MAX_LENGTH} characters")
    text, refs = _placeholders(expression)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, RecursionError, MemoryError) as exc:
        detail = exc.msg if isinstance(exc, SyntaxError) else "too deeply nested"
        raise ValueError(f"not a valid expression ({detail})") from None
    _Walker(_names(refs), None).visit(tree)
    return tree, refs


def _names(refs: list[Reference]) -> set[str]:
    return {_PLACEHOLDER.format(i) for i in range(len(refs))}


def condition_problems(conditions: Any) -> list[str]:
    """Return what is wrong with a step's ``conditions`` (empty when nothing is).

    Checks the shape, the keys, that ``when`` is a boolean or a valid whitelisted
    expression, and that its references are well-formed. Whether referenced steps are
    dependencies is the workflow validator's job (see ``templating.referenced_steps``).
    """
    if conditions is None or conditions == {}:
        return []
    if not isinstance(conditions, Mapping):
        return ["conditions must be a mapping such as {when: \"{{ step.output }} == 'ok'\"}"]
    problems = [f"unknown condition key '{key}'; use 'when: <expression>'" for key in conditions if key not in KNOWN_KEYS]
    when = conditions.get("when")
    if isinstance(when, bool) or "when" not in conditions:
        return problems
    if not isinstance(when, str):
        return problems + [f"'when' must be an expression string or a boolean, got {type(when).__name__}"]
    try:
        _, refs = _parse(when)
    except ValueError as exc:
        return problems + [f"condition {when!r}: {exc}"]
    problems += [f"condition {when!r}: malformed reference {ref.text}: {ref.problem}" for ref in refs if ref.problem]
    return problems


def evaluate_conditions(
    conditions: Mapping[str, Any] | None,
    *,
    params: Mapping[str, Any],
    outputs: Mapping[str, Any],
    statuses: Mapping[str, Any],
    step_name: str | None = None,
) -> tuple[bool, str]:
    """Decide whether a step runs.

    ``statuses`` maps step names to their final status (a ``TaskStatus`` or its string
    value), for ``{{ step.status }} == 'failed'``.

    Returns:
        ``(True, "")`` to run the step, or ``(False, reason)`` to skip it, where the
        reason quotes the condition that was false.

    Raises:
        ConditionError: the condition is malformed or cannot be evaluated (e.g. it
            compares a number with a string).
        UnresolvedReferenceError: a reference names a missing step output or parameter.
    """
    if not conditions:
        return True, ""
    # The message is the step's error, shown beside its name (and in the run's error as
    # "step 'x' failed: ..."), so it does not name the step again.
    problems = condition_problems(conditions)
    if problems:
        raise ConditionError(problems[0])
    when = conditions.get("when", True)
    if isinstance(when, bool):
        return when, "" if when else "condition 'when: false'"
    tree, refs = _parse(when)
    resolver = ReferenceResolver(step_name, params, outputs, statuses)
    values = {_PLACEHOLDER.format(i): resolver.value_of(ref) for i, ref in enumerate(refs)}
    try:
        result = _Walker(_names(refs), values).visit(tree)
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise ConditionError(f"cannot evaluate condition {when!r}: {exc}") from None
    if result:
        return True, ""
    return False, f"condition {when!r} is false"
