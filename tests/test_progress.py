"""The run progress display: plain lines off a terminal, a live table on one."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from core.config import load_settings
from core.models import TaskStatus
from core.resource_manager import ResourceManager
from core.task_orchestrator import TaskOrchestrator
from core.workflow_manager import WorkflowManager
from orchtui.progress import RunProgress, format_seconds, summary_table


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[WorkflowManager]:
    orchestrator = TaskOrchestrator(2, resource_manager=ResourceManager(detect=False))
    wm = WorkflowManager(orchestrator=orchestrator, settings=load_settings(tmp_path), autoload=False)
    wm.create_workflow({"name": "show", "steps": [
        {"name": "first", "module": "builtin", "action": "echo", "parameters": {"message": "x"}},
        {"name": "boom", "module": "builtin", "action": "fail", "parameters": {"message": "kaput"},
         "dependencies": ["first"]},
        {"name": "never", "dependencies": ["boom"]},
    ]})
    yield wm
    orchestrator.shutdown()


def test_plain_mode_prints_one_line_per_state_change(manager: WorkflowManager):
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    handle = manager.start_workflow("show")
    with RunProgress(handle, console=console, refresh_hz=50) as progress:
        execution = progress.follow()
    assert execution is not None and execution.status.value == "failed"
    lines = out.getvalue().splitlines()
    assert lines[0] == f"run {handle.run_id}: workflow show, 3 step(s)"
    finals = [line.split("] ", 1)[1] for line in lines[1:]]
    assert any(f.startswith("✔ first: completed") for f in finals)
    assert any(f.startswith("✖ boom: failed") and "kaput" in f for f in finals)
    assert any(f.startswith("↷ never: skipped") for f in finals)
    # Each step's final state is printed exactly once.
    assert sum(f.startswith("✖ boom: failed") for f in finals) == 1


def test_live_mode_renders_a_row_per_step_and_a_notice(manager: WorkflowManager):
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system=None)
    handle = manager.start_workflow("show")
    with RunProgress(handle, console=console, refresh_hz=50) as progress:
        progress.set_notice("cancelling…")
        progress.follow()
    text = out.getvalue()
    for needle in ("show", handle.run_id, "first", "completed", "boom", "failed", "never", "skipped", "cancelling…"):
        assert needle in text
    table = Console(file=io.StringIO(), width=120)
    table.print(summary_table(handle.execution, handle.step_progress()))
    rendered = table.file.getvalue()
    assert "kaput" in rendered and "error / note" in rendered


def test_live_mode_draws_only_what_fits_the_terminal_with_running_and_failed_steps_first(manager: WorkflowManager):
    steps = [{"name": f"s{i}"} for i in range(200)]
    steps += [{"name": "boom", "module": "builtin", "action": "fail", "parameters": {"message": "kaput"}},
              {"name": "nap", "module": "builtin", "action": "sleep", "parameters": {"seconds": 60}}]
    manager.create_workflow({"name": "many", "steps": steps})
    console = Console(file=io.StringIO(), force_terminal=True, width=80, height=12, color_system=None)
    handle = manager.start_workflow("many")
    progress = RunProgress(handle, console=console)
    while handle.step_progress()[-1].status is not TaskStatus.RUNNING or not handle.execution.failed_steps:
        handle.wait(0.02)
    lines = console.render_lines(progress.render(), pad=False)
    handle.cancel()
    handle.wait(30)
    shown = ["".join(segment.text for segment in line).rstrip() for line in lines]
    assert len(shown) <= 12 and all(len(line) <= 80 for line in shown)
    assert any("nap" in line and "running" in line for line in shown)
    assert any("boom" in line and "failed" in line and "kaput" in line for line in shown)
    assert "more steps; all: 200 completed · 1 failed · 1 running" in shown[-1]


def test_the_summary_lists_every_step_whatever_the_terminal(manager: WorkflowManager):
    manager.create_workflow({"name": "many", "steps": [{"name": f"s{i}"} for i in range(300)]})
    handle = manager.start_workflow("many")
    handle.wait(30)
    lines = summary_table(handle.execution, handle.step_progress()).plain.splitlines()
    assert len(lines) == 301 and lines[0].split() == ["step", "state", "try", "time", "error", "/", "note"]


def test_follow_stops_when_asked(manager: WorkflowManager):
    manager.create_workflow({"name": "long", "steps": [
        {"name": "nap", "module": "builtin", "action": "sleep", "parameters": {"seconds": 60}}]})
    handle = manager.start_workflow("long")
    with RunProgress(handle, console=Console(file=io.StringIO(), force_terminal=False)) as progress:
        assert progress.follow(should_stop=lambda: True) is None
    handle.cancel()
    assert handle.wait(30).step_status["nap"] == TaskStatus.CANCELLED


@pytest.mark.parametrize(("seconds", "text"), [(None, "—"), (0.04, "0.0s"), (12.34, "12.3s"), (245, "4m05s"),
                                               (7380, "2h03m")])
def test_format_seconds(seconds: float | None, text: str):
    assert format_seconds(seconds) == text


def test_cli_and_dashboard_share_one_glyph_table_with_an_ascii_fallback() -> None:
    from core.models import TaskStatus
    from orchtui.progress import _glyph
    from orchtui.widgets.status import task_glyph

    for status in TaskStatus:
        assert _glyph(status, unicode=True).plain == task_glyph(status)
        assert _glyph(status, unicode=False).plain.isascii()
    assert _glyph(TaskStatus.FAILED, unicode=False).plain == "x"
    assert len({task_glyph(s, ascii=True) for s in TaskStatus}) == len(TaskStatus)  # still tells them apart
