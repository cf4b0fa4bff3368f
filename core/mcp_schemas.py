"""The MCP tools' argument schemas, and the small JSON Schema checker that enforces them.

Every tool of :class:`~core.mcp_tools.OrchestrationMCPTools` is described here once:
its name, what it does (the text an AI agent reads to choose it) and the JSON Schema of
its arguments. The same schema is published to MCP clients and checked before a tool
runs, so an agent's mistake comes back as one sentence naming the argument.

The checker covers the keywords these schemas use (``type``, ``properties``,
``required``, ``additionalProperties``, ``items``, ``enum``, ``pattern``, ``minimum``,
``maximum``, ``minLength``, ``maxLength``, ``minItems``, ``maxItems``). It is ours, not
``jsonschema``'s, so the core needs no extra dependency; workflow definitions inside
the arguments are validated in depth by :mod:`core.workflow_file` afterwards.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from .models import TaskPriority, WorkflowStatus
from .text import did_you_mean

__all__ = ["ToolSpec", "TOOL_SPECS", "RESULT_SCHEMA", "schema_problem"]

_NAME = {"type": "string", "minLength": 1, "maxLength": 128}
_RUN_ID = {"type": "string", "minLength": 1, "maxLength": 128,
           "description": "A run id as returned by execute_workflow (a unique prefix is enough)."}
_WAIT = {"type": "boolean", "default": True,
         "description": "Wait for the run to end (default). false: return the run_id at once; poll get_run_status."}
_WAIT_SECONDS = {"type": "number", "minimum": 0, "maximum": 86400,
                 "description": "With wait: stop waiting after this many seconds and return the run still running."}
_PARAMS = {"type": "object", "default": {},
           "description": "Workflow parameters by name; they fill {{ params.name }} in the steps."}
_STEPS = {
    "type": "array",
    "minItems": 1,
    "maxItems": 500,
    "description": (
        "The steps, in the workflow file format: each an object with name, module, action, parameters, "
        "dependencies (step names), and optionally priority, timeout, max_retries, conditions, resources, "
        "continue_on_failure. Modules: builtin (noop, echo, sleep, fail); shell (run) and python (call) "
        "only when the server was started with --allow-shell / --allow-python."
    ),
    "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string", "minLength": 1}}},
}


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


@dataclasses.dataclass(slots=True, frozen=True)
class ToolSpec:
    """One MCP tool: its name, its description for the agent, its arguments' schema."""

    name: str
    description: str
    input_schema: dict[str, Any]
    read_only: bool = False

    def definition(self) -> dict[str, Any]:
        """Return the MCP tool definition: ``name``, ``description``, ``inputSchema``, ``annotations``."""
        return {
            "name": self.name,
            "description": self.description,
            "inputSchema": self.input_schema,
            "annotations": {"readOnlyHint": self.read_only},
        }


