"""Records and enums shared by every part of orchtui.

Every record is a ``dataclass(slots=True)`` with a lossless ``to_dict()`` /
``from_dict()`` pair, so a record survives a trip through JSON or YAML unchanged.
Enum values are lowercase strings (``TaskPriority`` is an ``IntEnum`` so queues can
order by it; it serialises as its lowercase name). Every enum accepts its member
names and values case-insensitively, so ``TaskStatus("COMPLETED")`` and
``TaskPriority("high")`` both work.

Timestamps are epoch seconds (``float``); faces turn them into ISO strings.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import random
import re
import time
import types
import typing
import uuid
from enum import Enum, IntEnum, StrEnum
from collections.abc import Callable
from typing import Any, ClassVar, Self

__all__ = [
    "TaskPriority",
    "TaskStatus",
    "WorkflowStatus",
    "ProjectStatus",
    "ProjectType",
    "ResourceType",
    "ResourceStatus",
    "OrchestrationMode",
    "Record",
    "record_data_problems",
    "RetryPolicy",
    "WorkflowParam",
    "WorkflowStep",
    "Workflow",
    "Task",
    "TaskResult",
    "ExecutionResult",
    "ResourceLimits",
    "Resource",
    "ResourceAllocation",
    "ResourceUsage",
    "Project",
    "WorkflowExecution",
    "OrchestrationSession",
    "new_id",
    "Invocation",
    "TaskTransition",
]


def new_id(prefix: str = "") -> str:
    """Return a fresh random identifier, optionally prefixed (``run-3f2a…``)."""
    ident = uuid.uuid4().hex[:12]
    return f"{prefix}-{ident}" if prefix else ident


# --------------------------------------------------------------------------- enums


class _LowerStrEnum(StrEnum):
    """A string enum whose lookup ignores case and accepts member names."""

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        if isinstance(value, str):
            wanted = value.strip().lower()
            for member in cls:
                if member.value == wanted or member.name.lower() == wanted:
                    return member
        return None

    @classmethod
    def choices(cls) -> list[str]:
        """Return the accepted serialised values, in declaration order."""
        return [m.value for m in cls]


class TaskPriority(IntEnum):
    """Scheduling priority; a lower number runs first."""

    CRITICAL = 0
    HIGH = 1
    NORMAL = 2
    LOW = 3
    BACKGROUND = 4

    @classmethod
    def _missing_(cls, value: object) -> TaskPriority | None:
        if isinstance(value, str):
            wanted = value.strip().lower()
            # Older documents spell these differently; accept them on input.
            wanted = {"urgent": "critical", "medium": "normal"}.get(wanted, wanted)
            for member in cls:
                if member.name.lower() == wanted or str(member.value) == wanted:
                    return member
        return None

    @property
    def label(self) -> str:
        """The lowercase name used in files and JSON (``"high"``)."""
        return self.name.lower()

    @classmethod
    def choices(cls) -> list[str]:
        return [m.label for m in cls]


class TaskStatus(_LowerStrEnum):
    PENDING = "pending"
    READY = "ready"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    # A crash left this attempt unfinished (issue 4, crash recovery).
    INTERRUPTED = "interrupted"

    @property
    def is_terminal(self) -> bool:
        """True once the task will not change again without a resume."""
        return self in _TERMINAL_TASK


_TERMINAL_TASK = frozenset(
    {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.SKIPPED, TaskStatus.INTERRUPTED}
)


class WorkflowStatus(_LowerStrEnum):
    DRAFT = "draft"
    READY = "ready"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # The process that owned the run died (issue 4, crash recovery).
    INTERRUPTED = "interrupted"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL_WORKFLOW


# A frozenset: membership hashes once instead of comparing strings member by member
# (this runs on every task transition).
_TERMINAL_WORKFLOW = frozenset(
    {WorkflowStatus.COMPLETED, WorkflowStatus.FAILED, WorkflowStatus.CANCELLED, WorkflowStatus.INTERRUPTED}
)


class ProjectStatus(_LowerStrEnum):
    PLANNING = "planning"
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    ARCHIVED = "archived"
    FAILED = "failed"


class ProjectType(_LowerStrEnum):
    AI_ANALYSIS = "ai_analysis"
    WEB_APPLICATION = "web_application"
    DATA_PIPELINE = "data_pipeline"
    ML_MODEL = "ml_model"
    DOCUMENTATION = "documentation"
    RESEARCH = "research"
    CUSTOM = "custom"


class ResourceType(_LowerStrEnum):
    CPU = "cpu"
    MEMORY = "memory"
    DISK = "disk"
    NETWORK = "network"
    GPU = "gpu"
    FILE = "file"
    DATABASE = "database"
    EXTERNAL_API = "external_api"
    LOCK = "lock"
    QUEUE = "queue"
    CUSTOM = "custom"


class ResourceStatus(_LowerStrEnum):
    AVAILABLE = "available"
    ALLOCATED = "allocated"
    EXHAUSTED = "exhausted"
    MAINTENANCE = "maintenance"
    OFFLINE = "offline"


class OrchestrationMode(_LowerStrEnum):
    SEQUENTIAL = "sequential"
    PARALLEL = "parallel"
    PRIORITY = "priority"
    RESOURCE_AWARE = "resource_aware"


# ----------------------------------------------------------------- serialisation


def _dump(value: Any) -> Any:
    """Turn a record field value into plain JSON/YAML data."""
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, TaskPriority):
        return value.label
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _dump(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_dump(v) for v in value]
    return value


def _load(hint: Any, value: Any) -> Any:
    """Turn plain data back into the type named by ``hint``."""
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(options) == 1:
            return _load(options[0], value)
        for option in options:  # first option that accepts the value wins
            try:
                return _load(option, value)
            except (TypeError, ValueError):
                continue
        return value
    if origin is list:
        (item,) = typing.get_args(hint) or (Any,)
        return [_load(item, v) for v in value]
    if origin is dict:
        args = typing.get_args(hint)
        item = args[1] if len(args) == 2 else Any
        return {k: _load(item, v) for k, v in value.items()}
    if isinstance(hint, type):
        if issubclass(hint, Record):
            return value if isinstance(value, hint) else hint.from_dict(value)
        if issubclass(hint, Enum):
            return hint(value)
        if hint is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
    return value


@functools.cache
def _loader(hint: Any) -> Callable[[Any], Any] | None:
    """Return a function that does what ``_load(hint, value)`` does for a value that is not
    None, or None when that is the value itself.

    ``Record.from_dict`` looks this up once per field type instead of working out the
    type for every value: a 10k-step workflow snapshot loads about five times faster.
    """
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(options) == 1:
            return _loader(options[0])
        return functools.partial(_load, hint)  # several options: tried in turn, as _load does
    if origin is list:
        (item,) = typing.get_args(hint) or (Any,)
        inner = _loader(item)
        if inner is None:
            return list
        return lambda value: [None if v is None else inner(v) for v in value]
    if origin is dict:
        args = typing.get_args(hint)
        inner = _loader(args[1] if len(args) == 2 else Any)
        if inner is None:
            return lambda value: dict(value.items())
        return lambda value: {k: None if v is None else inner(v) for k, v in value.items()}
    if isinstance(hint, type):
        if issubclass(hint, Record):
            return lambda value: value if isinstance(value, hint) else hint.from_dict(value)
        if issubclass(hint, Enum):
            return hint
        if hint is float:
            return lambda value: float(value) if isinstance(value, int) and not isinstance(value, bool) else value
    return None


class Record:
    """Mixin giving a slotted dataclass ``to_dict`` / ``from_dict``.

    ``from_dict`` raises ``ValueError`` naming any key the record does not have, so a
    typo in stored data is never dropped silently.
    """

    __slots__ = ()
    _hints_cache: ClassVar[dict[type, dict[str, Any]]] = {}
    _loaders_cache: ClassVar[dict[type, dict[str, Callable[[Any], Any] | None]]] = {}

    @classmethod
    def _hints(cls) -> dict[str, Any]:
        hints = Record._hints_cache.get(cls)
        if hints is None:
            hints = typing.get_type_hints(cls)
            Record._hints_cache[cls] = hints
        return hints

    def to_dict(self) -> dict[str, Any]:
        """Return the record as plain data (enums as strings, records as dicts)."""
        return {f.name: _dump(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Build the record from ``to_dict()`` output (or hand-written data).

        Raises:
            ValueError: a key is not a field of this record, or a value does not fit.
        """
        if not isinstance(data, dict):
            raise ValueError(f"{cls.__name__} expects a mapping, got {type(data).__name__}")
        loaders = Record._loaders_cache.get(cls)
        if loaders is None:
            hints = cls._hints()
            loaders = {f.name: _loader(hints[f.name]) for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
            Record._loaders_cache[cls] = loaders
        if not loaders.keys() >= data.keys():
            unknown = sorted(set(data) - set(loaders))
            raise ValueError(f"{cls.__name__} has no field(s) {', '.join(map(str, unknown))}")
        kwargs = {}
        for key, value in data.items():
            load = loaders[key]
            kwargs[key] = value if load is None or value is None else load(value)
        return cls(**kwargs)


def record_data_problems(cls: type[Record], data: dict[str, Any]) -> list[tuple[str, str]]:
    """Return ``(field, problem)`` for each field of plain ``data`` that does not fit
    record ``cls``: a field it does not have, or a value, anywhere inside, that is not of
    the field's type ("must be a list of strings; item 2 is null").

    Stricter than :meth:`Record.from_dict`, which trusts its data (what orchtui itself
    wrote): this is for data a person wrote. Values typed ``Any`` must be plain JSON
    data (strings, finite numbers, booleans, null, lists, mappings with string keys),
    since that is where they go. Empty when every field fits.
    """
    hints = cls._hints()
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    problems = []
    for key, value in data.items():
        if key not in fields:
            kind = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", cls.__name__).lower()  # "workflow execution"
            problems.append((str(key), f"is not a field of a {kind}"))
            continue
        problem = _type_problem(hints[key], value)
        if problem is not None:
            problems.append((key, problem))
    return problems


def _describe(hint: Any) -> str:
    """Name the values of type ``hint``: "a string", "a list of strings"."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(hint) if a is not type(None))
    if origin is list:
        (item,) = typing.get_args(hint) or (Any,)
        return "a list" if item is Any else f"a list of {_describe(item).removeprefix('a ').removeprefix('an ')}s"
    if origin is dict:
        args = typing.get_args(hint)
        value = args[1] if len(args) == 2 else Any
        return "a mapping" if value is Any else f"a mapping of names to {_describe(value).removeprefix('a ')}s"
    if isinstance(hint, type) and issubclass(hint, Enum):
        return "one of " + ", ".join(str(m.value) for m in hint)
    return {str: "a string", bool: "true or false", int: "a whole number", float: "a number"}.get(hint, "a value")


def _shown(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "a mapping", list: "a list"}.get(type(value)) or repr(value)[:40]


def _type_problem(hint: Any, value: Any) -> str | None:
    """Return what is wrong with plain ``value`` as a ``hint``, or None when it fits."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        if any(_type_problem(o, value) is None for o in options if o is not type(None)):
            return None
        return f"must be {_describe(hint)}, not {_shown(value)}"
    if hint is Any:
        return _plain_data_problem(value)
    if origin is list:
        if not isinstance(value, list):
            return f"must be {_describe(hint)}, not {_shown(value)}"
        (item,) = typing.get_args(hint) or (Any,)
        for index, element in enumerate(value, 1):
            problem = _type_problem(item, element)
            if problem is not None:
                detail = f"is {_shown(element)}" if problem.startswith("must be ") else problem
                return f"must be {_describe(hint)}; item {index} {detail}"
        return None
    if origin is dict:
        if not isinstance(value, dict):
            return f"must be {_describe(hint)}, not {_shown(value)}"
        args = typing.get_args(hint)
        inner = args[1] if len(args) == 2 else Any
        for key, element in value.items():
            if not isinstance(key, str):
                return f"must have names as keys, not {_shown(key)}"
            problem = _type_problem(inner, element)
            if problem is not None:
                return f"entry {key!r} {problem}"
        return None
    if isinstance(hint, type) and issubclass(hint, Enum):
        try:
            hint(value)
        except (ValueError, TypeError):
            return f"must be {_describe(hint)}, not {_shown(value)}"
        return None
    if hint is float or hint is int:
        if isinstance(value, bool) or not isinstance(value, (int, float) if hint is float else int):
            return f"must be {_describe(hint)}, not {_shown(value)}"
        return None if math.isfinite(value) else f"must be a finite number, not {_shown(value)}"
    if hint is str or hint is bool:
        if isinstance(value, hint):
            return None
        quote = " (quote it to make it a string)" if hint is str and not isinstance(value, (dict, list)) else ""
        return f"must be {_describe(hint)}, not {_shown(value)}{quote}"
    if isinstance(hint, type) and issubclass(hint, Record):
        if not isinstance(value, dict):
            return f"must be a mapping, not {_shown(value)}"
        problems = record_data_problems(hint, value)
        return f"field {problems[0][0]!r} {problems[0][1]}" if problems else None
    return None


def _plain_data_problem(value: Any) -> str | None:
    """Return why ``value`` is not plain JSON data, or None when it is. Iterative: YAML
    aliases may make a deep structure out of a few lines."""
    pending = [value]
    while pending:
        item = pending.pop()
        if item is None or isinstance(item, (str, bool, int)):
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                return f"holds {item!r}, which is not a finite number"
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, dict):
            for key in item:
                if not isinstance(key, str):
                    return f"holds a mapping whose key {_shown(key)} is not a name"
            pending.extend(item.values())
        else:
            return f"holds {_shown(item)}, a {type(item).__name__}, which is not plain data (quote it to make it a string)"
    return None


