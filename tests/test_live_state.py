"""Live state files and detached runs: publishing, liveness, cross-process cancel.

Real processes throughout: ``orchtui run`` children started by the launcher, a real
WorkflowManager for in-process publishing, real psutil liveness checks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from core.errors import OrchestrationError
from core.live_state import (
    LivePublisher,
    read_live_snapshots,
    request_cancel,
    run_owner,
    snapshot_from_dict,
    snapshot_to_dict,
)
from core.models import ResourceType, TaskPriority, TaskStatus, WorkflowStatus
from core.resource_manager import ResourceManager
from core.run_launcher import launch_run, reap_children, runner_log_path
from core.snapshot import OrchestratorSnapshot, TaskView
from core.store import Store
from core.workflow_file import load_workflow
from core.workflow_manager import WorkflowManager

SLEEPER = """\
name: sleeper
steps:
  - name: nap
    module: shell
    action: run
    parameters:
      command: "echo $$ > {pidfile}; exec sleep 300"
  - name: after
    module: builtin
    action: echo
    dependencies: [nap]
    parameters: {{message: woke}}
"""

TWO_NAPS = """\
name: two_naps
steps:
  - name: short
    module: builtin
    action: sleep
    parameters: {seconds: 0.2}
  - name: long
    module: builtin
    action: sleep
    parameters: {seconds: 300}