TOOL_SPECS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "execute_workflow",
        "Run a workflow the server knows (from its workflows directory, a project, or created in this "
        "session) and return the outcome: status, per-step status, outputs and errors. The run is recorded, "
        "so the dashboard and `orchtui runs` show it. Sends progress notifications while it waits.",
        _object({
            "workflow_name": {**_NAME, "description": "The workflow's name (list_workflows shows them)."},
            "parameters": _PARAMS,
            "project": {**_NAME, "description": "Run this project's workflow, in the project's directory."},
            "wait": _WAIT,
            "wait_seconds": _WAIT_SECONDS,
        }, ("workflow_name",)),
    ),
    ToolSpec(
        "create_workflow",
        "Define a workflow (a DAG of steps) for this server session; run it with execute_workflow. "
        "The whole definition is validated first: names, dependencies, cycles, references, known actions.",
        _object({
            "name": {**_NAME, "description": "The workflow's name: letters, digits, ' ', '_', '.', '-'."},
            "steps": _STEPS,
            "description": {"type": "string", "maxLength": 2000, "default": ""},
            "params": {"type": "object", "default": {},
                       "description": "Parameters the workflow accepts: name -> default, or name -> "
                                      "{default, type, description, required, choices}."},
        }, ("name", "steps")),
    ),
    ToolSpec(
        "list_workflows",
        "List the workflows execute_workflow can run: name, description, steps, parameters and where each "
        "comes from; plus each project's workflows.",
        _object({}),
        read_only=True,
    ),
    ToolSpec(
        "create_project",
        "Create a project directory from a template (src, tests, docs, workflows, README) and register it.",
        _object({
            "name": {**_NAME, "description": "The project's name, also its directory name."},
            "template": {**_NAME, "description": "The template: ai_analysis, web_application, data_pipeline, "
                                                 "ml_model, documentation, research or custom (default)."},
            "description": {"type": "string", "maxLength": 2000, "default": ""},
            "path": {"type": "string", "minLength": 1, "maxLength": 1024,
                     "description": "Where to create it, inside the server's working directory "
                                    "(default: the projects directory)."},
            "author": {"type": "string", "maxLength": 200, "default": ""},
            "tags": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 64}, "maxItems": 50},
        }, ("name",)),
    ),
    ToolSpec(
        "list_projects",
        "List the registered projects with their status, type, path and workflows.",
        _object({"include_archived": {"type": "boolean", "default": False}}),
        read_only=True,
    ),
    ToolSpec(
        "execute_task",
        "Run one action as a single-step run (recorded like any run) and return its output.",
        _object({
            "name": {**_NAME, "description": "The task's name (a step name: letters, digits, '_', '-')."},
            "module": {**_NAME, "description": "builtin; shell or python only when the server allows them."},
            "action": {**_NAME, "description": "The action, e.g. echo, sleep, noop, fail (builtin)."},
            "parameters": {"type": "object", "default": {}, "description": "The action's parameters."},
            "priority": {"type": "string", "enum": TaskPriority.choices(), "default": "normal"},
            "timeout": {"type": "number", "minimum": 0.001, "maximum": 86400,
                        "description": "Seconds the task may run before it is killed."},
            "max_retries": {"type": "integer", "minimum": 0, "maximum": 10, "default": 0},
            "wait": _WAIT,
            "wait_seconds": _WAIT_SECONDS,
        }, ("name", "module", "action")),
    ),
    ToolSpec(
        "get_system_status",
        "Report the orchestrator's status: workflows, running runs, task counts, projects, resource usage, "
        "recent runs and what this server allows.",
        _object({}),
        read_only=True,
    ),
    ToolSpec(
        "get_health_status",
        "Report component health (healthy, degraded or unhealthy), uptime and error counts.",
        _object({}),
        read_only=True,
    ),
    ToolSpec(
        "allocate_resources",
        "Reserve resources for a user, all or nothing, e.g. {\"cpu\": {\"cores\": 2}, \"memory\": {\"gb\": 4}}; "
        "with release: true, give back everything that user holds. Reservations last until released or "
        "until the server stops.",
        _object({
            "user_id": {**_NAME, "description": "Who holds the reservation."},
            "requirements": {"type": "object",
                             "description": "Resource -> amount, e.g. {\"cpu\": {\"cores\": 2}, \"gpu\": {\"units\": 1}}."},
            "timeout": {"type": "number", "minimum": 0, "maximum": 60, "default": 0,
                        "description": "Seconds to wait for resources in use to be released (0: try once)."},
            "release": {"type": "boolean", "default": False},
        }, ("user_id",)),
    ),
    ToolSpec(
        "create_complex_workflow",
        "Create a workflow from steps plus a dependency map and parallel groups, then run it (as "
        "execute_workflow). Returns the run outcome, the execution order (levels) and warnings.",
        _object({
            "steps": _STEPS,
            "dependencies": {"type": "object", "default": {},
                             "description": "Step name -> list of step names it waits for (added to its own)."},
            "parallel_groups": {"type": "array", "default": [], "items": {"type": "array", "items": {"type": "string"}},
                                "description": "Groups of steps meant to run side by side (the dependencies win)."},
            "name": {**_NAME, "description": "The workflow's name (default: a generated one)."},
            "description": {"type": "string", "maxLength": 2000, "default": ""},
            "params": _PARAMS,
            "wait": _WAIT,
            "wait_seconds": _WAIT_SECONDS,
        }, ("steps",)),
    ),
    ToolSpec(
        "get_run_status",
        "Read a run from the store: its status, each step's status, attempts, errors and outputs.",
        _object({"run_id": _RUN_ID}, ("run_id",)),
        read_only=True,
    ),
    ToolSpec(
        "get_step_logs",
        "Read the end of a step's log (its stdout and stderr) from a run.",
        _object({
            "run_id": _RUN_ID,
            "step": {**_NAME, "description": "The step's name."},
            "tail_lines": {"type": "integer", "minimum": 1, "maximum": 5000, "default": 100},
            "attempt": {"type": "integer", "minimum": 1, "description": "Which attempt (default: the latest)."},
        }, ("run_id", "step")),
        read_only=True,
    ),
    ToolSpec(
        "cancel_run",
        "Cancel a run started by this server: running steps are killed, the others do not start.",
        _object({"run_id": _RUN_ID}, ("run_id",)),
    ),
    ToolSpec(
        "list_runs",
        "List recent runs from the store, newest first, optionally of one workflow or in one status.",
        _object({
            "workflow": {**_NAME, "description": "Only runs of this workflow."},
            "status": {"type": "string", "enum": [s.value for s in WorkflowStatus]},
            "limit": {"type": "integer", "minimum": 1, "maximum": 200, "default": 20},
        }),
        read_only=True,
    ),
)

