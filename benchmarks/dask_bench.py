"""The Dask backend against the thread backend, in one run; prints the ratio and overheads.

1k independent steps of ``builtin.sleep`` (50 ms each) go through the same
TaskOrchestrator twice: once on the thread backend with 4 workers, once on the Dask
backend with a LocalCluster of 4 workers x 1 thread (worker processes by default,
``--threads-cluster`` for in-process workers). Both have the same ideal wall time,
``steps * seconds / workers``; the difference is the cost each backend adds per step,
``(wall - ideal) / steps``. Cluster start-up is measured apart and not counted.

Run: ``.venv/bin/python benchmarks/dask_bench.py`` (``--steps``, ``--seconds``,
``--workers``, ``--threads-cluster``). A third line runs the Dask backend with the
orchestrator allowed twice as many steps in flight as Dask has threads, which hides
Dask's per-step round trip (at the price of Dask, not orchtui, ordering those extras).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import distributed  # noqa: E402

from core.dask_backend import DaskBackend  # noqa: E402
from core.executors import ThreadBackend  # noqa: E402
from core.interfaces import ExecutorBackend  # noqa: E402
from core.models import Task  # noqa: E402
from core.task_orchestrator import TaskOrchestrator  # noqa: E402


def run_steps(backend: ExecutorBackend, steps: int, seconds: float, workers: int) -> float:
    """Run ``steps`` sleeps through a TaskOrchestrator on ``backend``; return the wall time.

    Raises:
        RuntimeError: a step did not complete.
    """
    tasks = [
        Task(name=f"s{i}", module="builtin", action="sleep", parameters={"seconds": seconds}, id=f"s{i}")
        for i in range(steps)
    ]
    orchestrator = TaskOrchestrator(workers, backend=backend)
    try:
        start = time.perf_counter()
        orchestrator.add_tasks(tasks)
        orchestrator.start_execution()
        orchestrator.wait_for_completion()
        elapsed = time.perf_counter() - start
        completed = orchestrator.get_execution_stats()["completed"]
    finally:
        orchestrator.shutdown()
    if completed != steps:
        raise RuntimeError(f"only {completed} of {steps} steps completed on {backend.name}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=0.05)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads-cluster", action="store_true",
                        help="in-process Dask workers (processes=False) instead of worker processes")
    args = parser.parse_args()
    ideal = args.steps * args.seconds / args.workers
    kind = "threads" if args.threads_cluster else "processes"
    print(f"{args.steps} steps of builtin.sleep {args.seconds * 1000:g} ms, {args.workers} workers; "
          f"ideal wall {ideal:.2f}s")

    thread_wall = run_steps(ThreadBackend(args.workers), args.steps, args.seconds, args.workers)

    started = time.perf_counter()
    cluster = distributed.LocalCluster(
        n_workers=args.workers, threads_per_worker=1, processes=not args.threads_cluster, dashboard_address=None)
    client = distributed.Client(cluster, set_as_default=False)
    startup = time.perf_counter() - started
    try:
        dask_wall = run_steps(DaskBackend(client=client), args.steps, args.seconds, args.workers)
        # Same cluster, but the orchestrator keeps one extra step per Dask thread in flight,
        # hiding Dask's submit-to-result round trip behind the running step.
        ahead_wall = run_steps(DaskBackend(client=client), args.steps, args.seconds, 2 * args.workers)
    finally:
        client.close()
        cluster.close()

    for label, wall in ((f"thread backend ({args.workers} threads)", thread_wall),
                        (f"dask backend (LocalCluster, {args.workers} {kind} x 1 thread)", dask_wall),
                        (f"  same, orchestrator max_workers={2 * args.workers} (one queued per thread)", ahead_wall)):
        overhead_ms = (wall - ideal) / args.steps * 1000
        print(f"  {label:<60} wall {wall:6.2f}s  overhead/step {overhead_ms:6.2f} ms  "
              f"{args.steps / wall:6.1f} steps/s")
    print(f"  {'dask cluster start-up (not counted)':<60} {startup:6.2f}s")
    print(f"  dask / thread wall time = {dask_wall / thread_wall:.2f}x "
          f"({ahead_wall / thread_wall:.2f}x with one step queued per Dask thread)")


if __name__ == "__main__":
    main()
