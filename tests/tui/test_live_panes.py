"""The panes that must keep moving on their own: logs appearing, ages, other processes' state.

Runs are recorded straight into a real store (as another process's recorder would), and
other processes' live files are written for a real, sleeping child process, so every
test is fast and deterministic while nothing of ours is replaced.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psutil
import pytest
from dashboard_fixtures import REPO, make_workflows_dir, record_attempt_start, wait_for, write_step_log
from textual import events
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import Static

from core.live_state import snapshot_to_dict
from core.models import ResourceType, ResourceUsage, TaskPriority, TaskStatus, WorkflowStatus
from core.resource_manager import ResourceManager
from core.snapshot import OrchestratorSnapshot, RunView, TaskView
from core.workflow_file import load_workflow
from orchtui.app import OrchTUIApp
from orchtui.dashboard_engine import DashboardEngine
from orchtui.dashboard_model import FixedMachine, MachineView
from orchtui.screens.log_screen import LogScreen
from orchtui.widgets.logs import LogsPane
from orchtui.widgets.queues import render_queues
from orchtui.widgets.resources import ResourcesPane, render_resources
from orchtui.widgets.runs import RunsPane


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[DashboardEngine]:
    resources = ResourceManager(detect=False, state_dir=tmp_path / "state")
    resources.register_resource("gpu", ResourceType.GPU, {"units": 4})
    engine = DashboardEngine(state_dir=tmp_path / "state", workflows_dir=make_workflows_dir(tmp_path),
                             resource_manager=resources, max_workers=2)
    yield engine
    engine.close()


@pytest.fixture
def other_process() -> Iterator[psutil.Process]:
    """A real process that stands for a runner: its live file counts while it lives."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield psutil.Process(child.pid)
    finally:
        child.kill()
        child.wait()


def _record_running_demo(engine: DashboardEngine, run_id: str) -> None:
    """Record a demo run whose first step completed, as another process's recorder would."""
    demo = load_workflow(REPO / "workflows" / "demo.yaml")
    store = engine.store
    store.create_run(run_id, demo, demo.param_defaults())
    record_attempt_start(engine, run_id, "start", 1)


@contextlib.asynccontextmanager
async def _dashboard_on_a_running_demo(engine: DashboardEngine,
                                       run_id: str) -> AsyncIterator[tuple[OrchTUIApp, Pilot[None], LogsPane]]:
    """The dashboard showing a recorded demo run whose first step started: its Logs pane is
    on that step, which has no log yet."""
    _record_running_demo(engine, run_id)
    app = OrchTUIApp(engine, refresh=20, machine=FixedMachine())
    async with app.run_test(size=(120, 40)) as pilot:
        app.open_run(run_id)
        pane = app.query_one("#logs", LogsPane)
        await wait_for(pilot, lambda: app.dag_view.cursor == "start" and pane.source == (run_id, "start", 0))
        yield app, pilot, pane


async def _retry_past_a_silent_attempt(pilot: Pilot[None], engine: DashboardEngine, run_id: str, step: str,
                                       pane: LogsPane) -> None:
    """Attempt 1 of ``step`` prints, attempt 2 fails before printing anything (no log
    file), attempt 3 prints: wait until ``pane`` has shown each printed log."""
    write_step_log(engine, run_id, step, 1, "first try\n")
    await wait_for(pilot, lambda: any("first try" in line for line in pane.lines))
    record_attempt_start(engine, run_id, step, 2)
    record_attempt_start(engine, run_id, step, 3)
    write_step_log(engine, run_id, step, 3, "third try\n")
    await wait_for(pilot, lambda: any("third try" in line for line in pane.lines))