"""


def _wait(predicate: Callable[[], object], timeout: float = 30.0, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(step)
    assert predicate(), "condition not reached in time"


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_snapshot_json_round_trips() -> None:
    head = TaskView("t1", "fetch", TaskStatus.READY, TaskPriority.HIGH, run_id="run-a", attempt=1, module="shell", action="run")
    running = TaskView("t2", "build", TaskStatus.RUNNING, TaskPriority.NORMAL, run_id="run-a", attempt=2,
                       started_at=1_700_000_000.5, module="builtin", action="sleep", error="")
    snapshot = OrchestratorSnapshot(
        version=42, taken_at=12.5, max_workers=4,
        queued={p: (3 if p is TaskPriority.HIGH else 0) for p in TaskPriority},
        queue_heads={p: ((head,) if p is TaskPriority.HIGH else ()) for p in TaskPriority},
        running=(running,), counts={TaskStatus.COMPLETED: 7, TaskStatus.RUNNING: 1},
        waiting_on_dependencies=5, waiting_on_resources=1, retry_scheduled=2, completed_per_second=31.5,
    )
    text = json.dumps(snapshot_to_dict(snapshot))
    assert snapshot_from_dict(json.loads(text)) == snapshot


def test_a_dead_process_live_file_is_ignored_and_removed(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    create_time = psutil.Process(child.pid).create_time()
    child.wait()
    live = tmp_path / "live"
    live.mkdir()
    payload = {"pid": child.pid, "create_time": create_time, "run_ids": ["run-x"],
               "snapshot": snapshot_to_dict(OrchestratorSnapshot.empty(4))}
    (live / f"{child.pid}.json").write_text(json.dumps(payload), encoding="utf-8")
    # our own pid with another create time: the pid was reused, the publisher is gone
    reused = payload | {"pid": os.getpid(), "create_time": psutil.Process().create_time() - 1000}
    (live / f"{os.getpid()}.json").write_text(json.dumps(reused), encoding="utf-8")
    assert read_live_snapshots(tmp_path) == []
    assert list(live.iterdir()) == []


def test_publisher_publishes_owned_runs_and_cancels_one_step(tmp_path: Path) -> None:
    workflows = tmp_path / "workflows"
    workflows.mkdir()
    (workflows / "two_naps.yaml").write_text(TWO_NAPS, encoding="utf-8")
    manager = WorkflowManager(workflows, resource_manager=ResourceManager(detect=False))
    try:
        with LivePublisher(manager.orchestrator, manager, tmp_path, label="test", rate=20) as publisher:
            handle = manager.start_workflow("two_naps")
            _wait(lambda: run_owner(tmp_path, handle.run_id) is not None)
            owner = run_owner(tmp_path, handle.run_id)
            assert owner is not None and owner.pid == os.getpid() and owner.label == "test"
            _wait(lambda: handle.step_progress()[1].status is TaskStatus.RUNNING)
            request_cancel(tmp_path, handle.run_id, "long")
            execution = handle.wait(timeout=30)
            assert execution is not None
            assert execution.step_status["long"] is TaskStatus.CANCELLED
            assert execution.step_status["short"] is TaskStatus.COMPLETED
            assert publisher.cancelled == [f"{handle.run_id}.long.cancel"]
            assert list((tmp_path / "control").iterdir()) == []
        assert not publisher.path.exists()  # stopping removes the live file
    finally:
        manager.shutdown()
        manager.orchestrator.shutdown(wait=True, cancel_running=True)


def test_publisher_carries_its_resource_usage_and_backend(tmp_path: Path) -> None:
    resources = ResourceManager(detect=False)
    resources.register_resource("gpu", ResourceType.GPU, {"units": 2})
    manager = WorkflowManager(tmp_path / "none", resource_manager=resources, autoload=False)
    publisher = LivePublisher(manager.orchestrator, manager, tmp_path, label="test", rate=0.5)
    try:
        publisher.start()  # publishes once at once
        (live,) = read_live_snapshots(tmp_path)
        assert [(u.resource_id, u.current.get("units", 0.0)) for u in live.resources] == [("gpu", 0.0)]
        assert live.backend == "thread" and live.workers == ()
        assert resources.try_allocate_requirements("job", {"gpu": {"units": 1}}) is not None
        publisher.poll()  # the usage moved while the scheduler did not: published all the same
        (live,) = read_live_snapshots(tmp_path)
        (gpu,) = live.resources
        assert (gpu.current["units"], gpu.capacity["units"], gpu.users) == (1.0, 2.0, 1)
    finally:
        publisher.stop()
        manager.shutdown()
        manager.orchestrator.shutdown(wait=True, cancel_running=True)


def test_a_request_nobody_owns_is_dropped_after_a_minute(tmp_path: Path) -> None:
    manager = WorkflowManager(tmp_path / "none", resource_manager=ResourceManager(detect=False), autoload=False)
    try:
        stale = request_cancel(tmp_path, "run-nobody")
        fresh = request_cancel(tmp_path, "run-later")
        old = time.time() - 120
        os.utime(stale, (old, old))
        publisher = LivePublisher(manager.orchestrator, manager, tmp_path)
        publisher.poll()
        assert not stale.exists() and fresh.exists()
        publisher.stop()
    finally:
        manager.orchestrator.shutdown(wait=True, cancel_running=True)


def test_request_cancel_refuses_names_that_are_not_ids(tmp_path: Path) -> None:
    with pytest.raises(OrchestrationError, match="not a valid run id"):
        request_cancel(tmp_path, "../etc")
    with pytest.raises(OrchestrationError, match="not a valid step name"):
        request_cancel(tmp_path, "run-1", "a/b")


def test_launch_refuses_a_bad_run_id_and_unpassable_params(tmp_path: Path) -> None:
    with pytest.raises(OrchestrationError, match="run id"):
        launch_run("demo", state_dir=tmp_path, run_id="../x")
    with pytest.raises(OrchestrationError, match="cannot be passed"):
        launch_run("demo", state_dir=tmp_path, params={"when": object()})


@pytest.mark.slow
def test_a_detached_run_is_cancelled_through_a_request_and_its_process_tree_dies(tmp_path: Path) -> None:
    state = tmp_path / "state"
    pidfile = tmp_path / "sleep.pid"
    workflow_file = tmp_path / "sleeper.yaml"
    workflow_file.write_text(SLEEPER.format(pidfile=pidfile), encoding="utf-8")
    run_id = launch_run(load_workflow(workflow_file), state_dir=state, run_id="run-detached-1", cwd=tmp_path)
    assert run_id == "run-detached-1"
    _wait(lambda: pidfile.exists() and pidfile.read_text().strip().isdigit()
          and run_owner(state, run_id) is not None)
    sleep_pid = int(pidfile.read_text())
    assert psutil.Process(sleep_pid).name() == "sleep"
    owner = run_owner(state, run_id)
    assert owner is not None and owner.pid != os.getpid() and owner.label == "orchtui run sleeper"
    request_cancel(state, run_id)
    _wait(lambda: _gone(sleep_pid))
    ended: list[tuple[str, int]] = []
    _wait(lambda: ended.extend(reap_children()) or any(rid == run_id for rid, _ in ended))
    assert dict(ended)[run_id] == 1  # a cancelled run is not a completed one
    assert read_live_snapshots(state) == []  # the runner removed its live file on the way out
    with Store(state / "orchtui.db", runs_dir=state / "runs") as store:
        record = store.get_run(run_id)
    assert record is not None and record.status is WorkflowStatus.CANCELLED
    assert record.steps["nap"].status is TaskStatus.CANCELLED
    assert runner_log_path(state, run_id).exists()
