"""Watching the run store from the dashboard: read only what changed, within a CPU budget.

The dashboard shares the GIL with its model thread, so the model's work per tick must
stay small whatever the runs do. :class:`StoreWatcher` reads the newest runs once,
then asks the store only for the runs whose version moved (``Store.changes_since``)
and merges them in. A running 10k-step run still changes on every commit, and its
steps come with it, so the watcher also spaces its reads by what they cost: after a
read that took *d* seconds it waits at least *d / budget* (20 % of one core by
default) before the next.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable

from core.models import Workflow
from core.snapshot import RunView
from core.errors import StoreError
from core.store import Store
from core.store_records import workflow_or_none
from core.store_recovery import orphaned

__all__ = ["StoreWatcher"]

_PARSED_KEPT = 8  # distinct workflow snapshots kept parsed
log = logging.getLogger(__name__)
_UNREAD = object()


def _without_steps(view: RunView) -> RunView:
    if not view.step_status and not view.step_started_at:
        return view
    return dataclasses.replace(view, step_status={}, step_started_at={})


class StoreWatcher:
    """Keeps the run history, and the per-step state of one focused run, up to date.

    Parameters
    ----------
    store : Store
        The shared run store.
    history : int
        How many of the newest runs are listed.
    min_interval : float
        Seconds between reads at the least.
    budget : float
        The share of one core the reads may take (spaces reads that cost more).
    owner_check : float
        Seconds between looks at whether the unfinished runs' processes still live.
    recovery_timeout : float
        Seconds a recovery waits for another process's write lock before it gives up
        (and is tried again later, less and less often).
    clock : callable
        Monotonic seconds (for the spacing).
    """

    def __init__(
        self,
        store: Store,
        *,
        history: int = 300,
        min_interval: float = 0.1,
        budget: float = 0.2,
        owner_check: float = 2.0,
        recovery_timeout: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.history = history
        self.min_interval = min_interval
        self.budget = budget
        self._clock = clock
        self._version: int | None = None
        self._views: dict[str, RunView] = {}
        self._runs: tuple[RunView, ...] = ()
        self._focus: RunView | None = None
        self._definitions: dict[str, Workflow | None] = {}  # run id -> its workflow
        self._parsed: dict[str, Workflow | None] = {}  # snapshot text -> its workflow, least recent first
        self._next_read = 0.0
        self._next_presence_check = 0.0
        self.presence_check = 5.0  # seconds between looks for runs a prune deleted
        self.reads = 0  # store reads so far (tests and the benchmark look)
        self.owner_check = owner_check
        self.recovery_timeout = recovery_timeout
        self._next_owner_check = 0.0
        self._recovery: threading.Thread | None = None
        # Runs whose owner is gone but which a recovery that ran did not mark (it judged
        # otherwise): not handed to it again. Replaced, never mutated, by the recovery
        # thread alone; the model thread only reads it.
        self._left_alone: frozenset[str] = frozenset()
        self._recovery_failures = 0  # in a row; spaces the retries (written by the recovery thread)
        self._recovery_not_before = 0.0
        self._unreported: queue.SimpleQueue[str] = queue.SimpleQueue()  # failures, for take_recovery_errors

    @property
    def runs(self) -> tuple[RunView, ...]:
        """The newest runs, newest first, without per-step maps (same object while unchanged)."""
        return self._runs

    def poll(self, focus: str | None) -> None:
        """Read what changed since the last poll, if the budget allows one now.

        ``focus`` is the run whose per-step state :meth:`focus_view` should carry; a run
        not focused before is read whole once.

        Raises:
            StoreError: the store cannot be read.
        """
        now = self._clock()
        if focus is not None and (self._focus is None or self._focus.run_id != focus):
            self._read_focus(focus)
        if now < self._next_read:
            return
        started = self._clock()
        problem = self.store.replaced_problem()
        if problem is not None:
            raise StoreError(problem, error_code="STORE_REPLACED")
        if self._version is None:
            version = self.store.version()
            changed = [r.to_view() for r in self.store.list_runs(limit=self.history)]
        else:
            version, changed = self.store.changes_since(self._version, steps_of=() if focus is None else (focus,))
        self._version = version
        self.reads += 1
        if changed:
            for view in changed:
                if focus is not None and view.run_id == focus:
                    self._focus = view
                self._views[view.run_id] = _without_steps(view)
            ordered = sorted(self._views.values(), key=lambda v: v.started_at or 0.0, reverse=True)[: self.history]
            self._views = {v.run_id: v for v in ordered}
            self._runs = tuple(ordered)
        if now >= self._next_presence_check and self._views:
            self._next_presence_check = now + self.presence_check
            self._forget_deleted_runs()
        cost = self._clock() - started
        self._next_read = now + max(self.min_interval, cost / self.budget)
        self._recover_dead_owners(now)

    def _forget_deleted_runs(self) -> None:
        """Drop the listed runs that are no longer stored (pruned by another process)."""
        kept = self.store.stored_run_ids(self._views)
        if len(kept) == len(self._views):
            return
        self._views = {run_id: view for run_id, view in self._views.items() if run_id in kept}
        self._runs = tuple(view for view in self._runs if view.run_id in kept)
        if self._focus is not None and self._focus.run_id not in kept:
            self._focus = None

    def _recover_dead_owners(self, now: float) -> None:
        """Start crash recovery on its own thread when a listed unfinished run's owner died.

        Recovery stops the dead process's leftover steps, which can take seconds of
        grace: on the model thread that would freeze every pane. One recovery at a time.
        """
        if self.store.read_only or now < self._next_owner_check or now < self._recovery_not_before:
            return
        if self._recovery is not None and self._recovery.is_alive():
            return
        self._next_owner_check = now + self.owner_check
        left_alone = self._left_alone
        dead = orphaned(view for view in self._runs if view.run_id not in left_alone)
        if dead:
            self._recovery = threading.Thread(target=self._recover, args=(dead,),
                                              name="orchtui-dashboard-recovery", daemon=True)
            self._recovery.start()

    def _recover(self, dead: list[str]) -> None:
        try:
            marked = set(self.store.recover_interrupted(timeout=self.recovery_timeout))
        except StoreError as exc:  # busy or unwritable: try again later, less and less often
            self._recovery_failures += 1
            self._recovery_not_before = self._clock() + min(60.0, self.owner_check * 2 ** self._recovery_failures)
            self._unreported.put(exc.message)
            log.warning("the runs of dead processes cannot be marked interrupted: %s", exc.message)
            return
        self._recovery_failures = 0
        # Recovery looked and did not mark these (another host's clock, a pid it judged
        # alive): asking again every couple of seconds would not change its mind.
        self._left_alone = self._left_alone | {run_id for run_id in dead if run_id not in marked}

    def take_recovery_errors(self) -> list[str]:
        """Return why marking the runs of dead processes failed, each failure once, since
        the last call (the dashboard shows them as notifications)."""
        errors = []
        while not self._unreported.empty():
            errors.append(self._unreported.get_nowait())
        return errors

    def wait_for_recovery(self, timeout: float | None = None) -> bool:
        """Wait for a recovery in progress to end; True when none is left running."""
        recovery = self._recovery
        if recovery is not None:
            recovery.join(timeout)
        return recovery is None or not recovery.is_alive()

    def _read_focus(self, run_id: str) -> None:
        view = self.store.get_run_view(run_id)
        if view is None:
            self._focus = None
            return
        self._definitions[run_id] = self._definition(self.store.definition_text(run_id))
        self._focus = view

    def _definition(self, text: str | None) -> Workflow | None:
        """Return the workflow stored as ``text``, parsed once per distinct text: runs of an
        unchanged workflow store the same text and so share one object, which the UI
        recognises by identity instead of comparing 10k steps (and parsing it again would
        cost ~100 ms and 40k objects for the garbage collector to trace)."""
        if text is None:
            return None
        known = self._parsed.pop(text, _UNREAD)
        workflow = workflow_or_none(text) if known is _UNREAD else known
        self._parsed[text] = workflow  # the most recent last
        if len(self._parsed) > _PARSED_KEPT:
            del self._parsed[next(iter(self._parsed))]
        return workflow

    def focus_view(self, run_id: str) -> RunView | None:
        """Return the focused run with its per-step maps, or None if it is not ``run_id``."""
        focus = self._focus
        return focus if focus is not None and focus.run_id == run_id else None

    def known_definition(self, run_id: str) -> Workflow | None:
        """Return the workflow run ``run_id`` used, or None until a :meth:`poll` focused on
        it has read it. Reads nothing: safe to call from the UI thread while the model
        thread polls (a dict lookup)."""
        return self._definitions.get(run_id)
