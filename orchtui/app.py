"""The orchtui dashboard: a Textual app for watching and launching workflow runs.

Data flows one way. A :class:`~orchtui.dashboard_model.DashboardModel` thread builds an
immutable :class:`~orchtui.dashboard_model.DashboardState` from the core at a fixed rate;
the app polls it with ``set_interval`` at ``refresh`` Hz and hands each pane only the part
that changed (parts are shared between states, so ``is`` tells). User actions go the
other way, through :class:`~orchtui.dashboard_engine.DashboardEngine`, and then poke the
model so the result shows on the next frame.

Time is injectable: ``frozen_time`` fixes the wall clock used for elapsed figures, and
``machine`` fixes the CPU/memory source, so screenshots are reproducible.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import events, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.content import Content
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Input, OptionList, Static
from textual.notifications import SeverityLevel
from textual.worker import get_current_worker

from core.errors import OrchestrationError
from core.models import Project, TaskStatus, Workflow
from core.snapshot import RunView
from core.text import terminal_safe

from .commands import CreateProjectCommands, OpenRunCommands, RunWorkflowCommands
from .dashboard_engine import DashboardEngine
from .dashboard_model import DashboardModel, DashboardState, LogLocation, MachineSource
from .heap import HeapFreezer
from .messages import GraphBuilt, NodeHighlighted, NodeOpened, RunChosen, WorkflowChosen
from .screens.confirm import ConfirmScreen
from .screens.details import DetailsScreen
from .screens.forms import CreateProjectScreen, ParamFormScreen
from .screens.help import HelpScreen
from .screens.log_screen import LogScreen
from .screens.main_screen import DashboardScreen
from .widgets.dag_view import DagLayout, DagModel, DagView, PaneFit, dag_model_from_workflow, fitted_layout
from .widgets.key_hints import KeyHints
from .widgets.logs import LogsPane
from .widgets.projects import ProjectsPane
from .widgets.queues import QueuesPane
from .widgets.resources import ResourcesPane
from .widgets.runs import RunsPane
from .widgets.status import run_glyph, run_style

__all__ = ["OrchTUIApp", "PANES"]

# key -> (widget id, border title); the number keys focus them in this order
PANES: tuple[tuple[str, str], ...] = (
    ("projects", "1 Projects"),
    ("dag", "2 Live DAG"),
    ("queues", "3 Queues"),
    ("resources", "4 Resources"),
    ("runs", "5 Runs"),
)

_REMAP_HINT = (
    "Remap any key by its binding id: `orchtui dashboard --keymap keys.yaml` with lines such as "
    "`orchtui.run: ctrl+r`."
)
_LOG_FOLLOW_DELAY = 0.15  # seconds the DAG cursor rests before the Logs pane follows it
_NO_STATUSES: dict[str, TaskStatus] = {}
_NO_STARTED: dict[str, float] = {}
# Levelling a graph (``dag_model_from_workflow``) takes ~12 us a step: up to this many
# steps it is built on the UI thread (~12 ms, and no frame of delay), a larger one on a
# worker thread, so selecting a 10k-step workflow does not freeze the screen for ~150 ms.
_INLINE_GRAPH_STEPS = 1000


def _display_path(path: Path) -> str:
    """Return ``path`` relative to the working directory when inside it, else with ``~``."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve())) + "/"
    except ValueError:
        pass
    home = Path.home()
    try:
        return "~/" + str(path.resolve().relative_to(home))
    except ValueError:
        return str(path)


def _focus_now(widget: Widget) -> None:
    """Focus ``widget`` before the next key is handled.

    ``Widget.focus()`` defers the change to after the pending messages, so keys that
    arrive in one read (typed fast, pasted, or batched by an SSH link) such as ``5j``
    or ``/flaky`` would go to the pane that had focus before.
    """
    widget.screen.set_focus(widget)


