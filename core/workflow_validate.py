"""Strict validation of workflow data, reporting every problem with its location.

:func:`validate_workflow_data` checks a parsed workflow document (a ``dict``) against
the field tables of :mod:`core.workflow_schema` plus the rules a schema cannot express:
dependencies name real steps (else the closest name is suggested), no step depends on
itself, no cycles (the full path is shown), references such as ``{{ extract.output }}``
name an upstream step, conditions parse, and the action exists. It returns the
:class:`~core.models.Workflow` or raises one :class:`~core.errors.WorkflowValidationError`
holding all :class:`~core.errors.ValidationProblem` s, each located by file, line and
column when the document came from YAML (see :class:`Locations`).
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .errors import ValidationProblem, WorkflowValidationError
from .models import TaskPriority, Workflow, WorkflowParam, WorkflowStep
from .text import closest
from .workflow_dag import WorkflowDAG
from .workflow_schema import (
    KEY_ALIASES,
    PARAM_FIELDS,
    PARAM_NAME_PATTERN,
    PARAM_TYPES,
    RESERVED_STEP_NAMES,
    RESOURCE_NAME_PATTERN,
    STEP_NAME_PATTERN,
    STEP_FIELDS,
    WORKFLOW_FIELDS,
    FieldSpec,
)

__all__ = ["Locations", "RequirementCheck", "validate_workflow_data", "infer_param_type"]

Position = tuple[int, int]  # 1-based line, column
# Why a step's resource requirements can never be granted here, or None.
RequirementCheck = Callable[[Mapping[str, Any]], "str | None"]


@dataclasses.dataclass(slots=True)
class Locations:
    """Where each part of a parsed document stood in its source text.

    Keyed by ``id()`` of the constructed ``dict``/``list`` (they stay alive as long as
    the document does): ``keys[id(m)][k]`` is the position of key ``k`` of mapping
    ``m``, ``values[id(m)][k]`` of its value, ``items[id(l)][i]`` of item ``i`` of list
    ``l`` and ``starts[id(c)]`` where container ``c`` begins.
    """

    keys: dict[int, dict[Any, Position]] = dataclasses.field(default_factory=dict)
    values: dict[int, dict[Any, Position]] = dataclasses.field(default_factory=dict)
    items: dict[int, list[Position]] = dataclasses.field(default_factory=dict)
    starts: dict[int, Position] = dataclasses.field(default_factory=dict)

    def key(self, mapping: Any, key: Any) -> Position | None:
        return self.keys.get(id(mapping), {}).get(key) or self.start(mapping)

    def value(self, mapping: Any, key: Any) -> Position | None:
        return self.values.get(id(mapping), {}).get(key) or self.start(mapping)

    def item(self, sequence: Any, index: int) -> Position | None:
        found = self.items.get(id(sequence))
        if found is not None and index < len(found):
            return found[index]
        return self.start(sequence)

    def start(self, container: Any) -> Position | None:
        return self.starts.get(id(container))


_JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}
_TYPE_WORDS = {
    "string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false",
    "object": "a mapping", "array": "a list", "null": "null",
}
_PARAM_TYPE_CHECK = {
    "string": "string", "integer": "integer", "number": "number", "boolean": "boolean", "list": "array", "object": "object",
}


_PATTERNS: dict[str, re.Pattern[str]] = {}


# Other spellings of our parameter types, for the did-you-mean (``type: array``).
_SYNONYMS = {"array": "list", "sequence": "list", "tuple": "list", "dict": "object", "map": "object",
             "mapping": "object", "str": "string", "text": "string", "int": "integer", "float": "number",
             "double": "number", "bool": "boolean", "null": "any"}


def _value_problem(spec: FieldSpec, value: Any) -> tuple[str, str, int | None] | None:
    """Return ``(message, hint, bad item index)`` when ``value`` breaks ``spec``, else None."""
    if not any(_JSON_TYPES[t](value) for t in spec.types):
        wanted = " or ".join(_TYPE_WORDS[t] for t in spec.types)
        hint = "quote the value" if spec.types[0] == "string" else ""
        return f"{spec.name!r} must be {wanted}, not {_describe(value)}", hint, None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):  # YAML's .inf and .nan: no timer or count can use them
            return f"{spec.name!r} must be a finite number, not {value!r}", _finite_hint(spec), None
        low = spec.minimum
        if low is not None and (value <= low if spec.exclusive_minimum else value < low):
            bound = "greater than" if spec.exclusive_minimum else "at least"
            return f"{spec.name!r} must be {bound} {low:g}, not {value!r}", "", None
        if spec.maximum is not None and value > spec.maximum:
            return f"{spec.name!r} must be at most {spec.maximum:g}, not {value!r}", _finite_hint(spec), None
    elif isinstance(value, str):
        if spec.enum and not spec.casefold and value not in spec.enum:
            guess = closest(value, spec.enum)
            if guess is None and _SYNONYMS.get(value.lower()) in spec.enum:
                guess = _SYNONYMS[value.lower()]  # JSON Schema's or Python's word for one of ours
            return (f"{spec.name!r} must be one of {', '.join(map(str, spec.enum))}, not {value!r}",
                    f"did you mean {guess!r}?" if guess else "", None)
        if spec.pattern:
            pattern = _PATTERNS.get(spec.pattern)
            if pattern is None:
                pattern = _PATTERNS[spec.pattern] = re.compile(spec.pattern)
            if not pattern.match(value):
                return f"{spec.name!r} value {value!r} is not allowed", f"it must match {spec.pattern}", None
    elif spec.items and isinstance(value, list):
        check = _JSON_TYPES[spec.items]
        for index, item in enumerate(value):
            if not check(item):
                return f"{spec.name!r} items must be {_TYPE_WORDS[spec.items]}, not {_describe(item)}", "", index
    return None


def _finite_hint(spec: FieldSpec) -> str:
    """How to say "no limit" for a field that has a way to (``timeout``: leave it out)."""
    return "leave it out for no limit" if spec.default is None and "null" in spec.types else ""


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return {dict: "a mapping", list: "a list", str: "a string", int: "an integer", float: "a number"}.get(
        type(value), f"a {type(value).__name__}"
    )


def _optional(module: str, attr: str) -> Callable[..., Any] | None:
    """Return ``module.attr`` when that module exists yet, else None.

    Actions, templating and conditions live in modules that can be absent in a
    stripped-down install; validation then skips only the checks that need them.
    """
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        return None
    return getattr(mod, attr, None)


class _Checker:
    """Collects problems for one document; one instance per validation."""

    def __init__(self, filename: str | None, locations: Locations | None) -> None:
        self.filename = filename
        self.loc = locations or Locations()
        self.problems: list[ValidationProblem] = []
        # Every step mapping with a string name (first of each name), built or not, so
        # that dependency problems are reported even for steps with other problems.
        self.named: list[tuple[str, dict[Any, Any], str]] = []
        self.condition_problems = _optional("core.conditions", "condition_problems")

    def add(self, message: str, where: Position | None, path: str, hint: str = "") -> None:
        line, column = where if where else (None, None)
        self.problems.append(ValidationProblem(message, self.filename, line, column, path, hint))

    # ------------------------------------------------------------- generic fields

    def check_keys(self, mapping: dict[Any, Any], fields: tuple[FieldSpec, ...], path: str, what: str) -> None:
        known = [f.name for f in fields]
        for key in mapping:
            if key in known:
                continue
            where = self.loc.key(mapping, key)
            if not isinstance(key, str):
                self.add(f"{what} key {key!r} is not a string", where, path, f"known keys: {', '.join(known)}")
                continue
            alias = KEY_ALIASES.get(key)
            guess = alias if alias in known else closest(key, known)
            hint = f"did you mean {guess!r}?" if guess else f"known keys: {', '.join(known)}"
            self.add(f"unknown {what} key {key!r}", where, _join(path, key), hint)
        for spec in fields:
            if spec.required and spec.name not in mapping:
                self.add(f"{what} is missing the required key {spec.name!r}", self.loc.start(mapping), path,
                         f"add `{spec.name}:`")

    def check_value(self, mapping: dict[Any, Any], spec: FieldSpec, path: str) -> bool:
        """Check one present field's type, bounds, enum and pattern; True when it is usable."""
        found = _value_problem(spec, mapping[spec.name])
        if found is None:
            return True
        message, hint, index = found
        here = _join(path, spec.name)
        if index is None:
            self.add(message, self.loc.value(mapping, spec.name), here, hint)
        else:
            self.add(message, self.loc.item(mapping[spec.name], index), f"{here}[{index}]", hint)
        return False

    def check_fields(self, mapping: dict[Any, Any], fields: tuple[FieldSpec, ...], path: str, what: str) -> dict[str, Any]:
        """Check keys and generic values; return ``{field: value}`` of the usable generic fields."""
        self.check_keys(mapping, fields, path, what)
        good: dict[str, Any] = {}
        for spec in fields:
            if spec.name in mapping and not spec.special and self.check_value(mapping, spec, path):
                good[spec.name] = mapping[spec.name]
        return good

    # ------------------------------------------------------------------- params

    def check_params(self, params: Any, owner: dict[Any, Any]) -> dict[str, WorkflowParam]:
        if not isinstance(params, dict):
            self.add(f"'params' must be a mapping of name to default, not {_describe(params)}",
                     self.loc.value(owner, "params"), "params")
            return {}
        result: dict[str, WorkflowParam] = {}
        for name, raw in params.items():
            path = f"params.{name}"
            if not isinstance(name, str) or not re.match(PARAM_NAME_PATTERN, name):
                self.add(f"parameter name {name!r} is not allowed", self.loc.key(params, name), path,
                         "use letters, digits and '_', starting with a letter or '_'")
                continue
            where = self.loc.value(params, name)
            if isinstance(raw, dict):
                fields = self.check_fields(raw, PARAM_FIELDS, path, "parameter")
                if "default" in raw and "default" not in fields:
                    continue
                declared = fields.get("type")
                default = raw.get("default")
                param = WorkflowParam(name, default, declared or infer_param_type(default), fields.get("description", ""),
                                      fields.get("required", False), list(fields.get("choices", [])))
                if param.required and "default" in raw:
                    self.add(f"parameter {name!r} is required and also has a default", where, path,
                             "drop `default:` or `required: true`")
            elif isinstance(raw, (str, int, float, bool, list)) or raw is None:
                param = WorkflowParam(name, raw, infer_param_type(raw))
            else:
                self.add(f"parameter {name!r} has a value of unsupported type {type(raw).__name__}", where, path,
                         "quote it to make it a string")
                continue
            self.check_param_default(param, where, path)
            result[name] = param
        return result

    def check_param_default(self, param: WorkflowParam, where: Position | None, path: str) -> None:
        if param.type not in PARAM_TYPES:
            return  # already reported as a bad enum value
        json_type = _PARAM_TYPE_CHECK.get(param.type)
        if param.default is not None and json_type and not _JSON_TYPES[json_type](param.default):
            self.add(f"parameter {param.name!r} default {param.default!r} is not of type {param.type}", where, path)
        elif param.choices and param.default is not None and param.default not in param.choices:
            self.add(f"parameter {param.name!r} default {param.default!r} is not one of its choices", where, path,
                     f"choices: {', '.join(map(repr, param.choices))}")

    # -------------------------------------------------------------------- steps

    def check_steps(self, steps: Any, owner: dict[Any, Any]) -> list[tuple[WorkflowStep, dict[Any, Any], str]]:
        if not isinstance(steps, list):
            self.add(f"'steps' must be a list of steps, not {_describe(steps)}", self.loc.value(owner, "steps"), "steps",
                     "write each step as `- name: ...`")
            return []
        if not steps:
            self.add("the workflow has no steps", self.loc.value(owner, "steps"), "steps", "add at least one step")
        built: list[tuple[WorkflowStep, dict[Any, Any], str]] = []
        seen: dict[str, int] = {}
        for index, raw in enumerate(steps):
            path = f"steps[{index}]"
            if not isinstance(raw, dict):
                self.add(f"each step must be a mapping, not {_describe(raw)}", self.loc.item(steps, index), path,
                         "write `- name: ...` with the step's keys indented below")
                continue
            step = self.check_step(raw, path)
            name = raw.get("name")
            if not isinstance(name, str):
                continue
            if name in seen:
                first = self.loc.value(steps[seen[name]], "name")
                also = f" (first defined on line {first[0]})" if first else ""
                self.add(f"duplicate step name {name!r}{also}", self.loc.value(raw, "name"), f"{path}.name",
                         "give every step a unique name")
                continue
            seen[name] = index
            self.named.append((name, raw, path))
            if step is not None:
                built.append((step, raw, path))
        return built

    def check_step(self, raw: dict[Any, Any], path: str) -> WorkflowStep | None:
        values = self.check_fields(raw, STEP_FIELDS, path, "step")
        name = raw.get("name")
        if "name" in raw and not isinstance(name, str):
            # YAML reads `name: 123`, `name: true` or `name: 2024-01-01` as no string at all.
            self.add(f"step name must be a string, not {_describe(name)}", self.loc.value(raw, "name"),
                     f"{path}.name", "quote the value, e.g. `name: \"step_1\"`; names start with a letter or '_'")
        ok = isinstance(name, str) and self.check_name(raw, path)
        if "dependencies" in raw and not self.check_value(raw, _STEP_SPEC["dependencies"], path):
            ok = False
        priority = self.check_priority(raw, path) if "priority" in raw else TaskPriority.NORMAL
        resources = self.check_resources(raw, path) if "resources" in raw else {}
        conditions = raw.get("conditions", {})
        if not isinstance(conditions, dict):
            self.add(f"'conditions' must be a mapping such as {{when: \"...\"}}, not {_describe(conditions)}",
                     self.loc.value(raw, "conditions"), f"{path}.conditions")
            conditions = {}
        elif conditions:
            if self.condition_problems is not None:
                for message in self.condition_problems(conditions):
                    self.add(f"step {name!r} condition: {message}", self.loc.value(raw, "conditions"), f"{path}.conditions")
        if not ok or priority is None or resources is None:
            return None
        deps = list(raw.get("dependencies", []))
        return WorkflowStep(name=name, dependencies=deps, priority=priority, resources=resources,
                            conditions=dict(conditions), **_copy_values(values))

    def check_name(self, raw: dict[Any, Any], path: str) -> bool:
        name: str = raw["name"]
        where = self.loc.value(raw, "name")
        if name.lower() in RESERVED_STEP_NAMES:
            self.add(f"step name {name!r} is a reserved word", where, f"{path}.name",
                     f"rename it, e.g. {name + '_step'!r}; reserved: {', '.join(sorted(RESERVED_STEP_NAMES))}")
            return False
        if not re.match(STEP_NAME_PATTERN, name):
            self.add(f"step name {name!r} is not allowed", where, f"{path}.name",
                     "use letters, digits, '_' and '-', start with a letter or '_', at most 64 characters")
            return False
        return True

    def check_priority(self, raw: dict[Any, Any], path: str) -> TaskPriority | None:
        value = raw["priority"]
        if isinstance(value, str) and value in _PRIORITY_NAMES:
            return _PRIORITY_NAMES[value]
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            try:
                return TaskPriority(value)
            except ValueError:
                pass
        choices = TaskPriority.choices()
        guess = closest(value.lower(), choices) if isinstance(value, str) else None
        self.add(f"'priority' must be one of {', '.join(choices)} (any case) or 0-4, not {value!r}",
                 self.loc.value(raw, "priority"), f"{path}.priority", f"did you mean {guess!r}?" if guess else "")
        return None

    def check_resources(self, raw: dict[Any, Any], path: str) -> dict[str, dict[str, Any]] | None:
        resources = raw["resources"]
        here = f"{path}.resources"
        if not isinstance(resources, dict):
            self.add(f"'resources' must be a mapping like {{cpu: {{cores: 2}}}}, not {_describe(resources)}",
                     self.loc.value(raw, "resources"), here)
            return None
        result: dict[str, dict[str, Any]] = {}
        ok = True
        for rid, amount in resources.items():
            where = self.loc.value(resources, rid)
            if not isinstance(rid, str) or not re.match(RESOURCE_NAME_PATTERN, rid):
                self.add(f"resource name {rid!r} is not allowed", self.loc.key(resources, rid), f"{here}.{rid}",
                         "use letters, digits, '_', '-' and '.'")
                ok = False
                continue
            if amount is None:
                amount = {}
            if not isinstance(amount, dict):
                self.add(f"resource {rid!r} must map units to amounts, like {{cores: 2}}, not {_describe(amount)}",
                         where, f"{here}.{rid}", "write `{}` to hold it as a lock")
                ok = False
                continue
            for unit, qty in amount.items():
                unit_where = self.loc.value(amount, unit)
                if unit == "enforce":
                    if not isinstance(qty, bool):
                        self.add(f"resource {rid!r} 'enforce' must be true or false", unit_where, f"{here}.{rid}.enforce")
                        ok = False
                elif not isinstance(unit, str):
                    self.add(f"resource {rid!r} unit {unit!r} is not a string", unit_where, f"{here}.{rid}")
                    ok = False
                elif isinstance(qty, bool) or not isinstance(qty, (int, float)) or qty < 0:
                    self.add(f"resource {rid!r} amount {unit}={qty!r} must be a number of at least 0", unit_where,
                             f"{here}.{rid}.{unit}")
                    ok = False
            result[rid] = dict(amount)
        return result if ok else None

    # ------------------------------------------------------------------- graph

    def check_graph(self, built: list[tuple[WorkflowStep, dict[Any, Any], str]]) -> bool:
        """Check dependencies against the step names and find cycles; True when the graph is sound."""
        names = {name for name, _, _ in self.named}
        sound = True
        for name, raw, path in self.named:
            deps = raw.get("dependencies", [])
            if not isinstance(deps, list):
                continue  # reported by the type check
            seen: set[str] = set()
            for index, dep in enumerate(deps):
                if not isinstance(dep, str):
                    continue
                if dep in seen or dep == name or dep not in names:
                    where, here = self.loc.item(deps, index), f"{path}.dependencies[{index}]"
                    if dep == name:
                        self.add(f"step {name!r} depends on itself", where, here, "remove it from its own dependencies")
                        sound = False
                    elif dep not in names:
                        guess = closest(dep, names)
                        self.add(f"step {name!r} depends on unknown step {dep!r}", where, here,
                                 f"did you mean {guess!r}?" if guess else _known_steps_hint(names))
                        sound = False
                    else:
                        self.add(f"step {name!r} lists dependency {dep!r} twice", where, here, "list it once")
                seen.add(dep)
        built_names = {step.name for step, _, _ in built}
        dag = WorkflowDAG.from_edges(
            [step.name for step, _, _ in built],
            ((d, s.name) for s, _, _ in built for d in dict.fromkeys(s.dependencies) if d in built_names and d != s.name),
        )
        cycles = dag.find_cycles()
        by_name = {step.name: (raw, path) for step, raw, path in built} if cycles else {}
        for cycle in cycles:
            closing_step, closing_dep = cycle[0], cycle[-2]
            raw, path = by_name[closing_step]
            deps = raw["dependencies"]
            index = deps.index(closing_dep)
            self.add(f"dependency cycle: {' -> '.join(cycle)}", self.loc.item(deps, index),
                     f"{path}.dependencies[{index}]", f"remove one dependency on the cycle, e.g. {closing_step!r} on {closing_dep!r}")
            sound = False
        # References are judged only on a complete, acyclic graph: otherwise "not upstream"
        # would follow from an earlier problem and only add noise.
        return sound and len(built_names) == len(names)

    def check_references(self, built: list[tuple[WorkflowStep, dict[Any, Any], str]], params: dict[str, WorkflowParam]) -> None:
        referenced_steps = _optional("core.templating", "referenced_steps")
        find_references = _optional("core.templating", "find_references")
        near_misses = _optional("core.templating", "reference_near_misses")
        if referenced_steps is None:
            return
        deps_of = {step.name: step.dependencies for step, _, _ in built}
        for step, raw, path in built:
            for key in ("parameters", "conditions"):
                value = getattr(step, key)
                if not value:
                    continue
                where, here = self.loc.value(raw, key), f"{path}.{key}"
                for text, hint in near_misses(value, deps_of) if near_misses is not None else ():
                    self.add(f"step {step.name!r} has {text!r}, which is not a reference and stays as written",
                             where, here, hint)
                for ref in find_references(value) if find_references is not None else ():
                    if getattr(ref, "problem", ""):
                        self.add(f"step {step.name!r} has a malformed reference {ref.text!r}", where, here, ref.problem)
                    elif key == "parameters" and getattr(ref, "field", "") == "status":
                        self.add(f"step {step.name!r} uses {ref.text!r} in its parameters; a step's status "
                                 "exists only in conditions", where, here,
                                 f"use {{{{ {ref.name}.output }}}}, or decide with `conditions: {{when: ...}}`")
                    elif ref.kind == "params" and ref.name not in params:
                        guess = closest(ref.name, params)
                        self.add(f"step {step.name!r} references unknown parameter {ref.name!r}", where, here,
                                 f"did you mean {guess!r}?" if guess else "declare it under `params:`")
                for ref in sorted(referenced_steps(value)):
                    if ref in deps_of:
                        if not _is_ancestor(ref, step.name, deps_of):
                            self.add(f"step {step.name!r} uses the output of {ref!r}, which is not one of its dependencies",
                                     self.loc.value(raw, key), f"{path}.{key}", f"add {ref!r} to its dependencies")
                    else:
                        guess = closest(ref, deps_of)
                        self.add(f"step {step.name!r} references unknown step {ref!r}", self.loc.value(raw, key),
                                 f"{path}.{key}", f"did you mean {guess!r}?" if guess else "check the step name")

    def check_actions(self, built: list[tuple[WorkflowStep, dict[Any, Any], str]],
                      requirement_problem: RequirementCheck | None = None) -> None:
        registry = _optional("core.actions", "registry")
        located_problem = getattr(registry, "located_problem", None)
        for step, raw, path in built:
            found = located_problem(step.module, step.action, step.parameters) if located_problem is not None else None
            if found:
                message, field = found
                self.add(f"step {step.name!r}: {message}", *self._field_position(raw, path, field))
            elif step.resources and requirement_problem is not None:
                message = requirement_problem(step.resources)
                if message:
                    self.add(f"step {step.name!r} cannot run here: {message}", self.loc.value(raw, "resources"),
                             f"{path}.resources", "declare it in the resource config, or run where it exists "
                             "(`validate --anywhere` skips this check)")


    def _field_position(self, raw: dict[Any, Any], path: str, field: str) -> tuple[Position | None, str]:
        """Return where step field ``field`` ("module", "parameters.NAME" ...) is written in
        the step ``raw`` at ``path``, and its path; a field the file leaves to its default
        points at the nearest one written (the action, the module, the step's name)."""
        key, _, name = field.partition(".")
        params = raw.get("parameters")
        if name and isinstance(params, dict) and name in params:
            return self.loc.key(params, name), f"{path}.{field}"
        for candidate in (key, "action", "module", "name"):
            if candidate in raw:
                return self.loc.value(raw, candidate), f"{path}.{candidate}"
        return None, path


