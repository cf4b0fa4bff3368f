"""The Runs pane: run history from the store, whichever process started each run."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from core.snapshot import RunView

from ..messages import RunChosen
from .status import format_duration, run_glyph, run_style

__all__ = ["RunsPane", "MAX_ROWS"]

MAX_ROWS = 500  # the newest runs; older ones stay reachable through the palette and the CLI
NARROW_BELOW = 110  # terminal columns: the app's "-narrow" breakpoint
SHORT_ID = 8  # characters of a run id (after its "run-" prefix) shown in the narrow layout
_WIDE_COLUMNS = (("glyph", " "), ("workflow", "workflow"), ("took", "took"), ("started", "started"), ("run", "run"))
# At 80 columns the pane is ~24 cells wide: the run id comes first (short) so it stays in view.
_NARROW_COLUMNS = (("glyph", " "), ("run", "run"), ("took", "took"), ("workflow", "workflow"))


def short_run_id(run_id: str) -> str:
    """Return the first ``SHORT_ID`` characters of ``run_id`` after its ``run-`` prefix."""
    return run_id.removeprefix("run-")[:SHORT_ID]


def _age(started_at: float | None, now: float) -> str:
    if started_at is None:
        return "-"
    return format_duration(now - started_at) + " ago"


def _took(run: RunView, now: float) -> str:
    if run.started_at is None:
        return "-"
    end = run.finished_at if run.finished_at is not None else now
    return format_duration(end - run.started_at)


class RunsPane(DataTable):
    """A table of runs, newest first; the cursor row is the selected run."""

    BINDINGS = [
        Binding("k", "cursor_up", "Up", show=False, id="runs.up"),
        Binding("j", "cursor_down", "Down", show=False, id="runs.down"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self._runs: tuple[RunView, ...] | None = None
        self._filter = ""
        self._now = 0.0
        self._keys: list[str] = []
        self._shown_times: dict[str, tuple[str, str]] = {}  # run id -> the (took, started) cells shown
        self._narrow: bool | None = None

    def on_mount(self) -> None:
        self._set_layout(self.app.size.width < NARROW_BELOW)

    def on_resize(self) -> None:
        narrow = self.app.size.width < NARROW_BELOW
        if narrow != self._narrow:
            self._set_layout(narrow)
            self._rebuild()

    def _set_layout(self, narrow: bool) -> None:
        """Lay the columns out for a narrow (short run id first, no start time) or wide terminal."""
        self._narrow = narrow
        self.clear(columns=True)
        for key, label in _NARROW_COLUMNS if narrow else _WIDE_COLUMNS:
            self.add_column(label, key=key, width=1 if key == "glyph" else None)

    @property
    def selected_run(self) -> str | None:
        """The run id under the cursor, or None when the table is empty."""
        if not self._keys or not 0 <= self.cursor_row < len(self._keys):
            return None
        return self._keys[self.cursor_row]

    def show(self, runs: tuple[RunView, ...], now: float) -> None:
        """Display ``runs`` with their times measured to ``now``.

        The table is rebuilt only when the runs changed; otherwise, once a second of
        ``now`` has passed, just the time cells whose text moved are rewritten, so
        "started … ago" (and a running run's "took") never go stale.
        """
        if runs is not self._runs:
            self._runs, self._now = runs, now
            self._rebuild()
        elif int(now) != int(self._now):
            self._now = now
            self._refresh_times()

    def _times(self, run: RunView) -> tuple[str, str]:
        return _took(run, self._now), _age(run.started_at, self._now)

    def _refresh_times(self) -> None:
        for run in self._runs or ():
            shown = self._shown_times.get(run.run_id)
            if shown is None:
                continue  # filtered out
            times = self._times(run)
            if times == shown:
                continue
            self._shown_times[run.run_id] = times
            for column, new, old in zip(("took", "started"), times, shown, strict=True):
                if new != old and (column == "took" or not self._narrow):  # a column only needs measuring again when its text grew
                    self.update_cell(run.run_id, column, new, update_width=len(new) > len(old))

    def set_filter(self, text: str) -> None:
        """Keep only runs whose id, workflow or status contains ``text``."""
        self._filter = text.lower()
        self._rebuild()

    def _rebuild(self) -> None:
        keep = self.selected_run
        wanted = self._filter
        rows: list[tuple[str, list[Text | str]]] = []
        times: dict[str, tuple[str, str]] = {}
        for run in self._runs or ():
            if wanted and not any(wanted in s.lower() for s in (run.run_id, run.workflow, run.status.value)):
                continue
            took, age = times[run.run_id] = self._times(run)
            glyph = Text(run_glyph(run.status), style=run_style(run.status))
            if self._narrow:
                cells: list[Text | str] = [glyph, short_run_id(run.run_id), took, run.workflow]
            else:
                cells = [glyph, run.workflow, took, age, run.run_id]
            rows.append((run.run_id, cells))
            if len(rows) >= MAX_ROWS:
                break
        self.clear()
        self._shown_times = times
        self._keys = [key for key, _ in rows]
        for key, cells in rows:
            self.add_row(*cells, key=key)
        if keep in self._keys:
            self.move_cursor(row=self._keys.index(keep), animate=False)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        run_id = self.selected_run
        if run_id is not None:
            self.post_message(RunChosen(run_id))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        run_id = self.selected_run
        if run_id is not None:
            self.post_message(RunChosen(run_id, opened=True))
