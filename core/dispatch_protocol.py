"""The dispatcher's inbox protocol: what other threads post to it, and how they wait.

Every message is a small tuple whose first element is one of the ``OP_*`` codes below.
API calls that need an answer carry a :class:`Waiter`; the backend reports the end of
an attempt through :meth:`Attempt.done`, which posts ``OP_DONE``. Kept apart from the
:class:`~core.dispatcher.Dispatcher` so the orchestrator (the sender) and the
dispatcher's parts (the receivers) share one definition without importing each other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .models import TaskResult
from .scheduler_queues import TaskEntry

__all__ = [
    "OP_DONE",
    "OP_ADD",
    "OP_RUN",
    "OP_START",
    "OP_WAIT",
    "OP_CANCEL",
    "OP_CANCEL_RUN",
    "OP_BARRIER",
    "OP_FLUSH",
    "OP_WAKE",
    "OP_WORKERS",
    "OP_STOP",
    "Waiter",
    "Attempt",
]

# Inbox operations (first element of every message).
(
    OP_DONE,
    OP_ADD,
    OP_RUN,
    OP_START,
    OP_WAIT,
    OP_CANCEL,
    OP_CANCEL_RUN,
    OP_BARRIER,
    OP_FLUSH,
    OP_WAKE,
    OP_WORKERS,
    OP_STOP,
) = range(12)


class Waiter:
    """Counts down to zero as the entries it waits for end; then its event is set."""

    __slots__ = ("remaining", "event", "value")

    def __init__(self, remaining: int = 1) -> None:
        self.remaining = remaining
        self.event = threading.Event()
        self.value: Any = None

    def count_down(self) -> None:
        self.remaining -= 1
        if self.remaining <= 0:
            self.event.set()

    def reply(self, value: Any = None) -> None:
        self.value = value
        self.event.set()


class Attempt:
    """One attempt of one task on the backend; its ``done`` is the backend's callback."""

    __slots__ = ("entry", "number", "handle", "put", "log_path")

    def __init__(self, entry: TaskEntry, number: int, put: Callable[[Any], None], log_path: str | None) -> None:
        self.entry = entry
        self.number = number
        self.handle: Any = None
        self.put = put
        self.log_path = log_path

    def done(self, result: TaskResult) -> None:
        self.put((OP_DONE, self, result))

