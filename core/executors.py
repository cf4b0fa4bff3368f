"""Executor backends: where one attempt of one task runs.

Every backend implements :class:`core.interfaces.ExecutorBackend` and runs an
:class:`~core.models.Invocation` through :func:`core.actions.invoke`, the single entry
that enforces timeouts and kills subprocess trees. The orchestrator's dispatcher
decides *when* an invocation runs (it only submits while a worker slot is free), so a
backend never queues work behind a priority decision of its own.

* :class:`ThreadBackend` (default): worker threads started on demand. The dispatcher
  bounds concurrency to ``max_workers``; a thread whose attempt was abandoned by the
  timeout backstop keeps running until its action returns, and a new thread is started
  for the next attempt instead of queueing it behind the stuck one.
* :class:`ProcessBackend`: every invocation in its own child process (``forkserver``
  by default) so a timeout or cancel can kill a Python callable that never checks its
  cancel event, together with every process it started. A child also ends when the
  orchtui process that started it dies (see :func:`_start_stand_in`).
* ``create_backend("dask")`` loads ``core.dask_backend`` lazily (the optional extra).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import select
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, wait as wait_connections
from typing import Any

import psutil

from .errors import OrchestrationError
from .interfaces import DoneCallback, ExecutorBackend
from .models import Invocation, TaskResult
from .process_tree import CappedLog, adopt_owner, hurried, mark_own_children, supervising, this_process

__all__ = [
    "crash_result", "CancelToken", "ThreadBackend", "ProcessBackend", "create_backend", "BACKEND_NAMES", "InvokeFn"]

InvokeFn = Callable[[Invocation, Any], TaskResult]
BACKEND_NAMES = ("thread", "process", "dask")

# One lock for every token's lazily created Event: tokens are made per attempt, and a
# threading.Event costs a Condition and a Lock that most attempts never wait on.
_TOKEN_LOCK = threading.Lock()
_STOP = None
_QUEUED, _ON_THREAD, _FINISHED = range(3)
_JOIN_SLICE = 0.05  # seconds: ThreadBackend.shutdown looks again this often at what still runs


def _default_invoke() -> InvokeFn:
    """Return :func:`core.actions.invoke`.

    Imported when a worker starts, not at module import (actions pulls in the plugin
    registry), and once per worker rather than per attempt: an import statement on the
    hot path costs as much as a whole no-op step.
    """
    from .actions import invoke

    return invoke


def crash_result(invocation: Invocation, exc: BaseException) -> TaskResult:
    """The result reported when ``invoke`` itself raised (a bug, not an action failure)."""
    return TaskResult(
        success=False,
        error_message=f"{invocation.module}.{invocation.action} crashed the executor: {type(exc).__name__}: {exc}",
        error_type=type(exc).__name__,
        attempt=invocation.attempt,
    )


def cancelled_result(invocation: Invocation, message: str = "cancelled before it started") -> TaskResult:
    """Return the result of an attempt that was cancelled (``error_type="Cancelled"``)."""
    return TaskResult(success=False, error_message=message, error_type="Cancelled", attempt=invocation.attempt)


class CancelToken:
    """A cheap cancel flag with the ``is_set()`` / ``wait(timeout)`` / ``set()`` of an Event.

    The Event behind ``wait`` is created only when someone waits, so the common
    attempt that never sleeps costs one small object. ``state``, ``stuck`` and
    ``abandoned`` are the ThreadBackend's bookkeeping (queued/running/done; cancelled
    while running; given up on by the dispatcher while running).
    """

    __slots__ = ("_flag", "_event", "state", "stuck", "abandoned")

    def __init__(self) -> None:
        self._flag = False
        self._event: threading.Event | None = None
        self.state = _QUEUED
        self.stuck = False
        self.abandoned = False

    def is_set(self) -> bool:
        """Return True once :meth:`set` was called."""
        return self._flag

    def set(self) -> None:
        """Cancel: wake every waiter. Idempotent."""
        self._flag = True
        with _TOKEN_LOCK:
            event = self._event
        if event is not None:
            event.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until cancelled or ``timeout`` seconds passed; return whether cancelled."""
        if self._flag:
            return True
        with _TOKEN_LOCK:
            if self._event is None:
                self._event = threading.Event()
                if self._flag:
                    self._event.set()
            event = self._event
        return event.wait(timeout)


