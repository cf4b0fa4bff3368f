"""The Live DAG canvas: layout by levels, cursor moves, and rendering only what is visible."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult
from textual.strip import Strip

from core.models import TaskStatus, Workflow, WorkflowStep
from orchtui.messages import NodeHighlighted, NodeOpened
from orchtui.widgets.dag_view import DagLayout, DagView, dag_model_from_workflow, fitted_layout


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
    # a header line per level plus ceil(len/columns) rows each, and one focused connector
    # lane per gap: the wide levels wrap, so their edges are drawn only for the cursor
    expected = sum(1 + -(-len(level) // layout.columns) for level in model.levels) + len(model.levels) - 1
    assert layout.height == expected
    assert layout.full_lanes == {}


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
        self.highlighted: list[str] = []

    def compose(self) -> ComposeResult:
        yield CountingDag(id="dag")

    def on_mount(self) -> None:
        dag = self.query_one(DagView)
        dag.show(dag_model_from_workflow(self.workflow))
        dag.focus()

    def on_node_opened(self, message: NodeOpened) -> None:
        self.opened.append(message.step)

    def on_node_highlighted(self, message: NodeHighlighted) -> None:
        self.highlighted.append(message.step)


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


async def test_a_graph_without_the_cursor_step_puts_the_cursor_on_its_first_step_and_says_so() -> None:
    app = DagApp(_diamond())
    async with app.run_test(size=(80, 12)) as pilot:
        dag = app.query_one(DagView)
        await pilot.press("j")
        await pilot.pause()
        assert app.highlighted == ["fetch", "left"]  # the first graph's cursor, then the key
        dag.show(dag_model_from_workflow(_wide(5)))  # no step "left" there
        await pilot.pause()
        assert dag.cursor == "root" and app.highlighted[-1] == "root"


async def test_a_graph_with_the_cursor_step_keeps_the_cursor_without_a_message() -> None:
    app = DagApp(_diamond())
    async with app.run_test(size=(80, 12)) as pilot:
        dag = app.query_one(DagView)
        await pilot.pause()
        before = list(app.highlighted)
        dag.show(dag_model_from_workflow(Workflow(name="again", steps=list(_diamond().steps))))
        await pilot.pause()
        assert dag.cursor == "fetch" and app.highlighted == before


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



def _fan() -> Workflow:
    """Fan-out then fan-in: ``src`` feeds ``a``, ``b``, ``c``, which all feed ``sink``; ``src -> sink`` skips a level."""
    return Workflow(
        name="fan",
        steps=[
            WorkflowStep("src"),
            WorkflowStep("a", dependencies=["src"]),
            WorkflowStep("b", dependencies=["src"]),
            WorkflowStep("c", dependencies=["src"]),
            WorkflowStep("sink", dependencies=["a", "b", "c", "src"]),
        ],
    )


def _crossed() -> Workflow:
    """Two crossing edges (``a -> y``, ``b -> x``): one lane cannot draw them unambiguously."""
    return Workflow(
        name="crossed",
        steps=[
            WorkflowStep("a"),
            WorkflowStep("b"),
            WorkflowStep("x", dependencies=["b"]),
            WorkflowStep("y", dependencies=["a"]),
        ],
    )


def _screen(layout: DagLayout) -> list[str]:
    """The layout as text: headers and full connector lanes as drawn, other rows by kind."""
    out = []
    for row in layout.rows:
        if row.kind == "header":
            out.append(layout.header_text[row.level])
        elif row.kind == "link":
            lanes = layout.full_lanes.get(row.level)
            out.append("focused" if lanes is None else lanes[row.lane].rstrip())
        else:
            out.append("cells")
    return out


def test_connector_rows_join_fan_out_and_fan_in_at_the_right_columns() -> None:
    layout = DagLayout(dag_model_from_workflow(_fan()), width=80)
    cell = layout.cell_width
    a, b, c = (layout.anchor(n) for n in ("a", "b", "c"))
    assert (a, b, c) == (1, cell + 1, 2 * cell + 1)  # under each cell's status glyph
    lines = _screen(layout)
    # level 0 · cells · fan-out lane · level 1 · cells · fan-in lane · level 2 · cells
    assert lines[1::3] == ["cells", "cells", "cells"] and len(lines) == 8
    fan_out, fan_in = lines[2], lines[5]
    assert fan_out == " ├" + "─" * (cell - 1) + "┬" + "─" * (cell - 1) + "╮"  # src down into a, b, c
    assert fan_in == " ├" + "─" * (cell - 1) + "┴" + "─" * (cell - 1) + "╯"  # a, b, c into sink
    header1 = lines[3]
    assert header1[a] == header1[b] == header1[c] == "┼"  # the edges cross level 1's header
    assert "level 1 · 3 steps" in header1
    assert lines[6][a] == "┼" and "level 2" in lines[6]
    assert layout.skips == {"sink": 1}  # src -> sink skips level 1: counted on sink


def test_a_tangled_gap_falls_back_to_one_focused_lane() -> None:
    layout = DagLayout(dag_model_from_workflow(_crossed()), width=80)
    assert _screen(layout) == ["── level 0 · 2 steps ".ljust(80, "─"), "cells", "focused", "── level 1 · 2 steps ".ljust(80, "─"), "cells"]
    wide = DagLayout(dag_model_from_workflow(_wide(101)), width=40)
    assert wide.full_lanes == {}  # level 1 has ten steps: it wraps, so every gap is focused
    assert all(len(lines) == 1 for lines in wide.gap_lines.values())


@pytest.mark.parametrize(("narrower_by", "taken"), [(0, True), (10, False)], ids=["fitting width", "other width"])
async def test_show_takes_a_ready_layout_only_when_made_for_the_pane(narrower_by: int, taken: bool) -> None:
    app = DagApp(_diamond())
    async with app.run_test(size=(80, 12)) as pilot:
        dag = app.query_one(DagView)
        await pilot.pause()
        model = dag_model_from_workflow(_fan())
        fitting = fitted_layout(model, dag.fit())
        ready = fitting if not narrower_by else DagLayout(model, fitting.width - narrower_by)
        dag.show(model, ready)
        assert (dag.graph_layout is ready) is taken
        shown = dag.graph_layout
        assert shown is not None and shown.model is model and shown.width == fitting.width


async def test_a_graph_that_brings_a_scrollbar_is_laid_out_for_the_width_left() -> None:
    app = DagApp(_diamond())
    async with app.run_test(size=(80, 20)) as pilot:
        dag = app.query_one(DagView)
        await pilot.pause()
        assert not dag.show_vertical_scrollbar
        dag.show(dag_model_from_workflow(_wide(400)))
        shown = dag.graph_layout  # laid out for the width the scrollbar will leave
        await pilot.pause()
        assert dag.show_vertical_scrollbar
        assert dag.graph_layout is shown
        assert shown is not None and shown.width == dag.scrollable_content_region.width == dag.size.width - 2
        dag.show(dag_model_from_workflow(_wide(300)))  # the scrollbar is there already
        again = dag.graph_layout
        assert again is not None and again.width == dag.scrollable_content_region.width


async def test_focused_lane_draws_the_cursors_edges_and_follows_it() -> None:
    app = DagApp(_crossed())
    async with app.run_test(size=(80, 8)) as pilot:
        dag = app.query_one(DagView)
        await pilot.pause()
        lane = dag.render_line(2).text  # level 0 header, cells, then the gap
        layout = DagLayout(dag.model, dag.scrollable_content_region.width)
        ax, ay = layout.anchor("x"), layout.anchor("y")
        assert dag.cursor == "a"  # a feeds y only: one edge from a's glyph to y's
        assert lane[1] == "╰" and lane[ay] == "╮" and lane.rstrip() == lane[: ay + 1].rstrip()
        await pilot.press("right")  # b feeds x only, to its left
        await pilot.pause()
        lane = dag.render_line(2).text
        assert lane[ax] == "╭" and lane[layout.anchor("b")] == "╯"
        await pilot.press("down", "left")  # onto x: its one dependency is b
        await pilot.pause()
        assert dag.cursor == "x"
        assert dag.render_line(2).text == lane


async def test_focused_lane_shows_a_count_when_the_cursor_is_elsewhere() -> None:
    app = DagApp(_wide(31))
    async with app.run_test(size=(40, 40)) as pilot:
        dag = app.query_one(DagView)
        await pilot.pause()
        text = [dag.render_line(y).text for y in range(dag.size.height)]
        layout = DagLayout(dag.model, dag.scrollable_content_region.width)
        assert layout.full_lanes == {}
        gap0, gap1 = layout.gap_lines[0][0], layout.gap_lines[1][0]
        assert text[gap0][1] in "├╰" and text[gap0].rstrip()[-1] in "╮┬"  # root feeds the three chain heads
        assert text[gap1].strip() == "┆ 3 edges to level 2"


async def test_no_color_renders_connectors_and_glyphs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = DagApp(_fan())
    async with app.run_test(size=(80, 16)) as pilot:
        dag = app.query_one(DagView)
        await pilot.pause()
        text = "\n".join(dag.render_line(y).text for y in range(dag.size.height))
        assert "· src" in text and "├" in text and "┼" in text and "╯" in text
        assert "sink +1" in text
        # the monochrome filter needs a style on every segment: the whole pane must paint
        screen = app.export_screenshot()
        assert "sink" in screen and "┬" in screen
