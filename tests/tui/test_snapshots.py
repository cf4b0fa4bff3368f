"""SVG snapshots of the dashboard's main states at 80x24 and 120x40.

Everything on screen is made deterministic without replacing any of our components:
the store runs on a ManualClock (fixed timestamps), the app's wall clock is frozen,
the machine gauges read a FixedMachine, resources are registered by hand instead of
detected, and animations are off. Run ids are chosen, not random.

Update after an intended change with ``pytest tests/tui/test_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from dashboard_fixtures import REPO, wait_for
from textual.pilot import Pilot

from core.clock import ManualClock
from core.config import load_settings
from core.models import ResourceType, TaskResult, TaskStatus, TaskTransition, WorkflowStatus
from core.resource_manager import ResourceManager
from core.store import Store
from core.workflow_file import load_workflow
from orchtui.app import OrchTUIApp
from orchtui.dashboard_engine import DashboardEngine
from orchtui.dashboard_model import FixedMachine

WALL = 1_700_000_000.0
FROZEN = WALL + 600.0  # the app's "now": ten minutes after the first run started


def _transition(run_id: str, step: str, status: TaskStatus, at: float, *, output: object = None, error: str = "") -> TaskTransition:
    result = None
    if status.is_terminal:
        result = TaskResult(
            success=status is TaskStatus.COMPLETED,
            data=output,
            error_message=error,
            attempt=1,
            started_at=at - 1.0,
            finished_at=at,
            exit_code=None if status is TaskStatus.COMPLETED else 1,
        )
    return TaskTransition(task_id=f"{run_id}-{step}", name=step, status=status, at=at, run_id=run_id, attempt=1, result=result, error=error)


def _record_runs(store: Store, clock: ManualClock) -> None:
    """Three demo runs: one completed, one failed, one still running (owned by this process).

    The clock starts at WALL; each run is created at its own time so their order is fixed.
    """
    demo = load_workflow(REPO / "workflows" / "demo.yaml")
    order = ["start", "fetch_a", "fetch_b", "fetch_c", "combine", "check", "notify", "finish"]
    store.create_run("run-snap-done", demo, demo.param_defaults())
    for i, step in enumerate(order):
        store.record_transition(_transition("run-snap-done", step, TaskStatus.RUNNING, WALL + i))
        store.record_transition(_transition("run-snap-done", step, TaskStatus.COMPLETED, WALL + i + 0.5, output="ok"))
    store.finish_run("run-snap-done", WorkflowStatus.COMPLETED, finished_at=WALL + 9)

    clock.advance(100)
    store.create_run("run-snap-failed", demo, demo.param_defaults())
    for step in ("start", "fetch_a", "fetch_c"):
        store.record_transition(_transition("run-snap-failed", step, TaskStatus.COMPLETED, WALL + 100, output="ok"))
    store.record_transition(_transition("run-snap-failed", "fetch_b", TaskStatus.FAILED, WALL + 101, error="connection reset"))
    for step in ("combine", "check", "notify", "finish"):
        store.record_transition(_transition("run-snap-failed", step, TaskStatus.SKIPPED, WALL + 101))
    store.finish_run("run-snap-failed", WorkflowStatus.FAILED, "step fetch_b failed", finished_at=WALL + 101)

    clock.advance(480)
    store.create_run("run-snap-live", demo, demo.param_defaults())
    store.record_transition(_transition("run-snap-live", "start", TaskStatus.COMPLETED, WALL + 580, output="hello"))
    store.record_transition(_transition("run-snap-live", "fetch_a", TaskStatus.RUNNING, WALL + 588))
    store.record_transition(_transition("run-snap-live", "fetch_b", TaskStatus.RUNNING, WALL + 595.5))
    store.record_transition(_transition("run-snap-live", "fetch_c", TaskStatus.COMPLETED, WALL + 590, output="ok"))
    assert store.flush()


@pytest.fixture
def snapshot_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[OrchTUIApp]:
    monkeypatch.chdir(tmp_path)  # the status bar shows the workflows directory relative to here
    workflows = tmp_path / "workflows"
    workflows.mkdir()
    shutil.copy(REPO / "workflows" / "demo.yaml", workflows / "demo.yaml")
    settings = load_settings(cwd=tmp_path, env={"ORCHTUI_DIR": str(tmp_path / "state")})
    clock = ManualClock(start=1_000.0, wall_start=WALL)
    store = Store(settings.db_path, runs_dir=settings.runs_dir, clock=clock)
    _record_runs(store, clock)
    resources = ResourceManager(detect=False, state_dir=settings.state_dir)
    resources.register_resource("cpu", ResourceType.CPU, {"cores": 8})
    resources.register_resource("memory", ResourceType.MEMORY, {"gb": 16})
    resources.register_resource("gpu", ResourceType.GPU, {"units": 1})
    resources.register_resource("deploy_lock", ResourceType.LOCK, {"slots": 1})
    assert resources.try_allocate_requirements("snapshot", {"cpu": {"cores": 6}, "memory": {"gb": 4}}) is not None
    engine = DashboardEngine(settings=settings, workflows_dir=workflows, resource_manager=resources, store=store, max_workers=4)
    app = OrchTUIApp(engine, refresh=10, frozen_time=FROZEN, machine=FixedMachine(cpu=37.0, memory=61.0))
    app.animation_level = "none"
    yield app
    engine.close()
    store.close()


async def _settle(pilot: Pilot[None]) -> None:
    app = pilot.app
    assert isinstance(app, OrchTUIApp)
    await wait_for(pilot, lambda: app.view_run == "run-snap-live" and app.model.state.focus is not None)
    # The model thread read the focused run; the next frame shows it.
    frames = app.frames
    await wait_for(pilot, lambda: app.frames > frames)
    await pilot.pause()


class TestMainScreen:
    """The dashboard with a live run selected, at both sizes."""

    def test_main_80x24(self, snap_compare: object, snapshot_app: OrchTUIApp) -> None:
        assert snap_compare(snapshot_app, terminal_size=(80, 24), run_before=_settle)  # type: ignore[operator]

    def test_main_120x40(self, snap_compare: object, snapshot_app: OrchTUIApp) -> None:
        assert snap_compare(snapshot_app, terminal_size=(120, 40), run_before=_settle)  # type: ignore[operator]

    def test_dag_focused_on_failed_run_120x40(self, snap_compare: object, snapshot_app: OrchTUIApp) -> None:
        async def open_failed(pilot: Pilot[None]) -> None:
            await _settle(pilot)
            await pilot.press("5", "j")  # runs: live, failed, done (newest first)
            await pilot.press("enter")
            await wait_for(pilot, lambda: snapshot_app.view_run == "run-snap-failed" and snapshot_app.model.state.focus is not None
                           and snapshot_app.model.state.focus.run_id == "run-snap-failed")
            await pilot.press("right", "right", "right")
            # The Logs pane follows the cursor once it rests and the model thread has looked.
            await wait_for(pilot, lambda: snapshot_app.logs_pane.source is not None and snapshot_app.logs_pane.source[:2]
                           == ("run-snap-failed", snapshot_app.dag_view.cursor))

        assert snap_compare(snapshot_app, terminal_size=(120, 40), run_before=open_failed)  # type: ignore[operator]


class TestModals:
    """Help, the parameter form and the step details at 80x24."""

    def test_help_80x24(self, snap_compare: object, snapshot_app: OrchTUIApp) -> None:
        async def open_help(pilot: Pilot[None]) -> None:
            await _settle(pilot)
            await pilot.press("question_mark")
            await pilot.pause()

        assert snap_compare(snapshot_app, terminal_size=(80, 24), run_before=open_help)  # type: ignore[operator]

    def test_param_form_80x24(self, snap_compare: object, snapshot_app: OrchTUIApp) -> None:
        async def open_form(pilot: Pilot[None]) -> None:
            await _settle(pilot)
            await pilot.press("r")
            await pilot.pause()

        assert snap_compare(snapshot_app, terminal_size=(80, 24), run_before=open_form)  # type: ignore[operator]

    def test_step_details_120x40(self, snap_compare: object, snapshot_app: OrchTUIApp) -> None:
        async def open_details(pilot: Pilot[None]) -> None:
            await _settle(pilot)
            await pilot.press("2", "g", "enter")
            await pilot.pause()

        assert snap_compare(snapshot_app, terminal_size=(120, 40), run_before=open_details)  # type: ignore[operator]
