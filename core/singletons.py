"""The process-wide instances behind spec 000's ``get_*()`` factory functions.

Each is created on first use, exactly once even when several threads ask at the same
time, and shares the others: one EventBus, one ResourceManager, one TaskOrchestrator,
one WorkflowManager and one OrchestrationEngine per process. When the run store is
available, runs started through these instances are recorded in it, so the dashboard,
the CLI and the MCP server see each other's runs. ``reset_singletons()`` shuts them
down and forgets them (tests, or after changing ``ORCHTUI_*`` variables).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .events import EventBus

if TYPE_CHECKING:
    from .orchestration_engine import OrchestrationEngine
    from .resource_manager import ResourceManager
    from .task_orchestrator import TaskOrchestrator
    from .workflow_manager import WorkflowManager

__all__ = [
    "get_orchestration_engine",
    "get_workflow_manager",
    "get_task_orchestrator",
    "get_resource_manager",
    "get_project_manager",
    "get_mcp_tools",
    "get_store",
    "get_event_bus",
    "reset_singletons",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

# RLock: building one instance asks for the others from the same thread.
_lock = threading.RLock()
_instances: dict[str, Any] = {}


def _get(key: str, build: Callable[[], T]) -> T:
    instance = _instances.get(key)
    if instance is not None:
        return instance
    with _lock:
        instance = _instances.get(key)
        if instance is None:
            instance = build()
            _instances[key] = instance
        return instance


def get_event_bus() -> EventBus:
    """Return the EventBus every singleton emits on."""
    return _get("events", EventBus)


def get_resource_manager() -> ResourceManager:
    """Return the process's ResourceManager (machine resources plus the resource config)."""
    from .resource_manager import ResourceManager

    return _get("resources", ResourceManager)


def get_task_orchestrator() -> TaskOrchestrator:
    """Return the process's TaskOrchestrator (``max_workers`` from the settings)."""

    def build() -> TaskOrchestrator:
        from .config import load_settings
        from .task_orchestrator import TaskOrchestrator

        return TaskOrchestrator(load_settings().max_workers, resource_manager=get_resource_manager(),
                                events=get_event_bus())

    return _get("orchestrator", build)


def get_store() -> Any:
    """Return the process's run store (SQLite under the state directory).

    Raises
    ------
    StoreError
        The database cannot be opened (corrupt, read-only, newer schema).
    """

    def build() -> Any:
        from .store import Store

        return Store.open()

    return _get("store", build)


def _recorder() -> list[Any]:
    """The store's run recorder as a one-item observer list, or none when the store fails.

    A store that cannot open (read-only directory, newer schema) must not stop
    workflows from running in memory; the reason is logged.
    """
    from .errors import OrchestrationError
    from .run_recorder import StoreRecorder

    try:
        return [StoreRecorder(get_store(), resource_manager=get_resource_manager())]
    except OrchestrationError as exc:
        log.warning("runs will not be recorded: %s", exc.message)
        return []


def get_workflow_manager() -> WorkflowManager:
    """Return the process's WorkflowManager (workflows directory loaded; runs recorded)."""

    def build() -> WorkflowManager:
        from .workflow_manager import WorkflowManager

        return WorkflowManager(orchestrator=get_task_orchestrator(), resource_manager=get_resource_manager(),
                               events=get_event_bus(), observers=_recorder())

    return _get("workflows", build)


def get_project_manager() -> Any:
    """Return the process's ProjectManager (projects directory from the settings)."""

    def build() -> Any:
        from .project_manager import ProjectManager

        return ProjectManager(store=get_store(), workflow_manager=get_workflow_manager())

    return _get("projects", build)


def get_orchestration_engine() -> OrchestrationEngine:
    """Return the process's OrchestrationEngine, wired to the other singletons."""

    def build() -> OrchestrationEngine:
        from .orchestration_engine import OrchestrationEngine

        try:
            projects = get_project_manager()
        except ModuleNotFoundError:
            projects = None  # reported as "disabled" by health checks
        return OrchestrationEngine(
            workflow_manager=get_workflow_manager(), task_orchestrator=get_task_orchestrator(),
            resource_manager=get_resource_manager(), project_manager=projects,
            store=_instances.get("store"), events=get_event_bus())

    return _get("engine", build)


def get_mcp_tools() -> Any:
    """Return the process's OrchestrationMCPTools (spec 004's ``tools.execute_tool``)."""

    def build() -> Any:
        from .mcp_tools import OrchestrationMCPTools

        return OrchestrationMCPTools()

    return _get("mcp_tools", build)


def reset_singletons() -> None:
    """Shut every instance down (cancelling runs) and forget them; the next get_* rebuilds."""
    with _lock:
        instances = dict(_instances)
        _instances.clear()
    engine = instances.get("engine")
    if engine is not None:
        engine.shutdown()
    manager = instances.get("workflows")
    if manager is not None:
        manager.shutdown()
    orchestrator = instances.get("orchestrator")
    if orchestrator is not None:
        orchestrator.shutdown(wait=True, cancel_running=True)
    for key in ("mcp_tools", "projects", "store"):
        closable = instances.get(key)
        if closable is not None and hasattr(closable, "close"):
            closable.close()
    bus = instances.get("events")
    if bus is not None:
        bus.close()
