"""Run counts and timings per workflow: the WorkflowManager's performance summary."""

from __future__ import annotations

import threading
from typing import Any

from .models import WorkflowExecution, WorkflowStatus

__all__ = ["PerformanceTracker"]


class PerformanceTracker:
    """Accumulates finished runs; thread-safe (runs finish on the dispatcher thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._per: dict[str, dict[str, Any]] = {}

    def record(self, execution: WorkflowExecution) -> None:
        """Count one finished run under its workflow's name."""
        elapsed = execution.execution_time
        key = {WorkflowStatus.COMPLETED: "successful", WorkflowStatus.CANCELLED: "cancelled"}.get(
            execution.status, "failed")
        with self._lock:
            entry = self._per.setdefault(execution.workflow_name, {
                "executions": 0, "successful": 0, "failed": 0, "cancelled": 0,
                "total_time": 0.0, "min_time": None, "max_time": None,
                "last_status": None, "last_run_id": None,
            })
            entry["executions"] += 1
            entry[key] += 1
            entry["total_time"] += elapsed
            entry["min_time"] = elapsed if entry["min_time"] is None else min(entry["min_time"], elapsed)
            entry["max_time"] = elapsed if entry["max_time"] is None else max(entry["max_time"], elapsed)
            entry["last_status"] = execution.status.value
            entry["last_run_id"] = execution.run_id

    def summary(self, running: int = 0) -> dict[str, Any]:
        """Return the totals and the per-workflow figures.

        Keys: ``total_executions``, ``successful``, ``failed``, ``cancelled``,
        ``running`` (as given), ``success_rate`` (0..1), ``total_execution_time``,
        ``average_execution_time`` and ``workflows`` (name -> the same counts plus
        ``total_time``, ``average_time``, ``min_time``, ``max_time``, ``last_status``,
        ``last_run_id``).
        """
        with self._lock:
            per = {name: dict(entry, average_time=entry["total_time"] / entry["executions"])
                   for name, entry in self._per.items()}
        total = sum(e["executions"] for e in per.values())
        total_time = sum(e["total_time"] for e in per.values())
        successful = sum(e["successful"] for e in per.values())
        return {
            "total_executions": total,
            "successful": successful,
            "failed": sum(e["failed"] for e in per.values()),
            "cancelled": sum(e["cancelled"] for e in per.values()),
            "running": running,
            "success_rate": successful / total if total else 0.0,
            "total_execution_time": total_time,
            "average_execution_time": total_time / total if total else 0.0,
            "workflows": per,
        }
