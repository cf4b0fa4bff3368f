"""The dashboard driven by keys, as a user would, against the real core and store.

Runs start as real detached ``orchtui run`` processes, as they do for users; each test
cancels whatever it left running.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import io
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from dashboard_fixtures import make_workflows_dir, wait_for
from rich.console import Console
from textual.command import CommandList, CommandPalette
from textual.content import Content
from textual.pilot import Pilot
from textual.widgets import Input, Select, Static

from core.config import load_settings
from core.live_state import read_live_snapshots, request_cancel, run_owner
from core.models import TaskStatus, WorkflowStatus
from core.resource_manager import ResourceManager
from core.store import Store
from orchtui.app import OrchTUIApp
from orchtui.dashboard_engine import DashboardEngine
from orchtui.dashboard_model import FixedMachine
from orchtui.messages import WorkflowChosen
from orchtui.screens.confirm import ConfirmScreen
from orchtui.screens.details import DetailsScreen
from orchtui.screens.forms import CreateProjectScreen, ParamFormScreen
from orchtui.screens.help import HelpScreen
from orchtui.screens.log_screen import LogScreen
from orchtui.widgets.dag_view import DagView
from orchtui.widgets.logs import LogsPane
from orchtui.widgets.projects import ProjectsPane


def _engine(tmp_path: Path, run_mode: str) -> DashboardEngine:
    return DashboardEngine(
        settings=load_settings(cwd=tmp_path),  # projects the dashboard creates go under tmp_path
        state_dir=tmp_path / "state",
        workflows_dir=make_workflows_dir(tmp_path),
        resource_manager=ResourceManager(detect=False, state_dir=tmp_path / "state"),
        max_workers=4,
        run_mode=run_mode,
    )


def _stop_detached_runs(state: Path) -> None:
    """Cancel the runner processes a test left behind and wait for them to go."""
    for process in read_live_snapshots(state):
        for run_id in process.run_ids:
            request_cancel(state, run_id)
    deadline = time.monotonic() + 30
    while read_live_snapshots(state) and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[DashboardEngine]:
    engine = _engine(tmp_path, "process")
    yield engine
    engine.close()
    _stop_detached_runs(engine.state_dir)


@pytest.fixture
def inline_engine(tmp_path: Path) -> Iterator[DashboardEngine]:
    engine = _engine(tmp_path, "inline")
    yield engine
    engine.close()


def _app(engine: DashboardEngine, **kw: object) -> OrchTUIApp:
    return OrchTUIApp(engine, refresh=20, machine=FixedMachine(), **kw)  # type: ignore[arg-type]


async def _select_workflow(pilot: Pilot[None], app: OrchTUIApp, name: str) -> None:
    """Move the Projects highlight to ``name`` with j/k, as a user would."""
    await pilot.press("1")
    projects = app.query_one(ProjectsPane)
    for _ in range(20):
        if projects.selected_workflow == name:
            break
        await pilot.press("j")
    assert projects.selected_workflow == name
    await pilot.pause()
    assert app.view_workflow == name


async def _launch(pilot: Pilot[None], app: OrchTUIApp, name: str) -> str:
    """Select ``name``, press r, accept the pre-filled form; return the new run id."""
    await _select_workflow(pilot, app, name)
    await pilot.press("r")
    await wait_for(pilot, lambda: isinstance(app.screen, ParamFormScreen))
    await pilot.press("enter")
    await wait_for(pilot, lambda: app.view_run is not None and not isinstance(app.screen, ParamFormScreen))
    assert app.view_run is not None
    return app.view_run


async def _launch_until_nap_runs(pilot: Pilot[None], app: OrchTUIApp) -> str:
    """Launch the slow workflow and wait until its long step runs; return the run id."""
    run_id = await _launch(pilot, app, "slow")
    await wait_for(pilot, lambda: (app.model.state.focus is not None
                                   and app.model.state.focus.step_status.get("nap") is TaskStatus.RUNNING), attempts=600)
    return run_id


def _status(app: OrchTUIApp, run_id: str) -> WorkflowStatus | None:
    run = app.model.state.run(run_id)
    return run.status if run is not None else None


def _first_hit(app: OrchTUIApp) -> str:
    """The palette's top hit as plain text ("" while it has none)."""
    if not isinstance(app.screen, CommandPalette):
        return ""
    hits = app.screen.query_one(CommandList)
    return str(hits.get_option_at_index(0).prompt) if hits.option_count else ""


