"""The SQLite run store (core/store.py, core/store_schema.py, core/store_writer.py).

Real SQLite files under tmp_path, real subprocesses for other processes.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.clock import ManualClock
from core.config import load_settings
from core.errors import StoreError
from core.models import (
    OrchestrationSession,
    Project,
    ProjectStatus,
    ResourceAllocation,
    TaskResult,
    TaskStatus,
    TaskTransition,
    Workflow,
    WorkflowStatus,
    WorkflowStep,
)
from core.logs import claim_log_dir
from core.store import Store
from core.process_tree import process_alive
from core.store_recovery import HEARTBEAT_INTERVAL, interrupted_at
from core.store_schema import CURRENT_VERSION, MIGRATIONS, SCHEMA_V1

REPO = Path(__file__).resolve().parent.parent


def make_workflow(name: str = "wf", steps: int = 3) -> Workflow:
    names = [f"s{i}" for i in range(steps)]
    return Workflow(
        name=name,
        steps=[WorkflowStep(name=n, dependencies=names[i - 1:i]) for i, n in enumerate(names)],
    )


def transition(run_id: str, step: str, status: TaskStatus, attempt: int = 1, **kw: object) -> TaskTransition:
    return TaskTransition(task_id=f"{run_id}:{step}", name=step, status=status, at=time.time(),
                          run_id=run_id, attempt=attempt, **kw)  # type: ignore[arg-type]


def complete(store: Store, run_id: str, step: str, output: object, attempt: int = 1) -> None:
    store.record_transition(transition(run_id, step, TaskStatus.RUNNING, attempt, log_path=f"/logs/{step}.log"))
    store.record_transition(transition(run_id, step, TaskStatus.COMPLETED, attempt,
                                       result=TaskResult(success=True, data=output, exit_code=0)))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "state" / "orchtui.db") as opened:
        yield opened


def test_falsy_outputs_are_stored_as_themselves_and_no_output_as_none(store: Store) -> None:
    store.create_run("r", make_workflow(steps=5))
    for step, output in zip(("s0", "s1", "s2", "s3"), (0, "", False, []), strict=True):
        complete(store, "r", step, output)
    complete(store, "r", "s4", None)
    store.flush()
    assert store.committed_outputs("r") == {"s0": 0, "s1": "", "s2": False, "s3": [], "s4": None}
    run = store.get_run("r")
    assert run is not None and run.steps["s4"].output is None and run.steps["s4"].exit_code == 0


def test_a_flush_with_nothing_written_commits_nothing_and_changes_no_version(store: Store) -> None:
    store.create_run("r", make_workflow())
    complete(store, "r", "s0", 1)
    store.flush()
    commits, version = store.commit_count, store.version()
    store.flush()
    store.flush()
    assert (store.commit_count, store.version()) == (commits, version)


def test_open_uses_the_settings_state_dir(isolated_state: Path) -> None:
    with Store.open() as opened:
        assert opened.db_path == load_settings().db_path == isolated_state / "orchtui.db"
        assert opened.runs_dir == isolated_state / "runs"
    conn = sqlite3.connect(isolated_state / "orchtui.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == CURRENT_VERSION


def test_run_round_trip_with_steps_in_workflow_order(store: Store) -> None:
    wf = make_workflow(steps=3)
    wf.steps.reverse()  # order of the definition, not alphabetical
    store.create_run("run-1", wf, {"n": 1, "path": Path("/x")}, session_id="session-1")
    complete(store, "run-1", "s2", {"rows": [1, 2]})
    store.flush()
    run = store.get_run("run-1")
    assert run is not None
    assert run.status is WorkflowStatus.RUNNING and run.session_id == "session-1"
    assert run.params == {"n": 1, "path": "/x"}  # non-JSON values are stored as text
    assert list(run.steps) == ["s2", "s1", "s0"]
    assert run.steps["s2"].status is TaskStatus.COMPLETED and run.steps["s2"].output == {"rows": [1, 2]}
    assert run.steps["s2"].log_path == "/logs/s2.log" and run.steps["s2"].exit_code == 0
    assert run.steps["s1"].status is TaskStatus.PENDING and run.steps["s1"].attempts == []
    assert run.definition == wf
    assert run.owner_pid == os.getpid()
    assert store.get_run("nope") is None


def test_retries_are_separate_attempts(store: Store) -> None:
    store.create_run("run-1", make_workflow(steps=1))
    store.record_transition(transition("run-1", "s0", TaskStatus.READY, 0))
    store.record_transition(transition("run-1", "s0", TaskStatus.RUNNING, 1))
    failed = TaskResult(success=False, error_message="exit 3", exit_code=3)
    store.record_transition(transition("run-1", "s0", TaskStatus.PENDING, 1, result=failed, retry_at=time.time() + 1))
    complete(store, "run-1", "s0", "ok", attempt=2)
    store.flush()
    attempts = store.get_attempts("run-1", "s0")
    assert [(a.attempt, a.status, a.exit_code, a.error) for a in attempts] == [
        (1, TaskStatus.FAILED, 3, "exit 3"),
        (2, TaskStatus.COMPLETED, 0, ""),
    ]
    step = store.get_run("run-1").steps["s0"]  # type: ignore[union-attr]
    assert (step.status, step.attempt, step.error, step.output) == (TaskStatus.COMPLETED, 2, "", "ok")


def test_a_log_where_the_dispatcher_puts_it_is_stored_empty_and_read_back_whole(store: Store) -> None:
    store.create_run("run-1", make_workflow(steps=1))
    first = str(store.runs_dir / "run-1" / "s0.1.log")
    second = str(store.runs_dir / "run-1" / "s0.2.log")
    store.record_transition(transition("run-1", "s0", TaskStatus.RUNNING, 1, log_path=first))
    failed = TaskResult(success=False, error_message="exit 3", exit_code=3)
    store.record_transition(transition("run-1", "s0", TaskStatus.PENDING, 1, result=failed, log_path=first))
    store.flush()  # the retry's attempt row is written apart from the step row
    store.record_transition(transition("run-1", "s0", TaskStatus.RUNNING, 2, log_path=second))
    store.flush()
    with sqlite3.connect(store.db_path) as conn:
        stored = conn.execute("SELECT log_path FROM steps UNION ALL SELECT log_path FROM attempts").fetchall()
    assert stored == [("",), ("",)]
    assert [a.log_path for a in store.get_attempts("run-1", "s0")] == [first, second]


@pytest.mark.parametrize("where", ["/elsewhere/run-1/s0.1.log", "{runs}/run-2/s0.1.log", "{runs}/run-1/s0.2.log",
                                   "{runs}/run-1/sub/s0.1.log"])
def test_a_log_anywhere_else_is_stored_whole(store: Store, where: str) -> None:
    path = where.format(runs=store.runs_dir)
    store.create_run("run-1", make_workflow(steps=1))
    store.record_transition(transition("run-1", "s0", TaskStatus.RUNNING, 1, log_path=path))
    store.flush()
    with sqlite3.connect(store.db_path) as conn:
        assert conn.execute("SELECT log_path FROM steps").fetchall() == [(path,)]
    assert store.get_attempts("run-1", "s0")[0].log_path == path


def test_an_attempt_without_a_log_has_none(store: Store) -> None:
    store.create_run("run-1", make_workflow(steps=1))
    store.record_transition(transition("run-1", "s0", TaskStatus.RUNNING, 1))
    store.flush()
    assert store.get_attempts("run-1", "s0")[0].log_path is None


def test_a_runs_directory_with_quotes_and_braces_in_its_name_still_gets_its_logs_stored_empty(tmp_path: Path) -> None:
    runs = tmp_path / "it's {odd}" / "runs"
    with Store(tmp_path / "state" / "orchtui.db", runs_dir=runs) as odd:
        odd.create_run("run-1", make_workflow(steps=1))
        path = str(runs / "run-1" / "s0.1.log")
        odd.record_transition(transition("run-1", "s0", TaskStatus.RUNNING, 1, log_path=path))
        odd.flush()
        with sqlite3.connect(odd.db_path) as conn:
            assert conn.execute("SELECT log_path FROM steps").fetchall() == [("",)]
        assert odd.get_attempts("run-1", "s0")[0].log_path == path


def test_get_run_without_attempts_still_has_every_step_state(store: Store) -> None:
    store.create_run("run-1", make_workflow())
    complete(store, "run-1", "s0", "out")
    store.flush()
    full, light = store.get_run("run-1"), store.get_run("run-1", with_attempts=False)
    assert full is not None and light is not None
    assert [len(s.attempts) for s in full.steps.values()] == [1, 0, 0]
    assert [len(s.attempts) for s in light.steps.values()] == [0, 0, 0]
    assert light.to_view() == full.to_view() and light.definition == full.definition


def test_committed_outputs_only_hold_completed_steps(store: Store) -> None:
    store.create_run("run-1", make_workflow(steps=3))
    complete(store, "run-1", "s0", {"a": 1})
    store.record_transition(transition("run-1", "s1", TaskStatus.RUNNING))
    store.record_transition(transition("run-1", "s1", TaskStatus.FAILED,
                                       result=TaskResult(success=False, data="partial", error_message="no")))
    store.record_transition(transition("run-1", "s2", TaskStatus.SKIPPED, 0))
    store.finish_run("run-1", WorkflowStatus.FAILED, "s1 failed")
    store.flush()
    assert store.committed_outputs("run-1") == {"s0": {"a": 1}}
    run = store.get_run("run-1")
    assert run is not None and run.status is WorkflowStatus.FAILED and run.error == "s1 failed"
    assert run.finished_at is not None and run.duration() is not None


def test_list_runs_filters_and_orders_newest_first(tmp_path: Path) -> None:
    clock = ManualClock()
    with Store(tmp_path / "o.db", clock=clock) as store:
        for i, (name, status) in enumerate([("a", "completed"), ("b", "failed"), ("a", "failed"), ("a", "running")]):
            store.create_run(f"run-{i}", make_workflow(name), status=WorkflowStatus.RUNNING)
            if status != "running":
                store.finish_run(f"run-{i}", status)
            store.flush()
            clock.advance(10)
        assert [r.run_id for r in store.list_runs()] == ["run-3", "run-2", "run-1", "run-0"]
        assert [r.run_id for r in store.list_runs(workflow="a")] == ["run-3", "run-2", "run-0"]
        assert [r.run_id for r in store.list_runs(status="failed")] == ["run-2", "run-1"]
        assert [r.run_id for r in store.list_runs(workflow="a", status=WorkflowStatus.FAILED)] == ["run-2"]
        assert [r.run_id for r in store.list_runs(limit=1)] == ["run-3"]
        assert [r.run_id for r in store.list_runs(since=clock.time() - 25)] == ["run-3", "run-2"]
        assert store.list_runs()[0].steps == {}
        assert list(store.list_runs(with_steps=True)[0].steps) == ["s0", "s1", "s2"]


def test_changes_since_reports_only_changed_runs(store: Store) -> None:
    start, views = store.changes_since(0)
    assert views == []
    store.create_run("run-a", make_workflow("a"))
    store.create_run("run-b", make_workflow("b"))
    store.flush()
    v1, views = store.changes_since(start)
    assert v1 > start and sorted(v.run_id for v in views) == ["run-a", "run-b"]
    complete(store, "run-b", "s0", 1)
    store.flush()
    v2, views = store.changes_since(v1)
    assert v2 > v1 and [v.run_id for v in views] == ["run-b"]
    assert views[0].step_status["s0"] is TaskStatus.COMPLETED and "s0" in views[0].step_started_at
    assert store.changes_since(v2) == (v2, [])
    assert [v.run_id for v in store.run_views(limit=1)] == ["run-b"]


def test_changes_since_lists_steps_only_of_the_runs_asked_for(store: Store) -> None:
    start = store.version()
    store.create_run("run-a", make_workflow("a"))
    store.create_run("run-b", make_workflow("b"))
    complete(store, "run-a", "s0", 1)
    complete(store, "run-b", "s0", 1)
    store.flush()
    _, views = store.changes_since(start, steps_of=["run-b"])
    by_id = {v.run_id: v for v in views}
    assert sorted(by_id) == ["run-a", "run-b"]
    assert by_id["run-b"].step_status["s0"] is TaskStatus.COMPLETED
    assert by_id["run-a"].step_status == {}


def test_a_run_view_shows_each_step_as_the_full_record_does(store: Store) -> None:
    store.create_run("r", make_workflow(steps=4))
    complete(store, "r", "s1", 1)
    store.record_transition(transition("r", "s2", TaskStatus.RUNNING))
    store.flush()
    view = store.get_run_view("r")
    record = store.get_run("r")
    assert view is not None and record is not None
    assert view == record.to_view()
    assert list(view.step_status) == ["s0", "s1", "s2", "s3"]  # workflow order, unstarted ones pending
    assert view.step_status["s0"] is TaskStatus.PENDING and view.step_status["s2"] is TaskStatus.RUNNING
    assert set(view.step_started_at) == {"s1", "s2"}


def test_a_run_view_of_an_unknown_run_is_none(store: Store) -> None:
    assert store.get_run_view("nope") is None


def test_a_steps_attempt_is_the_newest_one_recorded(store: Store) -> None:
    store.create_run("r", make_workflow(steps=3))
    complete(store, "r", "s1", 1, attempt=3)
    store.flush()
    assert store.step_attempt("r", "s1") == 3
    assert store.step_attempt("r", "s0") == 0  # not started: no row yet
    assert store.step_attempt("nope", "s1") == 0


def test_the_definition_text_reads_back_as_the_workflow(store: Store) -> None:
    store.create_run("r", make_workflow(steps=3))
    store.flush()
    text = store.definition_text("r")
    assert text is not None and Workflow.from_dict(json.loads(text)) == make_workflow(steps=3)
    assert store.definition_text("nope") is None


def test_another_process_sees_the_changes(store: Store) -> None:
    version = store.version()
    script = (
        "import sys; from pathlib import Path; from core.store import Store; from core.models import Workflow, WorkflowStep\n"
        "with Store(Path(sys.argv[1])) as s:\n"
        "    s.create_run('run-other', Workflow(name='other', steps=[WorkflowStep(name='x')]))\n"
    )
    subprocess.run([sys.executable, "-c", script, str(store.db_path)], check=True, cwd=REPO, timeout=60)
    new_version, views = store.changes_since(version)
    assert new_version > version and [v.run_id for v in views] == ["run-other"]
    assert views[0].owner_pid != os.getpid()


def test_resolve_run_id_by_unique_prefix(store: Store) -> None:
    for run_id in ("run-abc1", "run-abc2", "run-xyz", "run_x"):
        store.create_run(run_id, make_workflow())
    store.flush()
    assert store.resolve_run_id("run-x") == "run-xyz"
    assert store.resolve_run_id("run-abc1") == "run-abc1"
    with pytest.raises(StoreError, match=r"ambiguous \(run-abc"):
        store.resolve_run_id("run-abc")
    with pytest.raises(StoreError, match="no run matches 'zzz'"):
        store.resolve_run_id("zzz")
    # '_' is not a LIKE wildcard here.
    assert store.resolve_run_id("run_") == "run_x"


def test_claim_run_creates_the_run_before_it_returns(store: Store) -> None:
    store.claim_run("run-claimed", make_workflow(), {"who": "me"})
    run = store.get_run("run-claimed")  # no flush: the claim waited for its commit
    assert run is not None and run.status is WorkflowStatus.RUNNING and run.params == {"who": "me"}
    assert run.owner_pid == os.getpid()


def test_claim_run_refuses_a_taken_id_and_leaves_that_run_intact(store: Store) -> None:
    store.create_run("run-taken", make_workflow("first"), {"n": 1})
    store.flush()
    with pytest.raises(StoreError, match="'run-taken' is taken by a stored run") as caught:
        store.claim_run("run-taken", make_workflow("second"), {"n": 2})
    assert caught.value.error_code == "RUN_ID_TAKEN"
    run = store.get_run("run-taken")
    assert run is not None and run.workflow == "first" and run.params == {"n": 1}
    store.flush()  # raises a kept failure: a refused claim is its caller's error alone, never a failed write for later


def test_a_claim_that_times_out_on_a_held_lock_is_never_written(store: Store) -> None:
    holder = sqlite3.connect(store.db_path, isolation_level=None, timeout=0)
    holder.execute("BEGIN IMMEDIATE")  # another process writing, for longer than the claim waits
    try:
        with pytest.raises(StoreError, match="nothing was written"):
            store.claim_run("run-late", make_workflow(), timeout=0.3)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    store.flush()  # the writer got the lock: had the claim stayed queued, it would land now
    assert store.get_run("run-late") is None
    store.claim_run("run-late", make_workflow())  # the id is still free
    assert store.get_run("run-late") is not None


def test_claim_run_refuses_a_second_resume_of_one_run(store: Store) -> None:
    store.create_run("run-parent", make_workflow())
    store.finish_run("run-parent", WorkflowStatus.FAILED, "boom")
    store.claim_run("run-child1", make_workflow(), parent_run_id="run-parent", preset_outputs={"s0": 1})
    with pytest.raises(StoreError, match="already resumed as run-child1") as caught:
        store.claim_run("run-child2", make_workflow(), parent_run_id="run-parent", preset_outputs={"s0": 1})
    assert caught.value.error_code == "RUN_ALREADY_RESUMED"
    assert store.get_run("run-child2") is None and store.resumed_by("run-parent") == ["run-child1"]


@pytest.mark.parametrize("parent", [None, "run-parent"], ids=["same id", "same parent"])
def test_of_many_stores_claiming_at_once_exactly_one_wins(tmp_path: Path, parent: str | None) -> None:
    """Each Store is its own connection and writer thread, as separate processes would be."""
    path = tmp_path / "o.db"
    with Store(path) as first:
        first.create_run("run-parent", make_workflow())
        first.finish_run("run-parent", WorkflowStatus.FAILED, "boom")
    stores = [Store(path) for _ in range(8)]
    start = threading.Barrier(len(stores))
    outcomes: list[str] = []
    lock = threading.Lock()

    def claim(index: int, store: Store) -> None:
        start.wait()
        run_id = "run-contested" if parent is None else f"run-child{index}"
        try:
            store.claim_run(run_id, make_workflow(f"wf{index}"), parent_run_id=parent)
            outcome = "won"
        except StoreError as exc:
            outcome = exc.error_code
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=claim, args=(i, s)) for i, s in enumerate(stores)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        for s in stores:
            s.close()
    refusal = "RUN_ID_TAKEN" if parent is None else "RUN_ALREADY_RESUMED"
    assert sorted(outcomes) == sorted(["won"] + [refusal] * (len(stores) - 1))
    with Store(path) as check:
        assert len(check.resumed_by("run-parent")) == (0 if parent is None else 1)


def test_claim_run_refuses_an_id_a_run_not_recorded_claimed(store: Store) -> None:
    claim_log_dir(store.runs_dir, "run-loose")  # as `orchtui run --no-record --run-id run-loose` does
    with pytest.raises(StoreError, match="another run claimed it") as caught:
        store.claim_run("run-loose", make_workflow())
    assert caught.value.error_code == "RUN_ID_TAKEN"
    assert store.get_run("run-loose") is None


def test_a_claim_that_could_not_be_written_gives_its_id_back(tmp_path: Path) -> None:
    big = Workflow(name="big", steps=[WorkflowStep(name=f"step_{i}", description="x" * 200) for i in range(2000)])
    with Store(tmp_path / "o.db", max_db_bytes=256 * 1024) as store:
        with pytest.raises(StoreError, match="full"):
            store.claim_run("run-chosen", big)
        assert store.get_run("run-chosen") is None
        store.claim_run("run-chosen", make_workflow())  # the id was given back
    with Store(tmp_path / "o.db") as store:
        assert store.get_run("run-chosen").workflow == "wf"  # type: ignore[union-attr]


def test_prune_deletes_old_finished_runs_and_their_logs(tmp_path: Path) -> None:
    clock = ManualClock()
    with Store(tmp_path / "o.db", clock=clock) as store:
        store.create_run("run-old", make_workflow())
        complete(store, "run-old", "s0", 1)
        store.finish_run("run-old", "completed")
        store.create_run("run-live", make_workflow())
        store.flush()
        log_dir = store.log_dir("run-old")
        log_dir.mkdir(parents=True)
        (log_dir / "s0.1.log").write_text("hello\n")
        clock.advance(3600)
        store.create_run("run-new", make_workflow())
        store.finish_run("run-new", "failed")
        store.flush()
        assert store.prune(1800) == 1
        assert sorted(r.run_id for r in store.list_runs()) == ["run-live", "run-new"]
        assert not log_dir.exists()
        assert store.get_attempts("run-old") == []
        with sqlite3.connect(store.db_path) as conn:  # no table keeps anything of it
            for table in ("run_definitions", "steps", "attempts", "transitions"):
                assert conn.execute(f"SELECT COUNT(*) FROM {table} WHERE run_id = 'run-old'").fetchone() == (0,)
        clock.advance(1)
        assert store.prune(0) == 1  # run-live is still running: never pruned
        assert [r.run_id for r in store.list_runs()] == ["run-live"]


def test_a_bad_write_loses_only_itself(tmp_path: Path) -> None:
    # A long delay puts all four writes in one group; the duplicate makes the group's
    # transaction fail, and only that write may be lost.
    with Store(tmp_path / "o.db", group_commit_delay=30.0) as store:
        store.create_run("run-1", make_workflow())
        store.flush()
        commits = store.commit_count
        store.create_run("run-2", make_workflow())
        store.create_run("run-1", make_workflow("duplicate"))
        complete(store, "run-1", "s0", "kept")
        with pytest.raises(StoreError, match="run-1.*UNIQUE") as info:
            store.flush()
        assert "\n" not in str(info.value)
        assert store.commit_count == commits + 1
        assert store.get_run("run-1").workflow == "wf"  # type: ignore[union-attr]
        assert store.get_run("run-2") is not None
        assert store.committed_outputs("run-1") == {"s0": "kept"}
        store.flush()  # the failure was reported once


def test_a_write_that_cannot_become_rows_loses_only_itself(tmp_path: Path) -> None:
    circular: dict[str, object] = {}
    circular["self"] = circular
    with Store(tmp_path / "o.db", group_commit_delay=30.0) as store:
        store.create_run("run-1", make_workflow())
        store.flush()
        complete(store, "run-1", "s0", "kept")  # waits in the same group as the bad run
        store.create_run("run-2", make_workflow(), params=circular)
        with pytest.raises(StoreError, match="run-2") as info:
            store.flush()
        assert "\n" not in str(info.value)
        assert store.get_run("run-2") is None
        assert store.committed_outputs("run-1") == {"s0": "kept"}


def test_full_database_is_one_clear_error_and_keeps_committed_rows(tmp_path: Path) -> None:
    with Store(tmp_path / "o.db", max_db_bytes=256 * 1024) as store:
        store.create_run("run-1", make_workflow())
        complete(store, "run-1", "s0", "safe")
        store.flush()
        huge = Workflow(name="huge", steps=[WorkflowStep(name=f"step-{i:05d}" + "x" * 200) for i in range(3000)])
        store.create_run("run-2", huge)
        with pytest.raises(StoreError, match="full") as info:
            store.flush()
        assert info.value.error_code == "STORE_FULL" and "\n" not in info.value.message
        assert store.get_run("run-2") is None
        assert store.committed_outputs("run-1") == {"s0": "safe"}
        store.finish_run("run-1", "completed")  # small writes still fit
        store.flush()
    conn = sqlite3.connect(tmp_path / "o.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_require_writable_passes_when_a_write_commits(store: Store) -> None:
    version = store.version()
    store.require_writable()
    assert store.version() == version + 1  # an empty group, committed


def test_integrity_problem_is_none_for_a_sound_store(store: Store) -> None:
    store.create_run("run-1", make_workflow())
    store.flush()
    assert store.integrity_problem() is None


def test_group_commit_batches_many_writes_into_one_transaction(tmp_path: Path) -> None:
    with Store(tmp_path / "o.db", group_commit_delay=30.0) as store:
        store.create_run("run-1", make_workflow(steps=50))
        store.flush()
        before = store.commit_count
        for i in range(50):
            complete(store, "run-1", f"s{i}", i)
        assert store.flush()
        assert store.commit_count == before + 1
        assert len(store.committed_outputs("run-1")) == 50


def test_an_idle_writer_checkpoints_the_wal_into_the_database(store: Store) -> None:
    # Commits only append to the WAL (SQLite's own checkpoint inside a commit is off);
    # once the writer has been idle for a moment it copies them into the database file.
    store.create_run("run-1", make_workflow(steps=400))
    for i in range(400):
        complete(store, "run-1", f"s{i}", "x" * 200)
    store.flush()
    deadline = time.monotonic() + 10
    while store.db_path.stat().st_size < 400 * 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.db_path.stat().st_size >= 400 * 200  # the outputs alone take that much
    assert len(store.committed_outputs("run-1")) == 400


def test_an_output_json_cannot_hold_is_stored_as_text_and_spoils_no_other_row(tmp_path: Path) -> None:
    circular: list[object] = ["loop"]
    circular.append(circular)
    with Store(tmp_path / "o.db", group_commit_delay=30.0) as store:
        store.create_run("run-1", make_workflow())
        complete(store, "run-1", "s0", circular)
        complete(store, "run-1", "s1", {("tuple", "key"): 1})
        complete(store, "run-1", "s2", {"fine": True})
        store.flush()
        assert store.committed_outputs("run-1") == {"s0": "['loop', [...]]", "s1": "{('tuple', 'key'): 1}",
                                                    "s2": {"fine": True}}


def test_a_malformed_transition_is_refused_and_spoils_no_other_row(tmp_path: Path) -> None:
    with Store(tmp_path / "o.db", group_commit_delay=30.0) as store:
        store.create_run("run-1", make_workflow())
        complete(store, "run-1", "s0", "before")
        store.record_transition(transition("run-1", "s1", TaskStatus.RUNNING))
        with pytest.raises(AttributeError):
            store.record_transition(transition("run-1", "s1", TaskStatus.COMPLETED, result="not a TaskResult"))
        complete(store, "run-1", "s2", "after")
        store.flush()
        assert store.committed_outputs("run-1") == {"s0": "before", "s2": "after"}
        run = store.get_run("run-1")
        assert run is not None and run.steps["s1"].status is TaskStatus.RUNNING  # its start was kept


def test_a_malformed_start_held_for_folding_does_not_stop_the_writer(tmp_path: Path) -> None:
    with Store(tmp_path / "o.db", group_commit_delay=30.0) as store:
        store.create_run("run-1", make_workflow())
        store.record_transition(transition("run-1", "s0", TaskStatus.RUNNING, result="not a TaskResult"))
        store.flush()  # the writer thread turns the held start into a row here, and refuses it
        complete(store, "run-1", "s1", "still written")
        store.flush()
        assert store.committed_outputs("run-1") == {"s1": "still written"}


def test_a_malformed_start_held_for_folding_does_not_cost_the_next_start_of_its_task(tmp_path: Path) -> None:
    with Store(tmp_path / "o.db", group_commit_delay=30.0) as store:
        store.create_run("run-1", make_workflow())
        store.record_transition(transition("run-1", "s0", TaskStatus.RUNNING, result="not a TaskResult"))
        store.record_transition(transition("run-1", "s0", TaskStatus.RUNNING, 2))
        store.flush()
        run = store.get_run("run-1")
        assert run is not None and (run.steps["s0"].status, run.steps["s0"].attempt) == (TaskStatus.RUNNING, 2)


def test_close_commits_what_is_queued(tmp_path: Path) -> None:
    store = Store(tmp_path / "o.db", group_commit_delay=30.0)
    store.create_run("run-1", make_workflow())
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.create_run("run-2", make_workflow())
    with pytest.raises(StoreError, match="closed"):
        store.list_runs()
    with Store(tmp_path / "o.db") as again:
        assert again.get_run("run-1") is not None


def test_a_reader_holding_a_snapshot_does_not_block_the_writer(store: Store) -> None:
    store.create_run("run-1", make_workflow())
    store.flush()
    reader = sqlite3.connect(store.db_path, isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1
    store.create_run("run-2", make_workflow())
    assert store.flush(timeout=60)
    # The open snapshot still sees the old state; a new read sees the new run.
    assert reader.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1
    reader.execute("COMMIT")
    assert len(store.list_runs()) == 2


def test_reads_from_many_threads(store: Store) -> None:
    store.create_run("run-1", make_workflow())
    store.flush()
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(20):
                assert store.get_run("run-1") is not None
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for i in range(20):
        complete(store, "run-1", "s0", i)
    for thread in threads:
        thread.join()
    assert errors == []


WRITER_SCRIPT = """
import sys, time
from pathlib import Path
from core.store import Store
from core.models import TaskResult, TaskStatus, TaskTransition, Workflow, WorkflowStep
db, tag, runs = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
wf = Workflow(name="wf-" + tag, steps=[WorkflowStep(name=f"s{i}") for i in range(5)])
with Store(db, group_commit_delay=0.005) as store:
    for r in range(runs):
        run_id = f"run-{tag}-{r}"
        store.create_run(run_id, wf)
        for i in range(5):
            store.record_transition(TaskTransition(task_id="t", name=f"s{i}", status=TaskStatus.RUNNING,
                                                   at=time.time(), run_id=run_id, attempt=1))
            store.record_transition(TaskTransition(task_id="t", name=f"s{i}", status=TaskStatus.COMPLETED,
                                                   at=time.time(), run_id=run_id, attempt=1,
                                                   result=TaskResult(success=True, data=i)))
        store.finish_run(run_id, "completed")
        if r % 10 == 0:
            store.flush()
    store.flush()
