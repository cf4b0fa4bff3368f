"""A Python callable on a worker thread is interrupted at its deadline or on cancel, and only inside the call."""

from __future__ import annotations

import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from core.actions import ActionContext, StepCancelled, StepTimeout
from core.executors import CancelToken
from core.models import Task, TaskStatus
from core.task_orchestrator import RunSpec, TaskOrchestrator
from core import thread_interrupt
from core.thread_interrupt import call_interruptibly

WAIT = 60.0


def context(*, timeout: float | None = None, cancel: CancelToken | None = None) -> ActionContext:
    deadline = time.monotonic() + timeout if timeout is not None else None
    return ActionContext("t", "step", deadline=deadline, timeout=timeout,
                         **({"cancel_event": cancel} if cancel is not None else {}))


def spin_forever(progress: list[int]) -> None:
    while True:
        progress[0] += 1


def swallow_everything(progress: list[int]) -> None:
    while True:
        try:
            while True:
                progress[0] += 1
        except Exception:  # a function that "handles" every error it sees
            pass


def in_thread(fn: Any, *args: Any) -> Any:
    """Run ``fn`` on a new thread (as a worker would) and return what it returned or raised."""
    box: list[Any] = []

    def body() -> None:
        try:
            box.append(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            box.append(exc)

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(WAIT)
    assert not thread.is_alive(), "the call was never interrupted"
    return box[0]


@pytest.mark.parametrize("fn", [spin_forever, swallow_everything])
def test_a_busy_loop_is_stopped_at_its_deadline(fn: Any) -> None:
    progress = [0]
    outcome = in_thread(lambda: call_interruptibly(context(timeout=0.2), fn, progress))
    assert isinstance(outcome, StepTimeout)
    stopped_at = progress[0]
    assert stopped_at > 0
    time.sleep(0.2)
    assert progress[0] == stopped_at  # the loop really stopped, it was not left running


def test_a_cancelled_call_is_stopped() -> None:
    cancel = CancelToken()
    progress = [0]
    threading.Timer(0.1, cancel.set).start()
    assert isinstance(in_thread(lambda: call_interruptibly(context(cancel=cancel), spin_forever, progress)),
                      StepCancelled)


def test_a_function_that_catches_the_interrupt_and_returns_is_still_cancelled() -> None:
    def stubborn(progress: list[int]) -> str:
        try:
            spin_forever(progress)
        except BaseException as exc:  # noqa: BLE001 - what the test is about
            return f"caught {type(exc).__name__}"
        return "unreachable"

    cancel = CancelToken()
    threading.Timer(0.1, cancel.set).start()
    assert isinstance(in_thread(lambda: call_interruptibly(context(cancel=cancel), stubborn, [0])), StepCancelled)


def test_a_call_that_returns_in_time_gives_its_value() -> None:
    assert in_thread(lambda: call_interruptibly(context(timeout=30), lambda x: x * 2, 21)) == 42


def test_the_functions_own_exception_passes_through() -> None:
    def boom() -> None:
        raise ValueError("mine")
    outcome = in_thread(lambda: call_interruptibly(context(timeout=30), boom))
    assert isinstance(outcome, ValueError) and str(outcome) == "mine"


def test_nothing_is_ever_raised_outside_the_call() -> None:
    """Deadlines that fall just around the end of each call: an interrupt must never land after it."""
    rng = random.Random(7)
    escaped: list[BaseException] = []

    def worker() -> None:
        for _ in range(3000):
            budget = rng.uniform(0.0, 0.0005)
            try:
                call_interruptibly(context(timeout=budget), lambda: sum(range(rng.randrange(1, 2_000))))
            except (StepTimeout, StepCancelled):
                pass
            try:
                for _ in range(2_000):  # bytecodes where a stray interrupt would land
                    pass
            except BaseException as exc:  # noqa: BLE001 - that is the failure being looked for
                escaped.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT * 2)
    assert escaped == []
    assert thread_interrupt._watchdog._calls == {}  # no call left registered (and armed)


def test_a_timed_out_python_step_stops_before_its_retry_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trace = tmp_path / "trace.txt"
    (tmp_path / "spinning_step.py").write_text(
        "import itertools\n"
        "def run(path, ctx):\n"
        "    with open(path, 'a') as f: f.write(f'start {ctx.attempt}\\n')\n"
        "    try:\n"
        "        for _ in itertools.count(): pass\n"
        "    finally:\n"
        "        with open(path, 'a') as f: f.write(f'stop {ctx.attempt}\\n')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("spinning_step", None)
    orchestrator = TaskOrchestrator(2, kill_grace=30.0)  # the backstop would need 32 s
    try:
        task = Task(name="spin", module="python", action="call", timeout=0.3, max_retries=1, retry_delay=0.0,
                    parameters={"target": "spinning_step:run", "args": [str(trace)]})
        orchestrator.submit_run(RunSpec(run_id="r"), [task])
        assert orchestrator.wait_for_run("r", WAIT)
    finally:
        orchestrator.shutdown(wait=True)
    assert task.status == TaskStatus.FAILED and "timed out" in task.error
    assert trace.read_text().split("\n")[:-1] == ["start 1", "stop 1", "start 2", "stop 2"]