@pytest.mark.slow
async def test_launch_demo_and_watch_it_complete(engine: DashboardEngine) -> None:
    app = _app(engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await _select_workflow(pilot, app, "demo")
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ParamFormScreen))
        form = app.screen
        assert isinstance(form, ParamFormScreen)
        # pre-filled with the declared defaults
        assert form.query_one("#param-0").value == "hello"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.view_run is not None)
        run_id = app.view_run
        assert run_id is not None
        await wait_for(pilot, lambda: _status(app, run_id) is WorkflowStatus.COMPLETED, attempts=600)
        await wait_for(pilot, lambda: app.model.state.focus is not None and app.model.state.focus.status is WorkflowStatus.COMPLETED)
        dag = app.query_one(DagView)
        await pilot.pause(0.1)
        shown = "\n".join(dag.render_line(y).text for y in range(dag.size.height))
        assert "✔ start" in shown and "✔ finish" in shown
        assert "demo" in str(dag.border_title)


@pytest.mark.slow
async def test_cancel_a_run_after_confirming(engine: DashboardEngine) -> None:
    app = _app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        run_id = await _launch(pilot, app, "slow")
        await wait_for(pilot, lambda: _status(app, run_id) is WorkflowStatus.RUNNING)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")  # declining leaves it running
        await pilot.pause()
        assert _status(app, run_id) is WorkflowStatus.RUNNING
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: _status(app, run_id) is WorkflowStatus.CANCELLED, attempts=600)
        assert run_owner(engine.state_dir, run_id) is None  # its process ended


@pytest.mark.slow
async def test_cancel_one_step_of_a_run_in_another_process(engine: DashboardEngine) -> None:
    app = _app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        run_id = await _launch_until_nap_runs(pilot, app)
        await pilot.press("g", "x")  # the DAG has focus after a launch; g selects nap
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: _status(app, run_id) in (WorkflowStatus.CANCELLED, WorkflowStatus.FAILED), attempts=600)
        await wait_for(pilot, lambda: app.model.state.focus is not None and app.model.state.focus.status.is_terminal)
        assert app.model.state.focus.step_status["nap"] is TaskStatus.CANCELLED
        assert app.model.state.focus.step_status["after_nap"] is TaskStatus.SKIPPED


@pytest.mark.slow
async def test_a_run_whose_process_is_killed_shows_interrupted_without_another_process(engine: DashboardEngine) -> None:
    app = _app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        run_id = await _launch_until_nap_runs(pilot, app)
        run = app.model.state.run(run_id)
        assert run is not None and run.owner_pid is not None and run.owner_pid != os.getpid()
        os.kill(run.owner_pid, signal.SIGKILL)  # no orchtui process will open the store after this
        await wait_for(pilot, lambda: _status(app, run_id) is WorkflowStatus.INTERRUPTED, attempts=600)
        await wait_for(pilot, lambda: app.model.state.focus is not None
                       and app.model.state.focus.step_status.get("nap") is TaskStatus.INTERRUPTED)


@pytest.mark.slow
async def test_details_of_a_running_step_follow_it_until_it_ends(engine: DashboardEngine) -> None:
    app = _app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        run_id = await _launch_until_nap_runs(pilot, app)
        await pilot.press("g", "enter")  # details of nap, open while it sleeps
        await wait_for(pilot, lambda: isinstance(app.screen, DetailsScreen))
        details = app.screen
        assert isinstance(details, DetailsScreen) and details.detail.status is TaskStatus.RUNNING
        request_cancel(engine.state_dir, run_id)  # from elsewhere: the modal stays open
        await wait_for(pilot, lambda: details.detail.status is TaskStatus.CANCELLED, attempts=600)
        assert app.screen is details
        console = Console(width=78, record=True, file=io.StringIO())
        console.print(details.query_one("#details-body", Static).content)
        assert "cancelled" in console.export_text().lower()  # what the modal shows moved on too


