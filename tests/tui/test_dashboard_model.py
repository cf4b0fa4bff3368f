"""The dashboard model: immutable states built off the UI thread, parts shared while unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dashboard_fixtures import REPO, make_workflows_dir, record_attempt_start, write_step_log

from core.models import TaskStatus, WorkflowStatus
from core.resource_manager import ResourceManager
from core.workflow_file import load_workflow
from orchtui.dashboard_engine import DashboardEngine
from orchtui.dashboard_model import DashboardModel, FixedMachine, LogLocation


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[DashboardEngine]:
    engine = DashboardEngine(
        state_dir=tmp_path / "state",
        workflows_dir=make_workflows_dir(tmp_path),
        resource_manager=ResourceManager(detect=False, state_dir=tmp_path / "state"),
        max_workers=2,
    )
    yield engine
    engine.close()


def test_unchanged_parts_are_the_same_objects(engine: DashboardEngine) -> None:
    model = DashboardModel(engine, machine=FixedMachine(), clock=lambda: 5.0)
    first = model.refresh()
    assert [w.name for w in first.catalog.workflows] == ["demo", "flaky", "slow"]
    second = model.refresh()
    assert second.version == first.version
    for part in ("catalog", "orchestrator", "resources", "machine", "runs"):
        assert getattr(second, part) is getattr(first, part), part


def test_frozen_clock_samples_the_machine_once(engine: DashboardEngine) -> None:
    model = DashboardModel(engine, machine=FixedMachine(cpu=12.0, memory=34.0), clock=lambda: 5.0)
    for _ in range(3):
        state = model.refresh()
    assert (state.machine.cpu, state.machine.memory) == (12.0, 34.0)
    assert state.machine.cpu_history == (12.0,)


def test_moving_clock_builds_history(engine: DashboardEngine) -> None:
    ticks = iter(range(100))
    model = DashboardModel(engine, machine=FixedMachine(), clock=lambda: float(next(ticks)), machine_interval=1.0)
    for _ in range(4):
        state = model.refresh()
    assert len(state.machine.cpu_history) == 4


def test_a_run_moves_the_version_and_the_focus_carries_step_statuses(engine: DashboardEngine) -> None:
    model = DashboardModel(engine, machine=FixedMachine(), clock=lambda: 5.0)
    before = model.refresh()
    assert before.runs == () and before.focus is None
    engine.load_catalog()
    run_id = engine.start_run("demo", {"nap": 0.0})  # a detached `orchtui run` process
    model.set_focus(run_id)
    deadline = time.monotonic() + 60
    after = model.refresh()
    while not (after.focus is not None and after.focus.status.is_terminal) and time.monotonic() < deadline:
        time.sleep(0.1)
        after = model.refresh()
    assert after.version > before.version
    assert after.runs is not before.runs
    assert after.focus is not None and after.focus.run_id == run_id
    assert after.focus.status is WorkflowStatus.COMPLETED
    assert set(after.focus.step_status.values()) == {TaskStatus.COMPLETED}
    assert after.run(run_id) is not None


def test_background_thread_publishes_and_stops(engine: DashboardEngine) -> None:
    model = DashboardModel(engine, rate=50.0, machine=FixedMachine())
    model.start()
    try:
        for _ in range(200):
            if model.builds >= 3:
                break
            time.sleep(0.01)
        assert model.builds >= 3
        assert model.state.catalog.workflow("demo") is not None
    finally:
        model.stop()
    builds = model.builds
    time.sleep(0.1)
    assert model.builds == builds
    assert model.errors == 0


def test_the_state_carries_no_log_without_a_log_focus(engine: DashboardEngine) -> None:
    model = DashboardModel(engine, machine=FixedMachine(), clock=lambda: 5.0)
    assert model.refresh().log is None
    model.set_log_focus("run-x", None)
    assert model.refresh().log is None


def test_the_state_carries_the_log_focus_step_without_a_log_until_it_writes_one(engine: DashboardEngine) -> None:
    run_id = "run-log-focus"
    engine.store.create_run(run_id, load_workflow(REPO / "workflows" / "demo.yaml"), {})
    model = DashboardModel(engine, machine=FixedMachine(), clock=lambda: 5.0)
    model.set_log_focus(run_id, "start")
    before = model.refresh()
    assert before.log == LogLocation(run_id, "start", None, 0)
    assert model.refresh().log is before.log  # unchanged: the same object
    record_attempt_start(engine, run_id, "start", 1)
    path = write_step_log(engine, run_id, "start", 1, "first\n")
    assert model.refresh().log == LogLocation(run_id, "start", path, 1)


def test_the_state_moves_to_a_retry_log_past_an_attempt_that_wrote_none(engine: DashboardEngine) -> None:
    run_id = "run-log-retry"
    engine.store.create_run(run_id, load_workflow(REPO / "workflows" / "demo.yaml"), {})
    record_attempt_start(engine, run_id, "start", 1)
    write_step_log(engine, run_id, "start", 1, "first try\n")
    model = DashboardModel(engine, machine=FixedMachine(), clock=lambda: 5.0)
    model.set_log_focus(run_id, "start")
    assert model.refresh().log.attempt == 1
    record_attempt_start(engine, run_id, "start", 2)  # attempt 2 fails before printing anything
    record_attempt_start(engine, run_id, "start", 3)
    third = write_step_log(engine, run_id, "start", 3, "third try\n")
    assert model.refresh().log == LogLocation(run_id, "start", third, 3)


_CATALOG_OF_UNLISTABLE = """
import sys, time
from pathlib import Path
from core.resource_manager import ResourceManager
from orchtui.dashboard_engine import DashboardEngine
state, workflows = Path(sys.argv[1]), Path(sys.argv[2])
engine = DashboardEngine(state_dir=state, workflows_dir=workflows,
                         resource_manager=ResourceManager(detect=False, state_dir=state), max_workers=1)
try:
    catalog = engine.load_catalog()
    print("first:", [w.name for w in catalog.workflows], list(catalog.problems), flush=True)
    sys.stdin.readline()  # the directory can be listed again
    deadline = time.monotonic() + 60
    while not catalog.workflows and time.monotonic() < deadline:
        time.sleep(0.2)
        catalog = engine.load_catalog()
    print("then:", [w.name for w in catalog.workflows], list(catalog.problems), flush=True)
finally:
    engine.close()
"""


def test_an_unlistable_workflows_directory_is_a_problem_line_until_it_can_be_listed(
        tmp_path: Path, kept_from_others) -> None:
    workflows = make_workflows_dir(tmp_path)
    state = tmp_path / "own-state"
    state.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with kept_from_others(workflows, 0o000) as bound:
        child = subprocess.Popen(bound([sys.executable, "-c", _CATALOG_OF_UNLISTABLE, str(state), str(workflows)]),
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env=env)
        assert child.stdout is not None and child.stdin is not None
        first = child.stdout.readline()
    child.stdin.write("listable\n")
    child.stdin.flush()
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    assert first.startswith("first: [] ['") and "cannot be read (Permission denied); check its permissions" in first
    assert out.strip() == "then: ['demo', 'flaky', 'slow'] []"
