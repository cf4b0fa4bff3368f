"""Benchmark WorkflowDAG against bare networkx and the standard library's graphlib.

For generated DAGs of 1k, 10k and 100k nodes (about 3 dependencies per node, seeded),
each contender builds its graph from the same edge list and then validates it (cycle
check), sorts it topologically and groups it into parallel levels:

* ours      WorkflowDAG: from_edges + validate + topological_sort + get_execution_levels
* networkx  DiGraph + is_directed_acyclic_graph + topological_sort + topological_generations
* graphlib  TopologicalSorter: static_order, then a prepare/get_ready/done pass for levels

It also times the Mermaid export of the 10k-node graph. Prints a table and the
ours/networkx ratio (goal: at most 1.5 at 100k) and the Mermaid time (goal: < 0.2 s).

Run: ``.venv/bin/python benchmarks/dag_bench.py`` (``--quick``: 1k and 10k only).
"""

from __future__ import annotations

import argparse
import gc
import graphlib
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import networkx as nx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.workflow_dag import WorkflowDAG  # noqa: E402


def generate(n: int, edges_per_node: int = 3, seed: int = 42) -> tuple[list[str], list[tuple[str, str]]]:
    """Return node names and (dependency, dependent) edges of a random DAG."""
    rng = random.Random(seed)
    names = [f"task_{i}" for i in range(n)]
    edges = []
    for i in range(1, n):
        # Prefer recent nodes so the graph is deep as well as wide.
        for j in {max(0, i - 1 - int(rng.expovariate(1 / 50))) for _ in range(min(i, edges_per_node))}:
            edges.append((names[j], names[i]))
    return names, edges


def run_ours(names: list[str], edges: list[tuple[str, str]]) -> int:
    dag = WorkflowDAG.from_edges(names, edges)
    dag.validate()
    order = dag.topological_sort()
    levels = dag.get_execution_levels()
    return len(order) + len(levels)


def run_networkx(names: list[str], edges: list[tuple[str, str]]) -> int:
    graph = nx.DiGraph()
    graph.add_nodes_from(names)
    graph.add_edges_from(edges)
    if not nx.is_directed_acyclic_graph(graph):
        raise SystemExit("generated graph has a cycle")
    order = list(nx.topological_sort(graph))
    levels = [list(g) for g in nx.topological_generations(graph)]
    return len(order) + len(levels)


def run_graphlib(names: list[str], edges: list[tuple[str, str]]) -> int:
    deps: dict[str, list[str]] = {name: [] for name in names}
    for dep, node in edges:
        deps[node].append(dep)
    order = list(graphlib.TopologicalSorter(deps).static_order())  # raises CycleError on a cycle
    sorter = graphlib.TopologicalSorter(deps)
    sorter.prepare()
    levels = []
    while sorter.is_active():
        ready = sorter.get_ready()
        levels.append(list(ready))
        sorter.done(*ready)
    return len(order) + len(levels)


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """Best wall time of ``repeat`` runs (the least disturbed by a noisy machine)."""
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only 1k and 10k nodes")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (best is kept)")
    args = parser.parse_args()
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    print(f"validate + topological sort + levels, best of {args.repeat} (seconds)")
    print(f"{'nodes':>8} {'edges':>8} {'ours':>9} {'networkx':>9} {'graphlib':>9} {'ours/nx':>8} {'ours/graphlib':>14}")
    ratios = {}
    for n in sizes:
        names, edges = generate(n)
        repeat = args.repeat if n < 100_000 else max(2, args.repeat // 2)
        ours = best_of(lambda: run_ours(names, edges), repeat)
        bare = best_of(lambda: run_networkx(names, edges), repeat)
        glib = best_of(lambda: run_graphlib(names, edges), repeat)
        ratios[n] = ours / bare
        print(f"{n:>8} {len(edges):>8} {ours:>9.4f} {bare:>9.4f} {glib:>9.4f} {ours / bare:>8.2f} {ours / glib:>14.2f}")
    names, edges = generate(10_000)
    dag = WorkflowDAG.from_edges(names, edges)
    dag.validate()
    statuses = {name: ("completed" if i % 3 else "running") for i, name in enumerate(names)}
    plain = best_of(dag.to_mermaid, args.repeat)
    coloured = best_of(lambda: dag.to_mermaid(statuses), args.repeat)
    print(f"Mermaid export, 10k nodes: {plain:.4f} s plain, {coloured:.4f} s with statuses (goal < 0.2 s)")
    largest = max(ratios)
    verdict = "meets" if ratios[largest] <= 1.5 else "MISSES"
    print(f"ours/networkx at {largest} nodes: {ratios[largest]:.2f} ({verdict} the 1.5x goal)")


if __name__ == "__main__":
    main()