_STEP_SPEC = {f.name: f for f in STEP_FIELDS}
_PRIORITY_NAMES = {spelling: p for p in TaskPriority for spelling in (p.label, p.name, p.label.capitalize())}
_COPIED = {f.name for f in STEP_FIELDS if not f.special} - {"name"}


def _copy_values(values: dict[str, Any]) -> dict[str, Any]:
    """Fresh containers for the step (the parsed document is not shared with the model)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in _COPIED:
            continue
        if isinstance(value, dict):
            value = dict(value)
        elif isinstance(value, list):
            value = list(value)
        elif key in ("timeout", "retry_delay", "retry_backoff", "retry_max_delay", "retry_jitter") and value is not None:
            value = float(value)
        out[key] = value
    return out


# Python type -> parameter type name, most specific first (bool is an int to Python).
_PARAM_TYPE_OF: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (list, "list"),
    (dict, "object"),
)


def infer_param_type(value: Any) -> str:
    """Return the parameter type name (``PARAM_TYPES``) that fits ``value``; ``"any"`` for None."""
    for python_type, name in _PARAM_TYPE_OF:
        if isinstance(value, python_type):
            return name
    return "any"


def _is_ancestor(candidate: str, step: str, deps_of: dict[str, list[str]]) -> bool:
    """True when ``step`` depends on ``candidate`` directly or through other steps."""
    direct = deps_of.get(step, [])
    if candidate in direct:
        return True
    stack, seen = list(direct), set(direct)
    while stack:
        for dep in deps_of.get(stack.pop(), []):
            if dep == candidate:
                return True
            if dep not in seen:
                seen.add(dep)
                stack.append(dep)
    return False


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def validate_workflow_data(
    data: Any,
    *,
    filename: str | None = None,
    locations: Locations | None = None,
    extra_problems: Iterable[ValidationProblem] = (),
    requirement_problem: RequirementCheck | None = None,
) -> Workflow:
    """Check a parsed workflow document and build the :class:`~core.models.Workflow`.

    Parameters
    ----------
    data : Any
        The parsed document; anything but a mapping is reported as a problem.
    filename : str, optional
        Shown in every problem's location (``None``: ``<string>``).
    locations : Locations, optional
        Source positions from the YAML loader; without them problems carry a path only.
    extra_problems : iterable of ValidationProblem
        Problems the parser already found (duplicate keys), reported with the rest.
    requirement_problem : callable, optional
        Returns why a step's resource requirements can never be granted here, or None
        (``ResourceManager.requirement_problem``); each such step is a problem located
        at its ``resources``.

    Returns
    -------
    Workflow
        With ``source_path`` set to ``filename``.

    Raises
    ------
    WorkflowValidationError
        With every problem found, in document order where it matters.
    """
    check = _Checker(filename, locations)
    check.problems.extend(extra_problems)
    if not isinstance(data, dict):
        check.add(f"a workflow must be a mapping with 'name' and 'steps', not {_describe(data)}",
                  check.loc.start(data) or (1, 1), "", "start the file with `name: my-workflow`")
        raise WorkflowValidationError(check.problems)
    top = check.check_fields(data, WORKFLOW_FIELDS, "", "workflow")
    params = check.check_params(data["params"], data) if "params" in data else {}
    built = check.check_steps(data["steps"], data) if "steps" in data else []
    if check.check_graph(built):
        check.check_references(built, params)
    check.check_actions(built, requirement_problem)
    if check.problems:
        # Report in reading order; problems without a position (no YAML) keep theirs.
        check.problems.sort(key=lambda p: (p.line is None, p.line or 0, p.column or 0))
        raise WorkflowValidationError(check.problems)
    version = top.get("version", "1.0")
    return Workflow(
        name=top["name"],
        description=top.get("description", ""),
        version=version if isinstance(version, str) else str(version),
        params=params,
        steps=[step for step, _, _ in built],
        metadata=dict(top.get("metadata", {})),
        tags=list(top.get("tags", [])),
        source_path=filename,
    )


def _known_steps_hint(names: Iterable[str], limit: int = 8) -> str:
    """``"steps here: a, b, c"`` (the first ``limit``), for an unknown name with no close match."""
    listed = sorted(names)
    more = f" and {len(listed) - limit} more" if len(listed) > limit else ""
    return f"steps here: {', '.join(listed[:limit])}{more}" if listed else "the workflow has no steps"
