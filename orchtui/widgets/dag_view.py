"""The Live DAG pane: a workflow or run drawn level by level with the Line API.

Steps are grouped by execution level (everything in level *n* depends only on levels
before it). Each level is a header line followed by rows of fixed-width cells, as many
per row as fit the pane; a cell shows a status glyph, the step name and, while the step
runs, its elapsed time. Between two levels, connector lanes drawn with box-drawing
characters (in the manner of ``git log --graph``) show which steps feed which: edges
leave a cell under its glyph, run along a lane and drop into the cells they feed,
crossing the next level's header as ``┼``. A large or tangled gap falls back to drawing
only the selected step's edges through it, in that step's status colour, and a count
otherwise; an edge that skips levels is counted on its target (``+k``). The selected
step's neighbours are also marked ``↑`` (upstream) and ``↓`` (downstream), and the
pane's bottom border spells them out (``a, b → node → c``). Every glyph carries its
meaning without colour, so the pane reads the same under ``NO_COLOR``.

:class:`DagView` is a ``ScrollView`` that renders only the visible lines
(``render_line``), so a 10k-step DAG costs the same per frame as a 10-step one: the
layout (one list entry per screen line, and the fully drawn connector lanes) is rebuilt
only when the graph or the width changes, and a status update just repaints the visible
lines. Rendered lines are cached until something they show changes: a cursor move
re-renders only the lines of the old and new cursor, of their neighbours and of the
focused connector lanes next to them, so a key press costs a few lines, not a pane.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.content import Content
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from core.models import TaskStatus, Workflow
from core.workflow_dag import WorkflowDAG

from ..messages import NodeHighlighted, NodeOpened
from .status import format_elapsed, task_glyph, task_style

__all__ = ["DagModel", "DagLayout", "PaneFit", "DagView", "dag_model_from_workflow", "fitted_layout"]

_MIN_CELL, _MAX_CELL = 14, 30
_HEADER_STYLE = Style(color="grey58")
_NOTHING_SHOWN = " no steps — pick a workflow in Projects (1)"
_UP_STYLE = Style(bold=True, color="cyan")
_DOWN_STYLE = Style(bold=True, color="magenta")
_EDGE_NAMES = 4  # neighbours named per side in the border before "+N"
_MAX_LANES = 3  # connector lanes a gap may use before it falls back to the cursor's edges
_EDGE_STYLE = Style(color="grey50")
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
    """One screen line: a level header, a row of cells, or a connector lane below a level."""

    level: int
    start: int  # index into the level's steps (cells only; ``start == end`` otherwise)
    end: int
    kind: str = "cells"  # "header" | "cells" | "link"
    lane: int = 0  # which connector lane of the gap below ``level`` (links only)


@dataclasses.dataclass(slots=True)
class _Bus:
    """A bundle of edges between two adjacent levels: every source feeds every target."""

    sources: list[int]  # anchor x of each source
    targets: list[int]
    lane: int = 0

    @property
    def span(self) -> tuple[int, int]:
        xs = self.sources + self.targets
        return min(xs), max(xs)


# (up, down, left, right) -> box-drawing glyph; a junction or a corner of a connector lane
_BOX: dict[tuple[bool, bool, bool, bool], str] = {
    (True, True, True, True): "┼", (True, True, True, False): "┤", (True, True, False, True): "├",
    (True, True, False, False): "│", (True, False, True, True): "┴", (True, False, True, False): "╯",
    (True, False, False, True): "╰", (False, True, True, True): "┬", (False, True, True, False): "╮",
    (False, True, False, True): "╭", (False, False, True, True): "─", (True, False, False, False): "╵",
    (False, True, False, False): "╷",
}


class DagLayout:
    """Where every step sits on screen for a given width, and how the levels are joined.

    Between two levels sit connector lanes. When both levels fit on one row and their
    edges can be drawn without ambiguity in at most ``_MAX_LANES`` lanes, the gap is
    *full*: every edge is drawn once, here, and the lanes never change with the cursor.
    Otherwise the gap is *focused*: one lane that draws only the cursor's edges through
    it (or a count of the edges when the cursor is elsewhere), so a huge level costs the
    same as a small one. Edges that skip levels are counted on their target cell (``+k``).

    Building it is O(steps + edges) and happens only when the graph or the width changes.
    """

    def __init__(self, model: DagModel, width: int) -> None:
        self.model = model
        self.width = width
        longest = max((len(n) for level in model.levels for n in level), default=4)
        # mark, glyph and space (3) + name + a short elapsed time like " 4.2s" (5) + gap (2);
        # longer names are cut with an ellipsis while their step runs
        self.cell_width = max(_MIN_CELL, min(_MAX_CELL, longest + 10))
        self.columns = max(1, width // self.cell_width)
        self.rows: list[_Row] = []
        self.position: dict[str, tuple[int, int]] = {}  # step -> (line, column)
        self.level_of: dict[str, int] = {name: i for i, level in enumerate(model.levels) for name in level}
        self.index_of: dict[str, int] = {name: i for level in model.levels for i, name in enumerate(level)}
        self.order: list[str] = []
        self.skips: dict[str, int] = {}  # step -> dependencies from levels before the previous one
        self.gap_edges: list[int] = [0] * len(model.levels)  # level -> edges into the next level
        self.gap_lines: dict[int, list[int]] = {}  # level -> screen lines of the gap below it
        self.full_lanes: dict[int, list[str]] = {}  # level -> drawn lanes, for full gaps only
        self.header_text: list[str] = []  # per level, crossings included
        for name, level in self.level_of.items():
            ups = self.model.upstream.get(name, ())
            near = sum(1 for up in ups if self.level_of.get(up) == level - 1)
            if level > 0:
                self.gap_edges[level - 1] += near
            if len(ups) > near:
                self.skips[name] = len(ups) - near
        crossings: list[int] = []
        for index, level in enumerate(model.levels):
            self.rows.append(_Row(index, 0, 0, "header"))
            self.header_text.append(self._header(index, crossings))
            for start in range(0, len(level), self.columns):
                line = len(self.rows)
                end = min(len(level), start + self.columns)
                self.rows.append(_Row(index, start, end))
                for column, name in enumerate(level[start:end]):
                    self.position[name] = (line, column)
                    self.order.append(name)
            if index + 1 < len(model.levels):
                lanes, crossings = self._full_gap(index)
                if lanes:
                    self.full_lanes[index] = lanes
                lines = self.gap_lines.setdefault(index, [])
                for lane in range(max(1, len(lanes))):
                    lines.append(len(self.rows))
                    self.rows.append(_Row(index, 0, 0, "link", lane))

    @property
    def height(self) -> int:
        return len(self.rows)

    def anchor(self, step: str) -> int:
        """Return the x where edges meet ``step``'s cell (under its status glyph)."""
        return self.index_of[step] % self.columns * self.cell_width + 1

    def _header(self, level: int, crossings: list[int]) -> str:
        """Return level ``level``'s header line, with ``┼`` where edges from above pass through.

        The label goes into the first stretch between crossings wide enough for it, in
        its long or short form; an edge is hidden under the label only when none is.
        """
        count = len(self.model.levels[level])
        labels = (f" level {level} · {count} step{'s' if count != 1 else ''} ", f" L{level} · {count} ", f" L{level} ")
        text = ["─"] * self.width
        for x in crossings:
            if x < self.width:
                text[x] = "┼"
        bounds = [-2, *crossings, self.width + 1]
        for label in labels:
            spot = next((max(2, lo + 2) for lo, hi in zip(bounds, bounds[1:]) if max(2, lo + 2) + len(label) <= hi - 1), None)
            if spot is not None:
                break
        else:
            label, spot = labels[0], 2
        text[spot : spot + len(label)] = label
        return "".join(text)[: self.width]

    def _full_gap(self, level: int) -> tuple[list[str], list[int]]:
        """Return the drawn lanes of the gap below ``level`` and where they enter the next header.

        Both are empty when the gap cannot be drawn in full (a level wraps, the edges need
        more than ``_MAX_LANES`` lanes, or a source and a target share an anchor while in
        different bundles) and must be drawn focused instead.
        """
        upper, lower = self.model.levels[level], self.model.levels[level + 1]
        if len(upper) > self.columns or len(lower) > self.columns:
            return [], []
        # one bus per distinct set of adjacent sources: a complete bipartite bundle
        by_sources: dict[tuple[str, ...], list[str]] = {}
        for target in lower:
            ups = tuple(sorted(u for u in self.model.upstream.get(target, ()) if self.level_of.get(u) == level))
            if ups:
                by_sources.setdefault(ups, []).append(target)
        buses = [_Bus([self.anchor(s) for s in ups], [self.anchor(t) for t in ts]) for ups, ts in by_sources.items()]
        if any(bus.span[1] >= self.width for bus in buses):
            return [], []  # a pane narrower than one cell: no room for the lanes
        buses.sort(key=lambda b: b.span)
        lane_ends: list[int] = []
        for bus in buses:
            lo, hi = bus.span
            bus.lane = next((i for i, end in enumerate(lane_ends) if end < lo), len(lane_ends))
            if bus.lane == len(lane_ends):
                lane_ends.append(hi)
            else:
                lane_ends[bus.lane] = hi
        if len(lane_ends) > _MAX_LANES:
            return [], []
        # a vertical at x belongs to one bus, or the picture would join unrelated edges
        owner: dict[int, _Bus] = {}
        for bus in buses:
            for x in set(bus.sources + bus.targets):
                if owner.setdefault(x, bus) is not bus:
                    return [], []
        depth = len(lane_ends)
        grid = [[" "] * self.width for _ in range(depth)]
        for bus in buses:
            lo, hi = bus.span
            for x in range(lo, hi + 1):
                grid[bus.lane][x] = "─"
        for x, bus in owner.items():
            up, down = x in bus.sources, x in bus.targets
            top, bottom = (0 if up else bus.lane), (depth - 1 if down else bus.lane)
            lo, hi = bus.span
            for lane in range(top, bottom + 1):
                if lane == bus.lane:
                    grid[lane][x] = _BOX[(up or lane > top, down or lane < bottom, x > lo, x < hi)]
                else:
                    grid[lane][x] = "│"  # passes over another bus: that bus's line is broken here
        crossings = sorted(x for x, bus in owner.items() if x in bus.targets)
        return ["".join(row) for row in grid], crossings

    def step_at(self, line: int, column: int) -> str | None:
        """Return the step drawn at ``(line, column)``, or None for a header, connector or gap."""
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


