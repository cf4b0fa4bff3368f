"""The Live DAG canvas: layout by levels, cursor moves, and rendering only what is visible."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.strip import Strip

from core.models import TaskStatus, Workflow, WorkflowStep
from orchtui.messages import NodeOpened
from orchtui.widgets.dag_view import DagLayout, DagView, dag_model_from_workflow


def _diamond() -> Workflow:
    return Workflow(
        name="diamond",
        steps=[
            WorkflowStep("fetch"),
            WorkflowStep("left", dependencies=["fetch"]),
            WorkflowStep("right", dependencies=["fetch"]),
            WorkflowStep("join", dependencies=["left", "right"]),
        ],
    )


def _wide(n: int) -> Workflow:
    """``n`` steps: a root, then chains of 10 hanging off it."""
    steps = [WorkflowStep("root")]
    for i in range(1, n):
        dep = "root" if i % 10 == 1 else f"s{i - 1}"
        steps.append(WorkflowStep(f"s{i}", dependencies=[dep]))
    return Workflow(name=f"wide{n}", steps=steps)


def test_model_levels_and_neighbours() -> None:
    model = dag_model_from_workflow(_diamond())
    assert model.levels == (("fetch",), ("left", "right"), ("join",))
    assert set(model.downstream["fetch"]) == {"left", "right"}
    assert model.upstream["join"] == ("left", "right")
    assert model.size == 4


def test_layout_wraps_levels_into_rows_and_places_every_step() -> None:
    model = dag_model_from_workflow(_wide(101))
    layout = DagLayout(model, width=40)
    assert layout.columns == 40 // layout.cell_width
    assert sorted(layout.order) == sorted(n for level in model.levels for n in level)
    for name, (line, column) in layout.position.items():
        assert layout.step_at(line, column) == name
    # a header line per level plus ceil(len/columns) rows each
    expected = sum(1 + -(-len(level) // layout.columns) for level in model.levels)
    assert layout.height == expected


def test_vertical_neighbour_skips_headers_and_clamps_column() -> None:
    layout = DagLayout(dag_model_from_workflow(_diamond()), width=200)
    assert layout.vertical_neighbour("fetch", 1) == "left"
    assert layout.vertical_neighbour("right", 1) == "join"
    assert layout.vertical_neighbour("right", -1) == "fetch"
    assert layout.vertical_neighbour("fetch", -1) is None


class CountingDag(DagView):
    """Counts the lines it is asked to draw."""

    lines_drawn = 0

    def render_line(self, y: int) -> Strip:
        CountingDag.lines_drawn += 1
        return super().render_line(y)


class DagApp(App[None]):
    def __init__(self, workflow: Workflow) -> None:
        super().__init__()
        self.workflow = workflow
        self.opened: list[str] = []

    def compose(self) -> ComposeResult:
        yield CountingDag(id="dag")

    def on_mount(self) -> None:
        dag = self.query_one(DagView)
        dag.show(dag_model_from_workflow(self.workflow))
        dag.focus()

    def on_node_opened(self, message: NodeOpened) -> None:
        self.opened.append(message.step)


async def test_keys_move_cursor_and_enter_opens() -> None:
    app = DagApp(_diamond())
    async with app.run_test(size=(80, 12)) as pilot:
        dag = app.query_one(DagView)
        assert dag.cursor == "fetch"
        await pilot.press("j")
        assert dag.cursor == "left"
        await pilot.press("right")
        assert dag.cursor == "right"
        await pilot.press("down")
        assert dag.cursor == "join"
        await pilot.press("k", "enter")
        await pilot.pause()
        assert app.opened == ["left"]


async def test_glyphs_carry_status_and_elapsed_shows_for_running() -> None:
    app = DagApp(_diamond())
    async with app.run_test(size=(80, 12)) as pilot:
        dag = app.query_one(DagView)
        dag.set_statuses(
            {"fetch": TaskStatus.COMPLETED, "left": TaskStatus.RUNNING, "right": TaskStatus.FAILED},
            {"left": 1000.0},
            now=1012.0,
        )
        await pilot.pause()
        text = "\n".join(dag.render_line(y).text for y in range(dag.size.height))
        assert "✔ fetch" in text
        assert "▶ left 12s" in text
        assert "✖ right" in text
        assert "· join" in text
        # the cursor sits on fetch: its dependents are marked downstream
        assert "↓▶ left" in text and "↓✖ right" in text


async def test_ten_thousand_steps_draw_only_visible_lines() -> None:
    app = DagApp(_wide(10_000))
    async with app.run_test(size=(80, 20)) as pilot:
        dag = app.query_one(DagView)
        await pilot.pause()
        CountingDag.lines_drawn = 0
        for _ in range(5):
            await pilot.press("pagedown")
        await pilot.pause()
        assert dag.scroll_offset.y > 0
        # each repaint draws at most the visible height, never the 10k-step canvas
        assert 0 < CountingDag.lines_drawn <= 5 * 2 * dag.size.height + dag.size.height
        await pilot.press("G")
        await pilot.pause()
        assert dag.cursor == dag_model_from_workflow(app.workflow).levels[-1][-1]
