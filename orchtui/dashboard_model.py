"""The dashboard's data side: an immutable :class:`DashboardState` rebuilt off the UI thread.

A background thread (memray's live view works the same way) asks a
:class:`StateSource` for each part of the picture at a fixed rate and publishes a new
``DashboardState`` by one attribute assignment. A part that did not change is carried
over as the *same object*, so the UI, which polls :attr:`DashboardModel.state` on its
own timer, redraws a pane only when ``new.part is not old.part``. Neither side ever
calls into the other per task, so the UI's cost does not grow with the task rate.

The thread also finds the newest log of the step the Logs pane follows
(:meth:`DashboardModel.set_log_focus`): a store row and a few ``stat`` calls, which on
the UI thread cost 6-16 ms a look while another thread runs Python (each waits for the
GIL once). Looking again at every build is what catches a retry's new file.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from core.errors import OrchestrationError
from core.live_state import LiveProcess
from core.machine import system_load
from core.models import Project, ResourceUsage, Workflow, WorkflowStatus
from core.snapshot import OrchestratorSnapshot, RunView

__all__ = [
    "CatalogView",
    "MachineView",
    "LogLocation",
    "DashboardState",
    "StateSource",
    "MachineSource",
    "PsutilMachine",
    "FixedMachine",
    "DashboardModel",
]


@dataclasses.dataclass(slots=True, frozen=True)
class CatalogView:
    """What can be run: the workflows directory's workflows and the projects.

    Attributes:
        workflows: the valid workflows of the workflows directory, one per name.
        problems: one line per problem of the directory's files (invalid files, names
            several files use).
        projects: every project with its workflow names.
        names: every workflow name the directory's files declare, in file order: the
            valid ones and those only an invalid file declares (listed, not runnable).
            Empty: the names of ``workflows``.
        refused: ``(name, why)`` for each name that cannot be run by name (several
            files declare it, or its only file is invalid).
    """

    workflows: tuple[Workflow, ...] = ()
    problems: tuple[str, ...] = ()
    projects: tuple[Project, ...] = ()
    names: tuple[str, ...] = ()
    refused: tuple[tuple[str, str], ...] = ()

    def workflow(self, name: str) -> Workflow | None:
        """Return the workflow called ``name``, or None."""
        for workflow in self.workflows:
            if workflow.name == name:
                return workflow
        return None

    def listed(self) -> tuple[str, ...]:
        """Return the names to list, in file order."""
        return self.names or tuple(w.name for w in self.workflows)

    def refusal(self, name: str) -> str | None:
        """Return why ``name`` cannot be run by name (one line), or None when it can."""
        for refused, why in self.refused:
            if refused == name:
                return why
        return None


@dataclasses.dataclass(slots=True, frozen=True)
class MachineView:
    """The machine's live CPU and memory use (percent) with recent history."""

    cpu: float = 0.0
    memory: float = 0.0
    cpu_history: tuple[float, ...] = ()
    memory_history: tuple[float, ...] = ()


@dataclasses.dataclass(slots=True, frozen=True)
class LogLocation:
    """The newest log file of step ``step`` in run ``run_id``: ``path`` is None (and
    ``attempt`` 0) while no attempt of the step has written one."""

    run_id: str
    step: str
    path: Path | None
    attempt: int


@dataclasses.dataclass(slots=True, frozen=True)
class DashboardState:
    """Everything the dashboard shows, at one instant. Parts are shared between versions."""

    version: int
    taken_at: float
    catalog: CatalogView
    orchestrator: OrchestratorSnapshot
    resources: tuple[ResourceUsage, ...]
    machine: MachineView
    runs: tuple[RunView, ...]
    focus: RunView | None = None  # the run the DAG shows, with its per-step maps
    processes: tuple[LiveProcess, ...] = ()  # the other processes running workflows here
    log: LogLocation | None = None  # the newest log of the log focus (set_log_focus)

    @property
    def active_runs(self) -> tuple[RunView, ...]:
        """The runs not yet finished (running or paused), newest first."""
        return tuple(r for r in self.runs if not r.status.is_terminal and r.status is not WorkflowStatus.DRAFT)

    def run(self, run_id: str) -> RunView | None:
        """Return the run ``run_id`` from the history, or None."""
        for run in self.runs:
            if run.run_id == run_id:
                return run
        return None

    @classmethod
    def empty(cls) -> DashboardState:
        return cls(0, 0.0, CatalogView(), OrchestratorSnapshot.empty(), (), MachineView(), ())


class StateSource(Protocol):
    """Where the model reads the parts; returns the same object while a part is unchanged."""

    def load_catalog(self) -> CatalogView: ...

    def orchestrator_snapshot(self) -> OrchestratorSnapshot: ...

    def processes(self) -> tuple[LiveProcess, ...]: ...

    def resource_usage(self) -> tuple[ResourceUsage, ...]: ...

    def run_views(self, focus: str | None = None) -> tuple[RunView, ...]: ...

    def focus_view(self, run_id: str, snapshot: OrchestratorSnapshot) -> RunView | None: ...

    def latest_log(self, run_id: str, step: str) -> tuple[Path | None, int]: ...


class MachineSource(Protocol):
    """Gives the machine's CPU and memory use in percent."""

    def sample(self) -> tuple[float, float]: ...


class PsutilMachine:
    """The real machine, through psutil (``core.machine.system_load``)."""

    def sample(self) -> tuple[float, float]:
        """Return ``(cpu_percent, memory_percent)`` since the previous call."""
        load = system_load()
        return load["cpu_percent"], load["memory_percent"]


@dataclasses.dataclass(slots=True)
class FixedMachine:
    """A machine whose load never moves: snapshot tests and screenshots stay stable."""

    cpu: float = 25.0
    memory: float = 50.0

    def sample(self) -> tuple[float, float]:
        """Return the fixed ``(cpu, memory)`` percentages."""
        return self.cpu, self.memory


