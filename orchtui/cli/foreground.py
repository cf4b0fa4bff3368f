"""Following a run in the foreground: its progress, and the signals that stop it.

``orchtui run``, ``resume`` and ``rerun`` run a workflow in the command's own process.
Whatever ends that process early must first cancel the run, or its step processes
outlive it and its record says "running" until another orchtui process notices: Ctrl-C
(SIGINT) from a terminal, SIGTERM from ``timeout``, cron wrappers, systemd or ``kill``,
and SIGHUP from a closed terminal or a dropped SSH connection. The first of them asks
for a clean cancel (running steps' process trees get SIGTERM, then SIGKILL after their
grace period, and the command returns once they are gone); a second one stops waiting.
A signal that was ignored when the command started (``nohup`` ignores SIGHUP) stays
ignored.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from rich.console import Console

from core.models import WorkflowExecution, WorkflowStatus
from core.process_tree import hurry_kills
from core.workflow_run import RunHandle

from .common import silence_stdout

__all__ = ["Interrupts", "follow_run", "final_execution"]

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupts:
    """Signal handlers for a command that runs a workflow (see the module docstring).

    ``requested`` is set by the first signal, ``received`` names it; the second one
    raises KeyboardInterrupt in the main thread while the run is followed
    (:func:`follow_run`), and any later one is ignored, so nothing interrupts the
    shutdown that kills what still runs. Install with ``with Interrupts() as i`` (from
    the main thread), around the shutdown too.
    """

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.received: signal.Signals | None = None
        self.following = True  # a second signal stops the wait (False once the follow ended)
        self._previous: dict[signal.Signals, Any] = {}

    @property
    def exit_code(self) -> int:
        """What a shell reports for a command the received signal ended: 128 + its number."""
        return 128 + int(self.received or signal.SIGINT)

    @property
    def label(self) -> str:
        """How the user knows the received signal: "Ctrl-C" for SIGINT, else its name."""
        return "Ctrl-C" if self.received in (None, signal.SIGINT) else self.received.name

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if not self.requested.is_set():
            self.received = signal.Signals(signum)
            self.requested.set()
            return
        hurry_kills()  # stop waiting for the steps' grace period: SIGKILL what still runs
        if self.following:
            self.following = False
            raise KeyboardInterrupt

    def __enter__(self) -> Interrupts:
        for number in _STOP_SIGNALS:
            if signal.getsignal(number) is not signal.SIG_IGN:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous)


def follow_run(handle: RunHandle, interrupts: Interrupts, *, quiet: bool, console: Console,
               snapshot: Callable[[], Any]) -> bool:
    """Wait for the run of ``handle`` to end, showing its progress unless ``quiet``;
    return True when a stop signal came before it ended.

    That includes a run that ended just before this noticed the signal: a signal sent
    to the whole group or cgroup (a service manager's stop) also reaches the steps'
    commands, which may end their steps first.

    ``snapshot`` gives the orchestrator's state for the progress view.
    """
    from ..progress import RunProgress

    interrupted = False
    try:
        if quiet:
            while handle.wait(0.1) is None:
                if interrupts.requested.is_set():
                    interrupted = handle.cancel()
                    handle.wait()
                    break
        else:
            with RunProgress(handle, console=console, snapshot=snapshot) as progress:
                if progress.follow(should_stop=interrupts.requested.is_set) is None:
                    interrupted = handle.cancel()
                    progress.set_notice(f"{interrupts.label}: cancelling the run "
                                        f"({interrupts.label} again to stop waiting)")
                    progress.follow()
    except KeyboardInterrupt:  # the second signal: stop waiting (the caller kills what still runs)
        interrupted = True
        handle.cancel()
    except BrokenPipeError:  # `orchtui run ... | head`: the reader left, the run goes on unseen
        silence_stdout()
        return follow_run(handle, interrupts, quiet=True, console=console, snapshot=snapshot)
    finally:
        interrupts.following = False
    return interrupted or interrupts.requested.is_set()


def final_execution(handle: RunHandle) -> WorkflowExecution:
    """Return the run's execution after the command stopped following it; a run whose end
    it stopped waiting for (a second signal) never saw its last transition and is
    reported cancelled."""
    execution = handle.execution
    if not handle.done():
        execution.status = WorkflowStatus.CANCELLED
        execution.error = execution.error or f"run {handle.run_id} was cancelled"
    return execution
