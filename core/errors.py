"""The exception hierarchy and the spec-002 error dict.

Every error orchtui raises on purpose is an ``OrchestrationError``. Each carries a
one-sentence message, a stable ``error_code``, ``details`` and ``suggestions``, so the
boundaries (CLI ``--json``, the MCP server) can turn it into the spec-002 error dict
with :func:`error_dict` and a person sees one clear sentence instead of a traceback.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .text import plural
__all__ = [
    "OrchestrationError",
    "WorkflowExecutionError",
    "WorkflowNotFoundError",
    "WorkflowValidationError",
    "ValidationProblem",
    "TaskExecutionError",
    "ResourceAllocationError",
    "ProjectManagementError",
    "DAGValidationError",
    "CycleDetectedError",
    "StoreError",
    "ConfigError",
    "error_dict",
]


class OrchestrationError(Exception):
    """Base of every orchtui error: a message plus code, details and suggestions."""

    error_code: str = "ORCHESTRATION_ERROR"

    def __init__(
        self,
        message: str,
        *,
        error_code: str | None = None,
        details: dict[str, Any] | None = None,
        suggestions: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if error_code:
            self.error_code = error_code
        self.details: dict[str, Any] = dict(details or {})
        self.suggestions: list[str] = list(suggestions or [])

    def to_error_dict(self) -> dict[str, Any]:
        """Return the spec-002 error response for this error."""
        return {
            "success": False,
            "error": self.message,
            "error_type": type(self).__name__,
            "error_code": self.error_code,
            "details": self.details,
            "suggestions": self.suggestions,
        }


class WorkflowExecutionError(OrchestrationError):
    error_code = "WORKFLOW_EXECUTION_ERROR"


class WorkflowNotFoundError(WorkflowExecutionError, LookupError):
    error_code = "WORKFLOW_NOT_FOUND"


class TaskExecutionError(OrchestrationError):
    error_code = "TASK_EXECUTION_ERROR"


class ResourceAllocationError(OrchestrationError):
    error_code = "RESOURCE_ALLOCATION_ERROR"


class ProjectManagementError(OrchestrationError):
    error_code = "PROJECT_MANAGEMENT_ERROR"


class DAGValidationError(OrchestrationError):
    error_code = "DAG_VALIDATION_ERROR"


class CycleDetectedError(DAGValidationError):
    """A dependency cycle; ``cycle`` is the path, first node repeated at the end."""

    error_code = "CYCLE_DETECTED"

    def __init__(self, cycle: list[str], message: str | None = None, **kwargs: Any) -> None:
        self.cycle = list(cycle)
        text = message or f"dependency cycle: {' -> '.join(self.cycle)}"
        kwargs.setdefault("details", {"cycle": self.cycle})
        kwargs.setdefault("suggestions", ["remove one of the dependencies on the cycle"])
        super().__init__(text, **kwargs)


class StoreError(OrchestrationError):
    error_code = "STORE_ERROR"


class ConfigError(OrchestrationError):
    error_code = "CONFIG_ERROR"


@dataclasses.dataclass(slots=True)
class ValidationProblem:
    """One problem found in a workflow file, located as precisely as known."""

    message: str
    file: str | None = None
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based
    path: str = ""  # where in the document, e.g. "steps[2].dependencies[0]"
    hint: str = ""

    @property
    def location(self) -> str:
        """``file:line:col`` with whatever parts are known ("<string>" for no file)."""
        where = self.file or "<string>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return where

    def __str__(self) -> str:
        # A problem with no file and no line (a bad -p value) has no location worth showing.
        located = self.file is not None or self.line is not None
        text = f"{self.location}: {self.message}" if located else self.message
        if self.path:
            text += f" (at {self.path})"
        if self.hint:
            text += f"; {self.hint}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"location": self.location}


class WorkflowValidationError(DAGValidationError):
    """A workflow definition is invalid; ``problems`` lists every problem found."""

    error_code = "WORKFLOW_INVALID"

    def __init__(self, problems: list[ValidationProblem], message: str | None = None) -> None:
        self.problems = list(problems)
        if message is None:
            first = str(self.problems[0]) if self.problems else "workflow is invalid"
            more = len(self.problems) - 1
            message = first + (f" (and {plural(more, 'more problem')})" if more > 0 else "")
        super().__init__(
            message,
            details={"problems": [p.to_dict() for p in self.problems]},
            suggestions=[p.hint for p in self.problems if p.hint],
        )


def error_dict(exc: BaseException, *, error_code: str | None = None) -> dict[str, Any]:
    """Return the spec-002 error dict for any exception.

    Our own errors keep their code, details and suggestions; anything else is reported
    as ``INTERNAL_ERROR`` with its type name, so a boundary never has to re-raise.
    """
    if isinstance(exc, OrchestrationError):
        data = exc.to_error_dict()
        if error_code:
            data["error_code"] = error_code
        return data
    return {
        "success": False,
        "error": str(exc) or type(exc).__name__,
        "error_type": type(exc).__name__,
        "error_code": error_code or ("INVALID_ARGUMENT" if isinstance(exc, (ValueError, TypeError, KeyError)) else "INTERNAL_ERROR"),
        "details": {},
        "suggestions": [],
    }
