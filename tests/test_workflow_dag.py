"""WorkflowDAG: validation, ordering, levels, critical path, neighbourhoods, rendering."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import CycleDetectedError, DAGValidationError
from core.models import TaskStatus, Workflow, WorkflowStep
from core.workflow_dag import DAGTask, WorkflowDAG, mermaid_label


def diamond() -> WorkflowDAG:
    return WorkflowDAG([
        {"name": "a"},
        {"name": "b", "dependencies": ["a"], "estimate": 5},
        {"name": "c", "dependencies": ["a"], "estimate": 1},
        {"name": "d", "dependencies": ["b", "c"]},
    ])


def test_topological_sort_and_levels_of_a_diamond() -> None:
    dag = diamond()
    dag.validate()
    assert dag.topological_sort() == ["a", "b", "c", "d"]
    assert dag.get_execution_levels() == [["a"], ["b", "c"], ["d"]]


def test_ties_follow_insertion_order() -> None:
    dag = WorkflowDAG()
    for name in ["zeta", "alpha", "mid"]:
        dag.add_task(name)
    dag.add_task("end", ["mid", "zeta", "alpha"])
    assert dag.topological_sort() == ["zeta", "alpha", "mid", "end"]


def test_add_task_after_sort_invalidates_the_cache() -> None:
    dag = diamond()
    assert dag.topological_sort()[-1] == "d"
    dag.add_task("e", ["d"])
    assert dag.topological_sort()[-1] == "e"


def test_cycle_message_shows_the_full_path() -> None:
    dag = WorkflowDAG([{"name": "a", "dependencies": ["c"]}, {"name": "b", "dependencies": ["a"]},
                       {"name": "c", "dependencies": ["b"]}])
    with pytest.raises(CycleDetectedError) as info:
        dag.validate()
    assert str(info.value) == "dependency cycle: a -> b -> c -> a"
    assert info.value.cycle == ["a", "b", "c", "a"]
    assert isinstance(info.value, DAGValidationError)
    with pytest.raises(CycleDetectedError):
        dag.topological_sort()


def test_validate_reports_missing_duplicate_and_self_dependencies_together() -> None:
    dag = WorkflowDAG()
    dag.add_task("build", ["build"])
    dag.add_task("test", ["biuld"])
    dag.add_task("test")
    with pytest.raises(DAGValidationError) as info:
        dag.validate()
    problems = info.value.details["problems"]
    assert "step 'build' depends on itself" in problems
    assert "step 'test' depends on unknown step 'biuld'; did you mean 'build'?" in problems
    assert "step name 'test' is used more than once" in problems
    assert not isinstance(info.value, CycleDetectedError)


def test_critical_path_uses_estimate_then_timeout() -> None:
    assert diamond().critical_path() == (["a", "b", "d"], 5.0)
    dag = WorkflowDAG([DAGTask("x", timeout=2.0), DAGTask("y", ["x"], timeout=3.0), DAGTask("z", ["x"], estimate=4.0)])
    assert dag.critical_path() == (["x", "z"], 6.0)
    assert WorkflowDAG().critical_path() == ([], 0.0)


def test_upstream_downstream_and_from_step() -> None:
    dag = diamond()
    assert dag.upstream("d") == {"a", "b", "c"}
    assert dag.downstream("b") == {"d"}
    assert dag.downstream("a") == {"b", "c", "d"}
    sub = dag.from_step("b")
    assert sub.topological_sort() == ["b", "d"]
    assert sub.tasks["d"].dependencies == ["b"]
    with pytest.raises(DAGValidationError, match="did you mean 'b'"):
        dag.upstream("bb")
    assert dag.roots() == ["a"] and dag.leaves() == ["d"]


def test_from_workflow_keeps_the_step_as_payload() -> None:
    wf = Workflow("w", steps=[WorkflowStep("one", timeout=3.0), WorkflowStep("two", dependencies=["one"])])
    dag = WorkflowDAG.from_workflow(wf)
    assert dag.tasks["one"].payload is wf.steps[0]
    assert dag.critical_path() == (["one", "two"], 3.0)


# ------------------------------------------------------------------ Mermaid / DOT

_NODE = re.compile(r'^    (n\d+)\["([^"\[\]]*)"\]$')
_EDGE = re.compile(r"^    (n\d+) --> (n\d+)$")


def check_mermaid(text: str, dag: WorkflowDAG) -> dict[str, str]:
    """Parse the flowchart back; return {id: label}; fail on anything malformed."""
    lines = text.rstrip("\n").split("\n")
    assert lines[0] == "flowchart TD"
    declared: dict[str, str] = {}
    edges = []
    for line in lines[1:]:
        if m := _NODE.match(line):
            assert m.group(1) not in declared, "node declared twice"
            declared[m.group(1)] = m.group(2)
        elif m := _EDGE.match(line):
            edges.append((m.group(1), m.group(2)))
        else:
            assert re.match(r"^    (classDef \w+ \S.*|class n\d+(,n\d+)* \w+)$", line), line
    assert len(declared) == len(dag)
    for u, v in edges:
        assert u in declared and v in declared
    assert len(edges) == dag.graph.number_of_edges()
    for label in declared.values():
        assert not set(label) & set('"[]|<>{}') and label.isascii()
    return declared


def unescape(label: str) -> str:
    named = {"quot": '"', "lt": "<", "gt": ">", "amp": "&"}
    return re.sub(r"#(\w+);", lambda m: named.get(m.group(1)) or chr(int(m.group(1))), label)


def test_mermaid_escapes_awkward_names() -> None:
    names = ['say "hi"', "a[1]", "x|y", "crème brûlée", "日本語", "with space", "#hash;", "end", "a{b}", "<tag>"]
    dag = WorkflowDAG()
    previous: list[str] = []
    for name in names:
        dag.add_task(name, previous[-1:])
        previous.append(name)
    labels = check_mermaid(dag.to_mermaid(), dag)
    assert [unescape(labels[f"n{i}"]) for i in range(len(names))] == names
    assert mermaid_label('a"b') == "a#quot;b"


def test_mermaid_status_classes() -> None:
    dag = diamond()
    text = dag.to_mermaid({"a": TaskStatus.COMPLETED, "b": "running", "c": "RUNNING"})
    check_mermaid(text, dag)
    for status in TaskStatus:
        assert f"    classDef {status.value} " in text
    assert "    class n0 completed" in text
    assert "    class n1,n2 running" in text
    with pytest.raises(DAGValidationError, match="unknown status"):
        dag.to_mermaid({"a": "exploded"})
    with pytest.raises(DAGValidationError, match="no step named"):
        dag.to_mermaid({"zz": "running"})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=15, unique=True))
def test_mermaid_is_well_formed_for_any_names(names: list[str]) -> None:
    dag = WorkflowDAG()
    for i, name in enumerate(names):
        dag.add_task(name, names[max(0, i - 2):i])
    labels = check_mermaid(dag.to_mermaid({names[0]: "failed"}), dag)
    assert sorted(unescape(v) for v in labels.values()) == sorted(names)


def test_dot_output_quotes_labels() -> None:
    dag = WorkflowDAG([{"name": 'q"uote'}, {"name": "b", "dependencies": ['q"uote']}])
    text = dag.to_dot({"b": "failed"})
    assert text.startswith('digraph "workflow" {')
    assert 'n0 [label="q\\"uote"];' in text
    assert "n0 -> n1;" in text and 'fillcolor="#ffebee"' in text


# ------------------------------------------------------------- property tests


@st.composite
def random_dags(draw: st.DrawFn) -> tuple[list[str], list[tuple[str, str]]]:
    n = draw(st.integers(min_value=1, max_value=40))
    names = [f"t{i}" for i in draw(st.permutations(range(n)))]
    edges = set()
    for j in range(1, n):
        for i in draw(st.lists(st.integers(min_value=0, max_value=j - 1), max_size=4)):
            edges.add((names[i], names[j]))  # always from earlier to later: acyclic
    return names, sorted(edges)


@settings(max_examples=75, deadline=None)
@given(random_dags())
def test_order_respects_edges_and_levels_partition(dag_data: tuple[list[str], list[tuple[str, str]]]) -> None:
    names, edges = dag_data
    dag = WorkflowDAG.from_edges(names, edges)
    dag.validate()
    order = dag.topological_sort()
    position = {name: i for i, name in enumerate(order)}
    assert sorted(order) == sorted(names)
    assert all(position[u] < position[v] for u, v in edges)
    levels = dag.get_execution_levels()
    flat = [name for level in levels for name in level]
    assert sorted(flat) == sorted(names) and len(flat) == len(set(flat))
    level_of = {name: i for i, level in enumerate(levels) for name in level}
    assert all(level_of[u] < level_of[v] for u, v in edges)
    path, _ = dag.critical_path()
    assert all((a, b) in set(edges) for a, b in zip(path, path[1:]))


@settings(max_examples=75, deadline=None)
@given(random_dags(), st.data())
def test_an_injected_cycle_is_detected_and_real(dag_data: tuple[list[str], list[tuple[str, str]]], data: st.DataObject) -> None:
    names, edges = dag_data
    if len(names) < 2:
        names = names + ["extra"]
    # A back edge along a chain of the existing graph (or a fresh two-node chain) closes a cycle.
    chain_start, chain_end = data.draw(st.sampled_from([(u, v) for u, v in edges] or [(names[0], names[1])]))
    edges = list(edges) + [(chain_start, chain_end), (chain_end, chain_start)]
    dag = WorkflowDAG.from_edges(names, edges)
    with pytest.raises(CycleDetectedError) as info:
        dag.validate()
    cycle = info.value.cycle
    assert cycle[0] == cycle[-1] and len(cycle) >= 3
    assert len(set(cycle[:-1])) == len(cycle) - 1
    edge_set = set(edges)
    assert all((a, b) in edge_set for a, b in zip(cycle, cycle[1:]))
    assert " -> ".join(cycle) in str(info.value)