async def test_logs_pane_shows_a_log_that_appears_after_the_run_was_opened(engine: DashboardEngine) -> None:
    run_id = "run-logs-later"
    async with _dashboard_on_a_running_demo(engine, run_id) as (_app, pilot, pane):
        assert any("no log yet" in line for line in pane.lines)
        assert pane.border_subtitle == "start"  # no "#0": there is no attempt 0
        # The runner process starts the step: its log file appears, then grows.
        write_step_log(engine, run_id, "start", 1, "hello from the runner\n")
        await wait_for(pilot, lambda: any("hello from the runner" in line for line in pane.lines))
        assert pane.source == (run_id, "start", 1) and pane.border_subtitle == "start #1"
        # A retry writes attempt 2's log: the pane moves on to it.
        write_step_log(engine, run_id, "start", 2, "second attempt\n")
        await wait_for(pilot, lambda: any("second attempt" in line for line in pane.lines))
        assert pane.border_subtitle == "start #2"


async def test_logs_pane_moves_to_a_retry_log_past_an_attempt_that_wrote_none(engine: DashboardEngine) -> None:
    run_id = "run-logs-retry"
    async with _dashboard_on_a_running_demo(engine, run_id) as (_app, pilot, pane):
        await _retry_past_a_silent_attempt(pilot, engine, run_id, "start", pane)
        assert pane.source == (run_id, "start", 3) and pane.border_subtitle == "start #3"


async def test_log_screen_opened_before_the_cursor_rests_follows_that_steps_retries(engine: DashboardEngine) -> None:
    run_id = "run-log-screen-retry"
    async with _dashboard_on_a_running_demo(engine, run_id) as (app, pilot, _pane):
        await pilot.press("j", "l")  # l before the cursor rests on the next step
        await wait_for(pilot, lambda: isinstance(app.screen, LogScreen))
        step = app.dag_view.cursor
        assert step is not None and step != "start"
        record_attempt_start(engine, run_id, step, 1)
        await _retry_past_a_silent_attempt(pilot, engine, run_id, step, app.screen.query_one(LogsPane))
        assert "attempt 3" in str(app.screen.query_one("#log-title", Static).render())


async def test_logs_pane_follows_the_cursor_while_the_dashboard_is_paused(engine: DashboardEngine) -> None:
    run_id = "run-logs-paused"
    async with _dashboard_on_a_running_demo(engine, run_id) as (app, pilot, pane):
        await pilot.press("space")
        assert app.paused
        await pilot.press("j")
        step = app.dag_view.cursor
        write_step_log(engine, run_id, step, 1, "seen while paused\n")
        await wait_for(pilot, lambda: any("seen while paused" in line for line in pane.lines))
        assert pane.source == (run_id, step, 1)


class _RunsApp(App[None]):
    def compose(self) -> ComposeResult:
        yield RunsPane(id="runs")


def _run(run_id: str, started_at: float, finished_at: float | None) -> RunView:
    status = WorkflowStatus.RUNNING if finished_at is None else WorkflowStatus.COMPLETED
    return RunView(run_id=run_id, workflow="demo", status=status, started_at=started_at, finished_at=finished_at)


async def test_runs_pane_ages_move_without_rebuilding_the_table() -> None:
    runs = (_run("run-going", 1_000.0, None), _run("run-done", 900.0, 905.0))
    app = _RunsApp()
    async with app.run_test(size=(120, 12)) as pilot:
        pane = app.query_one(RunsPane)
        pane.show(runs, 1_001.4)
        await pilot.pause()
        rows = list(pane.rows.values())
        assert pane.get_cell("run-done", "started") == "1m41s ago"
        assert pane.get_cell("run-going", "took") == "1.4s"
        pane.show(runs, 1_001.9)  # same second: nothing to rewrite
        assert pane.get_cell("run-going", "took") == "1.4s"
        pane.show(runs, 1_006.4)  # the same runs, five seconds later
        await pilot.pause()
        assert pane.get_cell("run-done", "started") == "1m46s ago"  # a finished run's age moves too
        assert pane.get_cell("run-done", "took") == "5.0s"
        assert pane.get_cell("run-going", "took") == "6.4s"
        assert pane.get_cell("run-going", "started") == "6.4s ago"
        assert list(pane.rows.values()) == rows and all(a is b for a, b in zip(pane.rows.values(), rows))
        finished = runs[1:]  # nothing running at all: the ages still move
        pane.show(finished, 1_006.4)
        pane.show(finished, 1_020.0)
        await pilot.pause()
        assert pane.get_cell("run-done", "started") == "2m00s ago"


