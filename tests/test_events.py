"""Events are delivered off the caller's thread, in order, surviving broken handlers."""

from __future__ import annotations

import threading

from core.clock import ManualClock
from core.events import EventBus, EventType


def test_handlers_run_on_the_bus_thread_not_the_emitter():
    bus = EventBus()
    seen: list[tuple[str, str]] = []
    bus.register(EventType.TASK_COMPLETED, lambda event, data: seen.append((event, threading.current_thread().name)))
    bus.emit(EventType.TASK_COMPLETED, {"task": "a"})
    assert bus.flush()
    assert seen == [("task_completed", "orchtui-events")]
    bus.close()


def test_events_are_delivered_in_emit_order():
    bus = EventBus()
    seen: list[int] = []
    bus.register("*", lambda event, data: seen.append(data["n"]))
    for n in range(200):
        bus.emit(EventType.TASK_STARTED, {"n": n})
    assert bus.flush()
    assert seen == list(range(200))
    bus.close()


def test_a_failing_handler_does_not_stop_delivery():
    bus = EventBus()
    seen: list[str] = []

    def broken(event, data):
        raise RuntimeError("handler bug")

    bus.register(EventType.WORKFLOW_COMPLETED, broken)
    bus.register(EventType.WORKFLOW_COMPLETED, lambda event, data: seen.append(data["workflow_name"]))
    bus.emit(EventType.WORKFLOW_COMPLETED, {"workflow_name": "demo", "success": True})
    assert bus.flush()
    assert seen == ["demo"] and bus.handler_errors == 1
    bus.close()


def test_handler_counts_report_registrations():
    bus = EventBus()
    bus.register(EventType.TASK_FAILED, lambda e, d: None)
    bus.register(EventType.TASK_FAILED, lambda e, d: None)
    assert bus.handler_counts() == {"task_failed": 2}
    bus.close()


def test_manual_clock_moves_only_when_advanced_and_wakes_waiters():
    clock = ManualClock(start=10.0)
    woken = threading.Event()
    clock.on_advance(woken.set)
    assert clock.monotonic() == 10.0
    clock.advance(2.5)
    assert clock.monotonic() == 12.5 and woken.is_set()


def test_events_after_close_are_dropped_and_register_restarts_delivery():
    bus = EventBus()
    seen: list[str] = []
    bus.register(EventType.TASK_STARTED, lambda event, data: seen.append(data["name"]))
    bus.close()
    bus.emit(EventType.TASK_STARTED, {"name": "lost"})
    assert bus._queue.empty()  # nothing piles up on a closed bus
    bus.register(EventType.TASK_STARTED, lambda event, data: seen.append("again:" + data["name"]))
    bus.emit(EventType.TASK_STARTED, {"name": "b"})
    assert bus.flush()
    assert seen == ["b", "again:b"]
    bus.close()
