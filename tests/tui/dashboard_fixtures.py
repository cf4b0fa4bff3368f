"""Workflows and helpers the dashboard tests share (imported by the test modules)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot

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