class DashboardModel:
    """Builds :class:`DashboardState` from a :class:`StateSource` on a background thread.

    Parameters
    ----------
    source : StateSource
        The core, seen through the dashboard's adapter.
    rate : float
        Builds per second (the ``--refresh`` rate).
    machine : MachineSource, optional
        CPU/memory sampler; :class:`PsutilMachine` by default.
    clock : callable, optional
        Wall-clock time for ``taken_at`` and the machine sampling cadence (frozen in
        snapshot tests, so the machine is sampled once).
    machine_interval : float
        Seconds between machine samples (psutil's CPU figure needs an interval).
    history : int
        Samples kept for the sparklines.
    """

    def __init__(
        self,
        source: StateSource,
        *,
        rate: float = 10.0,
        machine: MachineSource | None = None,
        clock: Callable[[], float] = time.time,
        machine_interval: float = 1.0,
        history: int = 60,
    ) -> None:
        self._source = source
        self._period = 1.0 / max(0.1, rate)
        self._machine = machine or PsutilMachine()
        self._clock = clock
        self._machine_interval = machine_interval
        self._cpu: deque[float] = deque(maxlen=history)
        self._memory: deque[float] = deque(maxlen=history)
        self._next_machine = 0.0
        self._build_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._state = DashboardState.empty()
        self._focus: str | None = None
        self._log_focus: tuple[str, str] | None = None
        self.builds = 0
        self.errors = 0
        self.last_error = ""
        # Why the last build failed, "" once one succeeds: the status bar shows it, so the
        # user knows the view has stopped following the runs.
        self.problem = ""

    @property
    def state(self) -> DashboardState:
        """The latest published state (a plain attribute read: safe from any thread)."""
        return self._state

    def refresh(self) -> DashboardState:
        """Build and publish a state now, on the calling thread, and return it.

        Raises whatever the source raises; the background loop counts such errors instead.
        """
        with self._build_lock:
            state = self._build(self._state)
            self._state = state
            self.builds += 1
            return state

    def set_focus(self, run_id: str | None) -> None:
        """Choose the run whose per-step statuses each state carries (the one the DAG shows)."""
        self._focus = run_id
        self._wake.set()

    def set_log_focus(self, run_id: str | None, step: str | None) -> None:
        """Choose the step whose newest log each state carries (``state.log``); None for
        either stops the lookups. The next build, started at once, has it."""
        self._log_focus = (run_id, step) if run_id is not None and step is not None else None
        self._wake.set()

    def poke(self) -> None:
        """Ask the background thread to build at once (after a user action)."""
        self._wake.set()

    def start(self) -> None:
        """Start the background builder (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="orchtui-dashboard-model", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the background builder and wait up to ``timeout`` seconds for it."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.refresh()
                self.problem = ""
            except Exception as exc:  # a failing source must not kill the live view
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.problem = exc.message if isinstance(exc, OrchestrationError) else self.last_error
            self._wake.wait(max(0.0, self._period - (time.monotonic() - started)))
            self._wake.clear()

    def _build(self, prev: DashboardState) -> DashboardState:
        catalog = self._source.load_catalog()
        if catalog == prev.catalog:
            catalog = prev.catalog
        orchestrator = self._source.orchestrator_snapshot()
        if orchestrator.version == prev.orchestrator.version and orchestrator.max_workers == prev.orchestrator.max_workers:
            orchestrator = prev.orchestrator
        processes = self._source.processes()  # read after the snapshot, which refreshes it
        if processes == prev.processes:
            processes = prev.processes
        resources = self._source.resource_usage()
        if resources == prev.resources:
            resources = prev.resources
        focus_id = self._focus
        runs = self._source.run_views(focus_id)
        if runs is not prev.runs and runs == prev.runs:
            runs = prev.runs
        focus = self._source.focus_view(focus_id, orchestrator) if focus_id is not None else None
        if focus is not prev.focus and focus == prev.focus:  # a 10k-step run: compare only new objects
            focus = prev.focus
        machine = prev.machine
        now = self._clock()  # a frozen clock also freezes the sampling: one sample, stable gauges
        if now >= self._next_machine:
            self._next_machine = now + self._machine_interval
            cpu, memory = self._machine.sample()
            self._cpu.append(cpu)
            self._memory.append(memory)
            machine = MachineView(cpu, memory, tuple(self._cpu), tuple(self._memory))
            if machine == prev.machine:
                machine = prev.machine
        log = self._locate_log(prev.log)
        changed = (
            catalog is not prev.catalog
            or orchestrator is not prev.orchestrator
            or processes is not prev.processes
            or resources is not prev.resources
            or runs is not prev.runs
            or focus is not prev.focus
            or machine is not prev.machine
            or log is not prev.log
        )
        return DashboardState(
            version=prev.version + 1 if changed else prev.version,
            taken_at=self._clock(),
            catalog=catalog,
            orchestrator=orchestrator,
            resources=resources,
            machine=machine,
            runs=runs,
            focus=focus,
            processes=processes,
            log=log,
        )

    def _locate_log(self, prev: LogLocation | None) -> LogLocation | None:
        """Return where the log focus's newest log is (``prev`` itself when unchanged).

        Looked up after the run's statuses: a step that a state shows ended has its last
        log on disk by then.
        """
        focus = self._log_focus
        if focus is None:
            return None
        try:
            path, attempt = self._source.latest_log(*focus)
        except Exception as exc:  # one pane's lookup must not hold back the rest of the state
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            return prev
        log = LogLocation(focus[0], focus[1], path, attempt)
        return prev if log == prev else log