# ----------------------------------------------------------------------- retries


@dataclasses.dataclass(slots=True, frozen=True)
class RetryPolicy(Record):
    """How a failed attempt is retried: exponential backoff with jitter and a cap."""

    max_retries: int = 0
    delay: float = 1.0
    backoff: float = 2.0
    max_delay: float = 300.0
    jitter: float = 0.1
    retry_on_exit_codes: list[int] = dataclasses.field(default_factory=list)

    def should_retry(self, attempt: int, exit_code: int | None) -> bool:
        """True when attempt number ``attempt`` (1-based) failing earns another try."""
        if attempt > self.max_retries:
            return False
        if self.retry_on_exit_codes and exit_code not in self.retry_on_exit_codes:
            return False
        return True

    def delay_for(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based) before the next.

        ``delay * backoff**(attempt-1)``, capped at ``max_delay``, then spread by
        ``±jitter`` (a fraction) so that many failing tasks do not retry in lockstep.
        """
        try:
            grown = self.delay * (self.backoff ** max(0, attempt - 1))
        except OverflowError:  # backoff 2000 and 100 retries: past any float, so past max_delay
            grown = math.inf
        base = min(self.max_delay, grown)
        if self.jitter and base > 0:
            spread = base * self.jitter
            base += (rng or random).uniform(-spread, spread)
        return max(0.0, min(self.max_delay, base))


def _retry_policy_of(record: WorkflowStep | Task) -> RetryPolicy:
    """The RetryPolicy described by a step's or task's flat retry fields."""
    return RetryPolicy(
        record.max_retries,
        record.retry_delay,
        record.retry_backoff,
        record.retry_max_delay,
        record.retry_jitter,
        list(record.retry_on_exit_codes),
    )


# --------------------------------------------------------------------- workflows


@dataclasses.dataclass(slots=True)
class WorkflowParam(Record):
    """A workflow parameter: its default, type and help text."""

    name: str
    default: Any = None
    type: str = "any"  # string | integer | number | boolean | list | object | any
    description: str = ""
    required: bool = False
    choices: list[Any] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(slots=True)
class WorkflowStep(Record):
    """One step of a workflow: which action it runs, with what, after what."""

    name: str
    module: str = "builtin"
    action: str = "noop"
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    dependencies: list[str] = dataclasses.field(default_factory=list)
    conditions: dict[str, Any] = dataclasses.field(default_factory=dict)
    timeout: float | None = None
    max_retries: int = 0
    retry_delay: float = 1.0
    retry_backoff: float = 2.0
    retry_max_delay: float = 300.0
    retry_jitter: float = 0.1
    retry_on_exit_codes: list[int] = dataclasses.field(default_factory=list)
    priority: TaskPriority = TaskPriority.NORMAL
    resources: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    continue_on_failure: bool = False
    description: str = ""

    @property
    def retry_policy(self) -> RetryPolicy:
        return _retry_policy_of(self)


@dataclasses.dataclass(slots=True)
class Workflow(Record):
    """A named DAG of steps plus its parameters."""

    name: str
    description: str = ""
    version: str = "1.0"
    params: dict[str, WorkflowParam] = dataclasses.field(default_factory=dict)
    steps: list[WorkflowStep] = dataclasses.field(default_factory=list)
    status: WorkflowStatus = WorkflowStatus.DRAFT
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    tags: list[str] = dataclasses.field(default_factory=list)
    source_path: str | None = None

    def step(self, name: str) -> WorkflowStep:
        """Return the step called ``name``; raises ``KeyError`` when there is none."""
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def step_names(self) -> list[str]:
        return [s.name for s in self.steps]

    def param_defaults(self) -> dict[str, Any]:
        """Return ``{param: default}`` for every declared parameter."""
        return {name: p.default for name, p in self.params.items()}


# ------------------------------------------------------------------------- tasks


@dataclasses.dataclass(slots=True)
class TaskResult(Record):
    """What one attempt of a task produced. Supports ``result["success"]``."""

    success: bool
    data: Any = None
    error_message: str = ""
    error_type: str = ""
    execution_time: float = 0.0
    memory_usage: float = 0.0
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    exit_code: int | None = None
    attempt: int = 1
    started_at: float | None = None
    finished_at: float | None = None

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)


@dataclasses.dataclass(slots=True)
class Task(Record):
    """A unit of work for the TaskOrchestrator.

    ``dependencies`` hold task ids (or, for convenience, names of tasks submitted in
    the same run). The dispatcher thread is the only writer of ``status``,
    ``attempts``, ``result`` and the timestamps once the task is submitted.
    """

    name: str
    module: str = "builtin"
    action: str = "noop"
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    dependencies: list[str] = dataclasses.field(default_factory=list)
    priority: TaskPriority = TaskPriority.NORMAL
    status: TaskStatus = TaskStatus.PENDING
    id: str = dataclasses.field(default_factory=new_id)
    timeout: float | None = None
    max_retries: int = 0
    retry_delay: float = 1.0
    retry_backoff: float = 2.0
    retry_max_delay: float = 300.0
    retry_jitter: float = 0.1
    retry_on_exit_codes: list[int] = dataclasses.field(default_factory=list)
    resources: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    conditions: dict[str, Any] = dataclasses.field(default_factory=dict)
    continue_on_failure: bool = False
    run_id: str | None = None
    working_dir: str | None = None
    created_at: float = dataclasses.field(default_factory=time.time)
    started_at: float | None = None
    completed_at: float | None = None
    attempts: int = 0
    result: TaskResult | None = None
    error: str = ""
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def retry_policy(self) -> RetryPolicy:
        return _retry_policy_of(self)

    @classmethod
    def from_step(cls, step: WorkflowStep, *, run_id: str | None = None, task_id: str | None = None) -> Task:
        """Build the task that runs ``step`` (dependencies stay step names)."""
        return cls(
            name=step.name,
            module=step.module,
            action=step.action,
            parameters=dict(step.parameters),
            dependencies=list(step.dependencies),
            priority=step.priority,
            id=task_id or new_id(),
            timeout=step.timeout,
            max_retries=step.max_retries,
            retry_delay=step.retry_delay,
            retry_backoff=step.retry_backoff,
            retry_max_delay=step.retry_max_delay,
            retry_jitter=step.retry_jitter,
            retry_on_exit_codes=list(step.retry_on_exit_codes),
            resources={k: dict(v) for k, v in step.resources.items()},
            conditions=dict(step.conditions),
            continue_on_failure=step.continue_on_failure,
            run_id=run_id,
        )


@dataclasses.dataclass(slots=True)
class ExecutionResult(Record):
    """One task's outcome from ``ParallelExecutor.execute_tasks``."""

    task_name: str
    success: bool
    result: Any = None
    error: str = ""
    execution_time: float = 0.0
    start_time: float | None = None
    end_time: float | None = None
    status: TaskStatus = TaskStatus.COMPLETED


