"""Scheduler throughput against its peers, all measured in one run; prints ratios.

1. A 10k-task DAG of no-op tasks (each with up to 3 dependencies, seeded) through
   the full TaskOrchestrator (builtin.noop via core.actions.invoke), through Dask's
   threaded scheduler (``dask.threaded.get`` on a graph dict), and through
   ``graphlib.TopologicalSorter`` + ``ThreadPoolExecutor`` (the practical floor of a
   Python thread pool: submit ready nodes, ``done()`` as futures finish).
2. 1k shell steps running ``true`` through the orchestrator against bare
   ``subprocess.run`` on a thread pool of the same size.
3. Memory per queued task with 100k tasks added but not started (tracemalloc).
4. With ``--store``: the same DAG as a workflow through the WorkflowManager with the
   run store recording it against without, alternating (see ``store_bench.py``).

Goals: >= 3x Dask threaded and >= 0.8x the graphlib floor in tasks/s; shell steps
within 1.3x of bare subprocess; < 2 KB per queued task; with the store on >= 0.85x
the store-off throughput. Every contender uses the same number of workers.
Run: ``.venv/bin/python benchmarks/throughput.py [--store] [--dag-only]``.
"""

from __future__ import annotations

import argparse
import gc
import graphlib
import queue
import random
import subprocess
import sys
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.models import Task  # noqa: E402
from core.task_orchestrator import TaskOrchestrator  # noqa: E402


def make_dag(n: int, seed: int, max_deps: int = 3) -> dict[int, list[int]]:
    """Return ``{node: [dependencies]}`` with each node depending on up to ``max_deps`` earlier ones."""
    rng = random.Random(seed)
    dag: dict[int, list[int]] = {}
    for node in range(n):
        k = rng.randint(0, min(max_deps, node))
        dag[node] = rng.sample(range(node), k) if k else []
    return dag


def noop(*_args: Any) -> None:
    return None


def _time_orchestrator(tasks: list[Task], workers: int) -> float:
    """Seconds from adding ``tasks`` to the last one finishing, through a fresh orchestrator."""
    orchestrator = TaskOrchestrator(workers)
    try:
        start = time.perf_counter()
        for task in tasks:
            orchestrator.add_task(task)
        orchestrator.start_execution()
        orchestrator.wait_for_completion()
        elapsed = time.perf_counter() - start
        stats = orchestrator.get_execution_stats()
        assert stats["completed"] == len(tasks), stats
    finally:
        orchestrator.shutdown()
    return elapsed


def run_orchestrator(dag: dict[int, list[int]], workers: int) -> float:
    tasks = [Task(name=f"t{node}", module="builtin", action="noop", id=f"t{node}") for node in dag]
    for node, deps in dag.items():
        tasks[node].dependencies = [f"t{d}" for d in deps]
    return _time_orchestrator(tasks, workers)


def run_dask(dag: dict[int, list[int]], workers: int) -> float:
    import dask.threaded

    graph = {f"t{node}": (noop, *[f"t{d}" for d in deps]) for node, deps in dag.items()}
    keys = list(graph)
    start = time.perf_counter()
    dask.threaded.get(graph, keys, num_workers=workers)
    return time.perf_counter() - start


def run_graphlib(dag: dict[int, list[int]], workers: int) -> float:
    start = time.perf_counter()
    sorter = graphlib.TopologicalSorter(dag)
    sorter.prepare()
    finished: queue.SimpleQueue[Any] = queue.SimpleQueue()
    with ThreadPoolExecutor(workers) as pool:
        in_flight = 0
        while sorter.is_active():
            for node in sorter.get_ready():
                future = pool.submit(noop)
                future.add_done_callback(lambda _f, node=node: finished.put(node))
                in_flight += 1
            node = finished.get()
            in_flight -= 1
            sorter.done(node)
    return time.perf_counter() - start


def run_shell_orchestrator(n: int, workers: int) -> float:
    tasks = [Task(name=f"s{i}", module="shell", action="run", parameters={"command": ["true"]}) for i in range(n)]
    return _time_orchestrator(tasks, workers)


def run_shell_invoke(n: int, workers: int) -> float:
    """The same steps through core.actions.invoke on a plain pool: the action's own cost."""
    from core.actions import invoke
    from core.executors import CancelToken
    from core.models import Invocation

    invocations = [Invocation(f"s{i}", f"s{i}", "shell", "run", {"command": ["true"]}) for i in range(n)]
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        for result in pool.map(lambda inv: invoke(inv, CancelToken()), invocations):
            assert result.success
    return time.perf_counter() - start


