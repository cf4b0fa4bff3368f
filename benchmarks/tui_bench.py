"""Dashboard benchmark: key latency during a 10k-step run, and the run's throughput cost.

One run of this script, all in the same process and on the same generated workflow:

1. headless: a 10k-step no-op workflow (each step up to 3 dependencies) through the
   dashboard's engine (orchestrator + SQLite store recorder), no UI; tasks per second.
2. attached: the same workflow with the dashboard running (Textual's headless driver,
   the default 10 Hz refresh) and its Live DAG showing that very run; tasks per second,
   and, while the run goes, the latency from a key press (j/k on the DAG) to the
   repainted screen, through Pilot: p50 and p95.

Prints the ratios against the goals: key latency p95 < 50 ms; attached throughput at
least 0.8x headless.

Usage: ``.venv/bin/python benchmarks/tui_bench.py [--steps 10000] [--workers 4]``
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.models import WorkflowStatus  # noqa: E402
from core.resource_manager import ResourceManager  # noqa: E402
from orchtui.app import OrchTUIApp  # noqa: E402
from orchtui.dashboard_engine import DashboardEngine  # noqa: E402
from orchtui.dashboard_model import FixedMachine  # noqa: E402
from orchtui.messages import WorkflowChosen  # noqa: E402
from orchtui.widgets.dag_view import DagView  # noqa: E402


def write_workflow(directory: Path, steps: int, seed: int = 7) -> None:
    """Write ``noop10k.yaml``: ``steps`` no-op steps, each depending on up to 3 earlier ones."""
    rng = random.Random(seed)
    doc = {"name": "noop10k", "description": "benchmark", "steps": []}
    for i in range(steps):
        deps = sorted({f"s{rng.randrange(i)}" for _ in range(rng.randint(0, 3))}) if i else []
        doc["steps"].append({"name": f"s{i}", "module": "builtin", "action": "noop", "dependencies": deps})
    (directory / "noop10k.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def make_engine(root: Path, workers: int) -> DashboardEngine:
    return DashboardEngine(
        state_dir=root / "state",
        workflows_dir=root / "workflows",
        resource_manager=ResourceManager(detect=False, state_dir=root / "state"),
        max_workers=workers,
    )


def headless(root: Path, steps: int, workers: int) -> float:
    """Return tasks/s of the workflow with no dashboard."""
    engine = make_engine(root, workers)
    try:
        engine.load_catalog()
        t0 = time.perf_counter()
        handle = engine.manager.start_workflow("noop10k", {})
        execution = handle.wait(timeout=600)
        elapsed = time.perf_counter() - t0
        assert execution is not None and execution.status is WorkflowStatus.COMPLETED, execution
        return steps / elapsed
    finally:
        engine.close()


async def attached(root: Path, steps: int, workers: int) -> tuple[float, list[float]]:
    """Return (tasks/s, key latencies in seconds) with the dashboard watching the run."""
    engine = make_engine(root, workers)
    app = OrchTUIApp(engine, refresh=10.0, machine=FixedMachine())
    latencies: list[float] = []
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            dag = app.query_one(DagView)
            # as a user would: the workflow is selected (its graph laid out) before it runs
            app.post_message(WorkflowChosen("noop10k"))
            for _ in range(600):
                if dag.model.size == steps:
                    break
                await pilot.pause(0.05)
            assert dag.model.size == steps
            dag.focus()
            t0 = time.perf_counter()
            run_id = engine.start_run("noop10k", {})
            app.open_run(run_id)  # the DAG shows the 10k-step run, live
            keys = ("j", "j", "j", "k")
            i = 0
            while True:
                handle = engine.manager.get_run(run_id)
                if handle is None or handle.done():
                    break
                before = dag.cursor
                k0 = time.perf_counter()
                # press() returns once every widget processed the key's messages; pause(0)
                # then runs the screen's update, which composites and writes the new frame.
                # (pause() without a delay would wait for the whole process to idle, which
                # never happens while the orchestrator's threads are busy.)
                await pilot.press(keys[i % len(keys)])
                await pilot.pause(0)
                latencies.append(time.perf_counter() - k0)
                assert dag.cursor != before or before is None
                i += 1
                await asyncio.sleep(0.05)  # a fast typist: 20 keys a second
            handle = engine.manager.get_run(run_id)
            execution = handle.wait(timeout=600) if handle is not None else None
            elapsed = time.perf_counter() - t0
            assert execution is not None and execution.status is WorkflowStatus.COMPLETED, execution
            frames = app.frames
        print(f"  dashboard frames applied during the run: {frames}")
        return steps / elapsed, latencies
    finally:
        engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        for name in ("headless", "attached"):
            (base / name / "workflows").mkdir(parents=True)
            write_workflow(base / name / "workflows", args.steps)
        print(f"{args.steps}-step no-op workflow, {args.workers} workers")
        rate_headless = headless(base / "headless", args.steps, args.workers)
        print(f"  headless:  {rate_headless:8.0f} tasks/s")
        rate_attached, latencies = asyncio.run(attached(base / "attached", args.steps, args.workers))
        print(f"  attached:  {rate_attached:8.0f} tasks/s")
    ms = sorted(x * 1000 for x in latencies)
    p50 = statistics.median(ms) if ms else float("nan")
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))] if ms else float("nan")
    ratio = rate_attached / rate_headless
    print(f"key -> screen latency over {len(ms)} presses: p50 {p50:.1f} ms, p95 {p95:.1f} ms (goal p95 < 50 ms: {'met' if p95 < 50 else 'NOT met'})")
    print(f"throughput attached / headless: {ratio:.2f}x (goal >= 0.8x: {'met' if ratio >= 0.8 else 'NOT met'})")


if __name__ == "__main__":
    main()
