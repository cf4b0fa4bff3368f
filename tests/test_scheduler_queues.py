"""ReadyLanes: strict priority, FIFO within a lane, aging, lazy removal."""

from __future__ import annotations

from core.models import Task, TaskPriority
from core.scheduler_queues import NOWHERE, ReadyLanes, TaskEntry


def entry(name: str, priority: TaskPriority) -> TaskEntry:
    return TaskEntry(Task(name=name, priority=priority), int(priority))


def drain(lanes: ReadyLanes, now: float) -> list[str]:
    names = []
    while (item := lanes.pop(now)) is not None:
        names.append(item.task.name)
    return names


def test_priority_then_fifo_without_aging() -> None:
    lanes = ReadyLanes(None)
    for name, priority in [("low", TaskPriority.LOW), ("crit", TaskPriority.CRITICAL),
                           ("n1", TaskPriority.NORMAL), ("n2", TaskPriority.NORMAL)]:
        lanes.push(entry(name, priority), now=0.0)
    assert len(lanes) == 4
    assert drain(lanes, now=1e9) == ["crit", "n1", "n2", "low"]
    assert len(lanes) == 0


def test_aging_lifts_a_waiting_task_one_level_per_interval() -> None:
    lanes = ReadyLanes(10.0)
    old = entry("old-background", TaskPriority.BACKGROUND)
    lanes.push(old, now=0.0)
    lanes.push(entry("fresh-high", TaskPriority.HIGH), now=35.0)
    # 35 s of waiting: BACKGROUND(4) - 3 = HIGH(1); a tie goes to the one that waited longer.
    assert drain(lanes, now=35.0) == ["old-background", "fresh-high"]

    lanes.push(entry("older-normal", TaskPriority.NORMAL), now=0.0)
    lanes.push(entry("oldest-low", TaskPriority.LOW), now=-20.0)
    lanes.push(entry("fresh-crit", TaskPriority.CRITICAL), now=25.0)
    # At 25 s: NORMAL aged 2 -> 0, LOW aged 4 -> 0, fresh CRITICAL 0; oldest first.
    assert drain(lanes, now=25.0) == ["oldest-low", "older-normal", "fresh-crit"]


def test_discarded_and_requeued_entries() -> None:
    lanes = ReadyLanes(30.0)
    a, b, c = entry("a", TaskPriority.NORMAL), entry("b", TaskPriority.NORMAL), entry("c", TaskPriority.HIGH)
    for item in (a, b, c):
        lanes.push(item, now=0.0)
    lanes.discard(a)
    assert a.where == NOWHERE and len(lanes) == 2
    first = lanes.pop(0.0)
    assert first is c
    lanes.push_front([c])  # put back: keeps its place at the front
    assert [e.task.name for e in lanes.heads(int(TaskPriority.NORMAL), 5)] == ["b"]
    assert drain(lanes, 0.0) == ["c", "b"]


def test_stage_depth_fills_the_time_budget_for_tiny_tasks_only() -> None:
    from core.dispatch_gates import STAGE_BUDGET, stage_depth

    assert stage_depth(4, 2e-6) == 32  # microsecond tasks: the per-worker cap
    assert stage_depth(4, 9e-4) == 4  # near a millisecond: one per worker, as before
    middle = stage_depth(4, 1e-4)
    assert 4 < middle < 32 and middle * 1e-4 <= STAGE_BUDGET
