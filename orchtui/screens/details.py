"""The step details modal (Enter on a DAG node)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..widgets.details import StepDetail, render_step_detail

__all__ = ["DetailsScreen"]


class DetailsScreen(ModalScreen[str | None]):
    """Shows a :class:`StepDetail`. Dismisses with ``"logs"`` when the user asks for the log."""

    BINDINGS = [
        Binding("escape,q,enter", "close", "Close", id="details.close"),
        Binding("l", "logs", "Logs", id="details.logs"),
        Binding("j,down", "scroll_down", "Down", show=False, id="details.down"),
        Binding("k,up", "scroll_up", "Up", show=False, id="details.up"),
    ]

    def __init__(self, detail: StepDetail) -> None:
        super().__init__()
        self.detail = detail

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="details-box", classes="dialog") as box:
            box.border_title = f"step {self.detail.step.name}"
            box.border_subtitle = "l logs · esc close"
            yield Static(render_step_detail(self.detail), id="details-body")

    def action_close(self) -> None:
        self.dismiss(None)

    def action_logs(self) -> None:
        self.dismiss("logs")

    def action_scroll_down(self) -> None:
        self.query_one("#details-box", VerticalScroll).scroll_down(animate=False)

    def action_scroll_up(self) -> None:
        self.query_one("#details-box", VerticalScroll).scroll_up(animate=False)
