"""A run's status history, read back from its attempt and step rows.

Each attempt row already holds what its transitions said: it started (RUNNING, at its
``started_at``) and how it ended (its status, at its ``finished_at``), and a failed
attempt followed by another one was a retry being scheduled (PENDING). A step that
ended without an attempt (skipped, refused, cancelled before it ran) has its end in its
step row. So the store does not write a history row per transition, which would double
what each step costs to record; :func:`derive_history` rebuilds the history instead.

The ``transitions`` table keeps what the attempt and step rows cannot say, and every
row an older orchtui wrote (schemas 1 to 3 wrote one per transition). Where a stored
row and a derived one describe the same change (same step, attempt and status), the
stored one wins: it carries the time the dispatcher saw, not the attempt's own clock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from .models import TaskStatus

__all__ = ["HistoryEntry", "derive_history"]

_RUNNING = TaskStatus.RUNNING
_PENDING = TaskStatus.PENDING
_FAILED = TaskStatus.FAILED


@dataclasses.dataclass(slots=True, frozen=True)
class HistoryEntry:
    """One status change of one step: ``status`` at ``at`` (epoch seconds) during ``attempt``
    (0 for a change outside any attempt, such as a step skipped before it ran)."""

    step: str
    status: TaskStatus
    attempt: int
    at: float

    def to_dict(self) -> dict[str, object]:
        """Return the entry as plain JSON data."""
        return {"step": self.step, "status": self.status.value, "attempt": self.attempt, "at": self.at}


# A step row as ``derive_history`` needs it: name, status, latest attempt, finished_at,
# reused_from.
StepRow = tuple[str, str, int, "float | None", "str | None"]
# An attempt row: step, attempt, status, started_at, finished_at.
AttemptRow = tuple[str, int, str, "float | None", "float | None"]
# A stored history row: step, status, attempt, at.
StoredRow = tuple[str, str, int, float]


def derive_history(steps: Iterable[StepRow], attempts: Iterable[AttemptRow],
                   stored: Iterable[StoredRow] = ()) -> list[HistoryEntry]:
    """Return a run's status changes, oldest first (a step's own changes keep their order).

    ``steps`` and ``attempts`` are the run's step and attempt rows (attempts in attempt
    order per step), ``stored`` its ``transitions`` rows in the order they were written.
    A step taken over from an earlier run (``reused_from``) did not change in this run
    and has no history here. Stored rows are kept as they are; a derived change that a
    stored row already describes (same step, status and attempt, or any attempt for a
    row without one) is left out.

    Raises:
        ValueError: a row holds a status that is not a :class:`TaskStatus` value.
    """
    step_rows = {name: (TaskStatus(status), attempt, finished, reused)
                 for name, status, attempt, finished, reused in steps}
    derived: list[HistoryEntry] = []
    last_at: dict[str, float] = {}  # per step: the time of its latest change so far
    derived_status: dict[str, TaskStatus] = {}  # per step: its latest change's status
    attempted: set[str] = set()  # steps with at least one attempt row

    def change(name: str, status: TaskStatus, number: int, at: float) -> None:
        # An attempt's start comes from the dispatcher's clock and its end from the
        # worker's; never let a change come out before the one it follows.
        at = max(at, last_at.get(name, at))
        last_at[name] = at
        derived_status[name] = status
        derived.append(HistoryEntry(name, status, number, at))

    for name, number, status_value, started, finished in attempts:
        attempted.add(name)
        status = TaskStatus(status_value)
        if started is not None:
            change(name, _RUNNING, number, started)
        if status is _RUNNING or finished is None:
            continue
        step_status, latest, _, _ = step_rows.get(name, (status, number, None, None))
        if status is _FAILED and (number < latest or step_status is not _FAILED):
            status = _PENDING  # a retry was scheduled after this attempt failed
        change(name, status, number, finished)
    for name, (status, latest, finished, reused) in step_rows.items():
        if reused is not None or not status.is_terminal or finished is None:
            continue
        if name not in attempted:  # ended without running (skipped, refused, cancelled while waiting)
            change(name, status, 0, finished)
        elif derived_status.get(name) is not status:  # ended while waiting for a retry
            change(name, status, latest, finished)
    kept = [HistoryEntry(step, TaskStatus(status), attempt, at) for step, status, attempt, at in stored]
    seen = {(e.step, e.attempt, e.status) for e in kept}
    # Schema 1 stored no attempt numbers (they read as 0): such a row stands for its
    # step's change to that status in whichever attempt.
    seen_any = {(e.step, e.status) for e in kept if e.attempt == 0}
    entries = kept + [e for e in derived
                      if (e.step, e.attempt, e.status) not in seen and (e.step, e.status) not in seen_any]
    # The sort is stable, and each step's derived changes are in their order with times
    # that never go back: changes at the same moment keep the order above.
    entries.sort(key=lambda e: e.at)
    return entries
