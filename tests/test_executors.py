"""Executor backends: results exactly once, cancel and timeouts that stop real work."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import psutil
import pytest

from core.errors import OrchestrationError
from core.executors import CancelToken, ProcessBackend, ThreadBackend, cancelled_result, create_backend
from core.models import Invocation, TaskResult

WAIT = 30.0


class Results:
    """An on_done callback that counts calls and lets the test wait for them."""

    def __init__(self) -> None:
        self.items: list[TaskResult] = []
        self._cond = threading.Condition()

    def __call__(self, result: TaskResult) -> None:
        with self._cond:
            self.items.append(result)
            self._cond.notify_all()

    def wait(self, count: int = 1) -> list[TaskResult]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.items) >= count, WAIT), self.items
            return list(self.items)


def inv(module: str, action: str, timeout: float | None = None, **params: Any) -> Invocation:
    return Invocation("t1", "step", module, action, params, 1, None, timeout)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_cancel_token_wakes_a_waiter() -> None:
    token = CancelToken()
    woke = threading.Event()

    def waiter() -> None:
        if token.wait(WAIT):
            woke.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    assert not token.is_set()
    token.set()
    thread.join(WAIT)
    assert woke.is_set() and token.is_set() and token.wait(0)


def test_thread_backend_runs_and_reports_once() -> None:
    backend = ThreadBackend(2)
    done = Results()
    backend.submit(inv("builtin", "echo", message="hi"), done)
    backend.submit(inv("builtin", "fail", message="nope", exit_code=4), done)
    results = sorted(done.wait(2), key=lambda r: r.success)
    backend.shutdown()
    assert [r.success for r in results] == [False, True]
    assert results[0].exit_code == 4 and results[1].data == "hi"
    assert len(done.items) == 2


def test_thread_backend_cancel_stops_a_cooperative_action() -> None:
    backend = ThreadBackend(1)
    done = Results()
    handle = backend.submit(inv("builtin", "sleep", seconds=60), done)
    backend.cancel(handle)
    (result,) = done.wait()
    backend.shutdown()
    assert result.error_type == "Cancelled"


def test_thread_backend_replaces_a_thread_stuck_in_a_cancelled_attempt() -> None:
    release = threading.Event()
    entered = threading.Event()

    def stubborn(invocation: Invocation, cancel: Any) -> TaskResult:
        if invocation.task_name == "stuck":
            entered.set()
            release.wait(WAIT)  # ignores the cancel token
        return TaskResult(success=True, data=invocation.task_name)

    backend = ThreadBackend(1, invoke=stubborn)
    done = Results()
    handle = backend.submit(Invocation("a", "stuck", "x", "y"), done)
    assert entered.wait(WAIT)
    backend.cancel(handle)
    backend.submit(Invocation("b", "next", "x", "y"), done)
    assert done.wait(1)[0].data == "next"  # ran although the only worker is stuck
    assert backend.thread_count == 2
    release.set()
    assert {r.data for r in done.wait(2)} == {"stuck", "next"}
    backend.shutdown(wait=True)


def _shut_down_on_a_thread(backend: ThreadBackend) -> threading.Thread:
    """Start ``backend.shutdown(wait=True)``, without a timeout, on a thread of its own."""
    shutting = threading.Thread(target=backend.shutdown, kwargs={"wait": True}, daemon=True)
    shutting.start()
    return shutting


def test_thread_backend_shutdown_does_not_wait_for_an_attempt_given_up_on() -> None:
    release = threading.Event()
    entered = threading.Event()

    def stubborn(invocation: Invocation, cancel: Any) -> TaskResult:
        entered.set()
        release.wait(WAIT)  # ignores the cancel token
        return TaskResult(success=True)

    backend = ThreadBackend(1, invoke=stubborn)
    handle = backend.submit(Invocation("a", "stuck", "x", "y"), Results())
    assert entered.wait(WAIT)
    backend.cancel(handle)
    backend.abandon(handle)
    shutting = _shut_down_on_a_thread(backend)
    shutting.join(WAIT)
    assert not shutting.is_alive()  # returned while the abandoned attempt still runs
    release.set()


def test_thread_backend_shutdown_waits_for_a_cancelled_attempt_still_stopping() -> None:
    stopping = threading.Event()
    stopped = threading.Event()

    def slow_to_stop(invocation: Invocation, cancel: Any) -> TaskResult:
        cancel.wait(WAIT)
        stopping.wait(WAIT)  # cleaning up, as a step killing its process tree does
        stopped.set()
        return cancelled_result(invocation)

    backend = ThreadBackend(1, invoke=slow_to_stop)
    handle = backend.submit(Invocation("a", "step", "x", "y"), Results())
    backend.cancel(handle)
    shutting = _shut_down_on_a_thread(backend)
    shutting.join(0.2)
    assert shutting.is_alive() and not stopped.is_set()
    stopping.set()
    shutting.join(WAIT)
    assert not shutting.is_alive() and stopped.is_set()


def test_thread_backend_after_shutdown_reports_cancelled() -> None:
    backend = ThreadBackend(1)
    backend.shutdown()
    done = Results()
    backend.submit(inv("builtin", "noop"), done)
    assert done.wait()[0].error_type == "Cancelled"


def test_process_backend_runs_in_a_child_process() -> None:
    backend = ProcessBackend(2)
    done = Results()
    backend.submit(inv("python", "call", target="os:getpid"), done)
    (result,) = done.wait()
    backend.shutdown()
    assert result.success and result.data != psutil.Process().pid


def test_process_backend_reports_a_child_that_died_without_a_result_with_its_span() -> None:
    # The store keeps the attempt's start and end from its result; a dead child sends none.
    backend = ProcessBackend(1)
    done = Results()
    backend.submit(inv("python", "call", target="os:_exit", args=[3]), done)
    (result,) = done.wait()
    backend.shutdown()
    assert (result.error_type, result.exit_code) == ("ProcessDied", 3)
    assert result.started_at is not None and result.finished_at is not None
    assert result.finished_at - result.started_at == pytest.approx(result.execution_time)


SUBREAPER_SCRIPT = """
import ctypes, sys
import psutil
from core.executors import ProcessBackend
from core.models import Invocation

ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans below come to us
if __name__ == "__main__":
    backend = ProcessBackend(2, start_method=sys.argv[1])
    done = []
    for n in range(4):
        backend.submit(Invocation(f"t{n}", "step", "python", "call", {"target": "os:getpid"}, 1, None, None),
                       done.append)
    backend.shutdown()
    assert len(done) == 4 and all(r.success for r in done), done
    print(sum(1 for c in psutil.Process().children() if c.status() == psutil.STATUS_ZOMBIE))