def run_shell_bare(n: int, workers: int) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        for proc in pool.map(lambda _i: subprocess.run(["true"], capture_output=True, check=False), range(n)):
            assert proc.returncode == 0
    return time.perf_counter() - start


def memory_per_queued_task(n: int, seed: int) -> float:
    dag = make_dag(n, seed)
    orchestrator = TaskOrchestrator(4)
    try:
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for node, deps in dag.items():
            orchestrator.add_task(
                Task(name=f"t{node}", module="builtin", action="noop", id=f"t{node}",
                     dependencies=[f"t{d}" for d in deps])
            )
        orchestrator.flush(timeout=600)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        assert orchestrator.get_execution_stats()["total_tasks"] == n
    finally:
        orchestrator.shutdown()
    return (after - before) / n


def best_interleaved(repeat: int, contenders: dict[str, Any]) -> dict[str, float]:
    """Best time of each contender over ``repeat`` rounds, taking turns (A B C A B C ...).

    Taking turns spreads the noise of a shared machine over every contender alike.
    """
    best = {name: float("inf") for name in contenders}
    for _ in range(repeat):
        for name, run in contenders.items():
            best[name] = min(best[name], run())
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--shell", type=int, default=1_000)
    parser.add_argument("--queued", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=5, help="best of N rounds for each timing")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--store", action="store_true",
                        help="also run the --tasks no-op DAG as a workflow with the run store on and off (issue 4)")
    parser.add_argument("--dag-only", action="store_true",
                        help="run only the DAG section (skip shell, memory and store), for quick iteration")
    args = parser.parse_args(argv)

    dag = make_dag(args.tasks, args.seed)
    edges = sum(len(d) for d in dag.values())
    print(f"DAG: {args.tasks} no-op tasks, {edges} edges, {args.workers} workers, best of {args.repeat}")
    times = best_interleaved(args.repeat, {
        "orchtui": lambda: run_orchestrator(dag, args.workers),
        "dask": lambda: run_dask(dag, args.workers),
        "graphlib": lambda: run_graphlib(dag, args.workers),
    })
    rate = {name: args.tasks / t for name, t in times.items()}
    for name, value in rate.items():
        print(f"  {name:<9} {value:>10,.0f} tasks/s")
    vs_dask = rate["orchtui"] / rate["dask"]
    vs_floor = rate["orchtui"] / rate["graphlib"]
    print(f"  orchtui / dask threaded   = {vs_dask:5.2f}x  (goal >= 3.0)  {'ok' if vs_dask >= 3 else 'MISSED'}")
    print(f"  orchtui / graphlib floor  = {vs_floor:5.2f}x  (goal >= 0.8)  {'ok' if vs_floor >= 0.8 else 'MISSED'}")
    if args.dag_only:
        return 0

    print(f"shell: {args.shell} steps running `true`, {args.workers} workers, best of {args.repeat}")
    shell = best_interleaved(args.repeat, {
        "orchtui": lambda: run_shell_orchestrator(args.shell, args.workers),
        "invoke": lambda: run_shell_invoke(args.shell, args.workers),
        "bare": lambda: run_shell_bare(args.shell, args.workers),
    })
    shell_ratio = shell["orchtui"] / shell["bare"]
    print(f"  orchtui {shell['orchtui']:6.2f}s   actions.invoke on a thread pool {shell['invoke']:6.2f}s   "
          f"bare subprocess.run {shell['bare']:6.2f}s")
    print(f"  orchtui / bare time       = {shell_ratio:5.2f}x  (goal <= 1.3)  {'ok' if shell_ratio <= 1.3 else 'MISSED'}")
    print(f"  of which the scheduler    = {shell['orchtui'] / shell['invoke']:5.2f}x  (orchtui / invoke alone)")

    per_task = memory_per_queued_task(args.queued, args.seed)
    print(f"memory: {args.queued} queued tasks (Task objects included)")
    print(f"  {per_task:,.0f} bytes per queued task  (goal < 2048)  {'ok' if per_task < 2048 else 'MISSED'}")

    if args.store:
        import store_bench  # next to this file; imported late: it loads the workflow and store layers

        # Rounds of its own: its verdict is a median with an interval, which needs 6 or more.
        store_bench.compare(args.tasks, args.workers, max(args.repeat, 12), args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