@pytest.mark.slow
async def test_resume_a_failed_run(engine: DashboardEngine, tmp_path: Path) -> None:
    app = _app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        failed = await _launch(pilot, app, "flaky")
        await wait_for(pilot, lambda: _status(app, failed) is WorkflowStatus.FAILED, attempts=600)
        assert (tmp_path / "flaky.marker").exists()
        await pilot.press("R")
        await wait_for(pilot, lambda: app.view_run not in (None, failed))
        resumed = app.view_run
        assert resumed is not None
        await wait_for(pilot, lambda: _status(app, resumed) is WorkflowStatus.COMPLETED, attempts=600)
        engine.store.flush()
        record = engine.store.get_run(resumed)
        assert record is not None
        # the completed step was reused from the failed run, not run again
        assert record.steps["prepare"].reused_from == failed
        assert record.steps["after"].output == "second try works"


@pytest.mark.slow
async def test_open_logs_details_and_mermaid(engine: DashboardEngine) -> None:
    app = _app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        run_id = await _launch(pilot, app, "demo")
        await wait_for(pilot, lambda: _status(app, run_id) is WorkflowStatus.COMPLETED, attempts=600)
        dag = app.query_one(DagView)
        assert app.focused is dag
        await pilot.press("g")  # first step: start (echo)
        assert dag.cursor == "start"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailsScreen))
        details = app.screen
        assert isinstance(details, DetailsScreen)
        assert details.detail.status is TaskStatus.COMPLETED
        assert details.detail.parameters == {"message": "hello from orchtui"}  # resolved
        assert details.detail.output == "hello from orchtui"
        await pilot.press("l")  # from details straight to the log
        await wait_for(pilot, lambda: isinstance(app.screen, LogScreen))
        pane = app.screen.query_one(LogsPane)
        await wait_for(pilot, lambda: any("hello from orchtui" in line for line in pane.lines))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, LogScreen))
        await pilot.press("m")
        path = engine.state_dir / "graphs" / f"{run_id}.mmd"
        await wait_for(pilot, lambda: path.exists())
        text = path.read_text(encoding="utf-8")
        assert "classDef completed" in text
        assert any(str(path) in n.message for n in app._notifications)


async def test_filter_projects(engine: DashboardEngine) -> None:
    app = _app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        projects = app.query_one(ProjectsPane)
        await pilot.press("slash", "f", "l", "a")
        await pilot.pause()
        listed = [o.id for o in projects._options if o.id]
        assert len(listed) == 1 and listed[0].endswith("flaky")
        assert "projects filter: fla" in str(app.query_one("#status-bar").render())
        await pilot.press("escape")
        await pilot.pause()
        assert len([o.id for o in projects._options if o.id]) == 3
        assert app.focused is projects


async def test_each_pane_keeps_its_own_filter_and_the_status_bar_names_each(engine: DashboardEngine) -> None:
    app = _app(engine)
    async with app.run_test(size=(120, 24)) as pilot:
        projects = app.query_one(ProjectsPane)
        await pilot.press("5", "slash", "z", "z", "z", "enter")  # Runs: filtered
        await pilot.press("1", "slash")  # Projects: the bar opens empty, not with the Runs text
        assert app.filter_bar.value == ""
        await pilot.press("escape")
        await pilot.pause()
        assert len([o.id for o in projects._options if o.id]) == 3
        assert "runs filter: zzz" in str(app.query_one("#status-bar").render())  # still named: still on


