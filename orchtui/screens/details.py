"""The step details modal (Enter on a DAG node).

While the step has not ended, the modal reloads its detail in a worker thread, so the
status, attempts, error and log tail move on while it is open. Reloading reads the
store, so it is paced by what the last read cost (never more than a few percent of the
time), like the dashboard's own store polling.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from core.errors import OrchestrationError

from ..widgets.details import StepDetail, render_step_detail

__all__ = ["DetailsScreen"]

_MIN_INTERVAL = 0.5  # seconds between reloads at the least
_BUDGET = 0.05  # at most this share of the time spent reloading


class DetailsScreen(ModalScreen[str | None]):
    """Shows a :class:`StepDetail`. Dismisses with ``"logs"`` when the user asks for the log.

    Args:
        detail: what to show first.
        reload: returns the step's detail as it is now; while the step has not ended,
            it is called in a thread to keep the modal current (None: a still picture).
    """

    BINDINGS = [
        Binding("escape,q,enter", "close", "Close", id="details.close"),
        Binding("l", "logs", "Logs", id="details.logs"),
        Binding("j,down", "scroll_down", "Down", show=False, id="details.down"),
        Binding("k,up", "scroll_up", "Up", show=False, id="details.up"),
    ]

    def __init__(self, detail: StepDetail, reload: Callable[[], StepDetail] | None = None) -> None:
        super().__init__()
        self.detail = detail
        self._reload = reload
        self._next_reload = 0.0

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="details-box", classes="dialog") as box:
            box.border_title = Content(f"step {self.detail.step.name}")
            box.border_subtitle = "l logs · esc close"
            yield Static(render_step_detail(self.detail), id="details-body")

    def on_mount(self) -> None:
        if self._reload is not None and not self.detail.status.is_terminal:
            self._timer = self.set_interval(_MIN_INTERVAL / 2, self._maybe_reload)

    def _maybe_reload(self) -> None:
        if time.monotonic() >= self._next_reload:
            self._next_reload = float("inf")  # until this reload is done
            self._load()

    @work(thread=True, exclusive=True, group="details-reload")
    def _load(self) -> None:
        assert self._reload is not None
        started = time.monotonic()
        try:
            detail = self._reload()
        except OrchestrationError:
            detail = None  # the store went away for a moment: keep showing what we have
        cost = time.monotonic() - started
        self.app.call_from_thread(self._show, detail, cost)

    def _show(self, detail: StepDetail | None, cost: float) -> None:
        if not self.is_attached:
            return
        self._next_reload = time.monotonic() + max(_MIN_INTERVAL, cost / _BUDGET)
        if detail is None:
            return
        self.detail = detail
        self.query_one("#details-body", Static).update(render_step_detail(detail))
        if detail.status.is_terminal:
            self._timer.stop()  # it ended: what it shows now stays true

    def action_close(self) -> None:
        self.dismiss(None)

    def action_logs(self) -> None:
        self.dismiss("logs")

    def action_scroll_down(self) -> None:
        self.query_one("#details-box", VerticalScroll).scroll_down(animate=False)

    def action_scroll_up(self) -> None:
        self.query_one("#details-box", VerticalScroll).scroll_up(animate=False)