async def test_runs_pane_narrow_layout_puts_a_short_run_id_first() -> None:
    runs = (_run("run-0123456789ab", 1_000.0, None),)
    app = _RunsApp()
    async with app.run_test(size=(80, 12)) as pilot:
        pane = app.query_one(RunsPane)
        pane.show(runs, 1_003.0)
        await pilot.pause()
        assert [str(c.label) for c in pane.columns.values()] == [" ", "run", "took", "workflow"]
        assert pane.get_row_at(0)[1] == "01234567"
        await pilot.resize_terminal(120, 12)
        await pilot.pause()
        assert [str(c.label) for c in pane.columns.values()] == [" ", "workflow", "took", "started", "run"]
        assert pane.get_cell("run-0123456789ab", "run") == "run-0123456789ab"
        assert pane.selected_run == "run-0123456789ab"


def _publish(state_dir: Path, process: psutil.Process, *, run_ids: list[str], label: str,
             snapshot: OrchestratorSnapshot, resources: list[dict[str, object]], backend: str = "thread",
             workers: list[dict[str, object]] | None = None) -> None:
    """Write ``process``'s live file as core.live_state's publisher does."""
    live = state_dir / "live"
    live.mkdir(parents=True, exist_ok=True)
    payload = {"pid": process.pid, "create_time": process.create_time(), "run_ids": run_ids, "label": label,
               "written_at": time.time(), "snapshot": snapshot_to_dict(snapshot), "resources": resources,
               "backend": backend, "workers": workers or []}
    (live / f"{process.pid}.json").write_text(json.dumps(payload), encoding="utf-8")


def _busy_snapshot(run_id: str) -> OrchestratorSnapshot:
    running = TaskView("t1", "fetch_b", TaskStatus.RUNNING, TaskPriority.HIGH, run_id=run_id, attempt=1,
                       started_at=time.time())
    return OrchestratorSnapshot(version=3, taken_at=time.time(), max_workers=4,
                                queued=dict.fromkeys(TaskPriority, 0), queue_heads={}, running=(running,),
                                counts={TaskStatus.RUNNING: 1})


async def test_queues_and_resources_show_what_other_processes_publish(
        engine: DashboardEngine, other_process: psutil.Process) -> None:
    gpu_in_use = {"resource_id": "gpu", "capacity": {"units": 4}, "current": {"units": 3},
                  "peak": {"units": 3}, "available": {"units": 1}, "users": 1}
    _publish(engine.state_dir, other_process, run_ids=["run-0123456789ab"], label="orchtui run demo",
             snapshot=_busy_snapshot("run-0123456789ab"), resources=[gpu_in_use], backend="dask",
             workers=[{"address": "tcp://10.0.0.7:4000", "name": "w-7", "nthreads": 4, "executing": 1,
                       "memory": 2 * 1024 ** 3, "memory_limit": 8 * 1024 ** 3}])
    engine.resources.try_allocate_requirements("here", {"gpu": {"units": 1}})
    app = OrchTUIApp(engine, refresh=20, machine=FixedMachine())
    async with app.run_test(size=(120, 40)) as pilot:
        queues = app.query_one("#queues")
        gauges = app.query_one("#resource-gauges")
        await wait_for(pilot, lambda: "run demo" in str(queues.render()))
        shown = str(queues.render())
        assert f"{other_process.pid} · 012345" in shown and "fetch_b" in shown
        text = str(gauges.render())
        assert "4/4 units" in text  # 1 allocated here + 3 in the runner process
        assert "dask 1 worker" in text and "w-7" in text and "1/4 2.0/8.0G" in text