async def test_palette_runs_a_workflow(engine: DashboardEngine) -> None:
    app = _app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("colon")
        await pilot.pause()
        for key in "run workflow slow":
            await pilot.press("space" if key == " " else key)
        await wait_for(pilot, lambda: _first_hit(app).startswith("Run workflow slow"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ParamFormScreen))
        form = app.screen
        assert isinstance(form, ParamFormScreen) and form.workflow.name == "slow"
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ParamFormScreen))
        assert app.model.state.runs == ()


async def test_a_project_is_created_from_a_user_template_chosen_in_the_form(tmp_path: Path) -> None:
    templates = tmp_path / "user-templates" / "team"
    (templates / "workflows").mkdir(parents=True)
    (templates / "template.yaml").write_text("description: Our team's layout.\n", encoding="utf-8")
    for doc in ("README.md", "AGENTS.md", "SPEC.md"):
        (templates / doc).write_text("{{ project_name }}\n", encoding="utf-8")
    settings = dataclasses.replace(load_settings(cwd=tmp_path), templates_dir=templates.parent,
                                   projects_dir=tmp_path / "projects")
    engine = DashboardEngine(settings=settings, state_dir=tmp_path / "state", workflows_dir=make_workflows_dir(tmp_path),
                             resource_manager=ResourceManager(detect=False, state_dir=tmp_path / "state"),
                             max_workers=2, run_mode="inline")
    try:
        app = _app(engine)
        async with app.run_test(size=(100, 30)) as pilot:
            app.request_create_project("ours")
            await wait_for(pilot, lambda: isinstance(app.screen, CreateProjectScreen)
                           and bool(app.screen.query("#project-template")))
            choice = app.screen.query_one("#project-template", Select)
            assert choice.value == "custom"
            choice.value = "team"  # Select refuses a value it does not offer
            await pilot.press("enter")
            await wait_for(pilot, lambda: not isinstance(app.screen, CreateProjectScreen))
        created = engine.projects.get_project("ours")
        assert created is not None and created.template == "team"
        assert (tmp_path / "projects" / "ours" / "README.md").read_text(encoding="utf-8") == "ours\n"
    finally:
        engine.close()


async def test_a_refused_project_name_is_shown_in_the_form_which_keeps_what_was_typed(
        inline_engine: DashboardEngine) -> None:
    app = _app(inline_engine)
    async with app.run_test(size=(100, 30)) as pilot:
        app.request_create_project("my/project")
        await wait_for(pilot, lambda: isinstance(app.screen, CreateProjectScreen)
                       and bool(app.screen.query("#project-description")))
        app.screen.query_one("#project-description", Input).value = "kept"
        await pilot.press("enter")
        form = app.screen
        assert isinstance(form, CreateProjectScreen)
        await wait_for(pilot, lambda: "path separator" in str(form.query_one("#form-error", Static).render()))
        assert form.query_one("#project-description", Input).value == "kept"
        form.query_one("#project-name", Input).value = "my-project"
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, CreateProjectScreen))
    assert inline_engine.projects.get_project("my-project") is not None


async def test_a_required_parameter_left_empty_in_the_form_starts_nothing(inline_engine: DashboardEngine) -> None:
    (inline_engine.workflows_dir / "needs.yaml").write_text(
        "name: needs\nparams:\n  must: {type: string, required: true}\n"
        "steps:\n  - {name: a, module: builtin, action: echo, parameters: {message: '{{ params.must }}'}}\n",
        encoding="utf-8")
    app = _app(inline_engine)
    async with app.run_test(size=(120, 30)) as pilot:
        await _select_workflow(pilot, app, "needs")
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ParamFormScreen))
        await pilot.press("enter")
        form = app.screen
        assert isinstance(form, ParamFormScreen)
        await wait_for(pilot, lambda: "must" in str(form.query_one("#form-error", Static).render()))
        await pilot.press("escape")
    assert app.model.state.runs == ()


