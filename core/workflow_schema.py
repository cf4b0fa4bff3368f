"""The workflow file format as one table, and the JSON Schema derived from it.

Every key a workflow file may hold is a :class:`FieldSpec` in :data:`WORKFLOW_FIELDS`,
:data:`STEP_FIELDS` or :data:`PARAM_FIELDS`. The validator in
:mod:`core.workflow_validate` checks types, bounds and enums from these tables, and
:func:`workflow_json_schema` turns the same tables into a Draft 2020-12 schema for
editors (yaml-language-server), so the two cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .models import TaskPriority

__all__ = [
    "MAX_RETRY_DELAY",
    "MAX_TIMEOUT",
    "FieldSpec",
    "WORKFLOW_FIELDS",
    "STEP_FIELDS",
    "PARAM_FIELDS",
    "PARAM_TYPES",
    "STEP_NAME_PATTERN",
    "PARAM_NAME_PATTERN",
    "WORKFLOW_NAME_PATTERN",
    "RESOURCE_NAME_PATTERN",
    "RESERVED_STEP_NAMES",
    "KEY_ALIASES",
    "SCHEMA_ID",
    "workflow_json_schema",
]

SCHEMA_ID = "https://orchtui.dev/schemas/workflow.schema.json"

# A step name appears in references such as ``{{ build.output }}``, log file names and
# Mermaid ids, so it is an identifier (dashes allowed) of at most 64 characters.
STEP_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"
PARAM_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
WORKFLOW_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9 _.-]{0,127}$"
RESOURCE_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$"
MODULE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.]{0,127}$"
ACTION_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"

# Words a reference or the engine gives a meaning of its own: ``{{ params.x }}``,
# ``{{ steps... }}``, ``${env.X}``, ``{{ x.output }}``/``{{ x.result }}``.
RESERVED_STEP_NAMES = frozenset(
    {"params", "param", "steps", "step", "env", "output", "outputs", "result", "results", "workflow", "run", "self", "true", "false", "null", "none"}
)

PARAM_TYPES = ("string", "integer", "number", "boolean", "list", "object", "any")

# Spellings other tools use for our keys; an unknown key found here gets a precise hint.
KEY_ALIASES = {
    "depends_on": "dependencies",
    "depends": "dependencies",
    "needs": "dependencies",
    "after": "dependencies",
    "requires": "dependencies",
    "deps": "dependencies",
    "retries": "max_retries",
    "retry": "max_retries",
    "params": "parameters",
    "args": "parameters",
    "with": "parameters",
    "inputs": "parameters",
    "when": "conditions",
    "if": "conditions",
    "condition": "conditions",
    "timeout_seconds": "timeout",
    "resource_requirements": "resources",
    "continue_on_error": "continue_on_failure",
    "allow_failure": "continue_on_failure",
    "parameters": "params",
    "tasks": "steps",
    "jobs": "steps",
}

_MISSING: Any = object()


@dataclasses.dataclass(slots=True, frozen=True)
class FieldSpec:
    """One key of the file format.

    ``types`` are JSON Schema type names (``"null"`` allowed); ``items`` is the JSON
    type of array items; ``enum`` lists accepted values (checked case-insensitively
    for strings when ``casefold`` is set); ``minimum``/``maximum`` bound numbers;
    ``pattern`` constrains strings; ``special`` names a structural check the
    validator runs instead of the generic one (steps, params, resources, priority).
    """

    name: str
    types: tuple[str, ...]
    description: str
    required: bool = False
    items: str | None = None
    enum: tuple[Any, ...] = ()
    casefold: bool = False
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    pattern: str | None = None
    default: Any = _MISSING
    examples: tuple[Any, ...] = ()
    special: str = ""

    @property
    def has_default(self) -> bool:
        return self.default is not _MISSING


WORKFLOW_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("name", ("string",), "The workflow's name, unique within the workflows directory.", required=True,
              pattern=WORKFLOW_NAME_PATTERN),
    FieldSpec("description", ("string",), "What the workflow does, in a sentence or two.", default=""),
    FieldSpec("version", ("string", "number"), "The workflow's own version, e.g. \"1.2\".", default="1.0"),
    FieldSpec("params", ("object",), "Parameters the workflow accepts: `name: default` or "
              "`name: {default, type, description, required, choices}`. Steps use them as `{{ params.name }}`.",
              special="params", default={}),
    FieldSpec("steps", ("array",), "The steps; each runs one action once its dependencies have completed.",
              required=True, special="steps"),
    FieldSpec("metadata", ("object",), "Free-form data kept with the workflow (owner, links, ...).", default={}),
    FieldSpec("tags", ("array",), "Labels for finding the workflow.", items="string", default=[]),
)

# Bounds on a step's timers: far beyond any real need, and far inside what the
# dispatcher's waits and the kernel's poll can take (a timeout of 1e10 s overflowed them).
MAX_TIMEOUT = 30 * 86_400.0
MAX_RETRY_DELAY = 86_400.0

STEP_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("name", ("string",), "The step's name: letters, digits, `_` and `-`, starting with a letter or `_`. "
              "Other steps refer to it in `dependencies` and `{{ name.output }}`.", required=True,
              pattern=STEP_NAME_PATTERN, special="step_name"),
    FieldSpec("description", ("string",), "What the step does.", default=""),
    FieldSpec("module", ("string",), "The action module: `shell`, `python`, `builtin` or a plugin's.",
              pattern=MODULE_PATTERN, default="builtin", examples=("shell", "python", "builtin")),
    FieldSpec("action", ("string",), "The action within the module: `shell.run`, `python.call`, "
              "`builtin.noop|sleep|echo|fail`, or a plugin's.", pattern=ACTION_PATTERN, default="noop",
              examples=("run", "call", "noop", "sleep", "echo", "fail")),
    FieldSpec("parameters", ("object",), "The action's parameters; values may reference `{{ params.name }}` "
              "and `{{ step.output }}` of an upstream step.", default={}),
    FieldSpec("dependencies", ("array",), "Names of the steps that must complete before this one starts.",
              items="string", default=[], special="dependencies"),
    FieldSpec("conditions", ("object",), "Run the step only when `when: \"<expression>\"` holds; otherwise it is skipped.",
              default={}, special="conditions"),
    FieldSpec("timeout", ("number", "null"), "Seconds one attempt may run before it is killed (at most 30 days; "
              "leave it out for no limit).", minimum=0, exclusive_minimum=True, maximum=MAX_TIMEOUT, default=None),
    FieldSpec("max_retries", ("integer",), "How many times a failed attempt is retried.", minimum=0, maximum=100, default=0),
    FieldSpec("retry_delay", ("number",), "Seconds before the first retry.", minimum=0, maximum=MAX_RETRY_DELAY,
              default=1.0),
    FieldSpec("retry_backoff", ("number",), "Each further retry waits this many times longer.", minimum=1,
              maximum=1000, default=2.0),
    FieldSpec("retry_max_delay", ("number",), "The longest wait between retries, in seconds.", minimum=0,
              maximum=MAX_RETRY_DELAY, default=300.0),
    FieldSpec("retry_jitter", ("number",), "Random spread of each retry wait, as a fraction (0.1 = ±10%).",
              minimum=0, maximum=1, default=0.1),
    FieldSpec("retry_on_exit_codes", ("array",), "Retry only when the action exits with one of these codes (empty: any failure).",
              items="integer", default=[]),
    FieldSpec("priority", ("string", "integer"), "Scheduling priority (any letter case); critical runs first.",
              enum=tuple(TaskPriority.choices()), casefold=True, default="normal", special="priority"),
    FieldSpec("resources", ("object",), "Resources held while the step runs, e.g. "
              "`{cpu: {cores: 2}, memory: {gb: 4, enforce: true}, deploy_lock: {}}`.", default={}, special="resources"),
    FieldSpec("continue_on_failure", ("boolean",), "When the step fails, still run the steps that depend on it.", default=False),
)

PARAM_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("default", ("string", "integer", "number", "boolean", "array", "object", "null"),
              "The value used when the run does not give one."),
    FieldSpec("type", ("string",), "The value's type; run-time values given as text are converted to it.",
              enum=PARAM_TYPES, default="any"),
    FieldSpec("description", ("string",), "What the parameter means.", default=""),
    FieldSpec("required", ("boolean",), "The run must give a value (a required parameter has no default).", default=False),
    FieldSpec("choices", ("array",), "The only values allowed.", default=[]),
)

_PARAM_TYPE_SCHEMA = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "list": {"type": "array"},
    "object": {"type": "object"},
    "any": {},
}


def _field_schema(spec: FieldSpec) -> dict[str, Any]:
    schema: dict[str, Any] = {"description": spec.description}
    types = list(spec.types)
    if spec.special == "priority":
        # Names in the three usual spellings (editors complete them) or the number 0-4.
        names = [*spec.enum, *(n.upper() for n in spec.enum), *(n.capitalize() for n in spec.enum)]
        schema["anyOf"] = [
            {"type": "string", "enum": names},
            {"type": "integer", "minimum": 0, "maximum": len(spec.enum) - 1},
        ]
    else:
        schema["type"] = types[0] if len(types) == 1 else types
        if spec.enum:
            schema["enum"] = list(spec.enum)
    if spec.pattern:
        schema["pattern"] = spec.pattern
    if spec.items:
        schema["items"] = {"type": spec.items}
    if spec.minimum is not None:
        schema["exclusiveMinimum" if spec.exclusive_minimum else "minimum"] = spec.minimum
    if spec.maximum is not None:
        schema["maximum"] = spec.maximum
    if spec.has_default:
        schema["default"] = spec.default
    if spec.examples:
        schema["examples"] = list(spec.examples)
    return schema


def _object_schema(fields: tuple[FieldSpec, ...], description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "additionalProperties": False,
        "required": [f.name for f in fields if f.required],
        "properties": {f.name: _field_schema(f) for f in fields},
    }


def workflow_json_schema() -> dict[str, Any]:
    """Return the JSON Schema (Draft 2020-12) of a workflow file.

    Built from the same field tables the validator uses. The validator checks more
    than a schema can express (that dependencies name real steps, cycles, references,
    known actions), so a file can pass the schema and still be reported invalid.
    """
    step = _object_schema(STEP_FIELDS, "One step: an action, its parameters, and what it waits for.")
    step["properties"]["dependencies"]["uniqueItems"] = True
    step["properties"]["dependencies"]["items"] = {"$ref": "#/$defs/stepName"}
    step["properties"]["name"] = {"$ref": "#/$defs/stepName", "description": step["properties"]["name"]["description"]}
    step["properties"]["resources"] |= {
        "propertyNames": {"pattern": RESOURCE_NAME_PATTERN},
        "additionalProperties": {"$ref": "#/$defs/resourceAmount"},
    }
    step["properties"]["conditions"] |= {
        "properties": {"when": {"type": "string", "description": "An expression such as "
                                "`{{ check.output }} == 'ok' and {{ params.n }} > 2`."}},
    }
    param = _object_schema(PARAM_FIELDS, "A parameter in full form.")
    workflow = _object_schema(WORKFLOW_FIELDS, "An orchtui workflow: a DAG of steps plus its parameters.")
    workflow["properties"]["steps"] |= {"minItems": 1, "items": {"$ref": "#/$defs/step"}}
    workflow["properties"]["params"] |= {
        "propertyNames": {"pattern": PARAM_NAME_PATTERN},
        "additionalProperties": {
            "description": "A default value (shorthand) or the parameter in full form.",
            "anyOf": [
                {"$ref": "#/$defs/param"},
                {"type": ["string", "integer", "number", "boolean", "array", "null"]},
            ],
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "orchtui workflow",
        **workflow,
        "$defs": {
            "step": step,
            "param": param,
            "stepName": {
                "type": "string",
                "pattern": STEP_NAME_PATTERN,
                "not": {"enum": sorted(RESERVED_STEP_NAMES)},
                "description": "A step name (not a reserved word such as `params`).",
            },
            "resourceAmount": {
                "type": ["object", "null"],
                "description": "Units of the resource, e.g. `{cores: 2}`, `{gb: 4, enforce: true}`; `{}` for a lock.",
                "properties": {"enforce": {"type": "boolean", "description": "Enforce a memory amount as a hard limit."}},
                "additionalProperties": {"type": "number", "minimum": 0},
            },
        },
    }