print("ok")
"""


def test_three_processes_write_at_once(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    Store(db).close()
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER_SCRIPT, str(db), tag, "60"], cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for tag in ("a", "b", "c")
    ]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert out.strip() == "ok" and "locked" not in err
    with Store(db) as store:
        runs = store.list_runs(limit=None)
        assert len(runs) == 180
        assert {r.status for r in runs} == {WorkflowStatus.COMPLETED}
        assert all(store.committed_outputs(r.run_id) == {f"s{i}": i for i in range(5)} for r in runs[::17])
        assert sum(len(store.get_attempts(r.run_id)) for r in runs) == 180 * 5
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM steps WHERE status = 'completed' AND attempt = 1").fetchone()[0] == 900


# --------------------------------------------------------------- crash recovery


def set_owner(db: Path, run_id: str, pid: int, started: float) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE runs SET owner_pid = ?, owner_started = ? WHERE id = ?", (pid, started, run_id))
        conn.execute("UPDATE allocations SET owner_pid = ?, owner_started = ? WHERE run_id = ?", (pid, started, run_id))
    conn.close()


def test_runs_of_dead_processes_become_interrupted(tmp_path: Path, dead_owner: tuple[int, float]) -> None:
    db = tmp_path / "o.db"
    with Store(db) as store:
        for run_id in ("run-dead", "run-recycled", "run-mine"):
            store.create_run(run_id, make_workflow())
            complete(store, run_id, "s0", "done")
            store.record_transition(transition(run_id, "s1", TaskStatus.RUNNING))
            store.record_allocation(ResourceAllocation(id=f"alloc-{run_id}", resource_id="cpu",
                                                       requester_id=run_id, amount={"cores": 2}), run_id=run_id)
        store.record_allocation(ResourceAllocation(id="alloc-loose", resource_id="gpu", requester_id="x",
                                                   amount={"units": 1}))
        store.flush()
    pid, started = dead_owner
    set_owner(db, "run-dead", pid, started)
    # A live pid with another start time is a recycled pid: its run is orphaned too.
    set_owner(db, "run-recycled", os.getpid(), started - 1000)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE allocations SET owner_pid = ?, owner_started = ? WHERE id = 'alloc-loose'", (pid, started))
    conn.close()
    with Store(db) as store:
        assert sorted(r.run_id for r in store.list_runs(status="interrupted")) == ["run-dead", "run-recycled"]
        run = store.get_run("run-dead")
        assert run is not None and "resume" in run.error
        assert run.steps["s0"].status is TaskStatus.COMPLETED
        assert run.steps["s1"].status is TaskStatus.INTERRUPTED
        assert run.steps["s1"].attempts[0].status is TaskStatus.INTERRUPTED
        assert [(e.step, e.status) for e in store.step_history("run-dead")][-2:] == [
            ("s1", TaskStatus.RUNNING), ("s1", TaskStatus.INTERRUPTED)]
        assert run.steps["s2"].status is TaskStatus.PENDING
        assert [a.id for a in store.open_allocations()] == ["alloc-run-mine"]
        assert store.get_run("run-mine").status is WorkflowStatus.RUNNING  # type: ignore[union-attr]
        assert store.recover_interrupted() == []


def seen_at(db: Path, run_id: str) -> float | None:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT seen_at FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
    finally:
        conn.close()


def start_then_die_unnoticed(db: Path, clock: ManualClock, dead_owner: tuple[int, float], *,
                             stamped: bool = True) -> float:
    """Record run-dead with s0 running, owned by a dead process, and let a day pass before
    anyone looks; return when the run was created."""
    with Store(db, clock=clock) as store:
        created = clock.time()
        store.create_run("run-dead", make_workflow())
        store.record_transition(TaskTransition(task_id="t0", name="s0", status=TaskStatus.RUNNING, at=created + 5,
                                               run_id="run-dead", attempt=1))
        store.flush()
    set_owner(db, "run-dead", *dead_owner)
    if not stamped:  # as a run written before runs were stamped
        conn = sqlite3.connect(db)
        with conn:
            conn.execute("UPDATE runs SET seen_at = NULL")
        conn.close()
    clock.advance(86_400)
    return created


def test_an_interrupted_run_ends_soon_after_its_owner_was_last_seen_not_when_recovery_noticed(
        tmp_path: Path, dead_owner: tuple[int, float]) -> None:
    clock = ManualClock()
    created = start_then_die_unnoticed(tmp_path / "o.db", clock, dead_owner)
    with Store(tmp_path / "o.db", clock=clock) as store:
        run = store.get_run("run-dead")
        assert run is not None and run.status is WorkflowStatus.INTERRUPTED
        assert run.finished_at == created + 2 * HEARTBEAT_INTERVAL
        assert run.steps["s0"].finished_at == created + 2 * HEARTBEAT_INTERVAL
        assert run.steps["s0"].attempts[0].finished_at == created + 2 * HEARTBEAT_INTERVAL


def test_an_interrupted_run_never_seen_alive_ends_when_recovery_noticed(
        tmp_path: Path, dead_owner: tuple[int, float]) -> None:
    clock = ManualClock()
    start_then_die_unnoticed(tmp_path / "o.db", clock, dead_owner, stamped=False)
    with Store(tmp_path / "o.db", clock=clock) as store:
        run = store.get_run("run-dead")
        assert run is not None and run.finished_at == clock.time()


def test_interrupted_at_is_two_heartbeats_after_the_last_stamp_and_never_in_the_future() -> None:
    assert interrupted_at(1000.0, now=5000.0) == 1000.0 + 2 * HEARTBEAT_INTERVAL
    assert interrupted_at(1000.0, now=1001.0) == 1001.0
    assert interrupted_at(None, now=5000.0) == 5000.0


def test_the_unfinished_runs_of_a_live_store_are_stamped_until_they_end(tmp_path: Path) -> None:
    clock = ManualClock()
    db = tmp_path / "o.db"
    with Store(db, clock=clock, heartbeat_interval=0.01) as store:
        store.create_run("run-live", make_workflow())
        store.create_run("run-over", make_workflow())
        store.finish_run("run-over", WorkflowStatus.COMPLETED)
        store.flush()
        created = clock.time()
        clock.advance(60)
        deadline = time.monotonic() + 60
        while seen_at(db, "run-live") != created + 60 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert seen_at(db, "run-live") == created + 60
        assert seen_at(db, "run-over") == created  # stamped when it was created, never since it ended


def test_the_heartbeat_thread_ends_once_no_run_of_its_process_is_unfinished(tmp_path: Path) -> None:
    others = {t for t in threading.enumerate() if t.name == "orchtui-store-heartbeat"}

    def heartbeats() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "orchtui-store-heartbeat" and t not in others]

    with Store(tmp_path / "o.db", heartbeat_interval=0.01) as store:
        store.create_run("run-1", make_workflow())
        store.flush()
        assert heartbeats()
        store.finish_run("run-1", WorkflowStatus.COMPLETED)
        store.flush()
        deadline = time.monotonic() + 60
        while heartbeats() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not heartbeats()
        store.create_run("run-2", make_workflow())  # a new run: stamped again
        assert heartbeats()


def test_process_alive_checks_pid_and_start_time(dead_owner: tuple[int, float]) -> None:
    import psutil

    me = psutil.Process()
    assert process_alive(me.pid, me.create_time())
    assert process_alive(me.pid, None)
    assert not process_alive(me.pid, me.create_time() - 100)
    assert not process_alive(None, None)
    pid, started = dead_owner
    assert not process_alive(pid, started)


# ------------------------------------------------------------ projects, sessions


def test_projects_and_milestones(store: Store) -> None:
    project = Project(name="alpha", path="/p/alpha", status=ProjectStatus.ACTIVE, milestones={"kickoff": {"ok": True}})
    store.save_project(project)
    assert store.add_milestone("alpha", "first-run", {"score": 8.5})
    assert not store.add_milestone("nope", "x", {})
    got = store.get_project("alpha")
    assert got is not None and got.status is ProjectStatus.ACTIVE and got.path == "/p/alpha"
    assert got.milestones == {"kickoff": {"ok": True}, "first-run": {"score": 8.5}}
    store.save_project(Project(name="beta"))
    assert [p.name for p in store.list_projects()] == ["alpha", "beta"]
    assert store.delete_project("alpha") and not store.delete_project("alpha")
    assert store.get_project("alpha") is None


def test_sessions_and_allocations(store: Store) -> None:
    session = OrchestrationSession(name="s", max_parallel_tasks=8)
    store.save_session(session)
    session.status = "closed"
    store.save_session(session)
    alloc = ResourceAllocation(id="a1", resource_id="cpu", requester_id="task-1", amount={"cores": 2.0})
    store.record_allocation(alloc, run_id="run-1")
    store.flush()
    assert store.get_session(session.id) == session
    assert [s.id for s in store.list_sessions()] == [session.id]
    assert store.open_allocations("run-1") == [alloc]
    store.record_release("a1")
    store.flush()
    assert store.open_allocations() == []


# ------------------------------------------------------------ bad files, faults


def test_a_file_that_is_not_sqlite_is_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "orchtui.db"
    db.write_bytes(b"this is not a database at all\n" * 200)
    with pytest.raises(StoreError) as info:
        Store(db)
    assert str(db) in info.value.message and "move it aside" in info.value.message
    assert "\n" not in info.value.message


def test_a_corrupted_database_is_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "orchtui.db"
    with Store(db) as store:
        store.create_run("run-1", make_workflow())
    data = bytearray(db.read_bytes())
    data[100:4096] = b"\xde\xad" * ((4096 - 100) // 2)  # smash the schema page
    db.write_bytes(bytes(data))
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    with pytest.raises(StoreError, match="not a usable orchtui database") as info:
        Store(db)
    assert info.value.error_code == "STORE_CORRUPT"


def test_an_unrelated_sqlite_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "orchtui.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE photos (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not an orchtui one"):
        Store(db)


def test_a_database_from_a_newer_orchtui_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "orchtui.db"
    Store(db).close()
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE schema_version SET version = 99")
    conn.close()
    with pytest.raises(StoreError) as info:
        Store(db)
    assert info.value.message.startswith(f"{db} was written by a newer orchtui (schema 99); upgrade orchtui")
    assert info.value.error_code == "STORE_TOO_NEW"


def test_threads_preparing_one_state_dir_at_once_all_succeed(tmp_path: Path) -> None:
    # Each proves the directory writable with a probe file; they must not remove each other's.
    from core.store import prepare_state_directory

    errors: list[BaseException] = []
    start = threading.Barrier(8, timeout=60)

    def prepare() -> None:
        start.wait()
        for _ in range(200):
            try:
                prepare_state_directory(tmp_path / "state")
            except BaseException as exc:
                errors.append(exc)
                return

    threads = [threading.Thread(target=prepare) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert list((tmp_path / "state").iterdir()) == []


def test_a_state_dir_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("oops")
    with pytest.raises(StoreError, match="exists but is not a directory"):
        Store(tmp_path / "state" / "orchtui.db")


def test_a_store_in_a_directory_that_may_not_be_written_opens_for_reading(tmp_path: Path, read_only) -> None:
    settings = load_settings(cwd=tmp_path)
    with Store.open(settings) as store:
        store.create_run("run-kept", make_workflow())
        store.finish_run("run-kept", WorkflowStatus.COMPLETED)
    with read_only(settings.state_dir), Store.open_for_reading(settings) as store:
        assert store.read_only
        run = store.get_run("run-kept")
        assert run is not None and run.status is WorkflowStatus.COMPLETED
        with pytest.raises(StoreError, match="is open read-only") as caught:
            store.create_run("run-new", make_workflow())
        assert caught.value.error_code == "STORE_READ_ONLY"
        assert store.flush()  # nothing was queued


def test_open_for_reading_a_read_only_directory_with_no_store_is_the_usual_error(
        read_only_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHTUI_DIR", str(read_only_dir))
    settings = load_settings()
    with pytest.raises(StoreError, match="is not writable") as caught:
        Store.open_for_reading(settings)
    assert caught.value.error_code == "STORE_READ_ONLY"


_READ_RUNS = """
from core.config import load_settings
from core.store import Store
with Store.open_for_reading(load_settings()) as store:
    print(store.read_only, [(r.run_id, r.status.value) for r in store.list_runs()])