async def test_a_store_deleted_under_the_dashboard_shows_in_the_status_bar_instead_of_live(
        inline_engine: DashboardEngine) -> None:
    app = _app(inline_engine)
    async with app.run_test(size=(160, 30)) as pilot:
        await wait_for(pilot, lambda: "● live" in app._status_text)
        inline_engine.store.db_path.unlink()
        await wait_for(pilot, lambda: app._status_text.startswith("orchtui ✖ the run store"), attempts=600)
        assert "was deleted" in app._status_text and "● live" not in app._status_text


def test_the_help_names_keys_as_the_key_bar_does() -> None:
    from textual.binding import Binding

    from orchtui.screens.help import keys_table

    table = keys_table([Binding("slash", "filter", "Filter", id="orchtui.filter"),
                        Binding("escape,q,question_mark", "close", "Close", id="help.close")])
    console = Console(width=80, file=io.StringIO(), color_system=None)
    console.print(table)
    text = console.file.getvalue()
    assert "/ " in text and "esc, q, ?" in text
    assert "slash" not in text and "question_mark" not in text


async def test_help_lists_binding_ids_and_keymap_remaps(engine: DashboardEngine) -> None:
    app = _app(engine, keymap={"orchtui.run": "ctrl+r"})
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen))
        await pilot.press("r")  # remapped away: nothing opens
        await pilot.pause()
        assert not isinstance(app.screen, ParamFormScreen)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, ParamFormScreen))


@pytest.mark.slow
async def test_quitting_leaves_detached_runs_running(engine: DashboardEngine) -> None:
    app = _app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        run_id = await _launch(pilot, app, "slow")
        await wait_for(pilot, lambda: _status(app, run_id) is WorkflowStatus.RUNNING)
        await pilot.press("q")  # nothing of this process would die: no question
        await wait_for(pilot, lambda: not app.is_running)
    engine.close()
    deadline = time.monotonic() + 10  # the runner lists its runs within a quarter second
    while run_owner(engine.state_dir, run_id) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    owner = run_owner(engine.state_dir, run_id)
    assert owner is not None and run_id in owner.run_ids
    with Store(engine.settings.db_path, runs_dir=engine.settings.runs_dir) as store:
        assert store.run_status(run_id) is WorkflowStatus.RUNNING


@pytest.mark.slow
async def test_quit_asks_while_an_inline_run_is_active(inline_engine: DashboardEngine) -> None:
    app = _app(inline_engine)
    async with app.run_test(size=(80, 24)) as pilot:
        run_id = await _launch(pilot, app, "slow")
        await wait_for(pilot, lambda: _status(app, run_id) is WorkflowStatus.RUNNING)
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await pilot.pause()
        assert app.is_running
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: not app.is_running)


