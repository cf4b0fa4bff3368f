"""A run's status history, derived from its attempt and step rows (core/store_history.py)."""

from __future__ import annotations

import pytest

from core.models import TaskStatus
from core.store_history import HistoryEntry, derive_history


def changes(entries: list[HistoryEntry]) -> list[tuple[str, str, int, float]]:
    return [(e.step, e.status.value, e.attempt, e.at) for e in entries]


def test_an_attempt_is_its_start_and_its_end() -> None:
    history = derive_history([("a", "completed", 1, 12.0, None)], [("a", 1, "completed", 10.0, 12.0)])
    assert changes(history) == [("a", "running", 1, 10.0), ("a", "completed", 1, 12.0)]


def test_a_failed_attempt_followed_by_another_was_a_retry_being_scheduled() -> None:
    history = derive_history(
        [("a", "completed", 2, 30.0, None)],
        [("a", 1, "failed", 10.0, 12.0), ("a", 2, "completed", 20.0, 30.0)],
    )
    assert changes(history) == [("a", "running", 1, 10.0), ("a", "pending", 1, 12.0),
                                ("a", "running", 2, 20.0), ("a", "completed", 2, 30.0)]


def test_a_failed_attempt_whose_step_still_waits_for_its_retry_was_a_retry_being_scheduled() -> None:
    history = derive_history([("a", "pending", 1, None, None)], [("a", 1, "failed", 10.0, 12.0)])
    assert [e.status for e in history] == [TaskStatus.RUNNING, TaskStatus.PENDING]


def test_a_step_cancelled_while_waiting_for_its_retry_ends_after_the_retry_was_scheduled() -> None:
    history = derive_history([("a", "cancelled", 1, 20.0, None)], [("a", 1, "failed", 10.0, 12.0)])
    assert changes(history) == [("a", "running", 1, 10.0), ("a", "pending", 1, 12.0), ("a", "cancelled", 1, 20.0)]


def test_the_last_failed_attempt_of_a_failed_step_is_its_failure() -> None:
    history = derive_history([("a", "failed", 1, 12.0, None)], [("a", 1, "failed", 10.0, 12.0)])
    assert [e.status for e in history] == [TaskStatus.RUNNING, TaskStatus.FAILED]


def test_a_running_attempt_has_only_its_start() -> None:
    history = derive_history([("a", "running", 1, None, None)], [("a", 1, "running", 10.0, None)])
    assert changes(history) == [("a", "running", 1, 10.0)]


def test_a_step_that_ended_without_running_has_its_end_outside_any_attempt() -> None:
    history = derive_history([("a", "skipped", 0, 5.0, None), ("b", "pending", 0, None, None)], [])
    assert changes(history) == [("a", "skipped", 0, 5.0)]


def test_a_step_taken_over_from_an_earlier_run_has_no_history() -> None:
    assert derive_history([("a", "completed", 0, 5.0, "run-parent")], []) == []


def test_changes_of_different_steps_come_in_time_order() -> None:
    history = derive_history(
        [("a", "completed", 1, 40.0, None), ("b", "completed", 1, 30.0, None)],
        [("a", 1, "completed", 10.0, 40.0), ("b", 1, "completed", 20.0, 30.0)],
    )
    assert [(e.step, e.status.value) for e in history] == [
        ("a", "running"), ("b", "running"), ("b", "completed"), ("a", "completed")]


def test_an_end_stamped_by_another_clock_never_comes_before_its_start() -> None:
    history = derive_history([("a", "completed", 1, 9.5, None)], [("a", 1, "completed", 10.0, 9.5)])
    assert changes(history) == [("a", "running", 1, 10.0), ("a", "completed", 1, 10.0)]


def test_a_stored_row_wins_over_the_change_derived_for_it() -> None:
    history = derive_history(
        [("a", "completed", 1, 12.0, None)],
        [("a", 1, "completed", 10.0, 12.0)],
        [("a", "running", 1, 10.1), ("a", "completed", 1, 12.1)],
    )
    assert changes(history) == [("a", "running", 1, 10.1), ("a", "completed", 1, 12.1)]


def test_stored_rows_keep_what_the_attempts_cannot_say_and_derived_ones_fill_the_gaps() -> None:
    # Written before schema 4: a history row per transition, the last one missing
    # (say, the run was interrupted after an upgrade).
    history = derive_history(
        [("a", "interrupted", 1, 50.0, None)],
        [("a", 1, "interrupted", 10.0, 50.0)],
        [("a", "running", 1, 10.0)],
    )
    assert changes(history) == [("a", "running", 1, 10.0), ("a", "interrupted", 1, 50.0)]


def test_a_stored_row_without_an_attempt_number_covers_that_change_in_any_attempt() -> None:
    history = derive_history([("a", "completed", 2, 30.0, None)], [("a", 2, "completed", 20.0, 30.0)],
                             [("a", "completed", 0, 30.0)])
    assert changes(history) == [("a", "running", 2, 20.0), ("a", "completed", 0, 30.0)]


def test_a_status_that_is_no_task_status_is_refused() -> None:
    with pytest.raises(ValueError):
        derive_history([("a", "exploded", 1, 1.0, None)], [])


def test_an_entry_becomes_plain_json_data() -> None:
    assert HistoryEntry("a", TaskStatus.RUNNING, 1, 2.5).to_dict() == {
        "step": "a", "status": "running", "attempt": 1, "at": 2.5}