"""


def test_a_reader_that_may_not_write_sees_the_runs_of_a_live_writer(tmp_path: Path, kept_from_others) -> None:
    # Another user reading a service's state directory while it runs: the database
    # has a WAL file that holds the newest commits, which the reader must see.
    settings = load_settings(cwd=tmp_path)
    state = settings.state_dir
    env = dict(os.environ, ORCHTUI_DIR=str(state), PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    with Store.open(settings) as writer:
        writer.create_run("run-live", make_workflow())
        writer.flush()
        assert Path(f"{settings.db_path}-wal").exists()
        with kept_from_others(state, 0o555) as bound:
            out = subprocess.run(bound([sys.executable, "-c", _READ_RUNS]), env=env, capture_output=True,
                                 text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True [('run-live', 'running')]"


def test_a_read_only_state_dir_is_a_clear_error(read_only_dir: Path) -> None:
    with pytest.raises(StoreError, match="is not writable.*ORCHTUI_DIR") as info:
        Store(read_only_dir / "orchtui.db")
    assert info.value.error_code == "STORE_READ_ONLY"


# ------------------------------------------------------------------ migrations


def make_v1_database(db: Path) -> None:
    """Write a database exactly as orchtui's schema version 1 did, with some history."""
    conn = sqlite3.connect(db, isolation_level=None)
    for statement in SCHEMA_V1:
        conn.execute(statement)
    wf = make_workflow("legacy", steps=2)
    conn.execute(
        "INSERT INTO runs (id, workflow, workflow_json, params_json, status, owner_pid, host, created_at, "
        "started_at, finished_at) VALUES ('run-v1', 'legacy', ?, '{\"n\": 3}', 'completed', 1, 'old-host', 100, 100, 160)",
        (json.dumps(wf.to_dict()),),
    )
    conn.execute("INSERT INTO attempts (run_id, step, attempt, status, started_at, finished_at, exit_code, error, "
                 "output_json) VALUES ('run-v1', 's0', 1, 'failed', 100, 110, 1, 'boom', NULL)")
    conn.execute("INSERT INTO attempts (run_id, step, attempt, status, started_at, finished_at, exit_code, "
                 "output_json) VALUES ('run-v1', 's0', 2, 'completed', 120, 130, 0, '{\"v\": 1}')")
    conn.execute("INSERT INTO transitions (run_id, step, status, at) VALUES ('run-v1', 's0', 'completed', 130)")
    project = Project(name="old", milestones={"m1": {"done": True}}).to_dict()
    conn.execute("INSERT INTO projects (name, path, data_json, updated_at) VALUES ('old', '/old', ?, 5)",
                 (json.dumps(project),))
    conn.close()