def _write_chain(directory: Path, name: str, steps: int) -> None:
    """Write workflow ``name``: ``steps`` no-op steps, each depending on the one before."""
    lines = [f"name: {name}", "steps:"]
    for i in range(steps):
        lines += [f"  - name: s{i}", "    module: builtin", "    action: noop"]
        if i:
            lines.append(f"    dependencies: [s{i - 1}]")
    (directory / f"{name}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


@contextlib.asynccontextmanager
async def _opened(engine: DashboardEngine, name: str) -> AsyncIterator[tuple[OrchTUIApp, Pilot[None]]]:
    """The dashboard at 120x40, once its catalog lists workflow ``name``."""
    app = _app(engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.model.state.catalog.workflow(name) is not None)
        yield app, pilot


class TestLargeGraphs:
    """A workflow too large to level within a frame is laid out by a worker thread."""

    @pytest.fixture
    def big_engine(self, inline_engine: DashboardEngine) -> DashboardEngine:
        # Named to sort last: the Projects pane highlights (and so lays out) the first one.
        _write_chain(inline_engine.workflows_dir, "zbig", 3000)
        return inline_engine

    async def test_selecting_a_large_workflow_returns_before_its_graph_is_built(self, big_engine: DashboardEngine) -> None:
        async with _opened(big_engine, "zbig") as (app, pilot):
            dag = app.query_one(DagView)
            before = dag.model
            app.on_workflow_chosen(WorkflowChosen("zbig"))
            # The handler returned with the old graph still shown and a note in the border.
            assert dag.model is before
            assert "laying out 3,000 steps" in str(dag.border_title)
            await wait_for(pilot, lambda: dag.model.size == 3000)
            assert dag.model.title == "zbig"
            assert "laying out" not in str(dag.border_title)

    async def test_the_graph_worker_is_not_described_by_the_workflows_repr(self, big_engine: DashboardEngine) -> None:
        # Textual would otherwise repr the arguments on the UI thread: ~100 ms for 10k steps.
        async with _opened(big_engine, "zbig") as (app, _):
            app.on_workflow_chosen(WorkflowChosen("zbig"))
            described = [worker.description for worker in app.workers if worker.group == "dag-graph"]
            assert described == ["laying out the Live DAG"]
            await app.workers.wait_for_complete()

    async def test_a_small_workflow_is_shown_by_the_selection_itself(self, big_engine: DashboardEngine) -> None:
        async with _opened(big_engine, "demo") as (app, _):
            app.on_workflow_chosen(WorkflowChosen("demo"))
            dag = app.query_one(DagView)
            assert dag.model.title == "demo" and dag.model.size > 0
            assert "laying out" not in str(dag.border_title)

    async def test_a_graph_built_after_the_selection_moved_on_is_not_shown(self, big_engine: DashboardEngine) -> None:
        async with _opened(big_engine, "zbig") as (app, pilot):
            app.on_workflow_chosen(WorkflowChosen("zbig"))
            app.on_workflow_chosen(WorkflowChosen("demo"))
            await app.workers.wait_for_complete()
            await pilot.pause()
            dag = app.query_one(DagView)
            assert dag.model.title == "demo"
            assert "demo" in str(dag.border_title) and "laying out" not in str(dag.border_title)

    async def test_going_back_to_the_shown_graph_drops_the_build_under_way(self, big_engine: DashboardEngine) -> None:
        async with _opened(big_engine, "zbig") as (app, pilot):
            app.on_workflow_chosen(WorkflowChosen("demo"))
            shown = app.query_one(DagView).model
            app.on_workflow_chosen(WorkflowChosen("zbig"))
            app.on_workflow_chosen(WorkflowChosen("demo"))
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert app.query_one(DagView).model is shown

    async def test_a_shown_graph_is_frozen_and_handed_back_when_the_dashboard_exits(self, big_engine: DashboardEngine) -> None:
        async with _opened(big_engine, "zbig") as (app, pilot):
            assert app.heap.freezes == 1 and gc.get_freeze_count() > 0  # at startup
            app.on_workflow_chosen(WorkflowChosen("zbig"))
            dag = app.query_one(DagView)
            await wait_for(pilot, lambda: dag.model.size == 3000)
            gc.collect()  # a full collection: the freeze asked for when the graph was shown
            assert app.heap.freezes == 2
        assert gc.get_freeze_count() == 0


async def test_a_name_two_files_define_is_listed_once_and_refused_at_once_with_both_files(engine: DashboardEngine) -> None:
    copy = engine.workflows_dir / "demo-copy.yaml"
    copy.write_text((engine.workflows_dir / "demo.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    app = _app(engine)
    async with app.run_test(size=(120, 30)) as pilot:
        projects = app.query_one(ProjectsPane)
        await pilot.pause()
        listed = [o.id for o in projects._options if o.id]
        assert len([i for i in listed if i.endswith("\x1fdemo")]) == 1
        shown = [str(o.prompt) for o in projects._options if o.disabled]
        assert any("demo-copy.yaml" in line and "'demo'" in line for line in shown)
        await _select_workflow(pilot, app, "demo")
        await pilot.press("r")  # refused before any form is filled in
        await wait_for(pilot, lambda: any("defined by 2 files" in str(n.message) for n in app._notifications))
        assert not isinstance(app.screen, ParamFormScreen)
        assert app.view_run is None and app.model.state.runs == ()


async def test_a_selected_workflow_edited_into_an_invalid_file_stays_selected_and_says_why(
    engine: DashboardEngine,
) -> None:
    app = _app(engine)
    async with app.run_test(size=(120, 30)) as pilot:
        await _select_workflow(pilot, app, "slow")
        (engine.workflows_dir / "slow.yaml").write_text("name: slow\nsteps:\n  - name: nap\n    dependencies: [gone]\n",
                                                        encoding="utf-8")
        projects = app.query_one(ProjectsPane)
        await wait_for(pilot, lambda: app.model.state.catalog.refusal("slow") is not None)
        # The pane shows the refusal on its next refresh, which a loaded machine may delay.
        await wait_for(pilot, lambda: "✖" in str(projects.highlighted_option.prompt))
        assert projects.selected_workflow == "slow" and app.view_workflow == "slow"
        assert app.dag_view.model.size == 0  # not the graph of the version that was valid
        await pilot.press("r")
        await wait_for(pilot, lambda: any("slow.yaml:4" in str(n.message) and "gone" in str(n.message)
                                          for n in app._notifications))
        assert not isinstance(app.screen, ParamFormScreen)


async def test_the_selected_workflows_graph_follows_edits_of_its_file(engine: DashboardEngine) -> None:
    app = _app(engine)
    async with app.run_test(size=(120, 30)) as pilot:
        await _select_workflow(pilot, app, "slow")
        await wait_for(pilot, lambda: app.dag_view.model.size == 2)
        slow = engine.workflows_dir / "slow.yaml"
        slow.write_text(slow.read_text(encoding="utf-8") + "  - name: third\n    module: builtin\n    action: noop\n",
                        encoding="utf-8")
        await wait_for(pilot, lambda: app.dag_view.model.size == 3)


class TestTextThatLooksLikeMarkup:
    """Workflow text, step errors and typed input are shown as written, never parsed as
    markup: ``[/mnt/backup]`` used to crash the dashboard with a MarkupError."""

    MARKED = ("name: marked\ndescription: 'copies to [/mnt/backup]'\n"
              "params:\n  n: {type: integer, default: 1, description: 'e.g. [/tmp/out]'}\n"
              "steps:\n  - name: a\n    module: shell\n    action: run\n"
              "    parameters: {command: \"echo 'cannot open [/data/in]' >&2; exit 1\"}\n")

    @pytest.fixture
    def marked(self, inline_engine: DashboardEngine) -> DashboardEngine:
        (inline_engine.workflows_dir / "marked.yaml").write_text(self.MARKED, encoding="utf-8")
        return inline_engine

    async def test_the_palette_shows_a_description_with_brackets(self, marked: DashboardEngine) -> None:
        app = _app(marked)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("colon")
            for key in "run workflow marked":
                await pilot.press("space" if key == " " else key)
            await wait_for(pilot, lambda: _first_hit(app).startswith("Run workflow marked"))
            await pilot.press("escape")

    async def test_the_form_shows_a_description_and_an_error_quoting_typed_brackets(self, marked: DashboardEngine) -> None:
        app = _app(marked)
        async with app.run_test(size=(120, 40)) as pilot:
            await _select_workflow(pilot, app, "marked")
            await pilot.press("r")
            await wait_for(pilot, lambda: isinstance(app.screen, ParamFormScreen))
            field = app.screen.query_one("#param-0")
            field.value = "[/x]"  # type: ignore[attr-defined]
            await pilot.press("enter")
            await wait_for(pilot, lambda: "[/x]" in str(app.screen.query_one("#form-error", Static).render()))

    async def test_the_details_of_a_step_whose_error_has_brackets(self, marked: DashboardEngine) -> None:
        app = _app(marked)
        async with app.run_test(size=(120, 40)) as pilot:
            await _launch(pilot, app, "marked")
            await wait_for(pilot, lambda: app.model.state.focus is not None
                           and app.model.state.focus.step_status.get("a") is TaskStatus.FAILED, attempts=600)
            await pilot.press("2", "g", "enter")
            await wait_for(pilot, lambda: isinstance(app.screen, DetailsScreen))
            body = app.screen.query_one("#details-body", Static)
            await wait_for(pilot, lambda: "[/data/in]" in "".join(body.render_line(y).text
                                                                  for y in range(body.size.height)))


def _terminal_bytes(app: OrchTUIApp) -> str:
    """What the app would write to a real terminal for its screen now."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True, color_system="truecolor",
                      legacy_windows=False)
    console.print(app.screen._compositor.render_update(full=True), end="")
    output = console.file.getvalue()
    assert isinstance(output, str)
    return output


class TestWhatFilesAndStepsCannotDoToTheTerminal:
    """A workflow's files and a step's output are text to show, never instructions to
    the terminal or to Textual, whatever they hold and however small the terminal is."""

    ESCAPING = ("name: escaping\nsteps:\n  - name: a\n    module: shell\n    action: run\n    parameters:\n"
                "      command: \"printf 'before\\\\033[2J\\\\033]0;PWNED\\\\007after\\\\n'; "
                "printf 'err\\\\033[2Jx\\\\n' >&2; exit 4\"\n")

    @pytest.mark.parametrize("width", [20, 24, 28])
    async def test_a_terminal_narrower_than_a_graph_cell_shows_the_graph_clipped(
            self, inline_engine: DashboardEngine, width: int) -> None:
        app = _app(inline_engine)
        async with app.run_test(size=(width, 24)) as pilot:
            await pilot.pause(0.3)
            await pilot.press("1", "j", "k")  # away from the first workflow's graph and back: laid out again
            await pilot.pause(0.3)
            await pilot.resize_terminal(width - 4, 12)
            await pilot.pause(0.3)
        assert app.return_code in (None, 0)

    async def test_an_invalid_file_whose_name_holds_markup_is_shown_as_written(
            self, inline_engine: DashboardEngine) -> None:
        (inline_engine.workflows_dir / "bad.yaml").write_text(
            'name: "nightly[/]"\nsteps:\n  - {name: a, module: nosuch, action: noop}\n', encoding="utf-8")
        app = _app(inline_engine)
        async with app.run_test(size=(120, 30)) as pilot:
            await _select_workflow(pilot, app, "nightly[/]")
            # The getter gives the title back as markup: read it as the user sees it.
            await wait_for(pilot, lambda: "nightly[/] (cannot be shown)" in
                           Content.from_markup(app.dag_view.border_title or "").plain)

    async def test_escape_sequences_a_step_prints_never_reach_the_terminal(self, inline_engine: DashboardEngine) -> None:
        (inline_engine.workflows_dir / "escaping.yaml").write_text(self.ESCAPING, encoding="utf-8")
        app = _app(inline_engine)
        async with app.run_test(size=(130, 36)) as pilot:
            await _launch(pilot, app, "escaping")
            await wait_for(pilot, lambda: app.model.state.focus is not None
                           and app.model.state.focus.step_status.get("a") is TaskStatus.FAILED, attempts=600)
            logs = app.query_one(LogsPane)
            await wait_for(pilot, lambda: any("before" in line for line in logs.lines))
            shown = [_terminal_bytes(app)]
            await pilot.press("2", "g", "enter")
            await wait_for(pilot, lambda: isinstance(app.screen, DetailsScreen))
            await pilot.pause()
            shown.append(_terminal_bytes(app))
            await pilot.press("escape", "l")
            await wait_for(pilot, lambda: isinstance(app.screen, LogScreen))
            await pilot.pause()
            shown.append(_terminal_bytes(app))
        for screen in shown:
            assert "\x1b[2J" not in screen and "\x1b]0;" not in screen
        assert "before\\x1b[2J\\x1b]0;PWNED\\x07after" in "\n".join(logs.lines)