def test_resource_gauges_show_whole_names_up_to_a_third_of_the_line() -> None:
    usages = (ResourceUsage("cpu", {"cores": 2}, {"cores": 1}),
              ResourceUsage("deploy_lock", {"units": 1}, {"units": 0}),
              ResourceUsage("a_very_long_resource_name", {"units": 4}, {"units": 4}))
    lines = render_resources(usages, width=60).plain.splitlines()
    assert lines[1].startswith("deploy_lock ")  # whole, where a fixed column cut it to "deploy_"
    assert lines[2].startswith("a_very_long_resourc… ")  # 60 // 3 = 20 cells at most: cut visibly
    assert [len(line) for line in lines] == [60, 60, 60]
    assert lines[0].endswith("1/2 cores") and lines[2].endswith("4/4 units")


def test_running_tasks_name_their_run_when_several_runs_share_the_pane() -> None:
    now = time.time()
    views = tuple(TaskView(f"t{i}", name, TaskStatus.RUNNING, TaskPriority.NORMAL, run_id=run, attempt=1, started_at=now)
                  for i, (name, run) in enumerate((("build", "run-aaaaaa111111"), ("test", "run-bbbbbb222222"))))
    snapshot = OrchestratorSnapshot(version=1, taken_at=now, max_workers=4, queued=dict.fromkeys(TaskPriority, 0),
                                    queue_heads={}, running=views, counts={})
    lines = render_queues(snapshot, now, width=40).plain.splitlines()
    assert any("build" in line and "aaaaaa" in line for line in lines)
    assert any("test" in line and "bbbbbb" in line for line in lines)
    # At 80x24 the pane has eight lines: the empty lanes share one so the running tasks show.
    short = render_queues(snapshot, now, width=22, height=8).plain.splitlines()
    assert len(short) <= 8 and "crit/high/norm/low/bg 0" in short


async def test_keys_arriving_together_go_to_the_pane_the_first_one_focused(engine: DashboardEngine) -> None:
    """`3j` in one read (fast typing, a paste, an SSH link) must act as typed one by one."""
    app = OrchTUIApp(engine, refresh=20, machine=FixedMachine())
    async with app.run_test(size=(80, 24)) as pilot:
        projects = app.projects_pane
        await wait_for(pilot, lambda: projects.selected_workflow == "demo")
        for key in ("3", "j"):  # posted at once: nothing runs between them
            app.post_message(events.Key(key, key))
        await pilot.pause()
        assert app.focused is app.queues_pane
        assert projects.selected_workflow == "demo"  # the j did not land in Projects


async def test_no_color_renders_the_graph(engine: DashboardEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """NO_COLOR=1 turns on Textual's monochrome filter, which needs a style on every segment."""
    monkeypatch.setenv("NO_COLOR", "1")
    app = OrchTUIApp(engine, refresh=20, machine=FixedMachine())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.view_workflow == "demo")
        await pilot.press("2", "j")
        await pilot.pause()
        assert app.dag_view.cursor is not None
        lines = [app.dag_view.render_line(y).text for y in range(app.dag_view.size.height)]
        assert any("· start" in line for line in lines)  # the glyph carries the status


class _ResourcesApp(App[None]):
    def compose(self) -> ComposeResult:
        yield ResourcesPane(id="resources")


async def test_resources_pane_takes_updates_while_it_is_torn_down() -> None:
    # The app's refresh timer can tick once more while the screen is being removed.
    app = _ResourcesApp()
    async with app.run_test(size=(60, 10)):
        pane = app.query_one(ResourcesPane)
        usages = (ResourceUsage("cpu", {"cores": 2}, {"cores": 1}),)
        pane.show(usages, MachineView(cpu=10.0, memory=20.0))
        await pane.remove_children()
        pane.show((ResourceUsage("cpu", {"cores": 2}, {"cores": 2}),), MachineView(cpu=30.0, memory=20.0))
        assert not pane.children