# --------------------------------------------------------------------- resources


@dataclasses.dataclass(slots=True)
class ResourceLimits(Record):
    """Limits on one resource.

    ``burst_capacity`` is a fraction: a resource of capacity 4 with burst 0.5 may hand
    out up to 6 units; that is its hard ceiling, never exceeded.
    """

    max_concurrent_users: int | None = None
    burst_capacity: float = 0.0
    max_allocation_time: float | None = None  # seconds before an allocation expires


@dataclasses.dataclass(slots=True)
class Resource(Record):
    """Something steps can hold: cores, GB of memory, a lock, an API quota."""

    id: str
    name: str = ""
    type: ResourceType = ResourceType.CUSTOM
    status: ResourceStatus = ResourceStatus.AVAILABLE
    capacity: dict[str, float] = dataclasses.field(default_factory=dict)
    allocated: dict[str, float] = dataclasses.field(default_factory=dict)
    limits: ResourceLimits = dataclasses.field(default_factory=ResourceLimits)
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(slots=True)
class ResourceAllocation(Record):
    """A grant of ``amount`` (unit → quantity) of one resource to one requester."""

    id: str
    resource_id: str
    requester_id: str
    amount: dict[str, float] = dataclasses.field(default_factory=dict)
    allocated_at: float = dataclasses.field(default_factory=time.time)
    expires_at: float | None = None