@dataclasses.dataclass(slots=True, frozen=True)
class PaneFit:
    """The room a DAG pane gives a layout: its visible ``height``, and its content width
    without (``wide``) and with (``narrow``) the vertical scrollbar."""

    height: int
    wide: int
    narrow: int

    def width_for(self, height: int) -> int:
        """Return the width a layout ``height`` lines tall gets: narrow when it overflows."""
        return self.narrow if height > self.height else self.wide


def fitted_layout(model: DagModel, fit: PaneFit) -> DagLayout:
    """Return ``model`` laid out for the pane ``fit`` describes: for the width the vertical
    scrollbar leaves when the graph overflows the pane (safe on any thread)."""
    if 2 * len(model.levels) <= fit.height:  # it may fit: every level takes two lines at least
        layout = DagLayout(model, fit.wide)
        if layout.height <= fit.height:
            return layout
    return DagLayout(model, fit.narrow)


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
        self._empty_text = _NOTHING_SHOWN
        self.cursor: str | None = None

    # ----------------------------------------------------------------- feeding

    @property
    def model(self) -> DagModel:
        return self._model

    @property
    def graph_layout(self) -> DagLayout | None:
        """Where the graph's steps sit on screen (None before the first :meth:`show`).

        Not ``layout``: that is Textual's (how a widget arranges its children).
        """
        return self._layout

    def show_nothing(self, why: str = "") -> None:
        """Show no graph, with ``why`` (one line) in its place, or the hint to pick one."""
        self._empty_text = f" ✖ {why}" if why else _NOTHING_SHOWN
        if self._model.levels or self._layout is None:
            self.show(DagModel("", (), {}, {}))
        self.refresh()

    def show(self, model: DagModel, layout: DagLayout | None = None) -> None:
        """Display ``model``; keeps the cursor on the same step name when it still exists
        (else puts it on the first step, and says so with :class:`NodeHighlighted`).

        ``layout``, when given, is ``model`` laid out already (off the UI thread: 10k steps
        take ~40 ms); it is used when it was made for this model and for the width the pane
        gives a graph of its height (see :func:`fitted_layout`).
        """
        if model is self._model:
            return
        self._model = model
        if model.levels:
            self._empty_text = _NOTHING_SHOWN
        fit = self.fit()
        if layout is None or layout.model is not model or layout.width != fit.width_for(layout.height):
            layout = fitted_layout(model, fit)
        moved = self.cursor not in layout.position
        if moved:
            self.cursor = model.levels[0][0] if model.levels and model.levels[0] else None
        self._use_layout(layout)
        self._show_edges()
        self.refresh()
        if moved and self.cursor is not None:  # what follows the cursor (the Logs pane) must hear of it
            self.post_message(NodeHighlighted(self.cursor))

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

    def fit(self) -> PaneFit:
        """Return the room this pane gives a layout now (read it on the UI thread)."""
        region = self.content_region  # scrollbars included: ``narrow`` takes them off
        wide = max(1, region.width or self.size.width)
        return PaneFit(region.height, wide, max(1, wide - self.styles.scrollbar_size_vertical))

    def _relayout(self) -> None:
        self._use_layout(fitted_layout(self._model, self.fit()))

    def _use_layout(self, layout: DagLayout) -> None:
        self._layout = layout
        self._lines.clear()
        self.virtual_size = Size(layout.width, layout.height)

    def watch_show_vertical_scrollbar(self) -> None:
        # The scrollbar takes its columns from the content without a Resize event. A
        # fitted layout expected it; any other (the pane's height changed, say) is laid
        # out again for the width left or regained, or its last column would be cut.
        layout = self._layout
        if layout is not None and layout.width != self.scrollable_content_region.width:
            self.on_resize()

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
                return Strip([Segment(self._empty_text[:width].ljust(width), _HEADER_STYLE)])
            return Strip.blank(width, self.rich_style)
        cached = self._lines.get(line)
        if cached is not None and cached.cell_length == width:
            return cached
        row = layout.rows[line]
        if row.kind == "header":
            strip = Strip([Segment(layout.header_text[row.level].ljust(width, "─")[:width], _HEADER_STYLE)])
        elif row.kind == "link":
            strip = self._link_strip(layout, row, width)
        else:
            strip = self._cells_strip(layout, row, width)
        self._lines[line] = strip
        return strip

    def _link_strip(self, layout: DagLayout, row: _Row, width: int) -> Strip:
        """Return a connector lane: drawn in full, or the cursor's edges through a focused gap."""
        lanes = layout.full_lanes.get(row.level)
        if lanes is not None:
            return Strip([Segment(lanes[row.lane].ljust(width)[:width], _EDGE_STYLE)])
        cursor = self.cursor
        where = layout.level_of.get(cursor, -1) if cursor is not None else -1
        if where == row.level:  # the cursor feeds steps of the next level
            sources = [cursor]
            targets = [d for d in self._model.downstream.get(cursor, ()) if layout.level_of.get(d) == where + 1]
        elif where == row.level + 1:  # the cursor depends on steps of this level
            sources = [u for u in self._model.upstream.get(cursor, ()) if layout.level_of.get(u) == row.level]
            targets = [cursor]
        else:
            sources = targets = []
        if not sources or not targets:
            edges = layout.gap_edges[row.level]
            text = f" ┆ {edges} edge{'s' if edges != 1 else ''} to level {row.level + 1}"
            return Strip([Segment(text.ljust(width)[:width], _EDGE_STYLE)])
        ups = {layout.anchor(s) for s in sources if s is not None}
        downs = {layout.anchor(t) for t in targets if t is not None}
        lo, hi = min(ups | downs), max(ups | downs)
        text = [" "] * width
        for x in range(lo, min(hi + 1, width)):
            text[x] = _BOX[(x in ups, x in downs, x > lo, x < hi)]
        # the cursor's status colour says whose edges these are; the glyphs still say where
        style = task_style(self._statuses.get(cursor, TaskStatus.PENDING)) if cursor is not None else _EDGE_STYLE
        return Strip([Segment("".join(text), style)])

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
            skipped = f" +{layout.skips[name]}" if name in layout.skips else ""
            room -= len(skipped)
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
            # a cell: mark (1) + body + edges from earlier levels ("+k") (cell - 3) + gap (2)
            segments.append(Segment(mark, _UP_STYLE if mark == "↑" else _DOWN_STYLE))
            body = body[: cell - 3 - len(skipped)]
            segments.append(Segment(body, base))
            segments.append(Segment(skipped.ljust(cell - 3 - len(body)), _EDGE_STYLE))
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
        """Re-render the lines showing ``steps`` and their neighbours (their marks change),
        and the focused connector lanes above and below ``steps`` (they draw the cursor's edges)."""
        layout = self._layout
        if layout is None:
            return
        names: set[str] = set()
        lines: set[int] = set()
        for step in steps:
            if step is not None:
                names.add(step)
                names.update(self._model.upstream.get(step, ()))
                names.update(self._model.downstream.get(step, ()))
                level = layout.level_of.get(step)
                for gap in () if level is None else (level - 1, level):
                    if gap not in layout.full_lanes:
                        lines.update(layout.gap_lines.get(gap, ()))
        lines.update(layout.position[n][0] for n in names if n in layout.position)
        top = int(self.scroll_offset.y)
        for line in lines:
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
        self.border_subtitle = Content(" ".join(parts))

    def _scroll_cursor_visible(self) -> None:
        if self._layout is None or self.cursor not in self._layout.position:
            return
        line, column = self._layout.position[self.cursor]
        cell = self._layout.cell_width
        # include the level header above the first row so a level's title stays in view
        top = line - 1 if line > 0 and self._layout.rows[line - 1].kind == "header" else line
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
