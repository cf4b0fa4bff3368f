"""Stopping a Python callable on a worker thread at its deadline or when it is cancelled.

A ``python.call`` step on the thread executor runs the user's function on one of
orchtui's worker threads, and a thread cannot be killed. Left alone, a function that
never calls ``ctx.check()`` runs past its timeout; the dispatcher abandons the attempt
after the grace period, and a retry then runs *beside* it, repeating its side effects.

So one watchdog thread (started on first use) watches every such call and, at its
deadline or once it is cancelled, raises an exception *inside* the calling thread with
CPython's ``PyThreadState_SetAsyncExc``. It derives from ``BaseException``, like
``KeyboardInterrupt``, so a broad ``except Exception`` in the function does not swallow
it (it is raised again every second all the same), and leaves the call as
:class:`~core.actions.StepTimeout` or :class:`~core.actions.StepCancelled`. The exception arrives at the thread's next
bytecode: a pure-Python loop stops within the watchdog's poll interval (50 ms); a call
blocked in C (``time.sleep``, a socket read, ``subprocess.run``) stops when that returns.
``--executor process`` kills the whole process instead and has no such limit.

A CPython 3.11/3.12 bug (python/cpython#108214) applies here as it does to Ctrl-C: an
exception that arrives at the backward jump of a ``while`` loop skips that frame's own
``try``/``finally`` (the function still stops; its ``finally`` in that frame may not run).

An exception raised asynchronously may land anywhere, so the window is kept tight and
closed for good: a call is *armed* only inside the ``try`` around the function, and the
``finally`` disarms it, unregisters it under the watchdog's lock and clears an exception
that was set but not yet delivered, catching one that lands in the cleanup itself.
Nothing is ever raised into code outside the function call. A function that catches the
interrupt and returns anyway is still reported as timed out or cancelled.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .actions import ActionContext

__all__ = ["call_interruptibly", "POLL_SECONDS", "REPEAT_SECONDS"]

POLL_SECONDS = 0.05  # how often the watchdog looks at deadlines and cancel flags
REPEAT_SECONDS = 1.0  # how often an exception the function swallowed is raised again

T = TypeVar("T")

_SET_ASYNC_EXC = ctypes.pythonapi.PyThreadState_SetAsyncExc
_SET_ASYNC_EXC.restype = ctypes.c_int


def _set_async_exc(ident: int, kind: type[BaseException] | None) -> None:
    """Raise ``kind`` in thread ``ident`` at its next bytecode; None clears a pending one."""
    # No argtypes: an undeclared None argument is passed as NULL, which clears.
    _SET_ASYNC_EXC(ctypes.c_ulong(ident), ctypes.py_object(kind) if kind is not None else None)


class _Interrupt(BaseException):
    """Raised into a watched call; a BaseException so ``except Exception`` lets it through."""


class _Deadline(_Interrupt):
    pass


class _Cancel(_Interrupt):
    pass


class Watched:
    """One call the watchdog may interrupt. Create with :meth:`Watchdog.watch`."""

    __slots__ = ("ident", "ctx", "armed", "raised_at")

    def __init__(self, ctx: ActionContext) -> None:
        self.ident = threading.get_ident()
        self.ctx = ctx
        self.armed = False  # set inside the try around the call; only then may it be interrupted
        self.raised_at: float | None = None  # when an exception was last raised into the call


class Watchdog:
    """The thread that interrupts watched calls at their deadline or on cancel."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._calls: dict[int, Watched] = {}
        self._thread: threading.Thread | None = None

    def watch(self, ctx: ActionContext) -> Watched:
        """Register a call on this thread for ``ctx``'s deadline and cancel flag; not yet armed."""
        watched = Watched(ctx)
        with self._lock:
            self._calls[id(watched)] = watched
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="orchtui-call-watchdog", daemon=True)
                self._thread.start()
            self._wake.notify()
        return watched

    def forget(self, watched: Watched) -> None:
        """Unregister ``watched`` and clear an exception raised into it but not delivered yet."""
        with self._lock:
            self._calls.pop(id(watched), None)
            watched.armed = False
            if watched.raised_at is not None:
                _set_async_exc(watched.ident, None)  # NULL clears what is still pending

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._calls:
                    self._wake.wait()
                now = time.monotonic()
                for watched in self._calls.values():
                    kind = _due(watched, now)
                    if kind is not None:
                        _set_async_exc(watched.ident, kind)
                        watched.raised_at = now
            time.sleep(POLL_SECONDS)


def _due(watched: Watched, now: float) -> type[BaseException] | None:
    """Return the exception to raise into ``watched`` now, or None."""
    if not watched.armed or (watched.raised_at is not None and now - watched.raised_at < REPEAT_SECONDS):
        return None
    ctx = watched.ctx
    if ctx.cancel_event.is_set():
        return _Cancel
    if ctx.deadline is not None and now >= ctx.deadline:
        return _Deadline
    return None


_watchdog = Watchdog()


def call_interruptibly(ctx: ActionContext, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Return ``fn(*args, **kwargs)``, interrupted at ``ctx``'s deadline or on its cancel.

    Raises:
        StepTimeout, StepCancelled: the call was interrupted, or it swallowed the
            interrupt and returned anyway (its result then does not count).
        Whatever ``fn`` raises.
    """
    from .actions import StepCancelled, StepTimeout  # here: core.actions imports this module's users

    watched = _watchdog.watch(ctx)
    try:
        try:
            watched.armed = True  # first thing inside the try: from here it may be interrupted
            result = fn(*args, **kwargs)
        finally:
            # The cleanup is written out here, inside this frame's handlers, not in a
            # method: an interrupt set just before disarming may land at the first
            # instruction of any function called now (CPython checks on entry), and it
            # must be caught, not escape into orchtui's code.
            watched.armed = False  # the watchdog raises nothing new into this call
            try:
                _watchdog.forget(watched)  # clears one raised but not delivered yet
            except _Interrupt:
                _watchdog.forget(watched)  # it landed before the lock was held; none can follow
    except _Deadline:
        raise StepTimeout(ctx.timeout) from None
    except _Cancel:
        raise StepCancelled() from None
    if watched.raised_at is not None:  # the function caught the interrupt and returned
        raise StepCancelled() if ctx.cancel_event.is_set() else StepTimeout(ctx.timeout)
    return result