@dataclasses.dataclass(slots=True)
class ResourceUsage(Record):
    """Usage figures of one resource, per unit."""

    resource_id: str
    capacity: dict[str, float] = dataclasses.field(default_factory=dict)
    current: dict[str, float] = dataclasses.field(default_factory=dict)
    peak: dict[str, float] = dataclasses.field(default_factory=dict)
    available: dict[str, float] = dataclasses.field(default_factory=dict)
    users: int = 0


# ---------------------------------------------------------------------- projects


@dataclasses.dataclass(slots=True)
class Project(Record):
    """A project directory made from a template, with its workflows and milestones."""

    name: str
    description: str = ""
    type: ProjectType = ProjectType.CUSTOM
    path: str = ""
    status: ProjectStatus = ProjectStatus.PLANNING
    workflows: list[str] = dataclasses.field(default_factory=list)
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    template: str = "custom"
    author: str = ""
    tags: list[str] = dataclasses.field(default_factory=list)
    version: str = "0.1.0"
    created_at: float = dataclasses.field(default_factory=time.time)
    updated_at: float = dataclasses.field(default_factory=time.time)
    milestones: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    required_modules: list[str] = dataclasses.field(default_factory=list)
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)


# -------------------------------------------------------------------- executions


@dataclasses.dataclass(slots=True)
class WorkflowExecution(Record):
    """The outcome of one workflow run.

    ``to_dict()`` carries the spec-002 keys (success, session_id, executed_steps,
    failed_steps, results, execution_time, error) and ``execution["success"]`` works.
    """

    run_id: str
    workflow_name: str
    status: WorkflowStatus = WorkflowStatus.RUNNING
    session_id: str | None = None
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    step_status: dict[str, TaskStatus] = dataclasses.field(default_factory=dict)
    results: dict[str, Any] = dataclasses.field(default_factory=dict)
    errors: dict[str, str] = dataclasses.field(default_factory=dict)
    execution_time: float = 0.0
    error: str = ""
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def success(self) -> bool:
        return self.status == WorkflowStatus.COMPLETED

    def _steps_in(self, *states: TaskStatus) -> list[str]:
        return [name for name, st in self.step_status.items() if st in states]

    @property
    def executed_steps(self) -> int:
        """Number of steps that ran to completion."""
        return len(self._steps_in(TaskStatus.COMPLETED))

    @property
    def failed_steps(self) -> list[str]:
        return self._steps_in(TaskStatus.FAILED)

    @property
    def skipped_steps(self) -> list[str]:
        return self._steps_in(TaskStatus.SKIPPED)

    @property
    def cancelled_steps(self) -> list[str]:
        return self._steps_in(TaskStatus.CANCELLED, TaskStatus.INTERRUPTED)

    def to_dict(self) -> dict[str, Any]:
        data = Record.to_dict(self)
        data.update(
            success=self.success,
            executed_steps=self.executed_steps,
            failed_steps=self.failed_steps,
            skipped_steps=self.skipped_steps,
            cancelled_steps=self.cancelled_steps,
        )
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkflowExecution:
        derived = {"success", "executed_steps", "failed_steps", "skipped_steps", "cancelled_steps"}
        return super(WorkflowExecution, cls).from_dict({k: v for k, v in data.items() if k not in derived})

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)