def test_migration_from_version_1(tmp_path: Path) -> None:
    db = tmp_path / "orchtui.db"
    make_v1_database(db)
    with Store(db, recover=False) as store:
        run = store.get_run("run-v1")
        assert run is not None and run.status is WorkflowStatus.COMPLETED and run.params == {"n": 3}
        assert run.steps["s0"].status is TaskStatus.COMPLETED and run.steps["s0"].attempt == 2
        assert [a.status for a in run.steps["s0"].attempts] == [TaskStatus.FAILED, TaskStatus.COMPLETED]
        assert store.committed_outputs("run-v1") == {"s0": {"v": 1}}
        project = store.get_project("old")
        assert project is not None and project.milestones == {"m1": {"done": True}}
        assert [v.run_id for v in store.changes_since(0)[1]] == ["run-v1"]
        # The one stored history row stays; what it does not say comes from the attempts.
        assert [(e.status.value, e.attempt, e.at) for e in store.step_history("run-v1")] == [
            ("running", 1, 100), ("pending", 1, 110), ("running", 2, 120), ("completed", 0, 130)]
        store.create_run("run-new", make_workflow())
        store.flush()
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == CURRENT_VERSION
    assert "milestones" not in json.loads(conn.execute("SELECT data_json FROM projects").fetchone()[0])
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_migration_from_version_3_keeps_attempt_rows_and_a_run_in_flight_finishes_on_its_step_rows(
        tmp_path: Path) -> None:
    db = tmp_path / "orchtui.db"
    make_v1_database(db)
    conn = sqlite3.connect(db, isolation_level=None)
    for version in (1, 2):  # frozen: exactly what schema 3 looked like
        MIGRATIONS[version](conn)
    conn.execute("UPDATE schema_version SET version = 3")
    # A run that schema 3 was recording when orchtui was upgraded: s0 is running.
    conn.execute("INSERT INTO runs (id, workflow, workflow_json, status, created_at) "
                 "VALUES ('run-live', 'legacy', '', 'running', 200)")
    conn.execute("INSERT INTO run_definitions (run_id, workflow_json) VALUES ('run-live', ?)",
                 (json.dumps(make_workflow("legacy", steps=2).to_dict()),))
    conn.execute("INSERT INTO steps (run_id, step, status, attempt, started_at) "
                 "VALUES ('run-live', 's0', 'running', 1, 201)")
    conn.execute("INSERT INTO attempts (run_id, step, attempt, status, started_at, log_path) "
                 "VALUES ('run-live', 's0', 1, 'running', 201, '/l/s0.1')")
    conn.close()
    with Store(db, recover=False) as store:
        old = store.get_run("run-v1")
        assert old is not None
        assert [(a.attempt, a.status, a.exit_code) for a in old.steps["s0"].attempts] == [
            (1, TaskStatus.FAILED, 1), (2, TaskStatus.COMPLETED, 0)]
        store.record_transition(TaskTransition(task_id="t", name="s0", status=TaskStatus.COMPLETED, at=205.0,
                                               run_id="run-live", attempt=1,
                                               result=TaskResult(success=True, data=7, exit_code=0)))
        store.flush()
        [latest] = store.get_attempts("run-live", "s0")
        assert (latest.status, latest.finished_at, latest.exit_code, latest.output, latest.log_path) == (
            TaskStatus.COMPLETED, 205.0, 0, 7, "/l/s0.1")
        assert [e.status.value for e in store.step_history("run-live")] == ["running", "completed"]