class ThreadBackend:
    """Runs invocations on ``max_workers`` worker threads of this process.

    Submissions beyond the free workers wait in FIFO order (``queues_excess``); the
    orchestrator only stages a few there when recent tasks are very short. An attempt
    that was cancelled but has not returned yet (an action ignoring cancellation) does
    not count against ``max_workers``: a replacement thread is started for the next
    submission, so one stuck action never takes a worker slot away for good.

    Args:
        max_workers: how many invocations run at once.
        invoke: the function that runs one invocation (default ``core.actions.invoke``).
    """

    name = "thread"
    queues_excess = True

    def __init__(self, max_workers: int = 4, *, invoke: InvokeFn | None = None) -> None:
        mark_own_children()  # what a python.call starts is found by crash recovery
        self._max_workers = max(1, int(max_workers))
        self._invoke = invoke  # None: core.actions.invoke, resolved by each worker
        self._queue: queue.SimpleQueue[tuple[Invocation, DoneCallback, CancelToken] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stuck = 0  # cancelled attempts still running; changed under _lock
        self._abandoned = 0  # attempts the dispatcher gave up on, still running; changed under _lock
        self._closed = False

    @property
    def capacity(self) -> int | None:
        return self._max_workers

    @property
    def thread_count(self) -> int:
        """How many worker threads were started (for tests and diagnostics)."""
        return len(self._threads)

    def resize(self, max_workers: int) -> None:
        """Run up to ``max_workers`` invocations at once from now on (threads start lazily)."""
        self._max_workers = max(1, int(max_workers))

    def submit(self, invocation: Invocation, on_done: DoneCallback) -> CancelToken:
        """Queue ``invocation``; ``on_done(result)`` is called once from a worker thread.

        Returns:
            The attempt's :class:`CancelToken`, to pass to :meth:`cancel`.
        """
        token = CancelToken()
        if self._closed:
            on_done(cancelled_result(invocation, "the executor was shut down before the task started"))
            return token
        if len(self._threads) - self._stuck < self._max_workers:
            with self._lock:
                if len(self._threads) - self._stuck < self._max_workers and not self._closed:
                    self._start_worker()
        self._queue.put((invocation, on_done, token))
        return token

    def cancel(self, handle: CancelToken) -> None:
        """Ask the attempt to stop; ``invoke`` kills its subprocess tree and returns."""
        handle.set()
        with self._lock:
            if handle.state == _ON_THREAD and not handle.stuck:
                handle.stuck = True
                self._stuck += 1

    def abandon(self, handle: CancelToken) -> None:
        """Record that the dispatcher gave up on this cancelled attempt (it outlived its
        grace period): :meth:`shutdown` does not wait for the thread it holds."""
        with self._lock:
            if handle.state == _ON_THREAD and not handle.abandoned:
                handle.abandoned = True
                self._abandoned += 1

    def shutdown(self, wait: bool = True, *, timeout: float | None = None) -> None:
        """Stop the workers after the queued invocations ran.

        Args:
            wait: join the worker threads, except those held by attempts already given
                up on (:meth:`abandon`): they had their grace period, and waiting again
                only delayed the end of the process by ``timeout`` without a word.
            timeout: with ``wait``, give up after this many seconds in all (an action
                that ignores cancellation cannot be stopped from outside).
        """
        with self._lock:
            first = not self._closed
            self._closed = True
            threads = list(self._threads)
        if first:
            for _ in threads:
                self._queue.put(_STOP)
        if not wait:
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            alive = [thread for thread in threads if thread.is_alive()]
            if len(alive) <= self._abandoned:  # what still runs was given up on already
                return
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            # In slices: the thread joined may be an abandoned one, which never ends.
            alive[0].join(_JOIN_SLICE if left is None else min(left, _JOIN_SLICE))

    def _start_worker(self) -> None:
        thread = threading.Thread(target=self._work, name=f"orchtui-worker-{len(self._threads)}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        get = self._queue.get
        invoke = self._invoke or _default_invoke()
        lock = self._lock
        while True:
            item = get()
            if item is None:
                return
            invocation, on_done, token = item
            token.state = _ON_THREAD
            try:
                result = invoke(invocation, token)
            except BaseException as exc:  # invoke never raises for action failures; this is a bug guard
                result = crash_result(invocation, exc)
            token.state = _FINISHED
            # Only a cancelled token can have been marked stuck: cancel() sets the flag
            # before it looks at ``state`` under the lock, so a flag still clear here means
            # cancel() will see _FINISHED and leave ``stuck`` alone. The common attempt
            # thus skips the lock.
            if token._flag:
                with lock:
                    if token.stuck:
                        self._stuck -= 1
                    if token.abandoned:
                        self._abandoned -= 1
            on_done(result)


# ------------------------------------------------------------------ processes


# Seconds the stand-in waits beyond the step's kill grace before it kills the child: the
# step's own supervisor notices the cancel within a poll slice and SIGKILLs the commands
# it started ``kill_grace`` seconds after their SIGTERM, and that must come first.
_STAND_IN_MARGIN = 2.0

# What cancels a ProcessBackend child's step. Not SIGTERM: ``kill -TERM -PGID`` and a
# service manager's stop send SIGTERM to the whole group, and the child must leave that
# to its parent, as it does Ctrl-C and a hangup. A child that cancels itself on it
# races the parent's cancel, and its step ends as the child saw it, before the run
# knows it was stopped (orchtui.cli.foreground).
_CANCEL_SIGNAL = signal.SIGUSR1


def _start_stand_in(lifeline_fd: int, grace: float) -> int | None:
    """Fork the process that stands in for this ProcessBackend child's parent once that dies;
    return its pid (stop it with :func:`_stop_stand_in` before the child ends), or None
    when no process can be started now (the step then runs without this guard rather
    than not at all).

    Call first thing in the child, while it has one thread. Why a child must see to its
    end itself when the orchtui process that started it dies: nobody is left to take its
    result, a resume would run the step beside it, and crash recovery cannot find it,
    because multiprocessing forks it from its fork server, whose environment carries no
    owner marker (``core.process_tree.kill_orphans``). The kernel's parent-death signal
    would not do (the fork server outlives the parent while any child it forked lives),
    nor would a thread of the child's own (a step stuck in a C call that holds the GIL
    would keep it from ever running). So a process of its own waits, and costs a fork.

    It is the child's own child, so the step's code can see it among its children (a step
    that kills all of them switches its guard off; one that waits for all of them waits
    for the step's end); stopped and reaped by the child at the end, it leaves no zombie.
    """
    child = os.getpid()
    try:
        alive_r, alive_w = os.pipe()  # the child keeps the write end open for its life: EOF means it ended
        stand_in = os.fork()
    except OSError:  # out of processes or descriptors
        return None
    if stand_in:
        os.close(alive_r)
        return stand_in
    try:  # the stand-in: never returns into the child's code
        os.close(alive_w)
        _stand_in(child, lifeline_fd, alive_r, grace)
    finally:
        os._exit(0)


def _stand_in(child: int, lifeline_fd: int, alive_r: int, grace: float) -> None:
    """Wait for the child or the parent to end; when the parent ends first, end the child.

    The parent holds the only write end of the lifeline and never writes, so its read end
    turns readable (end of file) when the parent closes it, which it does only after the
    child has ended, or when the parent dies. A child that started no process of its own
    is SIGKILLed at once. Otherwise it gets the cancel signal, as the parent's cancel would send
    (its step is cancelled, which stops the commands it started), and SIGKILL with all
    its descendants ``grace`` seconds later if it still lives.
    """
    # Signals meant for the group (Ctrl-C, a service manager's stop) are the child's to
    # act on; the stand-in ends with it, or by SIGKILL with the child's tree.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    _close_all_but(lifeline_fd, alive_r)  # hold none of the child's pipes open past its end
    ends = select.poll()  # poll, not select: the descriptors may be numbered past select's limit
    ends.register(lifeline_fd, select.POLLIN)
    ends.register(alive_r, select.POLLIN)
    if any(fd == alive_r for fd, _ in ends.poll()):
        return  # the child ended first: nothing to stand in for
    ends.unregister(lifeline_fd)
    victims = _descendants(child)
    if victims is None:
        return  # the child is gone already
    if victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, _CANCEL_SIGNAL)
        if ends.poll(grace * 1000):
            return
        victims = _descendants(child) or victims  # found while the child lives: its orphans are not
    with contextlib.suppress(ProcessLookupError):
        os.kill(child, signal.SIGKILL)
    for proc in victims:
        with contextlib.suppress(psutil.Error):
            proc.kill()


def _stop_stand_in(stand_in: int | None) -> None:
    """SIGKILL and reap the child's stand-in: the child ends now, with its result sent."""
    if stand_in is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(stand_in, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(stand_in, 0)


def _close_all_but(*keep: int) -> None:
    """Close every file descriptor above 2 except ``keep``: the ones open, listed by /proc
    where there is one (closing every possible number, up to a limit of millions where
    ``close_range`` is missing, could take minutes)."""
    try:
        open_fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        bounds = [2, *sorted(keep), os.sysconf("SC_OPEN_MAX")]
        for below, above in zip(bounds, bounds[1:]):
            os.closerange(below + 1, above)
        return
    for fd in open_fds:
        if fd > 2 and fd not in keep:
            with contextlib.suppress(OSError):  # the listing's own descriptor, closed already
                os.close(fd)


def _descendants(pid: int) -> list[psutil.Process] | None:
    """Return the processes under ``pid`` but this one, or None when ``pid`` is gone."""
    me = os.getpid()
    try:
        return [p for p in psutil.Process(pid).children(recursive=True) if p.pid != me]
    except psutil.Error:
        return None


def _child_main(invocation: Invocation, conn: Connection, invoke_target: str, owner: tuple[int, float],
                lifeline: Connection) -> None:
    """Entry point of a ProcessBackend child: run one invocation, send the result back.

    SIGUSR1 (``_CANCEL_SIGNAL``) sets the cancel event, so ``invoke`` kills the action's own subprocess tree
    and reports ``Cancelled`` instead of the child dying with its grandchildren orphaned.
    With a timeout, SIGALRM at the deadline raises ``StepTimeout`` in the action, so even
    Python code that never checks its context (``time.sleep``, a busy loop) stops on time.
    When the parent dies, the child's stand-in ends it (:func:`_start_stand_in`).
    """
    stand_in = _start_stand_in(lifeline.fileno(), invocation.kill_grace + _STAND_IN_MARGIN)
    try:
        _run_in_child(invocation, conn, invoke_target, owner, stand_in)
    finally:
        _stop_stand_in(stand_in)


def _leave_to_parent(_signum: int, _frame: Any) -> None:
    """A ProcessBackend child's handler for the signals its parent acts on: nothing."""


def _run_in_child(invocation: Invocation, conn: Connection, invoke_target: str, owner: tuple[int, float],
                  stand_in: int | None = None) -> None:
    """The body of :func:`_child_main`: run the invocation and send its result back.

    A step that timed out or was cancelled leaves no process behind: what its Python
    code started itself (``subprocess``, ``os.system``; a shell step's commands are
    stopped by the shell action) is stopped before the result goes back.
    """
    from .actions import StepCancelled, StepTimeout

    # The step processes this child starts belong to the orchtui process that runs the
    # workflow: if that one dies, crash recovery must find them under its identity.
    adopt_owner(*owner)
    cancel = threading.Event()
    in_action = False

    def on_cancel(_signum: int, _frame: Any) -> None:
        cancel.set()
        if in_action and not supervising():
            # Python code (a python.call) never looks at the event: stop it where it is, as
            # the alarm does at the deadline. A shell command's supervisor sees the event.
            raise StepCancelled()

    signal.signal(_CANCEL_SIGNAL, on_cancel)
    # Ctrl-C, a closed terminal's SIGHUP and a group's SIGTERM reach the whole process
    # group; the parent decides (orchtui.cli.foreground) and cancels this child's step.
    # A handler that does nothing, not SIG_IGN: an ignored signal stays ignored in the
    # commands the step execs, which then could not be stopped by SIGTERM.
    for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(signum, _leave_to_parent)
    timeout = invocation.timeout if invocation.timeout and invocation.timeout > 0 else None

    backstopped = False

    def on_alarm(_signum: int, _frame: Any) -> None:
        nonlocal backstopped
        if supervising() and not backstopped:
            # A shell command's supervisor stops its tree at the same deadline and notes it
            # in the log; raising into it would report "cannot start". Strike only if it has
            # not returned by the end of its grace period.
            backstopped = True
            signal.setitimer(signal.ITIMER_REAL, invocation.kill_grace + 1.0)
            return
        raise StepTimeout(timeout)

    try:
        module_name, _, func_name = invoke_target.partition(":")
        invoke_fn = getattr(__import__(module_name, fromlist=[func_name]), func_name)
        if timeout is not None:
            signal.signal(signal.SIGALRM, on_alarm)
            signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            in_action = True
            result = invoke_fn(invocation, cancel)
        finally:
            in_action = False
            signal.setitimer(signal.ITIMER_REAL, 0)
    except StepTimeout:  # the alarm struck outside the action, around invoke's own bookkeeping
        result = TaskResult(success=False, error_message=f"timed out after {timeout:g}s", error_type="TimeoutError",
                            attempt=invocation.attempt)
    except StepCancelled:  # likewise the cancel signal
        result = TaskResult(success=False, error_message="Cancelled", error_type="Cancelled",
                            attempt=invocation.attempt)
    except BaseException as exc:  # report, never die silently: the parent waits for a result
        result = crash_result(invocation, exc)
    if not result.success and result.error_type in ("TimeoutError", "Cancelled"):
        _stop_leftovers(invocation, stand_in, "timed out" if result.error_type == "TimeoutError" else "cancelled")
    try:
        conn.send(result)
    except (BrokenPipeError, ConnectionResetError):  # the parent is gone (the stand-in ends us): nobody to tell
        return
    except Exception as exc:  # an output that cannot be pickled
        conn.send(
            TaskResult(
                success=False,
                error_message=f"the output of {invocation.task_name} cannot be sent back from its process: {exc}",
                error_type=type(exc).__name__,
                attempt=invocation.attempt,
            )
        )
    conn.close()


def _stop_leftovers(invocation: Invocation, stand_in: int | None, why: str) -> None:
    """SIGTERM what this child started (but its stand-in), SIGKILL what outlives the grace
    period, and say so in the step's log."""
    victims = [proc for proc in _descendants(os.getpid()) or () if proc.pid != stand_in]
    if not victims:
        return
    for proc in victims:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(victims, timeout=invocation.kill_grace)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    how = f"SIGKILL after the {invocation.kill_grace:g}s grace period" if alive else "they ended within the grace period"
    log = CappedLog(invocation.log_path, invocation.log_cap_bytes)
    log.note(f"{why}: sent SIGTERM to {len(victims)} process(es) the step started; {how}")
    log.close()


def kill_process_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every descendant (found before the parent dies, so none is orphaned)."""
    try:
        parent = psutil.Process(pid)
        victims = parent.children(recursive=True) + [parent]
    except psutil.NoSuchProcess:
        return
    for proc in victims:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            proc.kill()


class _Escalation:
    """SIGKILLs a cancelled child's tree once its grace period ends, or at once when the
    user hurries (a second Ctrl-C: :func:`core.process_tree.hurry_kills`); :meth:`cancel`
    stops it when the child ended first."""

    def __init__(self, pid: int, grace: float) -> None:
        self._ended = threading.Event()
        self._thread = threading.Thread(target=self._wait, args=(pid, time.monotonic() + grace),
                                        name="orchtui-escalation", daemon=True)
        self._thread.start()

    def _wait(self, pid: int, kill_at: float) -> None:
        while not self._ended.wait(min(0.05, max(0.0, kill_at - time.monotonic()))):
            if hurried() or time.monotonic() >= kill_at:
                kill_process_tree(pid)
                return

    def cancel(self) -> None:
        self._ended.set()


class _ProcessAttempt:
    """One invocation's child process, as the ProcessBackend tracks it."""

    __slots__ = ("invocation", "on_done", "process", "cancelled", "lock", "escalation", "monitor")

    def __init__(self, invocation: Invocation, on_done: DoneCallback) -> None:
        self.invocation = invocation
        self.on_done = on_done
        self.process: Any = None
        self.cancelled = False
        self.lock = threading.Lock()
        self.escalation: _Escalation | None = None
        self.monitor: threading.Thread | None = None


def _start_forkserver_deaf_to_group_signals() -> None:
    """Start multiprocessing's fork server now, with SIGHUP and SIGTERM ignored (from the main thread).

    A closed terminal sends SIGHUP to its whole foreground group, and ``kill -TERM -PGID``
    or a service manager's stop sends SIGTERM to every process of the group or cgroup,
    the fork server included; a fork server that dies takes the exit status of every
    child it forked with it (they are reported dead, exit code 255, while still
    running). An ignored signal stays ignored through the exec that starts the server,
    so it outlives the signal and the run is cancelled cleanly (orchtui.cli.foreground).
    The server still ends with this process: it exits when the pipe from it closes. Its
    children set handlers of their own (:func:`_run_in_child`), so what they exec
    starts with the default actions. The fork server is one per process: other
    forkserver processes this process starts (a library user's own pool, say) inherit
    the ignored signals too, so ``Process.terminate`` does not stop them; they need a
    SIGTERM handler of their own. Off the main thread,
    where no handler can be set, the server starts on first use as before.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    from multiprocessing import forkserver

    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in (signal.SIGHUP, signal.SIGTERM)}
    try:
        forkserver.ensure_running()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class ProcessBackend:
    """Runs every invocation in its own child process.

    Cancel sends SIGUSR1 to the child (its ``invoke`` stops the action and its
    subprocesses and reports ``Cancelled``); if the child is still alive ``kill_grace``
    seconds later, it and all its descendants get SIGKILL. The child ignores SIGTERM,
    SIGINT and SIGHUP, which reach it only as a member of this process's group: the
    parent decides what they mean.

    Args:
        max_workers: the concurrency the orchestrator will use (reported as ``capacity``).
        start_method: ``"forkserver"`` (default) or ``"spawn"``; both start children
            from a clean interpreter, so no lock held by a dispatcher thread is inherited.
        kill_grace: seconds between the cancel signal and SIGKILL on cancel.
        invoke_target: ``"module:function"`` the child calls (default ``core.actions:invoke``).

    Raises:
        OrchestrationError: ``start_method`` is not one of the two.
    """

    name = "process"
    queues_excess = False

    def __init__(
        self,
        max_workers: int = 4,
        *,
        start_method: str = "forkserver",
        kill_grace: float = 5.0,
        invoke_target: str = "core.actions:invoke",
    ) -> None:
        if start_method not in ("forkserver", "spawn"):
            raise OrchestrationError(
                f"process backend start_method {start_method!r} is not supported; use 'forkserver' or 'spawn'"
            )
        self._max_workers = max(1, int(max_workers))
        self._ctx = multiprocessing.get_context(start_method)
        mark_own_children()  # before the fork server starts: its children inherit the marker
        if start_method == "forkserver":
            self._ctx.set_forkserver_preload([invoke_target.partition(":")[0]])
            _start_forkserver_deaf_to_group_signals()
        self._invoke_target = invoke_target
        self._kill_grace = kill_grace
        self._lock = threading.Lock()
        self._live: set[_ProcessAttempt] = set()
        self._closed = False

    @property
    def capacity(self) -> int | None:
        return self._max_workers

    def submit(self, invocation: Invocation, on_done: DoneCallback) -> _ProcessAttempt:
        """Start a child for ``invocation``; ``on_done(result)`` is called once when it ends.

        Returns:
            The attempt handle, to pass to :meth:`cancel`.
        """
        attempt = _ProcessAttempt(invocation, on_done)
        with self._lock:
            if self._closed:
                closed = True
            else:
                closed = False
                self._live.add(attempt)
        if closed:
            on_done(cancelled_result(invocation, "the executor was shut down before the task started"))
            return attempt
        # Starting a child takes milliseconds; do it on the monitor thread, not the caller's.
        attempt.monitor = threading.Thread(
            target=self._run, args=(attempt,), name=f"orchtui-proc-{invocation.task_name}", daemon=True
        )
        attempt.monitor.start()
        return attempt

    def cancel(self, handle: _ProcessAttempt) -> None:
        """Signal the child to cancel now and SIGKILL its whole tree after ``kill_grace``. Idempotent."""
        with handle.lock:
            if handle.cancelled:
                return
            handle.cancelled = True
            process = handle.process
            if process is None:
                return  # not started yet: the monitor sees the flag and reports Cancelled
            self._signal_child(handle, process)

    def shutdown(self, wait: bool = True, *, timeout: float | None = None) -> None:
        """Refuse new work; with ``wait``, wait for every live child to end.

        Children still running when ``timeout`` passes are killed with their trees, so
        shutdown never leaves a process behind.
        """
        with self._lock:
            self._closed = True
            live = list(self._live)
        if not wait:
            return
        for attempt in live:
            monitor = attempt.monitor
            if monitor is not None:
                monitor.join(timeout)
                if monitor.is_alive():
                    self.cancel(attempt)
                    monitor.join(self._kill_grace + 1.0)

    def _signal_child(self, handle: _ProcessAttempt, process: Any) -> None:
        """Send the cancel signal and arm the SIGKILL escalation; called with ``handle.lock`` held."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, _CANCEL_SIGNAL)
        handle.escalation = _Escalation(process.pid, self._kill_grace)

    def _run(self, attempt: _ProcessAttempt) -> None:
        invocation = attempt.invocation
        result: TaskResult | None = None
        try:
            result = self._run_child(attempt)
        except BaseException as exc:  # reported as the attempt's result; on_done must still run
            result = crash_result(invocation, exc)
        finally:
            with self._lock:
                self._live.discard(attempt)
            attempt.on_done(result or cancelled_result(invocation))

    def _run_child(self, attempt: _ProcessAttempt) -> TaskResult:
        invocation = attempt.invocation
        receiver, sender = self._ctx.Pipe(duplex=False)
        # Held open (never written) while the child lives: when this process dies, the
        # child's end reaches end of file and the child's stand-in ends it (``_start_stand_in``).
        lifeline_r, lifeline_w = self._ctx.Pipe(duplex=False)
        process = self._ctx.Process(
            target=_child_main,
            args=(invocation, sender, self._invoke_target, this_process(), lifeline_r),
            name=f"orchtui-{invocation.task_name}",
            daemon=False,
        )
        with attempt.lock:
            if attempt.cancelled:
                for end in (receiver, sender, lifeline_r, lifeline_w):
                    end.close()
                return cancelled_result(invocation)
            started = time.time()  # a child that dies without a result still reports its span
            try:
                process.start()
            except BaseException:
                lifeline_w.close()
                raise
            finally:
                lifeline_r.close()
            attempt.process = process
        sender.close()  # only the child writes; EOF on our end then means the child died
        result: TaskResult | None = None
        try:
            wait_connections([receiver, process.sentinel])
            if receiver.poll():
                with contextlib.suppress(EOFError):
                    result = receiver.recv()
        finally:
            receiver.close()
            process.join()
            lifeline_w.close()  # only now: closed earlier, it would kill the child mid-cleanup
            with attempt.lock:
                if attempt.escalation is not None:
                    attempt.escalation.cancel()
        if result is not None:
            return result
        if attempt.cancelled:
            return cancelled_result(invocation, "cancelled; the task's process was killed")
        finished = time.time()
        return TaskResult(
            success=False,
            error_message=f"the process running {invocation.task_name} died with exit code {process.exitcode}",
            error_type="ProcessDied",
            execution_time=finished - started,
            exit_code=process.exitcode,
            attempt=invocation.attempt,
            started_at=started,
            finished_at=finished,
        )


# ------------------------------------------------------------------- factory


def create_backend(name: str, max_workers: int, **options: Any) -> ExecutorBackend:
    """Return a new executor backend by name.

    Args:
        name: ``"thread"``, ``"process"`` or ``"dask"``.
        max_workers: concurrency the orchestrator will use.
        **options: passed to the backend's constructor.

    Returns:
        The backend.

    Raises:
        OrchestrationError: unknown name, or the dask extra is not installed.
    """
    key = str(name).strip().lower()
    if key == "thread":
        return ThreadBackend(max_workers, **options)
    if key == "process":
        return ProcessBackend(max_workers, **options)
    if key == "dask":
        try:
            from .dask_backend import DaskBackend
        except ImportError as exc:
            missing = (exc.name or "").split(".")[0]
            if missing in ("dask", "distributed"):
                raise OrchestrationError(
                    "the dask backend needs the extra: pip install 'orchtui[dask]'",
                    error_code="BACKEND_UNAVAILABLE",
                ) from None
            raise OrchestrationError(
                f"the dask backend could not be loaded ({exc}); use backend 'thread' or 'process'",
                error_code="BACKEND_UNAVAILABLE",
            ) from None
        return DaskBackend(max_workers, **options)
    raise OrchestrationError(
        f"unknown executor backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}",
        error_code="INVALID_ARGUMENT",
    )