# What every tool returns: the spec's success dict, or the spec-002 error dict.
RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "success": {"type": "boolean"},
        "error": {"type": "string"},
        "error_type": {"type": "string"},
        "error_code": {"type": "string"},
        "details": {"type": "object"},
        "suggestions": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["success"],
}

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list, tuple),
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
    "null": (type(None),),
}


def _type_ok(value: Any, wanted: str) -> bool:
    if wanted in ("integer", "number") and isinstance(value, bool):
        return False  # True is an int to Python, never a number to JSON
    if wanted == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES[wanted])


def _where(path: str) -> str:
    return f"argument '{path}'" if path else "the arguments"


def _non_finite(value: Any) -> tuple[str, float] | None:
    """Return (path, number) of the first NaN or infinity inside ``value``, or None."""
    pending: list[tuple[str, Any]] = [("", value)]
    while pending:
        path, item = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return path, item
        if isinstance(item, dict):
            pending.extend((f"{path}.{key}" if path else str(key), inner) for key, inner in item.items())
        elif isinstance(item, (list, tuple)):
            pending.extend((f"{path}[{index}]", inner) for index, inner in enumerate(item))
    return None


def schema_problem(schema: dict[str, Any], value: Any, path: str = "") -> str | None:
    """Return the first way ``value`` breaks ``schema`` as one sentence, or None if it fits.

    ``path`` names ``value`` in the message (``steps[2].name``); empty for the whole
    argument object, which is also searched for NaN and infinities anywhere inside (JSON
    has none, some clients send them, and no comparison with ``minimum`` catches NaN).
    """
    if not path:
        found = _non_finite(value)
        if found is not None:
            where, number = found
            return f"{_where(where)} must be a finite number, got {number}"
    types = schema.get("type")
    if types is not None:
        allowed = [types] if isinstance(types, str) else list(types)
        if not any(_type_ok(value, t) for t in allowed):
            return f"{_where(path)} must be {' or '.join(allowed)}, got {_json_type(value)}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{_where(path)} must be one of {', '.join(map(str, schema['enum']))}, got {value!r}"
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            return f"{_where(path)} must not be empty" if schema["minLength"] == 1 else \
                f"{_where(path)} must be at least {schema['minLength']} characters"
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            return f"{_where(path)} is {len(value)} characters long; the limit is {schema['maxLength']}"
        if "pattern" in schema and not re.search(schema["pattern"], value):
            return f"{_where(path)} {value!r} does not match {schema['pattern']}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            return f"{_where(path)} must be at least {schema['minimum']}, got {value}"
        if "maximum" in schema and value > schema["maximum"]:
            return f"{_where(path)} must be at most {schema['maximum']}, got {value}"
    if isinstance(value, (list, tuple)):
        if len(value) < schema.get("minItems", 0):
            return f"{_where(path)} needs at least {schema['minItems']} item(s)"
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            return f"{_where(path)} has {len(value)} items; the limit is {schema['maxItems']}"
        if "items" in schema:
            for index, item in enumerate(value):
                problem = schema_problem(schema["items"], item, f"{path}[{index}]")
                if problem:
                    return problem
    if isinstance(value, dict):
        return _object_problem(schema, value, path)
    return None


def _object_problem(schema: dict[str, Any], value: dict[str, Any], path: str) -> str | None:
    properties: dict[str, Any] = schema.get("properties", {})
    for key in schema.get("required", ()):
        if key not in value:
            return f"argument '{f'{path}.{key}' if path else key}' is required"
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if not isinstance(key, str):
            return f"{_where(path)} has a key that is not a string: {key!r}"
        child = f"{path}.{key}" if path else key
        if key in properties:
            problem = schema_problem(properties[key], item, child)
        elif extra is False:
            hint = did_you_mean(key, properties, otherwise=f"known: {', '.join(properties) or 'none'}")
            return f"argument '{child}' is not accepted ({hint})"
        elif isinstance(extra, dict):
            problem = schema_problem(extra, item, child)
        else:
            problem = None
        if problem:
            return problem
    return None


def _json_type(value: Any) -> str:
    for name in ("boolean", "null", "integer", "number", "string", "array", "object"):
        if _type_ok(value, name):
            return name if name != "integer" or not isinstance(value, float) else "number"
    return type(value).__name__