def test_migration_from_version_2_moves_workflow_snapshots_out_of_runs(tmp_path: Path) -> None:
    db = tmp_path / "orchtui.db"
    make_v1_database(db)
    conn = sqlite3.connect(db, isolation_level=None)
    MIGRATIONS[1](conn)  # frozen: exactly what schema 2 looked like
    conn.execute("UPDATE schema_version SET version = 2")
    conn.close()
    with Store(db, recover=False) as store:
        run = store.get_run("run-v1")
        assert run is not None and run.definition is not None
        assert run.definition.step_names == make_workflow("legacy", steps=2).step_names
        assert store.step_status("run-v1", "s1") is TaskStatus.PENDING  # known from the snapshot only
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == CURRENT_VERSION
    assert conn.execute("SELECT workflow_json FROM runs").fetchall() == [("",)]
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_two_processes_upgrading_at_once_upgrade_once(tmp_path: Path) -> None:
    db = tmp_path / "orchtui.db"
    make_v1_database(db)
    script = "import sys; from pathlib import Path; from core.store import Store; Store(Path(sys.argv[1]), recover=False).close()"
    procs = [subprocess.Popen([sys.executable, "-c", script, str(db)], cwd=REPO, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*), MAX(version) FROM schema_version").fetchone() == (1, CURRENT_VERSION)
    assert conn.execute("SELECT COUNT(*) FROM milestones").fetchone()[0] == 1


def _history(store: Store, run_id: str) -> list[tuple[str, str, int]]:
    """The run's history step by step (the sort is stable: each step's changes keep their order)."""
    return sorted(((e.step, e.status.value, e.attempt) for e in store.step_history(run_id)), key=lambda e: e[0])


def test_one_group_writes_what_separate_writes_would(tmp_path: Path) -> None:
    # Within one group a RUNNING is folded into its end; the rows must not show it.
    def story(run_id: str) -> list[TaskTransition]:
        at = iter(range(100, 200))

        def t(step: str, status: TaskStatus, attempt: int, **kw: object) -> TaskTransition:
            return TaskTransition(task_id=f"{run_id}:{step}", name=step, status=status, at=float(next(at)),
                                  run_id=run_id, attempt=attempt, **kw)  # type: ignore[arg-type]
        failed = TaskResult(success=False, error_message="exit 3", exit_code=3, started_at=1.0, finished_at=2.0)
        done = TaskResult(success=True, data={"n": 1}, exit_code=0, started_at=3.0, finished_at=9.0)
        return [
            t("s0", TaskStatus.RUNNING, 1, log_path="/l/s0.1"),
            t("s1", TaskStatus.RUNNING, 1),
            t("s0", TaskStatus.PENDING, 1, result=failed, error="exit 3", log_path="/l/s0.1", retry_at=5.0),
            t("s0", TaskStatus.RUNNING, 2, log_path="/l/s0.2"),
            t("s1", TaskStatus.COMPLETED, 1, result=done),
            t("s0", TaskStatus.COMPLETED, 2, result=done, log_path="/l/s0.2"),
            t("s2", TaskStatus.RUNNING, 1, log_path="/l/s2.1"),
            t("s2", TaskStatus.CANCELLED, 1, error="cancelled", log_path="/l/s2.1"),
        ]

    def rows(store: Store, run_id: str) -> tuple[object, ...]:
        run = store.get_run(run_id)
        assert run is not None
        steps = sorted((n, s.status, s.attempt, s.started_at, s.finished_at, s.error, s.output)
                       for n, s in run.steps.items())
        attempts = [(a.step, a.attempt, a.status, a.started_at, a.finished_at, a.exit_code, a.error, a.output,
                     a.log_path) for a in store.get_attempts(run_id)]
        return steps, attempts, _history(store, run_id)

    with Store(tmp_path / "o.db", group_commit_delay=30.0) as store:
        store.create_run("one", make_workflow())
        store.create_run("each", make_workflow())
        store.flush()
        commits = store.commit_count
        for transition in story("one"):
            store.record_transition(transition)
        store.flush()
        assert store.commit_count == commits + 1
        for transition in story("each"):
            store.record_transition(transition)
            store.flush()
        assert rows(store, "one") == rows(store, "each")
        assert _history(store, "one") == [
            ("s0", "running", 1), ("s0", "pending", 1), ("s0", "running", 2), ("s0", "completed", 2),
            ("s1", "running", 1), ("s1", "completed", 1), ("s2", "running", 1), ("s2", "cancelled", 1),
        ]
        s2 = store.get_attempts("one", "s2")[0]
        assert s2.started_at is not None and s2.log_path == "/l/s2.1"
        assert [(a.attempt, a.status.value, a.exit_code, a.error, a.output, a.log_path)
                for a in store.get_attempts("one", "s0")] == [
            (1, "failed", 3, "exit 3", None, "/l/s0.1"), (2, "completed", 0, "", {"n": 1}, "/l/s0.2")]
