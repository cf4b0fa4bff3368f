"""How transitions become rows (core/store_rows.py): however the writer cuts them into
groups, the store ends up with the rows that writing each transition at once leaves.

A group folds a RUNNING into the end of its attempt and applies many transitions in one
multi-row statement, so the rules that keep the latest value, a known start or a
superseded attempt's row have to hold across any cut. Hypothesis draws the stories (steps
that retry, complete, fail, are cancelled or still run, interleaved) and the cut points;
a real store on a real SQLite file writes them twice, in groups and one at a time; and
threads recording at once, each waiting for commits at random points, leave the same.
"""

from __future__ import annotations

import itertools
import json
import random
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st

from core.models import TaskResult, TaskStatus, TaskTransition, Workflow, WorkflowStep
from core.store import Store
from core.store_rows import workflow_json

STEPS = ("s0", "s1", "s2")
ENDS = ("completed", "failed", "cancelled", "running")  # how a step's last attempt ends ("running": not yet)
OUTPUTS = st.one_of(st.none(), st.integers(-3, 3), st.text(max_size=4), st.lists(st.integers(0, 2), max_size=2))


@dataclass(slots=True)
class Change:
    """One transition of a story, before it gets its run id and time."""

    step: str
    status: TaskStatus
    attempt: int
    result: TaskResult | None = None
    error: str = ""
    log_path: str | None = None


@st.composite
def step_story(draw: st.DrawFn, step: str) -> list[Change]:
    """The changes of one step: maybe READY, then attempts that fail and retry, then its end."""
    changes = [Change(step, TaskStatus.READY, 0)] if draw(st.booleans()) else []
    attempts = draw(st.integers(1, 3))
    end = draw(st.sampled_from(ENDS))
    for attempt in range(1, attempts + 1):
        log = f"/logs/{step}.{attempt}.log" if draw(st.booleans()) else None
        changes.append(Change(step, TaskStatus.RUNNING, attempt, log_path=log))
        # Results carry their own times, or none (a child process that died sends none).
        timed = draw(st.booleans())
        times: dict[str, Any] = {"started_at": 1000.0 + attempt, "finished_at": 1000.5 + attempt} if timed else {}
        if attempt < attempts:
            code = draw(st.integers(1, 3))
            failed = TaskResult(success=False, error_message=f"exit {code}", exit_code=code, attempt=attempt, **times)
            changes.append(Change(step, TaskStatus.PENDING, attempt, failed, f"exit {code}", log))
        elif end == "completed":
            done = TaskResult(success=True, data=draw(OUTPUTS), exit_code=draw(st.sampled_from((0, None))),
                              attempt=attempt, **times)
            changes.append(Change(step, TaskStatus.COMPLETED, attempt, done, "", log))
        elif end == "failed":
            failed = TaskResult(success=False, error_message="boom", exit_code=9, attempt=attempt, **times)
            changes.append(Change(step, TaskStatus.FAILED, attempt, failed, "boom", log))
        elif end == "cancelled":
            changes.append(Change(step, TaskStatus.CANCELLED, attempt, None, "cancelled", log))
    return changes


@st.composite
def interleaved(draw: st.DrawFn) -> list[Change]:
    """The stories of a few steps, interleaved the way a scheduler might (each keeps its order)."""
    count = draw(st.integers(1, len(STEPS)))
    queues = [draw(step_story(step)) for step in STEPS[:count]]
    merged: list[Change] = []
    while any(queues):
        live = [q for q in queues if q]
        merged.append(draw(st.sampled_from(live)).pop(0))
    return merged


def replay(store: Store, run_id: str, changes: list[Change], cuts: list[bool]) -> None:
    """Record ``changes`` as run ``run_id``, committing after each change whose cut is True."""
    clock = itertools.count(1)
    for change, cut in zip(changes, cuts, strict=True):
        store.record_transition(TaskTransition(
            task_id=f"{run_id}:{change.step}", name=change.step, status=change.status, at=float(next(clock)),
            run_id=run_id, attempt=change.attempt, result=change.result, error=change.error,
            log_path=change.log_path, retry_at=5.0 if change.status is TaskStatus.PENDING else None,
        ))
        if cut:
            store.flush()
    store.flush()


