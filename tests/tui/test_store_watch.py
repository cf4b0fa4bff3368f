"""The dashboard's store watcher: what it reads, and what the UI thread may ask without reading."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.models import Workflow, WorkflowStep
from core.store import Store
from orchtui.store_watch import StoreWatcher


def chain(name: str, steps: int) -> Workflow:
    names = [f"s{i}" for i in range(steps)]
    return Workflow(name=name, steps=[WorkflowStep(name=n, dependencies=names[i - 1:i]) for i, n in enumerate(names)])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "state" / "orchtui.db") as opened:
        yield opened


def test_a_definition_is_unknown_until_a_poll_focused_on_its_run(store: Store) -> None:
    store.create_run("run-1", chain("wf", 3), {})
    store.flush()
    watcher = StoreWatcher(store)
    assert watcher.known_definition("run-1") is None  # asking reads nothing
    watcher.poll("run-1")
    assert watcher.known_definition("run-1") == chain("wf", 3)


def test_runs_of_an_unchanged_workflow_share_one_definition_object(store: Store) -> None:
    for run_id in ("run-1", "run-2"):
        store.create_run(run_id, chain("wf", 3), {})  # equal workflows, built apart
    store.flush()
    watcher = StoreWatcher(store)
    watcher.poll("run-1")
    watcher.poll("run-2")
    assert watcher.known_definition("run-2") is watcher.known_definition("run-1")


def test_a_changed_workflow_gets_its_own_definition(store: Store) -> None:
    store.create_run("run-1", chain("wf", 3), {})
    store.create_run("run-2", chain("wf", 4), {})
    store.flush()
    watcher = StoreWatcher(store)
    watcher.poll("run-1")
    watcher.poll("run-2")
    first, second = watcher.known_definition("run-1"), watcher.known_definition("run-2")
    assert first is not None and second is not None
    assert len(first.steps) == 3 and len(second.steps) == 4
