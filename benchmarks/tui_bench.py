"""Dashboard benchmark: key latency during a 10k-step run, and the run's throughput cost.

One run of this script, on the same generated workflow (``steps`` no-op steps, each
depending on up to 3 earlier ones), every run started the way the dashboard starts
runs: a detached ``orchtui run FILE --run-id RID --json`` process
(``core.run_launcher.launch_run``) recording into its own state directory.

1. headless: the run alone; tasks per second from the store's start and finish times.
2. attached: the same run while the dashboard (Textual's headless driver, the default
   10 Hz refresh) watches it, its Live DAG showing that very run; keys are pressed at a
   fixed cadence for the whole run and the latency from a key press to the repainted
   screen is measured through Pilot (p50 and p95). Tasks per second as in 1.

Before the runs, the dashboard selects the workflow, as a user would: the time until its
10k-step graph is on screen, and the longest the UI's event loop went without running
meanwhile (a heartbeat task), are printed too; and while the runs are watched, the
garbage collector's pauses (every thread waits for a collection).

Prints the ratios against the goals: key latency p95 < 50 ms; attached throughput at
least 0.8x headless. ``--rounds N`` repeats both measurements alternately and reports
each round (the machine is shared and noisy).

Usage: ``.venv/bin/python benchmarks/tui_bench.py [--steps 10000] [--workers 4] [--rounds 1]``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
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
from core.run_launcher import launch_run, reap_children  # noqa: E402
from core.store import Store  # noqa: E402
from core.workflow_file import load_workflow  # noqa: E402
from orchtui.app import OrchTUIApp  # noqa: E402
from orchtui.dashboard_engine import DashboardEngine  # noqa: E402
from orchtui.dashboard_model import FixedMachine  # noqa: E402
from orchtui.messages import WorkflowChosen  # noqa: E402
from orchtui.widgets.dag_view import DagView  # noqa: E402

KEYS = ("j", "j", "k", "5", "2", "j", "k", "tab", "2")  # DAG moves, pane switches by number and Tab
PRESS_EVERY = 0.05  # seconds between key presses: a fast typist


def write_workflow(directory: Path, steps: int, seed: int = 7) -> Path:
    """Write ``noop10k.yaml``: ``steps`` no-op steps, each depending on up to 3 earlier ones."""
    rng = random.Random(seed)
    doc = {"name": "noop10k", "description": "benchmark", "steps": []}
    for i in range(steps):
        deps = sorted({f"s{rng.randrange(i)}" for _ in range(rng.randint(0, 3))}) if i else []
        doc["steps"].append({"name": f"s{i}", "module": "builtin", "action": "noop", "dependencies": deps})
    path = directory / "noop10k.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def run_rate(state: Path, run_id: str, steps: int) -> float:
    """Return tasks/s of a finished run, from the start and finish times its process recorded."""
    with Store(state / "orchtui.db", runs_dir=state / "runs") as store:
        record = store.get_run(run_id)
    assert record is not None and record.status is WorkflowStatus.COMPLETED, record
    assert record.started_at is not None and record.finished_at is not None
    return steps / (record.finished_at - record.started_at)


def wait_for_exit(run_id: str, timeout: float = 900.0) -> int:
    """Block until the runner of ``run_id`` exits; return its exit code."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for rid, code in reap_children():
            if rid == run_id:
                return code
        time.sleep(0.02)
    raise TimeoutError(f"run {run_id} did not finish in {timeout:.0f}s")


def headless(root: Path, workflow_file: Path, steps: int, workers: int, runs: int) -> list[float]:
    """Return tasks/s of each of ``runs`` back-to-back runs of a detached process nobody watches."""
    state = root / "state"
    rates = []
    for _ in range(runs):
        run_id = launch_run(load_workflow(workflow_file), state_dir=state, max_workers=workers)
        assert wait_for_exit(run_id) == 0
        rates.append(run_rate(state, run_id, steps))
    return rates


def _finished(engine: DashboardEngine, run_id: str) -> bool:
    status = engine.store.run_status(run_id)
    return status is not None and status.is_terminal