def stored(store: Store, run_id: str) -> tuple[Any, ...]:
    """Everything the store shows of a run's steps: step rows, attempt rows, the history."""
    run = store.get_run(run_id)
    assert run is not None
    steps = sorted((name, s.status, s.attempt, s.started_at, s.finished_at, s.error, s.output, s.exit_code,
                    s.log_path) for name, s in run.steps.items())
    attempts = [(a.step, a.attempt, a.status, a.started_at, a.finished_at, a.exit_code, a.error, a.output,
                 a.log_path) for a in store.get_attempts(run_id)]
    history = sorted(((e.step, e.status.value, e.attempt) for e in store.step_history(run_id)), key=lambda e: e[0])
    return steps, attempts, history


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_cut_into_groups_writes_what_one_write_at_a_time_would(data: st.DataObject) -> None:
    changes = data.draw(interleaved())
    cuts = data.draw(st.lists(st.booleans(), min_size=len(changes), max_size=len(changes)))
    workflow = Workflow(name="story", steps=[WorkflowStep(name=s) for s in STEPS])
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "o.db", group_commit_delay=30.0) as store:
        store.create_run("grouped", workflow)
        store.create_run("each", workflow)
        store.flush()
        replay(store, "grouped", changes, cuts)
        replay(store, "each", changes, [True] * len(changes))
        assert stored(store, "grouped") == stored(store, "each")


def renamed(changes: list[Change], copy: int) -> list[Change]:
    """The same story told by other steps (``s0`` becomes ``s0-<copy>``)."""
    return [Change(f"{c.step}-{copy}", c.status, c.attempt, c.result, c.error,
                   c.log_path and c.log_path.replace(f"/{c.step}.", f"/{c.step}-{copy}.")) for c in changes]


THREADS = 6
COPIES = 12


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stories=st.lists(interleaved(), min_size=THREADS, max_size=THREADS), seed=st.integers(0, 2**32))
def test_threads_recording_at_once_leave_what_one_write_at_a_time_would(stories: list[list[Change]], seed: int) -> None:
    # Each thread records its run and now and then waits for a commit, so the groups
    # are cut between any thread's transitions: each run must still end as if its
    # transitions were written alone.
    runs = [[change for copy in range(COPIES) for change in renamed(story, copy)] for story in stories]
    rng = random.Random(seed)
    cuts = [[rng.random() < 0.1 for _ in run] for run in runs]
    names = [f"{step}-{copy}" for step in STEPS for copy in range(COPIES)]
    workflow = Workflow(name="story", steps=[WorkflowStep(name=n) for n in names])
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "o.db", group_commit_delay=0.002) as store:
        for i in range(THREADS):
            store.create_run(f"threaded-{i}", workflow)
            store.create_run(f"each-{i}", workflow)
        store.flush()
        start = threading.Barrier(THREADS)

        def record(i: int) -> None:
            start.wait()
            replay(store, f"threaded-{i}", runs[i], cuts[i])

        threads = [threading.Thread(target=record, args=(i,)) for i in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for i in range(THREADS):
            replay(store, f"each-{i}", runs[i], [True] * len(runs[i]))
        for i in range(THREADS):
            assert stored(store, f"threaded-{i}") == stored(store, f"each-{i}"), f"run {i}"


@settings(max_examples=200, deadline=None)
@given(names=st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=6, unique=True), data=st.data())
def test_a_workflow_snapshot_reads_back_as_the_workflow_whatever_its_step_names(names: list[str],
                                                                                 data: st.DataObject) -> None:
    # Plain ASCII names are quoted by concatenation, any other by the JSON encoder.
    steps = [WorkflowStep(name=name, dependencies=data.draw(st.lists(st.sampled_from(names[:i]), unique=True))
                          if i else []) for i, name in enumerate(names)]
    workflow = Workflow(name="w", steps=steps)
    text = workflow_json(workflow)
    assert text.isascii()
    assert Workflow.from_dict(json.loads(text)) == workflow
