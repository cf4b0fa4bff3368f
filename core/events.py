"""Orchestration events and the bus that delivers them off the scheduler's thread.

``emit`` only puts the event on a queue, so the dispatcher never waits for a handler.
One daemon thread per bus calls the handlers in order; a handler that raises is logged
and counted, never allowed to stop delivery. Handlers receive ``(event_type, data)``
as in spec 004: ``def on_done(event, data): ...``.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import defaultdict
from collections.abc import Callable
from enum import StrEnum
from typing import Any

__all__ = ["EventType", "EventBus", "EventHandler"]

log = logging.getLogger(__name__)

EventHandler = Callable[[str, dict[str, Any]], None]


class EventType(StrEnum):
    WORKFLOW_STARTED = "workflow_started"
    WORKFLOW_COMPLETED = "workflow_completed"
    WORKFLOW_FAILED = "workflow_failed"
    WORKFLOW_CANCELLED = "workflow_cancelled"
    TASK_STARTED = "task_started"
    TASK_COMPLETED = "task_completed"
    TASK_FAILED = "task_failed"
    TASK_CANCELLED = "task_cancelled"
    TASK_RETRYING = "task_retrying"
    TASK_SKIPPED = "task_skipped"
    RESOURCE_ALLOCATED = "resource_allocated"
    RESOURCE_RELEASED = "resource_released"
    SESSION_CREATED = "session_created"
    SESSION_CLOSED = "session_closed"


ANY_EVENT = "*"
_STOP = object()


class EventBus:
    """Delivers events to registered handlers on one background thread."""

    def __init__(self, name: str = "orchtui-events") -> None:
        self._handlers: dict[str, list[EventHandler]] = defaultdict(list)
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._name = name
        self.handler_errors = 0
        self.delivered = 0

    def register(self, event_type: str, handler: EventHandler) -> None:
        """Call ``handler(event_type, data)`` for each event of ``event_type`` ("*": all)."""
        key = str(event_type)
        with self._lock:
            self._handlers[key].append(handler)
            if self._thread is None:
                self._thread = threading.Thread(target=self._deliver_forever, name=self._name, daemon=True)
                self._thread.start()

    def unregister(self, event_type: str, handler: EventHandler) -> None:
        with self._lock:
            handlers = self._handlers.get(str(event_type), [])
            if handler in handlers:
                handlers.remove(handler)

    @property
    def has_handlers(self) -> bool:
        with self._lock:
            return any(self._handlers.values())

    def handler_counts(self) -> dict[str, int]:
        """Return ``{event_type: number of handlers}`` (spec-002 ``event_handlers``)."""
        with self._lock:
            return {k: len(v) for k, v in self._handlers.items() if v}

    def emit(self, event_type: str, data: dict[str, Any]) -> None:
        """Queue an event; returns at once. Dropped cheaply when nobody listens or closed."""
        if self._thread is not None:
            self._queue.put((str(event_type), data))

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every event queued so far was delivered; False on timeout."""
        if self._thread is None:
            return True
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self) -> None:
        """Deliver what is queued, then stop; a later ``register`` starts a new thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout=5)

    def _deliver_forever(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            event_type, data = item
            with self._lock:
                handlers = list(self._handlers.get(event_type, ())) + list(self._handlers.get(ANY_EVENT, ()))
            for handler in handlers:
                try:
                    handler(event_type, data)
                except Exception:  # a broken handler must not stop delivery
                    self.handler_errors += 1
                    log.exception("event handler %r failed on %s", handler, event_type)
            self.delivered += 1
