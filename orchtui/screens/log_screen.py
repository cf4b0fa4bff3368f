"""A full-screen log of one step attempt, followed while the step runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from ..widgets.logs import LogsPane

__all__ = ["LogScreen"]


class LogScreen(Screen[None]):
    """Shows the log at ``path``; polls it at ``rate`` Hz while open.

    ``locate``, when given, returns the step's newest ``(log path or None, attempt)``;
    it is asked once a second, so a retry's new log replaces the failed attempt's.
    """

    BINDINGS = [
        Binding("escape,q,l", "close", "Close", id="log.close"),
        Binding("f", "toggle_follow", "Follow", id="log.follow"),
        Binding("g,home", "top", "Top", show=False, id="log.top"),
        Binding("G,end", "bottom", "Bottom", show=False, id="log.bottom"),
        Binding("j,down", "down", "Down", show=False, id="log.down"),
        Binding("k,up", "up", "Up", show=False, id="log.up"),
    ]

    def __init__(
        self,
        path: Path | None,
        source: tuple[str, str, int],
        *,
        rate: float = 10.0,
        note: str = "",
        locate: Callable[[], tuple[Path | None, int]] | None = None,
    ) -> None:
        super().__init__()
        self._path = path
        self._source = source
        self._rate = rate
        self._note = note
        self._locate = locate

    def compose(self) -> ComposeResult:
        yield Static(self._title(), id="log-title")
        yield LogsPane(id="log-full")
        yield Footer()

    def _title(self) -> str:
        run, step, attempt = self._source
        # The step first: at 80 columns a long step name would push the attempt off the line.
        return f" log · step {step} · attempt {attempt} · run {run}"

    def on_mount(self) -> None:
        pane = self.query_one(LogsPane)
        placeholder = self._note or ("" if self._path is not None else "this step has no log yet")
        pane.follow_file(self._path, self._source, placeholder)
        pane.focus()
        self.set_interval(1.0 / self._rate, pane.poll)
        if self._locate is not None:
            self.set_interval(1.0, self._relocate)

    def _relocate(self) -> None:
        assert self._locate is not None
        path, attempt = self._locate()
        if path is None or attempt <= self._source[2]:
            return
        self._path = path
        self._source = (self._source[0], self._source[1], attempt)
        self.pane.follow_file(path, self._source)
        self.query_one("#log-title", Static).update(self._title())

    @property
    def pane(self) -> LogsPane:
        return self.query_one(LogsPane)

    def action_close(self) -> None:
        self.dismiss(None)

    def action_toggle_follow(self) -> None:
        pane = self.pane
        pane.auto_scroll = not pane.auto_scroll
        self.notify("following" if pane.auto_scroll else "not following", timeout=1.5)

    def action_top(self) -> None:
        self.pane.scroll_home(animate=False)

    def action_bottom(self) -> None:
        self.pane.scroll_end(animate=False)

    def action_down(self) -> None:
        self.pane.scroll_down(animate=False)

    def action_up(self) -> None:
        self.pane.scroll_up(animate=False)
