"""Time sources, injectable so retry and timeout logic is testable without sleeping.

The orchestrator reads time only through a :class:`Clock`. Production code uses
:data:`SYSTEM_CLOCK`; tests use :class:`ManualClock` and ``advance()`` it, and every
waiter registered with ``on_advance`` is woken so it re-reads the time at once.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable

__all__ = ["Clock", "SystemClock", "ManualClock", "SYSTEM_CLOCK"]


class Clock(ABC):
    """Interface: ``monotonic()`` for deadlines and delays, ``time()`` for timestamps."""

    @abstractmethod
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for deadlines and delays)."""

    @abstractmethod
    def time(self) -> float:
        """Wall-clock epoch seconds (for timestamps people read)."""

    def on_advance(self, callback: Callable[[], None]) -> None:
        """Register ``callback`` to run when time jumps (only a ManualClock jumps)."""


class SystemClock(Clock):
    """The real clocks of the machine."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()


class ManualClock(Clock):
    """A clock that moves only when a test calls :meth:`advance`."""

    def __init__(self, start: float = 1_000.0, wall_start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall_start - start
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self._now + self._wall_offset

    def on_advance(self, callback: Callable[[], None]) -> None:
        with self._lock:
            self._callbacks.append(callback)

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and wake every registered waiter."""
        with self._lock:
            self._now += seconds
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback()


SYSTEM_CLOCK = SystemClock()
