"""The Dask executor backend on a real in-process LocalCluster (tcp), no mocks.

One module-scoped cluster (2 workers x 2 threads, each worker declaring ``GPU=1``)
serves every test; most tests wrap its client, the workflow test connects over its
real ``tcp://`` address like ``orchtui run --scheduler`` would.
"""

from __future__ import annotations

import dataclasses
import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

distributed = pytest.importorskip("distributed")

from dask import config as dask_config  # noqa: E402

from core.actions import ActionContext, registry  # noqa: E402
from core.config import load_settings  # noqa: E402
from core.dask_backend import DaskBackend, dask_resources  # noqa: E402
from core.errors import OrchestrationError, ResourceAllocationError  # noqa: E402
from core.executors import create_backend  # noqa: E402
from core.models import Invocation, Task, TaskResult, TaskStatus, WorkflowStatus  # noqa: E402
from core.task_orchestrator import TaskOrchestrator  # noqa: E402
from core.workflow_manager import WorkflowManager  # noqa: E402

WAIT = 20.0  # generous upper bound for anything that should happen "soon" on a noisy machine


@dataclasses.dataclass(slots=True)
class StepInvocation(Invocation):
    """An Invocation carrying its step's requirements, as the dispatcher hands them to backends."""

    resources: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)


# Intervals recorded by the probe action: (worker address, start, end).
_PROBES: list[tuple[str, float, float]] = []
_PROBE_LOCK = threading.Lock()


def _probe(ctx: ActionContext, params: dict[str, Any]) -> str:
    """Sleep ``seconds`` cooperatively and record where and when it ran."""
    worker = distributed.get_worker().address
    start = time.monotonic()
    ctx.sleep(float(params.get("seconds", 0.3)))
    with _PROBE_LOCK:
        _PROBES.append((worker, start, time.monotonic()))
    return worker


registry.register("dasktest", "probe", _probe, replace=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=2, processes=False, dashboard_address=None, protocol="tcp",
        resources={"GPU": 1},
    ) as local:
        yield local


@pytest.fixture(scope="module")
def client(cluster: Any) -> Iterator[Any]:
    with distributed.Client(cluster, set_as_default=False) as dask_client:
        yield dask_client


@pytest.fixture
def backend(client: Any) -> Iterator[DaskBackend]:
    dask = DaskBackend(client=client)
    yield dask
    dask.shutdown(wait=True, timeout=WAIT)


class Results:
    """Collects on_done calls and lets a test wait for them."""

    def __init__(self) -> None:
        self.calls: dict[str, list[TaskResult]] = {}
        self._cond = threading.Condition()

    def callback(self, task_id: str) -> Any:
        def on_done(result: TaskResult) -> None:
            with self._cond:
                self.calls.setdefault(task_id, []).append(result)
                self._cond.notify_all()

        return on_done

    def wait(self, task_id: str, timeout: float = WAIT) -> TaskResult:
        with self._cond:
            assert self._cond.wait_for(lambda: task_id in self.calls, timeout), f"no result for {task_id}"
            return self.calls[task_id][0]


