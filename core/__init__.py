"""orchtui's orchestration core: workflows, scheduling, resources, runs, projects.

Names are imported lazily on first use, so ``import core`` stays cheap for the CLI and
importing one part never drags in the rest (the dashboard and Dask are not imported
from here at all). ``from core import WorkflowManager`` works as usual.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    **{name: "core.models" for name in (
        "TaskPriority", "TaskStatus", "WorkflowStatus", "ProjectStatus", "ProjectType",
        "ResourceType", "ResourceStatus", "OrchestrationMode", "RetryPolicy", "WorkflowParam",
        "WorkflowStep", "Workflow", "Task", "TaskResult", "ExecutionResult", "ResourceLimits",
        "Resource", "ResourceAllocation", "ResourceUsage", "Project", "WorkflowExecution",
        "OrchestrationSession", "Invocation", "TaskTransition",
    )},
    **{name: "core.errors" for name in (
        "OrchestrationError", "WorkflowExecutionError", "WorkflowNotFoundError",
        "WorkflowValidationError", "ValidationProblem", "TaskExecutionError",
        "ResourceAllocationError", "ProjectManagementError", "DAGValidationError",
        "CycleDetectedError", "StoreError", "ConfigError", "error_dict",
    )},
    "EventBus": "core.events",
    "EventType": "core.events",
    "Settings": "core.config",
    "load_settings": "core.config",
    "WorkflowDAG": "core.workflow_dag",
    "load_workflow": "core.workflow_file",
    "ResourceManager": "core.resource_manager",
    "TaskOrchestrator": "core.task_orchestrator",
    "RunSpec": "core.task_orchestrator",
    "RunHandle": "core.workflow_run",
    "action": "core.actions",
    "ActionContext": "core.actions",
    "ActionError": "core.actions",
    "workflow_from_dict": "core.workflow_file",
    "dump_workflow": "core.workflow_file",
    "ParallelExecutor": "core.parallel_executor",
    "WorkflowManager": "core.workflow_manager",
    "OrchestrationEngine": "core.orchestration_engine",
    "ProjectManager": "core.project_manager",
    "DocumentationGenerator": "core.documentation_generator",
    "OrchestrationMCPTools": "core.mcp_tools",
    "Store": "core.store",
    **{name: "core.singletons" for name in (
        "get_orchestration_engine", "get_workflow_manager", "get_task_orchestrator",
        "get_resource_manager", "get_project_manager", "get_mcp_tools", "get_store",
        "get_event_bus", "reset_singletons",
    )},
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
