"""TaskOrchestrator: priorities, dependencies, skips, retries, timeouts, cancel, resources, runs.

Real threads and real subprocesses throughout. Synchronisation is by listener events,
``wait_for_completion`` and ``flush()``, never by sleeping; retry and aging times come
from a ManualClock, so no test asserts a wall-clock duration.
"""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from core.actions import ActionContext, registry
from core.clock import ManualClock
from core.errors import CycleDetectedError, OrchestrationError, TaskExecutionError
from core.events import EventBus, EventType
from core.models import Task, TaskPriority, TaskStatus, TaskTransition
from core.resource_manager import ResourceManager
from core.task_orchestrator import RunSpec, TaskOrchestrator

WAIT = 30.0  # generous upper bound for any wait; a passing test never gets near it


# ----------------------------------------------------------------- test actions


class Gates:
    """Named events that ``orchtest.gate`` tasks wait on, plus a log of who ran when."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gates: dict[str, threading.Event] = defaultdict(threading.Event)
        self.started: dict[str, threading.Event] = defaultdict(threading.Event)
        self.active = 0
        self.max_active = 0

    def gate(self, name: str) -> threading.Event:
        with self._lock:
            return self._gates[name]

    def entered(self, name: str) -> threading.Event:
        with self._lock:
            return self.started[name]

    def open(self, *names: str) -> None:
        for name in names:
            self.gate(name).set()

    def run(self, ctx: ActionContext, params: dict[str, Any]) -> Any:
        name = params["gate"]
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        self.entered(name).set()
        try:
            gate = self.gate(name)
            if params.get("ignore_cancel"):
                gate.wait(WAIT)  # an action that never checks its context
            else:
                while not gate.wait(0.005):
                    ctx.check()
        finally:
            with self._lock:
                self.active -= 1
        return params.get("output", name)


@pytest.fixture
def gates() -> Iterator[Gates]:
    gates = Gates()
    registry.register("orchtest", "gate", gates.run, replace=True)
    yield gates
    for event in list(gates._gates.values()):
        event.set()  # never leave a worker blocked
    registry.unregister("orchtest", "gate")


def gate_task(name: str, **kwargs: Any) -> Task:
    params = {"gate": name, **kwargs.pop("params", {})}
    return Task(name=name, module="orchtest", action="gate", parameters=params, **kwargs)


class Transitions:
    """A listener that keeps every transition and lets a test wait for one."""

    def __init__(self) -> None:
        self.items: list[TaskTransition] = []
        self._cond = threading.Condition()

    def __call__(self, transition: TaskTransition) -> None:
        with self._cond:
            self.items.append(transition)
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[TaskTransition], bool], count: int = 1) -> list[TaskTransition]:
        with self._cond:
            ok = self._cond.wait_for(lambda: len([t for t in self.items if predicate(t)]) >= count, WAIT)
            assert ok, f"transition never came; saw {[(t.name, t.status.value) for t in self.items]}"
            return [t for t in self.items if predicate(t)]

    def of(self, name: str) -> list[TaskStatus]:
        return [t.status for t in list(self.items) if t.name == name]

    def order(self, status: TaskStatus) -> list[str]:
        return [t.name for t in list(self.items) if t.status == status]


@pytest.fixture
def orch_factory() -> Iterator[Callable[..., tuple[TaskOrchestrator, Transitions]]]:
    made: list[TaskOrchestrator] = []

    def make(max_workers: int = 4, **kwargs: Any) -> tuple[TaskOrchestrator, Transitions]:
        orch = TaskOrchestrator(max_workers, **kwargs)
        seen = Transitions()
        orch.add_listener(seen)
        made.append(orch)
        return orch, seen

    yield make
    for orch in made:
        orch.shutdown(wait=True, cancel_running=True)


def noop(name: str, **kwargs: Any) -> Task:
    return Task(name=name, module="builtin", action="noop", **kwargs)


def fail(name: str, **kwargs: Any) -> Task:
    params = kwargs.pop("parameters", {"message": f"{name} failed on purpose"})
    return Task(name=name, module="builtin", action="fail", parameters=params, **kwargs)


def assert_alive_pid_gone(pid: int) -> None:
    try:
        proc = psutil.Process(pid)
        assert proc.status() == psutil.STATUS_ZOMBIE, f"process {pid} is still alive"
    except psutil.NoSuchProcess:
        pass


# ----------------------------------------------------------------- priorities


def test_priority_order_with_one_worker(orch_factory: Any) -> None:
    orch, seen = orch_factory(1)
    order = [TaskPriority.LOW, TaskPriority.BACKGROUND, TaskPriority.NORMAL, TaskPriority.CRITICAL, TaskPriority.HIGH]
    for n in range(2):  # two per lane: within a lane, first in first out
        for priority in order:
            orch.add_task(noop(f"{priority.label}-{n}", priority=priority))
    orch.start_execution()
    assert orch.wait_for_completion(WAIT)
    expected = [f"{p.label}-{n}" for p in sorted(TaskPriority) for n in range(2)]
    assert seen.order(TaskStatus.RUNNING) == expected


def test_remove_listener_accepts_a_bound_method(orch_factory: Any) -> None:
    orch, seen = orch_factory()
    removed = Transitions()
    orch.add_listener(removed.__call__)
    orch.remove_listener(removed.__call__)  # a fresh bound-method object, equal but not identical
    orch.execute_task(noop("a"))
    seen.wait_for(lambda t: t.name == "a" and t.status == TaskStatus.COMPLETED)
    assert removed.items == []


def test_tasks_wait_for_start_execution(orch_factory: Any) -> None:
    orch, _ = orch_factory(2)
    task = noop("held")
    orch.add_task(task)
    orch.flush()
    assert orch.get_task_status(task.id) == TaskStatus.READY
    assert not orch.wait_for_completion(0.05)
    orch.start_execution()
    assert orch.wait_for_completion(WAIT)
    assert task.status == TaskStatus.COMPLETED


# --------------------------------------------------------------- dependencies


def test_dependencies_start_after_their_dependencies_complete(orch_factory: Any) -> None:
    orch, seen = orch_factory(4)
    a = noop("a")
    b = noop("b", dependencies=[a.id])
    c = noop("c", dependencies=["a"])  # by name
    d = noop("d", dependencies=[b.id, c.id])
    for task in (a, b, c, d):
        orch.add_task(task)
    orch.start_execution()
    assert orch.wait_for_completion(WAIT)
    events = [(t.name, t.status) for t in seen.items]
    for child, parents in (("b", ["a"]), ("c", ["a"]), ("d", ["b", "c"])):
        start = events.index((child, TaskStatus.RUNNING))
        for parent in parents:
            assert events.index((parent, TaskStatus.COMPLETED)) < start
    assert orch.get_dependencies(d.id) == [b.id, c.id]
    assert orch.get_dependencies(c.id) == [a.id]


def test_failure_skips_dependents_transitively_and_spares_other_branches(orch_factory: Any) -> None:
    orch, _ = orch_factory(2)
    a = fail("a")
    b = noop("b", dependencies=[a.id])
    c = noop("c", dependencies=[b.id])
    d = noop("d")
    e = noop("e", dependencies=[d.id])
    results = orch.execute_parallel([a, b, c, d, e])
    assert [t.status for t in (a, b, c, d, e)] == [
        TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.SKIPPED, TaskStatus.COMPLETED, TaskStatus.COMPLETED,
    ]
    assert "'a' failed" in b.error and "'b' skipped" in c.error
    assert results[1].error_type == "Skipped" and not results[1].success
    stats = orch.get_execution_stats()
    assert (stats["failed"], stats["skipped"], stats["completed"]) == (1, 2, 2)


def test_continue_on_failure_lets_dependents_run(orch_factory: Any) -> None:
    orch, _ = orch_factory(2)
    a = fail("a", continue_on_failure=True)
    b = noop("b", dependencies=[a.id])
    orch.execute_parallel([a, b])
    assert (a.status, b.status) == (TaskStatus.FAILED, TaskStatus.COMPLETED)


def test_unknown_dependency_fails_with_a_clear_message(orch_factory: Any) -> None:
    orch, _ = orch_factory(1)
    result = orch.execute_task(noop("orphan", dependencies=["no-such-task"]))
    assert not result.success
    assert "no-such-task" in result.error_message and "submit the dependency first" in result.error_message


def test_references_between_plain_tasks_resolve_by_name(orch_factory: Any) -> None:
    orch, _ = orch_factory(2)
    a = noop("producer", parameters={"output": {"n": 41}})
    b = Task(name="consumer", module="builtin", action="echo",
             parameters={"message": "${producer.output.n}"}, dependencies=[a.id])
    orch.execute_parallel([a, b])
    assert b.result is not None and b.result.data == 41


# -------------------------------------------------------------------- retries


def test_retry_backoff_follows_the_injected_clock(orch_factory: Any) -> None:
    clock = ManualClock()
    orch, seen = orch_factory(1, clock=clock)
    task = fail("flaky", max_retries=2, retry_delay=10.0, retry_backoff=2.0, retry_jitter=0.0)
    orch.add_task(task)
    orch.start_execution()

    retry = seen.wait_for(lambda t: t.status == TaskStatus.PENDING and t.retry_at is not None)[0]
    assert retry.attempt == 1 and retry.retry_at == pytest.approx(clock.time() + 10.0)
    clock.advance(9.9)
    assert orch.flush()
    assert (task.attempts, task.status) == (1, TaskStatus.PENDING)
    clock.advance(0.2)
    assert orch.flush()
    assert task.attempts == 2  # started the moment its delay was over

    seen.wait_for(lambda t: t.status == TaskStatus.PENDING and t.retry_at is not None, count=2)
    clock.advance(19.9)  # second delay: 10 * 2
    assert orch.flush()
    assert task.attempts == 2
    clock.advance(0.2)
    assert orch.wait_for_completion(WAIT)
    assert (task.attempts, task.status) == (3, TaskStatus.FAILED)
    assert seen.of("flaky") == [
        TaskStatus.READY, TaskStatus.RUNNING, TaskStatus.PENDING,
        TaskStatus.READY, TaskStatus.RUNNING, TaskStatus.PENDING,
        TaskStatus.READY, TaskStatus.RUNNING, TaskStatus.FAILED,
    ]


def test_retry_only_on_listed_exit_codes(orch_factory: Any) -> None:
    orch, _ = orch_factory(2, clock=ManualClock())
    other = fail("other", parameters={"exit_code": 3}, max_retries=3, retry_delay=0, retry_on_exit_codes=[75])
    listed = fail("listed", parameters={"exit_code": 75}, max_retries=3, retry_delay=0, retry_jitter=0,
                  retry_on_exit_codes=[75])
    orch.execute_parallel([other, listed])
    assert (other.attempts, other.status) == (1, TaskStatus.FAILED)
    assert (listed.attempts, listed.status) == (4, TaskStatus.FAILED)
    assert listed.result is not None and listed.result.exit_code == 75 and listed.result.attempt == 4


def test_a_retry_that_succeeds_completes(orch_factory: Any, tmp_path: Path) -> None:
    marker = tmp_path / "second-time"
    command = f"test -e {marker} || {{ touch {marker}; exit 9; }}"
    orch, _ = orch_factory(1)
    task = Task(name="eventually", module="shell", action="run", parameters={"command": command},
                max_retries=1, retry_delay=0)
    result = orch.execute_task(task)
    assert result.success and task.attempts == 2


# ------------------------------------------------------------------- timeouts


def test_timeout_stops_a_builtin_sleep(orch_factory: Any) -> None:
    orch, _ = orch_factory(1)
    result = orch.execute_task(Task(name="nap", module="builtin", action="sleep",
                                    parameters={"seconds": 60}, timeout=0.2))
    assert not result.success and result.error_type == "TimeoutError"


def test_timeout_kills_a_shell_step_and_its_grandchildren(orch_factory: Any, tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    orch, _ = orch_factory(1, kill_grace=0.5)
    task = Task(name="hang", module="shell", action="run", timeout=0.5,
                parameters={"command": f"sleep 60 & echo $! > {pidfile}; wait"})
    result = orch.execute_task(task)
    assert result.error_type == "TimeoutError" and task.status == TaskStatus.FAILED
    assert_alive_pid_gone(int(pidfile.read_text()))


@pytest.mark.parametrize("endless", [float("nan"), float("inf"), 1e10], ids=["nan", "inf", "1e10"])
def test_a_timeout_no_wait_can_reach_keeps_the_dispatcher_and_later_timers_going(
        orch_factory: Any, endless: float) -> None:
    # Workflow files refuse these; a task built in Python once killed the dispatcher (the
    # wait for a timer 1e10 s away overflowed) or stalled every timer queued behind it
    # (a NaN one never came due), such as the retry of a later task.
    orch, _ = orch_factory(2)
    assert orch.execute_task(Task(name="endless", module="builtin", action="noop", timeout=endless), timeout=WAIT).success
    retried = Task(name="retried", module="builtin", action="fail", max_retries=1, retry_delay=0.01)
    result = orch.execute_task(retried, timeout=WAIT)
    assert not result.success and retried.attempts == 2


def test_backstop_abandons_an_attempt_that_ignores_its_timeout(orch_factory: Any, gates: Gates) -> None:
    clock = ManualClock()
    orch, _ = orch_factory(1, clock=clock, kill_grace=1.0)
    task = gate_task("stubborn", timeout=5.0, params={"ignore_cancel": True})
    orch.add_task(task)
    orch.start_execution()
    assert gates.entered("stubborn").wait(WAIT)
    clock.advance(5.0 + 1.0 + 1.0)  # before deadline + grace + margin: still running
    orch.flush()
    assert task.status == TaskStatus.RUNNING
    clock.advance(2.0)
    assert orch.wait_for_completion(WAIT)
    assert task.status == TaskStatus.FAILED and "abandoned" in task.error
    gates.open("stubborn")  # the abandoned thread returns late; its result is ignored
    after = orch.execute_task(noop("next"))
    assert after.success and task.status == TaskStatus.FAILED


# --------------------------------------------------------------------- cancel


def test_cancel_pending_task_skips_its_dependents(orch_factory: Any) -> None:
    orch, _ = orch_factory(2)
    a = noop("a")
    b = noop("b", dependencies=[a.id])
    orch.add_task(a)
    orch.add_task(b)
    assert orch.cancel_task(a.id)
    assert not orch.cancel_task(a.id)  # already over
    assert not orch.cancel_task("unknown-id")
    orch.start_execution()
    assert orch.wait_for_completion(WAIT)
    assert (a.status, b.status) == (TaskStatus.CANCELLED, TaskStatus.SKIPPED)


def test_cancel_running_shell_step_kills_its_tree(orch_factory: Any, tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    orch, seen = orch_factory(2, kill_grace=0.5)
    task = Task(name="long", module="shell", action="run",
                parameters={"command": f"sleep 60 & echo $! > {pidfile}; wait"})
    orch.add_task(task)
    orch.start_execution()
    seen.wait_for(lambda t: t.name == "long" and t.status == TaskStatus.RUNNING)
    for _ in range(1000):  # the shell writes the file right after it starts
        if pidfile.exists() and pidfile.read_text().strip():
            break
        threading.Event().wait(0.01)
    assert orch.cancel_task(task.id)
    assert orch.wait_for_completion(WAIT)
    assert task.status == TaskStatus.CANCELLED
    assert_alive_pid_gone(int(pidfile.read_text()))


def test_cancel_backstop_ends_a_task_that_ignores_cancellation(orch_factory: Any, gates: Gates) -> None:
    clock = ManualClock()
    orch, _ = orch_factory(1, clock=clock, kill_grace=1.0)
    task = gate_task("deaf", params={"ignore_cancel": True})
    orch.add_task(task)
    orch.start_execution()
    assert gates.entered("deaf").wait(WAIT)
    assert orch.cancel_task(task.id)
    orch.flush()
    assert task.status == TaskStatus.RUNNING  # asked to stop, grace not over
    clock.advance(3.5)
    assert orch.wait_for_completion(WAIT)
    assert task.status == TaskStatus.CANCELLED and "abandoned" in task.error


# ------------------------------------------------------------------ resources


def slot_manager(units: float) -> ResourceManager:
    rm = ResourceManager(detect=False)
    rm.register_resource("slots", "custom", {"units": units})
    return rm


def test_big_task_is_not_starved_by_a_stream_of_small_ones(orch_factory: Any, gates: Gates) -> None:
    clock = ManualClock()
    rm = slot_manager(2)
    orch, seen = orch_factory(4, resource_manager=rm, clock=clock, aging_interval=10.0)
    orch.start_execution()
    one = {"slots": {"units": 1}}
    for name in ("s1", "s2"):
        orch.add_task(gate_task(name, priority=TaskPriority.HIGH, resources=one))
        assert gates.entered(name).wait(WAIT)
    big = noop("big", priority=TaskPriority.LOW, resources={"slots": {"units": 2}})
    orch.add_task(big)
    orch.flush()  # queued (and stamped) before the clock moves
    clock.advance(25.0)  # waiting lifts LOW two levels: level with fresh HIGH work, and older
    stream = [gate_task(f"later{i}", priority=TaskPriority.HIGH, resources=one) for i in range(6)]
    for task in stream:
        orch.add_task(task)
    gates.open("s1")
    seen.wait_for(lambda t: t.name == "s1" and t.status == TaskStatus.COMPLETED)
    orch.flush()
    # One slot is free, but the big task holds the line: no small task may take it.
    assert all(t.status == TaskStatus.READY for t in stream), [t.status for t in stream]
    assert orch.snapshot().waiting_on_resources >= 1
    gates.open("s2")
    seen.wait_for(lambda t: t.name == "big" and t.status == TaskStatus.COMPLETED)
    gates.open(*[t.name for t in stream])
    assert orch.wait_for_completion(WAIT)
    started = seen.order(TaskStatus.RUNNING)
    assert started.index("big") < min(started.index(t.name) for t in stream)
    assert rm.get_usage("slots").current.get("units", 0) == 0


def test_a_task_waiting_for_a_lock_holds_back_no_other_resource(orch_factory: Any, gates: Gates) -> None:
    rm = slot_manager(2)
    rm.register_resource("L", "lock", {})
    orch, _ = orch_factory(4, resource_manager=rm)
    orch.start_execution()
    orch.add_task(gate_task("holder", priority=TaskPriority.HIGH, resources={"L": {}}))
    assert gates.entered("holder").wait(WAIT)
    orch.add_task(noop("deploy", priority=TaskPriority.CRITICAL, resources={"L": {}, "slots": {"units": 1}}))
    orch.flush()
    # The slots are free: only the lock keeps deploy waiting, so build must not wait too.
    orch.add_task(gate_task("build", priority=TaskPriority.LOW, resources={"slots": {"units": 1}}))
    assert gates.entered("build").wait(WAIT)
    gates.open("holder", "build")
    assert orch.wait_for_completion(WAIT)


def test_after_a_burst_of_instant_steps_no_more_steps_run_than_workers(orch_factory: Any, gates: Gates) -> None:
    # A burst of no-ops lets the dispatcher stage attempts ahead of the workers; a step
    # that may take long must not be: it would count as running (timeout ticking) while queued.
    orch, seen = orch_factory(1)
    tasks = [noop(f"n{i}") for i in range(60)] + [gate_task(f"g{i}") for i in range(4)]
    orch.start_execution()
    for task in tasks:
        orch.add_task(task)
    for i in range(4):
        assert gates.entered(f"g{i}").wait(WAIT)
        gates.open(f"g{i}")
    assert orch.wait_for_completion(WAIT)
    running: set[str] = set()
    most = 0
    for transition in list(seen.items):
        if transition.status == TaskStatus.RUNNING:
            running.add(transition.name)
        elif transition.status.is_terminal:
            running.discard(transition.name)
        if transition.name.startswith("g"):
            most = max(most, len({name for name in running if name.startswith("g")}))
    assert most == 1


def test_resource_gate_never_over_allocates(orch_factory: Any) -> None:
    rm = slot_manager(2)
    active = 0
    peak = 0
    lock = threading.Lock()

    def measured(ctx: ActionContext, params: dict[str, Any]) -> None:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        ctx.sleep(0.002)  # workload, so that attempts overlap if the gate let them
        with lock:
            active -= 1

    registry.register("orchtest", "measured", measured, replace=True)
    try:
        orch, _ = orch_factory(4, resource_manager=rm)
        tasks = [Task(name=f"m{i}", module="orchtest", action="measured", resources={"slots": {"units": 1}})
                 for i in range(24)]
        orch.execute_parallel(tasks)
    finally:
        registry.unregister("orchtest", "measured")
    assert all(t.status == TaskStatus.COMPLETED for t in tasks)
    assert peak <= 2
    assert rm.get_usage("slots").current.get("units", 0) == 0


def test_impossible_requirement_fails_fast(orch_factory: Any) -> None:
    orch, _ = orch_factory(1, resource_manager=slot_manager(2))
    result = orch.execute_task(noop("greedy", resources={"slots": {"units": 5}}))
    assert not result.success and "greedy" in result.error_message


# ----------------------------------------------------------------------- runs


def test_sequential_run_never_overlaps(orch_factory: Any) -> None:
    orch, seen = orch_factory(4)
    tasks = [Task(name=f"step{i}", module="builtin", action="sleep", parameters={"seconds": 0.001})
             for i in range(4)] + [noop(f"quick{i}") for i in range(40)]
    orch.submit_run(RunSpec(run_id="seq", max_parallel=1), tasks)
    assert orch.wait_for_run("seq", WAIT)
    flow = [(t.name, t.status) for t in seen.items if t.status in (TaskStatus.RUNNING, TaskStatus.COMPLETED)]
    assert len(flow) == 2 * len(tasks)
    for i in range(0, len(flow), 2):  # strictly: start a, end a, start b, end b, ...
        assert flow[i][1] == TaskStatus.RUNNING and flow[i + 1] == (flow[i][0], TaskStatus.COMPLETED)


def test_run_resolves_references_conditions_and_logs(orch_factory: Any, tmp_path: Path) -> None:
    orch, _ = orch_factory(2)
    out = tmp_path / "pwned"
    tasks = [
        Task(name="make", module="builtin", action="noop", parameters={"output": f"$(touch {out})"}),
        Task(name="say", module="shell", action="run", dependencies=["make"],
             parameters={"command": "echo {{ make.output }} {{ params.who }}"}),
        Task(name="never", module="builtin", action="noop", dependencies=["say"],
             conditions={"when": "{{ params.who }} == 'nobody'"}),
        Task(name="after-never", module="builtin", action="noop", dependencies=["never"]),
        Task(name="resumed-user", module="builtin", action="echo", dependencies=["old"],
             parameters={"message": "{{ old.output }}"}),
    ]
    log_dir = tmp_path / "logs"
    orch.submit_run(RunSpec(run_id="r1", params={"who": "world"}, log_dir=log_dir,
                            preset_outputs={"old": "from before"}), tasks)
    assert orch.wait_for_run("r1", WAIT)
    by_name = {t.name: t for t in tasks}
    assert by_name["say"].result.data == f"$(touch {out}) world"
    assert not out.exists()  # the upstream output was quoted, never executed
    assert by_name["never"].status == TaskStatus.SKIPPED and "condition" in by_name["never"].error
    assert by_name["after-never"].status == TaskStatus.SKIPPED
    assert by_name["resumed-user"].result.data == "from before"
    assert (log_dir / "say.1.log").exists()


def test_unresolvable_reference_fails_that_step_only(orch_factory: Any) -> None:
    orch, _ = orch_factory(2)
    tasks = [noop("a"), noop("b", dependencies=["a"], parameters={"output": "{{ a.output.missing }}"}), noop("c")]
    orch.submit_run(RunSpec(run_id="r2"), tasks)
    assert orch.wait_for_run("r2", WAIT)
    assert [t.status for t in tasks] == [TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.COMPLETED]
    assert "'b'" in tasks[1].error and "a.output.missing" in tasks[1].error


def test_a_condition_that_cannot_be_evaluated_names_its_step(orch_factory: Any) -> None:
    orch, _ = orch_factory(2)
    tasks = [noop("count", parameters={"output": "many"}),  # text that is no number
             noop("gate", dependencies=["count"], conditions={"when": "{{ count.output }} > 3"})]
    orch.submit_run(RunSpec(run_id="r-cond"), tasks)
    assert orch.wait_for_run("r-cond", WAIT)
    assert tasks[1].status == TaskStatus.FAILED
    assert tasks[1].error.startswith("cannot evaluate")


def test_preset_steps_do_not_run_again(orch_factory: Any) -> None:
    orch, seen = orch_factory(2)
    tasks = [noop("done-before"), Task(name="next", module="builtin", action="echo", dependencies=["done-before"],
                                       parameters={"message": "{{ done-before.output }}"})]
    orch.submit_run(RunSpec(run_id="r3", preset_outputs={"done-before": 7}), tasks)
    assert orch.wait_for_run("r3", WAIT)
    assert tasks[0].status == TaskStatus.COMPLETED and tasks[0].attempts == 0
    assert tasks[1].result.data == 7
    assert "done-before" not in seen.order(TaskStatus.RUNNING)


def test_cancel_run_cancels_waiting_and_running_tasks(orch_factory: Any, gates: Gates) -> None:
    orch, _ = orch_factory(2)
    tasks = [gate_task("first"), noop("second", dependencies=["first"]), noop("third", dependencies=["second"])]
    orch.submit_run(RunSpec(run_id="r4"), tasks)
    assert gates.entered("first").wait(WAIT)
    assert orch.cancel_run("r4") == 3
    assert orch.wait_for_run("r4", WAIT)
    assert [t.status for t in tasks] == [TaskStatus.CANCELLED] * 3
    assert orch.cancel_run("r4") == 0


def test_submit_run_rejects_bad_graphs(orch_factory: Any) -> None:
    orch, _ = orch_factory(1)
    with pytest.raises(CycleDetectedError):
        orch.submit_run(RunSpec(run_id="cyc"), [noop("a", dependencies=["b"]), noop("b", dependencies=["a"])])
    with pytest.raises(TaskExecutionError, match="unknown step"):
        orch.submit_run(RunSpec(run_id="bad"), [noop("a", dependencies=["ghost"])])
    with pytest.raises(TaskExecutionError, match="duplicate"):
        orch.submit_run(RunSpec(run_id="dup"), [noop("a"), noop("a")])
    orch.submit_run(RunSpec(run_id="once"), [noop("a")])
    with pytest.raises(TaskExecutionError, match="already submitted"):
        orch.submit_run(RunSpec(run_id="once"), [noop("a")])


# --------------------------------------------------------- spec-004 and the API


def test_spec_004_examples_fail_unknown_modules_cleanly(orch_factory: Any) -> None:
    orch, _ = orch_factory()
    task1 = Task(name="setup", module="environment_setup", action="check_environment", priority=TaskPriority.HIGH)
    task2 = Task(name="analyze", module="static_analysis", action="analyze_code_quality",
                 dependencies=[task1.id], priority=TaskPriority.NORMAL)
    orch.add_task(task1)
    orch.add_task(task2)
    orch.start_execution()
    assert orch.wait_for_completion(WAIT)
    assert task1.status == TaskStatus.FAILED and "environment_setup" in task1.error
    assert task2.status == TaskStatus.SKIPPED

    result = orch.execute_task(Task(name="analyze_code", module="static_analysis", action="analyze_code_quality",
                                    parameters={"path": "."}))
    assert result.success is False and "static_analysis" in result["error_message"]
    assert orch.is_running  # the dispatcher survived all of it


def test_spec_002_create_task_example(orch_factory: Any) -> None:
    orch, _ = orch_factory()
    orch.start_execution()
    analysis = orch.create_task("analyze_code", "static_analysis", "analyze_code_quality",
                                parameters={"path": "./src"}, priority=TaskPriority.HIGH, timeout=300)
    chart = orch.create_task("create_chart", "data_visualization", "create_bar_chart",
                             parameters={"data": "${analyze_code.result}", "title": "Code Quality Metrics"},
                             dependencies=[analysis.id], priority=TaskPriority.NORMAL)
    assert isinstance(analysis, Task) and analysis.priority == TaskPriority.HIGH
    assert orch.wait_for_completion(timeout=WAIT)
    stats = orch.get_execution_stats()
    assert {"total_tasks", "pending", "ready", "running", "completed", "failed", "cancelled",
            "total_execution_time", "average_execution_time", "skipped"} <= set(stats)
    assert (stats["total_tasks"], stats["failed"], stats["skipped"], stats["completed"]) == (2, 1, 1, 0)
    assert chart.status == TaskStatus.SKIPPED
    with pytest.raises(TaskExecutionError, match="unknown option"):
        orch.create_task("x", "builtin", "noop", colour="red")


def test_execute_task_by_id_runs_held_task_and_its_held_dependencies(orch_factory: Any) -> None:
    orch, _ = orch_factory(2)
    a = noop("a", parameters={"output": 1})
    b = noop("b", dependencies=[a.id], parameters={"output": 2})
    orch.add_task(a)
    orch.add_task(b)
    result = orch.execute_task(b.id)
    assert result.success and result.data == 2 and a.status == TaskStatus.COMPLETED
    with pytest.raises(TaskExecutionError):
        orch.execute_task("no-such-id")
    with pytest.raises(TaskExecutionError, match="already submitted"):
        orch.add_task(a)


def test_execute_parallel_returns_results_in_order(orch_factory: Any) -> None:
    orch, _ = orch_factory(3)
    tasks = [noop(f"t{i}", parameters={"output": i}, priority=random.choice(list(TaskPriority))) for i in range(20)]
    results = orch.execute_parallel(tasks)
    assert [r.data for r in results] == list(range(20))


def test_events_are_emitted_off_the_dispatcher_thread(orch_factory: Any) -> None:
    bus = EventBus()
    got: list[tuple[str, str, str]] = []
    done = threading.Event()

    def handler(event: str, data: dict[str, Any]) -> None:
        got.append((event, data["task_name"], threading.current_thread().name))
        if event == EventType.TASK_SKIPPED:
            done.set()

    bus.register("*", handler)
    orch, _ = orch_factory(1, events=bus, clock=ManualClock())
    a = fail("a", max_retries=1, retry_delay=0, retry_jitter=0)
    b = noop("b", dependencies=[a.id])
    orch.execute_parallel([a, b])
    assert done.wait(WAIT) and bus.flush()
    kinds = [(e, n) for e, n, _ in got]
    assert kinds == [
        ("task_started", "a"), ("task_retrying", "a"), ("task_started", "a"), ("task_failed", "a"),
        ("task_skipped", "b"),
    ]
    assert all("dispatcher" not in thread for _, _, thread in got)
    bus.close()


def test_snapshot_shows_running_and_queued_work(orch_factory: Any, gates: Gates) -> None:
    orch, _ = orch_factory(1)
    orch.start_execution()
    orch.add_task(gate_task("busy"))
    assert gates.entered("busy").wait(WAIT)
    orch.add_task(noop("waiting", priority=TaskPriority.HIGH))
    orch.flush()
    snap = orch.snapshot()
    assert [v.name for v in snap.running] == ["busy"]
    assert snap.queued[TaskPriority.HIGH] == 1 and snap.queue_heads[TaskPriority.HIGH][0].name == "waiting"
    assert snap.counts[TaskStatus.RUNNING] == 1 and snap.counts[TaskStatus.READY] == 1
    before = snap.version
    gates.open("busy")
    assert orch.wait_for_completion(WAIT)
    orch.flush()
    assert orch.snapshot().version > before and orch.snapshot().counts[TaskStatus.COMPLETED] == 2


def test_set_max_workers_raises_concurrency(orch_factory: Any, gates: Gates) -> None:
    orch, _ = orch_factory(1)
    orch.start_execution()
    orch.add_task(gate_task("g1"))
    orch.add_task(gate_task("g2"))
    assert gates.entered("g1").wait(WAIT)
    orch.flush()
    assert not gates.entered("g2").is_set()
    orch.set_max_workers(2)
    assert gates.entered("g2").wait(WAIT)
    gates.open("g1", "g2")
    assert orch.wait_for_completion(WAIT)
    with pytest.raises(OrchestrationError):
        orch.set_max_workers(0)


def test_bad_priority_and_bad_env_are_user_errors(orch_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    orch, _ = orch_factory(1)
    with pytest.raises(TaskExecutionError, match="priority"):
        orch.add_task(Task(name="x", priority="urgentest"))  # type: ignore[arg-type]
    monkeypatch.setenv("ORCHTUI_MAX_WORKERS", "lots")
    with pytest.raises(OrchestrationError, match="ORCHTUI_MAX_WORKERS"):
        TaskOrchestrator()


# ------------------------------------------------------ concurrency and shutdown


_ALLOWED = {
    None: {TaskStatus.READY, TaskStatus.CANCELLED, TaskStatus.SKIPPED, TaskStatus.FAILED},
    TaskStatus.READY: {TaskStatus.RUNNING, TaskStatus.CANCELLED, TaskStatus.SKIPPED, TaskStatus.FAILED},
    TaskStatus.RUNNING: {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.PENDING},
    TaskStatus.PENDING: {TaskStatus.READY, TaskStatus.CANCELLED},
}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_hammer_submit_and_cancel_from_eight_threads(orch_factory: Any, seed: int) -> None:
    orch, seen = orch_factory(3, clock=ManualClock())
    orch.start_execution()
    submitted: list[Task] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker(n: int) -> None:
        rng = random.Random(seed * 100 + n)
        mine: list[Task] = []
        barrier.wait()
        for i in range(60):
            deps = [t.id for t in rng.sample(mine, min(len(mine), rng.randint(0, 2)))]
            kind = rng.random()
            if kind < 0.15:
                task = fail(f"w{n}-{i}", dependencies=deps, continue_on_failure=rng.random() < 0.5,
                            max_retries=rng.randint(0, 1), retry_delay=0, retry_jitter=0)
            elif kind < 0.25:
                task = Task(name=f"w{n}-{i}", module="builtin", action="sleep", parameters={"seconds": 0.001},
                            dependencies=deps)
            else:
                task = noop(f"w{n}-{i}", dependencies=deps, priority=rng.choice(list(TaskPriority)))
            orch.add_task(task)
            mine.append(task)
            if rng.random() < 0.2:
                orch.cancel_task(rng.choice(mine).id)
            if rng.random() < 0.05:
                with lock:
                    others = list(submitted)
                if others:
                    orch.cancel_task(rng.choice(others).id)
        with lock:
            submitted.extend(mine)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert orch.wait_for_completion(WAIT)
    assert len(submitted) == 480
    assert all(t.status.is_terminal for t in submitted)
    stats = orch.get_execution_stats()
    assert stats["total_tasks"] == 480
    assert stats["pending"] == stats["ready"] == stats["running"] == 0
    assert stats["completed"] + stats["failed"] + stats["cancelled"] + stats["skipped"] == 480
    by_status = defaultdict(int)
    for task in submitted:
        by_status[task.status] += 1
    assert by_status[TaskStatus.COMPLETED] == stats["completed"]
    # Every task's transitions follow the state machine and end in exactly one terminal state.
    per_task: dict[str, list[TaskStatus]] = defaultdict(list)
    for transition in seen.items:
        per_task[transition.task_id].append(transition.status)
    for task in submitted:
        previous: TaskStatus | None = None
        for status in per_task[task.id]:
            assert status in _ALLOWED[previous], (task.name, per_task[task.id])
            previous = status
        assert previous == task.status


def test_shutdown_leaves_no_thread_behind(gates: Gates) -> None:
    before = {t.ident for t in threading.enumerate()}
    orch = TaskOrchestrator(2, kill_grace=0.5)
    orch.start_execution()
    orch.add_task(gate_task("stuck-until-cancelled"))
    orch.add_task(noop("never-started", dependencies=["stuck-until-cancelled"]))
    for _ in range(20):
        orch.add_task(noop("filler"))
    assert gates.entered("stuck-until-cancelled").wait(WAIT)
    orch.shutdown(wait=True, cancel_running=True)
    leftovers = [t for t in threading.enumerate() if t.ident not in before]
    assert leftovers == []
    assert all(t.status.is_terminal for t in orch.get_tasks())
    with pytest.raises(OrchestrationError, match="shut down"):
        orch.add_task(noop("late"))
    orch.shutdown()  # idempotent


def test_shutdown_without_cancel_lets_running_work_finish(gates: Gates) -> None:
    orch = TaskOrchestrator(1)
    orch.start_execution()
    running = gate_task("finishing")
    queued = noop("queued")
    orch.add_task(running)
    orch.add_task(queued)
    assert gates.entered("finishing").wait(WAIT)
    orch.shutdown(wait=False, cancel_running=False)
    gates.open("finishing")
    orch.shutdown(wait=True)
    assert not orch.is_running
    assert running.status == TaskStatus.COMPLETED and queued.status == TaskStatus.CANCELLED