def _pid_gone(pid: int) -> bool:
    """True once ``pid`` no longer runs (a zombie left for a non-reaping init counts as gone)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def _background_sleep(pidfile: Path) -> str:
    """A shell command whose grandchild ``sleep`` writes its pid, then waits for it."""
    return f"sleep 30 & echo $! > {shlex.quote(str(pidfile))}; wait"


# ------------------------------------------------------------------ workflows


def test_fan_out_fan_in_workflow_over_tcp_address(cluster: Any, tmp_path: Path) -> None:
    assert cluster.scheduler_address.startswith("tcp://")
    dask = DaskBackend(scheduler=cluster.scheduler_address)
    orchestrator = TaskOrchestrator(dask.capacity, backend=dask)
    manager = WorkflowManager(settings=load_settings(cwd=tmp_path), orchestrator=orchestrator, autoload=False)
    manager.create_workflow({
        "name": "fan",
        "steps": [
            {"name": "source", "module": "builtin", "action": "noop", "parameters": {"output": {"n": 7}}},
            *[
                {"name": f"branch_{x}", "module": "shell", "action": "run", "dependencies": ["source"],
                 "parameters": {"command": f"echo {x}{{{{ source.output.n }}}}"}}
                for x in "abc"
            ],
            {"name": "join", "module": "builtin", "action": "noop",
             "dependencies": ["branch_a", "branch_b", "branch_c"],
             "parameters": {"output": ["{{ branch_a.output }}", "{{ branch_b.output }}", "{{ branch_c.output }}"]}},
        ],
    })
    try:
        execution = manager.execute_workflow("fan")
        tasks = {task.name: task for task in orchestrator.get_tasks()}
    finally:
        manager.shutdown()
        orchestrator.shutdown()
    assert execution.status == WorkflowStatus.COMPLETED, execution.errors
    assert execution.results["join"] == ["a7", "b7", "c7"]
    branch = tasks["branch_b"].result
    assert branch is not None and branch.metadata["dask_worker"] in {w for w in cluster.scheduler_info["workers"]}
    # The log is written where the worker runs, and its tail travels back in the result.
    assert branch.metadata["output_tail"].strip() == "b7"
    assert Path(branch.metadata["log_path"]).read_text().strip() == "b7"


def test_retry_runs_the_step_again_on_the_cluster(backend: DaskBackend, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    script = (
        f"n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; "
        'test "$n" -ge 2 && echo "attempt $n"'
    )
    with TaskOrchestrator(4, backend=backend) as orchestrator:
        task = Task(name="flaky", module="shell", action="run", parameters={"command": script},
                    max_retries=2, retry_delay=0.01, retry_jitter=0.0)
        result = orchestrator.execute_task(task, timeout=WAIT)
    assert result.success, result.error_message
    assert result.data == "attempt 2"
    assert task.attempts == 2


def test_a_python_call_that_exits_fails_one_attempt_as_on_threads(backend: DaskBackend) -> None:
    # SystemExit escaped the action once: Dask took the worker for dead and ran the call
    # again on every other worker before giving up with KilledWorker.
    with TaskOrchestrator(4, backend=backend) as orchestrator:
        task = Task(name="quit", module="python", action="call", parameters={"target": "sys:exit", "args": [3]})
        result = orchestrator.execute_task(task, timeout=WAIT)
    assert not result.success and task.attempts == 1
    assert result.error_message == "python.call crashed the executor: SystemExit: 3"


# ----------------------------------------------------------- timeout, cancel


def test_timeout_kills_the_shell_tree_on_the_worker(backend: DaskBackend, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    with TaskOrchestrator(4, backend=backend, kill_grace=1.0) as orchestrator:
        task = Task(name="slow", module="shell", action="run",
                    parameters={"command": _background_sleep(pidfile)}, timeout=0.5)
        result = orchestrator.execute_task(task, timeout=WAIT)
    assert result.error_type == "TimeoutError", result.error_message
    assert task.status == TaskStatus.FAILED
    assert _pid_gone(int(pidfile.read_text()))


def test_cancel_running_step_kills_its_tree(backend: DaskBackend, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    with TaskOrchestrator(4, backend=backend, kill_grace=1.0) as orchestrator:
        task = Task(name="long", module="shell", action="run", parameters={"command": _background_sleep(pidfile)})
        orchestrator.add_task(task)
        orchestrator.start_execution()
        deadline = time.monotonic() + WAIT
        while not (pidfile.exists() and pidfile.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert orchestrator.cancel_task(task.id)
        assert orchestrator.wait_for_completion(WAIT)
    assert task.status == TaskStatus.CANCELLED
    assert task.result is not None and task.result.error_type == "Cancelled"
    assert _pid_gone(int(pidfile.read_text()))


def test_cancel_of_a_queued_attempt_does_not_wait_for_a_worker(backend: DaskBackend) -> None:
    results = Results()
    sleepers = {
        f"s{i}": backend.submit(Invocation(f"s{i}", f"s{i}", "builtin", "sleep", {"seconds": 60}),
                                results.callback(f"s{i}"))
        for i in range(4)
    }
    deadline = time.monotonic() + WAIT
    while sum(w["executing"] for w in backend.workers(max_age=0)) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    # Every worker thread is busy: the fifth attempt waits for one.
    queued = backend.submit(Invocation("q", "q", "builtin", "noop", {"output": 1}), results.callback("q"))
    backend.cancel(queued)
    backend.cancel(queued)  # idempotent
    result = results.wait("q")
    assert result.error_type == "Cancelled"
    assert "dask_worker" not in result.metadata  # it never ran
    assert not any(key in results.calls for key in sleepers)  # they sleep a minute: no slot was freed
    for handle in sleepers.values():
        backend.cancel(handle)
    for key in sleepers:
        assert results.wait(key).error_type == "Cancelled"
    assert all(len(calls) == 1 for calls in results.calls.values())


def test_on_done_exactly_once_even_after_shutdown(client: Any) -> None:
    dask = DaskBackend(client=client)
    results = Results()
    running = dask.submit(Invocation("a", "a", "builtin", "sleep", {"seconds": 60}), results.callback("a"))
    dask.shutdown(wait=True, timeout=WAIT)
    late = dask.submit(Invocation("b", "b", "builtin", "noop", {"output": 1}), results.callback("b"))
    dask.cancel(running)
    dask.cancel(late)
    assert results.wait("a").error_type == "Cancelled"
    assert results.wait("b").error_type == "Cancelled"
    assert [len(calls) for calls in results.calls.values()] == [1, 1]


# ------------------------------------------------------------------ resources


def test_requirements_map_to_dask_resources() -> None:
    offered = {"GPU": 2.0, "LICENSE": 3.0}
    needs = {"gpu": {"units": 2}, "cpu": {"cores": 4}, "memory": {"gb": 8, "enforce": True},
             "license": {"count": 1}, "deploy_lock": {}}
    assert dask_resources(needs, offered) == {"GPU": 2.0, "LICENSE": 1.0}
    assert dask_resources({"gpu": {}}, offered) == {"GPU": 1.0}
    with pytest.raises(ResourceAllocationError, match="no Dask worker offers GPU=3"):
        dask_resources({"gpu": {"units": 3}}, offered)
    with pytest.raises(ResourceAllocationError, match="GPU=1"):
        dask_resources({"gpu": {"units": 1}}, {})


def _max_per_worker_overlap(probes: list[tuple[str, float, float]]) -> int:
    """Most probes that ran at the same moment on one worker."""
    most = 0
    for worker, start, _ in probes:
        live = sum(1 for w, s, e in probes if w == worker and s <= start < e)
        most = max(most, live)
    return most


def test_gpu_steps_never_share_a_worker_gpu(backend: DaskBackend) -> None:
    results = Results()

    def run_probes(resources: dict[str, dict[str, Any]]) -> list[tuple[str, float, float]]:
        with _PROBE_LOCK:
            _PROBES.clear()
        ids = [f"p{i}-{bool(resources)}" for i in range(4)]
        for task_id in ids:
            backend.submit(StepInvocation(task_id, task_id, "dasktest", "probe", {"seconds": 0.4},
                                          resources=resources), results.callback(task_id))
        for task_id in ids:
            assert results.wait(task_id).success
        with _PROBE_LOCK:
            return list(_PROBES)

    # Control: without a requirement, a worker runs two probes at once on its two threads.
    assert _max_per_worker_overlap(run_probes({})) == 2
    # Each worker declares GPU=1, so its two threads never run two GPU steps together.
    assert _max_per_worker_overlap(run_probes({"gpu": {"units": 1}})) == 1


def test_gpu_step_fails_fast_when_no_worker_has_enough(backend: DaskBackend) -> None:
    results = Results()
    backend.submit(StepInvocation("big", "big", "builtin", "noop", resources={"gpu": {"units": 2}}),
                   results.callback("big"))
    result = results.wait("big", timeout=1.0)
    assert result.error_type == "ResourceAllocationError"
    assert "no Dask worker offers GPU=2 (largest: 1)" in result.error_message


@pytest.mark.skipif("resources" not in {f.name for f in dataclasses.fields(Invocation)},
                    reason="the dispatcher does not pass step resources to backends yet (Invocation.resources)")
def test_orchestrated_gpu_steps_are_restricted_by_dask(backend: DaskBackend) -> None:
    with _PROBE_LOCK:
        _PROBES.clear()
    with TaskOrchestrator(4, backend=backend) as orchestrator:
        tasks = [Task(name=f"g{i}", module="dasktest", action="probe", parameters={"seconds": 0.3},
                      resources={"gpu": {"units": 1}}) for i in range(4)]
        results = orchestrator.execute_parallel(tasks, timeout=WAIT)
    assert all(r.success for r in results)
    with _PROBE_LOCK:
        assert _max_per_worker_overlap(list(_PROBES)) == 1


# ------------------------------------------------------- connecting, gauges


def test_workers_describe_the_cluster_for_the_gauges(backend: DaskBackend) -> None:
    workers = backend.workers()
    assert len(workers) == 2
    assert backend.capacity == 4
    for worker in workers:
        assert worker["address"].startswith("tcp://127.0.0.1:")
        assert worker["nthreads"] == 2
        assert worker["resources"] == {"GPU": 1.0}
        assert worker["memory"] > 0
        assert worker["executing"] == 0


def test_every_refresh_sees_every_worker_while_the_client_polls_its_summary(cluster: Any) -> None:
    # A sync Client refreshes a summary without workers on its own timer; reading the
    # worker list through it raced that timer and once saw no worker (a GPU step then
    # failed with "largest: 0"). A 5 ms timer makes the race show within the loop.
    with dask_config.set({"distributed.client.scheduler-info-interval": "5ms"}), \
            distributed.Client(cluster, set_as_default=False) as polled:
        dask_backend = DaskBackend(client=polled)
        try:
            counts = [len(dask_backend.workers(max_age=0)) for _ in range(300)]
        finally:
            dask_backend.shutdown(wait=True, timeout=WAIT)
    assert set(counts) == {2}


def test_scheduler_address_comes_from_the_environment(cluster: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHTUI_DASK_SCHEDULER", cluster.scheduler_address)
    dask = create_backend("dask", 2)
    try:
        assert isinstance(dask, DaskBackend)
        assert dask.scheduler_address == cluster.scheduler_address
    finally:
        dask.shutdown()


def _dead_address() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{sock.getsockname()[1]}"


def test_dead_scheduler_fails_fast_with_one_clear_sentence() -> None:
    address = _dead_address()
    with pytest.raises(OrchestrationError) as caught:
        create_backend("dask", 2, scheduler=address, connect_timeout=0.5)
    message = caught.value.message
    assert message.startswith(f"cannot reach the Dask scheduler at {address}")
    assert "drop --scheduler" in message and "\n" not in message
    assert caught.value.error_code == "DASK_SCHEDULER_UNREACHABLE"


def test_without_the_extra_the_error_names_it(tmp_path: Path) -> None:
    script = """
import importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("dask", "distributed"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Block())
from core.errors import OrchestrationError
from core.executors import create_backend
try:
    create_backend("dask", 2)
except OrchestrationError as exc:
    print(exc.message)
"""
    repo = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", script], cwd=repo, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "the dask backend needs the extra: pip install 'orchtui[dask]'"
