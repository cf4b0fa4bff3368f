"""The dashboard's store watcher: what it reads, and what the UI thread may ask without reading."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import StoreError
from core.models import Workflow, WorkflowStatus, WorkflowStep
from core.snapshot import RunView
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


# ------------------------------------------------------- runs whose process died


def set_owner(store: Store, run_id: str, pid: int, started: float, host: str | None) -> None:
    """Record ``pid`` as the owner of ``run_id`` behind the store's back, as a process that
    later died would have recorded itself."""
    conn = sqlite3.connect(store.db_path)
    with conn:
        conn.execute("UPDATE runs SET owner_pid = ?, owner_started = ?, host = ? WHERE id = ?",
                     (pid, started, host, run_id))
    conn.close()


def eager_watcher(store: Store) -> StoreWatcher:
    """A watcher that reads at every poll (however long reads take) and checks owners each time."""
    return StoreWatcher(store, min_interval=0.0, budget=float("inf"), owner_check=0.0)


def watch_until_recovery_ends(watcher: StoreWatcher, run_id: str) -> RunView:
    """Poll (a recovery may start), let any recovery finish, poll again; return the run."""
    watcher.poll(None)
    assert watcher.wait_for_recovery(timeout=30)
    watcher.poll(None)
    (view,) = [v for v in watcher.runs if v.run_id == run_id]
    return view


def test_a_listed_run_whose_process_died_becomes_interrupted(store: Store, dead_owner: tuple[int, float]) -> None:
    store.create_run("run-1", chain("wf", 3), {})
    store.flush()
    set_owner(store, "run-1", *dead_owner, host=None)
    watcher = eager_watcher(store)
    view = watch_until_recovery_ends(watcher, "run-1")
    assert view.status is WorkflowStatus.INTERRUPTED
    assert f"pid {dead_owner[0]}" in view.error


def test_a_run_whose_process_lives_is_left_running(store: Store) -> None:
    store.create_run("run-1", chain("wf", 3), {})  # owned by this process
    store.flush()
    watcher = eager_watcher(store)
    assert watch_until_recovery_ends(watcher, "run-1").status is WorkflowStatus.RUNNING


def test_a_run_of_another_host_is_never_judged(store: Store, dead_owner: tuple[int, float]) -> None:
    store.create_run("run-1", chain("wf", 3), {})
    store.flush()
    set_owner(store, "run-1", *dead_owner, host="another-machine")  # its pid means nothing here
    watcher = eager_watcher(store)
    assert watch_until_recovery_ends(watcher, "run-1").status is WorkflowStatus.RUNNING


def test_a_recovery_that_cannot_write_is_reported_and_tried_again(store: Store, dead_owner: tuple[int, float]) -> None:
    store.create_run("run-1", chain("wf", 3), {})
    store.flush()
    set_owner(store, "run-1", *dead_owner, host=None)
    other_process = sqlite3.connect(store.db_path, isolation_level=None)
    other_process.execute("BEGIN IMMEDIATE")  # holds the write lock, as a busy writer elsewhere would
    watcher = StoreWatcher(store, min_interval=0.0, budget=float("inf"), owner_check=0.0, recovery_timeout=0.5)
    try:
        assert watch_until_recovery_ends(watcher, "run-1").status is WorkflowStatus.RUNNING
        errors = watcher.take_recovery_errors()
        assert errors and all("could not be written within 0.5 s" in error for error in errors)
    finally:
        other_process.rollback()
        other_process.close()
    deadline = time.monotonic() + 60
    view = watch_until_recovery_ends(watcher, "run-1")
    while view.status is WorkflowStatus.RUNNING and time.monotonic() < deadline:  # the writer's own retry may come first
        view = watch_until_recovery_ends(watcher, "run-1")
    assert view.status is WorkflowStatus.INTERRUPTED


def test_runs_a_prune_deleted_leave_the_list(tmp_path: Path, store: Store) -> None:
    for run_id in ("run-old", "run-new"):
        store.create_run(run_id, chain("wf", 1), {})
        store.finish_run(run_id, "completed")
    store.flush()
    now = [0.0]
    watcher = StoreWatcher(store, min_interval=0.0, clock=lambda: now[0])
    watcher.poll(None)
    assert {v.run_id for v in watcher.runs} == {"run-old", "run-new"}
    with Store(store.db_path) as other:  # another process prunes
        time.sleep(0.01)
        assert other.prune(0) == 2
    now[0] += watcher.presence_check
    watcher.poll(None)
    assert watcher.runs == ()


def test_a_store_file_deleted_under_the_watcher_is_an_error_not_silence(tmp_path: Path, store: Store) -> None:
    now = [0.0]
    watcher = StoreWatcher(store, min_interval=0.0, clock=lambda: now[0])
    watcher.poll(None)
    store.db_path.unlink()
    now[0] += 1.0
    with pytest.raises(StoreError, match="was deleted while this process had it open"):
        watcher.poll(None)
