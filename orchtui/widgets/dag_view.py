"""The Live DAG pane: a workflow or run drawn level by level with the Line API.

Steps are grouped by execution level (everything in level *n* depends only on levels
before it). Each level is a header line followed by rows of fixed-width cells, as many
per row as fit the pane; a cell shows a status glyph, the step name and, while the step
runs, its elapsed time. The edges of the selected node are drawn on its neighbours:
its upstream steps are marked ``↑`` and its downstream steps ``↓`` (in colour), and the
pane's bottom border spells them out (``a, b → node → c``).

:class:`DagView` is a ``ScrollView`` that renders only the visible lines
(``render_line``), so a 10k-step DAG costs the same per frame as a 10-step one: the
layout (one list entry per screen line) is rebuilt only when the graph or the width
changes, and a status update just repaints the visible lines. Rendered lines are cached
until something they show changes: a cursor move re-renders only the lines of the old
and new cursor and of their neighbours, so a key press costs a few lines, not a pane.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from core.models import TaskStatus, Workflow
from core.workflow_dag import WorkflowDAG

from ..messages import NodeHighlighted, NodeOpened
from .status import format_elapsed, task_glyph, task_style

__all__ = ["DagModel", "DagLayout", "DagView", "dag_model_from_workflow"]

_MIN_CELL, _MAX_CELL = 14, 30
_HEADER_STYLE = Style(color="grey58")
_UP_STYLE = Style(bold=True, color="cyan")
_DOWN_STYLE = Style(bold=True, color="magenta")
_EDGE_NAMES = 4  # neighbours named per side in the border before "+N"
_CURSOR_STYLE = Style(reverse=True)
_MATCH_STYLE = Style(underline=True)
_PLAIN = Style()  # never None: Textual's NO_COLOR (monochrome) filter reads every segment's style


@dataclasses.dataclass(slots=True, frozen=True)
class DagModel:
    """The shape of a graph: its levels and each step's neighbours.

    Attributes:
        title: what the pane's border says (workflow name, or run id).
        levels: step names per execution level, in a stable order.
        upstream: step -> its direct dependencies.
        downstream: step -> the steps that directly depend on it.
    """

    title: str
    levels: tuple[tuple[str, ...], ...]
    upstream: Mapping[str, tuple[str, ...]]
    downstream: Mapping[str, tuple[str, ...]]

    @property
    def size(self) -> int:
        return sum(len(level) for level in self.levels)


def dag_model_from_workflow(workflow: Workflow, title: str | None = None) -> DagModel:
    """Return the :class:`DagModel` of ``workflow`` (levels from ``WorkflowDAG``).

    Raises:
        DAGValidationError: the workflow's steps do not form a DAG.
    """
    dag = WorkflowDAG.from_workflow(workflow)
    levels = tuple(tuple(level) for level in dag.get_execution_levels())
    upstream = {step.name: tuple(step.dependencies) for step in workflow.steps}
    downstream: dict[str, list[str]] = {name: [] for name in upstream}
    for name, deps in upstream.items():
        for dep in deps:
            downstream.setdefault(dep, []).append(name)
    return DagModel(
        title=title or workflow.name,
        levels=levels,
        upstream=upstream,
        downstream={k: tuple(v) for k, v in downstream.items()},
    )


@dataclasses.dataclass(slots=True, frozen=True)
class _Row:
    """One screen line: a level header (``start == end``) or a row of cells."""

    level: int
    start: int  # index into the level's steps
    end: int


class DagLayout:
    """Where every step sits on screen for a given width.

    Building it is O(steps) and happens only when the graph or the width changes.
    """

    def __init__(self, model: DagModel, width: int) -> None:
        self.model = model
        longest = max((len(n) for level in model.levels for n in level), default=4)
        # mark, glyph and space (3) + name + a short elapsed time like " 4.2s" (5) + gap (2);
        # longer names are cut with an ellipsis while their step runs
        self.cell_width = max(_MIN_CELL, min(_MAX_CELL, longest + 10))
        self.columns = max(1, width // self.cell_width)
        self.rows: list[_Row] = []
        self.position: dict[str, tuple[int, int]] = {}  # step -> (line, column)
        self.order: list[str] = []
        for index, level in enumerate(model.levels):
            self.rows.append(_Row(index, 0, 0))
            for start in range(0, len(level), self.columns):
                line = len(self.rows)
                end = min(len(level), start + self.columns)
                self.rows.append(_Row(index, start, end))
                for column, name in enumerate(level[start:end]):
                    self.position[name] = (line, column)
                    self.order.append(name)

    @property
    def height(self) -> int:
        return len(self.rows)

    def step_at(self, line: int, column: int) -> str | None:
        """Return the step drawn at ``(line, column)``, or None for a header or gap."""
        if not 0 <= line < len(self.rows):
            return None
        row = self.rows[line]
        index = row.start + column
        if row.start == row.end or index >= row.end:
            return None
        return self.model.levels[row.level][index]

    def vertical_neighbour(self, step: str, delta: int) -> str | None:
        """Return the step one visual row above (``-1``) or below (``+1``), same column if possible."""
        line, column = self.position[step]
        line += delta
        while 0 <= line < len(self.rows):
            row = self.rows[line]
            if row.end > row.start:
                return self.model.levels[row.level][min(row.start + column, row.end - 1)]
            line += delta
        return None


class DagView(ScrollView, can_focus=True):
    """The scrolling graph canvas. Feed it with :meth:`show` and :meth:`set_statuses`."""

    BINDINGS = [
        Binding("up,k", "cursor_up", "Up", show=False, id="dag.up"),
        Binding("down,j", "cursor_down", "Down", show=False, id="dag.down"),
        Binding("left", "cursor_left", "Left", show=False, id="dag.left"),
        Binding("right", "cursor_right", "Right", show=False, id="dag.right"),
        Binding("pageup", "page_up_nodes", "Page up", show=False, id="dag.page_up"),
        Binding("pagedown", "page_down_nodes", "Page down", show=False, id="dag.page_down"),
        Binding("home,g", "first", "First", show=False, id="dag.first"),
        Binding("end,G", "last", "Last", show=False, id="dag.last"),
        Binding("enter", "open", "Details", show=False, id="dag.open"),
    ]

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._model = DagModel("", (), {}, {})
        self._layout: DagLayout | None = None
        self._statuses: Mapping[str, TaskStatus] = {}
        self._started: Mapping[str, float] = {}
        self._now = 0.0
        self._filter = ""
        self._lines: dict[int, Strip] = {}  # layout line -> rendered strip, while still valid
        self.cursor: str | None = None

    # ----------------------------------------------------------------- feeding

    @property
    def model(self) -> DagModel:
        return self._model

    def show(self, model: DagModel) -> None:
        """Display ``model``; keeps the cursor on the same step name when it still exists."""
        if model is self._model:
            return
        self._model = model
        self._layout = None
        names = {n for level in model.levels for n in level}
        if self.cursor not in names:
            self.cursor = model.levels[0][0] if model.levels and model.levels[0] else None
        self._relayout()
        self._show_edges()
        self.refresh()

    def set_statuses(self, statuses: Mapping[str, TaskStatus], started: Mapping[str, float], now: float) -> None:
        """Update step statuses and the time used for elapsed figures; repaints visible lines only."""
        changed = statuses is not self._statuses or started is not self._started
        running = any(s is TaskStatus.RUNNING for s in statuses.values()) if changed or now != self._now else False
        self._statuses, self._started = statuses, started
        if changed or (running and now != self._now):
            self._now = now
            self._lines.clear()
            self.refresh()
        self._now = now

    def set_filter(self, text: str) -> None:
        """Underline the steps whose name contains ``text`` and move the cursor to the first one."""
        self._filter = text.lower()
        if self._filter and self._layout is not None:
            for name in self._layout.order:
                if self._filter in name.lower():
                    self._move_to(name)
                    break
        self._lines.clear()
        self.refresh()

    # ----------------------------------------------------------------- layout

    def _relayout(self) -> None:
        width = max(1, self.scrollable_content_region.width or self.size.width)
        self._layout = DagLayout(self._model, width)
        self._lines.clear()
        self.virtual_size = Size(width, self._layout.height)

    def on_resize(self) -> None:
        self._relayout()
        self._show_edges()
        self._scroll_cursor_visible()
        self.refresh()

    # ----------------------------------------------------------------- drawing

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        layout = self._layout
        line = y + int(self.scroll_offset.y)
        if layout is None or line >= layout.height:
            if y == 0 and layout is not None and layout.height == 0:
                return Strip([Segment(" no steps — pick a workflow in Projects (1)".ljust(width), _HEADER_STYLE)])
            return Strip.blank(width, self.rich_style)
        cached = self._lines.get(line)
        if cached is not None and cached.cell_length == width:
            return cached
        row = layout.rows[line]
        strip = self._header_strip(row.level, width) if row.start == row.end else self._cells_strip(layout, row, width)
        self._lines[line] = strip
        return strip

    def _header_strip(self, level: int, width: int) -> Strip:
        count = len(self._model.levels[level])
        label = f"── level {level} · {count} step{'s' if count != 1 else ''} "
        return Strip([Segment(label.ljust(width, "─")[:width], _HEADER_STYLE)])

    def _cells_strip(self, layout: DagLayout, row: _Row, width: int) -> Strip:
        segments: list[Segment] = []
        cursor = self.cursor
        ups = set(self._model.upstream.get(cursor, ())) if cursor else set()
        downs = set(self._model.downstream.get(cursor, ())) if cursor else set()
        cell = layout.cell_width
        for name in self._model.levels[row.level][row.start : row.end]:
            status = self._statuses.get(name, TaskStatus.PENDING)
            mark = "↑" if name in ups else "↓" if name in downs else " "
            elapsed = format_elapsed(self._started.get(name), self._now) if status is TaskStatus.RUNNING else ""
            room = cell - 5 - (len(elapsed) + 1 if elapsed else 0)
            label = name if len(name) <= room else name[: max(1, room - 1)] + "…"
            base = task_style(status)
            if name == cursor and self.has_focus:
                base = base + _CURSOR_STYLE
            elif name == cursor:
                base = base + Style(bold=True, underline=True)
            if self._filter and self._filter in name.lower():
                base = base + _MATCH_STYLE
            body = f"{task_glyph(status)} {label}"
            if elapsed:
                body = f"{body} {elapsed}"
            # a cell: mark (1) + body (cell - 3) + gap (2)
            segments.append(Segment(mark, _UP_STYLE if mark == "↑" else _DOWN_STYLE))
            segments.append(Segment(body.ljust(cell - 3)[: cell - 3], base))
            segments.append(Segment("  ", _PLAIN))
        return Strip(segments).adjust_cell_length(width, _PLAIN)

    # ----------------------------------------------------------------- cursor

    def _move_to(self, step: str | None) -> None:
        if step is None or step == self.cursor:
            return
        old = self.cursor
        self.cursor = step
        before = self.scroll_offset.y
        self._scroll_cursor_visible()
        self._show_edges()
        if self.scroll_offset.y != before:
            self._lines.clear()
            self.refresh()
        else:
            self._refresh_steps(old, step)
        self.post_message(NodeHighlighted(step))

    def _refresh_steps(self, *steps: str | None) -> None:
        """Re-render the lines showing ``steps`` and their neighbours (their marks change)."""
        layout = self._layout
        if layout is None:
            return
        names: set[str] = set()
        for step in steps:
            if step is not None:
                names.add(step)
                names.update(self._model.upstream.get(step, ()))
                names.update(self._model.downstream.get(step, ()))
        top = int(self.scroll_offset.y)
        for line in {layout.position[n][0] for n in names if n in layout.position}:
            self._lines.pop(line, None)
            if top <= line < top + self.size.height:
                self.refresh_line(line)  # a virtual line: it subtracts the scroll offset

    def _show_edges(self) -> None:
        """Spell out the cursor's edges in the bottom border: ``ups → cursor → downs``."""
        cursor = self.cursor
        if cursor is None:
            self.border_subtitle = ""
            return

        def names(steps: tuple[str, ...]) -> str:
            more = f" +{len(steps) - _EDGE_NAMES}" if len(steps) > _EDGE_NAMES else ""
            return ", ".join(steps[:_EDGE_NAMES]) + more

        ups, downs = self._model.upstream.get(cursor, ()), self._model.downstream.get(cursor, ())
        parts = ([f"{names(ups)} →"] if ups else []) + [cursor] + ([f"→ {names(downs)}"] if downs else [])
        self.border_subtitle = " ".join(parts)

    def _scroll_cursor_visible(self) -> None:
        if self._layout is None or self.cursor not in self._layout.position:
            return
        line, column = self._layout.position[self.cursor]
        cell = self._layout.cell_width
        # include the level header above the first row so a level's title stays in view
        top = line - 1 if line > 0 and self._layout.rows[line - 1].start == self._layout.rows[line - 1].end else line
        self.scroll_to_region(Region(column * cell, top, cell, line - top + 1), animate=False, force=True)

    def on_focus(self) -> None:
        self._refresh_steps(self.cursor)  # the cursor cell's style depends on focus

    def on_blur(self) -> None:
        self._refresh_steps(self.cursor)

    def _step(self, delta: int) -> None:
        if self._layout is None or not self._layout.order:
            return
        if self.cursor not in self._layout.position:
            self._move_to(self._layout.order[0])
            return
        index = self._layout.order.index(self.cursor) + delta
        self._move_to(self._layout.order[max(0, min(len(self._layout.order) - 1, index))])

    def action_cursor_left(self) -> None:
        self._step(-1)

    def action_cursor_right(self) -> None:
        self._step(1)

    def action_cursor_up(self) -> None:
        if self._layout is not None and self.cursor in self._layout.position:
            self._move_to(self._layout.vertical_neighbour(self.cursor, -1))

    def action_cursor_down(self) -> None:
        if self._layout is not None and self.cursor in self._layout.position:
            self._move_to(self._layout.vertical_neighbour(self.cursor, 1))
        else:
            self._step(0)

    def action_page_up_nodes(self) -> None:
        for _ in range(max(1, self.size.height - 1)):
            self.action_cursor_up()

    def action_page_down_nodes(self) -> None:
        for _ in range(max(1, self.size.height - 1)):
            self.action_cursor_down()

    def action_first(self) -> None:
        if self._layout is not None and self._layout.order:
            self._move_to(self._layout.order[0])

    def action_last(self) -> None:
        if self._layout is not None and self._layout.order:
            self._move_to(self._layout.order[-1])

    def action_open(self) -> None:
        if self.cursor is not None:
            self.post_message(NodeOpened(self.cursor))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or self._layout is None:
            return
        line = offset.y + int(self.scroll_offset.y)
        step = self._layout.step_at(line, offset.x // self._layout.cell_width)
        if step is not None:
            if step == self.cursor:
                self.post_message(NodeOpened(step))
            self._move_to(step)