class FrameClock:
    """Records when the app hands a finished frame to its driver, and what it showed.

    The compositor has rendered the update by the time ``App._display`` gets it (the
    headless driver then discards it), so its time is when the screen was updated.
    """

    def __init__(self, app: OrchTUIApp, dag: DagView) -> None:
        self.frames: list[tuple[float, str | None, str | None]] = []
        original = app._display

        def display(screen: object, renderable: object) -> None:
            original(screen, renderable)  # type: ignore[arg-type]
            if renderable is not None:
                focused = app.focused
                self.frames.append((time.perf_counter(), dag.cursor, focused.id if focused is not None else None))

        app._display = display  # type: ignore[method-assign]

    def first_after(self, since: float, state: tuple[str | None, str | None]) -> float | None:
        """Time of the first frame after ``since`` that no longer shows ``state``, or None."""
        for at, cursor, focused in self.frames:
            if at >= since and (cursor, focused) != state:
                return at
        return None


class CollectorPauses:
    """Records how long each garbage collection held the dashboard's process (all threads
    stop while the collector runs), between :meth:`start` and :meth:`stop`."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []  # (generation, seconds)
        self._began = 0.0

    def start(self) -> None:
        gc.callbacks.append(self._collected)

    def stop(self) -> None:
        gc.callbacks.remove(self._collected)

    def _collected(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._began))

    def summary(self) -> str:
        """One line: how many collections, their total and longest pause, the full ones."""
        if not self.pauses:
            return "no collections"
        ms = [seconds * 1000 for _, seconds in self.pauses]
        full = sum(1 for generation, _ in self.pauses if generation == 2)
        return (f"{len(ms)} collections ({full} full), {sum(ms):.0f} ms in all, longest {max(ms):.1f} ms, "
                f"{sum(1 for m in ms if m > 15)} over 15 ms")


class LoopStalls:
    """Measures how long the event loop goes without running a 5 ms heartbeat task."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._beat())

    async def stop(self) -> float:
        """Stop beating; return the longest stall in seconds."""
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        return self.longest

    async def _beat(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            self.longest = max(self.longest, now - last - 0.005)
            last = now


async def attached(root: Path, steps: int, workers: int, runs: int) -> tuple[list[float], list[float], list[float], int]:
    """Watch ``runs`` back-to-back runs with the dashboard while keys are pressed at a fixed cadence.

    Returns (tasks/s per run, key -> frame latencies, Pilot press() durations, frames).
    """
    engine = DashboardEngine(
        state_dir=root / "state",
        workflows_dir=root / "workflows",
        resource_manager=ResourceManager(detect=False, state_dir=root / "state"),
        max_workers=workers,
    )
    app = OrchTUIApp(engine, refresh=10.0, machine=FixedMachine())
    latencies: list[float] = []
    press_times: list[float] = []
    run_ids: list[str] = []
    by_key: dict[str, list[float]] = {}
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            dag = app.query_one(DagView)
            while dag.model.title != "a_small":
                await pilot.pause(0.05)
            # as a user would: the workflow is selected (its graph laid out) before it runs
            stalls = LoopStalls()
            stalls.start()
            await asyncio.sleep(0.05)  # the heartbeat is beating
            s0 = time.perf_counter()
            app.post_message(WorkflowChosen("noop10k"))
            for _ in range(6000):
                if dag.model.size == steps:
                    break
                await asyncio.sleep(0.005)
            assert dag.model.size == steps
            shown_after = time.perf_counter() - s0
            print(f"  selecting the workflow: its graph on screen after {shown_after * 1000:.0f} ms; "
                  f"longest UI stall meanwhile {await stalls.stop() * 1000:.0f} ms")
            dag.focus()
            clock = FrameClock(app, dag)
            pauses = CollectorPauses()
            pauses.start()
            i = 0
            for _ in range(runs):
                run_id = engine.start_run("noop10k", {})  # what r does: a detached process
                run_ids.append(run_id)
                app.open_run(run_id)  # the DAG shows the 10k-step run, live
                # the dashboard reaps its runner processes itself: watch the run's status instead
                while not _finished(engine, run_id):
                    key = KEYS[i % len(KEYS)]
                    focused = app.focused
                    i += 1
                    if key == "2" and focused is dag:
                        # already there (a Tab that wrapped around): the key has nothing to show
                        continue
                    before = (dag.cursor, focused.id if focused is not None else None)
                    k0 = time.perf_counter()
                    # Pilot delivers the key; the latency ends at the first frame that shows
                    # its effect. press() itself also waits for the whole process to look idle
                    # (Textual's wait_for_idle), which is reported separately.
                    press = asyncio.create_task(pilot.press(key))
                    shown = None
                    while shown is None and time.perf_counter() - k0 < 5.0:
                        await asyncio.sleep(0.001)
                        shown = clock.first_after(k0, before)
                    await press
                    press_times.append(time.perf_counter() - k0)
                    assert shown is not None, f"key {key!r} changed nothing on screen"
                    latencies.append(shown - k0)
                    by_key.setdefault("j/k" if key in ("j", "k") else "pane keys", []).append(shown - k0)
                    await asyncio.sleep(PRESS_EVERY)
            pauses.stop()
            frames = app.frames
    finally:
        engine.close()
    print(f"  garbage collector while the runs were watched: {pauses.summary()}")
    rates = [run_rate(root / "state", run_id, steps) for run_id in run_ids]
    for kind, values in sorted(by_key.items()):
        ms = sorted(v * 1000 for v in values)
        print(f"  {kind}: {len(ms)} presses, p50 {statistics.median(ms):.1f} ms, p95 {_percentile(ms, 0.95):.1f} ms")
    return rates, latencies, press_times, frames


def _percentile(ms: list[float], q: float) -> float:
    return ms[min(len(ms) - 1, int(q * len(ms)))] if ms else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3, help="back-to-back runs per measurement (more key presses)")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    print(f"{args.steps}-step no-op workflow x {args.runs} runs, {args.workers} workers, "
          "each run in a detached `orchtui run` process")
    all_ms: list[float] = []
    all_press: list[float] = []
    ratios: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for round_no in range(1, args.rounds + 1):
            base = Path(tmp) / f"round{round_no}"
            files = {}
            for name in ("headless", "attached"):
                (base / name / "workflows").mkdir(parents=True)
                files[name] = write_workflow(base / name / "workflows", args.steps)
            # listed first, so the dashboard opens on it and the benchmark selects noop10k itself
            (base / "attached" / "workflows" / "a_small.yaml").write_text(
                "name: a_small\nsteps:\n  - {name: one, module: builtin, action: noop}\n", encoding="utf-8")
            rate_headless = statistics.mean(headless(base / "headless", files["headless"], args.steps, args.workers, args.runs))
            rates, latencies, presses, frames = asyncio.run(attached(base / "attached", args.steps, args.workers, args.runs))
            rate_attached = statistics.mean(rates)
            ms = sorted(x * 1000 for x in latencies)
            press_ms = sorted(x * 1000 for x in presses)
            all_ms.extend(ms)
            all_press.extend(press_ms)
            ratio = rate_attached / rate_headless
            ratios.append(ratio)
            print(f"round {round_no}: headless {rate_headless:6.0f} tasks/s, attached {rate_attached:6.0f} tasks/s "
                  f"({ratio:.2f}x); {len(ms)} keys -> frame: p50 {statistics.median(ms):.1f} ms, "
                  f"p95 {_percentile(ms, 0.95):.1f} ms, max {ms[-1]:.1f} ms; {frames} frames")
    all_ms.sort()
    all_press.sort()
    p50, p95 = statistics.median(all_ms), _percentile(all_ms, 0.95)
    ratio = statistics.median(ratios)
    print(f"key -> screen latency over {len(all_ms)} presses: p50 {p50:.1f} ms, p95 {p95:.1f} ms "
          f"(goal p95 < 50 ms: {'met' if p95 < 50 else 'NOT met'})")
    print(f"  (Pilot's press() returning, which also waits for the process to idle: "
          f"p50 {statistics.median(all_press):.1f} ms, p95 {_percentile(all_press, 0.95):.1f} ms)")
    print(f"throughput attached / headless: {ratio:.2f}x{' (median of rounds)' if args.rounds > 1 else ''} "
          f"(goal >= 0.8x: {'met' if ratio >= 0.8 else 'NOT met'})")


if __name__ == "__main__":
    main()