"""


@pytest.mark.parametrize("start_method", ["forkserver", "spawn"])
def test_process_backend_steps_leave_no_zombie_even_where_orphans_come_to_orchtui(start_method: str) -> None:
    # Inside a container orchtui may be PID 1, which inherits every orphan and must reap
    # it: a step's child process must not leave anything of its own behind for that.
    out = subprocess.run([sys.executable, "-c", SUBREAPER_SCRIPT, start_method], capture_output=True, text=True,
                         timeout=120, cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"


def test_process_backend_timeout_stops_python_that_ignores_it() -> None:
    backend = ProcessBackend(1)
    warm = Results()
    backend.submit(inv("builtin", "noop"), warm)
    warm.wait()
    helpers = {p.pid for p in psutil.Process().children()}  # the forkserver lives on
    done = Results()
    backend.submit(inv("python", "call", timeout=0.3, target="time:sleep", args=[60]), done)
    (result,) = done.wait()
    backend.shutdown()
    assert result.error_type == "TimeoutError"
    assert {p.pid for p in psutil.Process().children() if not gone(p.pid)} <= helpers


def test_process_backend_cancel_kills_the_whole_tree(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    backend = ProcessBackend(1, kill_grace=0.5)
    done = Results()
    handle = backend.submit(inv("shell", "run", command=f"sleep 60 & echo $! > {pidfile}; wait"), done)
    for _ in range(3000):
        if pidfile.exists() and pidfile.read_text().strip():
            break
        threading.Event().wait(0.01)
    backend.cancel(handle)
    backend.cancel(handle)  # idempotent
    (result,) = done.wait()
    backend.shutdown()
    assert result.error_type == "Cancelled"
    assert gone(int(pidfile.read_text()))
    assert len(done.items) == 1


def test_process_backend_rejects_fork() -> None:
    with pytest.raises(OrchestrationError, match="forkserver"):
        ProcessBackend(1, start_method="fork")


def test_create_backend_by_name() -> None:
    thread = create_backend("thread", 3)
    assert isinstance(thread, ThreadBackend) and thread.capacity == 3
    thread.shutdown()
    assert isinstance(create_backend("Process", 2), ProcessBackend)
    with pytest.raises(OrchestrationError, match="unknown executor backend"):
        create_backend("gpu-cluster", 1)


def test_dask_backend_is_loaded_lazily_or_explained() -> None:
    if importlib.util.find_spec("core.dask_backend") is not None:
        backend = create_backend("dask", 1)
        assert backend.name == "dask"
        backend.shutdown()
    else:
        with pytest.raises(OrchestrationError, match="dask backend"):
            create_backend("dask", 1)


def _run_in_a_process_child(command: str) -> None:
    """Run the shell ``command`` as a step in a ProcessBackend child, to its successful end."""
    backend = ProcessBackend(1)
    done = Results()
    backend.submit(inv("shell", "run", command=command), done)
    (result,) = done.wait()
    backend.shutdown()
    assert result.success, result.error_message


def test_steps_started_by_a_process_child_carry_the_owner_marker_of_the_parent(tmp_path: Path) -> None:
    # Crash recovery finds a dead owner's steps by this marker, so a step started inside
    # a process-executor child must name the orchtui process, not the child.
    from core.process_tree import OWNER_ENV, owner_marker, this_process

    out = tmp_path / "marker.txt"
    _run_in_a_process_child(f"printenv {OWNER_ENV} > {out}")
    assert out.read_text().strip() == owner_marker(*this_process())


def test_commands_a_process_child_runs_start_with_no_stop_signal_ignored(tmp_path: Path) -> None:
    # The child leaves group signals to its parent, but what it execs must still stop
    # on SIGTERM (a cancel's first step) and on Ctrl-C and hangups of its own.
    import signal

    out = tmp_path / "status.txt"
    _run_in_a_process_child(f"grep SigIgn /proc/$$/status > {out}")
    ignored = int(out.read_text().split()[1], 16)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        assert not ignored & (1 << (signum - 1)), f"{signum.name} is ignored"


def _logged(module: str, action: str, log: Path, timeout: float, **params: Any) -> Invocation:
    return Invocation("t1", "step", module, action, params, 1, None, timeout, str(log), kill_grace=0.5)


def test_process_backend_times_out_a_shell_step_as_a_timeout_with_its_log_note(tmp_path: Path) -> None:
    # The child's SIGALRM used to strike inside the shell action's supervisor, whose
    # TimeoutError (an OSError) read as "cannot start '/bin/sh'", with no note in the log.
    log = tmp_path / "sh.log"
    backend = ProcessBackend(1)
    done = Results()
    backend.submit(_logged("shell", "run", log, 0.5, command="echo start; sleep 30"), done)
    (result,) = done.wait()
    backend.shutdown()
    assert result.error_type == "TimeoutError" and result.error_message == "timed out after 0.5s"
    assert log.read_text().splitlines()[-1].startswith("[orchtui: timed out: sent SIGTERM to")


def _python_spawning_sleep(tmp_path: Path) -> dict[str, Any]:
    """python.call parameters that start `sleep 60` with subprocess, note its pid, and wait for it."""
    pidfile = tmp_path / "pid"
    code = (f"import subprocess, pathlib; p = subprocess.Popen(['sleep', '60']); "
            f"pathlib.Path({str(pidfile)!r}).write_text(str(p.pid)); p.wait()")
    return {"target": "builtins:exec", "args": [code]}


@pytest.mark.parametrize("how", ["timeout", "cancel"])
def test_process_backend_stops_what_a_python_call_started_at_its_timeout_or_cancel(tmp_path: Path, how: str) -> None:
    log = tmp_path / "py.log"
    backend = ProcessBackend(1)
    done = Results()
    handle = backend.submit(_logged("python", "call", log, 2.0 if how == "timeout" else 60.0,
                                    **_python_spawning_sleep(tmp_path)), done)
    pidfile = tmp_path / "pid"
    for _ in range(3000):
        if pidfile.exists() and pidfile.read_text().strip():
            break
        threading.Event().wait(0.01)
    if how == "cancel":
        backend.cancel(handle)
    (result,) = done.wait()
    backend.shutdown()
    assert result.error_type == ("TimeoutError" if how == "timeout" else "Cancelled")
    assert gone(int(pidfile.read_text()))
    assert "process(es) the step started" in log.read_text()


def test_a_process_backend_fork_server_and_its_children_carry_the_owner_marker() -> None:
    # Crash recovery finds a dead orchtui's leftovers by this marker; a process-executor
    # child that outlived it would otherwise run beside the resume of its own step.
    from core.process_tree import OWNER_ENV, owner_marker, this_process

    backend = ProcessBackend(1)
    done = Results()
    backend.submit(inv("python", "call", target="os:getenv", args=[OWNER_ENV]), done)
    (result,) = done.wait()
    backend.shutdown()
    assert result.data == owner_marker(*this_process())
