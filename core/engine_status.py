"""What the OrchestrationEngine reports about itself: health, system status, metrics.

Each function reads the engine's components and returns plain dicts with the spec-002
and spec-004 keys. A component whose probe raises is reported "unhealthy" with the
error, never raised: a health check must answer even when something is broken.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .text import iso_utc

if TYPE_CHECKING:
    from .orchestration_engine import OrchestrationEngine
    from .resource_manager import ResourceManager

__all__ = ["health_check", "health_status", "system_status", "metrics", "utilization"]

Probe = Callable[["OrchestrationEngine"], tuple[str, dict[str, Any], list[str]]]


def utilization(resource_manager: ResourceManager) -> dict[str, float]:
    """Return ``{resource id: percent in use}``, per resource its most used unit."""
    result: dict[str, float] = {}
    for usage in resource_manager.snapshot():
        pct = 0.0
        for unit, cap in usage.capacity.items():
            if cap:
                pct = max(pct, 100.0 * usage.current.get(unit, 0.0) / cap)
        result[usage.resource_id] = round(pct, 1)
    return result


def _workflow_manager(engine: OrchestrationEngine) -> tuple[str, dict[str, Any], list[str]]:
    wm = engine.workflow_manager
    problems = list(wm.load_problems)
    details = {"total_workflows": len(wm.workflows), "running_workflows": len(wm.active_runs()),
               "load_problems": problems}
    return ("degraded" if problems else "healthy"), details, [f"workflow_manager: {p}" for p in problems]


def _task_orchestrator(engine: OrchestrationEngine) -> tuple[str, dict[str, Any], list[str]]:
    return "healthy", engine.task_orchestrator.get_execution_stats(), []


def _project_manager(engine: OrchestrationEngine) -> tuple[str, dict[str, Any], list[str]]:
    if engine.project_manager is None:
        return "disabled", {"configured": False}, []
    return "healthy", {"total_projects": len(engine.project_manager.list_projects())}, []


def _resource_manager(engine: OrchestrationEngine) -> tuple[str, dict[str, Any], list[str]]:
    used = utilization(engine.resource_manager)
    full = sorted(rid for rid, pct in used.items() if pct >= 100.0)
    issues = [f"resource_manager: resource '{rid}' is fully allocated" for rid in full]
    return ("degraded" if full else "healthy"), {"total_resources": len(used), "utilization_percent": used}, issues


def _store(engine: OrchestrationEngine) -> tuple[str, dict[str, Any], list[str]]:
    # Read the change counter: a real query, so a broken or vanished database shows up
    # here as "unhealthy" (the probe's exception) instead of passing on its path alone.
    store = engine.store
    path = getattr(store, "db_path", None)
    version = store.version()
    return "healthy", {"path": str(path) if path else None, "version": version}, []


def health_check(engine: OrchestrationEngine) -> dict[str, Any]:
    """Return spec 002's health report of ``engine``.

    Keys: ``overall_status`` ("healthy", "degraded", "unhealthy"), ``timestamp``,
    ``components`` (name -> ``{"status", "details"}``) and ``issues``. A component
    that is not configured reports "disabled" and does not lower the overall status.
    """
    probes: dict[str, Probe] = {
        "workflow_manager": _workflow_manager,
        "task_orchestrator": _task_orchestrator,
        "project_manager": _project_manager,
        "resource_manager": _resource_manager,
    }
    if engine.store is not None:
        probes["store"] = _store
    components: dict[str, dict[str, Any]] = {}
    issues: list[str] = []
    for name, probe in probes.items():
        try:
            status, details, found = probe(engine)
        except Exception as exc:  # a broken component is reported, not raised
            status, details = "unhealthy", {"error": f"{type(exc).__name__}: {exc}"}
            found = [f"{name}: {type(exc).__name__}: {exc}"]
        components[name] = {"status": status, "details": details}
        issues.extend(found)
    states = {c["status"] for c in components.values()}
    overall = "unhealthy" if "unhealthy" in states else "degraded" if "degraded" in states else "healthy"
    return {"overall_status": overall, "timestamp": iso_utc(time.time()), "components": components, "issues": issues}


def health_status(engine: OrchestrationEngine) -> dict[str, Any]:
    """Return spec 000's compact health: ``status``, ``healthy``, ``uptime_seconds``,
    per-component ``components`` states, ``error_counts`` and ``issues``."""
    health = health_check(engine)
    buses = engine.event_buses()
    return {
        "status": health["overall_status"],
        "healthy": health["overall_status"] == "healthy",
        "timestamp": health["timestamp"],
        "uptime_seconds": engine.uptime_seconds,
        "components": {name: c["status"] for name, c in health["components"].items()},
        "error_counts": {
            "failed_workflows": engine.workflow_manager.get_performance_summary()["failed"],
            "failed_tasks": engine.task_orchestrator.get_execution_stats().get("failed", 0),
            "event_handler_errors": sum(bus.handler_errors for bus in buses),
        },
        "issues": health["issues"],
    }


def system_status(engine: OrchestrationEngine) -> dict[str, Any]:
    """Return spec 002's system status: sessions and handlers, workflows, tasks,
    projects, resources and performance."""
    wm = engine.workflow_manager
    handlers: dict[str, int] = {}
    for bus in engine.event_buses():
        for key, count in bus.handler_counts().items():
            handlers[key] = handlers.get(key, 0) + count
    projects: dict[str, Any] = {"configured": engine.project_manager is not None}
    if engine.project_manager is not None:
        projects["total_projects"] = len(engine.project_manager.list_projects())
    return {
        "timestamp": iso_utc(time.time()),
        "orchestration_engine": {
            "active_sessions": len(engine.sessions),
            "event_handlers": handlers,
            "uptime_seconds": engine.uptime_seconds,
        },
        "workflow_manager": {"total_workflows": len(wm.workflows), "running_workflows": len(wm.active_runs())},
        "task_orchestrator": engine.task_orchestrator.get_execution_stats(),
        "project_manager": projects,
        "resource_manager": engine.resource_manager.get_resource_usage(),
        "performance": wm.get_performance_summary(),
    }


def metrics(engine: OrchestrationEngine) -> dict[str, Any]:
    """Return spec 004's metrics: ``sessions`` (``total`` ...), ``workflows``, ``tasks``,
    ``resources`` (``utilization_percent``) and ``events``."""
    perf = engine.workflow_manager.get_performance_summary()
    buses = engine.event_buses()
    return {
        "timestamp": iso_utc(time.time()),
        "uptime_seconds": engine.uptime_seconds,
        "sessions": engine.session_counts(),
        "workflows": {
            "registered": len(engine.workflow_manager.workflows),
            "executions": perf["total_executions"],
            "running": perf["running"],
            "successful": perf["successful"],
            "failed": perf["failed"],
            "cancelled": perf["cancelled"],
            "success_rate": perf["success_rate"],
            "average_execution_time": perf["average_execution_time"],
        },
        "tasks": engine.task_orchestrator.get_execution_stats(),
        "resources": {"utilization_percent": utilization(engine.resource_manager),
                      "total_resources": len(engine.resource_manager.list_resources())},
        "events": {"handlers": sum(sum(b.handler_counts().values()) for b in buses),
                   "delivered": sum(b.delivered for b in buses),
                   "handler_errors": sum(b.handler_errors for b in buses)},
    }