@dataclasses.dataclass(slots=True)
class OrchestrationSession(Record):
    """A context for related runs: a mode, limits, a timeout and an owner."""

    id: str = dataclasses.field(default_factory=lambda: new_id("session"))
    user_id: str = "system"
    name: str = ""
    mode: OrchestrationMode = OrchestrationMode.PARALLEL
    max_parallel_tasks: int = 4
    max_parallel_workflows: int = 2
    timeout_seconds: float | None = None
    resource_requirements: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    created_at: float = dataclasses.field(default_factory=time.time)
    closed_at: float | None = None
    status: str = "active"  # active | closed | expired
    run_ids: list[str] = dataclasses.field(default_factory=list)


# ---------------------------------------------------------- execution plumbing


@dataclasses.dataclass(slots=True)
class Invocation(Record):
    """Everything an executor backend needs to run one attempt of one task.

    Plain, picklable data (parameters already resolved), so the same record runs on a
    thread, in a child process or on a Dask worker through ``core.actions.invoke``.
    ``deadline`` is an absolute ``time.monotonic()`` value on the submitting machine;
    backends that run elsewhere use ``timeout`` (seconds from their own start).
    """

    task_id: str
    task_name: str
    module: str
    action: str
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    attempt: int = 1
    run_id: str | None = None
    timeout: float | None = None
    log_path: str | None = None
    log_cap_bytes: int = 5 * 1024 * 1024
    working_dir: str | None = None
    env: dict[str, str] | None = None
    memory_limit_bytes: int | None = None
    kill_grace: float = 5.0
    # Requirements as declared on the step; a cluster backend maps them onto its own
    # worker resources (the local ResourceManager has already granted them).
    resources: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(slots=True)
class TaskTransition(Record):
    """One status change of one task, as the dispatcher publishes it.

    Listeners (workflow runs, the store recorder) receive these on the dispatcher
    thread and must only copy them onto their own queue.
    """

    task_id: str
    name: str
    status: TaskStatus
    at: float
    run_id: str | None = None
    attempt: int = 0
    result: TaskResult | None = None
    error: str = ""
    log_path: str | None = None
    retry_at: float | None = None  # wall-clock time of the next attempt (status PENDING after a failure)
