"""The dependency graph of a workflow, on ``networkx``.

A :class:`WorkflowDAG` holds :class:`DAGTask` records keyed by name and answers the
questions the rest of orchtui asks about order: is the graph valid, in which order and
in which parallel levels can the steps run, what is the critical path, what lies up- or
downstream of a step (re-run from a step), and what does it look like (Mermaid, DOT).

Edges point from a dependency to the step that needs it, so a topological order is a
valid run order. The graph is built lazily from the records in one batch and cached
until the next :meth:`WorkflowDAG.add_task`; the order and the levels come from a
single ``nx.topological_generations`` pass, so validation, sort and levels together
cost about one networkx traversal.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .errors import CycleDetectedError, DAGValidationError
from .models import TaskStatus, Workflow
from .text import did_you_mean

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["DAGTask", "WorkflowDAG", "STATUS_STYLES", "mermaid_label"]

# networkx is imported where a graph is built or walked, not with this module: importing
# it takes a tenth of a second, which `orchtui runs`, `show` and `logs` need not pay.


@dataclasses.dataclass(slots=True)
class DAGTask:
    """One node of the graph: a name, what it waits for, and how long it may take.

    ``estimate`` (expected seconds) and ``timeout`` (the most seconds allowed) feed
    :meth:`WorkflowDAG.critical_path`; ``payload`` carries whatever the caller needs
    back (the :class:`~core.models.WorkflowStep` when built from a workflow).
    """

    name: str
    dependencies: list[str] = dataclasses.field(default_factory=list)
    estimate: float | None = None
    timeout: float | None = None
    payload: Any = None

    @property
    def weight(self) -> float:
        """Seconds this task counts for on a path: its estimate, else its timeout, else 0."""
        if self.estimate is not None:
            return float(self.estimate)
        if self.timeout is not None:
            return float(self.timeout)
        return 0.0


# Fill and stroke per status, chosen to read on light and dark Mermaid themes.
STATUS_STYLES: dict[TaskStatus, str] = {
    TaskStatus.PENDING: "fill:#eeeeee,stroke:#9e9e9e,color:#212121",
    TaskStatus.READY: "fill:#e3f2fd,stroke:#1e88e5,color:#0d47a1",
    TaskStatus.RUNNING: "fill:#fff8e1,stroke:#f9a825,color:#5d4037,stroke-width:2px",
    TaskStatus.COMPLETED: "fill:#e8f5e9,stroke:#43a047,color:#1b5e20",
    TaskStatus.FAILED: "fill:#ffebee,stroke:#e53935,color:#b71c1c,stroke-width:2px",
    TaskStatus.CANCELLED: "fill:#f3e5f5,stroke:#8e24aa,color:#4a148c",
    TaskStatus.SKIPPED: "fill:#fafafa,stroke:#bdbdbd,color:#757575,stroke-dasharray:4 3",
    TaskStatus.INTERRUPTED: "fill:#fbe9e7,stroke:#f4511e,color:#bf360c",
}

_DOT_COLOURS: dict[TaskStatus, str] = {
    TaskStatus.PENDING: "#eeeeee",
    TaskStatus.READY: "#e3f2fd",
    TaskStatus.RUNNING: "#fff8e1",
    TaskStatus.COMPLETED: "#e8f5e9",
    TaskStatus.FAILED: "#ffebee",
    TaskStatus.CANCELLED: "#f3e5f5",
    TaskStatus.SKIPPED: "#fafafa",
    TaskStatus.INTERRUPTED: "#fbe9e7",
}

# Characters that are safe verbatim inside a quoted Mermaid label; everything else
# (quotes, brackets, pipes, '#', ';', non-ASCII, control characters) becomes an entity.
_MERMAID_UNSAFE = re.compile(r"[^A-Za-z0-9 _.,:/+=@!?*()-]")
_MERMAID_NAMED = {'"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;"}


def _mermaid_entity(match: re.Match[str]) -> str:
    char = match.group()
    return _MERMAID_NAMED.get(char) or f"#{ord(char)};"


def mermaid_label(text: str) -> str:
    """Return ``text`` escaped for a quoted Mermaid label (``n0["…"]``).

    Every character outside a small safe ASCII set becomes a Mermaid entity code
    (``#quot;``, ``#91;`` for ``[``, ``#124;`` for ``|``, ``#233;`` for ``é``), so any
    name renders and none can close the label or inject syntax.
    """
    return _MERMAID_UNSAFE.sub(_mermaid_entity, text)


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class WorkflowDAG:
    """A workflow's steps as a directed acyclic graph (edges: dependency -> dependent).

    Parameters
    ----------
    tasks : iterable of DAGTask or mapping, optional
        Initial tasks; mappings need ``name`` and may have ``dependencies``,
        ``estimate``, ``timeout`` and ``payload``.

    Adding a task never raises for a bad graph: duplicates, self-dependencies and
    missing dependencies are remembered and reported all at once by :meth:`validate`.
    """

    __slots__ = ("tasks", "_duplicates", "_graph", "_levels", "_order", "_problems", "_cycle")

    def __init__(self, tasks: Iterable[DAGTask | Mapping[str, Any]] | None = None) -> None:
        self.tasks: dict[str, DAGTask] = {}
        self._duplicates: list[str] = []
        self._reset()
        for task in tasks or ():
            self.add_task(task if isinstance(task, DAGTask) else DAGTask(**task))

    # ------------------------------------------------------------------ building

    def _reset(self) -> None:
        self._graph: nx.DiGraph | None = None
        self._levels: list[list[str]] | None = None
        self._order: list[str] | None = None
        self._problems: list[str] | None = None
        self._cycle: list[str] | None = None

    def add_task(
        self,
        task: DAGTask | str,
        dependencies: Iterable[str] = (),
        *,
        estimate: float | None = None,
        timeout: float | None = None,
        payload: Any = None,
    ) -> DAGTask:
        """Add a task, given as a :class:`DAGTask` or as a name plus fields.

        Returns
        -------
        DAGTask
            The record stored (the first one, when the name was already taken; the
            duplicate is reported by :meth:`validate`).
        """
        if not isinstance(task, DAGTask):
            task = DAGTask(task, list(dependencies), estimate, timeout, payload)
        existing = self.tasks.get(task.name)
        if existing is not None:
            self._duplicates.append(task.name)
            return existing
        self.tasks[task.name] = task
        self._reset()
        return task

    @classmethod
    def from_workflow(cls, workflow: Workflow) -> WorkflowDAG:
        """Return the DAG of ``workflow``'s steps (payload: the step; timeout: its timeout)."""
        dag = cls()
        add = dag.add_task
        for step in workflow.steps:
            add(DAGTask(step.name, list(step.dependencies), None, step.timeout, step))
        return dag

    @classmethod
    def from_edges(cls, nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> WorkflowDAG:
        """Return a DAG of ``nodes`` where each ``(dependency, dependent)`` edge is a dependency."""
        deps: dict[str, list[str]] = {name: [] for name in nodes}
        for dep, node in edges:
            deps.setdefault(node, []).append(dep)
        dag = cls()
        dag.tasks = {name: DAGTask(name, d) for name, d in deps.items()}
        return dag

    def __len__(self) -> int:
        return len(self.tasks)

    def __contains__(self, name: object) -> bool:
        return name in self.tasks

    def __iter__(self) -> Iterator[str]:
        return iter(self.tasks)

    @property
    def graph(self) -> nx.DiGraph:
        """The ``networkx.DiGraph`` of the valid edges (missing and self dependencies left out)."""
        if self._graph is None:
            self._build()
        assert self._graph is not None
        return self._graph

    def _build(self) -> None:
        import networkx as nx

        tasks = self.tasks
        edges = [(dep, name) for name, task in tasks.items() for dep in task.dependencies]
        problems: list[str] = []
        bad = [e for e in edges if e[0] == e[1] or e[0] not in tasks]
        if bad:
            bad_set = set(bad)
            edges = [e for e in edges if e not in bad_set]
            for dep, name in bad:
                if dep == name:
                    problems.append(f"step {name!r} depends on itself")
                else:
                    problems.append(f"step {name!r} depends on unknown step {dep!r}{did_you_mean(dep, tasks, sep='; ')}")
        for name in dict.fromkeys(self._duplicates):
            problems.append(f"step name {name!r} is used more than once")
        graph = nx.DiGraph()
        graph.add_nodes_from(tasks)
        graph.add_edges_from(edges)
        self._graph = graph
        self._problems = problems

    def _analyse(self) -> None:
        """Compute levels and order in one pass, or find the cycle that prevents them."""
        import networkx as nx

        graph = self.graph
        if self._levels is not None or self._cycle is not None:
            return
        try:
            generations = list(nx.topological_generations(graph))
        except nx.NetworkXUnfeasible:
            self._cycle = self._one_cycle(graph)
            return
        # networkx orders a generation by discovery; re-sort by insertion for stable output.
        index = {name: i for i, name in enumerate(self.tasks)}
        key = index.__getitem__
        levels = [sorted(gen, key=key) if len(gen) > 1 else gen for gen in generations]
        self._levels = levels
        self._order = [name for level in levels for name in level]

    def _one_cycle(self, graph: nx.DiGraph) -> list[str]:
        import networkx as nx

        edges = nx.find_cycle(graph)
        return self._rotate([u for u, _ in edges])

    def _rotate(self, cycle: list[str]) -> list[str]:
        """Start the cycle at its earliest-added node and close it (``a, b, a``)."""
        index = {name: i for i, name in enumerate(self.tasks)} if len(cycle) > 1 else {}
        start = min(range(len(cycle)), key=lambda i: index.get(cycle[i], 0)) if index else 0
        path = cycle[start:] + cycle[:start]
        return path + [path[0]]

    # ---------------------------------------------------------------- validation

    def problems(self) -> list[str]:
        """Return every structural problem (duplicates, self, missing deps, cycles) as sentences."""
        graph = self.graph
        assert self._problems is not None
        found = list(self._problems)
        for cycle in self.find_cycles(graph):
            found.append(f"dependency cycle: {' -> '.join(cycle)}")
        return found

    def find_cycles(self, graph: nx.DiGraph | None = None) -> list[list[str]]:
        """Return one cycle per strongly connected component, each closed (``a -> b -> a``).

        Returns an empty list for an acyclic graph; every returned path is a real cycle
        of :attr:`graph`, starting at its earliest-added node.
        """
        import networkx as nx

        graph = self.graph if graph is None else graph
        if self._levels is not None:
            return []
        cycles = []
        for component in nx.strongly_connected_components(graph):
            if len(component) > 1:
                cycles.append(self._one_cycle(graph.subgraph(component)))
        index = {name: i for i, name in enumerate(self.tasks)}
        cycles.sort(key=lambda c: index[c[0]])
        return cycles

    def validate(self) -> None:
        """Check that the graph can run.

        Raises
        ------
        DAGValidationError
            Duplicate names, self-dependencies or missing dependencies (all of them in
            one message; ``details["problems"]`` lists each).
        CycleDetectedError
            The dependencies form a cycle; the message shows it, ``a -> b -> c -> a``.
        """
        self._analyse()
        assert self._problems is not None
        if self._problems:
            problems = list(self._problems)
            if self._cycle:
                problems.append(f"dependency cycle: {' -> '.join(self._cycle)}")
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise DAGValidationError(
                problems[0] + more,
                details={"problems": problems, "cycle": self._cycle or []},
                suggestions=["fix the step names and dependencies listed in details.problems"],
            )
        if self._cycle:
            raise CycleDetectedError(self._cycle)

    # ----------------------------------------------------------------- ordering

    def topological_sort(self) -> list[str]:
        """Return the task names in a run order: level by level, ties in insertion order.

        Raises
        ------
        DAGValidationError, CycleDetectedError
            As :meth:`validate`.
        """
        self.validate()
        assert self._order is not None
        return list(self._order)

    def get_execution_levels(self) -> list[list[str]]:
        """Return the tasks grouped in levels; every task of a level can run in parallel.

        Level 0 holds the tasks without dependencies, level k the tasks whose deepest
        dependency is in level k-1. Raises like :meth:`validate`.
        """
        self.validate()
        assert self._levels is not None
        return [list(level) for level in self._levels]

    def critical_path(self) -> tuple[list[str], float]:
        """Return the heaviest dependency chain and its total weight in seconds.

        A task weighs its ``estimate``, else its ``timeout``, else 0; among chains of
        equal weight the one with more tasks wins, then the earliest-added. Returns
        ``([], 0.0)`` for an empty graph. Raises like :meth:`validate`.
        """
        order = self.topological_sort()
        if not order:
            return [], 0.0
        tasks = self.tasks
        pred = self.graph.pred
        best: dict[str, tuple[float, int]] = {}
        back: dict[str, str | None] = {}
        for name in order:
            prev: str | None = None
            score = (0.0, 0)
            for dep in pred[name]:
                if best[dep] > score:
                    score, prev = best[dep], dep
            best[name] = (score[0] + tasks[name].weight, score[1] + 1)
            back[name] = prev
        end = max(order, key=best.__getitem__)
        path: list[str] = []
        node: str | None = end
        while node is not None:
            path.append(node)
            node = back[node]
        path.reverse()
        return path, best[end][0]

    # ------------------------------------------------------------ neighbourhoods

    def _require(self, name: str) -> None:
        if name not in self.tasks:
            raise DAGValidationError(
                f"no step named {name!r} in this workflow{did_you_mean(name, self.tasks, sep='; ')}",
                details={"step": name},
            )

    def upstream(self, name: str) -> set[str]:
        """Return every task ``name`` depends on, directly or not (itself excluded).

        Raises
        ------
        DAGValidationError
            There is no task called ``name``.
        """
        import networkx as nx

        self._require(name)
        return set(nx.ancestors(self.graph, name))

    def downstream(self, name: str) -> set[str]:
        """Return every task that depends on ``name``, directly or not (itself excluded).

        Raises
        ------
        DAGValidationError
            There is no task called ``name``.
        """
        import networkx as nx

        self._require(name)
        return set(nx.descendants(self.graph, name))

    def roots(self) -> list[str]:
        """Return the tasks without dependencies, in insertion order."""
        in_degree = self.graph.in_degree
        return [name for name in self.tasks if in_degree(name) == 0]

    def leaves(self) -> list[str]:
        """Return the tasks nothing depends on, in insertion order."""
        out_degree = self.graph.out_degree
        return [name for name in self.tasks if out_degree(name) == 0]

    def subdag(self, names: Iterable[str]) -> WorkflowDAG:
        """Return a new DAG of just ``names``; dependencies outside the set are dropped.

        Raises
        ------
        DAGValidationError
            A name is not a task of this DAG.
        """
        keep = set(names)
        for name in keep:
            self._require(name)
        dag = WorkflowDAG()
        for name, task in self.tasks.items():
            if name in keep:
                deps = [d for d in task.dependencies if d in keep]
                dag.add_task(DAGTask(name, deps, task.estimate, task.timeout, task.payload))
        return dag

    def from_step(self, name: str) -> WorkflowDAG:
        """Return the sub-DAG that re-running from ``name`` touches: it and its downstream."""
        return self.subdag(self.downstream(name) | {name})

    # --------------------------------------------------------------- rendering

    def _status_map(self, statuses: Mapping[str, str | TaskStatus] | None) -> dict[str, TaskStatus]:
        if not statuses:
            return {}
        resolved: dict[str, TaskStatus] = {}
        for name, status in statuses.items():
            self._require(name)
            try:
                resolved[name] = TaskStatus(status)
            except ValueError:
                raise DAGValidationError(
                    f"unknown status {status!r} for step {name!r}; use one of {', '.join(TaskStatus.choices())}"
                ) from None
        return resolved

    def to_mermaid(self, statuses: Mapping[str, str | TaskStatus] | None = None, *, direction: str = "TD") -> str:
        """Return a Mermaid flowchart of the graph.

        Node ids are ``n0, n1, …`` (insertion order), labels are the task names escaped
        with :func:`mermaid_label`. With ``statuses`` (``{name: status}``) every status
        gets a ``classDef`` and each listed node a ``class`` line, so a live run's graph
        shows its state. Missing and self dependencies are not drawn.

        Raises
        ------
        DAGValidationError
            ``statuses`` names an unknown task or an unknown status.
        """
        if direction not in ("TD", "TB", "BT", "LR", "RL"):
            raise DAGValidationError(f"unknown Mermaid direction {direction!r}; use TD, TB, BT, LR or RL")
        status_of = self._status_map(statuses)
        ids = {name: f"n{i}" for i, name in enumerate(self.tasks)}
        lines = [f"flowchart {direction}"]
        lines.extend(f'    {ids[name]}["{mermaid_label(name)}"]' for name in self.tasks)
        lines.extend(f"    {ids[u]} --> {ids[v]}" for u, v in self.graph.edges)
        if statuses is not None:
            lines.extend(f"    classDef {status.value} {style}" for status, style in STATUS_STYLES.items())
            groups: dict[TaskStatus, list[str]] = {}
            for name, status in status_of.items():
                groups.setdefault(status, []).append(ids[name])
            lines.extend(f"    class {','.join(members)} {status.value}" for status, members in groups.items())
        return "\n".join(lines) + "\n"

    def to_dot(self, statuses: Mapping[str, str | TaskStatus] | None = None, *, name: str = "workflow") -> str:
        """Return the graph in Graphviz DOT, nodes coloured by ``statuses`` when given.

        Raises
        ------
        DAGValidationError
            ``statuses`` names an unknown task or an unknown status.
        """
        status_of = self._status_map(statuses)
        ids = {task: f"n{i}" for i, task in enumerate(self.tasks)}
        lines = [f"digraph {_dot_quote(name)} {{", "    rankdir=TB;", '    node [shape=box, style="rounded,filled", fillcolor="#ffffff"];']
        for task, ident in ids.items():
            status = status_of.get(task)
            extra = f", fillcolor={_dot_quote(_DOT_COLOURS[status])}, tooltip={_dot_quote(status.value)}" if status else ""
            lines.append(f"    {ident} [label={_dot_quote(task)}{extra}];")
        lines.extend(f"    {ids[u]} -> {ids[v]};" for u, v in self.graph.edges)
        lines.append("}")
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"levels", "order", "critical_path", "critical_path_seconds"}`` for JSON output.

        Raises like :meth:`validate`.
        """
        path, seconds = self.critical_path()
        return {
            "levels": self.get_execution_levels(),
            "order": self.topological_sort(),
            "critical_path": path,
            "critical_path_seconds": seconds,
        }


