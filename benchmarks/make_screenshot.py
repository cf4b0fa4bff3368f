"""Write ``tests/tui/dashboard.svg``: the dashboard at 120x40 while the demo workflow runs.

It starts the bundled demo workflow in a temporary state directory, waits until a few
steps have finished and others are running, then saves the screen with
``App.save_screenshot``. The machine gauges are fixed so the picture does not show the
build machine's load.

Usage: ``.venv/bin/python benchmarks/make_screenshot.py [OUTPUT.svg]``
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.models import TaskStatus  # noqa: E402
from orchtui.app import OrchTUIApp  # noqa: E402
from orchtui.dashboard_engine import DashboardEngine  # noqa: E402
from orchtui.dashboard_model import FixedMachine  # noqa: E402


async def shoot(output: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workflows = Path(tmp) / "workflows"
        shutil.copytree(ROOT / "workflows", workflows)
        os.chdir(tmp)  # the status bar then shows "workflows/", not a temporary path
        # inline: the run dies with this script instead of outliving its temporary directory
        engine = DashboardEngine(state_dir=Path(tmp) / "state", workflows_dir=workflows, run_mode="inline")
        app = OrchTUIApp(engine, refresh=10.0, machine=FixedMachine(cpu=42.0, memory=58.0))
        try:
            async with app.run_test(size=(120, 40)) as pilot:
                await pilot.pause()
                run_id = engine.start_run("demo", {"greeting": "hello", "nap": 2.0})
                app.view_workflow = "demo"
                app.open_run(run_id)
                for _ in range(200):  # until the fan-out is half done
                    focus = app.model.state.focus
                    if focus is not None and focus.step_status.get("fetch_c") is TaskStatus.COMPLETED:
                        break
                    await pilot.pause(0.05)
                await pilot.press("j")
                await pilot.pause(0.3)
                app.save_screenshot(output.name, str(output.parent))
        finally:
            engine.close()
    print(f"wrote {output}")


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests" / "tui" / "dashboard.svg"
    asyncio.run(shoot(target.resolve()))