class OrchTUIApp(App[None]):
    """The dashboard.

    Parameters
    ----------
    engine : DashboardEngine, optional
        The core seen through the dashboard; built from ``state_dir`` and
        ``workflows_dir`` when not given (and then closed when the app exits).
    state_dir, workflows_dir : Path, optional
        Where runs are stored and where workflow files are read (default: settings).
    refresh : float
        How many times a second the screen takes the newest state (``--refresh``).
    frozen_time : float, optional
        A fixed wall-clock time for elapsed figures (snapshot tests, screenshots).
    machine : MachineSource, optional
        CPU/memory sampler; fixed in snapshot tests.
    keymap : mapping, optional
        ``{binding id: keys}`` overrides.
    run_mode : {"process", "inline"}
        For the engine built here: runs in detached processes (default; they survive the
        dashboard) or in this process.
    """

    CSS_PATH = "app.tcss"
    TITLE = "orchtui"
    COMMANDS = App.COMMANDS | {RunWorkflowCommands, OpenRunCommands, CreateProjectCommands}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (36, "-tall")]

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "focus_pane('projects')", "Projects", show=False, id="orchtui.focus_projects"),
        Binding("2", "focus_pane('dag')", "DAG", show=False, id="orchtui.focus_dag"),
        Binding("3", "focus_pane('queues')", "Queues", show=False, id="orchtui.focus_queues"),
        Binding("4", "focus_pane('resources')", "Resources", show=False, id="orchtui.focus_resources"),
        Binding("5", "focus_pane('runs')", "Runs", show=False, id="orchtui.focus_runs"),
        Binding("tab", "app.focus_next", "Next pane", show=False, id="orchtui.focus_next"),
        Binding("shift+tab", "app.focus_previous", "Previous pane", show=False, id="orchtui.focus_previous"),
        Binding("r", "run_workflow", "Run", id="orchtui.run"),
        Binding("c", "cancel_run", "Cancel", id="orchtui.cancel_run"),
        Binding("x", "cancel_task", "Stop step", id="orchtui.cancel_task"),
        Binding("R", "resume_run", "Resume", id="orchtui.resume"),
        Binding("l", "open_logs", "Logs", id="orchtui.logs"),
        Binding("m", "write_mermaid", "Mermaid", show=False, id="orchtui.mermaid"),
        Binding("slash", "start_filter", "Filter", id="orchtui.filter"),
        Binding("space", "toggle_pause", "Pause", show=False, id="orchtui.pause"),
        Binding("question_mark", "show_help", "Help", id="orchtui.help"),
        Binding("colon", "command_palette", "Palette", show=False, id="orchtui.palette"),
        Binding("ctrl+p", "command_palette", "Palette", show=False, priority=True, id="orchtui.palette_ctrl_p"),
        Binding("q", "request_quit", "Quit", id="orchtui.quit"),
    ]

    def __init__(
        self,
        engine: DashboardEngine | None = None,
        *,
        state_dir: Path | None = None,
        workflows_dir: Path | None = None,
        refresh: float = 10.0,
        frozen_time: float | None = None,
        machine: MachineSource | None = None,
        keymap: Mapping[str, str] | None = None,
        run_mode: str = "process",
    ) -> None:
        super().__init__()
        self._owns_engine = engine is None
        self.engine = engine or DashboardEngine(state_dir=state_dir, workflows_dir=workflows_dir, run_mode=run_mode)
        self.refresh_rate = max(0.5, refresh)
        self.clock: Callable[[], float] = (lambda: frozen_time) if frozen_time is not None else time.time
        self.model = DashboardModel(self.engine, rate=self.refresh_rate, machine=machine, clock=self.clock)
        self.paused = False
        self.view_workflow: str | None = None  # what the DAG shows: a workflow...
        self.view_run: str | None = None  # ...and, when set, one of its runs
        # Each pane keeps its own filter: one shared text once applied a Runs filter to
        # Projects when the bar opened there, and left Runs filtered out of sight.
        self.filters: dict[str, str] = {"projects": "", "dag": "", "runs": ""}
        self._shown = DashboardState.empty()
        self._dag_key: tuple[str | None, str | None] = (None, None)  # selection the DAG shows
        self._dag_workflow: Workflow | None = None  # the workflow whose graph the DAG shows
        self._dag_pending: Workflow | None = None  # the one a worker is building the graph of
        # False while the DAG shows a stand-in for the selected run's own definition (the
        # graph already shown, or the catalog's), which the model thread has not read yet.
        self._dag_settled = True
        self._filter_target = "projects"
        self._status_text = ""
        self._shown_dir: tuple[Path | None, str] = (None, "")  # the workflows directory, as the status bar says it
        self.frames = 0  # states applied to the screen (tests and the benchmark read it)
        self._launch_check = 0.0
        self._log_follow: Timer | None = None
        # What the Logs pane was last pointed at from a state: its log location, and the
        # focused run whose step status its "no log" note followed.
        self._log_seen: tuple[LogLocation | None, RunView | None] = (None, None)
        # A full collection traced the whole heap (100-150 ms for a 10k-step run): see
        # orchtui.heap. A modal screen or a graph being built (networkx graphs are cyclic)
        # holds cycles that will be dropped: no freeze meanwhile.
        self._graph_builders: set[int] = set()  # threads building a graph now (set.add is atomic)
        self.heap = HeapFreezer(lambda: len(self.screen_stack) == 1 and not self._graph_builders)
        if keymap:
            self.set_keymap(dict(keymap))

    # ------------------------------------------------------------------ layout

    def get_default_screen(self) -> DashboardScreen:
        """Return the dashboard's main screen (see :class:`DashboardScreen`)."""
        return DashboardScreen(id="_default")

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Textual's notify, without markup by default: our messages quote paths, steps'
        errors and typed text, and ``[/data]`` in them would crash the app. Control
        characters show as ``\\xNN``: a step's error must not send escape sequences."""
        super().notify(terminal_safe(message), title=title, severity=severity, timeout=timeout, markup=markup)

    def compose(self) -> ComposeResult:
        yield Static(id="status-bar")
        with Horizontal(id="top"):
            yield ProjectsPane(id="projects")
            yield DagView(id="dag")
            yield LogsPane(id="logs")
        with Horizontal(id="bottom"):
            yield QueuesPane(id="queues")
            yield ResourcesPane(id="resources")
            yield RunsPane(id="runs")
        yield Input(placeholder="filter (enter keeps it, esc clears)", id="filter-bar")
        yield KeyHints(id="key-hints")

    def on_mount(self) -> None:
        # Keep references: the app's queries would search whichever screen is on top.
        self.projects_pane = self.query_one(ProjectsPane)
        self.dag_view = self.query_one(DagView)
        self.logs_pane = self.query_one(LogsPane)
        self.queues_pane = self.query_one(QueuesPane)
        self.resources_pane = self.query_one(ResourcesPane)
        self.runs_pane = self.query_one(RunsPane)
        self.status_bar = self.query_one("#status-bar", Static)
        self.filter_bar = self.query_one("#filter-bar", Input)
        self._panes: dict[str, Widget] = {
            "projects": self.projects_pane,
            "dag": self.dag_view,
            "queues": self.queues_pane,
            "resources": self.resources_pane,
            "runs": self.runs_pane,
        }
        for pane_id, title in PANES:
            widget = self._panes[pane_id]
            widget.add_class("pane")
            widget.border_title = title
        logs = self.logs_pane
        logs.add_class("pane")
        logs.border_title = "Logs"
        logs.can_focus = False
        self._show_key_hints()
        self.model.refresh()
        self._apply(self.model.state)
        self.heap.install()
        self.heap.freeze_now()  # the widget tree and the catalog live as long as the app
        self.model.start()
        self.set_interval(1.0 / self.refresh_rate, self._tick)
        self.projects_pane.focus()

    async def on_unmount(self) -> None:
        self.heap.uninstall()
        self.model.stop()
        if self._owns_engine:
            self.engine.close()

    def _show_key_hints(self) -> None:
        keymap = self._keymap
        shown = []
        palette = "ctrl+p"
        for binding in self.BINDINGS:
            if not isinstance(binding, Binding):
                continue
            keys = keymap.get(binding.id, binding.key) if binding.id else binding.key
            display = self.get_key_display(Binding(keys.split(",")[0], binding.action, binding.description))
            if binding.id == "orchtui.palette_ctrl_p":
                palette = display
            elif binding.show:
                shown.append((display, binding.description))
        self.query_one(KeyHints).show_keys(shown, palette)

    def set_keymap(self, keymap: dict[str, str]) -> None:
        """Remap bindings by id (``{"orchtui.run": "ctrl+r"}``) and redraw the key bar."""
        super().set_keymap(keymap)
        if self.is_running:
            self._show_key_hints()

    # --------------------------------------------------------- applying state

    def _tick(self) -> None:
        state = self.model.state
        if not self.paused:
            self._apply(state)
        self._sync_log(state)  # paused too: the Logs pane follows the cursor, and its step's logs
        now = time.monotonic()
        if self.logs_pane.display:
            self.logs_pane.poll()
        if now - self._launch_check >= 1.0:
            self._launch_check = now
            if self.model.problem or self._status_text.startswith("orchtui ✖"):
                self._update_status_bar(self._shown)  # a failing build publishes no new state
            for message in self.engine.failures_to_report():
                self.notify(message, severity="error", timeout=15)

    def _apply(self, state: DashboardState) -> None:
        """Hand each pane its part of ``state`` (each pane skips parts it already shows)."""
        now = self.clock()
        shown = self._shown
        if state.catalog is not shown.catalog:
            self.projects_pane.show_catalog(state.catalog)
        self.queues_pane.show(state.orchestrator, now, state.processes)
        self.resources_pane.show(state.resources, state.machine, state.processes)
        self.runs_pane.show(state.runs, now)
        self._update_dag(state, now)
        self._update_status_bar(state)
        self._shown = state
        self.frames += 1

    def _viewed_run(self, state: DashboardState | None = None) -> RunView | None:
        """The run the DAG shows: with per-step maps when the model has caught up, else from the list."""
        if self.view_run is None:
            return None
        state = state or self.model.state
        if state.focus is not None and state.focus.run_id == self.view_run:
            return state.focus
        return state.run(self.view_run)

    def _workflow_for_view(self) -> tuple[Workflow | None, bool]:
        """Return the workflow the DAG should show, and whether it is the final one.

        A stored run's own definition is read from the store by the model thread (with
        the run's steps, when the run becomes the focus), never here on the UI thread: a
        10k-step run takes ~100 ms to read. Until it is known, the graph already shown
        for the same workflow, else the catalog's definition, stands in (not final).
        """
        catalog = self.model.state.catalog
        if self.view_run is not None:
            workflow = self.engine.workflow_for_run(self.view_run)
            if workflow is not None:
                return workflow, True
            shown = self._dag_workflow
            if shown is not None and shown.name == self.view_workflow:
                return shown, False  # most likely the same graph: keep it until the run's arrives
            return (catalog.workflow(self.view_workflow) if self.view_workflow is not None else None), False
        if self.view_workflow is not None:
            return catalog.workflow(self.view_workflow), True
        return None, True

    def _update_dag(self, state: DashboardState, now: float) -> None:
        dag = self.dag_view
        key = (self.view_workflow, self.view_run)
        edited = self.view_run is None and state.catalog is not self._shown.catalog  # its file may have changed
        if key != self._dag_key or not self._dag_settled or edited:
            # The selection changed (or its definition arrived or changed): find its definition.
            self._dag_key = key
            workflow, self._dag_settled = self._workflow_for_view()
            if workflow is not None:
                self._show_graph(workflow)
                dag.border_title = Content(self._dag_title(workflow))
            elif self._dag_settled and self.view_workflow is not None:  # listed, but its file is invalid
                self._dag_pending = self._dag_workflow = None
                dag.show_nothing(state.catalog.refusal(self.view_workflow) or "")
                # Content, not markup: an invalid file's name is unchecked text ("nightly[/]").
                dag.border_title = Content(f"2 Live DAG · {self.view_workflow} (cannot be shown)")
        run = self._viewed_run(state)
        if run is not None:
            dag.set_statuses(run.step_status, run.step_started_at, now)
        else:
            dag.set_statuses(_NO_STATUSES, _NO_STARTED, now)

    def _show_graph(self, workflow: Workflow) -> None:
        """Show ``workflow``'s graph in the DAG: built here when small, else by a worker
        thread while the pane keeps the graph it shows (see ``_INLINE_GRAPH_STEPS``)."""
        if workflow is self._dag_workflow:
            self._dag_pending = None  # back to the graph on screen: drop a build under way
            return
        if workflow is self._dag_pending:
            return
        self._dag_pending = workflow
        if len(workflow.steps) <= _INLINE_GRAPH_STEPS:
            self._graph_built(workflow, *self._graph_of(workflow, self._dag_workflow, self.dag_view.model))
        else:
            self._build_graph(workflow, self._dag_workflow, self.dag_view.model, self.dag_view.fit())

    def _graph_of(self, workflow: Workflow, shown: Workflow | None, shown_model: DagModel) -> tuple[DagModel, str]:
        """Return the Live DAG's model of ``workflow`` and an error ('' when there is none).

        ``shown_model`` itself when ``workflow`` equals ``shown``, the workflow it was built
        from (a new run of the same graph keeps its layout); an empty model and the reason
        when the steps do not form a DAG. Runs on the UI thread or a worker; heap freezes
        wait meanwhile (the networkx graph it builds and drops is cyclic).
        """
        if shown is not None and workflow == shown:
            return shown_model, ""
        builder = threading.get_ident()
        self._graph_builders.add(builder)
        try:
            return dag_model_from_workflow(workflow), ""
        except OrchestrationError as exc:
            return DagModel(workflow.name, (), {}, {}), exc.message
        finally:
            self._graph_builders.discard(builder)

    # A fixed description: by default Textual describes a worker by the repr of its
    # arguments, on the UI thread, and a 10k-step workflow's repr takes ~100 ms.
    @work(thread=True, exclusive=True, group="dag-graph", description="laying out the Live DAG")
    def _build_graph(self, workflow: Workflow, shown: Workflow | None, shown_model: DagModel, fit: PaneFit) -> None:
        model, error = self._graph_of(workflow, shown, shown_model)
        worker = get_current_worker()
        if worker.is_cancelled:  # a newer selection replaced it: skip the layout too
            return
        # Laid out here too, for the pane as it was when the build began (the pane lays it
        # out again in the rare case that its size changed meanwhile).
        layout = fitted_layout(model, fit) if model is not shown_model else None
        if not worker.is_cancelled:
            self.post_message(GraphBuilt(workflow, model, error, layout))  # thread-safe, unlike the rest

    def on_graph_built(self, message: GraphBuilt) -> None:
        self._graph_built(message.workflow, message.model, message.error, message.layout)

    def _graph_built(self, workflow: Workflow, model: DagModel, error: str, layout: DagLayout | None = None) -> None:
        if workflow is not self._dag_pending:
            return  # the selection moved on while it was built
        self._dag_pending = None
        if error:
            self.notify(error, severity="error")
        self.dag_view.show(model, layout)
        self._dag_workflow = workflow
        self.dag_view.border_title = Content(self._dag_title(workflow))
        self.heap.request()  # the graph and its layout stay until another is chosen

    def _dag_title(self, workflow: Workflow) -> str:
        title = f"2 Live DAG · {workflow.name}"
        title += " (no run yet)" if self.view_run is None else f" · {self.view_run}"
        if workflow is self._dag_pending:
            title += f" · laying out {len(workflow.steps):,} steps…"
        return title

    def _update_status_bar(self, state: DashboardState) -> None:
        active = len(state.active_runs)
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("orchtui ", "bold")
        problem = self.model.problem
        if problem:  # the view no longer follows the runs: say so where "live" would be
            text.append(f"✖ {problem}", "bold red")
        else:
            text.append("‖ paused" if self.paused else "● live", "bold yellow" if self.paused else "green")
        text.append(f" │ {active} active")
        run = self._viewed_run(state)
        if run is not None:
            text.append(" │ ")
            text.append(f"{run_glyph(run.status)} {run.run_id} {run.status.value}", run_style(run.status))
        shown_filters = [(pane, text_) for pane, text_ in self.filters.items() if text_]
        if shown_filters:
            text.append(" │ " + ", ".join(f"{pane} filter: {text_}" for pane, text_ in shown_filters), "italic")
        directory = self.engine.workflows_dir
        if directory != self._shown_dir[0]:  # resolving it stats every part of the path: once
            self._shown_dir = (directory, _display_path(directory))
        text.append(f" │ {self._shown_dir[1]}", "dim")
        if text.plain != self._status_text:  # repaint the bar only when its words change
            self._status_text = text.plain
            self.status_bar.update(text, layout=False)

    # ------------------------------------------------------------ selection

    def on_workflow_chosen(self, message: WorkflowChosen) -> None:
        self.view_workflow = message.workflow
        latest = next((r for r in self.model.state.runs if r.workflow == message.workflow), None)
        self.view_run = latest.run_id if latest is not None else None
        self._apply_now()
        if self.dag_view.cursor is not None:
            self._follow_node_log(self.dag_view.cursor)

    def on_option_list_option_selected(self, message: OptionList.OptionSelected) -> None:
        if message.option_list.id == "projects":
            _focus_now(self.dag_view)

    def on_run_chosen(self, message: RunChosen) -> None:
        runs = self.runs_pane
        if not message.opened and not runs.has_focus:
            return  # the table moved its cursor while rebuilding, not the user
        self.open_run(message.run_id, focus_dag=message.opened)

    def on_node_highlighted(self, message: NodeHighlighted) -> None:
        # The cursor's frame goes out at once; the log follows when the cursor rests, so
        # a held j/k does not reload a log file (and relayout the pane) per step passed.
        if self._log_follow is not None:
            self._log_follow.stop()
        step = message.step
        self._log_follow = self.set_timer(_LOG_FOLLOW_DELAY, lambda: self._follow_node_log(step))

    def on_node_opened(self, message: NodeOpened) -> None:
        self._open_details(message.step)

    def open_run(self, run_id: str, *, focus_dag: bool = True) -> None:
        """Show run ``run_id`` in the Live DAG (and focus it when ``focus_dag``)."""
        run = self.model.state.run(run_id)
        self.view_run = run_id
        if run is not None:
            self.view_workflow = run.workflow
        self._apply_now()
        dag = self.dag_view
        if dag.cursor is not None:
            self._follow_node_log(dag.cursor)
        if focus_dag:
            _focus_now(dag)

    def _apply_now(self) -> None:
        """Show the current selection at once instead of on the next frame.

        With what the latest state already holds: the model thread, woken by the new
        focus, reads the run's steps from the store and the next frame shows them. Not a
        build here: it would read the store on the UI thread (~100 ms for a 10k-step run)
        and wait for a build the model thread may be in the middle of.
        """
        self.model.set_focus(self.view_run)
        self._shown = DashboardState.empty()
        self._apply(self.model.state)

    def _follow_node_log(self, step: str) -> None:
        """Have the Logs pane follow ``step`` of the viewed run.

        The model thread finds the step's newest log from now on, at every build (so a
        retry's new file is picked up too), and :meth:`_sync_log` shows what it found at
        the next frame: until then the pane keeps what it showed.
        """
        self.model.set_log_focus(self.view_run, step)
        if self.view_run is None:
            self.logs_pane.follow_file(None, None, "no run selected")
        else:
            self._sync_log(self.model.state)

    def _sync_log(self, state: DashboardState) -> None:
        """Point the Logs pane at ``state.log`` when that is news and the log of the step under
        the cursor; a pane without a log also takes the note that the step's status gives."""
        seen_log, seen_focus = self._log_seen
        log = state.log
        if log is seen_log and (state.focus is seen_focus or not self.logs_pane.waiting):
            return
        step = self.dag_view.cursor
        if log is None or step is None or (log.run_id, log.step) != (self.view_run, step):
            return  # the cursor moved on: the model's next look is at its step
        note = "" if log.path is not None else self._no_log_note(step, state)
        self.logs_pane.follow_file(log.path, (log.run_id, step, log.attempt), note)
        self._log_seen = (log, state.focus)

    def _no_log_note(self, step: str, state: DashboardState | None = None) -> str:
        run = self._viewed_run(state)
        status = run.step_status.get(step, TaskStatus.PENDING) if run is not None else TaskStatus.PENDING
        if status is TaskStatus.SKIPPED:
            return f"{step} was skipped: it has no log"
        if status.is_terminal:
            return f"{step} wrote no log ({status.value})"
        return f"{step}: no log yet; it shows here as soon as the step writes one"

    # ---------------------------------------------------------------- actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # App keys act on the dashboard only, never through a modal or the log screen.
        if action in {"command_palette", "quit"}:
            return True
        return self.screen is self.screen_stack[0]

    def action_focus_pane(self, pane_id: str) -> None:
        _focus_now(self._panes[pane_id])

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused:
            self._apply_now()
        else:
            self._update_status_bar(self._shown)

    def action_show_help(self) -> None:
        bindings = [b for b in self.BINDINGS if isinstance(b, Binding)]
        bindings += [b for b in DagView.BINDINGS if isinstance(b, Binding)]
        bindings += [b for b in LogScreen.BINDINGS if isinstance(b, Binding)]
        keymap = self._keymap
        shown = [
            Binding(keymap.get(b.id, b.key) if b.id else b.key, b.action, b.description, id=b.id) for b in bindings
        ]
        self.push_screen(HelpScreen(shown, _REMAP_HINT))

    # run / cancel / resume ---------------------------------------------------

    def action_run_workflow(self) -> None:
        name = self.view_workflow or self.projects_pane.selected_workflow
        if name is None:
            self.notify("Pick a workflow in Projects (1) first.", severity="warning")
            return
        self.request_run(name)

    def request_run(self, name: str) -> None:
        """Ask for ``name``'s parameters, then start it (the palette's "Run workflow …")."""
        catalog = self.model.state.catalog
        refused = catalog.refusal(name)  # said now, not after the form was filled in
        if refused is not None:
            self.notify(f"{name} cannot be run: {refused}", severity="error", timeout=15)
            return
        workflow = catalog.workflow(name)
        if workflow is None:
            self.notify(f"No workflow called {name!r} in {self.engine.workflows_dir}.", severity="error")
            return

        def start(params: dict[str, Any] | None) -> None:
            if params is None:
                return
            try:
                run_id = self.engine.start_run(name, params)
            except OrchestrationError as exc:
                self.notify(exc.message, severity="error")
                return
            self.model.refresh()
            self.view_workflow = name
            self.open_run(run_id)
            where = "" if self.engine.run_mode == "inline" else " in its own process (it goes on if you quit)"
            self.notify(f"Started {name} as {run_id}{where}.")

        self.push_screen(ParamFormScreen(workflow), start)

    def action_cancel_run(self) -> None:
        run = self._viewed_run()
        if run is None or run.status.is_terminal:
            self.notify("No active run selected: open one in Runs (5) or start one with r.", severity="warning")
            return

        self._confirm_cancel(
            f"Cancel run {run.run_id} ({run.workflow})?", "Cancel run", lambda: self.engine.cancel_run(run.run_id),
            f"Cancelling {run.run_id}.", f"Asked for {run.run_id} to be cancelled; no live process claims it yet.",
        )

    def action_cancel_task(self) -> None:
        run = self._viewed_run()
        step = self.dag_view.cursor
        if run is None or step is None or run.step_status.get(step, TaskStatus.PENDING).is_terminal:
            self.notify("Select a step of an active run that has not finished.", severity="warning")
            return

        self._confirm_cancel(
            f"Cancel step {step} of {run.run_id}?", "Cancel step", lambda: self.engine.cancel_step(run.run_id, step),
            f"Cancelling {step}.", f"Asked for {step} to be cancelled; no live process claims {run.run_id} yet.",
        )

    def _confirm_cancel(self, question: str, label: str, cancel: Callable[[], bool], owned_note: str,
                        unowned_note: str) -> None:
        """Ask ``question``; on yes call ``cancel`` (True when a live process owns the run) and say what happened."""

        def answer(yes: bool | None) -> None:
            if not yes:
                return
            try:
                owned = cancel()
            except OrchestrationError as exc:
                self.notify(exc.message, severity="error")
                return
            self.notify(owned_note if owned else unowned_note)
            self.model.poke()

        self.push_screen(ConfirmScreen(question, confirm_label=label), answer)

    def action_resume_run(self) -> None:
        run = self._viewed_run()
        if run is None or not run.status.is_terminal or run.status.value == "completed":
            self.notify("Select a failed, cancelled or interrupted run to resume.", severity="warning")
            return
        try:
            new_run = self.engine.resume_run(run.run_id)
        except OrchestrationError as exc:
            self.notify(exc.message, severity="error")
            return
        self.model.refresh()
        self.open_run(new_run)
        self.notify(f"Resumed {run.run_id} as {new_run}.")

    # logs, details, mermaid ------------------------------------------------------

    def action_open_logs(self) -> None:
        step = self.dag_view.cursor
        if self.view_run is None or step is None:
            self.notify("Select a step of a run first.", severity="warning")
            return
        run_id = self.view_run
        # The model's look when it is at this step (the cursor rested), else one look now.
        path, attempt = self._located_log(run_id, step) or self.engine.latest_log(run_id, step)
        note = "" if path is not None else self._no_log_note(step)
        log_file = path or self.engine.log_path(run_id, step, max(1, attempt))
        screen = LogScreen(log_file, (run_id, step, max(1, attempt)), rate=self.refresh_rate, note=note,
                           locate=lambda: self._located_log(run_id, step) or (None, 0))
        self.push_screen(screen, lambda _: self._log_screen_closed())

    def _located_log(self, run_id: str, step: str) -> tuple[Path | None, int] | None:
        """Return ``(path or None, attempt)`` of the newest log of ``step`` in ``run_id`` as the
        model thread found it, or None when its latest state holds no look at that step;
        the model then looks at that step from its next build on."""
        log = self.model.state.log
        if log is None or (log.run_id, log.step) != (run_id, step):
            self.model.set_log_focus(run_id, step)
            return None
        return log.path, log.attempt

    def _log_screen_closed(self) -> None:
        """Give the log focus back to the cursor (the log screen may have taken it elsewhere)."""
        if self.dag_view.cursor is not None:
            self._follow_node_log(self.dag_view.cursor)

    def _open_details(self, step: str) -> None:
        workflow = self._workflow_for_view()[0]
        if workflow is None:
            return
        try:
            detail = self.engine.step_detail(workflow, self.view_run, step)
        except OrchestrationError as exc:
            self.notify(exc.message, severity="error")
            return

        def after(choice: str | None) -> None:
            if choice == "logs":
                self.action_open_logs()

        run_id = self.view_run
        reload = None if run_id is None else (lambda: self.engine.step_detail(workflow, run_id, step))
        self.push_screen(DetailsScreen(detail, reload), after)

    def action_write_mermaid(self) -> None:
        workflow = self._workflow_for_view()[0]
        if workflow is None:
            self.notify("Pick a workflow or run first.", severity="warning")
            return
        run = self._viewed_run()
        try:
            path = self.engine.write_mermaid(workflow, run)
        except (OrchestrationError, OSError) as exc:
            self.notify(getattr(exc, "message", str(exc)), severity="error")
            return
        self.notify(f"Mermaid graph written to {path}", title="mermaid", timeout=8)

    # filter ----------------------------------------------------------------------

    def action_start_filter(self) -> None:
        focused = self.focused
        self._filter_target = focused.id if focused is not None and focused.id in {"projects", "dag", "runs"} else "projects"
        bar = self.filter_bar
        bar.add_class("-visible")
        bar.value = self.filters[self._filter_target]
        _focus_now(bar)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter-bar":
            self._set_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter-bar":
            self._close_filter()

    def on_key(self, event: events.Key) -> None:
        if event.key == "escape" and self.focused is self.filter_bar:
            self._set_filter("")
            self._close_filter()
            event.stop()

    def _set_filter(self, text: str) -> None:
        target = self._filter_target
        self.filters[target] = text
        if target == "dag":
            self.dag_view.set_filter(text)
        elif target == "runs":
            self.runs_pane.set_filter(text)
        else:
            self.projects_pane.set_filter(text)
        self._update_status_bar(self._shown)

    def _close_filter(self) -> None:
        self.filter_bar.remove_class("-visible")
        _focus_now(self._panes[self._filter_target])

    # projects ----------------------------------------------------------------------

    def request_create_project(self, name: str = "") -> None:
        """Ask for a project's details and create it (the palette's "Create project …")."""

        def created(project: Project | None) -> None:
            if project is None:
                return
            self.model.poke()
            self.notify(f"Created project {project.name} in {project.path}.")

        # The form creates the project itself, so what is refused shows in it, with what was typed.
        self.push_screen(CreateProjectScreen(name, self.engine.project_templates(), self.engine.create_project),
                         created)

    # quit ----------------------------------------------------------------------------

    def action_request_quit(self) -> None:
        # Detached runs go on without the dashboard; only inline runs die with it.
        active = self.engine.local_active_runs()
        if not active:
            self.exit()
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.exit()

        count = len(active)
        self.push_screen(
            ConfirmScreen(f"{count} run{'s are' if count != 1 else ' is'} still active; quitting cancels {'them' if count != 1 else 'it'}. Quit?", confirm_label="Quit"),
            answer,
        )
