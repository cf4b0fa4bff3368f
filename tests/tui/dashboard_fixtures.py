"""Workflows and helpers the dashboard tests share (imported by the test modules)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot

from core.models import TaskStatus, TaskTransition
from orchtui.dashboard_engine import DashboardEngine

REPO = Path(__file__).resolve().parents[2]

FLAKY = """\
name: flaky
description: Fails the first time (no marker file yet), succeeds when resumed.
steps:
  - name: prepare
    module: builtin
    action: echo
    parameters: {{message: prepared}}
  - name: flaky
    module: shell
    action: run
    dependencies: [prepare]
    parameters:
      command: "if [ -f {marker} ]; then echo second try works; else touch {marker}; echo first try fails >&2; exit 3; fi"
  - name: after
    module: builtin
    action: echo
    dependencies: [flaky]
    parameters: {{message: "{{{{ flaky.output }}}}"}}
"""

SLOW = """\
name: slow
description: One long sleep, for cancelling.
params:
  seconds: {{default: 60, type: number}}
steps:
  - name: nap
    module: builtin
    action: sleep
    parameters: {{seconds: "{{{{ params.seconds }}}}"}}
  - name: after_nap
    module: builtin
    action: echo
    dependencies: [nap]
    parameters: {{message: woke}}
"""


def make_workflows_dir(tmp_path: Path) -> Path:
    """Return a workflows directory with demo.yaml, flaky.yaml and slow.yaml."""
    directory = tmp_path / "workflows"
    directory.mkdir()
    shutil.copy(REPO / "workflows" / "demo.yaml", directory / "demo.yaml")
    (directory / "flaky.yaml").write_text(FLAKY.format(marker=tmp_path / "flaky.marker"), encoding="utf-8")
    (directory / "slow.yaml").write_text(SLOW.format(), encoding="utf-8")
    return directory


async def wait_for(pilot: Pilot[object], predicate: Callable[[], bool], *, attempts: int = 400, step: float = 0.05) -> None:
    """Let the app run until ``predicate()`` holds; fail after ``attempts`` short pauses."""
    for _ in range(attempts):
        if predicate():
            return
        await pilot.pause(step)
    assert predicate(), "condition not reached while the app ran"


def record_attempt_start(engine: DashboardEngine, run_id: str, step: str, attempt: int) -> None:
    """Record, committed, that ``attempt`` of ``step`` started, as the process running it would."""
    engine.store.record_transition(TaskTransition(task_id=f"t-{step}", name=step, status=TaskStatus.RUNNING,
                                                  at=time.time(), run_id=run_id, attempt=attempt))
    assert engine.store.flush()


def write_step_log(engine: DashboardEngine, run_id: str, step: str, attempt: int, text: str) -> Path:
    """Write ``text`` as the log of ``attempt`` of ``step``, as that attempt would; return its path."""
    path = engine.log_path(run_id, step, attempt)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
